//! Scraping a group: list its droplets through the API (page by page) and fetch every active
//! droplet's do-agent page concurrently, while the next pages are still being listed.
//!
//! Bounds that keep a pass predictable: at most `concurrency` requests in flight; one
//! deadline per droplet covering connect, headers, body and the reading of the page (a
//! droplet that trickles bytes, or serves a page slow to read, cannot stall the pass); a cap
//! on the body size and on the series a page may hold (`max_series`); no redirects; never a
//! link-local, multicast or unspecified address, whatever the API lists.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use color_eyre::eyre::{eyre, WrapErr};
use color_eyre::Result;
use futures::stream::{FuturesUnordered, StreamExt};
use indicatif::ProgressBar;

use crate::config::Group;
use crate::do_api::model::Droplet;
use crate::do_api::DoApi;
use crate::exposition::{self, Keep};
use crate::model::{Scrape, ScrapedDroplet};

/// The series the load table shows, kept whatever the policies reference.
pub const TABLE_FAMILIES: [&str; 4] = [
    "node_load1",
    "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
];

/// Keeps what a group's expressions reference plus the load table's series.
pub struct GroupKeep<'a> {
    group: &'a Group,
    all: bool,
    /// Every family kept: the expressions' metric names and [`TABLE_FAMILIES`].
    names: BTreeSet<String>,
}

impl<'a> GroupKeep<'a> {
    /// The expressions' metric names are gathered once per scrape, not looked up per line.
    pub fn new(group: &'a Group, all: bool) -> Self {
        let mut names = group.referenced_families();
        names.extend(TABLE_FAMILIES.iter().map(|s| s.to_string()));
        GroupKeep { group, all, names }
    }
}

impl Keep for GroupKeep<'_> {
    fn name(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }
    fn series(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        if self.all {
            return true;
        }
        let table = match name {
            "node_cpu_seconds_total" => labels.iter().any(|(k, v)| *k == "mode" && *v == "idle"),
            n => TABLE_FAMILIES.contains(&n),
        };
        table
            || self
                .group
                .policies
                .iter()
                .flat_map(|p| &p.conditions)
                .any(|c| c.expr.wants(name, labels))
            || self
                .group
                .target
                .as_ref()
                .is_some_and(|t| t.expr.wants(name, labels))
    }
}

/// Totals of one pass, for logs and the textfile.
#[derive(Debug, Default)]
pub struct Stats {
    pub listed: AtomicU64,
    pub scraped_ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Scrapes one group. `Err` only when the API listing fails: droplets that fail to scrape are
/// data (their `error`), not a failure of the pass.
pub fn scrape_group(
    api: &dyn DoApi,
    group: &Group,
    all: bool,
    progress: Option<&ProgressBar>,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Scrape> {
    let started = now();
    let keep = GroupKeep::new(group, all);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(group.metrics.timeout)
        .connect_timeout(group.metrics.timeout)
        .pool_max_idle_per_host(0)
        .user_agent(crate::do_api::user_agent())
        .build()
        .wrap_err("building the HTTP client for scrapes")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("starting the scrape runtime")?;

    // The listing runs on this thread (the blocking API client must stay off the runtime);
    // pages go to the scrapers through a channel so scraping starts with the first page.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Droplet>>();
    let metrics = group.metrics.clone();
    let protect = group.protect_tag.clone();
    let stats = Arc::new(Stats::default());
    let st = stats.clone();
    let pb = progress.cloned();
    let keep_ref: &GroupKeep<'_> = &keep;

    let (droplets, listing) = std::thread::scope(|s| {
        let scraper = s.spawn(move || {
            runtime.block_on(async move {
                let sem = Arc::new(tokio::sync::Semaphore::new(metrics.concurrency));
                let mut tasks = FuturesUnordered::new();
                let mut results: Vec<Option<ScrapedDroplet>> = Vec::new();
                let mut bad_lines = 0u64;
                let mut bad_example: Option<String> = None;
                let mut open = true;
                loop {
                    tokio::select! {
                        page = rx.recv(), if open => match page {
                            Some(page) => {
                                for d in page {
                                    let idx = results.len();
                                    results.push(None);
                                    st.listed.fetch_add(1, Ordering::Relaxed);
                                    if let Some(pb) = &pb { pb.inc_length(1); }
                                    let client = client.clone();
                                    let sem = sem.clone();
                                    let metrics = metrics.clone();
                                    let protect = protect.clone();
                                    tasks.push(async move {
                                        let r = scrape_one(&client, &sem, &metrics, protect.as_deref(), d, keep_ref).await;
                                        (idx, r)
                                    });
                                }
                            }
                            None => open = false,
                        },
                        Some((idx, (r, bad, example))) = tasks.next(), if !tasks.is_empty() => {
                            bad_lines += bad;
                            if bad_example.is_none() { bad_example = example; }
                            if r.error.is_some() { st.failed.fetch_add(1, Ordering::Relaxed); } else { st.scraped_ok.fetch_add(1, Ordering::Relaxed); }
                            if let Some(pb) = &pb { pb.inc(1); }
                            results[idx] = Some(r);
                        }
                        else => break,
                    }
                    if !open && tasks.is_empty() {
                        break;
                    }
                }
                (results.into_iter().flatten().collect::<Vec<_>>(), bad_lines, bad_example)
            })
        });
        let listing = api.list_by_tag(&group.tag, &mut |page| {
            let _ = tx.send(page);
        });
        drop(tx);
        (scraper.join(), listing)
    });
    listing.wrap_err_with(|| {
        format!(
            "listing the droplets of group {} (tag {})",
            group.name, group.tag
        )
    })?;
    let (mut droplets, bad_lines, bad_line_example) =
        droplets.map_err(|_| eyre!("a scrape task panicked"))?;
    // A droplet listed twice (it moved between pages while we listed) counts once.
    let mut seen = std::collections::HashSet::new();
    droplets.retain(|d| seen.insert(d.id));
    Ok(Scrape {
        at: started,
        droplets,
        bad_lines,
        bad_line_example,
    })
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

async fn scrape_one(
    client: &reqwest::Client,
    sem: &tokio::sync::Semaphore,
    m: &crate::config::Metrics,
    protect: Option<&str>,
    d: Droplet,
    keep: &dyn Keep,
) -> (ScrapedDroplet, u64, Option<String>) {
    let (mut out, ip) = listed(&d, m, protect);
    let Some(ip) = ip else {
        return (out, 0, None);
    };
    let url = match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{}{}", m.port, m.path),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}{}", m.port, m.path),
    };
    let _permit = sem.acquire().await.expect("semaphore open");
    // One deadline for the fetch and the reading of the page: a page that is slow to read
    // costs no more than one that is slow to arrive.
    let deadline = tokio::time::Instant::now() + m.timeout;
    let timed_out = || format!("timed out after {}", humantime::format_duration(m.timeout));
    let fetched = tokio::time::timeout_at(deadline, fetch(client, &url, m.max_body)).await;
    let body = match fetched {
        Err(_) => Err(timed_out()),
        Ok(r) => r,
    };
    let limits = exposition::Limits {
        max_series: m.max_series,
        deadline: Some(deadline.into_std()),
    };
    let (bad, example) = read_page(&mut out, body, keep, limits, timed_out);
    (out, bad, example)
}

/// What a scrape records of a listed droplet before its page is read, and the address to read
/// it from: `None` when the page is not read (a droplet not active yet, without error; one
/// without an address, or with one never scraped, with its error).
/// A listed droplet as every source stores it, before any metrics: id, name, status,
/// creation time, the configured address, whether it carries the protect tag.
pub fn head(d: &Droplet, m: &crate::config::Metrics, protect: Option<&str>) -> ScrapedDroplet {
    ScrapedDroplet {
        id: d.id,
        name: d.name.as_str().into(),
        status: d.status.as_str().into(),
        created_at: parse_time(&d.created_at),
        address: d.address(m.address).map(Into::into),
        error: None,
        protected: protect.is_some_and(|t| d.tags.iter().any(|x| x == t)),
        series: Default::default(),
    }
}

pub fn listed(
    d: &Droplet,
    m: &crate::config::Metrics,
    protect: Option<&str>,
) -> (ScrapedDroplet, Option<IpAddr>) {
    let address = d.address(m.address);
    let mut out = head(d, m, protect);
    if d.status != "active" {
        return (out, None);
    }
    let Some(addr) = address else {
        out.error = Some(format!("no {:?} address listed by the API", m.address).to_lowercase());
        return (out, None);
    };
    let ip: IpAddr = match addr.parse() {
        Ok(ip) => ip,
        Err(_) => {
            out.error = Some(format!(
                "the API lists an address that is not an IP: {}",
                crate::output::sanitize(&addr)
            ));
            return (out, None);
        }
    };
    if let Some(why) = crate::net::forbidden(ip) {
        out.error = Some(format!("address {ip} is {why}: not scraped"));
        return (out, None);
    }
    (out, Some(ip))
}

/// Reads a fetched page (or why it could not be fetched) into the droplet's series, or its
/// error; returns the count of lines not read faithfully and the first of them.
pub fn read_page(
    out: &mut ScrapedDroplet,
    body: std::result::Result<Vec<u8>, String>,
    keep: &dyn Keep,
    limits: exposition::Limits,
    timed_out: impl Fn() -> String,
) -> (u64, Option<String>) {
    match body.and_then(|b| {
        String::from_utf8(b)
            .map_err(|_| "the page is not UTF-8 text: not a Prometheus exposition".to_string())
    }) {
        Err(e) => out.error = Some(e),
        Ok(text) => match exposition::parse_limited(&text, keep, limits) {
            Err(exposition::Refused::TimedOut) => {
                out.error = Some(format!("{} (while reading the page)", timed_out()))
            }
            Err(e @ exposition::Refused::TooManySeries { .. }) => {
                tracing::warn!(
                    "droplet {} ({}): {e}",
                    crate::output::sanitize(&out.name),
                    out.id
                );
                out.error = Some(e.to_string());
            }
            Err(e) => out.error = Some(e.to_string()),
            Ok(p) => {
                if p.bad_lines > 0 {
                    tracing::debug!(
                        droplet = out.id,
                        bad = p.bad_lines,
                        "lines not read faithfully"
                    );
                }
                out.series = p.series;
                return (p.bad_lines, p.bad_example);
            }
        },
    }
    (0, None)
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    max_body: usize,
) -> std::result::Result<Vec<u8>, String> {
    let mut resp = client.get(url).send().await.map_err(|e| describe(&e))?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(format!("HTTP {} redirect: not followed", status.as_u16()));
    }
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    if let Some(len) = resp.content_length() {
        if len as usize > max_body {
            return Err(format!(
                "the page is {len} bytes, above the {max_body}-byte limit"
            ));
        }
    }
    let mut body = Vec::with_capacity(
        resp.content_length()
            .unwrap_or(16 * 1024)
            .min(max_body as u64) as usize,
    );
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > max_body {
            return Err(format!("the page is larger than the {max_body}-byte limit"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error in words, without the URL (the caller names it once).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    let detail = root.to_string();
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        if detail.contains("refused") {
            "connection refused".into()
        } else {
            format!("cannot connect: {detail}")
        }
    } else {
        format!("request failed: {detail}")
    }
}
