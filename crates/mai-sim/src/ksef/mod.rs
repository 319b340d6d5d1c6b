//! A local KSeF 2.0 (Poland's national e-invoicing system) built from the Ministry of
//! Finance's contract, `shared/schemas/ksef-api/open-api.json`, and its docs: what
//! `README.md` beside this file lists as simulated, not simulated, and deviating.
//!
//! # In tests
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mai_sim::ksef::{FaultEndpoint, FaultRule, KsefConfig, KsefSim, TokenSpec};
//! let sim = KsefSim::spawn(KsefConfig {
//!     tokens: vec![TokenSpec::new("5265877635", "my-ksef-token")],
//!     ..KsefConfig::default()
//! })
//! .await?;
//! let base = sim.base_url(); // "http://127.0.0.1:PORT/v2", like https://api-test.ksef.mf.gov.pl/v2
//! sim.add_fault(FaultRule::too_many_requests(FaultEndpoint::SendInvoice, 3, 1));
//! sim.add_fault(FaultRule::reject_invoices(440, 1));
//! // ... the client under test runs ...
//! let issued = sim.accepted(); // seller NIP, P_2, RodzajFaktury, KSeF number, XML
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! * Tokens: [`KsefConfig::tokens`], [`KsefSim::register_token`], `POST /__sim/tokens`,
//!   `mai-sim ksef --token NIP=TOKEN`.
//! * Ground truth: [`KsefSim::accepted`] / `GET /__sim/accepted`, and every invoice
//!   with its status: [`KsefSim::invoices`] / `GET /__sim/invoices`.
//! * Clock: [`KsefSim::set_now`], [`KsefSim::advance`], [`KsefSim::freeze_clock`]
//!   (`POST /__sim/clock`); token expiry, challenge expiry, session validity and the
//!   100 → 150 → 200 progression all follow it.
//! * Faults: [`FaultRule`] ([`KsefSim::add_fault`], `POST /__sim/faults`, the
//!   `X-Sim-Fault` header); grammar in [`faults`].

mod api;
pub mod config;
pub mod crypto;
mod errors;
pub mod faults;
pub mod ids;
pub mod invoice;
mod model;
mod server;
mod upo;

pub use config::{KsefConfig, Permission, Timing, TokenParseError, TokenSpec};
pub use crypto::KeyUsage;
pub use faults::{FaultEndpoint, FaultParseError, FaultRule, FaultSpec};
pub use ids::{crc8, ksef_number_is_valid};
pub use model::{AcceptedInvoice, SentInvoice};
pub use server::KsefSim;
pub use upo::UPO_NAMESPACE;
