//! The fleet: droplets, their addresses and ids, the load model, create actions and the
//! request log. Everything here is plain data behind one mutex; the servers in `api` and
//! `serve` lock it briefly and never across an `.await`.
//!
//! Load model: the fleet's demand `d` (in fully busy droplets) is spread evenly over the
//! active droplets, so each one's CPU utilization is `u = min(d / active, 1)` (times a small
//! per-droplet jitter of ±1.5 %). `u` is piecewise constant: it changes only when the demand
//! or the number of active droplets changes, and at each such event every droplet's busy time
//! is integrated up to that instant. Counters are therefore exact integrals of the load and
//! monotonic. Load averages relax towards `d / active × vcpus` exponentially, on time
//! constants 30× shorter than Linux's (2 s, 10 s, 30 s for load1, load5, load15) so that
//! demos and tests see them move within seconds while load5 and load15 still lag load1.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::faults::Faults;
use super::metrics::{Process, Snapshot, BUSY_WEIGHTS};
use crate::do_api::model::{Droplet, NetworkV4, Networks};

/// Time constants of load1, load5, load15 (seconds of simulator time).
const LOAD_TAU: [f64; 3] = [2.0, 10.0, 30.0];
/// Utilization assumed for the life of a droplet before the simulator started.
const PAST_UTILIZATION: f64 = 0.3;
/// Size of the simulator's address space: 127.A.B.C with A in 1..=254, C in 1..=254.
const ADDR_SPACE: u64 = 254 * 256 * 254;

/// The defaults of the initial fleet.
pub(crate) const DEFAULT_SIZE: &str = "s-2vcpu-4gb";
pub(crate) const DEFAULT_IMAGE: &str = "ubuntu-24-04-x64";
pub(crate) const DEFAULT_REGION: &str = "nyc3";

/// splitmix64: a small, stable mixing function for reproducible derived values.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value in [0, 1) derived from `a` and `b`.
fn unit(a: u64, b: u64) -> f64 {
    (mix(mix(a) ^ b) >> 11) as f64 / (1u64 << 53) as f64
}

/// The `index`-th simulator address from `base`: 127.A.B.C, never 127.0.x.x (so never
/// 127.0.0.1), never .0 or .255 in the last octet.
pub(crate) fn address(base: u64, index: u64) -> Ipv4Addr {
    let lin = (base + index) % ADDR_SPACE;
    let a = 1 + lin / (256 * 254);
    let b = (lin / 254) % 256;
    let c = 1 + lin % 254;
    Ipv4Addr::new(127, a as u8, b as u8, c as u8)
}

/// Where a seed and an API port put the first droplet in the address space.
pub(crate) fn address_base(seed: u64, api_port: u16, attempt: u64) -> u64 {
    mix(seed ^ mix(u64::from(api_port)) ^ mix(attempt.wrapping_mul(0x5851_F42D))) % ADDR_SPACE
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    New,
    Active,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Active => "active",
        }
    }
}

/// What a size slug stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SizeSpec {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_gb: u64,
}

/// Reads `s-2vcpu-4gb`, `s-1vcpu-512mb-10gb`, `c-4`, `g-2vcpu-8gb`...; unknown shapes get
/// 2 vCPUs and 4 GB.
pub(crate) fn size_spec(slug: &str) -> SizeSpec {
    let mut vcpus = None;
    let mut memory_mb = None;
    let mut disk_gb = None;
    for part in slug.split('-') {
        if let Some(n) = part
            .strip_suffix("vcpu")
            .and_then(|n| n.parse::<u32>().ok())
        {
            vcpus = Some(n);
        } else if let Some(n) = part.strip_suffix("mb").and_then(|n| n.parse::<u64>().ok()) {
            memory_mb.get_or_insert(n);
        } else if let Some(n) = part.strip_suffix("gb").and_then(|n| n.parse::<u64>().ok()) {
            if memory_mb.is_none() {
                memory_mb = Some(n * 1024);
            } else {
                disk_gb = Some(n);
            }
        }
    }
    if vcpus.is_none() {
        // c-4, m-8...: the number after the family letter is the vCPU count.
        vcpus = slug.split('-').nth(1).and_then(|n| n.parse().ok());
    }
    let vcpus = vcpus.unwrap_or(2).clamp(1, 256);
    let memory_mb = memory_mb.unwrap_or(u64::from(vcpus) * 2048).max(512);
    let disk_gb = disk_gb.unwrap_or(match memory_mb {
        0..=512 => 10,
        513..=1024 => 25,
        1025..=2048 => 50,
        2049..=4096 => 80,
        m => m / 1024 * 20,
    });
    SizeSpec {
        vcpus,
        memory_mb,
        disk_gb,
    }
}

/// Where a droplet's counters come from: fixed at activation, then advanced by its busy time.
#[derive(Debug, Clone)]
pub(crate) struct LoadState {
    /// Simulator time of activation (0 for the initial fleet).
    act_t: f64,
    /// Seconds of life before `act_t` (a day for the initial fleet, boot time for new ones).
    pre: f64,
    /// Busy seconds per CPU since `act_t`, integrated up to `t_last`.
    busy_acc: f64,
    t_last: f64,
    /// Utilization and target load average since `t_last`.
    u: f64,
    target_load: f64,
    /// load1, load5, load15 at `t_last`.
    loads: [f64; 3],
    /// Per CPU, per mode, the seconds already counted at `act_t`.
    cpu_base: Vec<[f64; 8]>,
    /// Per-droplet factor of the disk and network rates.
    io_factor: f64,
}

impl LoadState {
    /// Busy seconds at `t`, on the current segment's line (callers keep `t` within
    /// [`Self::earliest`]).
    fn busy_at(&self, t: f64) -> f64 {
        self.busy_acc + self.u * (t - self.t_last)
    }

    /// The earliest time whose counters are known: the last change of utilization, except
    /// for the initial fleet, which ran at its first utilization before the simulator started
    /// (a monitoring request for the second the simulator started in asks for it).
    fn earliest(&self) -> f64 {
        if self.act_t == 0.0 && self.t_last == 0.0 {
            -self.pre
        } else {
            self.t_last
        }
    }

    fn loads_at(&self, t: f64) -> [f64; 3] {
        let dt = (t - self.t_last).max(0.0);
        let mut out = self.loads;
        for (l, tau) in out.iter_mut().zip(LOAD_TAU) {
            *l = self.target_load + (*l - self.target_load) * (-dt / tau).exp();
        }
        out
    }

    /// Integrates up to `t` and switches to a new utilization and target load.
    fn retarget(&mut self, t: f64, u: f64, target_load: f64) {
        let t = t.max(self.t_last);
        self.busy_acc = self.busy_at(t);
        self.loads = self.loads_at(t);
        self.t_last = t;
        self.u = u;
        self.target_load = target_load;
    }
}

/// One simulated droplet.
#[derive(Debug, Clone)]
pub(crate) struct DropletRec {
    pub id: u64,
    pub name: String,
    pub tags: Vec<String>,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub addr: Ipv4Addr,
    pub size_slug: String,
    pub size: SizeSpec,
    /// The image as the create request named it (slug or id).
    pub image: Value,
    pub region: String,
    pub monitoring: bool,
    pub vpc_uuid: String,
    /// Created under `create_error`: removed instead of activated.
    pub doomed: bool,
    /// Created under `never_active`: stays `new`.
    pub never_active: bool,
    pub action_id: Option<u64>,
    /// Relative deviation of this droplet's utilization, in [-0.015, 0.015].
    pub jitter: f64,
    /// Present once active.
    pub load: Option<LoadState>,
    pub scrapes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionStatus {
    InProgress,
    Completed,
    Errored,
}

#[derive(Debug, Clone)]
pub(crate) struct ActionRec {
    pub id: u64,
    pub droplet_id: u64,
    pub region: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub status: ActionStatus,
}

/// A validated create request (one droplet per name).
#[derive(Debug, Clone)]
pub(crate) struct CreateSpec {
    pub names: Vec<String>,
    pub region: String,
    pub size: String,
    pub image: Value,
    pub tags: Vec<String>,
    pub monitoring: bool,
    pub vpc_uuid: Option<String>,
}

/// The whole mutable state of a simulator.
#[derive(Debug)]
pub(crate) struct State {
    pub seed: u64,
    pub droplets: BTreeMap<u64, DropletRec>,
    pub actions: HashMap<u64, ActionRec>,
    /// Every API request, in order (see `api`).
    pub log: Vec<Value>,
    pub faults: Faults,
    /// API requests counted since the faults were last set.
    pub fault_count: u64,
    pub demand: f64,
    id_rng: StdRng,
    next_id: u64,
    next_action_id: u64,
    addr_base: u64,
    next_addr: u64,
    /// Rate-limit bookkeeping: requests in the current hour window.
    pub rate_window: u64,
    pub rate_count: u64,
}

/// Formats a time as the API does: `2020-07-21T18:37:44Z`.
pub(crate) fn api_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A name made of what a hostname may hold.
pub(crate) fn hostname_part(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "droplet".into()
    } else {
        trimmed.to_string()
    }
}

impl State {
    /// The initial fleet: `n` active droplets `<tag>-1..n`, created a day before `now`.
    pub fn new(seed: u64, tag: &str, n: u32, addr_base: u64, now: DateTime<Utc>) -> State {
        let mut id_rng = StdRng::seed_from_u64(seed);
        let next_id = 300_000_000 + id_rng.gen_range(0..100_000_000u64);
        let next_action_id = 2_000_000_000 + id_rng.gen_range(0..500_000_000u64);
        let mut st = State {
            seed,
            droplets: BTreeMap::new(),
            actions: HashMap::new(),
            log: Vec::new(),
            faults: Faults::default(),
            fault_count: 0,
            demand: PAST_UTILIZATION * f64::from(n),
            id_rng,
            next_id,
            next_action_id,
            addr_base,
            next_addr: 0,
            rate_window: 0,
            rate_count: 0,
        };
        let prefix = hostname_part(tag);
        let day_ago = now - chrono::Duration::days(1);
        for k in 0..n {
            let id = st.alloc_id();
            let addr = st.alloc_addr();
            let size = size_spec(DEFAULT_SIZE);
            let mut d = DropletRec {
                id,
                name: format!("{prefix}-{}", k + 1),
                tags: vec![tag.to_string()],
                status: Status::Active,
                created_at: day_ago + chrono::Duration::seconds(i64::from(k)),
                addr,
                size_slug: DEFAULT_SIZE.into(),
                size,
                image: json!(DEFAULT_IMAGE),
                region: DEFAULT_REGION.into(),
                monitoring: true,
                vpc_uuid: vpc_uuid(seed, DEFAULT_REGION),
                doomed: false,
                never_active: false,
                action_id: None,
                jitter: 0.0,
                load: None,
                scrapes: 0,
            };
            d.jitter = (unit(seed ^ 0x11, id) - 0.5) * 0.03;
            let pre = 86_400.0 - f64::from(k) + 60.0 * unit(seed ^ 0x22, id);
            d.load = Some(st.fresh_load(&d, 0.0, pre));
            st.droplets.insert(id, d);
        }
        st.retarget(0.0);
        // The initial fleet has run at this load for a while: its load averages are settled.
        for l in st.droplets.values_mut().filter_map(|d| d.load.as_mut()) {
            l.loads = [l.target_load; 3];
        }
        st
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += self.id_rng.gen_range(1..=997u64);
        id
    }

    /// The next unused simulator address.
    pub fn alloc_addr(&mut self) -> Ipv4Addr {
        let a = address(self.addr_base, self.next_addr);
        self.next_addr += 1;
        a
    }

    pub fn active_count(&self) -> usize {
        self.droplets
            .values()
            .filter(|d| d.status == Status::Active)
            .count()
    }

    /// Per-droplet utilization before jitter, and the load average per vCPU.
    pub fn fleet_utilization(&self) -> (f64, f64) {
        let active = self.active_count();
        if active == 0 {
            return (0.0, 0.0);
        }
        let per = self.demand / active as f64;
        (per.min(1.0), per)
    }

    /// Integrates every active droplet up to `t` and applies the current demand and count.
    pub fn retarget(&mut self, t: f64) {
        let (u, per) = self.fleet_utilization();
        for d in self.droplets.values_mut() {
            let jitter = d.jitter;
            let vcpus = f64::from(d.size.vcpus);
            if let (Status::Active, Some(l)) = (d.status, d.load.as_mut()) {
                l.retarget(
                    t,
                    (u * (1.0 + jitter)).clamp(0.0, 1.0),
                    per * vcpus * (1.0 + jitter),
                );
            }
        }
    }

    pub fn set_demand(&mut self, demand: f64, t: f64) {
        self.demand = demand;
        self.retarget(t);
    }

    /// The counters of a droplet at activation: `pre` seconds of earlier life at the past
    /// utilization, load averages at zero; `retarget` gives it its utilization.
    fn fresh_load(&self, d: &DropletRec, t: f64, pre: f64) -> LoadState {
        let seed = self.seed ^ d.id;
        let cpu_base = (0..d.size.vcpus)
            .map(|c| {
                let mut row = [0.0; 8];
                let idle_share =
                    1.0 - PAST_UTILIZATION * (0.9 + 0.2 * unit(seed, 100 + u64::from(c)));
                for (m, slot) in row.iter_mut().enumerate() {
                    let share = if m == 0 {
                        idle_share
                    } else {
                        (1.0 - idle_share) * BUSY_WEIGHTS[m]
                    };
                    *slot = pre * share;
                }
                row
            })
            .collect();
        LoadState {
            act_t: t,
            pre,
            busy_acc: 0.0,
            t_last: t,
            u: 0.0,
            target_load: 0.0,
            loads: [0.0; 3],
            cpu_base,
            io_factor: 0.8 + 0.4 * unit(seed, 7),
        }
    }

    /// Records the droplets of a validated create request, status `new`.
    pub fn create(&mut self, spec: &CreateSpec, now: DateTime<Utc>) -> Vec<(u64, u64)> {
        let doomed = self.faults.create_error;
        let never_active = self.faults.never_active;
        let mut out = Vec::new();
        for name in &spec.names {
            let id = self.alloc_id();
            let action_id = self.next_action_id;
            self.next_action_id += 1 + self.id_rng.gen_range(0..50u64);
            let addr = self.alloc_addr();
            let d = DropletRec {
                id,
                name: name.clone(),
                tags: spec.tags.clone(),
                status: Status::New,
                created_at: now,
                addr,
                size_slug: spec.size.clone(),
                size: size_spec(&spec.size),
                image: spec.image.clone(),
                region: spec.region.clone(),
                monitoring: spec.monitoring,
                vpc_uuid: spec
                    .vpc_uuid
                    .clone()
                    .unwrap_or_else(|| vpc_uuid(self.seed, &spec.region)),
                doomed,
                never_active,
                action_id: Some(action_id),
                jitter: (unit(self.seed ^ 0x11, id) - 0.5) * 0.03,
                load: None,
                scrapes: 0,
            };
            self.droplets.insert(id, d);
            self.actions.insert(
                action_id,
                ActionRec {
                    id: action_id,
                    droplet_id: id,
                    region: spec.region.clone(),
                    started_at: now,
                    completed_at: None,
                    status: ActionStatus::InProgress,
                },
            );
            out.push((id, action_id));
        }
        out
    }

    /// Turns a `new` droplet active at simulator time `t`.
    pub fn activate(&mut self, id: u64, t: f64, now: DateTime<Utc>) -> bool {
        let Some(d) = self.droplets.get(&id) else {
            return false;
        };
        if d.status != Status::New {
            return false;
        }
        let load = self.fresh_load(d, t, 2.0 + unit(self.seed ^ 0x33, id));
        let d = self.droplets.get_mut(&id).expect("present");
        d.status = Status::Active;
        d.load = Some(load);
        if let Some(a) = d.action_id.and_then(|a| self.actions.get_mut(&a)) {
            a.status = ActionStatus::Completed;
            a.completed_at = Some(now);
        }
        self.retarget(t);
        true
    }

    /// Removes a droplet; an unfinished create action ends errored.
    pub fn remove(&mut self, id: u64, t: f64, now: DateTime<Utc>) -> Option<DropletRec> {
        // Integrate everyone up to now under the old count first.
        self.retarget(t);
        let d = self.droplets.remove(&id)?;
        if let Some(a) = d.action_id.and_then(|a| self.actions.get_mut(&a)) {
            if a.status == ActionStatus::InProgress {
                a.status = ActionStatus::Errored;
                a.completed_at = Some(now);
            }
        }
        if d.status == Status::Active {
            self.retarget(t);
        }
        Some(d)
    }

    /// The numbers a droplet serves at simulator time `t` (counts the scrape).
    pub fn snapshot(&mut self, id: u64, t: f64) -> Option<Snapshot> {
        let d = self.droplets.get_mut(&id)?;
        let l = d.load.as_ref()?;
        d.scrapes += 1;
        Some(snapshot_of(d, l, t))
    }

    /// The numbers an active droplet serves at each simulator time of `ts` (for the
    /// monitoring endpoints: not counted as scrapes).
    pub fn snapshots(&self, id: u64, ts: impl Iterator<Item = f64>) -> Option<Vec<Snapshot>> {
        let d = self.droplets.get(&id)?;
        let l = d.load.as_ref()?;
        Some(ts.map(|t| snapshot_of(d, l, t)).collect())
    }

    /// The droplet as doscale reads it from the API (what [`Self::droplet_json`] extends).
    pub fn droplet(&self, d: &DropletRec) -> Droplet {
        let mut v4 = Vec::new();
        if d.status == Status::Active {
            let private = if self.faults.linklocal(d.id) {
                "169.254.169.254".to_string()
            } else {
                d.addr.to_string()
            };
            v4.push(NetworkV4 {
                ip_address: private,
                netmask: Some("255.255.0.0".into()),
                // The real API writes the missing private gateway as the string "<nil>" (the spec
                // types it as a string).
                gateway: Some("<nil>".into()),
                kind: "private".into(),
            });
            v4.push(NetworkV4 {
                ip_address: d.addr.to_string(),
                netmask: Some("255.0.0.0".into()),
                gateway: Some("127.0.0.1".into()),
                kind: "public".into(),
            });
        }
        Droplet {
            id: d.id,
            name: d.name.clone(),
            status: d.status.as_str().into(),
            created_at: api_time(&d.created_at),
            tags: d.tags.clone(),
            networks: Networks { v4, v6: Vec::new() },
            vcpus: Some(d.size.vcpus),
        }
    }

    /// The droplet as the API shows it (schema `droplet`).
    pub fn droplet_json(&self, d: &DropletRec) -> Value {
        let base = self.droplet(d);
        let mut v = serde_json::to_value(base).expect("a droplet serialises");
        let obj = v.as_object_mut().expect("a droplet is an object");
        let mut features = vec!["private_networking"];
        if d.monitoring {
            features.push("monitoring");
        }
        let extra = json!({
            "memory": d.size.memory_mb,
            "vcpus": d.size.vcpus,
            "disk": d.size.disk_gb,
            "disk_info": [{"type": "local", "size": {"amount": d.size.disk_gb, "unit": "gib"}}],
            "locked": false,
            "kernel": null,
            "features": features,
            "backup_ids": [],
            "next_backup_window": null,
            "snapshot_ids": [],
            "image": image_json(&d.image, &d.region),
            "volume_ids": [],
            "size": size_json(&d.size_slug, &d.size, &d.region),
            "size_slug": d.size_slug,
            "region": region_json(&d.region),
            "vpc_uuid": d.vpc_uuid,
        });
        if let Value::Object(extra) = extra {
            obj.extend(extra);
        }
        v
    }

    pub fn action_json(&self, a: &ActionRec) -> Value {
        let status = match a.status {
            ActionStatus::InProgress => "in-progress",
            ActionStatus::Completed => "completed",
            ActionStatus::Errored => "errored",
        };
        json!({
            "id": a.id,
            "status": status,
            "type": "create",
            "started_at": api_time(&a.started_at),
            "completed_at": a.completed_at.as_ref().map(api_time),
            "resource_id": a.droplet_id,
            "resource_type": "droplet",
            "region": region_json(&a.region),
            "region_slug": a.region,
        })
    }
}

fn snapshot_of(d: &DropletRec, l: &LoadState, t: f64) -> Snapshot {
    let t = t.max(l.earliest());
    let busy = l.busy_at(t);
    // Negative only for the initial fleet before the simulator started (within `pre`).
    let up = t - l.act_t;
    // Seconds of life at each level, including the time before activation.
    let life = l.pre + up;
    let life_busy = l.pre * PAST_UTILIZATION + busy;
    // USER_HZ resolution, rounded down so that counters never go back.
    let ticks = |x: f64| (x * 100.0).floor() / 100.0;
    let cpu = l
        .cpu_base
        .iter()
        .map(|base| {
            let mut row = [0.0; 8];
            for (m, slot) in row.iter_mut().enumerate() {
                let v = if m == 0 {
                    base[0] + up - busy
                } else {
                    base[m] + BUSY_WEIGHTS[m] * busy
                };
                *slot = ticks(v);
            }
            row
        })
        .collect();
    let f = l.io_factor;
    let floor = |x: f64| x.floor();
    let sector = |x: f64| (x / 4096.0).floor() * 4096.0;
    let ms = |x: f64| (x * 1000.0).floor() / 1000.0;
    let total = (d.size.memory_mb as f64 * 1024.0 * 1024.0 * 0.96 / 4096.0).floor() * 4096.0;
    let u = l.u;
    let page = |x: f64| (x.max(0.0) / 4096.0).floor() * 4096.0;
    let available = page(total * (0.88 - 0.75 * u));
    let cached = page(total * (0.25 - 0.15 * u));
    let free = (available - cached).max(0.0);
    let fs_size =
        (d.size.disk_gb as f64 * 1024.0 * 1024.0 * 1024.0 * 0.97 / 4096.0).floor() * 4096.0;
    let fs_free = page(fs_size * (0.78 + 4.0 * d.jitter));
    let loads = l.loads_at(t);
    let round2 = |x: f64| (x.max(0.0) * 100.0).round() / 100.0;
    let processes = if d.id % 2 == 1 {
        let vcpus = f64::from(d.size.vcpus);
        let pdata: [(&'static str, &'static str, f64, f64); 7] = [
            ("1", "systemd", 0.004, 1.2e7),
            ("1423", "nginx", 0.0005, 5.2e6),
            ("1424", "nginx", 0.42, 5.8e7),
            ("1425", "nginx", 0.42, 5.7e7),
            ("523", "sshd", 0.0003, 9.2e6),
            ("812", "do-agent-bin", 0.002, 1.8e7),
            ("845", "process_api", 0.001, 1.3e7),
        ];
        pdata
            .iter()
            .map(|&(pid, name, share, rss)| Process {
                pid,
                name,
                cpu_seconds: ticks(share * vcpus * life_busy),
                rss_bytes: page(rss * (1.0 + 0.3 * u) * (1.0 + 10.0 * d.jitter)),
            })
            .collect()
    } else {
        Vec::new()
    };
    Snapshot {
        metric_writes: d.scrapes as f64,
        cpu,
        disk_discard_time: ms(f * 0.000_05 * life),
        disk_discarded_sectors: floor(f * 1.4 * life) * 8.0,
        disk_discards_completed: floor(f * 0.045 * life),
        disk_read_bytes: sector(f * (12_000.0 * life + 400_000.0 * life_busy)),
        disk_read_time: ms(f * (0.000_4 * life + 0.002 * life_busy)),
        disk_reads_completed: floor(f * (0.3 * life + 20.0 * life_busy)),
        disk_write_time: ms(f * (0.001 * life + 0.005 * life_busy)),
        disk_writes_completed: floor(f * (1.0 * life + 30.0 * life_busy)),
        disk_written_bytes: sector(f * (40_000.0 * life + 900_000.0 * life_busy)),
        fs_free,
        fs_size,
        load1: round2(loads[0]),
        load5: round2(loads[1]),
        load15: round2(loads[2]),
        mem_cached: cached,
        mem_available: available,
        mem_free: free,
        mem_total: total,
        net_rx: floor(f * (30_000.0 * life + 3_000_000.0 * life_busy)),
        net_tx: floor(f * (20_000.0 * life + 5_000_000.0 * life_busy)),
        processes,
    }
}

/// A stable fake VPC UUID per seed and region.
fn vpc_uuid(seed: u64, region: &str) -> String {
    let h = region
        .bytes()
        .fold(mix(seed ^ 0x77), |h, b| mix(h ^ u64::from(b)));
    let h2 = mix(h);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h2 >> 48) & 0xfff,
        h2 & 0xffff_ffff_ffff
    )
}

const REGIONS: [(&str, &str); 14] = [
    ("ams3", "Amsterdam 3"),
    ("ams2", "Amsterdam 2"),
    ("blr1", "Bangalore 1"),
    ("fra1", "Frankfurt 1"),
    ("lon1", "London 1"),
    ("nyc1", "New York 1"),
    ("nyc2", "New York 2"),
    ("nyc3", "New York 3"),
    ("sfo1", "San Francisco 1"),
    ("sfo2", "San Francisco 2"),
    ("sfo3", "San Francisco 3"),
    ("sgp1", "Singapore 1"),
    ("syd1", "Sydney 1"),
    ("tor1", "Toronto 1"),
];

fn region_slugs() -> Vec<&'static str> {
    REGIONS.iter().map(|(s, _)| *s).collect()
}

fn region_json(slug: &str) -> Value {
    let name = REGIONS
        .iter()
        .find(|(s, _)| *s == slug)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| slug.to_uppercase());
    json!({
        "name": name,
        "slug": slug,
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
        "available": true,
        "sizes": ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb"],
    })
}

fn size_json(slug: &str, s: &SizeSpec, region: &str) -> Value {
    let gb = (s.memory_mb as f64 / 1024.0).max(0.5);
    let monthly = (6.0 * gb).round();
    json!({
        "slug": slug,
        "memory": s.memory_mb,
        "vcpus": s.vcpus,
        "disk": s.disk_gb,
        "transfer": gb.max(0.5),
        "price_monthly": monthly,
        "price_hourly": ((monthly / 672.0) * 100_000.0).round() / 100_000.0,
        "regions": if region_slugs().contains(&region) { json!(region_slugs()) } else { json!([region]) },
        "available": true,
        "description": "Basic",
    })
}

fn image_json(image: &Value, region: &str) -> Value {
    let mut regions = region_slugs();
    if !regions.contains(&region) {
        regions.push(region);
    }
    match image {
        Value::String(slug) => {
            let id =
                100_000_000 + mix(slug.bytes().fold(0, |h, b| mix(h ^ u64::from(b)))) % 100_000_000;
            let (distribution, name) = match slug.strip_prefix("ubuntu-") {
                Some(rest) => {
                    let parts: Vec<&str> = rest.split('-').collect();
                    let name = match parts.as_slice() {
                        [maj, min, arch] => format!("{maj}.{min} (LTS) {arch}"),
                        _ => slug.clone(),
                    };
                    ("Ubuntu", name)
                }
                None => ("Unknown", slug.clone()),
            };
            json!({
                "id": id,
                "name": name,
                "distribution": distribution,
                "slug": slug,
                "public": true,
                "regions": regions,
                "created_at": "2024-04-25T14:24:11Z",
                "type": "base",
                "min_disk_size": 7,
                "size_gigabytes": 2.58,
                "description": "",
                "tags": [],
                "status": "available",
                "error_message": "",
            })
        }
        other => json!({
            "id": other,
            "name": format!("snapshot-{other}"),
            "distribution": "Unknown",
            "slug": null,
            "public": false,
            "regions": [region],
            "created_at": "2025-01-01T00:00:00Z",
            "type": "snapshot",
            "min_disk_size": 25,
            "size_gigabytes": 3.1,
            "description": "",
            "tags": [],
            "status": "available",
            "error_message": "",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn addresses_are_loopback_and_never_special() {
        for base in [0, 1, 253, ADDR_SPACE - 1, address_base(7, 4000, 0)] {
            for i in 0..600 {
                let a = address(base, i);
                let o = a.octets();
                assert_eq!(o[0], 127);
                assert_ne!(o[1], 0, "{a}");
                assert!(o[3] != 0 && o[3] != 255, "{a}");
                assert_ne!(a, Ipv4Addr::new(127, 0, 0, 1));
            }
        }
        let all: std::collections::HashSet<_> = (0..10_000).map(|i| address(5, i)).collect();
        assert_eq!(all.len(), 10_000);
    }

    #[test]
    fn sizes_from_slugs() {
        assert_eq!(
            size_spec("s-2vcpu-4gb"),
            SizeSpec {
                vcpus: 2,
                memory_mb: 4096,
                disk_gb: 80
            }
        );
        assert_eq!(
            size_spec("s-1vcpu-1gb"),
            SizeSpec {
                vcpus: 1,
                memory_mb: 1024,
                disk_gb: 25
            }
        );
        assert_eq!(
            size_spec("s-1vcpu-512mb-10gb"),
            SizeSpec {
                vcpus: 1,
                memory_mb: 512,
                disk_gb: 10
            }
        );
        assert_eq!(size_spec("c-4").vcpus, 4);
        assert_eq!(size_spec("whatever").vcpus, 2);
    }

    #[test]
    fn ids_are_reproducible_and_increasing() {
        let a = State::new(7, "web", 5, 0, now());
        let b = State::new(7, "web", 5, 0, now());
        let c = State::new(8, "web", 5, 0, now());
        let ids = |s: &State| s.droplets.keys().copied().collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert_ne!(ids(&a), ids(&c));
        assert!(ids(&a)
            .iter()
            .all(|id| (100_000_000..1_000_000_000).contains(id)));
        let names: Vec<_> = a.droplets.values().map(|d| d.name.clone()).collect();
        assert_eq!(names, ["web-1", "web-2", "web-3", "web-4", "web-5"]);
    }

    #[test]
    fn counters_follow_the_load_and_never_go_back() {
        let mut st = State::new(3, "web", 4, 0, now());
        let id = *st.droplets.keys().next().unwrap();
        st.set_demand(2.0, 0.0); // u = 0.5
        let idle = |s: &Snapshot| s.cpu.iter().map(|c| c[0]).sum::<f64>() / s.cpu.len() as f64;
        let a = st.snapshot(id, 10.0).unwrap();
        let b = st.snapshot(id, 110.0).unwrap();
        let u = 1.0 - (idle(&b) - idle(&a)) / 100.0;
        assert!((u - 0.5).abs() < 0.5 * 0.02, "u = {u}");
        st.set_demand(4.0, 110.0); // u = 1
        let c = st.snapshot(id, 210.0).unwrap();
        let u = 1.0 - (idle(&c) - idle(&b)) / 100.0;
        assert!(u > 0.97, "u = {u}");
        for (x, y) in a.cpu.iter().flatten().zip(c.cpu.iter().flatten()) {
            assert!(y >= x);
        }
        assert!(c.net_rx > a.net_rx && c.disk_written_bytes > a.disk_written_bytes);
        assert!(c.mem_available < a.mem_available);
        assert!((c.load1 - 2.0).abs() < 0.1, "load1 {}", c.load1);
        // Removing droplets raises the others' load.
        let ids: Vec<_> = st.droplets.keys().copied().collect();
        st.set_demand(1.0, 210.0);
        st.remove(ids[3], 210.0, now());
        st.remove(ids[2], 210.0, now());
        let d = st.snapshot(id, 310.0).unwrap();
        let u = 1.0 - (idle(&d) - idle(&c)) / 100.0;
        assert!((u - 0.5).abs() < 0.02, "u = {u}");
    }

    /// A monitoring request for the second the simulator started in asks for the initial
    /// fleet's counters a moment before its start: they are on the same line as after it (the
    /// fleet ran at its first utilization before), so a rate over that span is the load's.
    /// A droplet whose utilization changed is not read before the change.
    #[test]
    fn the_initial_fleet_has_counters_before_the_start() {
        let st = State::new(3, "web", 4, 0, now());
        let id = *st.droplets.keys().next().unwrap();
        let idle = |s: &Snapshot| s.cpu.iter().map(|c| c[0]).sum::<f64>() / s.cpu.len() as f64;
        let snaps = st.snapshots(id, [-10.0, 0.0, 10.0].into_iter()).unwrap();
        let before = 1.0 - (idle(&snaps[1]) - idle(&snaps[0])) / 10.0;
        let after = 1.0 - (idle(&snaps[2]) - idle(&snaps[1])) / 10.0;
        assert!((before - after).abs() < 0.01, "{before} then {after}");
        assert!(snaps[0].disk_written_bytes < snaps[1].disk_written_bytes);
        let mut st = st;
        st.set_demand(2.0, 20.0);
        let snaps = st.snapshots(id, [5.0, 20.0].into_iter()).unwrap();
        assert_eq!(idle(&snaps[0]), idle(&snaps[1]));
    }

    #[test]
    fn droplet_json_has_every_required_field() {
        let st = State::new(1, "web", 1, 0, now());
        let d = st.droplets.values().next().unwrap();
        let v = st.droplet_json(d);
        for k in [
            "id",
            "name",
            "memory",
            "vcpus",
            "disk",
            "locked",
            "status",
            "created_at",
            "features",
            "backup_ids",
            "next_backup_window",
            "snapshot_ids",
            "image",
            "volume_ids",
            "size",
            "size_slug",
            "networks",
            "region",
            "tags",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        let parsed: Droplet = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.status, "active");
        assert_eq!(parsed.created_at, "2025-12-31T12:00:00Z");
    }
}
