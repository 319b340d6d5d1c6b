//! Simulators of the outside services mAI Fleet talks to (OpenRouter, NBP, KSeF),
//! built from `shared/specs/` and the services' own contracts, field by field.
//!
//! Each simulator is a plain axum server that can run from the `mai-sim` binary or
//! in-process on an ephemeral port (tests, benchmarks, the demo fleet), and exposes
//! its own ground truth ("what did I serve?") so tests can compare our ledger with it.

pub mod ksef;
pub mod nbp;
pub mod openrouter;
pub mod tls;
