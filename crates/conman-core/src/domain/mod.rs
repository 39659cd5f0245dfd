//! Entities and their state machines (SPEC §1, §4). State machines are pure
//! functions `(state, event) -> Result<state>`; every pair outside the SPEC
//! table is refused with `invalid_transition` and leaves the state unchanged
//! (the caller keeps the old value because nothing is mutated in place).

pub mod app;
pub mod audit;
pub mod changeset;
pub mod comment;
pub mod deployment;
pub mod drift;
pub mod environment;
pub mod freeze;
pub mod invite;
pub mod job;
pub mod log_mask;
mod machine;
pub mod membership;
pub mod outbox;
pub mod release;
pub mod review;
pub mod runtime_profile;
#[cfg(test)]
mod spec_machines;
pub mod temp_env;
pub mod user;
pub mod workspace;

pub use machine::StateMachine;

/// Instants are UTC with microsecond precision (the clock truncates), so
/// they round-trip exactly through every store and hash the same.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Formats a timestamp the one way Conman stores, hashes and sends it.
pub fn format_timestamp(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
