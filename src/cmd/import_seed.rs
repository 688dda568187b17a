//! `doscale import-seed PATH`: a do-scaler scaler file as a doscale TOML group on stdout.
use color_eyre::Result;

pub fn run(args: &crate::cli::ImportSeedArgs) -> Result<()> {
    let toml = crate::seed_import::convert(&args.path)?;
    crate::output::print(&toml);
    Ok(())
}
