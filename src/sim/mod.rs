//! The simulated fleet (DESIGN.md §7). STUB: replaced by the real implementation.

use crate::cli::SimArgs;

/// Runs `doscale sim` in the foreground until SIGINT/SIGTERM.
pub fn run(_args: &SimArgs) -> color_eyre::Result<()> {
    color_eyre::eyre::bail!("the simulator is not built yet")
}

/// A simulator running on threads of its own.
pub struct SimHandle {
    pub api_url: String,
    pub metrics_port: u16,
    pub tag: String,
}

/// Starts the simulator in-process on threads of its own.
pub fn start(_args: &SimArgs) -> color_eyre::Result<SimHandle> {
    color_eyre::eyre::bail!("the simulator is not built yet")
}

impl SimHandle {
    pub fn write_config(&self, _path: &std::path::Path) -> color_eyre::Result<()> {
        Ok(())
    }
    pub fn set_demand(&self, _d: f64) {}
    pub fn shutdown(self) {}
}
