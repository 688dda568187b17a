//! Fault injection: what `PUT /_sim/faults` sets. Every field is optional; a PUT replaces the
//! whole set (so `{}` clears every fault), and unknown fields are refused so that a typo in a
//! test does not silently inject nothing.

use serde::{Deserialize, Serialize};

/// The faults in force. Droplet lists hold droplet ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Status of failed API requests: 429, 500, 503 (any 4xx/5xx is accepted). 429s carry
    /// `retry-after: 1`. Without `api_fail_every`, every API request fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_status: Option<u16>,
    /// Every n-th API request (counted from the moment the faults are set, `/_sim/` excluded)
    /// fails with `api_status` (503 when `api_status` is not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_fail_every: Option<u64>,
    /// Extra delay of every API response, on top of `--latency-ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_latency_ms: Option<u64>,
    /// Eventual consistency: a droplet is left out of listings (`GET /v2/droplets`) until it
    /// is this many milliseconds old. `GET /v2/droplets/{id}` shows it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_lag_ms: Option<u64>,
    /// A slow create: `POST /v2/droplets` makes the droplets at once, then answers this many
    /// milliseconds later (a client that gives up or dies in between never learns their ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_latency_ms: Option<u64>,
    /// API response bodies are not JSON (an HTML error page).
    #[serde(default, skip_serializing_if = "is_false")]
    pub api_malformed: bool,
    /// API JSON bodies are cut in half (with a correct `Content-Length` of the cut body).
    #[serde(default, skip_serializing_if = "is_false")]
    pub api_truncated: bool,
    /// Connection refused: the droplet's listener is closed (reopened when the fault clears).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_refuse: Vec<u64>,
    /// The droplet accepts connections and reads requests but never answers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_timeout: Vec<u64>,
    /// 200 with a body that is not an exposition (HTML and binary bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_garbage: Vec<u64>,
    /// A valid response sent one byte every 200 ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_trickle: Vec<u64>,
    /// 200 with a 64 MiB streamed body of valid-looking lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_huge: Vec<u64>,
    /// 302 to `http://127.0.0.1:<api port>/_sim/redirected` (hits there are logged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_redirect: Vec<u64>,
    /// The API lists the droplet's private address as 169.254.169.254 (the metadata service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_linklocal: Vec<u64>,
    /// 200 with a valid page of [`MANY_SERIES`](super::metrics::MANY_SERIES) distinct
    /// `node_load1{n="…"}` series (under 4 MB: within the default `max_body`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub droplets_many_series: Vec<u64>,
    /// The droplet listing's `links.pages.next` misbehaves (see [`NextLink`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<NextLink>,
    /// Every page of the droplet listing carries its first droplet twice (at its start and
    /// at its end).
    #[serde(default, skip_serializing_if = "is_false")]
    pub duplicate_ids: bool,
    /// The listing serves at most this many droplets a page whatever `per_page` asks (links
    /// and `meta.total` stay truthful), as an API that caps `per_page` would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// Droplets created while this is set never turn active; their create action ends
    /// "errored" and the droplet is removed when it would have turned active.
    #[serde(default, skip_serializing_if = "is_false")]
    pub create_error: bool,
    /// Droplets created while this is set stay `new` for ever.
    #[serde(default, skip_serializing_if = "is_false")]
    pub never_active: bool,
}

/// How `links.pages.next` misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextLink {
    /// Every page names itself as the next one.
    #[serde(rename = "self")]
    Itself,
    /// The next page is on another host (`http://127.0.0.2:<port>`, same path and query):
    /// the token must never go there.
    Foreign,
    /// There is always a next page: past the last one the pages start again from the first
    /// (so the listing never ends and repeats droplets).
    Endless,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// How a droplet answers a metrics request under the current faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsFault {
    None,
    Timeout,
    Garbage,
    Trickle,
    Huge,
    Redirect,
    ManySeries,
}

impl Faults {
    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = self.api_status {
            if !(400..=599).contains(&s) {
                return Err(format!(
                    "api_status {s}: want an HTTP error status (429, 500, 503, ...)"
                ));
            }
        }
        if self.api_fail_every == Some(0) {
            return Err("api_fail_every must be at least 1".into());
        }
        if self.page_size == Some(0) {
            return Err("page_size must be at least 1".into());
        }
        Ok(())
    }

    /// Whether API requests are failed at all.
    pub(crate) fn api_failing(&self) -> bool {
        self.api_status.is_some() || self.api_fail_every.is_some()
    }

    /// Whether the `n`-th API request since the faults were set (1-based) fails, and with
    /// which status.
    pub(crate) fn api_fails(&self, n: u64) -> Option<u16> {
        if !self.api_failing() {
            return None;
        }
        let status = self.api_status.unwrap_or(503);
        match self.api_fail_every {
            Some(every) if !n.is_multiple_of(every) => None,
            _ => Some(status),
        }
    }

    pub(crate) fn refuses(&self, id: u64) -> bool {
        self.droplets_refuse.contains(&id)
    }

    pub(crate) fn linklocal(&self, id: u64) -> bool {
        self.droplets_linklocal.contains(&id)
    }

    pub(crate) fn metrics_fault(&self, id: u64) -> MetricsFault {
        if self.droplets_timeout.contains(&id) {
            MetricsFault::Timeout
        } else if self.droplets_garbage.contains(&id) {
            MetricsFault::Garbage
        } else if self.droplets_trickle.contains(&id) {
            MetricsFault::Trickle
        } else if self.droplets_huge.contains(&id) {
            MetricsFault::Huge
        } else if self.droplets_redirect.contains(&id) {
            MetricsFault::Redirect
        } else if self.droplets_many_series.contains(&id) {
            MetricsFault::ManySeries
        } else {
            MetricsFault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_clears_and_unknown_fields_are_refused() {
        let f: Faults = serde_json::from_str("{}").unwrap();
        assert_eq!(f, Faults::default());
        assert_eq!(serde_json::to_string(&f).unwrap(), "{}");
        assert!(serde_json::from_str::<Faults>(r#"{"droplets_refuze": [1]}"#).is_err());
    }

    #[test]
    fn fail_every_counts() {
        let f = Faults {
            api_status: Some(429),
            api_fail_every: Some(2),
            ..Default::default()
        };
        let fails: Vec<_> = (1..=4).map(|n| f.api_fails(n)).collect();
        assert_eq!(fails, vec![None, Some(429), None, Some(429)]);
        let all = Faults {
            api_status: Some(500),
            ..Default::default()
        };
        assert!((1..5).all(|n| all.api_fails(n) == Some(500)));
        assert_eq!(Faults::default().api_fails(1), None);
        assert!(Faults {
            api_status: Some(200),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
