//! `doscale check`: validates the configuration offline. A missing token source is a warning
//! here (configs are checked on build machines), an error for commands that call the API.
use color_eyre::Result;

pub fn run(ctx: &super::Ctx) -> Result<()> {
    let c = &ctx.config;
    if crate::config::find_token(&c.api)?.is_none() {
        tracing::warn!("no API token source is set (DIGITALOCEAN_TOKEN, [api] token_file, or the systemd credential digitalocean-token): commands that call the API will refuse to run");
    }
    for g in &c.groups {
        if g.template.is_none() {
            tracing::info!(
                "group {}: no [group.template]: it can shrink but never grow",
                g.name
            );
        }
    }
    if ctx.json {
        let groups: Vec<_> = c.groups.iter().map(|g| serde_json::json!({"name": g.name, "tag": g.tag, "min": g.min, "max": g.max, "policies": g.policies.len(), "target": g.target.is_some()})).collect();
        crate::output::print(&format!(
            "{}\n",
            serde_json::json!({"config": c.path, "ok": true, "groups": groups})
        ));
    } else {
        let names: Vec<_> = c
            .groups
            .iter()
            .map(|g| format!("{} (tag {}, {}..{})", g.name, g.tag, g.min, g.max))
            .collect();
        crate::output::print(&format!(
            "{}: ok — {} group(s): {}\n",
            c.path.display(),
            c.groups.len(),
            names.join(", ")
        ));
    }
    Ok(())
}
