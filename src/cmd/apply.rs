//! `doscale apply`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(ctx: &super::Ctx, args: &crate::cli::ApplyArgs) -> Result<()> {
    color_eyre::eyre::bail!("`doscale apply` is not built yet")
}
