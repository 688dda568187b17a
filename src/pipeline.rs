//! One pass of doscale as four stages — scrape, evaluate, plan, apply — each a function of an
//! [`Env`] (the configuration, the clock, the randomness, the API, the metric source) and the
//! state, returning what it found or did. The subcommands, `run`, `demo` and `backtest` all go
//! through these functions; none of them reads the wall clock or global randomness itself.

use std::cell::RefCell;
use std::io::IsTerminal;

use color_eyre::eyre::{bail, WrapErr};
use color_eyre::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::apply::{self, GroupReport, Saver};
use crate::clock::Clock;
use crate::config::{Config, Group};
use crate::do_api::DoApi;
use crate::plan::{self, GroupPlan, PlanInput};
use crate::policy::{self, GroupEvaluation};
use crate::sources::MetricSource;
use crate::state::{State, Store};

/// What a pass runs against.
pub struct Env<'a> {
    pub config: &'a Config,
    pub clock: &'a dyn Clock,
    pub api: &'a dyn DoApi,
    pub source: &'a dyn MetricSource,
    /// The health check of new droplets (TCP by default; `backtest` passes a simulated one).
    pub probe: &'a dyn apply::HealthProbe,
    /// Randomness (the planner's name suffixes): seeded for reproducible runs.
    pub rng: RefCell<StdRng>,
    /// Progress bars on stderr while scraping (a terminal, not CI).
    pub progress: bool,
}

impl<'a> Env<'a> {
    /// The production environment: randomness from the OS, progress bars on a terminal.
    pub fn new(
        config: &'a Config,
        clock: &'a dyn Clock,
        api: &'a dyn DoApi,
        source: &'a dyn MetricSource,
    ) -> Self {
        Env {
            config,
            clock,
            api,
            source,
            probe: &apply::TcpProbe,
            rng: RefCell::new(StdRng::from_entropy()),
            progress: std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
        }
    }

    /// Reproducible randomness (tests, `backtest`).
    pub fn seeded(mut self, seed: u64) -> Self {
        self.rng = RefCell::new(StdRng::seed_from_u64(seed));
        self
    }
}

/// What one whole pass found and did.
pub struct Pass {
    pub evaluations: Vec<GroupEvaluation>,
    pub plans: Vec<GroupPlan>,
    pub reports: Vec<GroupReport>,
}

/// Scrape, evaluate, plan and apply, saving the state after each stage when `store` is given.
pub fn pass(
    env: &Env<'_>,
    state: &mut State,
    store: Option<&Store>,
    dry_run: bool,
    force: bool,
) -> Result<Pass> {
    let save = |state: &State| store.map_or(Ok(()), |s| s.save(state));
    scrape(env, state, false)?;
    save(state)?;
    let evaluations = evaluate(env, state)?;
    save(state)?;
    let plans = plan(env, state)?;
    save(state)?;
    let reports = apply(env, state, store, dry_run, force)?;
    Ok(Pass {
        evaluations,
        plans,
        reports,
    })
}

/// Scrapes every group into `state`. Fails only when a listing fails (then nothing of this
/// pass is stored).
pub fn scrape(env: &Env<'_>, state: &mut State, all: bool) -> Result<()> {
    let mut scrapes = Vec::new();
    for g in &env.config.groups {
        let pb = env.progress.then(|| progress_bar(&g.name));
        let s = env.source.scrape(env.api, g, all, pb.as_ref(), env.clock)?;
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        let failed = s.droplets.iter().filter(|d| d.error.is_some()).count();
        tracing::info!(group = %g.name, droplets = s.droplets.len(), failed, "scraped");
        if s.bad_lines > 0 {
            tracing::warn!(
                "group {}: {} metric line(s) could not be read faithfully and were left out, e.g. {}",
                g.name,
                s.bad_lines,
                s.bad_line_example.as_deref().unwrap_or("?")
            );
        }
        scrapes.push((g, s));
    }
    for (g, s) in scrapes {
        let gs = state.group_mut(&g.name);
        // The scrape that becomes the previous one keeps only what rates read from it.
        if let Some(prev) = gs.latest_scrape_mut() {
            for d in &mut prev.droplets {
                d.series.retain(|k, _| wanted_previous(g, k));
            }
        }
        gs.push_scrape(s);
    }
    Ok(())
}

/// Series of a previous scrape that are still needed: counters under `rate`/`increase`, and
/// the idle CPU counters for the load table's CPU %.
fn wanted_previous(g: &Group, key: &str) -> bool {
    let Some((name, labels)) = crate::series::parse(key) else {
        return false;
    };
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if name == "node_cpu_seconds_total" && labels.contains(&("mode", "idle")) {
        return true;
    }
    g.exprs().any(|e| e.wants_previous(name, &labels))
}

fn progress_bar(group: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} droplets {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_prefix(format!("scraping {group}"));
    pb
}

/// Evaluates every group's latest scrape into `state`.
pub fn evaluate(env: &Env<'_>, state: &mut State) -> Result<Vec<GroupEvaluation>> {
    let now = env.clock.now();
    let mut out = Vec::new();
    for g in &env.config.groups {
        let gs = state.group_mut(&g.name);
        let Some(cur) = gs.latest_scrape() else {
            bail!(
                "group {}: there is no scrape to evaluate yet: run `doscale scrape` first",
                g.name
            );
        };
        let age = now - cur.at;
        if age.to_std().unwrap_or_default() > env.config.max_scrape_age {
            bail!(
                "group {}: the latest scrape is {} old, older than max_scrape_age ({}): run `doscale scrape` first",
                g.name,
                crate::units::age(age),
                humantime::format_duration(env.config.max_scrape_age)
            );
        }
        let started = std::time::Instant::now();
        let eval = policy::evaluate_group(g, cur, gs.previous_scrape(), now);
        tracing::info!(
            "group {}: evaluated {} droplets (decision core {:.2} ms)",
            g.name,
            cur.droplets.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        gs.evaluation = Some(eval.summary());
        // A new evaluation makes the stored plan stale.
        gs.plan = None;
        out.push(eval);
    }
    Ok(out)
}

/// Plans every group from its stored evaluation.
pub fn plan(env: &Env<'_>, state: &mut State) -> Result<Vec<GroupPlan>> {
    let now = env.clock.now();
    let mut out = Vec::new();
    for g in &env.config.groups {
        let gs = state.group_mut(&g.name);
        let Some(eval) = gs.evaluation.clone() else {
            bail!(
                "group {}: there is no evaluation to plan from: run `doscale evaluate` first",
                g.name
            );
        };
        let Some(scrape) = gs.latest_scrape() else {
            bail!(
                "group {}: there is no scrape: run `doscale scrape` first",
                g.name
            );
        };
        if scrape.at != eval.at {
            bail!("group {}: the evaluation is older than the latest scrape: run `doscale evaluate` first", g.name);
        }
        let input = PlanInput {
            group: g,
            eval: &eval,
            members: &scrape.droplets,
            history: &gs.history,
            pending: &gs.pending,
            recommendations: &gs.recommendations,
            operator: plan::Operator {
                paused: gs.paused.as_ref(),
                manual: gs.manual.as_ref(),
            },
            consistency: env.config.api.consistency,
            now,
            rand: env.rng.borrow_mut().gen(),
        };
        let started = std::time::Instant::now();
        let p = plan::plan_group(&input);
        tracing::info!(
            "group {}: planned from {} droplets (decision core {:.2} ms)",
            g.name,
            scrape.droplets.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        if let Some(r) = &p.recommendation {
            gs.recommendations.push(r.clone());
        }
        // Keep the recommendations the stabilization window can still use.
        let window = g
            .target
            .as_ref()
            .map(|t| t.stabilization_down)
            .unwrap_or_default();
        let keep_from = now
            - chrono::Duration::from_std(window).unwrap_or_default()
            - chrono::Duration::seconds(1);
        gs.recommendations.retain(|r| r.at >= keep_from);
        gs.plan = Some(p.clone());
        out.push(p);
    }
    Ok(out)
}

/// Applies every group's stored plan (refusing a missing, stale or already applied one, or
/// one the droplets moved away from); `force` lifts the `max_destroy_share` guard. The state
/// is saved to `store` around every request unless `dry_run`.
pub fn apply(
    env: &Env<'_>,
    state: &mut State,
    store: Option<&Store>,
    dry_run: bool,
    force: bool,
) -> Result<Vec<GroupReport>> {
    let now = env.clock.now();
    let api = env.api;
    // Check every group's plan before touching anything.
    let mut plans = Vec::new();
    let mut reports = Vec::new();
    for g in &env.config.groups {
        let gs = state.group_mut(&g.name);
        if let Some(p) = &gs.paused {
            // Nothing is sent for a paused group, whatever its stored plan says (made before
            // the pause, say), and its pending operations wait too.
            reports.push(GroupReport {
                name: g.name.clone(),
                skipped: Some(format!(
                    "paused since {}{}: nothing sent, `doscale resume {}` to resume",
                    crate::units::instant(p.since),
                    crate::clean::by(p.by.as_deref()),
                    g.name
                )),
                ..Default::default()
            });
            continue;
        }
        let Some(plan) = gs.plan.clone() else {
            bail!(
                "group {}: there is no plan to apply: run `doscale plan` first (or `doscale run --dry-run` for a whole fresh pass)",
                g.name
            );
        };
        if plan.applied_at.is_some() {
            bail!(
                "group {}: the stored plan was already applied: run `doscale plan` for a new one (or `doscale run`)",
                g.name
            );
        }
        let age = (now - plan.at).to_std().unwrap_or_default();
        if age > env.config.plan_max_age {
            bail!(
                "group {}: the plan is {} old, older than plan_max_age ({}): run `doscale plan` again (or `doscale run --dry-run` for a whole fresh pass)",
                g.name,
                crate::units::age(now - plan.at),
                humantime::format_duration(env.config.plan_max_age)
            );
        }
        // The hard guard (issue 14.10), whatever made the plan: never more than
        // max_destroy_share of the group destroyed in one pass without --force.
        let allowed = plan::destroy_allowed(plan.current, g.max_destroy_share);
        if plan.destroy.len() as u32 > allowed && !force {
            bail!(
                "group {}: the plan destroys {} of {} droplets, more than max_destroy_share {}% allows in one pass ({allowed}): nothing was sent. Check the plan (`doscale plan`); if it is right, run `doscale apply --force`, or raise max_destroy_share or lower max_step_down",
                g.name,
                plan.destroy.len(),
                plan.current,
                g.max_destroy_share * 100.0
            );
        }
        let listing = api
            .list_all(&g.tag)
            .wrap_err_with(|| format!("listing group {} before applying", g.name))?;
        let mut ids: Vec<u64> = listing.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        if ids != plan.based_on {
            let gone: Vec<String> = plan
                .based_on
                .iter()
                .filter(|i| !ids.contains(i))
                .map(u64::to_string)
                .collect();
            let new: Vec<String> = ids
                .iter()
                .filter(|i| !plan.based_on.contains(i))
                .map(u64::to_string)
                .collect();
            bail!(
                "group {}: the droplets changed since the plan was made (gone: {}; new: {}): run `doscale plan` again (or `doscale run --dry-run` for a whole fresh pass)",
                g.name,
                if gone.is_empty() { "none".into() } else { gone.join(", ") },
                if new.is_empty() { "none".into() } else { new.join(", ") }
            );
        }
        plans.push((g, plan, listing));
    }
    let saver = Saver {
        store: if dry_run { None } else { store },
    };
    for (g, plan, listing) in plans {
        let rep = apply::apply_group(
            apply::Io {
                api,
                clock: env.clock,
                probe: env.probe,
            },
            g,
            &plan,
            state,
            &saver,
            &listing,
            env.config.api.consistency,
            dry_run,
        )?;
        if !dry_run {
            let gs = state.group_mut(&g.name);
            if let Some(p) = gs.plan.as_mut() {
                p.applied_at = Some(env.clock.now());
            }
            // A `doscale set` is consumed by the plan that carried it out (not by one made
            // before a newer `set`): the policies rule again from the next plan.
            if plan.carries_set.is_some() && gs.manual.as_ref().map(|m| m.at) == plan.carries_set {
                gs.manual = None;
            }
            saver.save(state)?;
        }
        reports.push(rep);
    }
    Ok(reports)
}
