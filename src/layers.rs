//! The layers (ARCHITECTURE.md), checked on the source text: `model` imports nothing of
//! doscale's, and the decision core (`model`, `expr`, `policy`, `plan`) never reaches into
//! the shell (storage, the API, scraping, apply, output, the commands, the simulator). A
//! grep over `crate::` paths is enough: a core module that needs a shell type is a design
//! change, to be made here on purpose.

use std::path::{Path, PathBuf};

/// The decision core: values in, values out.
const CORE: &[&str] = &[
    "model", "units", "clean", "expr", "policy", "plan", "config",
];

/// The shell: files, network, clock, terminal.
const SHELL: &[&str] = &[
    "state", "do_api", "scrape", "sources", "apply", "cmd", "sim", "pipeline", "clock", "cli",
    "output", "textfile",
];

/// `src/<module>.rs` and every file under `src/<module>/`.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        out.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level modules a source text names through `crate::` paths (`crate::a::b`,
/// `crate::{a, b::c}`), each with the line it is on. Comments are skipped.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_use_group = false;
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        // The inside of a `crate::{ … }` group that spans lines.
        if in_use_group {
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            in_use_group = false;
                            group_names(&rest[..i], n + 1, &mut out);
                            rest = &rest[i + 1..];
                            break;
                        }
                    }
                    _ => {}
                }
            }
            if in_use_group {
                group_names(rest, n + 1, &mut out);
                continue;
            }
        }
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                match group.find('}') {
                    Some(end) => {
                        group_names(&group[..end], n + 1, &mut out);
                        rest = &group[end + 1..];
                    }
                    None => {
                        group_names(group, n + 1, &mut out);
                        in_use_group = true;
                        depth = 1;
                        rest = "";
                    }
                }
            } else {
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((n + 1, name));
                rest = after;
            }
        }
    }
    out
}

/// The first segment of each path of a `{ … }` group (top-level items of the group only).
fn group_names(group: &str, line: usize, out: &mut Vec<(usize, String)>) {
    let mut depth = 0usize;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => start = true,
            c if start && (c.is_alphanumeric() || c == '_') => {
                let name: String = group[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((line, name));
                start = false;
            }
            _ => {}
        }
    }
}

/// Every `crate::` path of `modules`' files into one of `forbidden` (`None`: into anything).
fn violations(modules: &[&str], forbidden: Option<&[&str]>) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    for m in modules {
        for f in files_of(&src, m) {
            let text = std::fs::read_to_string(&f).unwrap();
            for (line, target) in crate_paths(&text) {
                if forbidden.is_none_or(|fb| fb.contains(&target.as_str())) {
                    out.push(format!(
                        "{}:{line}: crate::{target}",
                        f.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    out
}

#[test]
fn the_core_does_not_import_the_shell() {
    let found = violations(CORE, Some(SHELL));
    assert!(
        found.is_empty(),
        "the core ({CORE:?}) imports shell modules:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_model_imports_nothing_of_doscale() {
    let found = violations(&["model"], None);
    assert!(found.is_empty(), "model imports:\n{}", found.join("\n"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert!(!files_of(&src, "model").is_empty(), "no src/model*");
}

#[test]
fn crate_paths_are_found_in_every_form() {
    let text = "use crate::state::Scrape;\n\
                let x = crate::do_api::model::Droplet::default(); // crate::cmd in a comment\n\
                use crate::{config::Scale, output::{sanitize, x}};\n\
                use crate::{\n    series::Key,\n    sim::{A, B},\n};\n";
    let found = crate_paths(text);
    let names: Vec<(usize, &str)> = found.iter().map(|(l, n)| (*l, n.as_str())).collect();
    assert_eq!(
        names,
        [
            (1, "state"),
            (2, "do_api"),
            (3, "config"),
            (3, "output"),
            (5, "series"),
            (6, "sim"),
        ]
    );
}
