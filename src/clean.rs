//! Text from outside (droplet names, label values, API messages, config values) made safe for
//! a terminal: no escape sequences, no line breaks where one line is meant, no bidirectional
//! overrides. Core code: imports nothing of the project's.

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

/// ` by NAME` (sanitized) when a name is known, else nothing: who paused or set a group.
pub fn by(who: Option<&str>) -> String {
    who.map(|w| format!(" by {}", sanitize(w)))
        .unwrap_or_default()
}
