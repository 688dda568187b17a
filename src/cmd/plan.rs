//! `doscale plan`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(ctx: &super::Ctx, args: &crate::cli::PlanArgs) -> Result<()> {
    color_eyre::eyre::bail!("`doscale plan` is not built yet")
}
