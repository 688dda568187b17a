//! The manual page `doscale(1)`, generated from the clap definitions in [`crate::cli`].
//!
//! clap_mangen renders one command per page; doscale is one binary whose subcommands an
//! operator reads about together, so [`render`] builds a single page: the top-level NAME,
//! SYNOPSIS, DESCRIPTION and global OPTIONS from clap_mangen, then a COMMANDS section with each
//! subcommand's description, usage and options, then the hand-written EXIT STATUS, ENVIRONMENT,
//! FILES, EXAMPLES and SEE ALSO. The committed `man/doscale.1` is this output; the integration
//! test `man_page` fails when they differ (`UPDATE_MAN=1 cargo test man_page` rewrites it).

use std::collections::BTreeSet;

use clap::{Arg, Command, CommandFactory};
use clap_mangen::Man;

/// The date in the page header. A fixed string, so that the page is reproducible: bump it
/// when the page changes in substance.
const DATE: &str = "2026-11-27";

/// Renders the whole `doscale(1)` page as roff.
pub fn render() -> String {
    let mut cmd = crate::cli::Cli::command().subcommand_value_name("COMMAND");
    cmd.build();
    let version = cmd.get_version().unwrap_or_default().to_string();
    let man = Man::new(cmd.clone())
        .title("DOSCALE")
        .section("1")
        .date(DATE)
        .source(format!("doscale {version}"))
        .manual("doscale manual");

    let mut out = String::new();
    out.push_str(".\\\" Generated from src/cli.rs by src/manpage.rs: do not edit.\n");
    out.push_str(".\\\" Regenerate with: UPDATE_MAN=1 cargo test man_page\n");
    out.push_str(&section(|w| man.render_title(w)));
    for l in PREAMBLE {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&section(|w| man.render_name_section(w)));
    out.push_str(&section(|w| man.render_synopsis_section(w)));
    out.push_str(&section(|w| man.render_description_section(w)));
    out.push_str(&section(|w| man.render_options_section(w)));

    // Arguments every subcommand inherits: described once, under OPTIONS.
    let inherited: BTreeSet<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().to_string())
        .chain(["help".to_string(), "version".to_string()])
        .collect();

    out.push_str(".SH COMMANDS\n");
    out.push_str(
        "Every command also accepts the global options above, before or after its name.\n",
    );
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        out.push_str(&subcommand(sub, &inherited));
    }
    out.push_str(STATIC_SECTIONS);
    tidy(&out)
}

/// One subcommand: `.SS doscale NAME`, its usage line, its description and its own options.
fn subcommand(sub: &Command, inherited: &BTreeSet<String>) -> String {
    let name = format!("doscale {}", sub.get_name());
    let own: Vec<Arg> = sub
        .get_arguments()
        .filter(|a| !inherited.contains(a.get_id().as_str()) && !a.is_hide_set())
        .cloned()
        .collect();
    let mut bare = Command::new("doscale")
        .bin_name(name.clone())
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args(own.clone());
    if let Some(about) = sub.get_about() {
        bare = bare.about(about.clone());
    }
    // The text after the options (`after_help`, e.g. backtest's metric formulas) goes into
    // the description: the page says everything `--help` says.
    match (sub.get_long_about(), sub.get_after_help()) {
        (Some(long), Some(after)) => bare = bare.long_about(format!("{long}\n\n{after}")),
        (Some(long), None) => bare = bare.long_about(long.clone()),
        (None, Some(after)) => {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            bare = bare.long_about(format!("{about}\n\n{after}"));
        }
        (None, None) => {}
    }
    let man = Man::new(bare);

    let mut out = format!(".SS \"{name}\"\n");
    // The synopsis line, without its .SH heading, plus the global options marker.
    let synopsis = strip_heading(&section(|w| man.render_synopsis_section(w)));
    out.push_str(synopsis.trim_end());
    out.push_str(" [\\fIglobal options\\fR]\n");
    out.push_str(".PP\n");
    out.push_str(&strip_heading(&section(|w| {
        man.render_description_section(w)
    })));
    if !own.is_empty() {
        out.push_str(".PP\n");
        out.push_str(&strip_heading(&section(|w| man.render_options_section(w))));
    }
    out
}

/// The string `\*(Aq` (an apostrophe) that clap_mangen's text uses: defined once at the top
/// of the page rather than before every section.
const PREAMBLE: [&str; 2] = [".ie \\n(.g .ds Aq \\(aq", ".el .ds Aq '"];

/// One section rendered by clap_mangen, without the `Aq` definition it repeats each time.
fn section(f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    f(&mut buf).expect("writing to a Vec cannot fail");
    String::from_utf8(buf)
        .expect("roff is UTF-8")
        .lines()
        .filter(|l| !PREAMBLE.contains(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Drops the `.SH ...` heading of a section rendered by clap_mangen.
fn strip_heading(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with(".SH"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Post-processing that keeps `mandoc -T lint -W warning` silent: no blank lines (they are
/// "blank line in fill mode"), no `.PP` right after a heading or before another paragraph
/// macro, no trailing whitespace.
fn tidy(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if *l == ".br" && out.last() == Some(&".br") {
            continue;
        }
        if *l == ".PP" {
            let prev = out.last().copied().unwrap_or("");
            let next = lines.get(i + 1).copied().unwrap_or("");
            let is_break = |m: &str| {
                [".SH", ".SS", ".PP", ".TP", ".IP", ".RE"]
                    .iter()
                    .any(|p| m == *p || m.starts_with(&format!("{p} ")))
            };
            if is_break(prev) || is_break(next) || next.is_empty() {
                continue;
            }
        }
        out.push(l);
    }
    let out: Vec<String> = out.into_iter().map(code_spans).collect();
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Markdown-style `code` in doc comments becomes bold in text lines.
fn code_spans(line: &str) -> String {
    if line.starts_with('.') || !line.matches('`').count().is_multiple_of(2) {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len() + 16);
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("\\fB");
            out.push_str(part);
            out.push_str("\\fR");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Hand-written sections: environment, files, exit codes, examples, cross references.
const STATIC_SECTIONS: &str = r#".SH ENVIRONMENT
.TP
.B DOSCALE_CONFIG
The configuration file when
.B \-\-config
is not given.
.TP
.B DIGITALOCEAN_TOKEN
The DigitalOcean API token; the first token source tried, before
.B [api] token_file
and the systemd credential.
.TP
.B CREDENTIALS_DIRECTORY
Set by systemd for
.BR LoadCredential= ;
the token is read from the credential
.I digitalocean\-token
in it.
.TP
.B STATE_DIRECTORY
Set by systemd for
.BR StateDirectory= ;
the state file is
.I $STATE_DIRECTORY/state.json
when
.B state_file
is not set in the configuration.
.TP
.B RUST_LOG
Log filter (for example
.BR doscale=debug );
overrides
.B \-v
and
.BR \-q .
.TP
.B NO_COLOR
When set to a non-empty value, no colour is used, even on a terminal (an empty value keeps
colour).
.TP
.B COLUMNS
The width tables wrap to. Without it, tables wrap to the terminal's width (80 columns when the
terminal reports none or 0) and are not wrapped off a terminal.
.TP
.B JOURNAL_STREAM
Set by systemd when stdout or stderr is the journal. When it names stderr's device and inode,
every line doscale writes to stderr starts with its syslog priority
.RB ( <3>
errors,
.B <4>
warnings,
.B <6>
info,
.B <7>
debug) and logs carry no timestamps.
.SH FILES
.TP
.I /etc/doscale/doscale.toml
The configuration, see
.BR doscale.toml (5).
.TP
.I /etc/doscale/token
The API token, mode 0600, passed to the service with
.BR LoadCredential= .
.TP
.I /var/lib/doscale/state.json
The state: the last scrapes, the evaluation, the plan, the action history and the pending
operations of every group; a lock file beside it serialises runs.
.TP
.I /lib/systemd/system/doscale.service
.TQ
.I /lib/systemd/system/doscale.timer
The units that run
.B doscale run
every minute.
.SH EXIT STATUS
.TP
.B 0
Done.
.TP
.B 1
Runtime error: the API listing failed, the state file could not be written, the stored input
of a stage is missing or stale, an API request failed after its retries.
Droplets that fail to scrape are data, not a failure:
.B scrape
records them and exits 0.
.TP
.B 2
Usage or configuration error: an unknown option, an invalid configuration file (the message
names the file, line, column and key), a missing API token for a command that calls the API.
.TP
.B 3
Under
.BR \-\-detailed\-exitcode :
the plan changes something (like
.BR "terraform plan" ).
.SH EXAMPLES
Try the whole pipeline on a simulated fleet:
.PP
.EX
$ doscale demo
.EE
.PP
Validate a configuration, then see what a pass would do without changing anything:
.PP
.EX
$ doscale check
$ doscale run \-\-dry\-run
.EE
.PP
Explain the current decision of every group, as JSON for scripts:
.PP
.EX
$ doscale plan \-o json | jq '.groups[] | {name, current, desired, reasons}'
.EE
.PP
Convert a do\-scaler scaler file:
.PP
.EX
# doscale import\-seed /etc/do\-scaler/conf.d/web.cfg > /etc/doscale/doscale.toml
.EE
.SH SEE ALSO
.BR doscale.toml (5),
.BR systemd.timer (5),
.BR systemd.exec (5),
.BR journalctl (1)
"#;
