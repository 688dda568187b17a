//! Demand traces: CSV of `time,load` read as a stream (a line at a time, each line at most
//! [`MAX_LINE`] bytes, at most [`MAX_POINTS`] points), so a file of any size — 10 GB of
//! garbage included — costs bounded memory and stops at its first bad line, named
//! `file:line:column`.
//!
//! Format: one `time,load` pair a line; `time` is RFC 3339 (`2026-01-05T14:00:00Z`) or Unix
//! seconds (`1767621600`, fractions allowed); `load` a finite number ≥ 0; `#` starts a comment
//! (a whole line or the end of one); blank lines are skipped; a first line whose time is not
//! a time (`time,load`) is a header. Times strictly increase. Steps may be unequal:
//! [`Trace::load_at`] gives the load in force at any instant (the last point at or before it).

use std::io::{BufRead, Read};
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};

use crate::error::ConfigError;

/// Longest line read (bytes, newline excluded).
pub const MAX_LINE: usize = 4096;
/// Most points a trace may hold (a year of 10-second steps is 3.2 million): 16 bytes each.
pub const MAX_POINTS: usize = 5_000_000;

/// One point of a trace: from `t` on, the load is `load` (until the next point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t: DateTime<Utc>,
    pub load: f64,
}

/// A trace, sorted by time, never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Where it was read from (for messages).
    pub name: String,
    pub points: Vec<Point>,
}

impl Trace {
    /// The first point's time.
    pub fn start(&self) -> DateTime<Utc> {
        self.points[0].t
    }

    /// The last point's time.
    pub fn end(&self) -> DateTime<Utc> {
        self.points[self.points.len() - 1].t
    }

    /// The load in force at `t`: that of the last point at or before `t` (the first point's
    /// before the trace starts).
    pub fn load_at(&self, t: DateTime<Utc>) -> f64 {
        let i = self.points.partition_point(|p| p.t <= t);
        self.points[i.saturating_sub(1)].load
    }

    /// How many passes `interval` apart fit from the first point to the last (both included).
    pub fn passes(&self, interval: std::time::Duration) -> u64 {
        let span = (self.end() - self.start()).num_milliseconds().max(0) as u128;
        let step = interval.as_millis().max(1);
        (span / step) as u64 + 1
    }
}

/// Reads the trace at `path` (`-` is standard input).
pub fn read(path: &Path) -> Result<Trace, ConfigError> {
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        return parse(&name, std::io::stdin().lock());
    }
    let file = std::fs::File::open(path).map_err(|e| ConfigError {
        file: name.clone(),
        line: 0,
        col: 0,
        key: String::new(),
        msg: format!("cannot read the trace: {e}"),
    })?;
    parse(&name, std::io::BufReader::with_capacity(64 * 1024, file))
}

fn err(name: &str, line: usize, col: usize, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        file: name.to_string(),
        line,
        col,
        key: String::new(),
        msg: msg.into(),
    }
}

/// Reads a trace from `r`; `name` is used in messages.
pub fn parse<R: BufRead>(name: &str, mut r: R) -> Result<Trace, ConfigError> {
    let mut points: Vec<Point> = Vec::new();
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0usize;
    let mut seen_data = false;
    loop {
        buf.clear();
        line_no += 1;
        let n = (&mut r)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut buf)
            .map_err(|e| err(name, line_no, 0, format!("cannot read the trace: {e}")))?;
        if n == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        if buf.len() > MAX_LINE {
            return Err(err(
                name,
                line_no,
                MAX_LINE + 1,
                format!(
                    "the line is longer than {MAX_LINE} bytes: not a trace of `time,load` lines"
                ),
            ));
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            return Err(err(
                name,
                line_no,
                1,
                "the line is not UTF-8 text: not a trace of `time,load` lines",
            ));
        };
        let text = text.split('#').next().unwrap_or("");
        if text.trim().is_empty() {
            continue;
        }
        let first = !seen_data;
        seen_data = true;
        match parse_line(text) {
            Ok((t, load)) => {
                if let Some(prev) = points.last() {
                    if t <= prev.t {
                        return Err(err(
                            name,
                            line_no,
                            1,
                            format!(
                                "time {} is not after the previous line's ({}): a trace is sorted by time, each time once",
                                t.to_rfc3339(),
                                prev.t.to_rfc3339()
                            ),
                        ));
                    }
                }
                if points.len() >= MAX_POINTS {
                    return Err(err(
                        name,
                        line_no,
                        1,
                        format!(
                            "more than {MAX_POINTS} points: resample the trace to coarser steps"
                        ),
                    ));
                }
                points.push(Point { t, load });
            }
            // The first line may be a header (`time,load`): its time is no time at all.
            Err(LineError::Time(..)) if first && looks_like_header(text) => {}
            Err(e) => {
                let (col, msg) = e.describe();
                return Err(err(name, line_no, col, msg));
            }
        }
    }
    if points.is_empty() {
        return Err(err(
            name,
            0,
            0,
            "the trace has no points: want lines of `time,load` (time as RFC 3339 or Unix seconds)",
        ));
    }
    Ok(Trace {
        name: name.to_string(),
        points,
    })
}

/// A header names its columns: two fields of letters (and `_`, `-`, spaces).
fn looks_like_header(text: &str) -> bool {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    fields.len() == 2
        && fields.iter().all(|f| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_alphabetic() || matches!(c, '_' | '-' | ' ' | '(' | ')' | '"'))
        })
}

enum LineError {
    Fields(usize),
    Time(usize, String),
    Load(usize, String),
}

impl LineError {
    fn describe(self) -> (usize, String) {
        match self {
            LineError::Fields(n) => (1, format!("want two fields `time,load`, found {n}")),
            LineError::Time(col, s) => (
                col,
                format!(
                    "{} is not a time: want RFC 3339 (2026-01-05T14:00:00Z) or Unix seconds",
                    shown(&s)
                ),
            ),
            LineError::Load(col, s) => (
                col,
                format!("{} is not a load: want a number >= 0", shown(&s)),
            ),
        }
    }
}

/// A field as it may be shown: sanitized, shortened.
fn shown(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    format!("{:?}", crate::clean::sanitize(&short))
}

fn parse_line(text: &str) -> Result<(DateTime<Utc>, f64), LineError> {
    let fields: Vec<&str> = text.split(',').collect();
    if fields.len() != 2 {
        return Err(LineError::Fields(fields.len()));
    }
    let time_col = 1 + fields[0].len() - fields[0].trim_start().len();
    let load_col = fields[0].len() + 2 + fields[1].len() - fields[1].trim_start().len();
    let (ts, ls) = (fields[0].trim(), fields[1].trim());
    let t = parse_time(ts).ok_or_else(|| LineError::Time(time_col, ts.to_string()))?;
    let load: f64 = ls
        .parse()
        .map_err(|_| LineError::Load(load_col, ls.to_string()))?;
    if !load.is_finite() || load < 0.0 {
        return Err(LineError::Load(load_col, ls.to_string()));
    }
    Ok((t, load))
}

/// RFC 3339, or Unix seconds (a plain decimal number, fraction allowed).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return None;
    }
    let secs: f64 = s.parse().ok()?;
    if !secs.is_finite() || secs.abs() > 1e11 {
        return None;
    }
    let ms = (secs * 1000.0).round() as i64;
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Trace, String> {
        parse("t.csv", text.as_bytes()).map_err(|e| e.to_string())
    }

    fn loads(t: &Trace) -> Vec<f64> {
        t.points.iter().map(|p| p.load).collect()
    }

    #[test]
    fn reads_rfc3339_and_unix_seconds_with_comments_and_a_header() {
        let t = p("# exported from prometheus\ntime,load\n\
                   2026-01-05T14:00:00Z,3\n\n1767621660, 4.5 # a comment\n  1767621720.5 ,0\n")
        .unwrap();
        assert_eq!(loads(&t), [3.0, 4.5, 0.0]);
        assert_eq!(t.start().to_rfc3339(), "2026-01-05T14:00:00+00:00");
        assert_eq!(t.points[1].t.timestamp(), 1_767_621_660);
        assert_eq!(t.points[2].t.timestamp_millis(), 1_767_621_720_500);
        // No header, CRLF line ends.
        let t = p("0,1\r\n60,2\r\n").unwrap();
        assert_eq!(loads(&t), [1.0, 2.0]);
    }

    #[test]
    fn load_in_force_and_passes_over_unequal_steps() {
        let t = p("0,1\n90,5\n100,2\n").unwrap();
        let at = |s: i64| t.load_at(Utc.timestamp_opt(s, 0).unwrap());
        assert_eq!(
            [
                at(-5),
                at(0),
                at(60),
                at(89),
                at(90),
                at(99),
                at(100),
                at(1000)
            ],
            [1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 2.0, 2.0]
        );
        assert_eq!(t.passes(std::time::Duration::from_secs(60)), 2);
        assert_eq!(t.passes(std::time::Duration::from_secs(50)), 3);
        assert_eq!(t.passes(std::time::Duration::from_secs(10)), 11);
    }

    #[test]
    fn bad_traces_name_file_line_and_column() {
        let cases = [
            ("", "t.csv: the trace has no points"),
            (
                "time,load\n# only a header\n",
                "t.csv: the trace has no points",
            ),
            (
                "0,1\n60,2\n30,3\n",
                "t.csv:3:1: time 1970-01-01T00:00:30+00:00 is not after",
            ),
            (
                "0,1\n0,2\n",
                "t.csv:2:1: time 1970-01-01T00:00:00+00:00 is not after",
            ),
            ("0,1\n60,-2\n", "t.csv:2:4: \"-2\" is not a load"),
            ("0,1\n60,lots\n", "t.csv:2:4: \"lots\" is not a load"),
            ("0,1\n60,NaN\n", "t.csv:2:4: \"NaN\" is not a load"),
            ("0,1\n60,inf\n", "t.csv:2:4: \"inf\" is not a load"),
            ("0,1\nnoon,2\n", "t.csv:2:1: \"noon\" is not a time"),
            (
                "0,1\n60,2,3\n",
                "t.csv:2:1: want two fields `time,load`, found 3",
            ),
            ("0\n", "t.csv:1:1: want two fields `time,load`, found 1"),
            ("1e400,1\n", "t.csv:1:1: \"1e400\" is not a time"),
            ("0,1\n60,\u{1b}[31m\n", "t.csv:2:4: \"?[31m\" is not a load"),
        ];
        for (text, want) in cases {
            let got = p(text).unwrap_err();
            assert!(got.starts_with(want), "{text:?}: {got}");
        }
        let not_utf8 = parse("t.csv", &b"0,1\n\xff\xfe,2\n"[..]).unwrap_err();
        assert_eq!(not_utf8.line, 2);
        assert!(not_utf8.msg.contains("not UTF-8"), "{not_utf8}");
    }

    /// An endless stream of garbage without a newline stops at the line cap, having read no
    /// more than a line; an endless stream of newlines-only garbage stops at its first line.
    #[test]
    fn endless_garbage_costs_a_line() {
        struct Endless(u8, u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(self.0);
                self.1 += buf.len() as u64;
                Ok(buf.len())
            }
        }
        let mut src = Endless(b'x', 0);
        let e = parse("big", std::io::BufReader::new(&mut src)).unwrap_err();
        assert_eq!((e.line, e.col), (1, MAX_LINE + 1), "{e}");
        assert!(src.1 < 64 * 1024, "read {} bytes", src.1);
        let mut src = Endless(0xff, 0);
        let e = parse("big", std::io::BufReader::new(&mut src)).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }
}
