//! The API token: a value that never shows itself. `Debug` and `Display` print a placeholder,
//! so the token cannot leak through logs, errors or panics by accident.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The only way to the value: for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_prints_itself() {
        let s = super::Secret::new("dop_v1_abcdef".into());
        assert!(!format!("{s:?} {s} {s:#?}").contains("abcdef"));
        assert_eq!(s.expose(), "dop_v1_abcdef");
    }
}
