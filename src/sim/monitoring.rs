//! The simulated monitoring endpoints, `GET /v2/monitoring/metrics/droplet/{metric}` (schema
//! `metrics` of `tests/fixtures/digitalocean-openapi/`), served from the same per-droplet
//! load model as the droplets' do-agent pages (`fleet::snapshot_of`), so that the monitoring
//! source and a scrape read the same numbers.
//!
//! Samples: one every [`STEP`] seconds on the Unix-time grid within `[start, end]`, and one at
//! `end` itself (the real API's latest sample lags by up to a minute; the simulator's does
//! not, so that tests can compare the two sources at one instant). CPU is cumulative seconds
//! per mode, summed over the droplet's CPUs; bandwidth is Mbps between a sample and the one
//! before it, `public` only (the simulated droplets have no private traffic).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::fleet::State;
use super::metrics::{Snapshot, CPU_MODES};
use crate::do_api::monitoring::ENDPOINTS;

/// Seconds between samples.
pub(crate) const STEP: i64 = 60;
/// The longest range served (a day of samples).
const MAX_RANGE: i64 = 86_400;

/// The response to one request: a status and a JSON body. `t_of` turns a Unix time into
/// simulator time.
pub(crate) fn droplet_metric(
    st: &State,
    metric: &str,
    query: &str,
    t_of: impl Fn(i64) -> f64,
) -> (StatusCode, Value) {
    if !ENDPOINTS.contains(&metric) {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "The resource you were accessing could not be found.",
        );
    }
    let q: BTreeMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let Some(host_id) = q.get("host_id").and_then(|v| v.parse::<u64>().ok()) else {
        return bad("host_id is required: the droplet id");
    };
    let (Some(start), Some(end)) = (
        q.get("start").and_then(|v| v.parse::<i64>().ok()),
        q.get("end").and_then(|v| v.parse::<i64>().ok()),
    ) else {
        return bad("start and end are required: UNIX timestamps");
    };
    if end < start || end - start > MAX_RANGE {
        return bad("end must be after start, and within a day of it");
    }
    let mut interface = None;
    let mut direction = None;
    if metric == "bandwidth" {
        interface = q.get("interface").copied();
        direction = q.get("direction").copied();
        if !matches!(interface, Some("public" | "private")) {
            return bad("interface is required: public or private");
        }
        if !matches!(direction, Some("inbound" | "outbound")) {
            return bad("direction is required: inbound or outbound");
        }
    }
    let mut times: Vec<i64> = (start.div_euclid(STEP)..=end.div_euclid(STEP))
        .map(|k| k * STEP)
        .filter(|t| (start..=end).contains(t))
        .collect();
    if times.last() != Some(&end) {
        times.push(end);
    }
    let host = host_id.to_string();
    let result = match st.snapshots(host_id, times.iter().map(|&t| t_of(t))) {
        None => Vec::new(),
        Some(snaps) => series(metric, &host, &times, &snaps, interface, direction),
    };
    (
        StatusCode::OK,
        json!({"status": "success", "data": {"resultType": "matrix", "result": result}}),
    )
}

fn series(
    metric: &str,
    host: &str,
    times: &[i64],
    snaps: &[Snapshot],
    interface: Option<&str>,
    direction: Option<&str>,
) -> Vec<Value> {
    let values = |f: &dyn Fn(usize) -> f64| -> Vec<Value> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| json!([t, format!("{}", f(i))]))
            .collect()
    };
    let one =
        |labels: Value, f: &dyn Fn(usize) -> f64| json!({"metric": labels, "values": values(f)});
    let gauge =
        |pick: fn(&Snapshot) -> f64| vec![one(json!({"host_id": host}), &|i| pick(&snaps[i]))];
    match metric {
        "cpu" => CPU_MODES
            .iter()
            .enumerate()
            .map(|(m, mode)| {
                one(json!({"host_id": host, "mode": mode}), &|i| {
                    let s: f64 = snaps[i].cpu.iter().map(|row| row[m]).sum();
                    (s * 100.0).round() / 100.0
                })
            })
            .collect(),
        "memory_free" => gauge(|s| s.mem_free),
        "memory_available" => gauge(|s| s.mem_available),
        "memory_cached" => gauge(|s| s.mem_cached),
        "memory_total" => gauge(|s| s.mem_total),
        "load_1" => gauge(|s| s.load1),
        "load_5" => gauge(|s| s.load5),
        "load_15" => gauge(|s| s.load15),
        "filesystem_free" | "filesystem_size" => {
            let free = metric == "filesystem_free";
            vec![one(
                json!({"device": "/dev/vda", "fstype": "ext4", "host_id": host, "mountpoint": "/"}),
                &|i| {
                    if free {
                        snaps[i].fs_free
                    } else {
                        snaps[i].fs_size
                    }
                },
            )]
        }
        "bandwidth" => {
            let public = interface == Some("public");
            let inbound = direction == Some("inbound");
            let bytes = |s: &Snapshot| if inbound { s.net_rx } else { s.net_tx };
            vec![one(
                json!({"direction": direction, "host_id": host, "interface": interface}),
                &|i| {
                    if !public || i == 0 {
                        return 0.0;
                    }
                    let dt = (times[i] - times[i - 1]) as f64;
                    if dt <= 0.0 {
                        return 0.0;
                    }
                    (bytes(&snaps[i]) - bytes(&snaps[i - 1])).max(0.0) * 8.0 / 1e6 / dt
                },
            )]
        }
        _ => Vec::new(),
    }
}

fn bad(msg: &str) -> (StatusCode, Value) {
    error(StatusCode::BAD_REQUEST, "bad_request", msg)
}

fn error(status: StatusCode, id: &str, msg: &str) -> (StatusCode, Value) {
    (status, json!({"id": id, "message": msg}))
}
