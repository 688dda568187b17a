//! The renderers of the subcommands on one made-up fleet: tables that fit (issue 13, point
//! 4) and the one-line summary of `run` (point 3).

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::model::{HistoryDroplet, HistoryEntry, Scrape, ScrapedDroplet};
use crate::output::check::tables_are_aligned;
use crate::output::Style;
use crate::state::State;

const CONFIG: &str = r#"
[api]
url = "http://127.0.0.1:9"
[[group]]
name = "web"
tag = "web"
min = 2
max = 10
warmup = "0s"
[group.template]
name = "web-{n}"
region = "nyc3"
size = "s-2vcpu-4gb"
image = "ubuntu-24-04-x64"
tags = ["web"]
[[group.policy]]
name = "loadavg"
scale = "up"
match = "all"
conditions = [
  { name = "load1", expr = "node_load1", function = "mean", op = ">=", threshold = 2 },
  { name = "mem_avail", expr = "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", function = "min", op = "<=", threshold = 0.9 },
]
[[group.policy]]
name = "idle"
scale = "down"
conditions = [
  { name = "load1", expr = "node_load1", function = "max", op = "<", threshold = 0.2 },
]
"#;

fn ctx(style: Style) -> super::Ctx {
    super::Ctx {
        config: crate::config::parse(
            Path::new("/etc/doscale/doscale.toml"),
            CONFIG,
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{e}")),
        json: false,
        wait: None,
        all: None,
        style,
        verbose: false,
    }
}

fn droplet(
    id: u64,
    name: &str,
    load1: f64,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> ScrapedDroplet {
    let series = if error.is_some() {
        Default::default()
    } else {
        [
            ("node_load1", load1),
            ("node_memory_MemAvailable_bytes", 1.5e9),
            ("node_memory_MemTotal_bytes", 4.0e9),
            (
                "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}",
                1000.0 + id as f64,
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).into(), *v))
        .collect()
    };
    ScrapedDroplet {
        id,
        name: name.into(),
        status: "active".into(),
        created_at: now - chrono::Duration::hours(30),
        address: Some(format!("10.120.0.{}", id % 250).into()),
        error: error.map(str::to_string),
        protected: false,
        series,
    }
}

/// Six droplets, busy, one of them with a long name in several scripts and one that failed
/// to scrape with a long reason.
/// The last scale action was `last_action_ago` minutes ago.
fn fleet_acted(
    last_action_ago: i64,
) -> (
    State,
    crate::policy::GroupEvaluation,
    crate::plan::GroupPlan,
) {
    let now = Utc::now();
    let mut droplets: Vec<ScrapedDroplet> = (1..=4)
        .map(|i| {
            droplet(
                398_000_000 + i,
                &format!("web-{i}"),
                2.5 + i as f64 / 10.0,
                None,
                now,
            )
        })
        .collect();
    droplets.push(droplet(
        398_000_005,
        "wéb-ünïcode-数据-front-end-5",
        3.1,
        None,
        now,
    ));
    droplets.push(droplet(
        398_000_006,
        "web-6",
        0.0,
        Some(
            "connection refused (is do-agent listening on 10.120.0.6:9110? see docs/operations.md)",
        ),
        now,
    ));
    let scrape = Scrape {
        at: now,
        droplets,
        bad_lines: 0,
        bad_line_example: None,
    };
    let c = ctx(Style::PLAIN);
    let g = &c.config.groups[0];
    let eval = crate::policy::evaluate_group(g, &scrape, None, now);
    let history = vec![HistoryEntry {
        at: now - chrono::Duration::minutes(last_action_ago),
        direction: crate::config::Scale::Up,
        droplets: vec![HistoryDroplet {
            id: Some(398_000_004),
            name: "web-4".into(),
            outcome: None,
        }],
        reason: "plan: 3 → 4: policy: loadavg (+1) satisfied (all of load1 2.6 >= 2 true, mem_avail 0.375 <= 0.9 true)".into(),
        outcome: "done".into(),
        finished_at: Some(now - chrono::Duration::minutes(last_action_ago - 2)),
    }];
    let plan = plan_of(g, &eval, &scrape.droplets, &history, now);
    let mut state = State::new();
    let gs = state.group_mut("web");
    gs.push_scrape(scrape);
    gs.history = history;
    (state, eval, plan)
}

/// The planner on the fleet: nothing pending, no recommendation kept, no operator's hand.
fn plan_of(
    g: &crate::config::Group,
    eval: &crate::policy::GroupEvaluation,
    members: &[ScrapedDroplet],
    history: &[HistoryEntry],
    now: DateTime<Utc>,
) -> crate::plan::GroupPlan {
    crate::plan::plan_group(&crate::plan::PlanInput {
        group: g,
        eval,
        members,
        history,
        pending: &[],
        recommendations: &[],
        now,
        rand: 7,
        operator: Default::default(),
        consistency: Default::default(),
    })
}

fn fleet() -> (
    State,
    crate::policy::GroupEvaluation,
    crate::plan::GroupPlan,
) {
    fleet_acted(42)
}

/// Every table renderer, in colour, at 80 columns, in both column sets.
fn every_table(style: Style) -> Vec<(&'static str, String)> {
    let (state, eval, plan) = fleet();
    let c = ctx(style);
    let now = Utc::now();
    vec![
        ("scrape", super::scrape::render_table(&c, &state)),
        (
            "evaluate",
            super::evaluate::render_table(std::slice::from_ref(&eval), &style),
        ),
        (
            "plan",
            super::plan::render_table(std::slice::from_ref(&plan), &style),
        ),
        (
            "status",
            super::status::history_table(&state.groups["web"].history, now, &style),
        ),
    ]
}

#[test]
fn tables_at_80_columns_in_colour_stay_aligned_and_never_split_an_escape() {
    for wide in [false, true] {
        let style = Style {
            colour: true,
            width: Some(80),
            headers: true,
            wide,
        };
        let mut colours = 0;
        for (name, text) in every_table(style) {
            assert!(!text.is_empty(), "{name}");
            colours += tables_are_aligned(&text, Some(80));
        }
        // The verdicts, the plan's create column and the scrape error are coloured.
        assert!(colours >= 3, "{colours} coloured cells");
    }
}

#[test]
fn without_colour_tables_carry_no_escape_and_renderers_write_none_by_hand() {
    let style = Style {
        colour: false,
        width: Some(80),
        headers: true,
        wide: false,
    };
    for (name, text) in every_table(style) {
        assert!(!text.contains('\u{1b}'), "{name}: {text}");
        assert_eq!(tables_are_aligned(&text, Some(80)), 0);
    }
    // No renderer paints by hand: colour goes through the table crate's cell styling.
    for file in [
        "evaluate.rs",
        "scrape.rs",
        "plan.rs",
        "status.rs",
        "apply.rs",
        "run.rs",
    ] {
        let src = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/cmd")
                .join(file),
        )
        .unwrap();
        assert!(!src.contains("\\u{1b}["), "{file} writes an escape by hand");
    }
}

#[test]
fn a_terminal_width_of_0_gives_readable_columns() {
    // What `Style::detect` makes of a pseudo-terminal reporting 0 columns.
    let width = crate::output::table_width(true, Some(0), None);
    assert_eq!(width, Some(crate::output::DEFAULT_WIDTH));
    for w in [width, Some(0)] {
        let style = Style {
            colour: false,
            width: w,
            headers: true,
            wide: false,
        };
        for (name, text) in every_table(style) {
            tables_are_aligned(&text, Some(80));
            // Headers are whole words, not a column of single letters.
            let words: &[&str] = match name {
                "scrape" => &["droplet", "status", "load1", "error"],
                "evaluate" => &["droplet", "policy", "function", "verdict"],
                "plan" => &["group", "current", "recommended", "desired"],
                _ => &["when", "direction", "outcome", "reason"],
            };
            for word in words {
                assert!(
                    text.contains(&format!(" {word} ")),
                    "{name} at width {w:?} lacks {word}:\n{text}"
                );
            }
        }
    }
}

#[test]
fn no_headers_and_wide() {
    let base = Style {
        colour: false,
        width: None,
        headers: true,
        wide: false,
    };
    let tables = every_table(base);
    let scrape = &tables[0].1;
    assert!(scrape.contains("│ droplet"), "{scrape}");
    assert!(
        !scrape.contains("address") && !scrape.contains("10.120.0.1 "),
        "{scrape}"
    );
    let status = &tables[3].1;
    assert!(
        status.contains("web-4") && !status.contains("398000004"),
        "{status}"
    );

    let wide = every_table(Style { wide: true, ..base });
    let scrape = &wide[0].1;
    for col in ["address", "age", "series", "10.120.0.1 ", "1d6h"] {
        assert!(scrape.contains(col), "-o wide lacks {col}:\n{scrape}");
    }
    let status = &wide[3].1;
    for col in ["at", "took", "web-4 (398000004)", "2m0s"] {
        assert!(status.contains(col), "-o wide lacks {col}:\n{status}");
    }

    for (name, text) in every_table(Style {
        headers: false,
        ..base
    }) {
        for header in ["│ droplet ", "│ group ", "│ when ", "│ policy "] {
            assert!(!text.contains(header), "{name} has a header row:\n{text}");
        }
        assert!(!text.contains('╞'), "{name} has a header rule:\n{text}");
    }
}

#[test]
fn run_prints_one_line_per_group() {
    let (_, eval, plan) = fleet();
    assert_eq!(plan.create.len(), 1, "{plan:?}");
    let summary =
        |plan: &crate::plan::GroupPlan, reports: &[crate::apply::GroupReport], dry_run| {
            super::run::render_summary(
                std::slice::from_ref(&eval),
                std::slice::from_ref(plan),
                reports,
                dry_run,
            )
        };
    let text = summary(&plan, &[], false);
    // Five of six droplets report (mean load1 2.82): the loadavg policy fires.
    assert_eq!(
        text,
        "web: size 6, desired 7, create 1 (policy loadavg: load1 mean 2.82 >= 2, mem_avail min 0.375 <= 0.9)\n"
    );
    // A rule that holds the recommendation back is named on the same line.
    let (_, _, held) = fleet_acted(1);
    let text = summary(&held, &[], false);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("web: size 6, desired 6, no change (policy loadavg: load1 mean 2.82 >= 2")
            && text.contains("; cooldown_up: last scale action (up) 1m ago < 3m"),
        "{text}"
    );
    // What apply did follows; a dry run lists its requests below the line.
    let report = crate::apply::GroupReport {
        name: "web".into(),
        requests: vec![crate::apply::ShownRequest {
            method: "POST".into(),
            path: "/v2/droplets".into(),
            body: serde_json::json!({"names": ["web-7"]}),
        }],
        created: vec![],
        destroyed: vec![],
        errors: vec![],
        pending: vec![],
        skipped: None,
    };
    let text = summary(&plan, std::slice::from_ref(&report), true);
    assert!(
        text.ends_with("0.9): dry run, 1 request(s) would be sent\n  POST /v2/droplets {\"names\":[\"web-7\"]}\n"),
        "{text}"
    );
    let done = crate::apply::GroupReport {
        created: vec![398_000_007],
        ..report
    };
    let text = summary(&plan, std::slice::from_ref(&done), false);
    assert!(text.ends_with("0.9): 1 created\n"), "{text}");
}

/// Issue 15.5: `status` and `plan` read a cooldown with one rule. A history whose last entry is
/// not its latest action (entries finished out of order, a file edited by hand) used to make
/// `status` say "clear" (it took the last entry) while `plan` held the group (it takes the
/// latest `at`).
#[test]
fn status_and_plan_agree_on_a_cooldown_when_the_history_is_out_of_order() {
    let (mut state, eval, _) = fleet_acted(1);
    let now = Utc::now();
    let c = ctx(Style::PLAIN);
    let g = &c.config.groups[0];
    let mut older = state.groups["web"].history[0].clone();
    older.at = now - chrono::Duration::minutes(30);
    older.direction = crate::config::Scale::Down;
    older.finished_at = Some(now - chrono::Duration::minutes(29));
    state.group_mut("web").history.push(older);
    let gs = &state.groups["web"];
    let members = gs.latest_scrape().unwrap().droplets.clone();
    let plan = plan_of(g, &eval, &members, &gs.history, now);
    assert!(
        plan.reasons
            .iter()
            .any(|r| r.starts_with("cooldown_up: last scale action (up) 1m ago < 3m")),
        "{:?}",
        plan.reasons
    );
    let (json, text) = super::status::report(&c.config, &state, now, &Style::PLAIN);
    let up = json[0]["cooldown_up_remaining_s"].as_i64();
    assert!(matches!(up, Some(118..=120)), "{up:?}\n{text}");
    assert!(text.contains("cooldown: up 1m"), "{text}");
    // With the history in order, the same answer.
    state.group_mut("web").history.reverse();
    let (json2, _) = super::status::report(&c.config, &state, now, &Style::PLAIN);
    assert_eq!(
        json2[0]["cooldown_up_remaining_s"],
        json[0]["cooldown_up_remaining_s"]
    );
}
