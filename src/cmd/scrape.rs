//! `doscale scrape`. STUB.
use color_eyre::Result;

#[allow(unused_variables)]
pub fn run(ctx: &super::Ctx, args: &crate::cli::ScrapeArgs) -> Result<()> {
    color_eyre::eyre::bail!("`doscale scrape` is not built yet")
}
