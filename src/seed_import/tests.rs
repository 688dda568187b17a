use super::*;
use crate::config::{self, Function, Match, Op, Scale};

const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/do-scaler/conf.d/web.cfg.example"
);
const TOKEN: &str = "00000000000000000000000000000000000000000000000000000000000000000";

fn load(toml: &str) -> config::Config {
    config::parse(
        Path::new("/etc/doscale/doscale.toml"),
        toml,
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{toml}"))
}

#[test]
fn converts_do_scalers_example() {
    let out = convert(Path::new(SEED)).unwrap();
    assert!(!out.contains(TOKEN), "the token must not be copied:\n{out}");
    assert!(out.contains("DIGITALOCEAN_TOKEN"));
    let cfg = load(&out);
    let g = &cfg.groups[0];
    assert_eq!(
        (g.name.as_str(), g.tag.as_str(), g.min, g.max),
        ("web", "web", 2, 8)
    );
    assert_eq!(g.metrics.port, 9110);
    assert_eq!(g.metrics.address, crate::model::AddressKind::Private);
    let t = g.template.as_ref().unwrap();
    assert_eq!(t.name, "web-{n}");
    assert_eq!(
        (t.region.as_str(), t.size.as_str()),
        ("sfo2", "s-2vcpu-4gb")
    );
    assert_eq!(t.image, serde_json::json!(12345678));
    assert_eq!(
        t.ssh_keys,
        vec![serde_json::json!(
            "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00"
        )]
    );
    assert_eq!(t.tags, vec!["web", "autoscaled"]);
    assert!(out.contains("private_networking has no equivalent"));
    assert_eq!(g.health_check.ports, vec![9110, 80]);
    assert_eq!(g.health_check.timeout, std::time::Duration::from_secs(10));
    assert_eq!(g.health_check.interval, std::time::Duration::from_secs(10));
    assert_eq!(g.health_check.max_tries, 12);
    // The scheduler's interval becomes a note about the timer.
    assert!(out.contains("OnUnitInactiveSec=120s"), "{out}");

    let shape: Vec<(&str, Scale, Match, usize)> = g
        .policies
        .iter()
        .map(|p| (p.name.as_str(), p.scale, p.match_, p.conditions.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            ("mem_avail", Scale::Up, Match::All, 1),
            ("loadavg", Scale::Up, Match::All, 3),
            ("down", Scale::Down, Match::All, 4),
        ]
    );
    let conds = |i: usize| -> Vec<(String, String, Function, Op, f64)> {
        g.policies[i]
            .conditions
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.expr.text().to_string(),
                    c.function,
                    c.op,
                    c.threshold,
                )
            })
            .collect()
    };
    let mem = "node_memory_MemFree_bytes + node_memory_Cached_bytes".to_string();
    assert_eq!(
        conds(0),
        vec![(
            "mem_avail".into(),
            mem.clone(),
            Function::Mean,
            Op::Le,
            2068099072.0
        )]
    );
    assert_eq!(
        conds(1),
        vec![
            (
                "load1".into(),
                "node_load1".into(),
                Function::Mean,
                Op::Ge,
                2.0
            ),
            (
                "load5".into(),
                "node_load5".into(),
                Function::Mean,
                Op::Ge,
                2.0
            ),
            (
                "load15".into(),
                "node_load15".into(),
                Function::Mean,
                Op::Ge,
                2.0
            ),
        ]
    );
    assert_eq!(
        conds(2),
        vec![
            ("mem_avail".into(), mem, Function::Min, Op::Ge, 3102148608.0),
            (
                "load1".into(),
                "node_load1".into(),
                Function::Max,
                Op::Le,
                0.5
            ),
            (
                "load5".into(),
                "node_load5".into(),
                Function::Max,
                Op::Le,
                0.5
            ),
            (
                "load15".into(),
                "node_load15".into(),
                Function::Max,
                Op::Le,
                0.5
            ),
        ]
    );
}

/// A do-scaler tree in a temporary directory: `conf.d/<cfg>`, its policies and droplets.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let t = Tree {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(t.dir.path().join("conf.d/policies")).unwrap();
        std::fs::create_dir_all(t.dir.path().join("conf.d/droplets")).unwrap();
        t
    }
    fn file(&self, rel: &str, text: &str) -> &Self {
        std::fs::write(self.dir.path().join(rel), text).unwrap();
        self
    }
    fn cfg(&self) -> PathBuf {
        self.dir.path().join("conf.d/api.cfg")
    }
}

const CFG: &str = "\
[DEFAULT]
secret = s3cr3t-token-value

[scaler]
do_token = ${secret}
tag_name = api
policy_files = busy.json
    idle.json
    notify.json

[scaler.metrics]
address = ip_address
port = 9200

[digitalocean_create_droplet]
do_token = ${scaler:do_token}
max = 5
droplet = api.json

[digitalocean_destroy_droplet]
min = 1

[notify_slack]
webhook = https://hooks.example/${secret}
";

const DROPLET: &str = r##"{"name": "api", "size": "s-1vcpu-1gb", "image": "ubuntu-22-04-x64", "region": "ams3",
  "tags": ["other"], "user_data": "#!/bin/sh", "ipv6": true, "private_networking": true, "token": "x"}"##;

fn policy(name: &str, actions: &[&str], conditions: &str) -> String {
    format!(
        r#"{{"name": "{name}", "actions": {}, "match": "any", "conditions": [{conditions}]}}"#,
        serde_json::to_string(actions).unwrap()
    )
}

fn cond(
    name: &str,
    samples: &[&str],
    reducer: &str,
    op: &str,
    threshold: &str,
    function: &str,
) -> String {
    let samples: Vec<String> = samples
        .iter()
        .map(|s| format!(r#"{{"family": "{s}", "name": "{s}"}}"#))
        .collect();
    format!(
        r#"{{"name": "{name}", "samples": [{}], "reducer": "{reducer}", "operator": "{op}", "threshold": {threshold}, "function": "{function}"}}"#,
        samples.join(",")
    )
}

fn tree() -> Tree {
    let t = Tree::new();
    t.file("conf.d/api.cfg", CFG)
        .file("conf.d/droplets/api.json", DROPLET)
        .file(
            "conf.d/policies/busy.json",
            &policy(
                "busy",
                &["digitalocean_create_droplet", "notify_slack"],
                &[
                    cond(
                        "ratio",
                        &["a_bytes", "b_bytes", "c_bytes"],
                        "/",
                        ">",
                        "\"0.5\"",
                        "median",
                    ),
                    cond("cpu", &["node_cpu_seconds_total"], "+", "==", "3", "max"),
                ]
                .join(","),
            ),
        )
        .file(
            "conf.d/policies/idle.json",
            &policy(
                "busy",
                &["digitalocean_destroy_droplet"],
                &cond("load", &["node_load1"], "+", "<", "0.1", "mean"),
            ),
        )
        .file(
            "conf.d/policies/notify.json",
            &policy(
                "notify",
                &["notify_slack"],
                &cond("x", &["node_load1"], "+", ">", "9", "max"),
            ),
        );
    t
}

#[test]
fn converts_interpolation_custom_actions_and_oddities() {
    let t = tree();
    let out = convert(&t.cfg()).unwrap();
    assert!(
        !out.contains("s3cr3t"),
        "no secret may leak, not even through interpolation or a custom action:\n{out}"
    );
    let cfg = load(&out);
    let g = &cfg.groups[0];
    assert_eq!(
        (g.name.as_str(), g.min, g.max, g.metrics.port),
        ("api", 1, 5, 9200)
    );
    assert_eq!(g.metrics.address, crate::model::AddressKind::Public);
    let tpl = g.template.as_ref().unwrap();
    assert_eq!(tpl.name, "api-{n}");
    assert_eq!(tpl.tags, vec!["api", "other"]);
    assert_eq!(tpl.image, serde_json::json!("ubuntu-22-04-x64"));
    assert_eq!(tpl.ipv6, Some(true));
    for note in [
        "user_data: write it to a file",
        "private_networking has no equivalent",
        "\"notify_slack\" has no equivalent: run it as a hook",
        "group tag \"api\" was added",
    ] {
        assert!(out.contains(note), "missing note {note:?}:\n{out}");
    }
    // busy: "any", so the condition doscale cannot take (per-cpu series) is commented out and
    // the other stays; idle's duplicate name is made unique; notify only runs a custom action.
    let names: Vec<&str> = g.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["busy", "busy-2"]);
    let busy = &g.policies[0];
    assert_eq!(busy.match_, Match::Any);
    assert_eq!(busy.conditions.len(), 1);
    assert_eq!(
        busy.conditions[0].expr.text(),
        "a_bytes / b_bytes / c_bytes"
    );
    assert_eq!(
        (busy.conditions[0].function, busy.conditions[0].threshold),
        (Function::Median, 0.5)
    );
    assert!(
        out.contains("# { name = \"cpu\", expr = \"node_cpu_seconds_total\""),
        "{out}"
    );
    assert_eq!(g.policies[1].scale, Scale::Down);
    assert!(out.contains("neither creates nor destroys"));
    // No do-scaler.cfg beside conf.d: a general note about the timer.
    assert!(out.contains("OnUnitInactiveSec= in doscale.timer"));
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let err = |t: &Tree| format!("{:#}", convert(&t.cfg()).unwrap_err());

    let t = tree();
    std::fs::remove_file(t.dir.path().join("conf.d/policies/idle.json")).unwrap();
    let e = err(&t);
    assert!(e.contains("idle.json") && e.contains("policy_files"), "{e}");

    let t = tree();
    t.file("conf.d/policies/idle.json", "{ not json");
    let e = err(&t);
    assert!(e.contains("idle.json: not valid JSON"), "{e}");

    let t = tree();
    t.file(
        "conf.d/policies/idle.json",
        &policy(
            "idle",
            &["digitalocean_destroy_droplet"],
            &cond("load", &["node_load1"], "+", "=>", "1", "mean"),
        ),
    );
    let e = err(&t);
    assert!(
        e.contains("idle.json: condition \"load\": operator \"=>\""),
        "{e}"
    );

    let t = tree();
    t.file("conf.d/api.cfg", &CFG.replace("min = 1\n", ""));
    let e = err(&t);
    assert!(
        e.contains("api.cfg: [digitalocean_destroy_droplet] min is missing"),
        "{e}"
    );

    let t = tree();
    t.file(
        "conf.d/api.cfg",
        &CFG.replace("max = 5", "max = ${limits:max}"),
    );
    let e = err(&t);
    assert!(e.contains("api.cfg: [digitalocean_create_droplet] max: ${limits:max} refers to a value that does not exist"), "{e}");

    // A broken reference in a value doscale does not read (the token) is no obstacle.
    let t = tree();
    t.file(
        "conf.d/api.cfg",
        &CFG.replace("${scaler:do_token}", "${scaler:do_tokn}"),
    );
    assert!(convert(&t.cfg()).is_ok());

    let t = tree();
    t.file(
        "conf.d/api.cfg",
        &CFG.replace("tag_name = api\n", "tag_name = api\ntag_name = web\n"),
    );
    let e = err(&t);
    assert!(
        e.contains("api.cfg: line") && e.contains("appears twice"),
        "{e}"
    );

    let t = tree();
    t.file(
        "conf.d/droplets/api.json",
        r#"{"name": "api-{}", "size_slug": "s", "region": "r"}"#,
    );
    let e = err(&t);
    assert!(e.contains("api.json: \"image\""), "{e}");

    let e = format!(
        "{:#}",
        convert(Path::new("/nonexistent/web.cfg")).unwrap_err()
    );
    assert!(e.contains("/nonexistent/web.cfg"), "{e}");
}

/// Several scaler files make one configuration: one header and `[api]`, one `[[group]]` per
/// file, in the order given, each saying where it came from.
#[test]
fn several_scaler_files_make_one_configuration() {
    let t = tree();
    let web = PathBuf::from(SEED);
    let out = convert_all(&[web.clone(), t.cfg()]).unwrap();
    let cfg = load(&out);
    let groups: Vec<(&str, &str)> = cfg
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.tag.as_str()))
        .collect();
    assert_eq!(groups, vec![("web", "web"), ("api", "api")], "{out}");
    assert_eq!(out.matches("\n[api]\n").count(), 1, "{out}");
    assert_eq!(
        out.matches("# doscale configuration converted").count(),
        1,
        "{out}"
    );
    for f in [&web, &t.cfg()] {
        assert!(out.contains(&f.display().to_string()), "{out}");
    }
    // Each group keeps exactly what converting its file alone gives.
    for (i, f) in [&web, &t.cfg()].into_iter().enumerate() {
        let alone = load(&convert(f).unwrap());
        assert_eq!(
            format!("{:?}", cfg.groups[i]),
            format!("{:?}", alone.groups[0])
        );
    }
    assert!(!out.contains("s3cr3t"), "{out}");
    // One file is the one-file conversion, unchanged.
    assert_eq!(
        convert_all(std::slice::from_ref(&web)).unwrap(),
        convert(&web).unwrap()
    );
}

/// Two scaler files for the same tag (or group name) cannot both be kept: the error names both.
#[test]
fn several_scaler_files_with_one_tag_are_refused_naming_both() {
    let t = tree();
    t.file("conf.d/api2.cfg", CFG);
    let second = t.dir.path().join("conf.d/api2.cfg");
    let e = format!("{:#}", convert_all(&[t.cfg(), second.clone()]).unwrap_err());
    assert!(
        e.contains(&t.cfg().display().to_string())
            && e.contains(&second.display().to_string())
            && e.contains("\"api\""),
        "{e}"
    );
    // An error in one file names that file.
    let e = format!(
        "{:#}",
        convert_all(&[t.cfg(), PathBuf::from("/nonexistent/web.cfg")]).unwrap_err()
    );
    assert!(e.contains("/nonexistent/web.cfg"), "{e}");
}
