//! `doscale status`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(ctx: &super::Ctx) -> Result<()> {
    color_eyre::eyre::bail!("`doscale status` is not built yet")
}
