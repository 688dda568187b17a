//! Rendering for people and programs. Renderers return `String`s so tests can compare them;
//! untrusted text (droplet names, label values, API messages) goes through [`sanitize`]
//! before it reaches a terminal.

use std::io::IsTerminal;

pub use crate::clean::{sanitize, sanitize_multiline};

/// Whether a `NO_COLOR` value turns colour off: only a set, non-empty value does
/// (<https://no-color.org>: "when present and not an empty string").
pub fn no_color_value(v: Option<&std::ffi::OsStr>) -> bool {
    v.is_some_and(|v| !v.is_empty())
}

/// `NO_COLOR` is set and not empty: no colour anywhere (tables, logs, error reports).
pub fn no_color() -> bool {
    no_color_value(std::env::var_os("NO_COLOR").as_deref())
}

/// Colour only on a terminal and never with `NO_COLOR`.
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && !no_color()
}

/// The width tables wrap to on a terminal that does not say (or says 0 columns).
pub const DEFAULT_WIDTH: u16 = 80;

/// The width tables wrap to: `COLUMNS` when it is a positive number; otherwise on a terminal
/// its width, or [`DEFAULT_WIDTH`] when it reports none or 0 (a pseudo-terminal without a
/// size); not on a terminal (a pipe, a file, the journal): no wrapping, whole lines.
pub fn table_width(terminal: bool, reported: Option<u16>, columns: Option<&str>) -> Option<u16> {
    if let Some(n) = columns
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    if !terminal {
        return None;
    }
    Some(reported.filter(|w| *w > 0).unwrap_or(DEFAULT_WIDTH))
}

/// How tables look, decided once from the flags and the terminal and handed to renderers
/// (which stay pure: the same values give the same text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Colour through comfy-table's cell styling (never hand-written escapes).
    pub colour: bool,
    /// Wrap tables to this many columns; `None`: do not wrap.
    pub width: Option<u16>,
    /// Print the header row (`--no-headers` turns it off).
    pub headers: bool,
    /// `-o wide`: every column, not only the essential ones.
    pub wide: bool,
}

impl Style {
    /// No colour, no wrapping, headers, essential columns.
    pub const PLAIN: Style = Style {
        colour: false,
        width: None,
        headers: true,
        wide: false,
    };

    /// The style for stdout as it is now.
    pub fn detect(headers: bool, wide: bool) -> Style {
        let terminal = std::io::stdout().is_terminal();
        let reported = console::Term::stdout().size_checked().map(|(_, cols)| cols);
        let columns = std::env::var("COLUMNS").ok();
        Style {
            colour: colour_stdout(),
            width: table_width(terminal, reported, columns.as_deref()),
            headers,
            wide,
        }
    }

    /// A table in doscale's style. It never asks the terminal itself: the width and colour
    /// are the style's.
    pub fn table<T: Into<comfy_table::Cell>>(&self, header: Vec<T>) -> comfy_table::Table {
        use comfy_table::ContentArrangement;
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        t.force_no_tty();
        if self.colour {
            t.enforce_styling();
        }
        match self.width {
            Some(w) => {
                t.set_width(if w == 0 { DEFAULT_WIDTH } else { w });
                t.set_content_arrangement(ContentArrangement::Dynamic);
            }
            None => {
                t.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        if self.headers {
            t.set_header(header);
        }
        t
    }
}

/// A table in the style of stdout as it is now, with headers (for renderers that have no
/// [`Style`] at hand).
pub fn table(header: Vec<&str>) -> comfy_table::Table {
    Style::detect(true, false).table(header)
}

/// A cell in `colour` (shown only when the table's style has colour).
pub fn coloured(text: impl Into<String>, colour: comfy_table::Color) -> comfy_table::Cell {
    comfy_table::Cell::new(text.into()).fg(colour)
}

pub use crate::units::age;

/// Bytes as GiB/MiB.
pub fn bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.0} MiB", b / (1024.0 * 1024.0))
    }
}

/// Prints to stdout; a closed pipe (`doscale plan | head`) ends the program quietly.
pub fn print(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// Writes `value` as one line of JSON to stdout, straight from the value (a large evaluation
/// is never held as text first). Like [`print`], a closed stdout ends the process quietly.
pub fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> color_eyre::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match serde_json::to_writer(&mut out, value) {
        Err(e) if e.is_io() => std::process::exit(0),
        Err(e) => return Err(color_eyre::eyre::eyre!("writing the JSON output: {e}")),
        Ok(()) => {}
    }
    if out.write_all(b"\n").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_non_empty_no_color_turns_colour_off() {
        use std::ffi::OsStr;
        assert!(super::no_color_value(Some(OsStr::new("1"))));
        assert!(super::no_color_value(Some(OsStr::new("false"))));
        assert!(!super::no_color_value(Some(OsStr::new(""))));
        assert!(!super::no_color_value(None));
        // Every place that decides on colour (tables, tracing, the error theme) asks
        // `no_color()`, none reads the variable itself.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("output.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    assert!(
                        !text.contains(&format!("var_os(\"{}\")", "NO_COLOR")),
                        "{} reads NO_COLOR itself",
                        p.display()
                    );
                }
            }
        }
    }

    #[test]
    fn table_width_when_the_terminal_says_nothing() {
        use super::table_width;
        assert_eq!(table_width(true, Some(120), None), Some(120));
        assert_eq!(table_width(true, Some(0), None), Some(80));
        assert_eq!(table_width(true, None, None), Some(80));
        assert_eq!(table_width(false, None, None), None);
        assert_eq!(table_width(false, None, Some("100")), Some(100));
        assert_eq!(table_width(true, Some(120), Some("0")), Some(120));
        assert_eq!(table_width(true, Some(120), Some("wide")), Some(120));
    }

    #[test]
    fn sanitize_removes_control_characters() {
        assert_eq!(super::sanitize("web-1\u{1b}[2J\n"), "web-1?[2J?");
        assert_eq!(super::sanitize("ok"), "ok");
        assert!(super::sanitize(&"x".repeat(500)).ends_with('…'));
    }
}

/// Checks on rendered text for the renderers' tests.
#[cfg(test)]
pub mod check {
    /// Box-drawing characters a table line starts with.
    fn is_table_line(l: &str) -> bool {
        l.starts_with(['┌', '│', '╞', '├', '└', '╭', '╰'])
    }

    /// Asserts that every escape sequence is whole, a colour set on a line is reset on that
    /// line (so it cannot bleed into the next wrapped line or the border), and every line of
    /// each table has the same display width, at most `max` when given. Returns the number of
    /// coloured stretches seen.
    pub fn tables_are_aligned(text: &str, max: Option<usize>) -> usize {
        let mut coloured = 0;
        for (n, line) in text.lines().enumerate() {
            let mut chars = line.chars().peekable();
            let mut active = false;
            while let Some(c) = chars.next() {
                if c != '\u{1b}' {
                    continue;
                }
                assert_eq!(chars.next(), Some('['), "line {n}: a bare escape: {line:?}");
                let mut params = String::new();
                loop {
                    match chars.next() {
                        Some(c) if c.is_ascii_digit() || c == ';' => params.push(c),
                        Some('m') => break,
                        other => panic!("line {n}: escape cut at {other:?}: {line:?}"),
                    }
                }
                active = !matches!(params.as_str(), "" | "0" | "39" | "49" | "39;49");
                if active {
                    coloured += 1;
                }
            }
            assert!(!active, "line {n}: a colour is not reset: {line:?}");
        }
        let mut widths: Vec<(usize, usize)> = Vec::new();
        let check = |widths: &mut Vec<(usize, usize)>| {
            if let Some((first_line, w)) = widths.first() {
                for (n, other) in widths.iter() {
                    assert_eq!(
                        other, w,
                        "line {n} is {other} wide, line {first_line} {w}:\n{text}"
                    );
                }
                if let Some(max) = max {
                    assert!(*w <= max, "a table {w} wide, over {max}:\n{text}");
                }
            }
            widths.clear();
        };
        for (n, line) in text.lines().enumerate() {
            if is_table_line(&console::strip_ansi_codes(line)) {
                widths.push((n, console::measure_text_width(line)));
            } else {
                check(&mut widths);
            }
        }
        check(&mut widths);
        coloured
    }
}
