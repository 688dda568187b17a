//! `doscale backtest`: bad input is exit 2 naming the file and line (in bounded memory, even
//! on 10 GB), the same config and trace give byte-identical JSON, the table, the plot, the
//! synthetic traces; and the decisions equal those of the live pipeline against `doscale sim`.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{cmd, ok, run, run_env, Sim};

/// A one-group config whose CPU policies move fast (no cooldowns, no warm-up).
pub fn config(min: u32, max: u32, extra: &str) -> String {
    format!(
        "state_file = \"state.json\"\n[api]\nurl = \"http://127.0.0.1:9\"\n[[group]]\nname = \"web\"\ntag = \"web\"\n{}",
        body(min, max, 9110, extra)
    )
}

/// The group's keys after its name and tag; `port` is the health check's.
fn body(min: u32, max: u32, port: i64, extra: &str) -> String {
    format!(
        r#"min = {min}
max = {max}
cooldown_up = "0s"
cooldown_down = "0s"
warmup = "0s"
max_step_up = 5
max_step_down = 5
{extra}
[group.template]
name = "web-{{n}}"
region = "nyc3"
size = "s-2vcpu-4gb"
image = "ubuntu-24-04-x64"
tags = ["web"]
[group.health_check]
ports = [{port}]
timeout = "1s"
interval = "100ms"
max_tries = 50
[[group.policy]]
name = "hot"
scale = "up"
step = 2
conditions = [ {{ name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[5m]))', function = "mean", op = ">", threshold = 0.8 }} ]
[[group.policy]]
name = "cold"
scale = "down"
step = 1
conditions = [ {{ name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[5m]))', function = "mean", op = "<", threshold = 0.3 }} ]
"#
    )
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    }
}

#[test]
fn backtest_bad_traces_exit_2_naming_file_and_line() {
    let d = Dir::new();
    let cfg = d.write("a.toml", &config(1, 4, ""));
    let cases = [
        ("empty.csv", "", "empty.csv: the trace has no points"),
        (
            "unsorted.csv",
            "time,load\n0,1\n120,2\n60,3\n",
            "unsorted.csv:4:1: time 1970-01-01T00:01:00+00:00 is not after the previous line's",
        ),
        (
            "negative.csv",
            "0,1\n60,-1\n",
            "negative.csv:2:4: \"-1\" is not a load",
        ),
        (
            "text.csv",
            "0,1\n60,many\n",
            "text.csv:2:4: \"many\" is not a load",
        ),
        (
            "time.csv",
            "0,1\nnoon,1\n",
            "time.csv:2:1: \"noon\" is not a time",
        ),
    ];
    for (name, text, want) in cases {
        let trace = d.write(name, text);
        let r = run(&["backtest", "--config", &cfg, "--trace", &trace]);
        assert_eq!(r.code, 2, "{name}: {}", r.all());
        assert!(r.stderr.contains(want), "{name}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{name}: {}", r.stdout);
    }
    let r = run(&[
        "backtest",
        "--config",
        &cfg,
        "--trace",
        "/nonexistent/t.csv",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("/nonexistent/t.csv: cannot read the trace"),
        "{}",
        r.stderr
    );
    // A config error is the config's, exit 2 with its line.
    let bad = d.write("bad.toml", &config(5, 4, ""));
    let trace = d.write("ok.csv", "0,1\n60,1\n");
    let r = run(&["backtest", "--config", &bad, "--trace", &trace]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("bad.toml:"), "{}", r.stderr);
}

/// 10 GB of garbage: a sparse file of zeros (no disk used) and an endless pipe. Both end at
/// their first line, within a second, having read a few kilobytes.
#[test]
fn backtest_ten_gigabytes_of_garbage_in_bounded_memory() {
    let d = Dir::new();
    let cfg = d.write("a.toml", &config(1, 4, ""));
    let big = d.dir.path().join("big.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(10 << 30).unwrap();
    drop(f);
    let t0 = Instant::now();
    let r = run(&[
        "backtest",
        "--config",
        &cfg,
        "--trace",
        big.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("big.csv:1:4097: the line is longer than 4096 bytes"),
        "{}",
        r.stderr
    );
    assert!(t0.elapsed() < Duration::from_secs(10));

    // An endless stream of short garbage lines on stdin: the header is taken, line 2 is not.
    let mut child = cmd()
        .args(["backtest", "--config", &cfg, "--trace", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = "abc,def\n".repeat(8192);
        let mut sent = 0u64;
        while sent < 10 << 30 {
            if stdin.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        sent
    });
    let out = child.wait_with_output().unwrap();
    let sent = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("-:2:1: \"abc\" is not a time"), "{stderr}");
    assert!(
        sent < 1 << 30,
        "the reader stopped early: {sent} bytes were sent"
    );
}

#[test]
fn backtest_usage_errors() {
    let d = Dir::new();
    let cfg = d.write("a.toml", &config(1, 4, ""));
    let two = d.write(
        "two.toml",
        &format!(
            "{}{}",
            config(1, 4, ""),
            "[[group]]\nname = \"api\"\ntag = \"api\"\nmin = 1\nmax = 2\n"
        ),
    );
    let trace = d.write("t.csv", "0,1\n60,2\n");
    let r = run(&["backtest", "--config", &two, "--trace", &trace]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("has 2 groups (web, api): pick the one"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "backtest", "--config", &two, "--trace", &trace, "--group", "db",
    ]);
    assert_eq!(r.code, 2, "{}", r.all());
    for args in [
        vec!["--capacity", "0"],
        vec!["--utilization", "0"],
        vec!["--utilization", "1.5"],
        vec!["--interval", "soon"],
        vec!["--start", "5"],
        vec!["--steps", "0"],
    ] {
        let mut a = vec!["backtest", "--config", &cfg, "--trace", &trace];
        a.extend(args.iter());
        let r = run(&a);
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
    }
    // Only backtest takes several configurations.
    let r = run(&["--config", &cfg, "--config", &cfg, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("--config is given 2 times"),
        "{}",
        r.stderr
    );
}

#[test]
fn backtest_json_is_byte_identical_twice_and_the_table_and_plot_show_it() {
    let d = Dir::new();
    let a = d.write("a.toml", &config(1, 6, ""));
    let b = d.write("b.toml", &config(2, 6, ""));
    let trace = d.write(
        "t.csv",
        "# minutes\ntime,load\n0,1\n300,3.5\n900,5.2\n1500,0.4\n2400,0.4\n",
    );
    let args = [
        "backtest", "--config", &a, "--config", &b, "--trace", &trace, "-o", "json",
    ];
    let one = ok(&args);
    let two = ok(&args);
    assert_eq!(one.stdout, two.stdout, "same config and trace, same bytes");
    let v = one.json();
    let configs = v["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
    for c in configs {
        let tl = c["timeline"].as_array().unwrap();
        assert_eq!(tl.len(), 41, "{c}");
        for k in [
            "t",
            "load",
            "demand",
            "active",
            "provisioned",
            "desired",
            "created",
            "destroyed",
        ] {
            assert!(tl[0].get(k).is_some(), "timeline without {k}");
        }
        // The supply followed the demand up and down.
        let max_active = tl
            .iter()
            .map(|s| s["active"].as_u64().unwrap())
            .max()
            .unwrap();
        assert!(max_active >= 5, "{c}");
        assert!(
            c["metrics"]["creates"].as_u64().unwrap() >= 3,
            "{}",
            c["metrics"]
        );
        assert!(
            c["metrics"]["destroys"].as_u64().unwrap() >= 3,
            "{}",
            c["metrics"]
        );
    }
    assert_eq!(v["setup"]["steps"], 41);
    let svg = d.dir.path().join("plot.svg");
    let table = ok(&[
        "backtest",
        "--config",
        &a,
        "--config",
        &b,
        "--trace",
        &trace,
        "--plot",
        svg.to_str().unwrap(),
    ]);
    for row in [
        "θU under-provisioning accuracy %",
        "jitter (adaptations/h)",
        "oracle droplet-hours",
    ] {
        assert!(table.stdout.contains(row), "{}", table.stdout);
    }
    assert!(
        table.stdout.contains("a.toml (web 1..6)") && table.stdout.contains("b.toml (web 2..6)")
    );
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("active droplets: ") && svg.contains("demand"));
}

#[test]
fn backtest_synth_writes_a_trace_it_reads_back() {
    let d = Dir::new();
    let r = ok(&[
        "backtest",
        "--synth",
        "flash-crowd",
        "--days",
        "0.5",
        "--peak",
        "3",
    ]);
    assert!(
        r.stdout
            .starts_with("# doscale backtest --synth flash-crowd"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.lines().count(), 2 + 721);
    let trace = d.write("f.csv", &r.stdout);
    let cfg = d.write("a.toml", &config(1, 20, ""));
    let out = ok(&[
        "backtest", "--config", &cfg, "--trace", &trace, "--steps", "30", "-o", "json",
    ]);
    assert_eq!(
        out.json()["configs"][0]["timeline"]
            .as_array()
            .unwrap()
            .len(),
        30
    );
}

/// The same load sequence through the live pipeline (`doscale run` against `doscale sim`, a
/// pass every 2 s of wall time) and through `backtest` (a pass every 2 s of virtual time):
/// pass by pass, the same droplets active, the same desired size, as many created and
/// destroyed. The loads keep the CPU far from the thresholds, so the few milliseconds by which
/// the live passes miss their schedule cannot tip a decision.
#[test]
fn backtest_decides_as_the_live_pipeline_against_doscale_sim() {
    const LOADS: [f64; 13] = [
        2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 3.0, 3.0, 3.0, 3.0, 3.0,
    ];
    const PASS: Duration = Duration::from_secs(2);
    let sim = Sim::start(&["--droplets", "2", "--activate-ms", "300", "--seed", "3"]);
    let port = sim.metrics_port();
    let cfg = sim.config_with(&body(1, 6, port, ""), "");
    let mut live = Vec::new();
    let t0 = Instant::now();
    for (k, load) in LOADS.iter().enumerate() {
        let due = t0 + PASS * k as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sim.put("/_sim/load", serde_json::json!({ "demand": load }));
        let r = run_env(
            &["--config", &cfg, "run", "-o", "json"],
            &[("DIGITALOCEAN_TOKEN", "x")],
        );
        assert_eq!(r.code, 0, "pass {k}: {}", r.all());
        let v = r.json();
        let droplets = crate::common::droplets(&v["scrape"]);
        let active = droplets.iter().filter(|d| d["status"] == "active").count() as u64;
        let plan = &v["plan"]["groups"][0];
        let apply = &v["apply"]["groups"][0];
        live.push((
            k,
            active,
            plan["desired"].as_u64().unwrap(),
            apply["created"].as_array().unwrap().len() as u64,
            apply["destroyed"].as_array().unwrap().len() as u64,
        ));
    }
    let trace: String = LOADS
        .iter()
        .enumerate()
        .map(|(k, l)| format!("{},{l}\n", 2 * k))
        .collect();
    let trace_path = sim.path("trace.csv");
    std::fs::write(&trace_path, trace).unwrap();
    let bt = ok(&[
        "backtest",
        "--config",
        &cfg,
        "--trace",
        trace_path.to_str().unwrap(),
        "--interval",
        "2s",
        "--activate",
        "300ms",
        "--seed",
        "3",
        "-o",
        "json",
    ]);
    let v = bt.json();
    let tl = v["configs"][0]["timeline"].as_array().unwrap();
    let replayed: Vec<_> = tl
        .iter()
        .enumerate()
        .map(|(k, s)| {
            (
                k,
                s["active"].as_u64().unwrap(),
                s["desired"].as_u64().unwrap(),
                s["created"].as_u64().unwrap(),
                s["destroyed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replayed, live,
        "(pass, active, desired, created, destroyed)"
    );
    // The sequence did move the group both ways.
    assert!(
        live.iter().any(|p| p.3 > 0) && live.iter().any(|p| p.4 > 0),
        "{live:?}"
    );
}
