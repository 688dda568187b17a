//! `doscale import-seed PATH...`: do-scaler scaler files as one doscale TOML configuration on
//! stdout, one group per file.
use color_eyre::Result;

pub fn run(args: &crate::cli::ImportSeedArgs) -> Result<()> {
    let toml = crate::seed_import::convert_all(&args.paths)?;
    crate::output::print(&toml);
    Ok(())
}
