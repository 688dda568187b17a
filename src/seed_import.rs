//! `doscale import-seed`. STUB: replaced by the real implementation.

use std::path::Path;

/// Converts the scaler file at `path` (and the policy and droplet JSON files it references)
/// into doscale TOML.
pub fn convert(_path: &Path) -> color_eyre::Result<String> {
    color_eyre::eyre::bail!("import-seed is not built yet")
}
