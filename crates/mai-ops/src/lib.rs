//! mai-ops: the operator library behind the console (Tauri) and `maictl`.
//!
//! Pure logic (fleet file, row assembly, formatting of alerts) is kept apart from the
//! adapters (tracker HTTP, Docker, keychain, SQLite cache).

pub mod alerts;
pub mod audit;
pub mod cache;
pub mod docker;
pub mod fleet;
pub mod fleet_edit;
pub mod keys;
pub mod ksef_token;
pub mod ops;
pub mod refresh;
pub mod swarm;
pub mod tracker;

pub use fleet::Fleet;
pub use keys::{Keychain, SecretKind};
pub use ops::{Ops, OpsError};
