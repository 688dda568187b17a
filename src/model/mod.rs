//! The plain data that flows between the stages (scrape → evaluate → plan → apply) and is
//! kept in the state file: a scrape and its droplets, the history of scale actions and their
//! outcomes, the operations on their way, recommendations, the operator's pause and size.
//! Imports nothing of doscale's: the core (`expr`, `policy`, `plan`) and the shell (`state`,
//! `scrape`, `apply`, the commands) both build on it (checked by `layers`).

pub mod series;

use std::fmt;

use chrono::{DateTime, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use self::series::SeriesMap;

/// The direction of a scale action (and of a policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    Up,
    Down,
}

/// Which of a droplet's addresses the metrics are scraped from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AddressKind {
    #[default]
    Private,
    Public,
    Ipv6,
}

/// One scrape of one group. Stored compactly: every series key once per scrape, each
/// droplet's values in that key order (see `state`'s `compact`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    pub at: DateTime<Utc>,
    pub droplets: Vec<ScrapedDroplet>,
    /// Lines of the expositions that could not be read faithfully (see `exposition`).
    pub bad_lines: u64,
    pub bad_line_example: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScrapedDroplet {
    pub id: u64,
    pub name: CompactString,
    pub status: CompactString,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<CompactString>,
    /// Why the scrape of this droplet failed (or why it was not scraped), `None` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Carries the group's `protect_tag`: never destroyed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    #[serde(default, skip_serializing_if = "SeriesMap::is_empty")]
    pub series: SeriesMap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the intent was recorded.
    pub at: DateTime<Utc>,
    pub direction: Scale,
    /// Names (create) or ids with names (destroy) of the droplets concerned.
    pub droplets: Vec<HistoryDroplet>,
    pub reason: String,
    pub outcome: ActionOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryDroplet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// `None` while on its way.
    pub outcome: Option<DropletOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingKind {
    Create,
    Destroy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOp {
    pub kind: PendingKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// When the intent was recorded.
    pub since: DateTime<Utc>,
    /// Where it stands.
    pub stage: Stage,
    /// A create whose droplet the API did not list (yet): the listings that missed it in a
    /// row. Such a create's outcome is unknown until its name is listed, or until enough
    /// listings over the API's consistency window missed it (`[api] consistency_window`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<Unseen>,
}

/// Consecutive listings that did not show a pending create's droplet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unseen {
    /// How many listings in a row.
    pub listings: u32,
    /// When the first and the last of them were made.
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub at: DateTime<Utc>,
    pub desired: u32,
}

impl ScrapedDroplet {
    /// Drops what only the latest scrape needs (name, status, creation time, address): a
    /// previous scrape is read for rates alone, and at thousands of droplets its size is
    /// read and synced to disk on every pass.
    pub fn keep_for_rates(&mut self) {
        self.name = CompactString::default();
        self.status = CompactString::default();
        self.created_at = DateTime::<Utc>::UNIX_EPOCH;
        self.address = None;
        self.protected = false;
    }
}

/// A pause of a group (`doscale pause`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paused {
    pub since: DateTime<Utc>,
    /// Who paused it, as far as the environment says (`$SUDO_USER`, `$USER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A size set by hand (`doscale set GROUP N`), like `kubectl scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualSize {
    pub desired: u32,
    /// When it was set: the plan that carries it out names it, and `apply` consumes only that
    /// request (a newer `set` made between plan and apply survives).
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Enums kept in the state file as the text they display as: fixed words, words with a
/// reason after them (`unhealthy: port 80: refused`), and any other text as it was read (a
/// file edited by hand, or written by a later doscale), so that every file reads and writes
/// back byte for byte.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            words { $( $(#[$wmeta:meta])* $word:ident = $text:literal, )* }
            reasons { $( $(#[$rmeta:meta])* $reason:ident = $prefix:literal, )* }
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$wmeta])* $word, )*
            $( $(#[$rmeta])* $reason(String), )*
            /// A text this doscale does not write, kept as it was read.
            Other(String),
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => return $name::$word, )*
                    _ => {}
                }
                $(
                    if let Some(why) = s.strip_prefix($prefix) {
                        return $name::$reason(why.to_string());
                    }
                )*
                $name::Other(s.to_string())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$word => f.write_str($text), )*
                    $( $name::$reason(why) => write!(f, "{}{why}", $prefix), )*
                    $name::Other(s) => f.write_str(s),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                ser.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        Ok($name::from(s))
                    }
                }
                de.deserialize_str(V)
            }
        }
    };
}

text_enum! {
    /// What became of a scale action as a whole (`HistoryEntry::outcome`).
    pub enum ActionOutcome {
        words {
            /// Recorded before its requests; some droplet has no outcome yet.
            Pending = "pending",
            /// Every droplet turned healthy, or is gone.
            Done = "done",
            /// Some droplets did, some did not.
            Partial = "partial",
            /// None did.
            Failed = "failed",
        }
        reasons {
            /// A hook refused it before any request.
            Cancelled = "cancelled: ",
        }
    }
}

text_enum! {
    /// What became of one droplet of a scale action (`HistoryDroplet::outcome`; `None` while
    /// on its way).
    pub enum DropletOutcome {
        words {
            /// Created, active, and passed the health check.
            Healthy = "healthy",
            /// Destroyed.
            Destroyed = "destroyed",
            /// Its destroy found it gone already (404).
            AlreadyGone = "already gone",
        }
        reasons {
            /// Created but failed the health check; why.
            Unhealthy = "unhealthy: ",
            /// Its create failed: refused, never active, disappeared.
            Failed = "failed: ",
            /// Its create was never listed over the consistency window: given up.
            NotCreated = "not created: ",
            /// Its pending destroy was not sent again (protected, left the group since).
            NotDestroyed = "not destroyed: ",
            /// A hook refused it before any request.
            Cancelled = "cancelled: ",
        }
    }
}

impl DropletOutcome {
    /// It was done: healthy, destroyed, or gone already.
    pub fn succeeded(&self) -> bool {
        matches!(
            self,
            DropletOutcome::Healthy | DropletOutcome::Destroyed | DropletOutcome::AlreadyGone
        )
    }
}

text_enum! {
    /// Where a pending operation stands (`PendingOp::stage`).
    pub enum Stage {
        words {
            /// Recorded, the request not (known to be) sent.
            Intent = "intent",
            /// Sent (a create: its droplet is listed, not yet active).
            Requested = "requested",
            /// A create whose request failed and whose droplet was not found: outcome unknown.
            Unknown = "unknown",
            /// A created droplet turned active, not yet health-checked.
            Active = "active",
            /// A created droplet passed its health check, not yet in a scrape.
            Healthy = "healthy",
        }
        reasons {}
    }
}

#[cfg(test)]
mod tests;
