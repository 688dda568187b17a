//! The INI dialect do-scaler reads: Python's `configparser.ConfigParser` with
//! `ExtendedInterpolation`, with its defaults — `=` or `:` between key and value, keys
//! case-insensitive, full-line `#`/`;` comments, indented continuation lines, a `[DEFAULT]`
//! section inherited by every section, duplicate sections or keys refused (strict), and
//! `${key}` / `${section:key}` / `$$` interpolated when a value is read (at most 10 levels).

use std::collections::BTreeMap;

const DEFAULT: &str = "DEFAULT";
const MAX_DEPTH: usize = 10;

#[derive(Debug, Default)]
pub struct Ini {
    /// Section name → key → raw value, in file order of sections.
    sections: Vec<(String, BTreeMap<String, String>)>,
    defaults: BTreeMap<String, String>,
}

impl Ini {
    /// Parses the text; errors say the line and what is wrong.
    pub fn parse(text: &str) -> Result<Ini, String> {
        let mut ini = Ini::default();
        // Where values go: None before the first section header.
        let mut section: Option<String> = None;
        // The key being read, its indentation, and blank lines seen inside its value.
        let mut current: Option<(String, usize)> = None;
        let mut blanks = 0usize;
        for (n, line) in text.lines().enumerate() {
            let lineno = n + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            let trimmed = line.trim();
            if trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if trimmed.is_empty() {
                if current.is_some() {
                    blanks += 1;
                }
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if let (Some((key, key_indent)), Some(sec)) = (&current, &section) {
                if indent > *key_indent {
                    // A continuation line of the current value.
                    let map = ini.map_mut(sec);
                    let v = map.get_mut(key).expect("current key exists");
                    for _ in 0..blanks {
                        v.push('\n');
                    }
                    v.push('\n');
                    v.push_str(trimmed);
                    blanks = 0;
                    continue;
                }
            }
            blanks = 0;
            if let Some(name) = trimmed
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .filter(|n| !n.is_empty())
            {
                if name != DEFAULT && ini.sections.iter().any(|(s, _)| s == name) {
                    return Err(format!("line {lineno}: section [{name}] appears twice"));
                }
                if name != DEFAULT {
                    ini.sections.push((name.to_string(), BTreeMap::new()));
                }
                section = Some(name.to_string());
                current = None;
                continue;
            }
            let Some(sec) = &section else {
                return Err(format!(
                    "line {lineno}: a value before any [section] header"
                ));
            };
            let Some(d) = trimmed.find(['=', ':']) else {
                return Err(format!(
                    "line {lineno}: expected `key = value`, found {trimmed:?}"
                ));
            };
            let key = trimmed[..d].trim().to_lowercase();
            let value = trimmed[d + 1..].trim().to_string();
            if key.is_empty() {
                return Err(format!("line {lineno}: a value without a key"));
            }
            let map = ini.map_mut(sec);
            if map.contains_key(&key) {
                return Err(format!(
                    "line {lineno}: key `{key}` appears twice in [{sec}]"
                ));
            }
            map.insert(key.clone(), value);
            current = Some((key, indent));
        }
        Ok(ini)
    }

    fn map_mut(&mut self, section: &str) -> &mut BTreeMap<String, String> {
        if section == DEFAULT {
            return &mut self.defaults;
        }
        &mut self
            .sections
            .iter_mut()
            .find(|(s, _)| s == section)
            .expect("section exists")
            .1
    }

    fn map(&self, section: &str) -> Option<&BTreeMap<String, String>> {
        if section == DEFAULT {
            return Some(&self.defaults);
        }
        self.sections
            .iter()
            .find(|(s, _)| s == section)
            .map(|(_, m)| m)
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.map(section).is_some()
    }

    /// The uninterpolated value of `key` in `section` (or `[DEFAULT]`).
    pub fn raw(&self, section: &str, key: &str) -> Option<&str> {
        let key = key.to_lowercase();
        self.map(section)?
            .get(&key)
            .or_else(|| self.defaults.get(&key))
            .map(String::as_str)
    }

    /// The interpolated value; `Ok(None)` when the section or key is absent.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, String> {
        let Some(raw) = self.raw(section, key) else {
            return Ok(None);
        };
        let mut out = String::new();
        self.interpolate(section, key, raw, &mut out, 1)?;
        Ok(Some(out))
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        mut rest: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), String> {
        let place = format!("[{section}] {key}");
        if depth > MAX_DEPTH {
            return Err(format!("{place}: interpolation nested more than {MAX_DEPTH} levels deep (a reference loop?)"));
        }
        while let Some(p) = rest.find('$') {
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(r) = rest.strip_prefix("$$") {
                out.push('$');
                rest = r;
            } else if rest.starts_with("${") {
                let Some(end) = rest.find('}').filter(|&e| e > 2) else {
                    return Err(format!("{place}: bad interpolation reference {rest:?}"));
                };
                let reference = &rest[2..end];
                rest = &rest[end + 1..];
                let parts: Vec<&str> = reference.split(':').collect();
                let (sec, k) = match parts.as_slice() {
                    [k] => (section, *k),
                    [s, k] => (*s, *k),
                    _ => return Err(format!("{place}: more than one `:` in ${{{reference}}}")),
                };
                let Some(v) = self.raw(sec, k) else {
                    return Err(format!(
                        "{place}: ${{{reference}}} refers to a value that does not exist"
                    ));
                };
                if v.contains('$') {
                    self.interpolate(sec, &k.to_lowercase(), v, out, depth + 1)?;
                } else {
                    out.push_str(v);
                }
            } else {
                return Err(format!(
                    "{place}: `$` must be followed by `$` or `{{`, found {rest:?}"
                ));
            }
        }
        out.push_str(rest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# a comment
[DEFAULT]
region = sfo2

[scaler]
do_token = secret
Tag_Name: web
policy_files = a.json
    b.json

    c.json
; another comment
[create]
token = ${scaler:do_token}
where = ${region}/${tag_name}
tag_name = x
cost = $$5
";

    #[test]
    fn reads_like_configparser() {
        let ini = Ini::parse(TEXT).unwrap();
        assert_eq!(
            ini.get("scaler", "tag_name").unwrap().as_deref(),
            Some("web")
        );
        assert_eq!(
            ini.get("scaler", "TAG_NAME").unwrap().as_deref(),
            Some("web")
        );
        assert_eq!(
            ini.get("scaler", "policy_files").unwrap().as_deref(),
            Some("a.json\nb.json\n\nc.json")
        );
        assert_eq!(
            ini.get("create", "token").unwrap().as_deref(),
            Some("secret")
        );
        assert_eq!(
            ini.get("create", "where").unwrap().as_deref(),
            Some("sfo2/x")
        );
        assert_eq!(ini.get("create", "cost").unwrap().as_deref(), Some("$5"));
        assert_eq!(
            ini.get("scaler", "region").unwrap().as_deref(),
            Some("sfo2")
        );
        assert_eq!(ini.get("scaler", "nope").unwrap(), None);
        assert_eq!(ini.get("nope", "region").unwrap(), None);
        assert!(ini.has_section("create") && !ini.has_section("nope"));
    }

    #[test]
    fn refuses_what_configparser_refuses() {
        assert!(Ini::parse("key = 1\n").unwrap_err().contains("line 1"));
        assert!(Ini::parse("[a]\nk = 1\n[a]\n")
            .unwrap_err()
            .contains("appears twice"));
        assert!(Ini::parse("[a]\nk = 1\nK = 2\n")
            .unwrap_err()
            .contains("line 3: key `k` appears twice"));
        assert!(Ini::parse("[a]\njust words\n")
            .unwrap_err()
            .contains("line 2"));
        let ini = Ini::parse("[a]\nx = ${b:y}\nl1 = ${l2}\nl2 = ${l1}\nd = 5$\n").unwrap();
        assert!(ini.get("a", "x").unwrap_err().contains("does not exist"));
        assert!(ini.get("a", "l1").unwrap_err().contains("10 levels"));
        assert!(ini.get("a", "d").unwrap_err().contains("must be followed"));
    }
}
