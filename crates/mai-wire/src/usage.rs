//! Usage vocabulary shared by the ledger, the tracker's API and the console.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A text that names none of an enum's variants (a ledger row or query written by a
/// newer or broken program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}` is not one of {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for UnknownVariant {}

/// Token counts of one generation or a sum of them. `prompt` includes `cached`,
/// `completion` includes `reasoning`; `total` = prompt + completion, sent so readers
/// need not know that rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TokenCounts {
    pub prompt: u64,
    pub completion: u64,
    pub reasoning: u64,
    pub cached: u64,
    pub total: u64,
}

/// Who made the request, as far as the chat app told us (Open WebUI's forwarded
/// headers or the request's `user` field). Any part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl UserRef {
    pub fn is_unknown(&self) -> bool {
        self.id.is_none() && self.email.is_none() && self.name.is_none()
    }
    /// Fills what `self` lacks from `older`: a reconciliation record knows only
    /// OpenRouter's `external_user`, the proxy knew the e-mail and name.
    pub fn or(self, older: &UserRef) -> UserRef {
        UserRef {
            id: self.id.or_else(|| older.id.clone()),
            email: self.email.or_else(|| older.email.clone()),
            name: self.name.or_else(|| older.name.clone()),
        }
    }
    /// The key rollups group users by: the id, else the e-mail, else "" (unknown).
    pub fn key(&self) -> &str {
        self.id.as_deref().or(self.email.as_deref()).unwrap_or("")
    }
    /// What a person reads: the name, else the e-mail, else the id.
    pub fn label(&self) -> Option<&str> {
        self.name
            .as_deref()
            .or(self.email.as_deref())
            .or(self.id.as_deref())
    }
}

/// Where a record came from. Also its authority when two records of one generation
/// disagree (see `mai_core::usage::UsageEvent::authority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Proxy,
    Webhook,
    Manual,
    Reconciliation,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Proxy => "proxy",
            Source::Webhook => "webhook",
            Source::Manual => "manual",
            Source::Reconciliation => "reconciliation",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "proxy" => Source::Proxy,
            "webhook" => Source::Webhook,
            "manual" => Source::Manual,
            "reconciliation" => Source::Reconciliation,
            _ => {
                return Err(UnknownVariant {
                    field: "source",
                    value: s.into(),
                    expected: "proxy, webhook, manual or reconciliation",
                })
            }
        })
    }
}

/// Provisional: cost not yet confirmed against OpenRouter's generation record (the
/// proxy's stream usage, or nothing at all when the stream was cut). Confirmed: equals
/// the generation record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    Provisional,
    Confirmed,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Provisional => "provisional",
            EventState::Confirmed => "confirmed",
        }
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventState {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "provisional" => Ok(EventState::Provisional),
            "confirmed" => Ok(EventState::Confirmed),
            _ => Err(UnknownVariant {
                field: "state",
                value: s.into(),
                expected: "provisional or confirmed",
            }),
        }
    }
}
