//! The simulated DigitalOcean API v2 (list by tag with pagination, get, create single and
//! multiple, delete, get action) and the control endpoints under `/_sim/`. JSON follows
//! `tests/fixtures/digitalocean-openapi/`; every API response carries the rate-limit headers.
//! Every API request is recorded (method, path, query, body, status) — never its headers, so
//! the token appears nowhere.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::{Faults, NextLink};
use super::fleet::{hostname_part, mix, CreateSpec, Status};
use super::serve;
use super::Shared;
use crate::do_api::model::{ActionLink, ApiErrorBody, Pages};

/// Largest request body read.
const MAX_BODY: usize = 1024 * 1024;
/// Most droplets one create request may ask for.
const MAX_NAMES: usize = 10;
pub(crate) const RATE_LIMIT: u64 = 5000;

/// A response before the fault transformations and the common headers.
struct Out {
    status: StatusCode,
    body: Option<Value>,
}

impl Out {
    fn json(status: StatusCode, body: Value) -> Out {
        Out {
            status,
            body: Some(body),
        }
    }
    fn empty(status: StatusCode) -> Out {
        Out { status, body: None }
    }
    fn error(status: StatusCode, id: &str, message: impl Into<String>) -> Out {
        let body = ApiErrorBody {
            id: id.into(),
            message: message.into(),
            request_id: None,
        };
        Out::json(
            status,
            serde_json::to_value(body).expect("an error body serialises"),
        )
    }
}

/// The one entry point of the API listener.
pub(crate) async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path == "/_sim" || path.starts_with("/_sim/") {
        return control(sh, req).await;
    }
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let authorized = bearer_present(req.headers());
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let out = Out::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "The request body is too large.",
            );
            return finish(&sh, &method, &path, &query, Value::Null, out, None).await;
        }
    };
    // Carry the request through even if the client goes away meanwhile, as a real API would:
    // a create that was received happens.
    let task = tokio::spawn(api_request(sh, method, path, query, authorized, body));
    task.await.unwrap_or_else(|_| {
        let mut r = Response::new(Body::from("internal error"));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// `Authorization: Bearer <something>`. The value is looked at here and nowhere else.
fn bearer_present(h: &HeaderMap) -> bool {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            Some(scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        })
        .unwrap_or(false)
}

fn parse_body(body: &Bytes) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

async fn api_request(
    sh: Arc<Shared>,
    method: Method,
    path: String,
    query: String,
    authorized: bool,
    body: Bytes,
) -> Response {
    let (fail, extra_latency, create_latency) = {
        let mut st = sh.lock();
        let fail = if st.faults.api_failing() {
            st.fault_count += 1;
            st.faults.api_fails(st.fault_count)
        } else {
            None
        };
        (
            fail,
            st.faults.api_latency_ms.unwrap_or(0),
            st.faults.create_latency_ms.unwrap_or(0),
        )
    };
    let delay = sh.latency + Duration::from_millis(extra_latency);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let json_body = parse_body(&body);
    let out = if let Some(status) = fail {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        match status.as_u16() {
            429 => Out::error(status, "too_many_requests", "API Rate limit exceeded."),
            500 => Out::error(
                status,
                "server_error",
                "Server was unable to give you a response.",
            ),
            503 => Out::error(
                status,
                "service_unavailable",
                "The service is temporarily unavailable.",
            ),
            _ => Out::error(
                status,
                "error",
                status.canonical_reason().unwrap_or("error"),
            ),
        }
    } else if !authorized {
        Out::error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unable to authenticate you.",
        )
    } else {
        route(&sh, &method, &path, &query, &body, &json_body).await
    };
    let is_create = method == Method::POST && path.trim_end_matches('/') == "/v2/droplets";
    // Logged before the create's extra delay: a client that dies meanwhile still finds its
    // request (and the droplets it made) in /_sim/requests.
    let resp = finish(&sh, &method, &path, &query, json_body, out, fail).await;
    if is_create && fail.is_none() && create_latency > 0 {
        tokio::time::sleep(Duration::from_millis(create_latency)).await;
    }
    resp
}

/// Logs the request and builds the response: common headers, fault transformations.
async fn finish(
    sh: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &str,
    logged_body: Value,
    mut out: Out,
    fault: Option<u16>,
) -> Response {
    let now = Utc::now().timestamp().max(0) as u64;
    let (remaining, reset, request_id, malformed, truncated) = {
        let mut st = sh.lock();
        let window = now / 3600;
        if st.rate_window != window {
            st.rate_window = window;
            st.rate_count = 0;
        }
        st.rate_count += 1;
        let n = st.log.len() as u64;
        st.log.push(json!({
            "method": method.as_str(),
            "path": path,
            "query": query,
            "body": logged_body,
            "status": out.status.as_u16(),
        }));
        let h = mix(st.seed ^ mix(n) ^ 0xA5A5);
        let h2 = mix(h);
        let request_id = format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            h2 >> 52,
            h2 & 0xffff_ffff_ffff
        );
        (
            RATE_LIMIT.saturating_sub(st.rate_count),
            (window + 1) * 3600,
            request_id,
            st.faults.api_malformed,
            st.faults.api_truncated,
        )
    };
    if let Some(Value::Object(o)) = out.body.as_mut() {
        if out.status.is_client_error() || out.status.is_server_error() {
            o.insert("request_id".into(), Value::String(request_id.clone()));
        }
    }
    let mut bytes = out
        .body
        .as_ref()
        .map(|v| serde_json::to_vec(v).expect("JSON serialises"))
        .unwrap_or_default();
    if !bytes.is_empty() && malformed {
        bytes = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n".to_vec();
    } else if !bytes.is_empty() && truncated {
        bytes.truncate(bytes.len() / 2);
    }
    let has_body = !bytes.is_empty();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = out.status;
    let h = resp.headers_mut();
    if has_body {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    let rate_limited = fault == Some(429);
    h.insert("ratelimit-limit", HeaderValue::from(RATE_LIMIT));
    h.insert(
        "ratelimit-remaining",
        HeaderValue::from(if rate_limited { 0 } else { remaining }),
    );
    h.insert(
        "ratelimit-reset",
        HeaderValue::from(if rate_limited { now + 1 } else { reset }),
    );
    if rate_limited {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    resp
}

async fn route(
    sh: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &str,
    raw: &Bytes,
    body: &Value,
) -> Out {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    match (method, segs.as_slice()) {
        (&Method::GET, ["v2", "droplets"]) => list(sh, query),
        (&Method::POST, ["v2", "droplets"]) => create(sh, raw, body),
        (&Method::DELETE, ["v2", "droplets"]) => delete_by_tag(sh, query).await,
        (&Method::GET, ["v2", "droplets", id]) => get_droplet(sh, id),
        (&Method::DELETE, ["v2", "droplets", id]) => match id.parse::<u64>() {
            Ok(id) if serve::destroy(sh, id).await => Out::empty(StatusCode::NO_CONTENT),
            _ => not_found(),
        },
        (&Method::GET, ["v2", "actions", id]) => get_action(sh, id),
        (&Method::GET, ["v2", "monitoring", "metrics", "droplet", metric]) => {
            let offset = Utc::now().timestamp_micros() as f64 / 1e6 - sh.t();
            let (status, body) =
                super::monitoring::droplet_metric(&sh.lock(), metric, query, |u| u as f64 - offset);
            Out::json(status, body)
        }
        (_, ["v2", "droplets"] | ["v2", "droplets", _] | ["v2", "actions", _]) => Out::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed on this resource.",
        ),
        _ => not_found(),
    }
}

fn not_found() -> Out {
    Out::error(
        StatusCode::NOT_FOUND,
        "not_found",
        "The resource you were accessing could not be found.",
    )
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn list(sh: &Arc<Shared>, query: &str) -> Out {
    let q = query_pairs(query);
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let tag = get("tag_name");
    let name = get("name");
    let per_page = get("per_page")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20)
        .clamp(1, 200);
    let page = get("page")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let st = sh.lock();
    let faults = &st.faults;
    // An API that caps `per_page` serves smaller pages than asked (links stay truthful).
    let size = faults.page_size.map_or(per_page, |n| n.min(per_page));
    // Eventual consistency: droplets younger than the lag are not listed yet.
    let listed_from = Utc::now()
        - chrono::Duration::milliseconds(
            st.faults.list_lag_ms.unwrap_or(0).min(i64::MAX as u64) as i64
        );
    let matching: Vec<_> = st
        .droplets
        .values()
        .filter(|d| st.faults.list_lag_ms.is_none() || d.created_at <= listed_from)
        .filter(|d| tag.as_ref().is_none_or(|t| d.tags.contains(t)))
        .filter(|d| name.as_ref().is_none_or(|n| &d.name == n))
        .collect();
    let total = matching.len() as u64;
    let last = total.div_ceil(size).max(1);
    // `next_link: "endless"`: past the last page, the pages start again from the first.
    let served = match faults.next_link {
        Some(NextLink::Endless) => (page - 1) % last + 1,
        _ => page,
    };
    let mut droplets: Vec<Value> = matching
        .iter()
        .skip((served.saturating_sub(1).saturating_mul(size)) as usize)
        .take(size as usize)
        .map(|d| st.droplet_json(d))
        .collect();
    if faults.duplicate_ids {
        if let Some(first) = droplets.first().cloned() {
            droplets.push(first);
        }
    }
    let link_on = |base: &str, p: u64| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("page", &p.to_string());
        s.append_pair("per_page", &per_page.to_string());
        if let Some(t) = &tag {
            s.append_pair("tag_name", t);
        }
        if let Some(n) = &name {
            s.append_pair("name", n);
        }
        format!("{base}/v2/droplets?{}", s.finish())
    };
    let link = |p: u64| link_on(&sh.api_base, p);
    let next = match faults.next_link {
        None => (page < last).then(|| link(page + 1)),
        Some(NextLink::Itself) => Some(link(page)),
        Some(NextLink::Endless) => Some(link(page + 1)),
        Some(NextLink::Foreign) => Some(link_on(
            &sh.api_base.replacen("127.0.0.1", "127.0.0.2", 1),
            page + 1,
        )),
    };
    let pages = Pages {
        first: (page > 1).then(|| link(1)),
        prev: (page > 1).then(|| link((page - 1).min(last))),
        last: next.as_ref().map(|_| link(last)),
        next,
    };
    let pages = serde_json::to_value(pages).expect("pages serialise");
    let links = if pages.as_object().is_some_and(|o| o.is_empty()) {
        json!({})
    } else {
        json!({ "pages": pages })
    };
    Out::json(
        StatusCode::OK,
        json!({ "droplets": droplets, "links": links, "meta": { "total": total } }),
    )
}

fn get_droplet(sh: &Arc<Shared>, id: &str) -> Out {
    let st = sh.lock();
    match id.parse::<u64>().ok().and_then(|id| st.droplets.get(&id)) {
        Some(d) => Out::json(StatusCode::OK, json!({ "droplet": st.droplet_json(d) })),
        None => not_found(),
    }
}

fn get_action(sh: &Arc<Shared>, id: &str) -> Out {
    let st = sh.lock();
    match id.parse::<u64>().ok().and_then(|id| st.actions.get(&id)) {
        Some(a) => Out::json(StatusCode::OK, json!({ "action": st.action_json(a) })),
        None => not_found(),
    }
}

async fn delete_by_tag(sh: &Arc<Shared>, query: &str) -> Out {
    let Some(tag) = query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "tag_name")
        .map(|(_, v)| v)
    else {
        return Out::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
            "tag_name is required to delete droplets by tag.",
        );
    };
    let ids: Vec<u64> = sh
        .lock()
        .droplets
        .values()
        .filter(|d| d.tags.contains(&tag))
        .map(|d| d.id)
        .collect();
    for id in ids {
        serve::destroy(sh, id).await;
    }
    Out::empty(StatusCode::NO_CONTENT)
}

fn unprocessable(msg: impl Into<String>) -> Out {
    Out::error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
        msg,
    )
}

/// A valid hostname: labels of letters, digits and hyphens separated by dots, starting and
/// ending with a letter or digit (the spec's `^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$`,
/// read as a hostname).
pub(crate) fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
}

const KNOWN_REGIONS: [&str; 14] = [
    "ams3", "ams2", "blr1", "fra1", "lon1", "nyc1", "nyc2", "nyc3", "sfo1", "sfo2", "sfo3", "sgp1",
    "syd1", "tor1",
];

/// Checks a create body roughly as the real API does (`droplet_single_create` /
/// `droplet_multi_create`, plus a region).
pub(crate) fn validate_create(body: &Value) -> Result<CreateSpec, String> {
    let o = body
        .as_object()
        .ok_or("The request body must be a JSON object.")?;
    let names: Vec<String> = match (o.get("names"), o.get("name")) {
        (Some(Value::Array(a)), _) => {
            if a.is_empty() {
                return Err("names must not be empty.".into());
            }
            if a.len() > MAX_NAMES {
                return Err(format!(
                    "You may only create up to {MAX_NAMES} Droplets at a time, {} were requested.",
                    a.len()
                ));
            }
            a.iter()
                .map(|n| {
                    n.as_str()
                        .map(String::from)
                        .ok_or_else(|| "names must be an array of strings.".to_string())
                })
                .collect::<Result<_, _>>()?
        }
        (Some(_), _) => return Err("names must be an array of strings.".into()),
        (None, Some(Value::String(n))) => vec![n.clone()],
        (None, Some(_)) => return Err("name must be a string.".into()),
        (None, None) => return Err("You must specify a name (or names) for the Droplet.".into()),
    };
    for n in &names {
        if !valid_hostname(n) {
            return Err(format!(
                "Name {n:?} is invalid: only letters, digits, periods and dashes are allowed, and it must start and end with a letter or digit."
            ));
        }
    }
    let size = match o.get("size") {
        Some(Value::String(s))
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            s.clone()
        }
        Some(_) => return Err("You specified an invalid size for Droplet creation.".into()),
        None => return Err("size is required.".into()),
    };
    let image = match o.get("image") {
        Some(Value::String(s)) if !s.is_empty() => Value::String(s.clone()),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Value::Number(n.clone()),
        Some(_) => return Err("You specified an invalid image for Droplet creation.".into()),
        None => return Err("image is required.".into()),
    };
    let region = match o.get("region") {
        Some(Value::String(r)) => match KNOWN_REGIONS
            .iter()
            .find(|k| *k == r || k.starts_with(r.as_str()) && r.len() >= 3)
        {
            Some(k) => (*k).to_string(),
            None => return Err("You specified an invalid region for Droplet creation.".into()),
        },
        Some(_) => return Err("You specified an invalid region for Droplet creation.".into()),
        None => return Err("region is required.".into()),
    };
    let tags = match o.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            let mut tags = Vec::new();
            for t in a {
                match t.as_str() {
                    Some(t) if valid_tag(t) => tags.push(t.to_string()),
                    _ => return Err(format!("Tag {t} is invalid: tags hold letters, digits, colons, dashes and underscores.")),
                }
            }
            tags
        }
        Some(_) => return Err("tags must be an array of strings.".into()),
    };
    for key in [
        "backups",
        "ipv6",
        "monitoring",
        "private_networking",
        "with_droplet_agent",
        "public_networking",
    ] {
        if o.get(key).is_some_and(|v| !v.is_boolean() && !v.is_null()) {
            return Err(format!("{key} must be a boolean."));
        }
    }
    for key in ["ssh_keys", "volumes"] {
        if o.get(key).is_some_and(|v| !v.is_array() && !v.is_null()) {
            return Err(format!("{key} must be an array."));
        }
    }
    if let Some(u) = o.get("user_data") {
        match u.as_str() {
            Some(s) if s.len() <= 64 * 1024 => {}
            Some(_) => return Err("user_data may not exceed 64 KiB.".into()),
            None if u.is_null() => {}
            None => return Err("user_data must be a string.".into()),
        }
    }
    let vpc_uuid = match o.get("vpc_uuid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("vpc_uuid must be a string.".into()),
    };
    Ok(CreateSpec {
        names,
        region,
        size,
        image,
        tags,
        monitoring: o
            .get("monitoring")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        vpc_uuid,
    })
}

fn create(sh: &Arc<Shared>, raw: &Bytes, body: &Value) -> Out {
    if serde_json::from_slice::<Value>(raw).is_err() {
        return Out::error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The request body is not valid JSON.",
        );
    }
    let spec = match validate_create(body) {
        Ok(s) => s,
        Err(m) => return unprocessable(m),
    };
    let single = body.get("names").is_none();
    let (droplets, links) = {
        let mut st = sh.lock();
        let made = st.create(&spec, Utc::now());
        let droplets: Vec<Value> = made
            .iter()
            .filter_map(|(id, _)| st.droplets.get(id))
            .map(|d| st.droplet_json(d))
            .collect();
        let links: Vec<ActionLink> = made
            .iter()
            .map(|(_, a)| ActionLink {
                id: *a,
                rel: "create".into(),
                href: format!("{}/v2/actions/{a}", sh.api_base),
            })
            .collect();
        for (id, _) in &made {
            tokio::spawn(serve::activate_later(sh.clone(), *id));
        }
        (droplets, links)
    };
    let links = json!({ "actions": links });
    if single {
        let d = droplets.into_iter().next().unwrap_or(Value::Null);
        Out::json(
            StatusCode::ACCEPTED,
            json!({ "droplet": d, "links": links }),
        )
    } else {
        Out::json(
            StatusCode::ACCEPTED,
            json!({ "droplets": droplets, "links": links }),
        )
    }
}

// ---------------------------------------------------------------------------------------
// Control and inspection: /_sim/...

fn sim_json(status: StatusCode, v: Value) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(&v).expect("JSON serialises")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn sim_empty() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

fn sim_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let id = if status == StatusCode::NOT_FOUND {
        "not_found"
    } else {
        "bad_request"
    };
    sim_json(status, json!({ "id": id, "message": msg.into() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    demand: f64,
}

/// The demand and every droplet's utilization.
pub(crate) fn load_json(sh: &Shared) -> Value {
    let st = sh.lock();
    let (u, per) = st.fleet_utilization();
    let droplets: Vec<Value> = st
        .droplets
        .values()
        .map(|d| {
            let ud = if d.status == Status::Active { (u * (1.0 + d.jitter)).clamp(0.0, 1.0) } else { 0.0 };
            json!({ "id": d.id, "name": d.name, "status": if d.status == Status::Active { "active" } else { "new" }, "utilization": ud })
        })
        .collect();
    json!({
        "demand": st.demand,
        "active": st.active_count(),
        "utilization": u,
        "load_per_vcpu": per,
        "droplets": droplets,
    })
}

async fn control(sh: Arc<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let Ok(raw) = axum::body::to_bytes(req.into_body(), MAX_BODY).await else {
        return sim_error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let segs: Vec<&str> = path.split('/').skip(2).collect();
    // A body as `T`, or the 400 that says why not.
    fn body_as<T: serde::de::DeserializeOwned>(raw: &[u8], what: &str) -> Result<T, String> {
        serde_json::from_slice(raw).map_err(|e| format!("{what}: {e}"))
    }
    match (&method, segs.as_slice()) {
        (&Method::GET, ["requests"]) => {
            let log = Value::Array(sh.lock().log.clone());
            sim_json(StatusCode::OK, log)
        }
        (&Method::DELETE, ["requests"]) => {
            sh.lock().log.clear();
            sim_empty()
        }
        (&Method::GET, ["load"]) => sim_json(StatusCode::OK, load_json(&sh)),
        (&Method::PUT | &Method::POST, ["load"]) => {
            let body: LoadBody = match body_as(&raw, "load: want {\"demand\": d}") {
                Ok(b) => b,
                Err(m) => return sim_error(StatusCode::BAD_REQUEST, m),
            };
            if !body.demand.is_finite() || body.demand < 0.0 {
                return sim_error(
                    StatusCode::BAD_REQUEST,
                    "load: demand must be a finite number >= 0",
                );
            }
            sh.lock().set_demand(body.demand, sh.t());
            sim_json(StatusCode::OK, load_json(&sh))
        }
        (&Method::GET, ["faults"]) => {
            let f = sh.lock().faults.clone();
            sim_json(
                StatusCode::OK,
                serde_json::to_value(f).expect("faults serialise"),
            )
        }
        (&Method::PUT | &Method::POST, ["faults"]) => {
            let faults: Faults = match body_as(&raw, "faults") {
                Ok(b) => b,
                Err(m) => return sim_error(StatusCode::BAD_REQUEST, m),
            };
            if let Err(m) = faults.validate() {
                return sim_error(StatusCode::BAD_REQUEST, format!("faults: {m}"));
            }
            serve::apply_faults(&sh, faults.clone()).await;
            sim_json(
                StatusCode::OK,
                serde_json::to_value(faults).expect("faults serialise"),
            )
        }
        (&Method::DELETE, ["faults"]) => {
            serve::apply_faults(&sh, Faults::default()).await;
            sim_empty()
        }
        (&Method::GET, ["droplets"]) => {
            let st = sh.lock();
            let list: Vec<Value> = st
                .droplets
                .values()
                .map(|d| {
                    json!({
                        "id": d.id,
                        "name": d.name,
                        "status": if d.status == Status::Active { "active" } else { "new" },
                        "tags": d.tags,
                        "address": d.addr.to_string(),
                        "metrics_url": format!("http://{}:{}/metrics", d.addr, sh.metrics_port),
                        "created_at": super::fleet::api_time(&d.created_at),
                    })
                })
                .collect();
            sim_json(StatusCode::OK, Value::Array(list))
        }
        (&Method::DELETE, ["droplets", id]) => match id.parse::<u64>() {
            Ok(id) if serve::destroy(&sh, id).await => sim_empty(),
            _ => sim_error(StatusCode::NOT_FOUND, format!("no droplet {id}")),
        },
        (&Method::PUT, ["droplets", id, "tags"]) => {
            let tags: Vec<String> = match body_as(&raw, "tags: want a list of strings") {
                Ok(b) => b,
                Err(m) => return sim_error(StatusCode::BAD_REQUEST, m),
            };
            let mut st = sh.lock();
            match id
                .parse::<u64>()
                .ok()
                .and_then(|id| st.droplets.get_mut(&id))
            {
                Some(d) => {
                    d.tags = tags;
                    let d = d.clone();
                    sim_json(StatusCode::OK, st.droplet_json(&d))
                }
                None => sim_error(StatusCode::NOT_FOUND, format!("no droplet {id}")),
            }
        }
        (_, ["redirected"]) => {
            sh.lock().log.push(json!({
                "method": "GET",
                "path": "/_sim/redirected",
                "query": query,
                "body": Value::Null,
                "status": 200,
            }));
            let mut r = Response::new(Body::from(
                "# doscale sim: a droplet redirected here; a scraper should not follow redirects\n",
            ));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::GET, [] | [""]) => sim_json(
            StatusCode::OK,
            json!({
                "api": sh.api_base,
                "metrics_port": sh.metrics_port,
                "endpoints": [
                    "GET /_sim/requests", "DELETE /_sim/requests",
                    "GET /_sim/load", "PUT /_sim/load {\"demand\": d}",
                    "GET /_sim/faults", "PUT /_sim/faults {...}", "DELETE /_sim/faults",
                    "GET /_sim/droplets", "DELETE /_sim/droplets/{id}",
                    "PUT /_sim/droplets/{id}/tags [\"tag\", ...]",
                ],
            }),
        ),
        _ => sim_error(
            StatusCode::NOT_FOUND,
            format!("no simulator endpoint {method} {path}"),
        ),
    }
}

/// Suggested name prefix for new droplets of the group.
pub(crate) fn name_prefix(tag: &str) -> String {
    hostname_part(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(valid_hostname("web-1"));
        assert!(valid_hostname("sub-01.example.com"));
        assert!(!valid_hostname("-web"));
        assert!(!valid_hostname("web_1"));
        assert!(!valid_hostname(""));
        assert!(!valid_hostname("a..b"));
        assert!(!valid_hostname(&"a".repeat(64)));
    }

    #[test]
    fn create_bodies_are_validated() {
        let ok = json!({"names": ["web-4", "web-5"], "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", "tags": ["web"]});
        let spec = validate_create(&ok).unwrap();
        assert_eq!(spec.names, ["web-4", "web-5"]);
        assert_eq!(spec.tags, ["web"]);
        let single =
            json!({"name": "web-4", "region": "nyc", "size": "s-1vcpu-1gb", "image": 12345});
        assert_eq!(validate_create(&single).unwrap().region, "nyc1");
        let eleven: Vec<String> = (0..11).map(|i| format!("w-{i}")).collect();
        for bad in [
            json!({"names": eleven, "region": "nyc3", "size": "s", "image": "x"}),
            json!({"names": [], "region": "nyc3", "size": "s", "image": "x"}),
            json!({"name": "web_1", "region": "nyc3", "size": "s", "image": "x"}),
            json!({"name": "web-1", "size": "s", "image": "x"}),
            json!({"name": "web-1", "region": "nyc3", "image": "x"}),
            json!({"name": "web-1", "region": "nyc3", "size": "s"}),
            json!({"name": "web-1", "region": "mars1", "size": "s", "image": "x"}),
            json!({"name": "web-1", "region": "nyc3", "size": "s", "image": "x", "tags": "web"}),
            json!({"region": "nyc3", "size": "s", "image": "x"}),
            json!([1, 2]),
        ] {
            assert!(validate_create(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert!(!bearer_present(&h));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(!bearer_present(&h));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(!bearer_present(&h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(bearer_present(&h));
    }
}
