//! The committed `man/doscale.1` is exactly what `doscale::manpage::render()` produces from
//! the clap definitions, so the manual can never drift from `--help`.
//!
//! After changing `src/cli.rs`, regenerate the page with `UPDATE_MAN=1 cargo test man_page`.

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("man/doscale.1")
}

#[test]
fn man_page_matches_the_cli() {
    let rendered = doscale::manpage::render();
    let path = committed();
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, &rendered).expect("writing man/doscale.1");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != rendered {
        let first = on_disk
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(rendered.lines().count()));
        panic!(
            "man/doscale.1 is out of date with src/cli.rs (first difference at line {}).\n\
             Regenerate it with:  UPDATE_MAN=1 cargo test man_page\n\
             and commit the result.",
            first + 1
        );
    }
}

#[test]
fn man_page_covers_every_subcommand_and_option() {
    use clap::CommandFactory;
    let page = doscale::manpage::render();
    let cmd = doscale::cli::Cli::command();
    for sub in cmd.get_subcommands() {
        assert!(
            page.contains(&format!(".SS \"doscale {}\"", sub.get_name())),
            "no section for `doscale {}`",
            sub.get_name()
        );
        for arg in sub.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                    "option --{long} of `doscale {}` is not in the page",
                    sub.get_name()
                );
            }
        }
    }
    for arg in cmd.get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                "--{long}"
            );
        }
    }
}
