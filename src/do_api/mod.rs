//! The DigitalOcean API v2 client, behind the small [`DoApi`] trait so the core and the
//! commands can be tested without HTTP. [`HttpApi`] is the real client (reqwest blocking,
//! rustls): pagination by `links.pages.next`, error bodies turned into clear errors, retries
//! of 429 (honouring `retry-after` / `ratelimit-reset`) and 5xx with bounded exponential
//! backoff and jitter. A create is never retried blindly: only a 429 (refused before any
//! work) is retried; anything else is left to the caller, which re-lists by tag and name.

pub mod model;
pub mod pages;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use reqwest::blocking::{Client, Response};
use reqwest::{Method, StatusCode};

use crate::secret::Secret;
use model::*;

pub const PER_PAGE: u32 = 200;
const MAX_ATTEMPTS: u32 = 6;
/// Longest single wait for a rate limit or backoff, whatever `retry-after` or
/// `ratelimit-reset` ask for (documented in docs/operations.md).
pub const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("DigitalOcean API {method} {path}: HTTP {status}{}", describe(.id, .message, .request_id))]
    Status {
        method: String,
        path: String,
        status: u16,
        id: Option<String>,
        message: Option<String>,
        request_id: Option<String>,
    },
    #[error("DigitalOcean API {method} {path}: {msg}")]
    Transport {
        method: String,
        path: String,
        msg: String,
    },
    #[error("DigitalOcean API GET {path}: {msg}")]
    Listing { path: String, msg: String },
    #[error(
        "DigitalOcean API {method} {path}: the response is not what the API documents ({msg})"
    )]
    Decode {
        method: String,
        path: String,
        msg: String,
    },
}

fn describe(id: &Option<String>, message: &Option<String>, request_id: &Option<String>) -> String {
    let mut s = String::new();
    if let Some(id) = id {
        s.push_str(&format!(" {}", crate::output::sanitize(id)));
    }
    if let Some(m) = message {
        s.push_str(&format!(": {}", crate::output::sanitize(m)));
    }
    if let Some(r) = request_id {
        s.push_str(&format!(" (request id {})", crate::output::sanitize(r)));
    }
    s
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// 401/403: the token is missing, wrong or lacks a scope.
    pub fn hint(&self) -> Option<&'static str> {
        match self.status() {
            Some(401) => Some("the API token was refused: check DIGITALOCEAN_TOKEN / token_file"),
            Some(403) => Some(
                "the API token lacks a scope: it needs droplet read (and create/delete to scale)",
            ),
            Some(429) => Some("rate limited by the API: run less often or fewer groups per pass"),
            _ => None,
        }
    }
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// 404: already gone.
    AlreadyGone,
}

/// The API operations doscale uses.
pub trait DoApi: Send + Sync {
    /// Every droplet with `tag`, page by page (`per_page=200`, following `links.pages.next`);
    /// `on_page` sees each page as soon as it arrives.
    fn list_by_tag(&self, tag: &str, on_page: &mut dyn FnMut(Vec<Droplet>))
        -> Result<(), ApiError>;

    /// All droplets with `tag` at once.
    fn list_all(&self, tag: &str) -> Result<Vec<Droplet>, ApiError> {
        let mut out = Vec::new();
        self.list_by_tag(tag, &mut |page| out.extend(page))?;
        Ok(out)
    }

    /// `GET /v2/droplets/{id}`; `None` on 404.
    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError>;

    /// `POST /v2/droplets` with `names`.
    fn create(&self, req: &CreateRequest) -> Result<CreateResponse, ApiError>;

    /// `DELETE /v2/droplets/{id}`; 404 is [`Deleted::AlreadyGone`].
    fn delete(&self, id: u64) -> Result<Deleted, ApiError>;

    /// `GET /v2/actions/{id}`.
    fn get_action(&self, id: u64) -> Result<Action, ApiError>;

    /// API errors seen so far (for the textfile metrics).
    fn error_count(&self) -> u64 {
        0
    }
}

/// The API of a stage that needs none (`evaluate`, `plan`): every call is refused, so a
/// stage that should not talk to DigitalOcean cannot, and needs no token.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

impl Offline {
    fn refuse(method: &str, path: String) -> ApiError {
        ApiError::Transport {
            method: method.into(),
            path,
            msg: "this stage does not talk to the API (a bug if you see this)".into(),
        }
    }
}

impl DoApi for Offline {
    fn list_by_tag(
        &self,
        tag: &str,
        _on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> Result<(), ApiError> {
        Err(Self::refuse("GET", format!("/v2/droplets?tag_name={tag}")))
    }
    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError> {
        Err(Self::refuse("GET", format!("/v2/droplets/{id}")))
    }
    fn create(&self, _req: &CreateRequest) -> Result<CreateResponse, ApiError> {
        Err(Self::refuse("POST", "/v2/droplets".into()))
    }
    fn delete(&self, id: u64) -> Result<Deleted, ApiError> {
        Err(Self::refuse("DELETE", format!("/v2/droplets/{id}")))
    }
    fn get_action(&self, id: u64) -> Result<Action, ApiError> {
        Err(Self::refuse("GET", format!("/v2/actions/{id}")))
    }
}

/// The real client.
pub struct HttpApi {
    base: reqwest::Url,
    token: Secret,
    client: Client,
    errors: AtomicU64,
}

impl std::fmt::Debug for HttpApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApi")
            .field("base", &self.base.as_str())
            .field("token", &self.token)
            .finish()
    }
}

pub fn user_agent() -> String {
    format!("doscale/{}", env!("CARGO_PKG_VERSION"))
}

impl HttpApi {
    pub fn new(base_url: &str, token: Secret, timeout: Duration) -> color_eyre::Result<HttpApi> {
        crate::net::check_api_url(base_url)
            .map_err(|m| color_eyre::eyre::eyre!("[api] url {base_url:?}: {m}"))?;
        let base = reqwest::Url::parse(base_url)?;
        let client = Client::builder()
            .user_agent(user_agent())
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(base.scheme() == "https")
            .no_proxy()
            .build()?;
        Ok(HttpApi {
            base,
            token,
            client,
            errors: AtomicU64::new(0),
        })
    }

    fn url(&self, path_and_query: &str) -> reqwest::Url {
        let mut u = self.base.clone();
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let prefix = self.base.path().trim_end_matches('/');
        u.set_path(&format!("{prefix}{path}"));
        u.set_query(query);
        u
    }

    /// One request with the retry policy. `idempotent = false` retries only 429.
    fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<Response, ApiError> {
        let path_only = path_and_query
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = self
                .client
                .request(method.clone(), self.url(path_and_query))
                .bearer_auth(self.token.expose())
                .header("Accept", "application/json");
            if let Some(b) = body {
                rb = rb.json(b);
            }
            tracing::debug!(method = %method, path = %path_and_query, attempt, "API request");
            let result = rb.send();
            let retry_wait = match &result {
                Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                    Some(rate_limit_wait(resp.headers()).unwrap_or_else(|| backoff(attempt)))
                }
                Ok(resp) if resp.status().is_server_error() && idempotent => Some(backoff(attempt)),
                Err(e) if idempotent && (e.is_connect() || e.is_timeout()) => {
                    Some(backoff(attempt))
                }
                _ => None,
            };
            if let (Some(wait), true) = (retry_wait, attempt < MAX_ATTEMPTS) {
                self.errors.fetch_add(1, Ordering::Relaxed);
                let what = match &result {
                    Ok(r) => format!("HTTP {}", r.status().as_u16()),
                    Err(e) => transport_msg(e),
                };
                tracing::warn!(
                        "DigitalOcean API {method} {path_only}: {what}; retrying in {:.1}s (attempt {attempt} of {MAX_ATTEMPTS})",
                        wait.as_secs_f64()
                    );
                std::thread::sleep(wait);
                continue;
            }
            return match result {
                Err(e) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    Err(ApiError::Transport {
                        method: method.to_string(),
                        path: path_only,
                        msg: transport_msg(&e),
                    })
                }
                Ok(resp) => Ok(resp),
            };
        }
    }

    fn error_from(&self, method: &Method, path: &str, resp: Response) -> ApiError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body: Option<ApiErrorBody> = resp
            .bytes()
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        ApiError::Status {
            method: method.to_string(),
            path: path.split('?').next().unwrap_or_default().to_string(),
            status,
            id: body.as_ref().map(|b| b.id.clone()),
            message: body.as_ref().map(|b| b.message.clone()),
            request_id: body.and_then(|b| b.request_id).or(request_id),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<T, ApiError> {
        let resp = self.send(method.clone(), path, body, idempotent)?;
        if !resp.status().is_success() {
            return Err(self.error_from(&method, path, resp));
        }
        let bytes = resp.bytes().map_err(|e| {
            self.errors.fetch_add(1, Ordering::Relaxed);
            ApiError::Transport {
                method: method.to_string(),
                path: strip_query(path),
                msg: format!("reading the body: {}", transport_msg(&e)),
            }
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.errors.fetch_add(1, Ordering::Relaxed);
            ApiError::Decode {
                method: method.to_string(),
                path: strip_query(path),
                msg: e.to_string(),
            }
        })
    }
}

fn strip_query(p: &str) -> String {
    p.split('?').next().unwrap_or_default().to_string()
}

/// reqwest's messages can carry the URL; ours never carry the token (it is a header), but
/// keep them short and single-line.
fn transport_msg(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// How long a 429 asks us to wait, jitter included, at most [`MAX_WAIT`]: see
/// [`rate_limit_wait_at`].
pub fn rate_limit_wait(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let wait = rate_limit_wait_at(
        h.get("retry-after").map(|v| v.as_bytes()),
        h.get("ratelimit-reset").map(|v| v.as_bytes()),
        std::time::SystemTime::now(),
    )?;
    // A little jitter so that several clients do not come back at the same instant.
    let jitter = rand::thread_rng().gen_range(0.0..0.25);
    Some((wait + Duration::from_secs_f64(jitter)).min(MAX_WAIT))
}

/// How long a 429 asks us to wait, read from the values of its `retry-after` header
/// (seconds, or an HTTP date) or else its `ratelimit-reset` header (a Unix time), and
/// always between zero and [`MAX_WAIT`]: whatever the numbers say (`1e20`, `inf`, a date
/// of the year 9999), doscale waits at most a minute before its next try. `None` when
/// neither header holds a number or a date (`NaN` included): the caller backs off instead.
/// A pure function of its input (the clock is passed in), fuzzed by `fuzz/` target `api`.
pub fn rate_limit_wait_at(
    retry_after: Option<&[u8]>,
    ratelimit_reset: Option<&[u8]>,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let text = |v: Option<&[u8]>| Some(std::str::from_utf8(v?).ok()?.trim().to_string());
    let now_secs = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let retry = text(retry_after).and_then(|t| match t.parse::<f64>() {
        Ok(secs) => bounded_secs(secs),
        // `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3).
        Err(_) => chrono::DateTime::parse_from_rfc2822(&t)
            .ok()
            .and_then(|at| bounded_secs(at.timestamp() as f64 - now_secs)),
    });
    retry.or_else(|| {
        let reset = text(ratelimit_reset)?.parse::<f64>().ok()?;
        bounded_secs(reset - now_secs)
    })
}

/// Seconds as a wait between zero and [`MAX_WAIT`]; `None` for NaN. (`Duration::from_secs_f64`
/// panics on a negative, infinite or too large number: it only ever sees a clamped one.)
fn bounded_secs(secs: f64) -> Option<Duration> {
    if secs.is_nan() {
        return None;
    }
    Some(Duration::from_secs_f64(
        secs.clamp(0.0, MAX_WAIT.as_secs_f64()),
    ))
}

/// Exponential backoff with full jitter: up to 0.5 s × 2^(attempt-1), at most 8 s.
pub fn backoff(attempt: u32) -> Duration {
    let cap = (0.5 * 2f64.powi(attempt.saturating_sub(1) as i32)).min(8.0);
    Duration::from_secs_f64(rand::thread_rng().gen_range(cap / 2.0..=cap))
}

impl DoApi for HttpApi {
    fn list_by_tag(
        &self,
        tag: &str,
        on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> Result<(), ApiError> {
        // The pager checks every page (pages.rs): a next link elsewhere, back to a page
        // already listed or past the total stops the listing; a droplet listed twice is
        // passed on once.
        let (mut pager, first) = pages::Pager::new(&self.base, tag, PER_PAGE);
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let path = format!("/v2/droplets?{}", url.query().unwrap_or_default());
            let list: DropletList = self.json(Method::GET, &path, None, true)?;
            let page = pager.page(list).map_err(|msg| {
                self.errors.fetch_add(1, Ordering::Relaxed);
                ApiError::Listing {
                    path: "/v2/droplets".into(),
                    msg,
                }
            })?;
            if !page.again.is_empty() {
                let ids: Vec<String> = page.again.iter().map(u64::to_string).collect();
                tracing::warn!(
                    "DigitalOcean API GET /v2/droplets (tag {}): droplet(s) {} listed more than once; each is counted once",
                    crate::output::sanitize(tag),
                    ids.join(", ")
                );
            }
            next = page.next;
            on_page(page.droplets);
        }
        Ok(())
    }

    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError> {
        match self.json::<DropletOne>(Method::GET, &format!("/v2/droplets/{id}"), None, true) {
            Ok(d) => Ok(Some(d.droplet)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(&self, req: &CreateRequest) -> Result<CreateResponse, ApiError> {
        let body = serde_json::to_value(req).expect("serialisable");
        self.json(Method::POST, "/v2/droplets", Some(&body), false)
    }

    fn delete(&self, id: u64) -> Result<Deleted, ApiError> {
        let path = format!("/v2/droplets/{id}");
        let resp = self.send(Method::DELETE, &path, None, true)?;
        match resp.status().as_u16() {
            200..=299 => Ok(Deleted::Deleted),
            404 => Ok(Deleted::AlreadyGone),
            _ => Err(self.error_from(&Method::DELETE, &path, resp)),
        }
    }

    fn get_action(&self, id: u64) -> Result<Action, ApiError> {
        Ok(self
            .json::<ActionOne>(Method::GET, &format!("/v2/actions/{id}"), None, true)?
            .action)
    }

    fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_grows() {
        for a in 1..20 {
            let b = backoff(a);
            assert!(b <= Duration::from_secs(8), "{b:?}");
        }
        assert!(backoff(1) <= Duration::from_millis(500));
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        let w = rate_limit_wait(&h).unwrap();
        assert!(
            w >= Duration::from_secs(2) && w < Duration::from_millis(2300),
            "{w:?}"
        );
        let mut h = reqwest::header::HeaderMap::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        h.insert("ratelimit-reset", (now + 3).to_string().parse().unwrap());
        let w = rate_limit_wait(&h).unwrap();
        assert!(
            w > Duration::from_secs(1) && w < Duration::from_secs(5),
            "{w:?}"
        );
    }

    #[test]
    fn every_rate_limit_header_is_a_bounded_wait() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let w = |retry: &str, reset: &str| {
            let opt = |s: &str| (!s.is_empty()).then(|| s.as_bytes().to_vec());
            let (r, z) = (opt(retry), opt(reset));
            rate_limit_wait_at(r.as_deref(), z.as_deref(), now)
        };
        for huge in [
            "1e20",
            "inf",
            "+Infinity",
            "99999999999999999999999999999999",
            "1e308",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(w(huge, ""), Some(MAX_WAIT), "retry-after {huge}");
        }
        for huge in ["1e20", "inf", "99999999999999999999999999999999"] {
            assert_eq!(w("", huge), Some(MAX_WAIT), "ratelimit-reset {huge}");
        }
        for small in ["-5", "-inf", "-1e300", "0", "Thu, 01 Jan 1970 00:00:00 GMT"] {
            assert_eq!(w(small, ""), Some(Duration::ZERO), "retry-after {small}");
        }
        for small in ["-inf", "1", "1799999999"] {
            assert_eq!(
                w("", small),
                Some(Duration::ZERO),
                "ratelimit-reset {small}"
            );
        }
        assert_eq!(w("2.5", ""), Some(Duration::from_millis(2500)));
        assert_eq!(w("", "1800000007"), Some(Duration::from_secs(7)));
        // a date 30 s ahead of the clock
        assert_eq!(
            w("Fri, 15 Jan 2027 08:00:30 GMT", ""),
            Some(Duration::from_secs(30))
        );
        // NaN and words are no wait at all: the caller backs off
        for none in ["NaN", "soon", "", "\u{0}"] {
            assert_eq!(w(none, ""), None, "{none:?}");
            assert_eq!(w("", none), None, "{none:?}");
        }
        assert_eq!(w("NaN", "1800000003"), Some(Duration::from_secs(3)));
        // through the header map, jitter included
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "1e20".parse().unwrap());
        assert_eq!(rate_limit_wait(&h), Some(MAX_WAIT));
    }

    #[test]
    fn status_error_reads_like_a_sentence() {
        let e = ApiError::Status {
            method: "GET".into(),
            path: "/v2/droplets".into(),
            status: 401,
            id: Some("unauthorized".into()),
            message: Some("Unable to authenticate you.".into()),
            request_id: Some("abc".into()),
        };
        assert_eq!(
            e.to_string(),
            "DigitalOcean API GET /v2/droplets: HTTP 401 unauthorized: Unable to authenticate you. (request id abc)"
        );
        assert!(e.hint().unwrap().contains("token"));
    }
}
