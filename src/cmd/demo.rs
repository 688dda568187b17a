//! `doscale demo`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(g: &crate::cli::Global, args: &crate::cli::DemoArgs) -> Result<()> {
    color_eyre::eyre::bail!("`doscale demo` is not built yet")
}
