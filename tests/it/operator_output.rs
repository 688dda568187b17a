//! What an operator sees (issue 13): priorities under journald, the global flags before
//! every subcommand on the real binary, `run`'s one line per group.

use std::os::unix::fs::MetadataExt;
use std::process::Stdio;

use crate::common::{cmd, ok, run, Sim};

/// Runs doscale with stderr into a file; `journal` sets JOURNAL_STREAM to that file's
/// device:inode (as systemd does for a service whose stderr is the journal), or to another
/// file's. Returns (exit code, stderr).
fn with_journal(args: &[&str], journal: Option<bool>) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut c = cmd();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::from(file));
    c.env("RUST_LOG", "");
    match journal {
        Some(true) => {
            c.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        Some(false) => {
            c.env(
                "JOURNAL_STREAM",
                format!("{}:{}", meta.dev(), meta.ino() + 1),
            );
        }
        None => {
            c.env_remove("JOURNAL_STREAM");
        }
    }
    let status = c.status().unwrap();
    (
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&path).unwrap(),
    )
}

fn tokenless_config(dir: &std::path::Path) -> String {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "state_file = \"{}/s.json\"\n[api]\nurl = \"http://127.0.0.1:9\"\n[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n",
            dir.display()
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

fn assert_every_line_has(stderr: &str, prefixes: &[&str]) {
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        assert!(
            prefixes.iter().any(|p| line.starts_with(p)),
            "a line without {prefixes:?}: {line:?} in\n{stderr}"
        );
    }
}

#[test]
fn under_journald_every_stderr_line_carries_its_priority() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tokenless_config(dir.path());
    // A warning (no token source), and info and debug lines with -vv.
    let (code, err) = with_journal(&["--config", &cfg, "check"], Some(true));
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("<4>") && err.contains("token"), "{err}");
    assert_every_line_has(&err, &["<4>"]);
    let (code, err) = with_journal(&["-vv", "--config", &cfg, "check"], Some(true));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("<6>"), "{err}");
    assert_every_line_has(&err, &["<4>", "<6>", "<7>"]);
    // The final error report of a command (a runtime error: no token to call the API).
    let (code, err) = with_journal(&["--config", &cfg, "scrape"], Some(true));
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("<3>error: "), "{err}");
    assert_every_line_has(&err, &["<3>"]);
    // A usage error of several lines (clap's, with its usage and hint).
    let (code, err) = with_journal(&["--wait=5m", "--config", &cfg, "check"], Some(true));
    assert_eq!(code, 2, "{err}");
    assert!(err.lines().count() > 1, "{err}");
    assert_every_line_has(&err, &["<3>"]);
    // A config error.
    let (code, err) = with_journal(
        &["--config", "/nonexistent/doscale.toml", "check"],
        Some(true),
    );
    assert_eq!(code, 2, "{err}");
    assert_every_line_has(&err, &["<3>"]);

    // JOURNAL_STREAM that names another file (inherited, stderr redirected), or none: no
    // prefixes.
    for journal in [Some(false), None] {
        let (_, err) = with_journal(&["-vv", "--config", &cfg, "check"], journal);
        assert!(err.contains("token"), "{err}");
        assert!(!err.contains("<4>") && !err.contains("<6>"), "{err}");
        let (_, err) = with_journal(&["--config", &cfg, "scrape"], journal);
        assert!(err.starts_with("error: "), "{err}");
    }
}

#[test]
fn global_flags_before_subcommands_on_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tokenless_config(dir.path());
    for flags in [
        vec!["--wait"],
        vec!["--wait-for", "1s"],
        vec!["--no-headers"],
        vec!["-o", "wide"],
        vec!["-v"],
        vec!["-q"],
    ] {
        let mut args = flags.clone();
        args.extend(["--config", &cfg, "check"]);
        ok(&args);
        // `plan` is the subcommand, not the value of the flag: it runs and asks for an
        // evaluation (there is none).
        let mut args = vec!["--config", &cfg];
        args.extend(flags.iter().copied());
        args.push("plan");
        let r = run(&args);
        assert!(
            r.stderr.contains("run `doscale evaluate` first"),
            "{args:?}: {}",
            r.all()
        );
    }
    let r = run(&["--wait-for", "soon", "--config", &cfg, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--wait-for soon"), "{}", r.stderr);
}

#[test]
fn run_prints_one_line_per_group_unless_asked_for_tables() {
    let sim = Sim::start(&["--droplets", "3"]);
    let r = ok(&["--wait", "--config", sim.cfg(), "run", "--dry-run"]);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(
        r.stdout.starts_with(&format!(
            "{}: size 3, desired 3, no change",
            sim.group()["name"].as_str().unwrap()
        )),
        "{}",
        r.stdout
    );
    for tables in [vec!["run", "--tables"], vec!["-v", "run"]] {
        let mut args = vec!["--config", sim.cfg()];
        args.extend(tables.iter().copied());
        let r = ok(&args);
        assert!(
            r.stdout.contains("┆ desired ┆") && r.stdout.contains("why"),
            "{tables:?}: {}",
            r.stdout
        );
    }
    // JSON is unchanged.
    let r = ok(&["--config", sim.cfg(), "run", "--output", "json"]);
    let j = r.json();
    assert!(j["plan"]["groups"].is_array() && j["evaluate"]["groups"].is_array());
}
