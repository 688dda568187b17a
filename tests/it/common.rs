//! Shared helpers: run the binary, start the simulator, read its request log.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_doscale");

/// An environment without outside tokens or proxies, without colour.
pub fn cmd() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("DIGITALOCEAN")
            || k.to_lowercase().ends_with("_proxy")
            || k == "DOSCALE_CONFIG"
        {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

pub fn run(args: &[&str]) -> Run {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let t0 = Instant::now();
    let mut c = cmd();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out: Output = c.output().expect("run doscale");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        wall: t0.elapsed(),
    }
}

/// Runs and insists on exit 0.
pub fn ok(args: &[&str]) -> Run {
    let r = run(args);
    assert_eq!(
        r.code,
        0,
        "`doscale {}` exited {}: {}",
        args.join(" "),
        r.code,
        r.all()
    );
    r
}

/// `doscale sim` in the background with its written config.
pub struct Sim {
    pub dir: tempfile::TempDir,
    pub cfg: PathBuf,
    pub url: String,
    pub conf: toml::Value,
    child: Child,
}

/// `DOSCALE_TEST_SEED=<n>` re-runs every simulator-driven test on another fleet: it replaces
/// the `--seed` a test chose (or adds one). The promises must hold whatever the seed.
fn with_test_seed(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    if let Ok(seed) = std::env::var("DOSCALE_TEST_SEED") {
        if let Some(i) = out.iter().position(|a| a == "--seed") {
            out.drain(i..(i + 2).min(out.len()));
        }
        out.extend(["--seed".to_string(), seed]);
    }
    out
}

impl Sim {
    pub fn start(args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("sim.toml");
        let log = std::fs::File::create(dir.path().join("sim.log")).unwrap();
        let mut c = cmd();
        c.args(["sim", "--listen", "127.0.0.1:0", "--config-out"])
            .arg(&cfg)
            .args(with_test_seed(args));
        c.stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        let mut child = c.spawn().expect("start doscale sim");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&cfg) {
                if let Ok(conf) = text.parse::<toml::Value>() {
                    if let Some(url) = conf
                        .get("api")
                        .and_then(|a| a.get("url"))
                        .and_then(|u| u.as_str())
                    {
                        let url = url.trim_end_matches('/').to_string();
                        let sim = Sim {
                            dir,
                            cfg,
                            url,
                            conf,
                            child,
                        };
                        if sim.try_get("/_sim/requests").is_some() {
                            return sim;
                        }
                        drop(sim);
                        panic!("the simulator wrote a config but does not answer");
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("doscale sim wrote no config within 30 s");
    }

    pub fn cfg(&self) -> &str {
        self.cfg.to_str().unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn client() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn try_get(&self, path: &str) -> Option<serde_json::Value> {
        let r = Self::client()
            .get(format!("{}{path}", self.url))
            .send()
            .ok()?;
        r.json().ok()
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET {path} on the simulator failed"))
    }

    pub fn put(&self, path: &str, body: serde_json::Value) {
        let r = Self::client()
            .put(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "PUT {path}: {}", r.status());
    }

    pub fn delete(&self, path: &str) {
        let r = Self::client()
            .delete(format!("{}{path}", self.url))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "DELETE {path}: {}", r.status());
    }

    /// The API request log.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let v = self.get("/_sim/requests");
        match v {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Object(o) => o
                .get("requests")
                .and_then(|r| r.as_array())
                .cloned()
                .unwrap_or_default(),
            _ => vec![],
        }
    }

    pub fn group(&self) -> &toml::Value {
        &self.conf["group"][0]
    }

    pub fn metrics_port(&self) -> i64 {
        self.group()
            .get("metrics")
            .and_then(|m| m.get("port"))
            .and_then(|p| p.as_integer())
            .unwrap_or(9110)
    }

    /// A config of ours: the simulator's API, our group rules (`extra`), the sim's metrics port.
    pub fn config_with(&self, extra: &str, top: &str) -> String {
        let token = self.conf["api"]
            .get("token_file")
            .and_then(|t| t.as_str())
            .map(|t| self.path(t));
        let tag = self.group()["tag"].as_str().unwrap();
        let mut s = format!(
            "{top}\nstate_file = \"{}\"\n[api]\nurl = \"{}\"\n",
            self.path("state.json").display(),
            self.url
        );
        if let Some(t) = token {
            s.push_str(&format!("token_file = \"{}\"\n", t.display()));
        }
        s.push_str(&format!(
            "[[group]]\nname = \"web\"\ntag = \"{tag}\"\n{extra}\n"
        ));
        if !extra.contains("[group.metrics]") {
            s.push_str(&format!(
                "[group.metrics]\nport = {}\n",
                self.metrics_port()
            ));
        }
        let path = self.path(&format!(
            "ours-{}.toml",
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        ));
        std::fs::write(&path, s).unwrap();
        path.to_str().unwrap().to_string()
    }

    pub fn tag(&self) -> String {
        self.group()["tag"].as_str().unwrap().to_string()
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.path("sim.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

fn rand_suffix() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    (std::process::id() as u128) << 32 | N.fetch_add(1, Ordering::Relaxed) as u128
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Droplets of every group of a `scrape --output json`.
pub fn droplets(scrape: &serde_json::Value) -> Vec<serde_json::Value> {
    scrape["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["droplets"].as_array().unwrap().clone())
        .collect()
}

pub fn mutating(reqs: &[serde_json::Value]) -> Vec<serde_json::Value> {
    reqs.iter()
        .filter(|r| {
            matches!(
                r["method"].as_str(),
                Some("POST" | "DELETE" | "PUT" | "PATCH")
            )
        })
        .filter(|r| !r["path"].as_str().unwrap_or("").starts_with("/_sim/"))
        .cloned()
        .collect()
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
