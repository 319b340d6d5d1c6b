//! mai-ksef: the client of KSeF 2.0, Poland's national e-invoicing system (the Ministry of
//! Finance's API, `shared/specs/ksef-api.md` and `shared/schemas/ksef-api/open-api.json`).
//!
//! An invoice is issued when KSeF gives it a number; this crate is the edge where that
//! happens: authentication with the seller's KSeF token, an online session with a fresh
//! AES key, each FA(3) invoice encrypted and sent, its status followed to a KSeF number
//! or a typed rejection, and its UPO receipt fetched. Pure helpers for the printed side:
//! [`ksef_number_is_valid`] and [`qr_url`] (KOD I). See the README for the flow, the
//! limits and what a retry may do.

mod auth;
mod client;
pub mod config;
mod crypto;
mod error;
mod http;
pub mod limits;
mod number;
mod qr;
mod session;
mod token;
mod wire;

pub use client::{
    Accepted, InvoiceState, InvoiceStatus, KsefClient, Outcome, OutgoingInvoice, SendProgress,
};
pub use config::{Environment, KsefConfig};
pub use error::{
    ApiProblem, KsefError, PendingInvoice, ProblemEntry, Rejection, RejectionKind, SendError,
};
pub use limits::{Limit, RateLimits};
pub use number::ksef_number_is_valid;
pub use qr::qr_url;
pub use token::KsefToken;
