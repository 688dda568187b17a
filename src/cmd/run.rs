//! `doscale run`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(ctx: &super::Ctx, args: &crate::cli::RunArgs) -> Result<()> {
    color_eyre::eyre::bail!("`doscale run` is not built yet")
}
