//! `doscale check` on the real binary: it opens every file the configuration names, checks
//! metric names against do-agent's (`--strict`), says why a token source cannot be used;
//! and the shipped configuration names only files the .deb installs or the operator
//! provides.

use std::path::Path;

use crate::common::*;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

const GROUP: &str = "[[group]]\nname = \"w\"\ntag = \"w\"\nmin = 1\nmax = 2\n";

#[test]
fn check_opens_user_data_and_finds_hook_programs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{GROUP}[group.template]\nregion = \"r\"\nsize = \"s\"\nimage = 1\nuser_data_file = \"missing.yaml\"\n\
         [[group.hook]]\non = \"before_destroy\"\ncommand = [\"/nonexistent/drain\", \"{{id}}\"]\n\
         [[group.hook]]\non = \"after_destroy\"\ncommand = [\"no-such-program-doscale\"]\n\
         [[group.hook]]\non = \"after_create\"\ncommand = [\"true\"]\n"
    );
    let p = write(dir.path(), "c.toml", &cfg);
    let r = run(&["--config", &p, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("c.toml:10:18: `group[w].template.user_data_file`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("missing.yaml: No such file or directory"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("/nonexistent/drain: No such file"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("`no-such-program-doscale` is not found on PATH"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("`true`"), "{}", r.stderr);
    // Once the file is there, check passes.
    write(dir.path(), "missing.yaml", "#cloud-config\n");
    let p = write(
        dir.path(),
        "c.toml",
        &cfg.replace("/nonexistent/drain", "/bin/sh")
            .replace("no-such-program-doscale", "sh"),
    );
    let r = run(&["--config", &p, "check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // A FIFO as user data is refused at once, not waited on.
    let fifo = dir.path().join("missing.yaml");
    std::fs::remove_file(&fifo).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let r = run(&["--config", &p, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
    assert!(r.wall < std::time::Duration::from_secs(10));
}

#[test]
fn a_misspelt_metric_warns_and_fails_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        "{GROUP}[[group.policy]]\nname = \"up\"\nscale = \"up\"\nconditions = [ {{ name = \"l\", expr = 'node_lod1', function = \"mean\", op = \">\", threshold = 1 }} ]\n"
    );
    let p = write(dir.path(), "c.toml", &cfg);
    let env = [("DIGITALOCEAN_TOKEN", "x")];
    let r = run_env(&["--config", &p, "check"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("c.toml:9:"), "{}", r.stderr);
    assert!(
        r.stderr.contains("`node_lod1`") && r.stderr.contains("`node_load1`"),
        "{}",
        r.stderr
    );
    let r = run_env(&["--config", &p, "check", "--strict"], &env);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("node_lod1") && r.stderr.contains("--strict"),
        "{}",
        r.stderr
    );
    let r = run_env(
        &["--config", &p, "--output", "json", "check", "--strict"],
        &env,
    );
    assert_eq!(r.code, 2);
    assert_eq!(r.json()["ok"], false);
    // Listed as an extra metric of the group: accepted.
    let p = write(
        dir.path(),
        "c.toml",
        &cfg.replace(
            "[[group.policy]]",
            "[group.metrics]\nextra_metrics = [\"node_lod1\"]\n[[group.policy]]",
        ),
    );
    let r = run_env(&["--config", &p, "check", "--strict"], &env);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn a_broken_token_file_is_named_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo-token");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (file, reason) in [
        ("nope-token", "No such file or directory"),
        ("fifo-token", "FIFO"),
    ] {
        let cfg = format!(
            "state_file = \"{}/s.json\"\n[api]\nurl = \"http://127.0.0.1:9\"\ntoken_file = \"{file}\"\n{GROUP}",
            dir.path().display()
        );
        let p = write(dir.path(), "c.toml", &cfg);
        let path = dir.path().join(file);
        let r = run(&["--config", &p, "scrape"]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stderr.contains(&format!(
                "token_file is set but {} cannot be used",
                path.display()
            )) && r.stderr.contains(reason),
            "{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("no DigitalOcean API token: set"),
            "{}",
            r.stderr
        );
        let r = run(&["--config", &p, "check"]);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(
            r.stderr.contains("c.toml:4:14: `api.token_file`") && r.stderr.contains(reason),
            "{}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("no API token source is set"),
            "{}",
            r.stderr
        );
        let r = run(&["--config", &p, "check", "--strict"]);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.wall < std::time::Duration::from_secs(10));
    }
}

#[test]
fn doctl_s_variable_is_a_token_source() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!("[api]\nurl = \"http://127.0.0.1:9\"\n{GROUP}");
    let p = write(dir.path(), "c.toml", &cfg);
    let r = run_env(
        &["--config", &p, "-v", "check"],
        &[("DIGITALOCEAN_ACCESS_TOKEN", "dop_v1_doctl")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("$DIGITALOCEAN_ACCESS_TOKEN"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("no API token source"), "{}", r.stderr);
    assert!(!r.all().contains("dop_v1_doctl"));
}

#[test]
fn wrong_types_in_the_file_name_the_key_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "c.toml",
        &GROUP.replace("max = 2", "max = \"20\""),
    );
    let r = run(&["--config", &p, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(
            "c.toml:5:7: `group[w].max`: expected a whole number from 0 to 10000, got \"20\""
        ),
        "{}",
        r.stderr
    );
    let p = write(dir.path(), "c.toml", &format!("{GROUP}warmup = 300\n"));
    let r = run(&["--config", &p, "check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("`group[w].warmup`: expected a duration such as \"5m\""),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("expected a string"), "{}", r.stderr);
}

/// Every absolute path the shipped configuration names (as installed in /etc/doscale, and
/// in its commented-out examples) is installed by an asset of the .deb, or is one the
/// operator provides (the token, documented in docs/operations.md) or a runtime path (the
/// state under StateDirectory=, node_exporter's textfile directory, hook programs).
#[test]
fn the_shipped_config_names_only_files_the_package_installs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap();
    // Installed path (absolute) per source file.
    let installed: Vec<(String, String)> = assets
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            let (src, dest) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
            let name = Path::new(src).file_name().unwrap().to_str().unwrap();
            let dest = if dest.ends_with('/') {
                format!("/{dest}{name}")
            } else {
                format!("/{dest}")
            };
            (src.to_string(), dest)
        })
        .collect();
    let config_at = &installed
        .iter()
        .find(|(s, _)| s == "config/doscale.toml")
        .unwrap()
        .1;
    assert_eq!(config_at, "/etc/doscale/doscale.toml");
    let text = std::fs::read_to_string(root.join("config/doscale.toml")).unwrap();
    let config = doscale::config::parse(Path::new(config_at), &text, &Default::default()).unwrap();
    let mut named: Vec<(String, String)> = config
        .files
        .iter()
        .map(|f| (f.place.key.clone(), f.path.display().to_string()))
        .collect();
    named.push(("state_file".into(), config.state_file.display().to_string()));
    // Commented-out examples: `# key = "/abs/path"`.
    for line in text.lines() {
        let l = line.trim_start_matches('#').trim();
        if let Some((k, v)) = l.split_once('=') {
            let k = k.trim();
            let v = v.trim().split('#').next().unwrap().trim();
            if line.starts_with('#') && k.ends_with("_file") && v.starts_with("\"/") {
                named.push((k.to_string(), v.trim_matches('"').to_string()));
            }
        }
    }
    let ops = std::fs::read_to_string(root.join("docs/operations.md")).unwrap();
    let service =
        std::fs::read_to_string(root.join("contrib/systemd-timer/doscale.service")).unwrap();
    assert!(
        named.iter().any(|(k, _)| k.ends_with("user_data_file")),
        "{named:?}"
    );
    for (key, path) in &named {
        assert!(path.starts_with('/'), "{key} = {path}: not resolved");
        let by_asset = installed.iter().any(|(_, dest)| dest == path);
        let ok = by_asset
            || (key.ends_with("token_file") && ops.contains(path.as_str()))
            || (key == "state_file"
                && path.starts_with("/var/lib/doscale/")
                && service.contains("StateDirectory=doscale"))
            || (key == "metrics_textfile" && ops.contains("textfile"));
        assert!(
            ok,
            "{key} = {path}: installed by no asset of [package.metadata.deb] and not a documented operator-provided or runtime path"
        );
        // What the package installs in /etc is a conffile: edits survive upgrades.
        if by_asset && path.starts_with("/etc/") {
            let conf = manifest["package"]["metadata"]["deb"]["conf-files"]
                .as_array()
                .unwrap();
            assert!(
                conf.iter().any(|c| c.as_str() == Some(path.as_str())),
                "{path} is not a conf-file"
            );
        }
    }
    // And the shipped configuration passes check where it lies (its user data beside it).
    let r = run_env(
        &[
            "--config",
            root.join("config/doscale.toml").to_str().unwrap(),
            "check",
            "--strict",
        ],
        &[("DIGITALOCEAN_TOKEN", "x")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
}
