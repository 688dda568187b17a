//! `doscale evaluate`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(ctx: &super::Ctx) -> Result<()> {
    color_eyre::eyre::bail!("`doscale evaluate` is not built yet")
}
