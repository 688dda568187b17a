//! The simulated fleet (DESIGN.md §7). STUB: replaced by the real implementation.

use crate::cli::SimArgs;

/// Runs `doscale sim` in the foreground until SIGINT/SIGTERM.
pub fn run(_args: &SimArgs) -> color_eyre::Result<()> {
    color_eyre::eyre::bail!("the simulator is not built yet")
}
