//! The one wrapper around `prometheus-parse`: turns a do-agent page (Prometheus text format)
//! into the series doscale keeps.
//!
//! prometheus-parse is forgiving to a fault: it splits label sets on `,` and `=` without
//! honouring quotes, keeps escapes as they are, and silently drops lines whose name has a
//! `:`. So every sample line we keep is also read by a strict tokenizer of the text format,
//! and a line where the two disagree (or that the library drops) is reported — counted, with
//! an example — and never let through as if its value were right.
//!
//! Only the lines the caller wants are parsed (a cheap name check first), so a page with
//! hundreds of families costs little when the policies use a few.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

use crate::series::{self, SeriesMap};

/// What to keep of a page.
pub trait Keep {
    /// Cheap first check on the metric name alone.
    fn name(&self, name: &str) -> bool;
    /// Whether the series (name + labels) is kept.
    fn series(&self, name: &str, labels: &[(&str, &str)]) -> bool;
}

/// Keeps everything (`scrape --all`, tests).
pub struct KeepAll;

impl Keep for KeepAll {
    fn name(&self, _: &str) -> bool {
        true
    }
    fn series(&self, _: &str, _: &[(&str, &str)]) -> bool {
        true
    }
}

/// The result of reading one page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub series: SeriesMap,
    /// Sample lines seen (kept or not).
    pub samples: u64,
    /// Lines that could not be read faithfully.
    pub bad_lines: u64,
    /// The first of them, shortened.
    pub bad_example: Option<String>,
}

/// Bounds on reading one page: the scrape's per-droplet deadline covers the reading as well
/// as the fetch, and a page with more sample lines than `max_series` is refused outright (a
/// page within `max_body` can still hold a hundred thousand series: seconds of work and a
/// state file a thousand times its size).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub deadline: Option<Instant>,
}

impl Limits {
    /// No bound (tests, the fuzz target).
    pub const NONE: Limits = Limits {
        max_series: usize::MAX,
        deadline: None,
    };

    fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Why a page was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a Prometheus exposition at all (a garbage page is a scrape error of that droplet,
    /// not data).
    NotExposition(String),
    /// More sample lines than [`Limits::max_series`].
    TooManySeries { max: usize },
    /// The deadline passed while reading.
    TimedOut,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotExposition(m) => f.write_str(m),
            Refused::TooManySeries { max } => write!(
                f,
                "the page has more than {max} series, the limit set by [group.metrics] max_series: not read (raise max_series if the droplet really serves that many)"
            ),
            Refused::TimedOut => f.write_str("timed out while reading the page"),
        }
    }
}

/// How many lines are read between two looks at the clock.
const CLOCK_EVERY: usize = 1024;

/// Reads a page. `Err` when the body is not a Prometheus exposition at all (a garbage page
/// is a scrape error of that droplet, not data).
pub fn parse(text: &str, keep: &dyn Keep) -> Result<Parsed, String> {
    parse_limited(text, keep, Limits::NONE).map_err(|e| e.to_string())
}

/// Reads a page within `limits`.
pub fn parse_limited(text: &str, keep: &dyn Keep, limits: Limits) -> Result<Parsed, Refused> {
    let mut out = Parsed::default();
    let mut wanted: Vec<(&str, Strict)> = Vec::new();
    let mut not_sample = 0u64;
    for (i, raw) in lines(text).enumerate() {
        if i % CLOCK_EVERY == 0 && limits.expired() {
            return Err(Refused::TimedOut);
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(name) = line_name(line) else {
            not_sample += 1;
            out.note_bad(line);
            continue;
        };
        out.samples += 1;
        if out.samples > limits.max_series as u64 {
            return Err(Refused::TooManySeries {
                max: limits.max_series,
            });
        }
        if !keep.name(name) {
            continue;
        }
        match strict(line) {
            Ok(s) => {
                let labels: Vec<(&str, &str)> =
                    s.labels.iter().map(|(k, v)| (*k, v.as_ref())).collect();
                if keep.series(s.name, &labels) {
                    wanted.push((line, s));
                }
            }
            Err(_) => out.note_bad(line),
        }
    }
    if out.samples == 0 {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        return Err(Refused::NotExposition(if first.is_empty() {
            "empty page: no metrics".to_string()
        } else {
            format!(
                "not a Prometheus exposition (first line: {:?})",
                crate::output::sanitize(&first.chars().take(60).collect::<String>())
            )
        }));
    }
    if not_sample > out.samples {
        return Err(Refused::NotExposition(format!(
            "not a Prometheus exposition: {not_sample} of {} lines are not samples",
            not_sample + out.samples
        )));
    }
    if wanted.is_empty() {
        return Ok(out);
    }

    // The library reads the wanted lines (without TYPE lines: every sample comes back flat,
    // `Untyped`, so the lines can be read a slice at a time, with a look at the clock
    // between two slices), and must agree with the strict reading on every one of them.
    let mut by_key: HashMap<String, f64> = HashMap::with_capacity(wanted.len());
    for slice in wanted.chunks(4 * CLOCK_EVERY) {
        if limits.expired() {
            return Err(Refused::TimedOut);
        }
        let lib = prometheus_parse::Scrape::parse(slice.iter().map(|(l, _)| Ok((*l).to_string())))
            .map_err(|e| Refused::NotExposition(format!("reading the page: {e}")))?;
        for s in &lib.samples {
            let v = match s.value {
                prometheus_parse::Value::Untyped(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v) => v,
                _ => continue,
            };
            let key = series::key(
                &s.metric,
                s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            by_key.entry(key).or_insert(v);
        }
    }
    for (i, (line, s)) in wanted.into_iter().enumerate() {
        if i % CLOCK_EVERY == 0 && limits.expired() {
            return Err(Refused::TimedOut);
        }
        let key = series::key(s.name, s.labels.iter().map(|(k, v)| (*k, v.as_ref())));
        let agrees = match by_key.get(&key) {
            Some(v) => v.to_bits() == s.value.to_bits() || (v.is_nan() && s.value.is_nan()),
            None => false,
        };
        if !agrees || out.series.contains_key(key.as_str()) {
            // Mangled by the library, dropped by it, or a duplicate series: not trusted.
            out.note_bad(line);
            continue;
        }
        out.series.insert(key.into(), s.value);
    }
    Ok(out)
}

impl Parsed {
    fn note_bad(&mut self, line: &str) {
        self.bad_lines += 1;
        if self.bad_example.is_none() {
            self.bad_example = Some(crate::output::sanitize(
                &line.chars().take(120).collect::<String>(),
            ));
        }
    }
}

/// The metric name at the start of a sample line, if the line looks like one.
/// `str::lines` with a vectorized search for the line ends (a page is read line by line, and a
/// backtest reads millions of pages).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', text.as_bytes())
        .map(Some)
        .chain(std::iter::once(None))
        .filter_map(move |end| {
            let from = start;
            match end {
                Some(e) => {
                    start = e + 1;
                    let line = &text[from..e];
                    Some(line.strip_suffix('\r').unwrap_or(line))
                }
                // The last line, unless the text ends with a line end.
                None if from < text.len() => Some(&text[from..]),
                None => None,
            }
        })
}

fn line_name(line: &str) -> Option<&str> {
    // Bytes, not chars: every byte that ends or makes up a name is ASCII (a backtest reads
    // millions of lines).
    let end = line
        .bytes()
        .position(|b| matches!(b, b'{' | b' ' | b'\t'))?;
    let name = &line[..end];
    valid_name(name).then_some(name)
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {}
        _ => return false,
    }
    bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A sample line read by the text format's grammar.
#[derive(Debug, Clone, PartialEq)]
struct Strict<'a> {
    name: &'a str,
    /// Values borrow the line unless they hold escapes.
    labels: Vec<(&'a str, Cow<'a, str>)>,
    value: f64,
}

fn strict(line: &str) -> Result<Strict<'_>, String> {
    let name = line_name(line).ok_or("no metric name")?;
    let mut rest = &line[name.len()..];
    let mut labels: Vec<(&str, Cow<'_, str>)> = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        // Bytes: every byte the syntax looks for is ASCII, which never occurs inside a
        // multi-byte UTF-8 character, so every index stopped at is a character boundary.
        let b = r.as_bytes();
        let mut i = 0;
        let skip = |i: &mut usize, tab: bool| {
            while b.get(*i).is_some_and(|&c| c == b' ' || (tab && c == b'\t')) {
                *i += 1;
            }
        };
        loop {
            skip(&mut i, true);
            match b.get(i) {
                Some(b'}') => {
                    rest = &r[i + 1..];
                    break;
                }
                None => return Err("unterminated label set".into()),
                _ => {}
            }
            let start = i;
            while b.get(i).is_some_and(|&c| c != b'=' && c != b' ') {
                i += 1;
            }
            let lname = &r[start..i];
            if !valid_label_name(lname) {
                return Err(format!("bad label name {lname:?}"));
            }
            skip(&mut i, false);
            if b.get(i) != Some(&b'=') {
                return Err("expected '=' after a label name".into());
            }
            i += 1;
            skip(&mut i, false);
            if b.get(i) != Some(&b'"') {
                return Err("expected a quoted label value".into());
            }
            i += 1;
            let vstart = i;
            while b.get(i).is_some_and(|&c| c != b'"' && c != b'\\') {
                i += 1;
            }
            let value = if b.get(i) == Some(&b'"') {
                i += 1;
                Cow::Borrowed(&r[vstart..i - 1])
            } else {
                let mut v = String::from(&r[vstart..i]);
                loop {
                    match b.get(i) {
                        None => return Err("unterminated label value".into()),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            match b.get(i + 1) {
                                Some(b'n') => v.push('\n'),
                                Some(b'\\') => v.push('\\'),
                                Some(b'"') => v.push('"'),
                                _ => return Err("bad escape in a label value".into()),
                            }
                            i += 2;
                        }
                        Some(_) => {
                            let c = r[i..].chars().next().expect("not at the end");
                            v.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                Cow::Owned(v)
            };
            if labels.iter().any(|(k, _)| *k == lname) {
                return Err(format!("label {lname:?} appears twice"));
            }
            labels.push((lname, value));
            skip(&mut i, false);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' after a label".into()),
            }
        }
    }
    let mut parts = rest.split_ascii_whitespace();
    let value = parts.next().ok_or("no value")?;
    let value = parse_value(value).ok_or_else(|| format!("bad value {value:?}"))?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err("trailing text after the value".into());
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("expected a space before the value".into());
    }
    Ok(Strict {
        name,
        labels,
        value,
    })
}

/// Go's float syntax as the text format uses it: `NaN`, `+Inf`, `-Inf`, decimals, exponents.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => {
            if s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
            {
                s.parse().ok()
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_those_of_str_lines() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "\n\na\n\n",
            "a\r",
            "é\nü\r\n\r",
            "x\r\r\n",
        ] {
            assert_eq!(
                lines(text).collect::<Vec<_>>(),
                text.lines().collect::<Vec<_>>(),
                "{text:?}"
            );
        }
    }

    fn fixture(rel: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Counts sample lines the way the text format defines them.
    fn sample_lines(text: &str) -> usize {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count()
    }

    #[test]
    fn every_do_agent_fixture_reads_completely() {
        for f in [
            "droplet-2vcpu.prom",
            "droplet-4vcpu.prom",
            "droplet-2vcpu-with-processes.prom",
        ] {
            let text = fixture(&format!("do-agent/{f}"));
            let p = parse(&text, &KeepAll).unwrap();
            assert_eq!(p.bad_lines, 0, "{f}: {:?}", p.bad_example);
            assert_eq!(p.series.len(), sample_lines(&text), "{f}");
            assert!(p.series.contains_key("node_load1"), "{f}");
            assert!(
                p.series
                    .contains_key(r#"node_cpu_seconds_total{cpu="0",mode="idle"}"#),
                "{f}"
            );
        }
        let p = parse(&fixture("do-agent/droplet-2vcpu.prom"), &KeepAll).unwrap();
        assert_eq!(p.series.get("node_load1").copied().unwrap(), 2.44);
        assert_eq!(
            p.series
                .get("node_memory_MemAvailable_bytes")
                .copied()
                .unwrap(),
            2.474622976e10
        );
    }

    #[test]
    fn node_exporter_fixture_reads_without_mangled_values() {
        let text = fixture("node_exporter/e2e-output-v1.8.1.txt");
        let p = parse(&text, &KeepAll).unwrap();
        assert!(p.series.len() > 1000, "{}", p.series.len());
        // Every kept value is what the line says, by an independent reading.
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            if let Ok(s) = strict(line) {
                let key = series::key(s.name, s.labels.iter().map(|(k, v)| (*k, v.as_ref())));
                if let Some(v) = p.series.get(key.as_str()) {
                    assert!(v.to_bits() == s.value.to_bits() || v.is_nan(), "{line}");
                }
            }
        }
        // Lines the library cannot read faithfully are reported, not passed on.
        assert_eq!(
            p.series.len() as u64 + p.bad_lines,
            sample_lines(&text) as u64
        );
    }

    #[test]
    fn tricky_lines_are_reported_not_mangled() {
        let text = concat!(
            "ok_metric 1\n",
            "with_comma{path=\"a,b\"} 2\n",
            "with_equals{q=\"a=b\"} 3\n",
            "with_brace{q=\"a}b\"} 4\n",
            "with_escape{q=\"say \\\"hi\\\"\"} 5\n",
            "job:recorded 6\n",
            "plain{a=\"x\",b=\"y\"} 7 1700000000000\n",
        );
        let p = parse(text, &KeepAll).unwrap();
        assert_eq!(p.series.get("ok_metric"), Some(&1.0));
        assert_eq!(p.series.get(r#"plain{a="x",b="y"}"#), Some(&7.0));
        // none of the tricky ones passed with a wrong value or key
        for k in p.series.keys() {
            assert!(
                &**k == "ok_metric" || k.starts_with("plain"),
                "mangled series let through: {k}"
            );
        }
        assert_eq!(p.bad_lines, 5);
        assert!(p.bad_example.as_deref().unwrap().contains("with_comma"));
    }

    #[test]
    fn special_values() {
        let p = parse("a NaN\nb +Inf\nc -Inf\nd 1e3\n", &KeepAll).unwrap();
        assert!(p.series.get("a").copied().unwrap().is_nan());
        assert_eq!(p.series.get("b").copied().unwrap(), f64::INFINITY);
        assert_eq!(p.series.get("c").copied().unwrap(), f64::NEG_INFINITY);
        assert_eq!(p.series.get("d").copied().unwrap(), 1000.0);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("<html><body>hello</body></html>\n", &KeepAll).is_err());
        assert!(parse("", &KeepAll).is_err());
        assert!(parse("\u{0}\u{1}binary\u{2}", &KeepAll).is_err());
        assert!(parse("# only comments\n", &KeepAll).is_err());
    }

    #[test]
    fn keeps_only_what_is_wanted() {
        struct Idle;
        impl Keep for Idle {
            fn name(&self, n: &str) -> bool {
                n == "node_cpu_seconds_total"
            }
            fn series(&self, _: &str, l: &[(&str, &str)]) -> bool {
                l.iter().any(|(k, v)| *k == "mode" && *v == "idle")
            }
        }
        let p = parse(&fixture("do-agent/droplet-4vcpu.prom"), &Idle).unwrap();
        assert_eq!(p.series.len(), 4);
    }

    #[test]
    fn duplicate_series_are_reported() {
        let p = parse("a 1\na 2\n", &KeepAll).unwrap();
        assert_eq!(p.series.get("a").copied().unwrap(), 1.0);
        assert_eq!(p.bad_lines, 1);
    }
}
