//! The droplets' side: one listening socket per active droplet on its own loopback address,
//! serving its exposition on any path over HTTP/1.1 with keep-alive, and the metrics faults
//! (timeout, garbage, trickle, huge, redirect). A droplet's accept loop owns its connections,
//! so aborting that one task closes the listener and every open connection at once (a
//! destroyed or refusing droplet disappears from the network immediately).
//!
//! The server is a small hand-written HTTP/1.1 responder rather than a framework: it must be
//! able to misbehave on purpose (never answer, answer byte by byte, answer endlessly), and a
//! few thousand listeners cost one task each. Latency is a timer, never a sleeping thread.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::faults::{Faults, MetricsFault};
use super::fleet::Status;
use super::metrics;
use super::Shared;

/// Content type of do-agent's page.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Longest request head we read.
const MAX_HEAD: usize = 16 * 1024;
/// Pause between two bytes of a trickled response.
const TRICKLE: Duration = Duration::from_millis(200);

pub(crate) async fn bind(addr: Ipv4Addr, port: u16) -> io::Result<TcpListener> {
    // tokio (mio) sets SO_REUSEADDR, so a listener closed by a fault can be reopened at once.
    TcpListener::bind(SocketAddr::from((addr, port))).await
}

/// Serves droplet `id` on `listener` until the returned task is aborted.
pub(crate) fn spawn_droplet(sh: &Arc<Shared>, id: u64, listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(accept_loop(sh.clone(), id, listener))
}

async fn accept_loop(sh: Arc<Shared>, id: u64, listener: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    conns.spawn(serve_conn(sh.clone(), id, sock));
                }
                // Out of descriptors or a transient error: back off a little, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// What matters of a request head.
struct Head {
    keep_alive: bool,
    head_only: bool,
}

/// Reads one request (head, and a body if one is announced) from `sock`; `buf` keeps bytes
/// of the next pipelined request. `None` at end of stream or on a broken request.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Head> {
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > MAX_HEAD {
            let _ = sock
                .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
            return None;
        }
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_string();
    let _target = parts.next()?;
    let version = parts.next().unwrap_or("HTTP/1.0");
    let mut keep_alive = version == "HTTP/1.1";
    let mut body_len = 0usize;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
        match k.as_str() {
            "connection" if v.contains("close") => keep_alive = false,
            "connection" if v.contains("keep-alive") => keep_alive = true,
            "content-length" => body_len = v.parse().ok()?,
            // A chunked request body is not something a scraper sends: refuse it plainly.
            "transfer-encoding" => return None,
            _ => {}
        }
    }
    // Drop the head and the body (read the rest of the body if it is not all here yet).
    let mut need = end + body_len;
    while buf.len() < need {
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    need = need.min(buf.len());
    buf.drain(..need);
    Some(Head {
        keep_alive,
        head_only: method == "HEAD",
    })
}

fn response_head(
    status: &str,
    content_type: &str,
    len: usize,
    keep_alive: bool,
    extra: &str,
) -> String {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nConnection: {conn}\r\n{extra}\r\n"
    )
}

async fn write_response(sock: &mut TcpStream, head: &str, body: &[u8], head_only: bool) -> bool {
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(body);
    }
    sock.write_all(&out).await.is_ok()
}

/// Keeps a connection open without answering until the peer gives up.
async fn hold(sock: &mut TcpStream) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = sock.read(&mut chunk).await {
        if n == 0 {
            break;
        }
    }
}

async fn serve_conn(sh: Arc<Shared>, id: u64, mut sock: TcpStream) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(req) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let fault = {
            let st = sh.lock();
            match st.droplets.get(&id) {
                Some(d) if d.status == Status::Active => st.faults.metrics_fault(id),
                _ => return,
            }
        };
        if fault == MetricsFault::Timeout {
            hold(&mut sock).await;
            return;
        }
        if !sh.latency.is_zero() {
            tokio::time::sleep(sh.latency).await;
        }
        let keep = req.keep_alive;
        let ok = match fault {
            MetricsFault::None | MetricsFault::Timeout => {
                let snap = sh.lock().snapshot(id, sh.t());
                let Some(snap) = snap else { return };
                let body = metrics::render(&snap);
                let head = response_head("200 OK", EXPOSITION, body.len(), keep, "");
                write_response(&mut sock, &head, body.as_bytes(), req.head_only).await
            }
            MetricsFault::Garbage => {
                let body = metrics::garbage_body();
                let head = response_head("200 OK", "text/html", body.len(), keep, "");
                write_response(&mut sock, &head, &body, req.head_only).await
            }
            MetricsFault::ManySeries => {
                let body = metrics::many_series_body();
                let head = response_head("200 OK", EXPOSITION, body.len(), keep, "");
                write_response(&mut sock, &head, &body, req.head_only).await
            }
            MetricsFault::Redirect => {
                let location = format!("Location: {}/_sim/redirected\r\n", sh.api_base);
                let head = response_head("302 Found", "text/plain", 0, keep, &location);
                write_response(&mut sock, &head, b"", false).await
            }
            MetricsFault::Trickle => {
                let snap = sh.lock().snapshot(id, sh.t());
                let Some(snap) = snap else { return };
                let body = metrics::render(&snap);
                let head = response_head("200 OK", EXPOSITION, body.len(), false, "");
                let all = [head.as_bytes(), body.as_bytes()].concat();
                for b in all {
                    if sock.write_all(&[b]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(TRICKLE).await;
                }
                false
            }
            MetricsFault::Huge => {
                let (lines, total) = metrics::huge_layout();
                let head = response_head("200 OK", EXPOSITION, total, false, "");
                if sock.write_all(head.as_bytes()).await.is_err() || req.head_only {
                    return;
                }
                let mut chunk = Vec::with_capacity(128 * 1024);
                let mut i = 0;
                while i < lines {
                    metrics::huge_chunk(i, 2048, lines, &mut chunk);
                    if sock.write_all(&chunk).await.is_err() {
                        return;
                    }
                    i += 2048;
                }
                false
            }
        };
        if !ok || !keep {
            let _ = sock.shutdown().await;
            return;
        }
    }
}

/// Opens the listener of an active droplet, moving it to a fresh address when another
/// process holds its address and port. Returns the task serving it.
async fn open(sh: &Arc<Shared>, id: u64, mut addr: Ipv4Addr) -> Option<JoinHandle<()>> {
    for attempt in 0..16 {
        match bind(addr, sh.metrics_port).await {
            Ok(l) => return Some(spawn_droplet(sh, id, l)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < 15 => {
                let mut st = sh.lock();
                addr = st.alloc_addr();
                if let Some(d) = st.droplets.get_mut(&id) {
                    d.addr = addr;
                }
            }
            Err(e) => {
                tracing::warn!(
                    "doscale sim: droplet {id} cannot listen on {addr}:{}: {e}",
                    sh.metrics_port
                );
                return None;
            }
        }
    }
    None
}

/// Stops serving droplet `id` (listener and connections), if it is served.
async fn close(listeners: &mut std::collections::HashMap<u64, JoinHandle<()>>, id: u64) {
    if let Some(h) = listeners.remove(&id) {
        h.abort();
        // Wait until the task is gone: its sockets are closed once this returns.
        let _ = h.await;
    }
}

/// Turns droplet `id` active after `--activate-ms` (or removes it when it was created under
/// `create_error`; leaves it `new` under `never_active`).
pub(crate) async fn activate_later(sh: Arc<Shared>, id: u64) {
    tokio::time::sleep(sh.activate).await;
    let mut listeners = sh.listeners.lock().await;
    let (addr, doomed, never, refused) = {
        let st = sh.lock();
        match st.droplets.get(&id) {
            Some(d) if d.status == Status::New => {
                (d.addr, d.doomed, d.never_active, st.faults.refuses(id))
            }
            _ => return,
        }
    };
    if never {
        return;
    }
    if doomed {
        sh.lock().remove(id, sh.t(), Utc::now());
        return;
    }
    if !refused {
        if let Some(h) = open(&sh, id, addr).await {
            listeners.insert(id, h);
        }
    }
    sh.lock().activate(id, sh.t(), Utc::now());
}

/// Removes droplet `id` and closes its listener. False when there was no such droplet.
pub(crate) async fn destroy(sh: &Arc<Shared>, id: u64) -> bool {
    let mut listeners = sh.listeners.lock().await;
    let removed = sh.lock().remove(id, sh.t(), Utc::now()).is_some();
    close(&mut listeners, id).await;
    removed
}

/// Replaces the faults and opens or closes listeners to match `droplets_refuse`.
pub(crate) async fn apply_faults(sh: &Arc<Shared>, faults: Faults) {
    let mut listeners = sh.listeners.lock().await;
    let wanted: Vec<(u64, Ipv4Addr)> = {
        let mut st = sh.lock();
        st.faults = faults;
        st.fault_count = 0;
        st.droplets
            .values()
            .filter(|d| d.status == Status::Active && !st.faults.refuses(d.id))
            .map(|d| (d.id, d.addr))
            .collect()
    };
    let keep: HashSet<u64> = wanted.iter().map(|(id, _)| *id).collect();
    let gone: Vec<u64> = listeners
        .keys()
        .filter(|id| !keep.contains(id))
        .copied()
        .collect();
    for id in gone {
        close(&mut listeners, id).await;
    }
    for (id, addr) in wanted {
        if let std::collections::hash_map::Entry::Vacant(slot) = listeners.entry(id) {
            if let Some(h) = open(sh, id, addr).await {
                slot.insert(h);
            }
        }
    }
}
