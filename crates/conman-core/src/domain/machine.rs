//! The shape every state machine shares, and the table-driven checks that
//! test each machine cell by cell.

use crate::error::Error;

/// A finite state machine over a state enum.
pub trait StateMachine: Copy + Eq + std::fmt::Debug + 'static {
    /// The events the machine accepts.
    type Event: Copy + Eq + std::fmt::Debug + 'static;
    /// Entity kind reported in `invalid_transition` errors.
    const ENTITY: &'static str;
    /// Every state, for exhaustive tests.
    const STATES: &'static [Self];
    /// Every event, for exhaustive tests.
    const EVENTS: &'static [Self::Event];

    /// The next state, or `None` when the SPEC table has no such edge.
    fn next(self, event: Self::Event) -> Option<Self>;

    /// Applies `event`, refusing edges outside the table.
    fn apply(self, event: Self::Event) -> Result<Self, Error> {
        self.next(event).ok_or_else(|| Error::InvalidTransition {
            entity: Self::ENTITY,
            from: snake(&format!("{self:?}")),
            event: snake(&format!("{event:?}")),
        })
    }

    /// True when no event leaves this state.
    fn is_terminal(self) -> bool {
        Self::EVENTS.iter().all(|e| self.next(*e).is_none())
    }
}

/// `CamelCase` → `snake_case`, for state and event names in errors.
pub(crate) fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Test support: checks a machine against its full SPEC table.
#[cfg(test)]
pub(crate) mod check {
    use super::StateMachine;
    use proptest::prelude::*;

    /// Every listed edge is accepted with the listed target; every other
    /// (state, event) pair is refused with `invalid_transition`.
    pub(crate) fn table<M: StateMachine>(edges: &[(M, M::Event, M)]) {
        for &from in M::STATES {
            for &event in M::EVENTS {
                let expected = edges.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, t)| *t);
                match (expected, from.apply(event)) {
                    (Some(want), Ok(got)) => assert_eq!(got, want, "{from:?} --{event:?}"),
                    (None, Err(err)) => {
                        assert_eq!(err.code(), crate::ErrorCode::InvalidTransition, "{from:?} --{event:?}")
                    }
                    (want, got) => panic!("{from:?} --{event:?}: expected {want:?}, got {got:?}"),
                }
            }
        }
    }

    /// Runs random event sequences from `start` against the edge list as a
    /// model: accepted events move exactly as the model says, refused ones
    /// leave the state where it was, terminal states refuse everything.
    pub(crate) fn random_walks<M: StateMachine>(start: M, edges: &'static [(M, M::Event, M)]) {
        let events = proptest::collection::vec(proptest::sample::select(M::EVENTS), 0..40);
        proptest!(ProptestConfig::with_cases(256), |(seq in events)| {
            let mut state = start;
            for event in seq {
                let model = edges.iter().find(|(f, e, _)| *f == state && *e == event).map(|(_, _, t)| *t);
                match state.apply(event) {
                    Ok(next) => { prop_assert_eq!(Some(next), model); state = next; }
                    Err(_) => { prop_assert_eq!(model, None); if state.is_terminal() { prop_assert!(M::EVENTS.iter().all(|e| state.apply(*e).is_err())); } }
                }
            }
        });
    }
}
