//! Logs to stderr with levels (`-v`, `-q`, `RUST_LOG`); no timestamps and no colour under
//! journald or when stderr is not a terminal.
//!
//! Under journald every line doscale writes to stderr — log events, the final error report,
//! usage errors, a panic — starts with its sd-daemon priority prefix (`<3>` error, `<4>`
//! warning, `<6>` info, `<7>` debug and trace, `<2>` a panic), so `journalctl -p err` finds
//! the errors. "Under journald" means what sd-daemon(3) says: `JOURNAL_STREAM` names the
//! device and inode of stderr. A `JOURNAL_STREAM` inherited by a command whose stderr goes
//! elsewhere (a terminal, `2>file`) gets no prefixes.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing::Level;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// sd-daemon priorities.
pub const CRIT: u8 = 2;
pub const ERR: u8 = 3;
pub const WARNING: u8 = 4;
pub const INFO: u8 = 6;
pub const DEBUG: u8 = 7;

/// The sd-daemon priority of a tracing level.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => ERR,
        Level::WARN => WARNING,
        Level::INFO => INFO,
        Level::DEBUG | Level::TRACE => DEBUG,
    }
}

/// Whether `JOURNAL_STREAM` (`<device>:<inode>`, decimal) names the file `stderr` is
/// (`Some((device, inode))` of stderr).
pub fn journal_stream_is(value: Option<&std::ffi::OsStr>, stderr: Option<(u64, u64)>) -> bool {
    let (Some(value), Some((dev, ino))) = (value.and_then(|v| v.to_str()), stderr) else {
        return false;
    };
    let Some((d, i)) = value.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

/// Device and inode of stderr.
fn stderr_id() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

/// stderr is connected to the journal (decided once).
pub fn journald() -> bool {
    static JOURNALD: OnceLock<bool> = OnceLock::new();
    *JOURNALD.get_or_init(|| {
        journal_stream_is(std::env::var_os("JOURNAL_STREAM").as_deref(), stderr_id())
    })
}

/// `text` with `<priority>` before every line (under journald), or as it is.
pub fn prefixed(text: &str, priority: u8, journald: bool) -> String {
    if !journald {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_terminator('\n') {
        out.push_str(&format!("<{priority}>{line}\n"));
    }
    if out.is_empty() {
        out.push_str(&format!("<{priority}>\n"));
    }
    out
}

/// Writes `text` (one or more lines) to stderr at `priority`: every line carries the prefix
/// under journald. Everything doscale prints to stderr outside tracing goes through here.
pub fn eprint(priority: u8, text: &str) {
    let mut text = prefixed(text, priority, journald());
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Formats with `F`, then puts the event's priority before each line it wrote (a message
/// with newlines stays one event of several prefixed lines).
struct Journald<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut buf = String::new();
        self.0.format_event(ctx, Writer::new(&mut buf), event)?;
        writer.write_str(&prefixed(&buf, priority(*event.metadata().level()), true))
    }
}

pub fn init(verbose: u8, quiet: bool) {
    let default = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.trim().is_empty() => {
            EnvFilter::try_new(s).unwrap_or_else(|_| EnvFilter::new(default))
        }
        _ => EnvFilter::new(format!(
            "doscale={default},{}",
            if quiet { "error" } else { "warn" }
        )),
    };
    let journald = journald();
    let colour = !journald && std::io::stderr().is_terminal() && !crate::output::no_color();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    let _ = if journald {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_target(false)
            .with_ansi(false);
        builder
            .without_time()
            .event_format(Journald(format))
            .try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn journal_stream_must_name_stderr() {
        let id = Some((64769, 123456));
        assert!(journal_stream_is(Some(OsStr::new("64769:123456")), id));
        // Inherited by a command whose stderr is elsewhere: not the journal.
        assert!(!journal_stream_is(Some(OsStr::new("64769:99")), id));
        assert!(!journal_stream_is(Some(OsStr::new("")), id));
        assert!(!journal_stream_is(Some(OsStr::new("garbage")), id));
        assert!(!journal_stream_is(None, id));
        assert!(!journal_stream_is(Some(OsStr::new("64769:123456")), None));
    }

    #[test]
    fn every_line_of_a_report_carries_the_priority() {
        assert_eq!(
            prefixed("error: reading x\n  caused by: y\n", ERR, true),
            "<3>error: reading x\n<3>  caused by: y\n"
        );
        assert_eq!(prefixed("a\nb", WARNING, true), "<4>a\n<4>b\n");
        assert_eq!(prefixed("a\nb", WARNING, false), "a\nb");
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
