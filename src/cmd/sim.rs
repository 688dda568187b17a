//! `doscale sim`: the simulated fleet in the foreground.
use color_eyre::Result;

pub fn run(args: &crate::cli::SimArgs) -> Result<()> {
    crate::sim::run(args)
}
