//! The request bodies doscale sends match DigitalOcean's own OpenAPI spec
//! (`tests/fixtures/digitalocean-openapi/`): every `POST /v2/droplets` body validates
//! against the spec's `droplet_multi_create` schema, and the responses the client reads are
//! shaped like its `droplet` schema.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::*;

pub fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/digitalocean-openapi/DigitalOcean-public.v2.bundled.yaml"
    );
    let text = std::fs::read_to_string(path).expect("the OpenAPI spec in tests/fixtures");
    // A few limits in the spec are integers above u64 (e.g. 18446744073709552000): read them
    // as floats, which YAML and JSON can both hold.
    let text = regex::Regex::new(r"(?m)(:[ \t]*-?)([0-9]{20,})[ \t]*$")
        .unwrap()
        .replace_all(&text, "${1}${2}.0");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("the spec parses");
    let mut spec = to_json(yaml);
    nullable(&mut spec);
    spec
}

/// OpenAPI 3.0's `nullable: true` is not JSON Schema: say it the JSON Schema way.
fn nullable(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (_, x) in o.iter_mut() {
                nullable(x);
            }
            if o.remove("nullable") == Some(Value::Bool(true)) {
                let inner = Value::Object(std::mem::take(o));
                o.insert("anyOf".into(), json!([inner, {"type": "null"}]));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(nullable),
        _ => {}
    }
}

/// YAML to JSON; numbers JSON cannot hold exactly (the spec has some above u64) become floats.
fn to_json(y: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match y {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64().unwrap_or(f64::MAX))
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(v) => Value::Array(v.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    (
                        k.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| format!("{k:?}")),
                        to_json(v),
                    )
                })
                .collect(),
        ),
        Y::Tagged(t) => to_json(t.value),
    }
}

pub fn validator(spec: &Value, schema: &str) -> jsonschema::Validator {
    let root =
        json!({"$ref": format!("#/components/schemas/{schema}"), "components": spec["components"]});
    jsonschema::validator_for(&root).expect("the schema compiles")
}

pub fn errors(v: &jsonschema::Validator, body: &Value) -> Vec<String> {
    v.iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn create_bodies_validate_against_droplet_multi_create() {
    let spec = spec();
    let v = validator(&spec, "droplet_multi_create");
    // every template field, as the example configuration has them
    let dir = tempfile::tempdir().unwrap();
    let ud = dir.path().join("user-data.yaml");
    std::fs::write(&ud, "#cloud-config\nruncmd:\n  - echo hi\n").unwrap();
    let text = format!(
        "[[group]]\nname = \"web\"\ntag = \"web\"\nmin = 1\nmax = 30\n[group.template]\nname = \"web-{{n}}\"\nregion = \"sfo2\"\nsize = \"s-2vcpu-4gb\"\nimage = 12345678\nssh_keys = [\"00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\", 289794]\nvpc_uuid = \"5a4981aa-9653-4bd1-bef5-d6bff52042e4\"\nuser_data_file = \"{}\"\ntags = [\"web\", \"autoscaled\"]\nmonitoring = true\nipv6 = true\nbackups = false\n",
        ud.display()
    );
    let cfg =
        doscale::config::parse(Path::new("/t/doscale.toml"), &text, &Default::default()).unwrap();
    let names: Vec<String> = (1..=23).map(|i| format!("web-{i}")).collect();
    let bodies = doscale::apply::create_requests(&cfg.groups[0], &names).unwrap();
    assert_eq!(bodies.len(), 3, "at most 10 names per request");
    for b in &bodies {
        let body = serde_json::to_value(b).unwrap();
        assert!(body["names"].as_array().unwrap().len() <= 10);
        let errs = errors(&v, &body);
        assert!(errs.is_empty(), "{body}: {errs:?}");
    }
    // the check can fail: a body without a size, or with a bad name, is refused
    let mut bad = serde_json::to_value(&bodies[0]).unwrap();
    bad.as_object_mut().unwrap().remove("size");
    assert!(!errors(&v, &bad).is_empty());
    let mut bad = serde_json::to_value(&bodies[0]).unwrap();
    bad["names"] = json!(["-not a hostname-"]);
    assert!(!errors(&v, &bad).is_empty());
}

#[test]
fn bodies_sent_to_the_simulator_validate_and_its_droplets_are_spec_shaped() {
    let spec = spec();
    let create = validator(&spec, "droplet_multi_create");
    let droplet = validator(&spec, "droplet");
    let sim = Sim::start(&["--droplets", "2", "--activate-ms", "100"]);
    let cfg = sim.config_with(
        &format!(
            "min = 4\nmax = 6\nwarmup = \"0s\"\n[group.template]\nname = \"spec-{{n}}\"\nregion = \"nyc3\"\nsize = \"s-1vcpu-1gb\"\nimage = \"ubuntu-24-04-x64\"\nmonitoring = true\n[group.health_check]\nports = [{p}]\ninterval = \"100ms\"\nmax_tries = 50\n[group.metrics]\nport = {p}",
            p = sim.metrics_port()
        ),
        "",
    );
    ok(&["--config", &cfg, "run"]);
    let posts: Vec<Value> = sim
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    for p in &posts {
        let errs = errors(&create, &p["body"]);
        assert!(errs.is_empty(), "{}: {errs:?}", p["body"]);
    }
    // what the simulator lists is what the spec says a droplet is (the client reads it)
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let list: Value = client
        .get(format!("{}/v2/droplets?tag_name={}", sim.url, sim.tag()))
        .bearer_auth("t")
        .send()
        .unwrap()
        .json()
        .unwrap();
    for d in list["droplets"].as_array().unwrap() {
        let errs = errors(&droplet, d);
        assert!(errs.is_empty(), "{d}: {errs:?}");
    }
}
