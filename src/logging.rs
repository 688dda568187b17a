//! Logs to stderr with levels (`-v`, `-q`, `RUST_LOG`); no timestamps and no colour under
//! journald (`JOURNAL_STREAM` set) or when stderr is not a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let colour =
        !journald && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false);
    let _ = if journald {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
