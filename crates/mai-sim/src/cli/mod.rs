//! The simulators' command lines. Argument parsing (clap) lives here, in the binary; the
//! library (`mai_sim::openrouter`, `mai_sim::nbp`, `mai_sim::ksef`) takes plain configuration values, as
//! the in-process tests do.

pub mod ksef;
pub mod nbp;
pub mod openrouter;
