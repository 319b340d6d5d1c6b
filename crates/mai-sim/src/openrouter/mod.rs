//! A local, deterministic OpenRouter (`/api/v1`) built from `shared/specs/openrouter-api.md`.
//!
//! # In tests
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mai_sim::openrouter::{FaultRule, OpenRouterSim, SimConfig};
//! let sim = OpenRouterSim::spawn(SimConfig { seed: 7, ..SimConfig::fast() }).await?;
//! let base = sim.base_url(); // "http://127.0.0.1:PORT/api/v1"
//! // ... point the client at `base`, with any key `sk-or-v1-` + 64 lowercase hex ...
//! let key = "sk-or-v1-0000000000000000000000000000000000000000000000000000000000000001";
//! let served = sim.key_totals(key); // { generations, cost: Decimal }
//! sim.set_fault(FaultRule::parse("status=503;retry_after=2")?);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! * Keys: with `accept_any_key` (default) any well-formed key works and is registered
//!   on first use; [`SimHandle::register_key`] adds caps, BYOK, management keys.
//! * Ground truth: [`SimHandle::generations`] (every generation, streamed, cancelled or
//!   errored) and [`SimHandle::key_totals`]; out of process, `GET /__sim/truth`
//!   (money as exact decimal strings).
//! * Clock: [`SimHandle::set_now`] / [`SimHandle::freeze_clock`] (or `POST /__sim/clock`
//!   `{"now":"2026-01-05T10:00:00Z","frozen":false}`) to create generations on past UTC
//!   days, which `/activity` needs (it skips the current day).
//! * Faults: the `X-Sim-Fault` request header, [`SimHandle::set_fault`], or
//!   `POST /__sim/faults` with a [`FaultRule`] as JSON; grammar in [`faults`].
//! * Exact token counts: request header `X-Sim-Usage: prompt=1200;completion=250;reasoning=0;cached=0;cache_write=0`.
//! * Load: [`SimConfig::fast`] (no delays, no keep-alives, generation stats ready at once).
//!
//! Determinism: ids come from the seed and the order of accepted requests; token counts
//! and text from the seed and the request body alone; `created` from the clock (freeze it
//! for byte-identical runs).

mod admin;
mod chat;
mod clock;
mod config;
mod content;
mod endpoints;
pub mod faults;
mod ledger;
mod pricing;
mod server;
mod wire;

pub use clock::ClockMode;
pub use config::{
    default_models, is_well_formed_key, mask_key, ConfigError, CreditsAuth, KeepAlive, KeySpec,
    LimitReset, ModelSpec, SimConfig, UsageChunkShape, DEFAULT_WORKSPACE_ID, NEVER,
};
pub use content::UsageOverride;
pub use faults::{FaultEndpoint, FaultParseError, FaultRule, FaultSpec};
pub use ledger::{key_hash, GenerationTruth, KeyTotals};
pub use pricing::{compute_cost, format_number, Cost, TokenCounts};
pub use server::{OpenRouterSim, SimHandle, TlsOptions};
