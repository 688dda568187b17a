//! The simulated fleet (docs/design.md §7): a DigitalOcean API v2 subset and a fleet of droplets
//! on loopback, each serving do-agent-shaped metrics on its own 127.x.y.z address, with a
//! load model, control endpoints under `/_sim/` and fault injection. It powers `doscale sim`,
//! `doscale demo`, the integration tests and the benchmarks.
//!
//! [`start`] runs the simulator on a tokio runtime of its own, on threads of its own, and
//! returns once every socket is listening: the caller may then use a blocking HTTP client
//! (which must not run inside a runtime). [`run`] is `doscale sim` in the foreground.
//!
//! Layout: `fleet` (the droplets, the load model, the API's JSON), `metrics` (the
//! exposition text), `serve` (the droplets' listeners and their faults), `api` (the API and
//! `/_sim/`), `faults` (what can be injected).
//!
//! Addresses: droplet k of a simulator listens on 127.A.B.C (A ≥ 1, C in 1..=254) counted
//! from a base derived from the seed and the API port, so that two simulators on one machine
//! are unlikely to collide; when an address is taken anyway, the fleet moves to another base.
//! Every droplet listens on the same metrics port. A droplet's public address is its private
//! one. A `new` droplet lists no addresses yet (as on DigitalOcean) and has no listener.

mod api;
mod faults;
mod fleet;
pub mod inproc;
mod metrics;
mod monitoring;
mod serve;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, eyre, WrapErr};
use color_eyre::Result;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use faults::Faults;
use fleet::State;
pub use metrics::go_float;

/// The fake token written beside a generated config. The simulator accepts any non-empty one.
pub const SIM_TOKEN: &str = "sim-token-not-secret";

/// What the servers share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The task serving each listening droplet. Held across every change of the fleet's
    /// listeners (create, activate, destroy, faults) so that those changes happen one at a time.
    listeners: tokio::sync::Mutex<HashMap<u64, JoinHandle<()>>>,
    start: Instant,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    api_base: String,
    metrics_port: u16,
    latency: Duration,
    activate: Duration,
}

impl Shared {
    /// The fleet state. A panic elsewhere never makes the simulator unusable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seconds since the simulator started (the load model's clock).
    fn t(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// One droplet as the simulator sees it (for in-process users).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDroplet {
    pub id: u64,
    pub name: String,
    /// `new` or `active`.
    pub status: String,
    pub tags: Vec<String>,
    /// Where it serves metrics (on [`SimHandle::metrics_port`]).
    pub address: Ipv4Addr,
}

/// A running simulator. Dropping it shuts it down.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash): the API and `/_sim/`.
    pub api_url: String,
    /// The port every droplet serves its metrics on.
    pub metrics_port: u16,
    /// The group tag of the initial fleet.
    pub tag: String,
    /// Where `--config-out` wrote the config, if it was given.
    pub config_path: Option<PathBuf>,
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("api_url", &self.api_url)
            .field("metrics_port", &self.metrics_port)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

// `doscale sim`'s options: defined here, beside the fleet they shape, so that the simulator
// does not depend on `cli` (which re-exports them). Plain comments: the doc comments of the
// fields are the `--help` text.
#[derive(Debug, clap::Args, Clone)]
pub struct SimArgs {
    /// Initial number of droplets.
    #[arg(long, default_value_t = 3)]
    pub droplets: u32,
    /// Address of the API (port 0 picks a free one; the written config says which).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: String,
    /// Port every droplet serves its metrics on (0 picks a free one).
    #[arg(long, default_value_t = 0, value_name = "P")]
    pub metrics_port: u16,
    /// Delay of every metrics and API response, in milliseconds (the network).
    #[arg(long, default_value_t = 0, value_name = "L")]
    pub latency_ms: u64,
    /// A created droplet turns active and serves metrics this long after its creation.
    #[arg(long, default_value_t = 2000, value_name = "T")]
    pub activate_ms: u64,
    /// Seed for reproducible ids, addresses and load.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Tag of the simulated group.
    #[arg(long, default_value = "web")]
    pub tag: String,
    /// Write a ready doscale config pointing at the simulator, with the example
    /// configuration's policies and target (plus a token file and the state file location
    /// beside it; the folder is created).
    #[arg(long, value_name = "PATH")]
    pub config_out: Option<PathBuf>,
}

/// Runs `doscale sim` in the foreground until SIGINT or SIGTERM.
pub fn run(args: &SimArgs) -> Result<()> {
    let sim = start(args)?;
    let first = sim
        .droplets()
        .first()
        .map(|d| format!("{}…", d.address))
        .unwrap_or_else(|| "none yet".into());
    let config = match &sim.config_path {
        Some(p) => format!("config written to {}", p.display()),
        None => "no config written (--config-out PATH writes one)".into(),
    };
    eprintln!(
        "doscale sim: API {}, {} droplets on port {} ({first}), {config}",
        sim.api_url, args.droplets, sim.metrics_port
    );
    sim.wait_for_signal()?;
    eprintln!("doscale sim: stopping");
    sim.shutdown();
    Ok(())
}

/// Starts a simulator on threads of its own and returns once the API and every droplet are
/// listening (and the config of `--config-out` is written).
pub fn start(args: &SimArgs) -> Result<SimHandle> {
    raise_nofile_limit();
    let thread_args = args.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("doscale-sim".into())
        .spawn(move || {
            let workers = std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 8);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("doscale-sim-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(eyre!("cannot start the simulator's runtime: {e}")));
                    return;
                }
            };
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            match rt.block_on(setup(&thread_args)) {
                Ok(shared) => {
                    if tx.send(Ok((shared, rt.handle().clone(), stop_tx))).is_ok() {
                        rt.block_on(async {
                            let _ = stop_rx.await;
                        });
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .wrap_err("cannot start the simulator's thread")?;
    let (shared, rt, stop) = match rx.recv() {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            bail!("the simulator's thread stopped while starting");
        }
    };
    let mut handle = SimHandle {
        api_url: shared.api_base.clone(),
        metrics_port: shared.metrics_port,
        tag: args.tag.clone(),
        config_path: None,
        shared,
        rt,
        stop: Some(stop),
        thread: Some(thread),
    };
    if let Some(path) = &args.config_out {
        handle.write_config(path)?;
        handle.config_path = Some(path.clone());
    }
    Ok(handle)
}

/// Binds the API and the fleet, starts serving.
async fn setup(args: &SimArgs) -> Result<Arc<Shared>> {
    if args.tag.is_empty() {
        bail!("--tag must not be empty");
    }
    let api = TcpListener::bind(&args.listen)
        .await
        .wrap_err_with(|| format!("cannot listen on {} (--listen)", args.listen))?;
    let api_addr = api.local_addr()?;
    if !api_addr.ip().is_loopback() {
        bail!(
            "--listen {}: the simulator serves on loopback only (127.0.0.0/8 or ::1)",
            args.listen
        );
    }
    let api_base = format!("http://{api_addr}");
    let (state, metrics_port, bound) = bind_fleet(args, api_addr).await?;
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        listeners: tokio::sync::Mutex::new(HashMap::new()),
        start: Instant::now(),
        api_base,
        metrics_port,
        latency: Duration::from_millis(args.latency_ms),
        activate: Duration::from_millis(args.activate_ms),
    });
    {
        let mut listeners = shared.listeners.lock().await;
        for (id, l) in bound {
            listeners.insert(id, serve::spawn_droplet(&shared, id, l));
        }
    }
    let app = axum::Router::new()
        .fallback(api::handle)
        .with_state(shared.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(api, app).await {
            tracing::error!("doscale sim: the API server stopped: {e}");
        }
    });
    Ok(shared)
}

type Bound = (State, u16, Vec<(u64, TcpListener)>);

/// Creates the initial fleet and binds one listener per droplet, all on one port. Moves the
/// fleet to another address range when an address is already taken.
async fn bind_fleet(args: &SimArgs, api_addr: SocketAddr) -> Result<Bound> {
    let mut last_err = None;
    for attempt in 0..8 {
        let base = fleet::address_base(args.seed, api_addr.port(), attempt);
        let mut state = State::new(
            args.seed,
            &args.tag,
            args.droplets,
            base,
            chrono::Utc::now(),
        );
        let mut port = args.metrics_port;
        let mut bound = Vec::with_capacity(args.droplets as usize);
        let mut failed = None;
        let droplets: Vec<(u64, Ipv4Addr)> =
            state.droplets.values().map(|d| (d.id, d.addr)).collect();
        for (id, addr) in droplets {
            match serve::bind(addr, port).await {
                Ok(l) => {
                    port = l.local_addr()?.port();
                    bound.push((id, l));
                }
                Err(e) => {
                    failed = Some((addr, e));
                    break;
                }
            }
        }
        if failed.is_none() && port == 0 {
            // No droplet yet: pick the port the created ones will use.
            let probe_addr = state.alloc_addr();
            match serve::bind(probe_addr, 0).await {
                Ok(l) => port = l.local_addr()?.port(),
                Err(e) => failed = Some((probe_addr, e)),
            }
        }
        match failed {
            None => return Ok((state, port, bound)),
            Some((addr, e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
                last_err = Some(eyre!("{addr}:{port}: {e}"));
            }
            Some((addr, e)) => {
                let hint = if e.raw_os_error() == Some(libc::EMFILE)
                    || e.raw_os_error() == Some(libc::ENFILE)
                {
                    " (too many open files: raise `ulimit -n` or use fewer --droplets)"
                } else {
                    ""
                };
                bail!("droplet listener on {addr}:{port}: {e}{hint}");
            }
        }
    }
    Err(last_err.unwrap_or_else(|| eyre!("no free address")))
        .wrap_err("cannot find free loopback addresses for the droplets (is --metrics-port taken?)")
}

/// Raises the soft limit of open files to the hard limit: every droplet is a listening
/// socket, and a thousand droplets pass the usual soft limit of 1024.
#[allow(unsafe_code)]
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer, which
    // lives on this stack frame for the duration of the calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
        }
    }
}

impl SimHandle {
    /// Writes a ready doscale config pointing at this simulator to `path` and a token file
    /// beside it (`<stem>-token`, mode 0600). Paths in the config are relative to its folder.
    pub fn write_config(&self, path: &Path) -> Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "sim".into());
        let token_name = format!("{stem}-token");
        std::fs::create_dir_all(dir)
            .wrap_err_with(|| format!("creating {} (--config-out)", dir.display()))?;
        write_atomic(
            &dir.join(&token_name),
            format!("{SIM_TOKEN}\n").as_bytes(),
            0o600,
        )?;
        let droplets = self.shared.lock().droplets.len();
        let text = config_text(
            &self.api_url,
            self.metrics_port,
            &self.tag,
            &token_name,
            droplets,
        );
        write_atomic(path, text.as_bytes(), 0o644)
    }

    /// Sets the fleet's demand (in fully busy droplets).
    pub fn set_demand(&self, d: f64) {
        let d = if d.is_finite() { d.max(0.0) } else { 0.0 };
        self.shared.lock().set_demand(d, self.shared.t());
    }

    /// Replaces the injected faults (as `PUT /_sim/faults`).
    pub fn set_faults(&self, faults: Faults) -> Result<()> {
        faults.validate().map_err(|m| eyre!("faults: {m}"))?;
        let shared = self.shared.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            serve::apply_faults(&shared, faults).await;
            let _ = tx.send(());
        });
        rx.recv().map_err(|_| eyre!("the simulator stopped"))
    }

    /// Every API request received so far (as `GET /_sim/requests`).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.shared.lock().log.clone()
    }

    /// Every droplet, by id.
    pub fn droplets(&self) -> Vec<SimDroplet> {
        let st = self.shared.lock();
        st.droplets
            .values()
            .map(|d| SimDroplet {
                id: d.id,
                name: d.name.clone(),
                status: if d.status == fleet::Status::Active {
                    "active"
                } else {
                    "new"
                }
                .into(),
                tags: d.tags.clone(),
                address: d.addr,
            })
            .collect()
    }

    /// Blocks until SIGINT or SIGTERM.
    pub fn wait_for_signal(&self) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let r = wait_signal().await;
            let _ = tx.send(r);
        });
        rx.recv()
            .map_err(|_| eyre!("the simulator stopped"))?
            .wrap_err("waiting for a signal")
    }

    /// Stops serving and waits for the simulator's threads.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn wait_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// A TOML string (JSON escapes are valid TOML basic-string escapes).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn config_text(api_url: &str, port: u16, tag: &str, token_file: &str, droplets: usize) -> String {
    let prefix = api::name_prefix(tag);
    let max = droplets.saturating_mul(2).max(20);
    format!(
        r#"# written by doscale sim: a ready configuration for the simulated fleet.
# Paths are relative to this file's folder.
state_file = "state.json"

[api]
url = {url}
token_file = {token}

[[group]]
name = {tag}
tag = {tag}
min = 1
max = {max}
warmup = "0s"

[group.metrics]
port = {port}
timeout = "3s"

[group.template]
name = {name}
region = "{region}"
size = "{size}"
image = "{image}"
tags = [{tag}]

[group.health_check]
ports = [{port}]
timeout = "2s"
interval = "1s"
max_tries = 30

# The policies and target of the example configuration (config/doscale.toml).
{policies}"#,
        policies = example_policies(),
        url = toml_str(api_url),
        token = toml_str(token_file),
        tag = toml_str(tag),
        name = toml_str(&format!("{prefix}-{{n}}")),
        region = fleet::DEFAULT_REGION,
        size = fleet::DEFAULT_SIZE,
        image = fleet::DEFAULT_IMAGE,
    )
}

/// The example configuration's `[[group.policy]]` tables and `[group.target]`: the part of
/// config/doscale.toml from its first policy up to the hooks, verbatim with its comments
/// (bench/bench.py takes the same part).
fn example_policies() -> &'static str {
    const EXAMPLE: &str = include_str!("../../config/doscale.toml");
    let start = EXAMPLE
        .find("[[group.policy]]")
        .expect("config/doscale.toml has policies");
    let end = EXAMPLE[start..]
        .find("# do-scaler's custom actions")
        .map_or(EXAMPLE.len(), |e| start + e);
    &EXAMPLE[start..end]
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader polling for the file never sees it half written: the state file's atomic replace
/// (an unguessable temporary name opened with O_EXCL: `--config-out` often points into a
/// shared directory such as /tmp, where a planted link must not redirect the write).
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    crate::state::write_atomic(path, bytes, mode)
        .wrap_err_with(|| format!("writing {}", path.display()))
}
