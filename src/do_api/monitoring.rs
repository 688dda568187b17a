//! The monitoring endpoints of the API (`GET /v2/monitoring/metrics/droplet/*`, schema
//! `metrics` of `tests/fixtures/digitalocean-openapi/`) and the rate-limit headers every
//! response carries (`ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The endpoints doscale may ask, under `/v2/monitoring/metrics/droplet/`: the path of a
/// request is built only from these words.
pub const ENDPOINTS: [&str; 11] = [
    "bandwidth",
    "cpu",
    "filesystem_free",
    "filesystem_size",
    "load_1",
    "load_15",
    "load_5",
    "memory_available",
    "memory_cached",
    "memory_free",
    "memory_total",
];

/// One request to a monitoring endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricQuery {
    /// One of [`ENDPOINTS`].
    pub endpoint: &'static str,
    pub host_id: u64,
    /// Unix seconds.
    pub start: i64,
    pub end: i64,
    /// `bandwidth` only: `public` or `private`, `inbound` or `outbound`.
    pub interface: Option<&'static str>,
    pub direction: Option<&'static str>,
}

impl MetricQuery {
    /// The path and query, e.g.
    /// `/v2/monitoring/metrics/droplet/cpu?host_id=1&start=10&end=20`.
    pub fn path(&self) -> String {
        let mut q = format!(
            "/v2/monitoring/metrics/droplet/{}?host_id={}",
            self.endpoint, self.host_id
        );
        if let Some(i) = self.interface {
            q.push_str(&format!("&interface={i}"));
        }
        if let Some(d) = self.direction {
            q.push_str(&format!("&direction={d}"));
        }
        q.push_str(&format!("&start={}&end={}", self.start, self.end));
        q
    }
}

/// Schema `metrics`: `{"status": "success", "data": {"resultType": "matrix", "result": [...]}}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Metrics {
    pub status: String,
    pub data: MetricsData,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MetricsData {
    #[serde(rename = "resultType")]
    pub result_type: String,
    pub result: Vec<MetricsResult>,
}

/// One series: its labels and `[unix time, "value"]` pairs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MetricsResult {
    pub metric: BTreeMap<String, String>,
    pub values: Vec<(Stamp, Num)>,
}

/// A time as the API writes it: a whole number (the spec allows a string too).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Stamp(pub f64);

/// A value as the API writes it: a string holding a number (the spec allows an integer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Num(pub f64);

fn number<'de, D: serde::Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(f64),
        S(String),
    }
    match Either::deserialize(de)? {
        Either::N(n) => Ok(n),
        Either::S(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        number(de).map(Stamp)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        number(de).map(Num)
    }
}

/// What the rate-limit headers of the latest response said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in the API's hour window.
    pub limit: u64,
    /// Left of them.
    pub remaining: u64,
    /// Unix time the window starts over.
    pub reset: Option<u64>,
}

impl RateLimit {
    /// Reads the three headers; `None` unless both limit and remaining are whole numbers.
    pub fn from_headers(h: &reqwest::header::HeaderMap) -> Option<RateLimit> {
        let num = |name: &str| -> Option<u64> { h.get(name)?.to_str().ok()?.trim().parse().ok() };
        Some(RateLimit {
            limit: num("ratelimit-limit")?,
            remaining: num("ratelimit-remaining")?,
            reset: num("ratelimit-reset"),
        })
    }

    /// Requests already made in this window, by every client of the token.
    pub fn used(&self) -> u64 {
        self.limit.saturating_sub(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example_reads() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"host_id":"222651441","mode":"idle"},
             "values":[[1635386880,"122901.18"],[1635387000,"123020.92"]]}]}}"#;
        let m: Metrics = serde_json::from_str(body).unwrap();
        assert_eq!(m.data.result[0].metric["mode"], "idle");
        assert_eq!(m.data.result[0].values[1].0, Stamp(1635387000.0));
        assert_eq!(m.data.result[0].values[1].1, Num(123020.92));
        let bad = body.replace("\"123020.92\"", "\"lots\"");
        assert!(serde_json::from_str::<Metrics>(&bad).is_err());
    }

    #[test]
    fn paths_carry_the_documented_parameters() {
        let q = MetricQuery {
            endpoint: "bandwidth",
            host_id: 7,
            start: 100,
            end: 400,
            interface: Some("public"),
            direction: Some("inbound"),
        };
        assert_eq!(
            q.path(),
            "/v2/monitoring/metrics/droplet/bandwidth?host_id=7&interface=public&direction=inbound&start=100&end=400"
        );
    }
}
