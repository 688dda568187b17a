//! `doscale completions SHELL`: completion scripts generated from the clap definitions.
use clap::CommandFactory;
use color_eyre::Result;

pub fn run(args: &crate::cli::CompletionsArgs) -> Result<()> {
    let mut cmd = crate::cli::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "doscale", &mut buf);
    crate::output::print(&String::from_utf8_lossy(&buf));
    Ok(())
}
