//! The shape every state machine shares, and the checks that test each
//! machine cell by cell against a hand transcription of its table.

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

/// Test support: checks a machine against a transcription of its table
/// written by hand (`domain/spec_machines.rs` for SPEC §4), never against
/// the machine's own edge list — a table checked against itself cannot fail.
#[cfg(test)]
pub(crate) mod check {
    use super::{snake, StateMachine};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// Parses a transcription: one edge group per line, `from [| from ...]
    /// -> to (event)`, states by their wire names and the event by its
    /// snake-case name; `#` starts a comment. A name that is not one of the
    /// machine's fails the test, so a typo cannot silently drop an edge.
    pub(crate) fn edges<M>(text: &str) -> Vec<(M, M::Event, M)>
    where
        M: StateMachine + serde::de::DeserializeOwned,
    {
        let mut edges = Vec::new();
        for line in text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
            let (froms, rest) = line.split_once("->").unwrap_or_else(|| panic!("no `->` in {line:?}"));
            let (to, event) = rest.split_once('(').unwrap_or_else(|| panic!("no `(event)` in {line:?}"));
            let event = event.trim().strip_suffix(')').unwrap_or_else(|| panic!("unclosed event in {line:?}"));
            let event = event_named::<M>(event.trim());
            let to = state_named::<M>(to.trim());
            for from in froms.split('|') {
                edges.push((state_named::<M>(from.trim()), event, to));
            }
        }
        edges
    }

    fn state_named<M: StateMachine + serde::de::DeserializeOwned>(name: &str) -> M {
        serde_json::from_value(serde_json::Value::String(name.to_owned()))
            .unwrap_or_else(|_| panic!("{name:?} is not a {} state", M::ENTITY))
    }

    fn event_named<M: StateMachine>(name: &str) -> M::Event {
        M::EVENTS
            .iter()
            .copied()
            .find(|e| snake(&format!("{e:?}")) == name)
            .unwrap_or_else(|| panic!("{name:?} is not a {} event", M::ENTITY))
    }

    /// The transcribed target of `(from, event)`, if the table has the edge.
    fn target<M: StateMachine>(edges: &[(M, M::Event, M)], from: M, event: M::Event) -> Option<M> {
        let mut targets = edges.iter().filter(|(f, e, _)| *f == from && *e == event).map(|(_, _, t)| *t);
        let first = targets.next();
        assert!(targets.next().is_none(), "the transcription gives {from:?} --{event:?} two targets");
        first
    }

    /// Every (state, event) cell of the machine against the transcription:
    /// a transcribed edge is accepted with its target; every other cell is
    /// refused with `invalid_transition` naming the state and the event.
    /// `states` lists the table's states by wire name, so a state the
    /// machine forgot to enumerate fails too.
    pub(crate) fn every_cell<M>(states: &str, edges: &[(M, M::Event, M)])
    where
        M: StateMachine + serde::de::DeserializeOwned,
    {
        let transcribed: BTreeSet<String> = states.split_whitespace().map(str::to_owned).collect();
        let enumerated: BTreeSet<String> = M::STATES.iter().map(|s| snake(&format!("{s:?}"))).collect();
        assert_eq!(enumerated, transcribed, "the {} states", M::ENTITY);
        for name in &transcribed {
            state_named::<M>(name);
        }
        for &from in M::STATES {
            for &event in M::EVENTS {
                match (target(edges, from, event), from.apply(event)) {
                    (Some(want), Ok(got)) => assert_eq!(got, want, "{} {from:?} --{event:?}", M::ENTITY),
                    (None, Err(err)) => {
                        assert_eq!(err.code(), crate::ErrorCode::InvalidTransition, "{from:?} --{event:?}");
                        let (state, event) = (snake(&format!("{from:?}")), snake(&format!("{event:?}")));
                        assert!(
                            err.to_string() == format!("cannot {event} a {} that is {state}", M::ENTITY),
                            "the refusal names the state and the event"
                        );
                    }
                    (want, got) => {
                        panic!("{} {from:?} --{event:?}: SPEC says {want:?}, machine says {got:?}", M::ENTITY)
                    }
                }
            }
        }
    }

    /// Random event sequences from `start`, with the transcription as the
    /// model: an accepted event moves exactly where the model says, a
    /// refused one leaves the state where it was, and a state the model
    /// gives no way out of refuses every event.
    pub(crate) fn random_walks<M: StateMachine>(start: M, edges: &[(M, M::Event, M)]) {
        let events = proptest::collection::vec(proptest::sample::select(M::EVENTS), 0..40);
        proptest!(ProptestConfig::with_cases(256), |(seq in events)| {
            let mut state = start;
            for event in seq {
                let model = target(edges, state, event);
                let before = state;
                match state.apply(event) {
                    Ok(next) => { prop_assert_eq!(Some(next), model); state = next; }
                    Err(_) => { prop_assert_eq!(model, None); prop_assert_eq!(state, before); }
                }
                let model_terminal = M::EVENTS.iter().all(|e| target(edges, state, *e).is_none());
                prop_assert_eq!(state.is_terminal(), model_terminal);
            }
        });
    }
}
