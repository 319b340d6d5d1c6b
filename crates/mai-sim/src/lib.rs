//! Simulators of the two outside services mAI Fleet talks to, built from
//! `shared/specs/` field by field.
//!
//! Each simulator is a plain axum server that can run from the `mai-sim` binary or
//! in-process on an ephemeral port (tests, benchmarks, the demo fleet), and exposes
//! its own ground truth ("what did I serve?") so tests can compare our ledger with it.

pub mod nbp;
pub mod openrouter;
pub mod tls;
