//! The wire contract of mAI Fleet, written once.
//!
//! Every body that crosses a process boundary we own is a type here: the tracker's HTTP
//! API ([`tracker`]), the commercial terms the console pushes to trackers ([`pricing`]),
//! and the console's IPC to its web view ([`console`]; sending invoices to KSeF: [`ksef`]).
//! The tracker serializes these types, mai-ops and the test fakes deserialize them, the
//! Tauri commands return them and the UI's TypeScript declarations are generated from
//! them ([`typescript`]), so a field renamed here breaks every side at compile time (or
//! in the staleness test of `ui/src/lib/wire.ts`) instead of in production.
//!
//! Rules of the contract:
//! - money is a JSON **string** holding an exact decimal (`"0.000123"`), USD unless the
//!   field name says otherwise; it is never a float on either side;
//! - days are `YYYY-MM-DD` Europe/Warsaw days unless a field says UTC; instants are
//!   RFC 3339 UTC;
//! - closed sets (states, sources, statuses, levels) are enums, never free strings;
//! - the seed-compatible endpoints keep the seed's JSON *numbers* for money, written
//!   and read as exact text ([`money::json_number`]), never through `f64`;
//! - no I/O and no dependency on other crates of ours: this crate is what the others
//!   agree on.

pub mod alerts;
pub mod backup;
pub mod change;
pub mod console;
pub mod ksef;
pub mod lifecycle;
pub mod money;
pub mod overview;
pub mod pricing;
pub mod tracker;
pub mod ts;
pub mod update;
pub mod usage;

pub use pricing::{
    CommercialTerms, LimitLevel, LimitState, MarkupEntry, MarkupSchedule, MarkupSegment,
};
pub use usage::{ChatContext, EventState, Source, TokenCounts, UnknownVariant, UserRef};
