//! Rendering for people and programs. Renderers return `String`s so tests can compare them;
//! untrusted text (droplet names, label values, API messages) goes through [`sanitize`]
//! before it reaches a terminal.

use std::io::IsTerminal;

/// Replaces control characters (escape sequences, newlines, …) with `?`, and cuts very long
/// strings, so text supplied by droplets or the API cannot drive the terminal.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() || is_bidi(c) { '?' } else { c })
        .collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Colour only on a terminal and never with `NO_COLOR`.
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// A table in doscale's style.
pub fn table(header: Vec<&str>) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if !colour_stdout() {
        t.force_no_tty();
    }
    t.set_header(header);
    t
}

/// Human age: `3d4h`, `5m12s`, `40s`.
pub fn age(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    if s >= 86_400 {
        format!("{}d{}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

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

/// Like [`sanitize`] but keeps newlines and does not cut (for error messages).
pub fn sanitize_multiline(s: &str) -> String {
    s.chars()
        .map(|c| {
            if (c.is_control() && c != '\n') || is_bidi(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sanitize_removes_control_characters() {
        assert_eq!(super::sanitize("web-1\u{1b}[2J\n"), "web-1?[2J?");
        assert_eq!(super::sanitize("ok"), "ok");
        assert!(super::sanitize(&"x".repeat(500)).ends_with('…'));
    }
}
