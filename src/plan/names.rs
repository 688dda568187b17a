//! Names for new droplets from the template's `name` pattern (`{group}`, `{n}`, `{rand}`).
//!
//! Names stay unique: `{n}` takes the smallest numbers that no known name uses (members of
//! any status, pending operations, droplets in the history), and every full name is checked
//! against those names too. The seed's `count + 1` collided after a scale-down; this does not.
//! Names are valid hostnames: lowercase `a-z 0-9 . -`, anything else becomes `-`.

use std::collections::BTreeSet;

use regex::Regex;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(String),
    N,
    Rand,
}

/// Lowercase `a-z 0-9 . -`; every other character becomes `-`.
pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Whether `s` is a name this module could have made: non-empty, `a-z 0-9 . -`, not starting
/// or ending with `-` or `.`.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && !s.starts_with(['-', '.'])
        && !s.ends_with(['-', '.'])
}

fn tokens(pattern: &str, group: &str) -> Vec<Tok> {
    let group = sanitize(group).trim_matches(['-', '.']).to_string();
    let mut out: Vec<Tok> = Vec::new();
    let mut lit = String::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        let hit = [
            ("{group}", None),
            ("{n}", Some(Tok::N)),
            ("{rand}", Some(Tok::Rand)),
        ]
        .into_iter()
        .find(|(p, _)| rest.starts_with(p));
        match hit {
            Some((p, tok)) => {
                match tok {
                    None => lit.push_str(&group),
                    Some(t) => {
                        if !lit.is_empty() {
                            out.push(Tok::Lit(sanitize(&std::mem::take(&mut lit))));
                        }
                        out.push(t);
                    }
                }
                rest = &rest[p.len()..];
            }
            None => {
                let c = rest.chars().next().expect("not empty");
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(sanitize(&lit)));
    }
    // A hostname neither starts nor ends with `-` or `.`.
    if let Some(Tok::Lit(s)) = out.first_mut() {
        *s = s.trim_start_matches(['-', '.']).to_string();
    }
    if let Some(Tok::Lit(s)) = out.last_mut() {
        *s = s.trim_end_matches(['-', '.']).to_string();
    }
    out.retain(|t| !matches!(t, Tok::Lit(s) if s.is_empty()));
    // The config requires {n} or {rand}; without either, names could not stay unique.
    if !out.iter().any(|t| matches!(t, Tok::N | Tok::Rand)) {
        if !out.is_empty() {
            out.push(Tok::Lit("-".into()));
        }
        out.push(Tok::N);
    }
    out
}

/// Recognises names made from the pattern and captures their first `{n}`.
fn matcher(toks: &[Tok]) -> Regex {
    let mut re = String::from("^");
    let mut captured = false;
    for t in toks {
        match t {
            Tok::Lit(s) => re.push_str(&regex::escape(s)),
            Tok::N if !captured => {
                re.push_str("([0-9]+)");
                captured = true;
            }
            Tok::N => re.push_str("[0-9]+"),
            Tok::Rand => re.push_str("[a-z0-9]+"),
        }
    }
    re.push('$');
    Regex::new(&re).expect("escaped literals make a valid regex")
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Six lowercase alphanumerics, a pure function of the plan's randomness and the attempt.
fn rand_chars(seed: u64, attempt: u64) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut x = splitmix64(seed ^ splitmix64(attempt.wrapping_add(1)));
    (0..6)
        .map(|_| {
            let c = ALPHABET[(x % 36) as usize] as char;
            x /= 36;
            c
        })
        .collect()
}

/// `count` new names from `pattern`, none of them in `used` (compared lowercase) nor equal
/// to each other. Deterministic for the same arguments.
pub(super) fn new_names(
    pattern: &str,
    group: &str,
    count: usize,
    used: &BTreeSet<String>,
    rand: u64,
) -> Vec<String> {
    let toks = tokens(pattern, group);
    let has_n = toks.contains(&Tok::N);
    let re = matcher(&toks);
    let mut taken: BTreeSet<String> = used.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut numbers: BTreeSet<u64> = taken
        .iter()
        .filter_map(|name| re.captures(name))
        .filter_map(|c| c.get(1).and_then(|m| m.as_str().parse().ok()))
        .collect();
    let mut out = Vec::with_capacity(count);
    let mut n = 1u64;
    let mut attempt = 0u64;
    while out.len() < count {
        if has_n {
            while numbers.contains(&n) {
                n += 1;
            }
            numbers.insert(n);
        }
        let r = rand_chars(rand, attempt);
        attempt += 1;
        let name: String = toks
            .iter()
            .map(|t| match t {
                Tok::Lit(s) => s.clone(),
                Tok::N => n.to_string(),
                Tok::Rand => r.clone(),
            })
            .collect();
        if taken.insert(name.clone()) {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plan_names_take_the_smallest_unused_numbers() {
        let u = used(&["web-1", "web-3", "other-2"]);
        assert_eq!(
            new_names("web-{n}", "web", 3, &u, 7),
            vec!["web-2", "web-4", "web-5"]
        );
    }

    #[test]
    fn plan_names_group_placeholder_and_hostname_rules() {
        let names = new_names("{group}_{n}", "Web_App", 2, &BTreeSet::new(), 1);
        assert_eq!(names, vec!["web-app-1", "web-app-2"]);
        let names = new_names("-{group}-{n}.", "x", 1, &BTreeSet::new(), 1);
        assert_eq!(names, vec!["x-1"]);
        assert!(names.iter().all(|n| is_hostname(n)));
    }

    #[test]
    fn plan_names_rand_differs_per_name_and_is_deterministic() {
        let a = new_names("{group}-{rand}", "web", 5, &BTreeSet::new(), 42);
        let b = new_names("{group}-{rand}", "web", 5, &BTreeSet::new(), 42);
        assert_eq!(a, b);
        let distinct: BTreeSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), 5);
        for n in &a {
            assert!(is_hostname(n), "{n}");
            assert_eq!(n.len(), "web-".len() + 6, "{n}");
        }
        assert_ne!(
            a,
            new_names("{group}-{rand}", "web", 5, &BTreeSet::new(), 43)
        );
    }

    #[test]
    fn plan_names_with_n_and_rand_count_numbers_of_old_names() {
        let u = used(&["web-1-abc123", "web-2-zzzzzz"]);
        let names = new_names("web-{n}-{rand}", "web", 1, &u, 9);
        assert!(names[0].starts_with("web-3-"), "{names:?}");
    }

    #[test]
    fn plan_names_without_placeholders_still_unique() {
        let names = new_names("web", "web", 2, &used(&["web-1"]), 0);
        assert_eq!(names, vec!["web-2", "web-3"]);
    }

    #[test]
    fn plan_names_compare_lowercase() {
        assert_eq!(
            new_names("web-{n}", "web", 1, &used(&["WEB-1"]), 0),
            vec!["web-2"]
        );
    }
}
