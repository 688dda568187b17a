//! What every key of the configuration takes, in the operator's words, and the translation
//! of serde's errors ("invalid type: string \"20\", expected i64") into messages that name
//! the key and say what was expected ("`group[web].max`: expected a whole number from 0 to
//! 10000, got \"20\" (write numbers without quotes)").
//!
//! serde's own errors name no key and speak Rust; `serde_path_to_error` gives the path of
//! the value that failed (`group[0].max`), the untyped document gives the names of the
//! tables on that path (`group[web]`), and the table below what the key takes.

use std::ops::Range;

use serde_path_to_error::Segment;

use crate::error::ConfigError;

/// A duration, as `parse_duration` reads it.
const DURATION: &str = "a duration such as \"5m\" (a number and a unit: s, m, h, in quotes)";
const PATH: &str = "a file path in quotes, e.g. \"/etc/doscale/token\"";
const NAME: &str = "a name in quotes, e.g. \"web\"";
const FUNCTION: &str =
    "one of \"min\", \"max\", \"mean\", \"median\", \"sum\" or a percentile such as \"p90\"";

/// What the key at `schema` (the path with its indices and names left out, e.g.
/// `group.policy.conditions.threshold`) takes. `None` for a key this table does not know:
/// the message then says what kind of value serde wanted, in plain words.
pub(super) fn expected(schema: &str) -> Option<&'static str> {
    Some(match schema {
        "state_file"
        | "metrics_textfile"
        | "api.token_file"
        | "group.template.user_data_file"
        | "group.metrics.prometheus.bearer_token_file"
        | "group.metrics.prometheus.basic_auth_file"
        | "group.metrics.prometheus.ca_file" => PATH,
        "plan_max_age"
        | "max_scrape_age"
        | "api.timeout"
        | "group.cooldown_up"
        | "group.cooldown_down"
        | "group.warmup"
        | "group.metrics.timeout"
        | "group.metrics.prometheus.timeout"
        | "group.health_check.timeout"
        | "group.health_check.interval"
        | "group.target.stabilization_down"
        | "group.hook.timeout" => DURATION,
        "api" => "a table: [api]",
        "api.url" => "a URL in quotes, e.g. \"https://api.digitalocean.com\"",
        "group" => "tables written [[group]], one per group",
        "group.name" | "group.policy.name" | "group.policy.conditions.name" => NAME,
        "group.tag" | "group.protect_tag" => "a droplet tag in quotes, e.g. \"web\"",
        "group.min" | "group.max" => "a whole number from 0 to 10000",
        "group.max_step_up"
        | "group.max_step_down"
        | "group.policy.step"
        | "group.health_check.max_tries" => "a whole number from 1 to 10000",
        "group.remove" => "one of \"newest\", \"oldest\" or \"least_loaded\"",
        "group.min_reporting" => "a share from 0.0 to 1.0, e.g. 0.9",
        "group.max_destroy_share" => "a share above 0.0 and up to 1.0, e.g. 0.5",
        "group.on_unhealthy" => "one of \"keep\" or \"destroy\"",
        "group.metrics" => "a table: [group.metrics]",
        "group.metrics.address" => "one of \"private\", \"public\" or \"ipv6\"",
        "group.metrics.port" => "a port number from 1 to 65535",
        "group.metrics.path" => "a URL path in quotes, e.g. \"/\"",
        "group.metrics.concurrency" => "a whole number from 1 to 4096",
        "group.metrics.source" => "one of \"scrape\", \"prometheus\" or \"digitalocean\"",
        "group.metrics.digitalocean" => "a table: [group.metrics.digitalocean]",
        "group.metrics.digitalocean.budget_per_minute" => "a whole number from 1 to 250",
        "group.metrics.digitalocean.budget_per_hour" => "a whole number from 1 to 5000",
        "group.metrics.digitalocean.window" => DURATION,
        "group.metrics.max_series" => "a whole number from 1 to 10000000",
        "group.metrics.max_body" => "a size in quotes such as \"4MB\" or \"512KiB\"",
        "group.metrics.extra_metrics" => {
            "a list of metric names in quotes, e.g. [\"node_filesystem_avail_bytes\", \"myapp_*\"]"
        }
        "group.metrics.prometheus" => "a table: [group.metrics.prometheus]",
        "group.metrics.prometheus.url" => "a URL in quotes, e.g. \"http://127.0.0.1:9090\"",
        "group.metrics.prometheus.droplet_label" => {
            "a label name in quotes: \"droplet_id\" (the droplet id) or \"instance\" (address:port)"
        }
        "group.metrics.prometheus.headers" => {
            "a table of header names and values in quotes, e.g. { X-Scope-OrgID = \"team-a\" }"
        }
        "group.metrics.prometheus.allow_insecure_http" => "true or false (without quotes)",
        "group.template" => "a table: [group.template]",
        "group.template.name" => "a name pattern in quotes with {n} or {rand}, e.g. \"web-{n}\"",
        "group.template.region" => "a region slug in quotes, e.g. \"sfo2\"",
        "group.template.size" => "a size slug in quotes, e.g. \"s-2vcpu-4gb\"",
        "group.template.image" => "an image id (a whole number) or slug (in quotes)",
        "group.template.ssh_keys" => {
            "a list of SSH key fingerprints (in quotes) or ids (whole numbers), e.g. [\"aa:bb:...\", 12345]"
        }
        "group.template.vpc_uuid" => "a VPC id in quotes",
        "group.template.tags" => "a list of tags in quotes, e.g. [\"web\", \"autoscaled\"]",
        "group.template.monitoring" | "group.template.ipv6" | "group.template.backups" => {
            "true or false (without quotes)"
        }
        "group.health_check" => "a table: [group.health_check]",
        "group.health_check.ports" => "a list of port numbers from 1 to 65535, e.g. [9110, 80]",
        "group.policy" => "tables written [[group.policy]], one per policy",
        "group.policy.scale" => "one of \"up\" or \"down\"",
        "group.policy.match" => "one of \"all\" or \"any\"",
        "group.policy.conditions" => {
            "a list of conditions, e.g. [ { name = \"load1\", expr = \"node_load1\", function = \"mean\", op = \">=\", threshold = 2 } ]"
        }
        "group.policy.conditions.expr" | "group.target.expr" => {
            "a PromQL expression in quotes, e.g. \"node_load1\""
        }
        "group.policy.conditions.function" | "group.target.function" => FUNCTION,
        "group.policy.conditions.op" => "one of \"<\", \"<=\", \">\", \">=\", \"==\" or \"!=\"",
        "group.policy.conditions.threshold" => "a number, e.g. 2 or 0.5",
        "group.target" => "a table: [group.target]",
        "group.target.value" => "a number above 0, e.g. 0.6",
        "group.target.tolerance" => "a share from 0.0 to below 1.0, e.g. 0.1",
        "group.hook" => "tables written [[group.hook]], one per hook",
        "group.hook.on" => {
            "one of \"before_create\", \"after_create\", \"before_destroy\" or \"after_destroy\""
        }
        "group.hook.command" => {
            "a list: the program, then its arguments, e.g. [\"/usr/local/bin/drain\", \"{id}\"]"
        }
        _ => return None,
    })
}

/// For a key that takes one of a few words: what a word is called and the words, for
/// "unknown value \"random\": expected \"newest\", \"oldest\" or \"least_loaded\"".
fn words(schema: &str) -> Option<(&'static str, &'static str)> {
    Some(match schema {
        "group.remove" => ("value", "\"newest\", \"oldest\" or \"least_loaded\""),
        "group.on_unhealthy" => ("value", "\"keep\" or \"destroy\""),
        "group.metrics.address" => ("address", "\"private\", \"public\" or \"ipv6\""),
        "group.metrics.source" => ("source", "\"scrape\", \"prometheus\" or \"digitalocean\""),
        "group.policy.scale" => ("value", "\"up\" or \"down\""),
        "group.policy.match" => ("value", "\"all\" or \"any\""),
        "group.policy.conditions.op" => ("operator", "one of < <= > >= == !="),
        "group.hook.on" => (
            "event",
            "before_create, after_create, before_destroy or after_destroy",
        ),
        _ => return None,
    })
}

/// serde's name of an expected kind of value, in plain words (for keys the table lacks).
fn plain_kind(serde_expected: &str) -> String {
    let e = serde_expected.trim();
    match e {
        "i8" | "i16" | "i32" | "i64" | "i128" | "u8" | "u16" | "u32" | "u64" | "u128" | "isize"
        | "usize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a string" | "a borrowed string" | "a character" => "text in quotes".into(),
        "a boolean" => "true or false (without quotes)".into(),
        "a sequence" => "a list in brackets, e.g. [\"a\", \"b\"]".into(),
        _ if e.starts_with("struct ") || e == "a map" => "a table".into(),
        _ => format!("something else ({e})"),
    }
}

/// The key path of an error, for the message (`group[web].policy[up].step`), and its schema
/// path, for the table (`group.policy.step`).
fn key_of(path: &serde_path_to_error::Path, doc: Option<&toml::Table>) -> (String, String) {
    let mut shown = String::new();
    let mut schema = String::new();
    let mut at: Option<&toml::Value> = None;
    let mut root = true;
    for seg in path.iter() {
        match seg {
            Segment::Map { key } => {
                // Spanned<T> is a struct with private field names: not a key of the file.
                if key.starts_with("$__") {
                    continue;
                }
                if !shown.is_empty() {
                    shown.push('.');
                    schema.push('.');
                }
                shown.push_str(key);
                schema.push_str(key);
                at = if root {
                    doc.and_then(|d| d.get(key.as_str()))
                } else {
                    at.and_then(|v| v.get(key.as_str()))
                };
                root = false;
            }
            Segment::Seq { index } => {
                let elem = at.and_then(|v| v.get(*index));
                // Tables with a name (groups, policies, conditions) go by it, others by index.
                match elem.and_then(|e| e.get("name")).and_then(|n| n.as_str()) {
                    Some(n) => shown.push_str(&format!("[{n}]")),
                    None => shown.push_str(&format!("[{index}]")),
                }
                at = elem;
            }
            Segment::Enum { variant } => {
                shown.push_str(&format!(".{variant}"));
            }
            Segment::Unknown => {}
        }
    }
    (shown, schema)
}

/// A bare key written on the line of `span` (`min = 9999…`): for the parse errors that come
/// without a path.
fn key_on_line(text: &str, span: &Range<usize>) -> Option<String> {
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ok.then(|| key.to_string())
}

/// The text of the file at `span`, shortened, for "got …".
fn source_at(text: &str, span: &Range<usize>) -> Option<String> {
    let s = text.get(span.clone())?.trim();
    if s.is_empty() {
        return None;
    }
    let one_line = s.lines().next().unwrap_or_default();
    let mut shown: String = one_line.chars().take(40).collect();
    if shown.len() < s.len() {
        shown.push('…');
    }
    Some(crate::clean::sanitize(&shown))
}

/// Translates a deserialisation error of the configuration into a [`ConfigError`] that
/// names the key and says what was expected in the operator's words.
pub(super) fn translate(
    e: &serde_path_to_error::Error<toml::de::Error>,
    text: &str,
    at: &dyn Fn(Range<usize>, &str, String) -> ConfigError,
) -> ConfigError {
    let inner = e.inner();
    let span = inner.span().unwrap_or(0..0);
    let msg = inner.message().trim().to_string();
    // The untyped document names the tables on the path; only read when needed.
    let doc: Option<toml::Table> = text.parse().ok();
    let (key, schema) = key_of(e.path(), doc.as_ref());

    // toml's words for a value of the wrong type where a word of an enum belongs.
    let enum_type = (msg == "wanted string or table").then_some("");
    if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
        .or(enum_type)
    {
        let serde_expected = rest
            .rsplit_once(", expected ")
            .map(|(_, x)| x)
            .unwrap_or("");
        let want = expected(&schema)
            .map(str::to_string)
            .unwrap_or_else(|| plain_kind(serde_expected));
        let got = source_at(text, &span)
            .map(|s| format!(", got {s}"))
            .unwrap_or_default();
        let quoted = got.starts_with(", got \"") || got.starts_with(", got '");
        let hint = if want.starts_with("a duration") && !quoted {
            " (write it in quotes with a unit, e.g. \"300s\")"
        } else if quoted && (want.contains("number") || want.contains("share")) {
            " (write numbers without quotes)"
        } else if quoted && want.starts_with("true or false") {
            " (write true or false without quotes)"
        } else {
            ""
        };
        return at(span, &key, format!("expected {want}{got}{hint}"));
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        // A word the key does not take (the enums of the configuration derive Deserialize).
        let (got, serde_words) = rest.rsplit_once("`, expected ").unwrap_or((rest, ""));
        let (noun, words) = words(&schema).unwrap_or(("value", serde_words));
        return at(
            span,
            &key,
            format!("unknown {noun} {got:?}: expected {words}"),
        );
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let key = if key.is_empty() {
            field.to_string()
        } else {
            format!("{key}.{field}")
        };
        let schema = if schema.is_empty() {
            field.to_string()
        } else {
            format!("{schema}.{field}")
        };
        let want = expected(&schema).unwrap_or("a value");
        return at(span, &key, format!("this key is required: expected {want}"));
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let known: Vec<&str> = rest
            .split_once("expected ")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let closest = known
            .iter()
            .map(|k| (strsim::jaro_winkler(field, k), *k))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        let list = if known.is_empty() {
            String::new()
        } else {
            format!(": expected one of {}", known.join(", "))
        };
        return at(span, &key, format!("unknown key `{field}`{closest}{list}"));
    }
    // A parse error of the TOML itself, or one without a path: name the key on its line.
    let key = if key.is_empty() {
        key_on_line(text, &span).unwrap_or_default()
    } else {
        key
    };
    let msg = match msg.as_str() {
        "number too large to fit in target type" => {
            "the number is too large: expected a whole number from the range the key allows"
                .to_string()
        }
        _ => msg,
    };
    at(span, &key, msg)
}
