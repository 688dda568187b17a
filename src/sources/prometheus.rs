//! The Prometheus source: a Prometheus-compatible query API (Prometheus, Thanos, Mimir,
//! VictoriaMetrics) evaluates the group's expressions, one instant query per distinct
//! expression per pass whatever the size of the group (see `expr::group` for the rewrite
//! into a group query), plus one query for the load table's series.
//!
//! The droplets are still listed through the DigitalOcean API. Each active droplet's result
//! goes into its series map under the reserved keys of `series::expr_value_key` (its value)
//! or `series::expr_error_key` (why there is none: the server refused the query, warned,
//! timed out, or has no series for the droplet); `policy` reads them instead of evaluating.
//! When no query at all could be made (the server down, a credential file unreadable) every
//! active droplet carries the reason as its `error`: no data, so no scale-down.
//!
//! Credentials (bearer token file, basic auth file, headers) go into request headers only:
//! never into a message, a log line or the state.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use color_eyre::Result;
use indicatif::ProgressBar;
use serde::Deserialize;

use crate::config::{Group, Prometheus};
use crate::do_api::model::Droplet;
use crate::do_api::DoApi;
use crate::expr::group::{alternatives, group_query};
use crate::model::{AddressKind, Scrape, ScrapedDroplet};
use crate::series::{self, SeriesMap};

/// A query longer than this is sent as a POST form (a long droplet matcher would overflow
/// a URL limit of some proxy on the way).
const GET_MAX: usize = 1500;

/// The most a response body may hold.
const BODY_MAX: u64 = 64 * 1024 * 1024;

/// The load table's series, in one query: load1, memory, and the idle CPU counters (the CPU
/// % is their rate between two passes, as with the scrape source).
const TABLE_QUERY: &str = r#"{__name__=~"node_load1|node_memory_MemAvailable_bytes|node_memory_MemTotal_bytes|node_cpu_seconds_total",mode=~"|idle"}"#;

/// The labels of the load table's series that are kept (target labels such as `job` and
/// the droplet label are dropped, so the keys are do-agent's).
const TABLE_LABELS: [&str; 2] = ["cpu", "mode"];

/// Fills one group's scrape from the query API at `now`.
pub fn scrape_group(
    api: &dyn DoApi,
    group: &Group,
    cfg: &Prometheus,
    progress: Option<&ProgressBar>,
    now: DateTime<Utc>,
) -> Result<Scrape> {
    let listing = super::list_group(api, group)?;
    let mut droplets: Vec<ScrapedDroplet> = listing.iter().map(|d| listed(d, group)).collect();
    if let Some(pb) = progress {
        pb.set_length(droplets.len() as u64);
    }
    // The droplet label's value of each active droplet that has one.
    let mut by_value: HashMap<String, usize> = HashMap::new();
    for (i, d) in droplets.iter_mut().enumerate() {
        if d.status != "active" {
            continue;
        }
        match match_value(d, group, cfg) {
            Ok(v) => {
                by_value.insert(v, i);
            }
            Err(why) => d.error = Some(why),
        }
    }
    let values: Vec<&str> = {
        let mut v: Vec<&str> = by_value.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    };
    if values.is_empty() {
        return Ok(finish(droplets, now, progress));
    }
    let matcher = alternatives(values.iter().copied());

    let client = match Client::new(cfg) {
        Ok(c) => c,
        Err(why) => {
            fail_all(&mut droplets, &by_value, &format!("prometheus: {why}"));
            return Ok(finish(droplets, now, progress));
        }
    };

    // Each distinct expression once, and the table; all at once.
    let mut texts: Vec<&str> = group.exprs().map(|e| e.text()).collect();
    texts.sort_unstable();
    texts.dedup();
    let queries: Vec<Result<String, String>> = texts
        .iter()
        .map(|t| group_query(t, &cfg.droplet_label, &matcher))
        .chain(std::iter::once(group_query(
            TABLE_QUERY,
            &cfg.droplet_label,
            &matcher,
        )))
        .collect();
    let answers: Vec<Result<Answer, Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .iter()
            .map(|q| {
                let client = &client;
                s.spawn(move || match q {
                    Ok(q) => client.query(q, now),
                    Err(why) => Err(Failure::Query(why.clone())),
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Failure::Query("the query thread panicked".into())))
            })
            .collect()
    });
    let (exprs, table) = answers.split_at(texts.len());

    // The server could not be reached at all (or refused every query the same way): no data
    // for any droplet, with the reason.
    if answers
        .iter()
        .all(|a| matches!(a, Err(Failure::Unreachable(_))))
    {
        if let Some(Err(f)) = answers.first() {
            fail_all(
                &mut droplets,
                &by_value,
                &format!("prometheus at {}: {f}", cfg.url),
            );
            return Ok(finish(droplets, now, progress));
        }
    }

    for (text, answer) in texts.iter().zip(exprs) {
        match answer {
            Err(f) => {
                let key: series::Key = series::expr_error_key(text, &f.to_string()).into();
                for &i in by_value.values() {
                    droplets[i].series.insert(key.clone(), f64::NAN);
                }
            }
            Ok(a) => assign(text, a, &mut droplets, &by_value, cfg),
        }
    }
    match &table[0] {
        Ok(a) => {
            for s in &a.series {
                let Some(&i) = s
                    .labels
                    .get(&cfg.droplet_label)
                    .and_then(|v| by_value.get(v))
                else {
                    continue;
                };
                let Some(name) = s.labels.get("__name__") else {
                    continue;
                };
                let key = series::key(
                    name,
                    s.labels
                        .iter()
                        .filter(|(k, _)| TABLE_LABELS.contains(&k.as_str()))
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
                droplets[i].series.insert(key.into(), s.value);
            }
        }
        Err(f) => tracing::warn!(
            "group {}: the load table's series could not be read from {}: {f}",
            group.name,
            cfg.url
        ),
    }
    Ok(finish(droplets, now, progress))
}

/// The scrape of the listed droplets.
fn finish(
    droplets: Vec<ScrapedDroplet>,
    at: DateTime<Utc>,
    progress: Option<&ProgressBar>,
) -> Scrape {
    if let Some(pb) = progress {
        pb.set_position(droplets.len() as u64);
    }
    Scrape {
        at,
        droplets,
        bad_lines: 0,
        bad_line_example: None,
    }
}

fn fail_all(droplets: &mut [ScrapedDroplet], active: &HashMap<String, usize>, why: &str) {
    for &i in active.values() {
        droplets[i].error = Some(why.to_string());
        droplets[i].series = SeriesMap::new();
    }
}

/// One droplet as listed (what the load table and the planner need of it).
fn listed(d: &Droplet, group: &Group) -> ScrapedDroplet {
    crate::scrape::head(d, &group.metrics, group.protect_tag.as_deref())
}

/// The droplet label's value that names `d` in Prometheus: its id, or `address:port`.
fn match_value(d: &ScrapedDroplet, group: &Group, cfg: &Prometheus) -> Result<String, String> {
    if !cfg.by_instance() {
        return Ok(d.id.to_string());
    }
    let m = &group.metrics;
    let Some(addr) = d.address.as_deref() else {
        return Err(format!(
            "no {:?} address listed by the API, so no instance label to find it by",
            m.address
        )
        .to_lowercase());
    };
    Ok(match m.address {
        AddressKind::Ipv6 => format!("[{addr}]:{}", m.port),
        _ => format!("{addr}:{}", m.port),
    })
}

/// Stores one expression's answer in each droplet's series.
fn assign(
    text: &str,
    a: &Answer,
    droplets: &mut [ScrapedDroplet],
    by_value: &HashMap<String, usize>,
    cfg: &Prometheus,
) {
    let value_key: series::Key = series::expr_value_key(text).into();
    if let Some(v) = a.scalar {
        for &i in by_value.values() {
            droplets[i].series.insert(value_key.clone(), v);
        }
        return;
    }
    let mut per: HashMap<usize, Vec<f64>> = HashMap::new();
    for s in &a.series {
        if let Some(&i) = s
            .labels
            .get(&cfg.droplet_label)
            .and_then(|v| by_value.get(v))
        {
            per.entry(i).or_default().push(s.value);
        }
    }
    let missing: series::Key = series::expr_error_key(
        text,
        &format!(
            "the source has no series of this expression for the droplet (no series with its {} label, or none within Prometheus' lookback)",
            cfg.droplet_label
        ),
    )
    .into();
    for &i in by_value.values() {
        match per.get(&i).map(Vec::as_slice) {
            Some([v]) => {
                droplets[i].series.insert(value_key.clone(), *v);
            }
            Some(many) if many.len() > 1 => {
                let why = format!(
                    "the source returned {} series for the droplet: wrap the expression in sum/avg/min/max/count",
                    many.len()
                );
                droplets[i]
                    .series
                    .insert(series::expr_error_key(text, &why).into(), f64::NAN);
            }
            _ => {
                droplets[i].series.insert(missing.clone(), f64::NAN);
            }
        }
    }
}

/// Why a query gave no answer.
#[derive(Debug, Clone)]
enum Failure {
    /// No answer from the server (connection refused, timed out, TLS, 5xx): the source is
    /// down or unreachable.
    Unreachable(String),
    /// The server answered but refused or qualified the query (bad query, warnings).
    Query(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(s) | Failure::Query(s) => f.write_str(s),
        }
    }
}

/// One series of an answer: its labels and value.
struct Point {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// An instant query's answer: a vector, or a scalar.
struct Answer {
    series: Vec<Point>,
    scalar: Option<f64>,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

/// A sample value as the API writes it: a string, `NaN` and `±Inf` included.
fn sample(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

/// Text from the server, made safe and short for a reason.
fn short(s: &str) -> String {
    let s = crate::clean::sanitize(s);
    if s.chars().count() > 200 {
        let mut t: String = s.chars().take(200).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

/// The query API client of one pass.
struct Client {
    http: reqwest::blocking::Client,
    endpoint: String,
    auth: Option<reqwest::header::HeaderValue>,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
}

/// Reads a credential file: its content trimmed, the reason in words otherwise (never the
/// content).
pub fn read_credential(path: &Path) -> std::result::Result<String, String> {
    let (bytes, _) = crate::secret::read_regular_file(path, crate::secret::TOKEN_FILE_MAX)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{}: not text", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    if t.contains(['\n', '\r']) {
        return Err(format!(
            "{}: more than one line: put the credential alone in it",
            path.display()
        ));
    }
    Ok(t.to_string())
}

/// The `Authorization` header of the configuration's bearer token or basic auth file.
pub fn authorization(
    cfg: &Prometheus,
) -> std::result::Result<Option<reqwest::header::HeaderValue>, String> {
    use base64_engine::encode;
    let value = if let Some(p) = &cfg.bearer_token_file {
        let t = read_credential(p).map_err(|e| format!("bearer_token_file {e}"))?;
        format!("Bearer {t}")
    } else if let Some(p) = &cfg.basic_auth_file {
        let t = read_credential(p).map_err(|e| format!("basic_auth_file {e}"))?;
        if !t.contains(':') {
            return Err(format!(
                "basic_auth_file {}: expected user:password on one line",
                p.display()
            ));
        }
        format!("Basic {}", encode(t.as_bytes()))
    } else {
        return Ok(None);
    };
    let mut v = reqwest::header::HeaderValue::from_str(&value)
        .map_err(|_| "the credential file holds characters a header cannot carry".to_string())?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// Standard base64 (RFC 4648), for the basic auth header.
mod base64_engine {
    pub fn encode(input: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            out.push(T[(n >> 18) as usize & 63] as char);
            out.push(T[(n >> 12) as usize & 63] as char);
            out.push(if chunk.len() > 1 {
                T[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if chunk.len() > 2 {
                T[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }
}

impl Client {
    fn new(cfg: &Prometheus) -> std::result::Result<Client, String> {
        let mut b = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .user_agent(crate::do_api::user_agent());
        if let Some(ca) = &cfg.ca_file {
            let (pem, _) = crate::secret::read_regular_file(ca, 4 * 1024 * 1024)
                .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("ca_file {}: not PEM certificates: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "ca_file {}: holds no PEM certificate",
                    ca.display()
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &cfg.headers {
            let n = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header {name}: not a header name"))?;
            let mut v = reqwest::header::HeaderValue::from_str(&value.0)
                .map_err(|_| format!("header {name}: not a valid header value"))?;
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(Client {
            http,
            endpoint: format!("{}/api/v1/query", cfg.url),
            auth: authorization(cfg)?,
            headers,
            timeout: cfg.timeout,
        })
    }

    /// One instant query at `at`.
    fn query(&self, q: &str, at: DateTime<Utc>) -> std::result::Result<Answer, Failure> {
        let time = format!("{:.3}", at.timestamp_millis() as f64 / 1000.0);
        // The server's own deadline, a little inside ours, so that a slow query comes back
        // as its timeout error rather than as a dropped connection.
        let server_timeout = format!(
            "{}ms",
            (self.timeout.as_millis() as u64)
                .saturating_sub(200)
                .max(100)
        );
        let params = [("query", q), ("time", &time), ("timeout", &server_timeout)];
        let req = if q.len() > GET_MAX {
            self.http.post(&self.endpoint).form(&params)
        } else {
            self.http.get(&self.endpoint).query(&params)
        };
        let mut req = req.headers(self.headers.clone());
        if let Some(a) = &self.auth {
            req = req.header(reqwest::header::AUTHORIZATION, a.clone());
        }
        let resp = req.send().map_err(|e| Failure::Unreachable(describe(&e)))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Failure::Unreachable(format!(
                "HTTP {} redirect: not followed (give the final URL)",
                status.as_u16()
            )));
        }
        if resp.content_length().is_some_and(|n| n > BODY_MAX) {
            return Err(Failure::Query(format!(
                "the answer is larger than {BODY_MAX} bytes"
            )));
        }
        let body = resp
            .bytes()
            .map_err(|e| Failure::Unreachable(describe(&e)))?;
        let env: Option<Envelope> = serde_json::from_slice(&body).ok();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let detail = env
                .as_ref()
                .and_then(|e| e.error.as_deref())
                .map(|e| format!(": {}", short(e)))
                .unwrap_or_default();
            // A query the server gave up on (its timeout) is the query's problem; other
            // server errors mean the source is not serving.
            let timeout = env
                .as_ref()
                .and_then(|e| e.error_type.as_deref())
                .is_some_and(|t| t == "timeout");
            let why = format!("HTTP {}{detail}", status.as_u16());
            return Err(if timeout {
                Failure::Query(why)
            } else {
                Failure::Unreachable(why)
            });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(Failure::Unreachable(format!(
                "HTTP {}: the query API refused the credentials (bearer_token_file, basic_auth_file, headers)",
                status.as_u16()
            )));
        }
        let Some(env) = env else {
            return Err(Failure::Unreachable(format!(
                "HTTP {}: the answer is not the query API's JSON (is url the Prometheus base URL?)",
                status.as_u16()
            )));
        };
        if env.status != "success" {
            return Err(Failure::Query(format!(
                "the query API refused the query ({}): {}",
                short(env.error_type.as_deref().unwrap_or("error")),
                short(env.error.as_deref().unwrap_or("no reason given"))
            )));
        }
        if !env.warnings.is_empty() {
            return Err(Failure::Query(format!(
                "the query API warned (the values may be partial, not used): {}",
                short(&env.warnings.join("; "))
            )));
        }
        let Some(data) = env.data else {
            return Err(Failure::Query("the answer has no data".into()));
        };
        match data.result_type.as_str() {
            "vector" => {
                let items: Vec<VectorItem> = serde_json::from_value(data.result)
                    .map_err(|e| Failure::Query(format!("the answer is malformed: {e}")))?;
                let series = items
                    .into_iter()
                    .filter_map(|it| {
                        sample(&it.value.1).map(|value| Point {
                            labels: it.metric,
                            value,
                        })
                    })
                    .collect();
                Ok(Answer {
                    series,
                    scalar: None,
                })
            }
            "scalar" => {
                let (_, v): (f64, String) = serde_json::from_value(data.result)
                    .map_err(|e| Failure::Query(format!("the answer is malformed: {e}")))?;
                Ok(Answer {
                    series: Vec::new(),
                    scalar: sample(&v),
                })
            }
            other => Err(Failure::Query(format!(
                "the answer is a {} where a vector was expected",
                short(other)
            ))),
        }
    }
}

/// A transport error in words (the scrape's wording), cut to a line.
fn describe(e: &reqwest::Error) -> String {
    short(&crate::scrape::describe(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64_engine::encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_engine::encode(b"a"), "YQ==");
        assert_eq!(base64_engine::encode(b"ab"), "YWI=");
    }

    #[test]
    fn samples_read_as_the_api_writes_them() {
        assert_eq!(sample("1.5"), Some(1.5));
        assert!(sample("NaN").unwrap().is_nan());
        assert_eq!(sample("+Inf"), Some(f64::INFINITY));
        assert_eq!(sample("x"), None);
    }
}
