//! Ports: the traits through which the core reaches everything outside the
//! process. Adapters live in other crates (`conman-git`, `conman-store-*`);
//! [`system`] holds the few default implementations that need no I/O
//! beyond the OS clock and random source.

pub mod clock;
pub mod composition;
pub mod compute;
pub mod crypto;
pub mod envelope;
pub mod git;
pub mod ids;
pub mod mailer;
pub mod password;
pub mod runner;
pub mod store;
pub mod system;
pub mod tokens;

pub use clock::Clock;
pub use compute::{Compute, InlineCompute};
pub use crypto::{SealedSecret, SecretBinding, SecretBytes, SecretCipher};
pub use envelope::{parse_master_key, EnvelopeCipher};
pub use git::GitPort;
pub use ids::IdGenerator;
pub use mailer::Mailer;
pub use password::PasswordHasher;
pub use runner::{CommandRunner, JobWakeup, LogSink};
pub use store::Store;
pub use tokens::TokenGenerator;
