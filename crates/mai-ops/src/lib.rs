//! mai-ops: the operator library behind the console (Tauri) and `maictl`.
//!
//! Pure logic (fleet file, row assembly, formatting of alerts) is kept apart from the
//! adapters (tracker HTTP, Docker, keychain, SQLite cache).

pub mod docker;
pub mod fleet;
pub mod keys;
pub mod tracker;
