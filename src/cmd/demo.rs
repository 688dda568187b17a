//! `doscale demo`: the whole pipeline against the embedded simulated fleet, zero set-up. The
//! demand rises and then falls over several rounds; each round scrapes twice (rates need two
//! scrapes), evaluates, plans and applies, and prints what it saw and did.

use std::time::Duration;

use color_eyre::eyre::WrapErr;
use color_eyre::Result;

use crate::cli::{DemoArgs, Global, SimArgs};
use crate::do_api::HttpApi;
use crate::output;
use crate::secret::Secret;
use crate::state::Store;

/// The demand of each round, as a multiple of the starting fleet: up, hold, down.
const PROFILE: [f64; 10] = [0.9, 1.5, 2.0, 2.0, 1.0, 0.35, 0.15, 0.15, 0.15, 0.15];

pub fn run(g: &Global, args: &DemoArgs) -> Result<()> {
    let sim = crate::sim::start(&SimArgs {
        droplets: args.droplets,
        listen: "127.0.0.1:0".into(),
        metrics_port: 0,
        latency_ms: 0,
        activate_ms: 800,
        seed: 1,
        tag: "web".into(),
        config_out: None,
    })
    .wrap_err("starting the embedded simulator")?;
    let dir = tempdir()?;
    let cfg_path = dir.join("demo.toml");
    let min = 2.min(args.droplets.max(1));
    let max = (args.droplets * 3).max(min + 2);
    std::fs::write(
        &cfg_path,
        demo_config(&sim.api_url, sim.metrics_port, &sim.tag, min, max),
    )?;
    let config = super::load_config(&cfg_path)?;
    let ctx = super::Ctx {
        config,
        json: false,
        wait: None,
        style: output::Style::detect(!g.no_headers, g.output == crate::cli::Output::Wide),
        verbose: g.verbose > 0,
        all: None,
    };
    let api = HttpApi::new(
        &ctx.config.api.url,
        Secret::new("demo-token".into()),
        Duration::from_secs(10),
    )?;
    let store = Store::open(&ctx.config.state_file, None)?;
    let mut state = store.load()?;
    let env = ctx.env(&api);
    let interval = Duration::from_secs_f64(args.interval.clamp(0.2, 60.0));

    output::print(&format!(
        "doscale demo: a simulated fleet of {} droplets (group web, min {min}, max {max}) at {}\n\
         policies: hot (mean CPU > 75% → +2), cold (mean CPU < 30% → −2); cooldowns 0s for the demo\n\n",
        args.droplets, sim.api_url
    ));
    for round in 0..args.rounds {
        let factor = PROFILE[(round as usize).min(PROFILE.len() - 1)];
        let demand = factor * args.droplets as f64;
        sim.set_demand(demand);
        output::print(&format!(
            "══ round {} of {}: demand {demand:.1} busy droplets ══\n",
            round + 1,
            args.rounds
        ));
        std::thread::sleep(Duration::from_millis(300));
        crate::pipeline::scrape(&env, &mut state, false)?;
        std::thread::sleep(interval);
        crate::pipeline::scrape(&env, &mut state, false)?;
        store.save(&state)?;
        output::print(&super::scrape::render_table(&ctx, &state));
        crate::pipeline::evaluate(&env, &mut state)?;
        let plans = crate::pipeline::plan(&env, &mut state)?;
        store.save(&state)?;
        output::print(&super::plan::render_table(&plans, &ctx.style));
        let reports = crate::pipeline::apply(&env, &mut state, Some(&store), false, false)?;
        store.save(&state)?;
        output::print(&super::apply::render_text(&reports, false));
        output::print("\n");
    }
    output::print(&format!(
        "state kept in {} (removed on exit)\n",
        ctx.config.state_file.display()
    ));
    drop(store);
    sim.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("doscale-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn demo_config(url: &str, port: u16, tag: &str, min: u32, max: u32) -> String {
    format!(
        r#"state_file = "state.json"
[api]
url = "{url}"
[[group]]
name = "web"
tag = "{tag}"
min = {min}
max = {max}
cooldown_up = "0s"
cooldown_down = "0s"
warmup = "0s"
max_step_up = 2
max_step_down = 2
[group.metrics]
port = {port}
timeout = "2s"
[group.template]
name = "web-{{n}}"
region = "nyc3"
size = "s-2vcpu-4gb"
image = "ubuntu-24-04-x64"
tags = ["{tag}"]
[group.health_check]
ports = [{port}]
timeout = "1s"
interval = "200ms"
max_tries = 50
[[group.policy]]
name = "hot"
scale = "up"
step = 2
conditions = [ {{ name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[5m]))', function = "mean", op = ">", threshold = 0.75 }} ]
[[group.policy]]
name = "cold"
scale = "down"
step = 2
conditions = [ {{ name = "cpu", expr = '1 - avg(rate(node_cpu_seconds_total{{mode="idle"}}[5m]))', function = "mean", op = "<", threshold = 0.3 }} ]
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_configuration_loads() {
        let text = super::demo_config("http://127.0.0.1:9", 9110, "web", 2, 9);
        let c = crate::config::parse(
            std::path::Path::new("/tmp/demo.toml"),
            &text,
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.groups[0].policies.len(), 2);
    }
}
