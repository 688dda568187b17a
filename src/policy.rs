//! Policy evaluation (pure): who is evaluated (docs/design.md §3.1–3.3), every condition per
//! droplet and over the group, each policy's verdict, the `min_reporting` rule and the
//! target-tracking recommendation.
//!
//! Who is evaluated: a member is a droplet whose status is `new` or `active`; it is evaluated
//! when it is active, out of warmup and scraped successfully. Every condition is computed per
//! evaluated droplet (its expression over that droplet's series, rates against the same
//! droplet in the previous scrape), then aggregated over the droplets that have a value by
//! the condition's `function`. No value anywhere is `null`, which never satisfies.

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Function, Group, Match};
use crate::expr::{Expr, NoData, Sample};
use crate::model::{Scale, Scrape, ScrapedDroplet};
use crate::units::num;

/// Droplet id → a condition's value for it.
pub type PerDroplet = litemap::LiteMap<u64, Option<f64>>;

/// The evaluation of one group (stored in state, printed by `evaluate --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupEvaluation {
    pub name: String,
    /// Time of the scrape this evaluates.
    pub at: DateTime<Utc>,
    /// Droplets that count toward the group's size (`new` and `active`).
    pub size: u32,
    /// Droplets evaluated: active, out of warmup, scraped successfully.
    pub evaluated: usize,
    /// Every member, with why it was or was not evaluated.
    pub droplets: Vec<DropletStatus>,
    pub reporting: Reporting,
    pub policies: Vec<PolicyEvaluation>,
    pub target: Option<TargetEvaluation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropletStatus {
    pub id: u64,
    pub name: compact_str::CompactString,
    pub status: compact_str::CompactString,
    /// Active, out of warmup and scraped successfully.
    pub evaluated: bool,
    /// Why not evaluated: `new`, `warmup (2m of 5m)`, the scrape error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `node_load1` when scraped (for `remove = "least_loaded"` and the table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
}

/// The `min_reporting` rule: a scale-down needs this share of the eligible droplets (active,
/// out of warmup) to have reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reporting {
    pub eligible: usize,
    pub reporting: usize,
    pub required: f64,
    pub ok: bool,
}

/// Who gave a value for one expression (a condition or the target): the `min_reporting` rule
/// counted per condition and target. A droplet that scraped but has no finite value for the
/// expression (a NaN or infinite series, a series missing, a rate without a previous scrape)
/// drops out of the aggregate; a scale-down must not rest on the others alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Eligible droplets: active and out of warmup (scraped or not).
    pub eligible: usize,
    /// Eligible droplets with a finite value.
    pub with_value: usize,
    /// `with_value` is at least `min_reporting` of `eligible` (and `eligible > 0`). An
    /// evaluation stored before this field existed reads as not ok: no scale-down on it.
    pub ok: bool,
    /// The first [`Coverage::NAMED`] eligible droplets without a value, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Missing>,
}

/// An eligible droplet without a value for an expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Missing {
    pub id: u64,
    pub name: compact_str::CompactString,
    pub why: String,
}

impl Coverage {
    /// How many droplets without a value are named.
    pub const NAMED: usize = 5;

    /// `4 web-4 (scrape failed: …), 9 web-9 (no series matches `x`) and 3 more`.
    pub fn missing_text(&self) -> String {
        let mut s = self
            .missing
            .iter()
            .map(|m| format!("{} {} ({})", m.id, m.name, short(&m.why)))
            .collect::<Vec<_>>()
            .join(", ");
        let more =
            (self.eligible - self.with_value.min(self.eligible)).saturating_sub(self.missing.len());
        if more > 0 {
            s.push_str(&format!(" and {more} more"));
        }
        s
    }
}

/// A reason cut to a length that keeps a list of droplets readable.
fn short(why: &str) -> String {
    const MAX: usize = 80;
    if why.chars().count() <= MAX {
        why.to_string()
    } else {
        let mut s: String = why.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyEvaluation {
    pub name: String,
    pub scale: Scale,
    pub step: u32,
    #[serde(rename = "match")]
    pub match_: Match,
    /// The conditions hold (by `match`). `min_reporting` is applied by the planner.
    pub satisfied: bool,
    pub conditions: Vec<ConditionEvaluation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionEvaluation {
    pub name: String,
    pub expr: String,
    pub function: String,
    /// The group aggregate; `null` = no data (never satisfied).
    pub value: Option<f64>,
    pub op: String,
    pub threshold: f64,
    pub satisfied: bool,
    /// Droplet id → its value (`null`: no data for that droplet). The ids are JSON object
    /// keys, so strings in JSON. A sorted vector: thousands of entries in one allocation,
    /// shared by the conditions of one expression.
    pub per_droplet: Arc<PerDroplet>,
    /// Why there is no value, or why some droplets have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<String>,
    /// Which eligible droplets gave a value (the `min_reporting` rule of this condition).
    #[serde(default)]
    pub coverage: Coverage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetEvaluation {
    /// The configured target value.
    pub value: f64,
    pub function: String,
    /// The group aggregate, `null` = no data (no recommendation change).
    pub aggregate: Option<f64>,
    /// Droplets the recommendation scales from (evaluated ones).
    pub ready: usize,
    /// Recommended size: `ceil(ready × aggregate / value)`, or the current size inside the
    /// tolerance band, without data, or when a recommendation below it would rest on fewer
    /// droplets than `min_reporting` asks for.
    pub recommended: u32,
    pub reason: String,
    /// Which eligible droplets gave a value for the target's expression.
    #[serde(default)]
    pub coverage: Coverage,
}

impl GroupEvaluation {
    /// What the planner needs and the state keeps: verdicts and aggregates, without the
    /// per-droplet detail (`evaluate --output json` prints that). Nothing per droplet is
    /// copied.
    pub fn summary(&self) -> GroupEvaluation {
        GroupEvaluation {
            name: self.name.clone(),
            at: self.at,
            size: self.size,
            evaluated: self.evaluated,
            droplets: Vec::new(),
            reporting: self.reporting.clone(),
            policies: self
                .policies
                .iter()
                .map(|p| PolicyEvaluation {
                    name: p.name.clone(),
                    scale: p.scale,
                    step: p.step,
                    match_: p.match_,
                    satisfied: p.satisfied,
                    conditions: p
                        .conditions
                        .iter()
                        .map(ConditionEvaluation::summary)
                        .collect(),
                })
                .collect(),
            target: self.target.clone(),
        }
    }
}

impl ConditionEvaluation {
    /// The condition without its per-droplet values (see [`GroupEvaluation::summary`]).
    fn summary(&self) -> ConditionEvaluation {
        ConditionEvaluation {
            per_droplet: Arc::default(),
            ..self.clone()
        }
    }
}

/// Evaluates one group on its latest scrape (`cur`) and the one before (`prev`, for rates).
/// `now` decides warmup.
pub fn evaluate_group(
    group: &Group,
    cur: &Scrape,
    prev: Option<&Scrape>,
    now: DateTime<Utc>,
) -> GroupEvaluation {
    let warmup = chrono::Duration::from_std(group.warmup).unwrap_or(chrono::Duration::MAX);
    let mut size = 0u32;
    let mut eligible = 0usize;
    let mut evaluated: Vec<&ScrapedDroplet> = Vec::new();
    // Eligible droplets whose scrape failed: no value for any expression.
    let mut failed: Vec<&ScrapedDroplet> = Vec::new();
    let mut droplets = Vec::with_capacity(cur.droplets.len());
    for d in &cur.droplets {
        let mut reason = None;
        match d.status.as_str() {
            "new" => {
                size += 1;
                reason = Some("new".to_string());
            }
            "active" => {
                size += 1;
                let age = now - d.created_at;
                if age < warmup {
                    reason = Some(format!(
                        "in warmup: {} of {}",
                        crate::units::dur(age.to_std().unwrap_or_default()),
                        crate::units::dur(group.warmup)
                    ));
                } else {
                    eligible += 1;
                    match &d.error {
                        Some(e) => {
                            reason = Some(format!("scrape failed: {e}"));
                            failed.push(d);
                        }
                        None => evaluated.push(d),
                    }
                }
            }
            other => reason = Some(format!("status {other}")),
        }
        droplets.push(DropletStatus {
            id: d.id,
            name: d.name.clone(),
            status: d.status.clone(),
            evaluated: reason.is_none(),
            reason,
            load1: d.series.get("node_load1").copied(),
        });
    }
    let reporting = Reporting {
        eligible,
        reporting: evaluated.len(),
        required: group.min_reporting,
        ok: eligible > 0 && evaluated.len() as f64 / eligible as f64 >= group.min_reporting,
    };

    // Each evaluated droplet with its previous scrape, if that one succeeded.
    let prev_ok: HashMap<u64, &ScrapedDroplet> = prev
        .map(|p| {
            p.droplets
                .iter()
                .filter(|d| d.error.is_none())
                .map(|d| (d.id, d))
                .collect()
        })
        .unwrap_or_default();
    let cur_ms = cur.at.timestamp_millis();
    let prev_ms = prev.map(|p| p.at.timestamp_millis()).unwrap_or_default();
    let inputs: Vec<Input<'_>> = evaluated
        .iter()
        .map(|d| Input {
            droplet: d,
            cur: Sample {
                at_ms: cur_ms,
                series: &d.series,
            },
            prev: prev_ok.get(&d.id).map(|p| Sample {
                at_ms: prev_ms,
                series: &p.series,
            }),
        })
        .collect();

    // Each distinct expression once: policies often share one (do-scaler's up and down
    // policies both read the load averages).
    let mut columns: HashMap<&str, Column> = HashMap::new();
    for e in group.exprs() {
        columns.entry(e.text()).or_insert_with(|| {
            Column::compute(
                e,
                &inputs,
                &failed,
                group.min_reporting,
                group.metrics.source.evaluates(),
            )
        });
    }

    let policies = group
        .policies
        .iter()
        .map(|p| {
            let conditions: Vec<ConditionEvaluation> = p
                .conditions
                .iter()
                .map(|c| {
                    let col = &columns[c.expr.text()];
                    let value = aggregate(c.function, &col.values);
                    ConditionEvaluation {
                        name: c.name.clone(),
                        expr: c.expr.text().to_string(),
                        function: c.function.label(),
                        value,
                        op: c.op.symbol().to_string(),
                        threshold: c.threshold,
                        satisfied: value.is_some_and(|v| c.op.holds(v, c.threshold)),
                        no_data: col.no_data.clone(),
                        per_droplet: col.per_droplet(&inputs),
                        coverage: col.coverage.clone(),
                    }
                })
                .collect();
            let satisfied = match p.match_ {
                Match::All => conditions.iter().all(|c| c.satisfied),
                Match::Any => conditions.iter().any(|c| c.satisfied),
            };
            PolicyEvaluation {
                name: p.name.clone(),
                scale: p.scale,
                step: p.step,
                match_: p.match_,
                satisfied,
                conditions,
            }
        })
        .collect();

    let target = group.target.as_ref().map(|t| {
        let col = &columns[t.expr.text()];
        let aggregate = aggregate(t.function, &col.values);
        let (mut recommended, reason) =
            recommend(size, inputs.len(), aggregate, t.value, t.tolerance);
        let mut reason = match (aggregate, &col.no_data) {
            (None, Some(why)) => format!("{reason}: {why}"),
            _ => reason,
        };
        // A recommendation below the current size needs min_reporting of the eligible
        // droplets to have a value: the droplets without one may be the busy ones.
        if recommended < size && !col.coverage.ok {
            reason = format!(
                "{reason}, but only {} of {} eligible droplets have a value (min_reporting {}%; none from {}): partial data never shrinks a group: keeping the current size {size}",
                col.coverage.with_value,
                col.coverage.eligible,
                num(group.min_reporting * 100.0),
                col.coverage.missing_text()
            );
            recommended = size;
        }
        TargetEvaluation {
            value: t.value,
            function: t.function.label(),
            aggregate,
            ready: inputs.len(),
            recommended,
            reason,
            coverage: col.coverage.clone(),
        }
    });

    GroupEvaluation {
        name: group.name.clone(),
        at: cur.at,
        size,
        evaluated: inputs.len(),
        droplets,
        reporting,
        policies,
        target,
    }
}

/// An evaluated droplet, ready for its expressions.
struct Input<'a> {
    droplet: &'a ScrapedDroplet,
    cur: Sample<'a>,
    prev: Option<Sample<'a>>,
}

/// One expression over every evaluated droplet, in the order of the inputs, and what the
/// conditions that read it take from it (worked out once for all of them).
struct Column {
    results: Vec<Result<f64, NoData>>,
    /// The values there are (what a condition's function aggregates).
    values: Vec<f64>,
    /// Why droplets have no value (see [`reasons`]).
    no_data: Option<String>,
    /// Which eligible droplets have a value.
    coverage: Coverage,
    /// Only conditions print them (not the target): made when first asked for.
    per_droplet: OnceCell<Arc<PerDroplet>>,
}

impl Column {
    fn compute(
        expr: &Expr,
        inputs: &[Input<'_>],
        failed: &[&ScrapedDroplet],
        min_reporting: f64,
        evaluated_by_source: bool,
    ) -> Column {
        let results = if evaluated_by_source {
            inputs.iter().map(|i| by_source(expr, i)).collect()
        } else {
            expr.eval_all(inputs.iter().map(|i| (i.cur, i.prev)))
        };
        let values: Vec<f64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok().copied())
            .filter(|v| v.is_finite())
            .collect();
        Column {
            coverage: coverage(inputs, &results, values.len(), failed, min_reporting),
            no_data: reasons(inputs, &results),
            values,
            per_droplet: OnceCell::new(),
            results,
        }
    }

    /// Sorted by id; a droplet listed twice (pages shifting under a listing) keeps its last
    /// value (LiteMap's `FromIterator`).
    fn per_droplet(&self, inputs: &[Input<'_>]) -> Arc<PerDroplet> {
        self.per_droplet
            .get_or_init(|| {
                Arc::new(
                    inputs
                        .iter()
                        .zip(&self.results)
                        .map(|(i, r)| (i.droplet.id, r.as_ref().ok().copied()))
                        .collect(),
                )
            })
            .clone()
    }
}

/// A droplet's value of `expr` as a source that evaluates expressions (Prometheus) stored it
/// in the scrape (see `series::expr_result`): the same rules as our own evaluation, a value
/// that is not finite is no data.
fn by_source(expr: &Expr, i: &Input<'_>) -> Result<f64, NoData> {
    match crate::series::expr_result(i.cur.series, expr.text()) {
        Some(Ok(v)) if v.is_finite() => Ok(v),
        Some(Ok(v)) => Err(NoData(format!(
            "the value is {v}, not a finite number (a NaN or infinite series, or a division by zero)"
        ))),
        Some(Err(why)) => Err(NoData(why)),
        None => Err(NoData(
            "the latest scrape holds no value of this expression from the group's source (made before the source changed?): run `doscale scrape`".into(),
        )),
    }
}

/// Who of the eligible droplets (the evaluated `inputs` and the `failed` scrapes) has a value.
/// `with_value` counts the finite values: the evaluator already turns NaN and ±Inf into
/// `NoData`, and the column drops any that would slip through.
fn coverage(
    inputs: &[Input<'_>],
    results: &[Result<f64, NoData>],
    with_value: usize,
    failed: &[&ScrapedDroplet],
    min_reporting: f64,
) -> Coverage {
    let eligible = inputs.len() + failed.len();
    let mut missing: Vec<Missing> = failed
        .iter()
        .take(Coverage::NAMED)
        .map(|d| Missing {
            id: d.id,
            name: d.name.clone(),
            why: format!("scrape failed: {}", d.error.as_deref().unwrap_or("?")),
        })
        .collect();
    for (i, r) in inputs.iter().zip(results) {
        if missing.len() >= Coverage::NAMED {
            break;
        }
        let why = match r {
            Ok(v) if v.is_finite() => continue,
            Ok(v) => format!("the value is {v}"),
            Err(NoData(why)) => why.clone(),
        };
        missing.push(Missing {
            id: i.droplet.id,
            name: i.droplet.name.clone(),
            why,
        });
    }
    Coverage {
        eligible,
        with_value,
        ok: eligible > 0 && with_value as f64 / eligible as f64 >= min_reporting,
        missing,
    }
}

/// Why droplets have no value: each distinct reason with how many and one example.
fn reasons(inputs: &[Input<'_>], results: &[Result<f64, NoData>]) -> Option<String> {
    if inputs.is_empty() {
        return Some("no droplet to evaluate (none is active, out of warmup and scraped)".into());
    }
    let mut reasons: BTreeMap<&str, (usize, &ScrapedDroplet)> = BTreeMap::new();
    for (i, r) in inputs.iter().zip(results) {
        if let Err(NoData(why)) = r {
            reasons.entry(why.as_str()).or_insert((0, i.droplet)).0 += 1;
        }
    }
    if reasons.is_empty() {
        return None;
    }
    let missing: usize = reasons.values().map(|(n, _)| n).sum();
    let mut parts: Vec<(usize, String)> = reasons
        .into_iter()
        .map(|(why, (n, d))| {
            let who = if n == 1 {
                format!("{} {}", d.id, d.name)
            } else {
                format!("{n}, e.g. {} {}", d.id, d.name)
            };
            (n, format!("{why} ({who})"))
        })
        .collect();
    // The commonest reasons first; a few are enough.
    parts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let shown: Vec<String> = parts.iter().take(3).map(|(_, s)| s.clone()).collect();
    let more = if parts.len() > 3 {
        format!("; and {} other reasons", parts.len() - 3)
    } else {
        String::new()
    };
    Some(format!(
        "{missing} of {} droplets have no value: {}{more}",
        inputs.len(),
        shown.join("; ")
    ))
}

/// Aggregates per-droplet values over the group; `None` without any value.
pub fn aggregate(f: Function, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    Some(match f {
        Function::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Function::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Function::Sum => values.iter().sum(),
        Function::Mean => values.iter().sum::<f64>() / n,
        Function::Median => {
            let v = sorted(values);
            let mid = v.len() / 2;
            if v.len() % 2 == 1 {
                v[mid]
            } else {
                (v[mid - 1] + v[mid]) / 2.0
            }
        }
        Function::Percentile(p) => {
            // Linear interpolation between the closest ranks (numpy's default).
            let v = sorted(values);
            let rank = p.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
        }
    })
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Target tracking, as Kubernetes' HPA and DigitalOcean's autoscale pools: `ceil(ready ×
/// aggregate / value)`, the current size inside the tolerance band or without data. Like the
/// HPA, it never moves against the measurement: when droplets that are not evaluated yet (new,
/// in warmup, failed) make the formula fall below the current size although the aggregate is
/// above the target (or rise above it although the aggregate is below), the size is kept.
fn recommend(
    size: u32,
    ready: usize,
    aggregate: Option<f64>,
    value: f64,
    tolerance: f64,
) -> (u32, String) {
    let Some(agg) = aggregate else {
        return (size, format!("no data: keeping the current size {size}"));
    };
    let ratio = agg / value;
    if !ratio.is_finite() {
        return (size, format!("aggregate {agg} against target {value} gives no ratio: keeping the current size {size}"));
    }
    if (ratio - 1.0).abs() <= tolerance {
        return (size, format!(
            "within tolerance: {} is within {}% of the target {value}: keeping the current size {size}",
            num(agg),
            num(tolerance * 100.0)
        ));
    }
    let raw = (ready as f64 * ratio).ceil();
    let mut rec = if raw <= 0.0 {
        0
    } else if raw >= u32::MAX as f64 {
        u32::MAX
    } else {
        raw as u32
    };
    if size > 0 {
        rec = rec.max(1);
    }
    let formula = format!("ceil({ready} × {} / {value}) = {rec}", num(agg));
    if ratio > 1.0 && rec < size || ratio < 1.0 && rec > size {
        let dir = if ratio > 1.0 { "above" } else { "below" };
        let not_ready = size as usize - ready.min(size as usize);
        return (size, format!(
            "{formula}, but the aggregate is {dir} the target and {not_ready} of {size} droplets are not evaluated yet: keeping the current size {size}"
        ));
    }
    (rec, formula)
}

#[cfg(test)]
mod tests;
