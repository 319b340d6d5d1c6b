//! mai-core: the shared core of mAI Fleet.
//!
//! Exact money, usage events, the SQLite usage ledger with daily rollups, pricing and
//! markup, and the clients of the two outside services (OpenRouter, NBP). Everything
//! here is used by the tracker (one per client) and by the operator side (console,
//! maictl, billing), so it holds the invariants they all rely on — see ARCHITECTURE.md.

pub mod alloc;
pub mod csv;
pub mod ledger;
pub mod money;
pub mod nbp;
pub mod openrouter;
pub mod pricing;
pub mod secret;
pub mod time;
pub mod usage;
