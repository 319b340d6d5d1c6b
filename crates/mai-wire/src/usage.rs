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
    /// A user whose personal data was erased (GDPR art. 17): the id is a pseudonym
    /// starting with [`ERASED_USER_PREFIX`], e-mail and name are gone. The ledger keeps
    /// such a user as it is when a later record of the same generation (reconciliation,
    /// a late proxy record) brings the identity back.
    pub fn is_erased(&self) -> bool {
        self.id
            .as_deref()
            .is_some_and(|id| id.starts_with(ERASED_USER_PREFIX))
    }
    /// The pseudonymous user that replaces an erased person: `pseudonym` as the id,
    /// nothing else.
    pub fn erased(pseudonym: &str) -> UserRef {
        UserRef {
            id: Some(pseudonym.to_owned()),
            email: None,
            name: None,
        }
    }
}

/// Prefix of the pseudonym an erased person's usage is kept under
/// (`erased-<32 hex digits>`, random, so it cannot be computed back from the person).
pub const ERASED_USER_PREFIX: &str = "erased-";

/// What the chat app told us about a request besides who sent it: Open WebUI's chat
/// id (`X-OpenWebUI-Chat-Id`), the background task (custom header `X-Mai-Task` filled
/// with `{{TASK}}`) and the user's groups (custom header `X-Mai-User-Groups` filled with
/// `{{USER_GROUPS}}`). Kept per event so cost can be shown per chat, per kind of
/// request (the user's own message against title/tags/follow-up generation, which are
/// separate paid calls) and per group (department). Every part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ChatContext {
    /// Open WebUI's chat id; `null` for requests outside a chat (or not told).
    #[serde(default)]
    pub chat_id: Option<String>,
    /// [`TASK_CHAT`] for the user's own message (the task header present and empty),
    /// else Open WebUI's task name (`title_generation`, `tags_generation`, ...);
    /// `null` when the chat app did not send the task header at all (not configured,
    /// or an event recorded before the header existed), so an unconfigured chat app
    /// never passes its background calls off as the users' own messages.
    #[serde(default)]
    pub task: Option<String>,
    /// The user's group names, trimmed, sorted, deduplicated, joined with ", ";
    /// `null` when the user is in no group or the chat app did not say.
    #[serde(default)]
    pub groups: Option<String>,
}

/// [`ChatContext::task`] of the user's own message (Open WebUI's `{{TASK}}` empty).
/// Open WebUI has no task of this name, so it cannot be mistaken for one.
pub const TASK_CHAT: &str = "chat";

impl ChatContext {
    pub fn is_empty(&self) -> bool {
        self.chat_id.is_none() && self.task.is_none() && self.groups.is_none()
    }
    /// Fills what `self` lacks from `older`, as [`UserRef::or`]: a reconciliation
    /// record knows nothing of the chat, the proxy did.
    pub fn or(self, older: &ChatContext) -> ChatContext {
        ChatContext {
            chat_id: self.chat_id.or_else(|| older.chat_id.clone()),
            task: self.task.or_else(|| older.task.clone()),
            groups: self.groups.or_else(|| older.groups.clone()),
        }
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
