//! Series keys: a metric name with its labels in exposition syntax, labels sorted by name,
//! values escaped as in the text format (`\\`, `\"`, `\n`):
//! `node_cpu_seconds_total{cpu="0",mode="idle"}`. This is the key of every stored sample
//! (state file, `scrape --output json`).

use std::sync::Arc;

use litemap::LiteMap;

/// A series key, shared: the droplets of a scrape read back from the state hold one copy of
/// each key between them.
pub type Key = Arc<str>;

/// Per-droplet samples of one scrape: series key → value, sorted by key. A sorted vector
/// rather than a tree: a droplet has a handful of series (those the policies reference), and
/// thousands of droplets are read from the state on every pass, so one allocation each and
/// binary search over contiguous keys is what keeps a pass quick.
pub type SeriesMap = LiteMap<Key, f64>;

/// The series of `map` whose name is `name` (`name` alone, then `name{…}`), in key order:
/// they are contiguous, except that longer names sharing the prefix sort among them (e.g.
/// `node_load15` between `node_load1` and `node_load1{…}`), which this skips.
pub fn with_name<'a, 'n>(
    map: &'a SeriesMap,
    name: &'n str,
) -> impl Iterator<Item = (&'a str, &'a str, f64)> + use<'a, 'n> {
    let all = map.as_slice();
    let start = all.partition_point(|(k, _)| &**k < name);
    all[start..]
        .iter()
        .map_while(move |(k, v)| k.strip_prefix(name).map(|rest| (&**k, rest, *v)))
        .filter(|(_, rest, _)| rest.is_empty() || rest.starts_with('{'))
}

/// Formats a key from a name and labels (sorted here; empty labels are dropped as Prometheus
/// treats them as absent).
pub fn key<'a>(name: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut ls: Vec<(&str, &str)> = labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    ls.sort();
    if ls.is_empty() {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len() + 16 * ls.len());
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in ls.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// The metric name of a key.
pub fn name_of(key: &str) -> &str {
    key.split('{').next().unwrap_or(key)
}

/// Splits a key back into its name and labels. `None` if the key is not well formed.
pub fn parse(key: &str) -> Option<(&str, Vec<(String, String)>)> {
    let Some(open) = key.find('{') else {
        return Some((key, Vec::new()));
    };
    let name = &key[..open];
    let body = key[open + 1..].strip_suffix('}')?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let mut k = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            k.push(c);
        }
        if k.is_empty() {
            break;
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut v = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                '"' => break,
                c => v.push(c),
            }
        }
        labels.push((k, v));
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return None,
        }
    }
    Some((name, labels))
}

/// The reserved series of a source that evaluates the expressions itself (a Prometheus
/// query API): a droplet's value of an expression is stored as the series
/// `doscale:expr{expr="<text>"}`, and why the source gave none as
/// `doscale:expr_error{error="<why>",expr="<text>"}` (value NaN). Keys are shared by the
/// droplets of a scrape and stored once per scrape, so a reason that every droplet shares
/// costs one key. `:` makes them names no exporter serves by convention (recording rules).
pub const EXPR_VALUE: &str = "doscale:expr";
pub const EXPR_ERROR: &str = "doscale:expr_error";

/// The key of a droplet's value of the expression `text`.
pub fn expr_value_key(text: &str) -> String {
    key(EXPR_VALUE, [("expr", text)])
}

/// The key that says why a droplet has no value of the expression `text`.
pub fn expr_error_key(text: &str, why: &str) -> String {
    key(EXPR_ERROR, [("error", why), ("expr", text)])
}

/// A droplet's value of the expression `text` as its source evaluated it: the value, or why
/// there is none (`Err`). `None` when the droplet carries neither (the source never ran the
/// expression for it).
pub fn expr_result(map: &SeriesMap, text: &str) -> Option<Result<f64, String>> {
    if let Some(v) = map.get(expr_value_key(text).as_str()) {
        return Some(Ok(*v));
    }
    with_name(map, EXPR_ERROR).find_map(|(k, _, _)| {
        let (_, labels) = parse(k)?;
        let get = |n: &str| labels.iter().find(|(l, _)| l == n).map(|(_, v)| v.clone());
        (get("expr").as_deref() == Some(text)).then(|| Err(get("error").unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expression_results_round_trip() {
        let mut m = SeriesMap::new();
        let e = r#"1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m]))"#;
        m.insert(expr_value_key(e).into(), 0.25);
        m.insert(
            expr_error_key("node_load1", "HTTP 503: \"down\"").into(),
            f64::NAN,
        );
        assert_eq!(expr_result(&m, e), Some(Ok(0.25)));
        assert_eq!(
            expr_result(&m, "node_load1"),
            Some(Err("HTTP 503: \"down\"".into()))
        );
        assert_eq!(expr_result(&m, "node_load5"), None);
    }

    #[test]
    fn keys_sort_labels_and_round_trip() {
        let k = key("m", [("mode", "idle"), ("cpu", "0")]);
        assert_eq!(k, r#"m{cpu="0",mode="idle"}"#);
        let (n, ls) = parse(&k).unwrap();
        assert_eq!(n, "m");
        assert_eq!(
            ls,
            vec![("cpu".into(), "0".into()), ("mode".into(), "idle".into())]
        );
        let tricky = key("m", [("path", "a,b=\"c\"}\\\n")]);
        let (_, ls) = parse(&tricky).unwrap();
        assert_eq!(ls[0].1, "a,b=\"c\"}\\\n");
        assert_eq!(key("m", []), "m");
        assert_eq!(name_of(&tricky), "m");
    }
}
