//! The configuration file (docs/design.md §2): a `Raw*` layer that is pure serde with
//! `deny_unknown_fields`, and a validated [`Config`] built from it. Every error names the
//! file, line:column, the key and what was expected (exit code 2).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
use crate::expr::Expr;
use crate::model::AddressKind;
use crate::net::check_api_url;
use crate::secret::Secret;

mod keys;

pub const DEFAULT_PATH: &str = "/etc/doscale/doscale.toml";

// ---------------------------------------------------------------------------------------
// Raw layer: what the TOML says.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_file: Option<Spanned<String>>,
    metrics_textfile: Option<Spanned<String>>,
    plan_max_age: Option<Spanned<String>>,
    max_scrape_age: Option<Spanned<String>>,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    group: Vec<Spanned<RawGroup>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    url: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    consistency_window: Option<Spanned<String>>,
    consistency_listings: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    tag: Spanned<String>,
    min: Spanned<i64>,
    max: Spanned<i64>,
    cooldown_up: Option<Spanned<String>>,
    cooldown_down: Option<Spanned<String>>,
    warmup: Option<Spanned<String>>,
    max_step_up: Option<Spanned<i64>>,
    max_step_down: Option<Spanned<i64>>,
    remove: Option<Spanned<String>>,
    min_reporting: Option<Spanned<f64>>,
    max_destroy_share: Option<Spanned<f64>>,
    protect_tag: Option<Spanned<String>>,
    on_unhealthy: Option<Spanned<String>>,
    #[serde(default)]
    metrics: RawMetrics,
    template: Option<Spanned<RawTemplate>>,
    health_check: Option<RawHealth>,
    #[serde(default)]
    policy: Vec<Spanned<RawPolicy>>,
    target: Option<Spanned<RawTarget>>,
    #[serde(default)]
    hook: Vec<Spanned<RawHook>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    address: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    path: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    max_body: Option<Spanned<String>>,
    extra_metrics: Option<Vec<Spanned<String>>>,
    max_series: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: Option<Spanned<String>>,
    region: Spanned<String>,
    size: Spanned<String>,
    image: Spanned<toml::Value>,
    #[serde(default)]
    ssh_keys: Vec<Spanned<toml::Value>>,
    vpc_uuid: Option<String>,
    user_data_file: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<String>>>,
    monitoring: Option<bool>,
    ipv6: Option<bool>,
    backups: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    ports: Option<Vec<Spanned<i64>>>,
    timeout: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    max_tries: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: Spanned<String>,
    scale: Spanned<String>,
    step: Option<Spanned<i64>>,
    #[serde(rename = "match")]
    match_: Option<Spanned<String>>,
    conditions: Vec<Spanned<RawCondition>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    name: Spanned<String>,
    expr: Spanned<String>,
    function: Spanned<String>,
    op: Spanned<String>,
    threshold: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    expr: Spanned<String>,
    function: Option<Spanned<String>>,
    value: Spanned<f64>,
    tolerance: Option<Spanned<f64>>,
    stabilization_down: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    on: Spanned<String>,
    command: Spanned<Vec<String>>,
    timeout: Option<Spanned<String>>,
}

// ---------------------------------------------------------------------------------------
// Validated layer: what the rest of the program sees.

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages).
    pub path: PathBuf,
    pub state_file: PathBuf,
    pub metrics_textfile: Option<PathBuf>,
    pub plan_max_age: Duration,
    pub max_scrape_age: Duration,
    pub api: ApiConfig,
    pub groups: Vec<Group>,
    /// What `check` reports without refusing the file: metric names the group's source is
    /// not known to serve. Other commands ignore them.
    pub warnings: Vec<ConfigError>,
    /// Every file the configuration names that must be there when doscale acts, with the
    /// place that names it: `check` opens each one.
    pub files: Vec<NamedFile>,
}

/// A file the configuration names, and where.
#[derive(Debug, Clone)]
pub struct NamedFile {
    pub kind: FileKind,
    /// As written for hook programs (a bare name is looked up on `PATH`), resolved against the
    /// configuration's directory otherwise.
    pub path: PathBuf,
    /// The file, line, column and key that name it (`msg` empty).
    pub place: ConfigError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `[api] token_file`: read by every command that calls the API.
    TokenFile,
    /// `[group.template] user_data_file`: read when droplets are created.
    UserData,
    /// The program of a `[[group.hook]]` command.
    HookProgram,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub url: String,
    pub token_file: Option<PathBuf>,
    /// Per-request timeout of API calls.
    pub timeout: Duration,
    /// How long the API may take to list a droplet it created, and how many listings must
    /// miss a create whose outcome is unknown before it counts as never made.
    pub consistency: Consistency,
}

/// The API's eventual consistency as doscale allows for it: a create whose outcome is unknown
/// (killed mid-request, timed out, server error) is dropped only once `listings` consecutive
/// listings, the first and the last at least `window` apart, did not show its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consistency {
    pub window: Duration,
    pub listings: u32,
}

impl Default for Consistency {
    fn default() -> Self {
        Consistency {
            window: Duration::from_secs(180),
            listings: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remove {
    Newest,
    Oldest,
    LeastLoaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnhealthy {
    Keep,
    Destroy,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub tag: String,
    pub min: u32,
    pub max: u32,
    pub cooldown_up: Duration,
    pub cooldown_down: Duration,
    pub warmup: Duration,
    /// `None`: no limit below `max`.
    pub max_step_up: Option<u32>,
    pub max_step_down: u32,
    pub remove: Remove,
    pub min_reporting: f64,
    /// The hard guard of apply: at most this share of the group (rounded up to a whole droplet)
    /// destroyed in one pass, unless `--force`.
    pub max_destroy_share: f64,
    pub protect_tag: Option<String>,
    pub on_unhealthy: OnUnhealthy,
    pub metrics: Metrics,
    pub template: Option<Template>,
    pub health_check: HealthCheck,
    pub policies: Vec<Policy>,
    pub target: Option<Target>,
    pub hooks: Vec<Hook>,
}

/// `max_destroy_share` unless set: half the group (issue 14.10).
pub const DEFAULT_MAX_DESTROY_SHARE: f64 = 0.5;

/// `[group.metrics] max_series` unless set: twenty times what do-agent serves.
pub const DEFAULT_MAX_SERIES: usize = 20_000;

#[derive(Debug, Clone)]
pub struct Metrics {
    pub address: AddressKind,
    pub port: u16,
    pub path: String,
    pub timeout: Duration,
    pub concurrency: usize,
    /// A body larger than this is refused (per droplet error).
    pub max_body: usize,
    /// Metric names this group's endpoint serves besides do-agent's (node_exporter, an
    /// exporter of one's own); a trailing `*` matches any name with that prefix. Only
    /// `check` reads it.
    pub extra_metrics: Vec<String>,
    /// A page with more sample lines than this is refused (per droplet error): reading it
    /// would cost time and memory out of proportion (do-agent serves about a thousand).
    pub max_series: usize,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub region: String,
    pub size: String,
    pub image: serde_json::Value,
    pub ssh_keys: Vec<serde_json::Value>,
    pub vpc_uuid: Option<String>,
    pub user_data_file: Option<PathBuf>,
    pub tags: Vec<String>,
    pub monitoring: Option<bool>,
    pub ipv6: Option<bool>,
    pub backups: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub ports: Vec<u16>,
    pub timeout: Duration,
    pub interval: Duration,
    pub max_tries: u32,
}

pub use crate::model::Scale;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    All,
    Any,
}

/// How per-droplet values are aggregated over the group.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Function {
    Min,
    Max,
    Mean,
    Median,
    Sum,
    /// `pNN`: the NN-th percentile (0..=100).
    Percentile(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    pub scale: Scale,
    pub step: u32,
    pub match_: Match,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub name: String,
    pub expr: Expr,
    pub function: Function,
    pub op: Op,
    pub threshold: f64,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub expr: Expr,
    pub function: Function,
    pub value: f64,
    pub tolerance: f64,
    pub stabilization_down: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    BeforeCreate,
    AfterCreate,
    BeforeDestroy,
    AfterDestroy,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub on: HookEvent,
    pub command: Vec<String>,
    pub timeout: Duration,
}

impl Function {
    pub fn parse(s: &str) -> Option<Function> {
        Some(match s {
            "min" => Function::Min,
            "max" => Function::Max,
            "mean" | "avg" => Function::Mean,
            "median" => Function::Median,
            "sum" => Function::Sum,
            _ => {
                let n: f64 = s.strip_prefix('p')?.parse().ok()?;
                if !(0.0..=100.0).contains(&n) {
                    return None;
                }
                Function::Percentile(n)
            }
        })
    }
    pub fn label(&self) -> String {
        match self {
            Function::Min => "min".into(),
            Function::Max => "max".into(),
            Function::Mean => "mean".into(),
            Function::Median => "median".into(),
            Function::Sum => "sum".into(),
            Function::Percentile(p) => format!("p{p}"),
        }
    }
}

impl Op {
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }
    pub fn symbol(&self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
    pub fn holds(&self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

impl Group {
    /// Every expression of this group: each policy's conditions, then the target's.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.policies
            .iter()
            .flat_map(|p| p.conditions.iter().map(|c| &c.expr))
            .chain(self.target.as_ref().map(|t| &t.expr))
    }

    /// Every metric family any expression of this group references (what a scrape keeps).
    pub fn referenced_families(&self) -> BTreeSet<String> {
        self.exprs()
            .flat_map(|e| e.metric_names().iter().cloned())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Loading.

/// Where the configuration comes from: `--config`, `$DOSCALE_CONFIG`, the default path.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("DOSCALE_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(DEFAULT_PATH)
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        col: 0,
        key: String::new(),
        msg: format!(
            "cannot read the configuration: {e} (pass --config PATH or set DOSCALE_CONFIG)"
        ),
    })?;
    parse(path, &text)
}

/// Parses and validates configuration text; `path` is used for messages and relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let cx = Cx {
        file: path.display().to_string(),
        text,
        parsed: Default::default(),
        warnings: Default::default(),
        files: Default::default(),
    };
    let raw: RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| keys::translate(&e, text, &|span, key, msg| cx.at(span, key, msg)))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let rel = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            base.join(p)
        }
    };

    let state_file = match &raw.state_file {
        Some(s) => {
            cx.non_empty(s, "state_file")?;
            rel(s.get_ref())
        }
        None => match std::env::var_os("STATE_DIRECTORY").filter(|s| !s.is_empty()) {
            // systemd may pass several directories separated by ':'; the first is ours.
            Some(dirs) => {
                let dirs = dirs.to_string_lossy().to_string();
                PathBuf::from(dirs.split(':').next().unwrap_or_default()).join("state.json")
            }
            None => PathBuf::from("/var/lib/doscale/state.json"),
        },
    };
    let metrics_textfile = raw.metrics_textfile.as_ref().map(|s| rel(s.get_ref()));
    let plan_max_age = cx.duration_or(&raw.plan_max_age, "plan_max_age", "5m")?;
    let max_scrape_age = cx.duration_or(&raw.max_scrape_age, "max_scrape_age", "5m")?;

    let url = match &raw.api.url {
        Some(u) => {
            let v = u.get_ref().trim_end_matches('/').to_string();
            check_api_url(&v).map_err(|m| cx.at(u.span(), "api.url", m))?;
            v
        }
        None => "https://api.digitalocean.com".to_string(),
    };
    let token_file = match &raw.api.token_file {
        Some(s) => {
            cx.non_empty(s, "api.token_file")?;
            let path = rel(s.get_ref());
            cx.named(
                FileKind::TokenFile,
                path.clone(),
                s.span(),
                "api.token_file",
            );
            Some(path)
        }
        None => None,
    };
    let api = ApiConfig {
        url,
        token_file,
        timeout: cx.duration_or(&raw.api.timeout, "api.timeout", "30s")?,
        consistency: Consistency {
            window: cx.duration_or(&raw.api.consistency_window, "api.consistency_window", "3m")?,
            listings: match &raw.api.consistency_listings {
                Some(n) => cx.count(n, "api.consistency_listings", 1, 100)?,
                None => Consistency::default().listings,
            },
        },
    };

    let mut groups = Vec::new();
    let mut names = BTreeSet::new();
    let mut tags = BTreeSet::new();
    for g in &raw.group {
        let group = cx.group(g.get_ref(), &rel)?;
        if !names.insert(group.name.clone()) {
            return Err(cx.at(
                g.get_ref().name.span(),
                "group.name",
                format!(
                    "a group named {:?} is already defined: group names must be unique",
                    group.name
                ),
            ));
        }
        if !tags.insert(group.tag.clone()) {
            return Err(cx.at(g.get_ref().tag.span(), "group.tag", format!(
                "tag {:?} is already used by another group: a droplet must belong to one group only",
                group.tag
            )));
        }
        groups.push(group);
    }
    if groups.is_empty() {
        return Err(ConfigError {
            file: cx.file.clone(),
            line: 0,
            col: 0,
            key: "group".into(),
            msg: "no [[group]] is defined: add at least one with name, tag, min and max".into(),
        });
    }

    Ok(Config {
        path: path.to_path_buf(),
        state_file,
        metrics_textfile,
        plan_max_age,
        max_scrape_age,
        api,
        groups,
        warnings: cx.warnings.take(),
        files: cx.files.take(),
    })
}

struct Cx<'a> {
    file: String,
    text: &'a str,
    /// Expressions parsed so far, by text: policies often repeat one (do-scaler's up and
    /// down policies both read the load averages), and every command parses the file.
    parsed: std::cell::RefCell<std::collections::HashMap<String, Expr>>,
    /// Collected for `Config::warnings`.
    warnings: std::cell::RefCell<Vec<ConfigError>>,
    /// Collected for `Config::files`.
    files: std::cell::RefCell<Vec<NamedFile>>,
}

impl Cx<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
        (line, col)
    }

    fn at(&self, span: Range<usize>, key: &str, msg: impl Into<String>) -> ConfigError {
        let (line, col) = self.line_col(span.start);
        ConfigError {
            file: self.file.clone(),
            line,
            col,
            key: key.into(),
            msg: msg.into(),
        }
    }

    fn non_empty(&self, s: &Spanned<String>, key: &str) -> Result<(), ConfigError> {
        if s.get_ref().trim().is_empty() {
            return Err(self.at(s.span(), key, "must not be empty"));
        }
        Ok(())
    }

    fn duration(&self, s: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
        parse_duration(s.get_ref()).map_err(|m| self.at(s.span(), key, m))
    }

    fn duration_or(
        &self,
        s: &Option<Spanned<String>>,
        key: &str,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        match s {
            Some(s) => self.duration(s, key),
            None => Ok(parse_duration(default).expect("valid default")),
        }
    }

    fn count(&self, v: &Spanned<i64>, key: &str, min: i64, max: i64) -> Result<u32, ConfigError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(self.at(
                v.span(),
                key,
                format!("expected a whole number from {min} to {max}, got {n}"),
            ));
        }
        Ok(n as u32)
    }

    fn expr(&self, s: &Spanned<String>, key: &str) -> Result<Expr, ConfigError> {
        if let Some(e) = self.parsed.borrow().get(s.get_ref()) {
            return Ok(e.clone());
        }
        let parsed = crate::expr::parse(s.get_ref()).map_err(|e| {
            // Point at the offending part of the expression when we can: the string starts
            // one character after the opening quote.
            let inner = s.span().start + 1 + e.offset().min(s.get_ref().len());
            let (line, col) = self.line_col(inner);
            ConfigError {
                file: self.file.clone(),
                line,
                col,
                key: key.into(),
                msg: e.to_string(),
            }
        })?;
        self.parsed
            .borrow_mut()
            .insert(s.get_ref().clone(), parsed.clone());
        Ok(parsed)
    }

    /// Records a file the configuration names, for `check`.
    fn named(&self, kind: FileKind, path: PathBuf, span: Range<usize>, key: &str) {
        let place = self.at(span, key, "");
        self.files
            .borrow_mut()
            .push(NamedFile { kind, path, place });
    }

    /// An expression whose metric names are checked against what do-agent serves and the
    /// group's `extra_metrics`: an unknown one is a warning (for `check`) that points at the
    /// name and gives the closest do-agent name.
    fn metric_expr(
        &self,
        s: &Spanned<String>,
        key: &str,
        extra: &[String],
    ) -> Result<Expr, ConfigError> {
        let e = self.expr(s, key)?;
        for name in e.metric_names() {
            if crate::expr::families::is_do_agent(name)
                || extra.iter().any(|x| match x.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => x == name,
                })
            {
                continue;
            }
            let offset = name_offset(s.get_ref(), name).unwrap_or(0);
            let at = s.span().start + 1 + offset;
            self.warnings.borrow_mut().push(self.at(at..at, key, format!(
                "metric `{name}` is not one do-agent serves (the closest is `{}`): a misspelt name matches nothing and the condition never holds; if this group's metrics endpoint does serve it (node_exporter, an exporter of your own), list it in [group.metrics] extra_metrics",
                crate::expr::families::closest(name)
            )));
        }
        Ok(e)
    }

    fn function(&self, s: &Spanned<String>, key: &str) -> Result<Function, ConfigError> {
        Function::parse(s.get_ref()).ok_or_else(|| {
            self.at(s.span(), key, format!(
                "unknown function {:?}: expected one of min, max, mean, median, sum or pNN (a percentile such as p90)",
                s.get_ref()
            ))
        })
    }

    fn group(&self, g: &RawGroup, rel: &dyn Fn(&str) -> PathBuf) -> Result<Group, ConfigError> {
        self.non_empty(&g.name, "group.name")?;
        self.non_empty(&g.tag, "group.tag")?;
        let name = g.name.get_ref().clone();
        let k = |key: &str| format!("group[{name}].{key}");
        let min = self.count(&g.min, &k("min"), 0, 10_000)?;
        let max = self.count(&g.max, &k("max"), 0, 10_000)?;
        if min > max {
            return Err(self.at(
                g.max.span(),
                &k("max"),
                format!("max ({max}) is below min ({min}): expected max >= min"),
            ));
        }
        let max_step_up = g
            .max_step_up
            .as_ref()
            .map(|v| self.count(v, &k("max_step_up"), 1, 10_000))
            .transpose()?;
        let max_step_down = match &g.max_step_down {
            Some(v) => self.count(v, &k("max_step_down"), 1, 10_000)?,
            None => 1,
        };
        let remove = match &g.remove {
            None => Remove::Newest,
            Some(s) => match s.get_ref().as_str() {
                "newest" => Remove::Newest,
                "oldest" => Remove::Oldest,
                "least_loaded" => Remove::LeastLoaded,
                other => {
                    return Err(self.at(s.span(), &k("remove"), format!(
                        "unknown value {other:?}: expected \"newest\", \"oldest\" or \"least_loaded\""
                    )))
                }
            },
        };
        let min_reporting = match &g.min_reporting {
            None => 1.0,
            Some(v) => {
                let f = *v.get_ref();
                if !(0.0..=1.0).contains(&f) {
                    return Err(self.at(
                        v.span(),
                        &k("min_reporting"),
                        format!(
                            "expected a share from 0.0 to 1.0 of the eligible droplets, got {f}"
                        ),
                    ));
                }
                f
            }
        };
        let max_destroy_share = match &g.max_destroy_share {
            None => DEFAULT_MAX_DESTROY_SHARE,
            Some(v) => {
                let f = *v.get_ref();
                if !(f > 0.0 && f <= 1.0) {
                    return Err(self.at(
                        v.span(),
                        &k("max_destroy_share"),
                        format!("expected a share above 0.0 and up to 1.0 of the group, got {f}"),
                    ));
                }
                f
            }
        };
        let on_unhealthy = match &g.on_unhealthy {
            None => OnUnhealthy::Keep,
            Some(s) => match s.get_ref().as_str() {
                "keep" => OnUnhealthy::Keep,
                "destroy" => OnUnhealthy::Destroy,
                other => {
                    return Err(self.at(
                        s.span(),
                        &k("on_unhealthy"),
                        format!("unknown value {other:?}: expected \"keep\" or \"destroy\""),
                    ))
                }
            },
        };

        let m = &g.metrics;
        let address = match &m.address {
            None => AddressKind::Private,
            Some(s) => match s.get_ref().as_str() {
                "private" | "private_ip_address" => AddressKind::Private,
                "public" | "public_ip_address" => AddressKind::Public,
                "ipv6" => AddressKind::Ipv6,
                other => {
                    return Err(self.at(
                        s.span(),
                        &k("metrics.address"),
                        format!(
                        "unknown address {other:?}: expected \"private\", \"public\" or \"ipv6\""
                    ),
                    ))
                }
            },
        };
        let port = match &m.port {
            Some(p) => self.count(p, &k("metrics.port"), 1, 65535)? as u16,
            None => 9110,
        };
        let path = m
            .path
            .as_ref()
            .map(|p| p.get_ref().clone())
            .unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            let s = m.path.as_ref().expect("set");
            return Err(self.at(
                s.span(),
                &k("metrics.path"),
                "expected a path starting with '/'",
            ));
        }
        let metrics = Metrics {
            address,
            port,
            path,
            timeout: self.duration_or(&m.timeout, &k("metrics.timeout"), "3s")?,
            concurrency: match &m.concurrency {
                Some(c) => self.count(c, &k("metrics.concurrency"), 1, 4096)? as usize,
                None => 64,
            },
            max_body: match &m.max_body {
                Some(s) => parse_size(s.get_ref())
                    .map_err(|e| self.at(s.span(), &k("metrics.max_body"), e))?,
                None => 4 * 1024 * 1024,
            },
            extra_metrics: match &m.extra_metrics {
                None => Vec::new(),
                Some(list) => {
                    let mut out = Vec::new();
                    for n in list {
                        let name = n.get_ref();
                        let body = name.strip_suffix('*').unwrap_or(name);
                        let valid = body.chars().enumerate().all(|(i, c)| {
                            c.is_ascii_alphabetic()
                                || c == '_'
                                || c == ':'
                                || (i > 0 && c.is_ascii_digit())
                        });
                        if !valid || (body.is_empty() && name != "*") {
                            return Err(self.at(n.span(), &k("metrics.extra_metrics"), format!(
                                "{name:?} is not a metric name: expected letters, digits, _ and :, not starting with a digit, optionally ending in * (a prefix), e.g. \"node_filesystem_avail_bytes\" or \"myapp_*\""
                            )));
                        }
                        out.push(name.clone());
                    }
                    out
                }
            },
            max_series: match &m.max_series {
                Some(c) => self.count(c, &k("metrics.max_series"), 1, 10_000_000)? as usize,
                None => DEFAULT_MAX_SERIES,
            },
        };
        if metrics.timeout.is_zero() {
            let s = m.timeout.as_ref().expect("set when zero");
            return Err(self.at(s.span(), &k("metrics.timeout"), "must be longer than 0s"));
        }

        let template = match &g.template {
            None => None,
            Some(t) => Some(self.template(t, g, &name, rel)?),
        };

        let hc_default_port = metrics.port;
        let health_check = match &g.health_check {
            None => HealthCheck {
                ports: vec![hc_default_port],
                timeout: Duration::from_secs(10),
                interval: Duration::from_secs(10),
                max_tries: 12,
            },
            Some(h) => HealthCheck {
                ports: match &h.ports {
                    None => vec![hc_default_port],
                    Some(ps) => {
                        let mut out = Vec::new();
                        for p in ps {
                            out.push(self.count(p, &k("health_check.ports"), 1, 65535)? as u16);
                        }
                        out
                    }
                },
                timeout: self.duration_or(&h.timeout, &k("health_check.timeout"), "10s")?,
                interval: self.duration_or(&h.interval, &k("health_check.interval"), "10s")?,
                max_tries: match &h.max_tries {
                    Some(v) => self.count(v, &k("health_check.max_tries"), 1, 10_000)?,
                    None => 12,
                },
            },
        };

        let mut policies = Vec::new();
        let mut pnames = BTreeSet::new();
        for p in &g.policy {
            let p_span = p.span();
            let p = p.get_ref();
            self.non_empty(&p.name, &k("policy.name"))?;
            let pname = p.name.get_ref().clone();
            if !pnames.insert(pname.clone()) {
                return Err(self.at(
                    p.name.span(),
                    &k("policy.name"),
                    format!("policy {pname:?} is defined twice in this group"),
                ));
            }
            let pk = |key: &str| format!("group[{name}].policy[{pname}].{key}");
            let scale = match p.scale.get_ref().as_str() {
                "up" => Scale::Up,
                "down" => Scale::Down,
                other => {
                    return Err(self.at(
                        p.scale.span(),
                        &pk("scale"),
                        format!("unknown value {other:?}: expected \"up\" or \"down\""),
                    ))
                }
            };
            let step = match &p.step {
                Some(s) => self.count(s, &pk("step"), 1, 10_000)?,
                None => 1,
            };
            let match_ = match &p.match_ {
                None => Match::All,
                Some(s) => match s.get_ref().as_str() {
                    "all" => Match::All,
                    "any" => Match::Any,
                    other => {
                        return Err(self.at(
                            s.span(),
                            &pk("match"),
                            format!("unknown value {other:?}: expected \"all\" or \"any\""),
                        ))
                    }
                },
            };
            if p.conditions.is_empty() {
                return Err(self.at(
                    p_span,
                    &pk("conditions"),
                    "a policy needs at least one condition",
                ));
            }
            let mut conditions = Vec::new();
            let mut cnames = BTreeSet::new();
            for c in &p.conditions {
                let c = c.get_ref();
                self.non_empty(&c.name, &pk("conditions.name"))?;
                let cname = c.name.get_ref().clone();
                if !cnames.insert(cname.clone()) {
                    return Err(self.at(
                        c.name.span(),
                        &pk("conditions.name"),
                        format!("condition {cname:?} appears twice in this policy"),
                    ));
                }
                let ck =
                    |key: &str| format!("group[{name}].policy[{pname}].conditions[{cname}].{key}");
                let op = Op::parse(c.op.get_ref()).ok_or_else(|| {
                    self.at(
                        c.op.span(),
                        &ck("op"),
                        format!(
                            "unknown operator {:?}: expected one of < <= > >= == !=",
                            c.op.get_ref()
                        ),
                    )
                })?;
                if !c.threshold.get_ref().is_finite() {
                    return Err(self.at(
                        c.threshold.span(),
                        &ck("threshold"),
                        "expected a finite number",
                    ));
                }
                conditions.push(Condition {
                    name: cname.clone(),
                    expr: self.metric_expr(&c.expr, &ck("expr"), &metrics.extra_metrics)?,
                    function: self.function(&c.function, &ck("function"))?,
                    op,
                    threshold: *c.threshold.get_ref(),
                });
            }
            policies.push(Policy {
                name: pname,
                scale,
                step,
                match_,
                conditions,
            });
        }

        let target = match &g.target {
            None => None,
            Some(t) => {
                let t = t.get_ref();
                let value = *t.value.get_ref();
                if !(value.is_finite() && value > 0.0) {
                    return Err(self.at(
                        t.value.span(),
                        &k("target.value"),
                        format!("expected a number above 0, got {value}"),
                    ));
                }
                let tolerance = match &t.tolerance {
                    None => 0.1,
                    Some(v) => {
                        let f = *v.get_ref();
                        if !(0.0..1.0).contains(&f) {
                            return Err(self.at(
                                v.span(),
                                &k("target.tolerance"),
                                format!("expected a share from 0.0 to below 1.0, got {f}"),
                            ));
                        }
                        f
                    }
                };
                Some(Target {
                    expr: self.metric_expr(&t.expr, &k("target.expr"), &metrics.extra_metrics)?,
                    function: match &t.function {
                        Some(f) => self.function(f, &k("target.function"))?,
                        None => Function::Mean,
                    },
                    value,
                    tolerance,
                    stabilization_down: self.duration_or(
                        &t.stabilization_down,
                        &k("target.stabilization_down"),
                        "5m",
                    )?,
                })
            }
        };

        let mut hooks = Vec::new();
        for h in &g.hook {
            let h = h.get_ref();
            let on = match h.on.get_ref().as_str() {
                "before_create" => HookEvent::BeforeCreate,
                "after_create" => HookEvent::AfterCreate,
                "before_destroy" => HookEvent::BeforeDestroy,
                "after_destroy" => HookEvent::AfterDestroy,
                other => {
                    return Err(self.at(h.on.span(), &k("hook.on"), format!(
                        "unknown event {other:?}: expected before_create, after_create, before_destroy or after_destroy"
                    )))
                }
            };
            if h.command.get_ref().is_empty() || h.command.get_ref()[0].trim().is_empty() {
                return Err(self.at(
                    h.command.span(),
                    &k("hook.command"),
                    "expected a non-empty list: the program, then its arguments",
                ));
            }
            hooks.push(Hook {
                on,
                command: {
                    self.named(
                        FileKind::HookProgram,
                        PathBuf::from(&h.command.get_ref()[0]),
                        h.command.span(),
                        &k("hook.command"),
                    );
                    h.command.get_ref().clone()
                },
                timeout: self.duration_or(&h.timeout, &k("hook.timeout"), "60s")?,
            });
        }

        Ok(Group {
            name: name.clone(),
            tag: g.tag.get_ref().clone(),
            min,
            max,
            cooldown_up: self.duration_or(&g.cooldown_up, &k("cooldown_up"), "3m")?,
            cooldown_down: self.duration_or(&g.cooldown_down, &k("cooldown_down"), "10m")?,
            warmup: self.duration_or(&g.warmup, &k("warmup"), "5m")?,
            max_step_up,
            max_step_down,
            remove,
            min_reporting,
            max_destroy_share,
            protect_tag: g
                .protect_tag
                .as_ref()
                .map(|s| s.get_ref().clone())
                .filter(|s| !s.is_empty()),
            on_unhealthy,
            metrics,
            template,
            health_check,
            policies,
            target,
            hooks,
        })
    }

    fn template(
        &self,
        t: &Spanned<RawTemplate>,
        g: &RawGroup,
        group: &str,
        rel: &dyn Fn(&str) -> PathBuf,
    ) -> Result<Template, ConfigError> {
        let k = |key: &str| format!("group[{group}].template.{key}");
        let t = t.get_ref();
        let name = t
            .name
            .as_ref()
            .map(|s| s.get_ref().clone())
            .unwrap_or_else(|| "{group}-{n}".into());
        if let Some(s) = &t.name {
            if !(name.contains("{n}") || name.contains("{rand}")) {
                return Err(self.at(s.span(), &k("name"), "expected {n} or {rand} in the name so that new droplet names stay unique, e.g. \"web-{n}\""));
            }
        }
        self.non_empty(&t.region, &k("region"))?;
        self.non_empty(&t.size, &k("size"))?;
        let image = match t.image.get_ref() {
            toml::Value::String(s) if !s.is_empty() => serde_json::Value::String(s.clone()),
            toml::Value::Integer(i) if *i > 0 => serde_json::Value::from(*i),
            _ => {
                return Err(self.at(
                    t.image.span(),
                    &k("image"),
                    "expected an image slug (string) or id (positive integer)",
                ))
            }
        };
        let mut ssh_keys = Vec::new();
        for key in &t.ssh_keys {
            ssh_keys.push(match key.get_ref() {
                toml::Value::String(s) => serde_json::Value::String(s.clone()),
                toml::Value::Integer(i) => serde_json::Value::from(*i),
                _ => {
                    return Err(self.at(
                        key.span(),
                        &k("ssh_keys"),
                        "expected key fingerprints (strings) or ids (integers)",
                    ))
                }
            });
        }
        let tags_span = t
            .tags
            .as_ref()
            .map(|t| t.span())
            .unwrap_or_else(|| t.region.span());
        let mut tags = t
            .tags
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        if !tags.iter().any(|x| x == g.tag.get_ref()) {
            if tags.is_empty() {
                // No tags given: the group tag is the one that matters.
                tags.push(g.tag.get_ref().clone());
            } else {
                return Err(self.at(tags_span, &k("tags"), format!(
                    "must include the group tag {:?}, or new droplets would not belong to the group",
                    g.tag.get_ref()
                )));
            }
        }
        let user_data_file = match &t.user_data_file {
            Some(s) => {
                self.non_empty(s, &k("user_data_file"))?;
                let path = rel(s.get_ref());
                self.named(
                    FileKind::UserData,
                    path.clone(),
                    s.span(),
                    &k("user_data_file"),
                );
                Some(path)
            }
            None => None,
        };
        Ok(Template {
            name,
            region: t.region.get_ref().clone(),
            size: t.size.get_ref().clone(),
            image,
            ssh_keys,
            vpc_uuid: t.vpc_uuid.clone(),
            user_data_file,
            tags,
            monitoring: t.monitoring,
            ipv6: t.ipv6,
            backups: t.backups,
        })
    }
}

/// Where `name` stands in `expr` as a whole word (not part of a longer name).
fn name_offset(expr: &str, name: &str) -> Option<usize> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.match_indices(name).map(|(i, _)| i).find(|&i| {
        !expr[..i].chars().next_back().is_some_and(word)
            && !expr[i + name.len()..].chars().next().is_some_and(word)
    })
}

/// `"3m"`, `"10s"`, `"1h 30m"`, `"0s"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("{s:?} is not a duration ({e}): expected e.g. \"30s\", \"3m\", \"1h\"")
    })
}

/// `"4MB"`, `"512KiB"`, `"100000"` (bytes).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: expected e.g. \"4MB\" or \"512KiB\""))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?}: expected B, KB, KiB, MB or MiB"
            ))
        }
    };
    Ok(n * mult)
}

/// Where the API token comes from, first found wins: `$DIGITALOCEAN_TOKEN`,
/// `$DIGITALOCEAN_ACCESS_TOKEN`, `token_file`, the systemd credential `digitalocean-token`.
pub fn token_lookup(api: &ApiConfig) -> crate::secret::TokenLookup {
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    crate::secret::lookup_token(
        &|var| std::env::var(var).ok(),
        api.token_file.as_deref(),
        creds.as_deref(),
    )
}

/// The token, `Ok(None)` when no source is set. A source that is set but cannot be used is
/// an error naming it and the reason when no later source gives a token, and a warning when
/// one does (e.g. a root-only `token_file` under the service's dynamic user, where the
/// credential is the way in).
pub fn find_token(api: &ApiConfig) -> color_eyre::Result<Option<Secret>> {
    let found = token_lookup(api);
    let problems: Vec<String> = found.problems.iter().map(|p| p.to_string()).collect();
    match found.token {
        Some((token, source)) => {
            for p in &problems {
                tracing::warn!("{p}; using the token from {source}");
            }
            Ok(Some(token))
        }
        None if !problems.is_empty() => Err(color_eyre::eyre::eyre!(crate::error::UsageError(
            format!("no usable DigitalOcean API token: {}", problems.join("; "))
        ))),
        None => Ok(None),
    }
}

/// A token for commands that call the API; its absence is an error that says what to do.
pub fn require_token(api: &ApiConfig) -> color_eyre::Result<Secret> {
    find_token(api)?.ok_or_else(|| {
        color_eyre::eyre::eyre!(crate::error::UsageError(
            "no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN), `[api] token_file`, or the systemd credential \"digitalocean-token\" (LoadCredential=)".into()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/doscale/t.toml"), text)
    }

    const MIN: &str = "[[group]]\nname = \"web\"\ntag = \"web\"\nmin = 1\nmax = 3\n";

    #[test]
    fn minimal_group_gets_defaults() {
        let c = p(MIN).unwrap();
        let g = &c.groups[0];
        assert_eq!(g.cooldown_up, Duration::from_secs(180));
        assert_eq!(g.cooldown_down, Duration::from_secs(600));
        assert_eq!(g.warmup, Duration::from_secs(300));
        assert_eq!(g.max_step_down, 1);
        assert_eq!(g.max_step_up, None);
        assert_eq!(g.remove, Remove::Newest);
        assert_eq!(g.metrics.port, 9110);
        assert_eq!(g.metrics.concurrency, 64);
        assert_eq!(g.metrics.timeout, Duration::from_secs(3));
        assert_eq!(g.health_check.ports, vec![9110]);
        assert_eq!(c.api.url, "https://api.digitalocean.com");
    }

    #[test]
    fn unknown_key_names_file_line_column_and_key() {
        let e = p(&format!("{MIN}bogus_key = 1\n")).unwrap_err();
        assert_eq!(e.line, 6);
        assert_eq!(e.col, 1);
        assert_eq!(e.key, "group[web].bogus_key");
        assert!(e.to_string().starts_with("/etc/doscale/t.toml:6:1:"), "{e}");
    }

    #[test]
    fn bad_duration_names_its_place() {
        let e = p(&format!("{MIN}cooldown_up = \"3 parsecs\"\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_str()), (6, "group[web].cooldown_up"));
        assert!(e.msg.contains("not a duration"), "{e}");
    }

    #[test]
    fn max_below_min_is_refused() {
        let e = p("[[group]]\nname = \"a\"\ntag = \"a\"\nmin = 4\nmax = 3\n").unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.msg.contains("below min"));
    }

    #[test]
    fn template_tags_must_include_group_tag() {
        let e = p(&format!(
            "{MIN}[group.template]\nregion = \"x\"\nsize = \"y\"\nimage = 1\ntags = [\"other\"]\n"
        ))
        .unwrap_err();
        assert!(e.msg.contains("group tag"), "{e}");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_api_url("http://127.0.0.1:8080").is_ok());
        assert!(check_api_url("http://[::1]:8080").is_ok());
        assert!(check_api_url("https://api.digitalocean.com").is_ok());
        assert!(check_api_url("http://api.digitalocean.com").is_err());
        assert!(check_api_url("ftp://x").is_err());
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = p(&format!("state_file = \"st/state.json\"\n{MIN}")).unwrap();
        assert_eq!(c.state_file, PathBuf::from("/etc/doscale/st/state.json"));
    }

    #[test]
    fn the_example_configuration_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/doscale.toml");
        let c = load(Path::new(path)).unwrap_or_else(|e| panic!("{e}"));
        let g = &c.groups[0];
        assert_eq!((g.name.as_str(), g.min, g.max), ("web", 2, 8));
        let names: Vec<_> = g.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["loadavg", "mem_avail", "down"]);
        assert_eq!(g.policies[2].scale, Scale::Down);
        assert_eq!(g.policies[2].conditions.len(), 4);
        assert!(g.target.is_some());
        let t = g.template.as_ref().unwrap();
        assert!(t.tags.contains(&"web".to_string()));
        assert_eq!(g.health_check.ports, vec![9110, 80]);
        assert_eq!(g.protect_tag.as_deref(), Some("doscale-protect"));
    }

    /// Wrong types of every kind of key: the message names file:line:column and the key,
    /// says what the key takes in the operator's words, and speaks no Rust.
    #[test]
    fn wrong_types_name_the_key_in_the_operators_words() {
        const T: &str = "[group.template]\nregion = \"r\"\nsize = \"s\"\nimage = 1\n";
        const P: &str = "[[group.policy]]\nname = \"up\"\nscale = \"up\"\n";
        let c = |extra: &str| {
            format!("conditions = [ {{ name = \"c\", expr = \"node_load1\", function = \"mean\", op = \">\", threshold = 1{extra} }} ]\n")
        };
        // (file text, key, line, words that must be in the message)
        let cases: Vec<(String, &str, usize, &str)> = vec![
            (format!("{MIN}max = 3\n").replace("max = 3\nmax = 3", "max = \"20\""), "group[web].max", 5, "a whole number from 0 to 10000"),
            (MIN.replace("min = 1", "min = 1.5"), "group[web].min", 4, "a whole number from 0 to 10000"),
            (format!("{MIN}warmup = 300\n"), "group[web].warmup", 6, "a duration such as \"5m\""),
            (format!("{MIN}cooldown_down = true\n"), "group[web].cooldown_down", 6, "a duration such as \"5m\""),
            (format!("plan_max_age = 5\n{MIN}"), "plan_max_age", 1, "a duration such as \"5m\""),
            (format!("[api]\ntimeout = 30\n{MIN}"), "api.timeout", 2, "a duration such as \"5m\""),
            (format!("[api]\nurl = 8080\n{MIN}"), "api.url", 2, "a URL"),
            (format!("[api]\ntoken_file = [\"a\"]\n{MIN}"), "api.token_file", 2, "a file path"),
            (format!("state_file = 1\n{MIN}"), "state_file", 1, "a file path"),
            (format!("{MIN}max_step_up = \"2\"\n"), "group[web].max_step_up", 6, "a whole number from 1 to 10000"),
            (format!("{MIN}max_step_down = 1.0\n"), "group[web].max_step_down", 6, "a whole number from 1 to 10000"),
            (format!("{MIN}remove = 1\n"), "group[web].remove", 6, "one of \"newest\", \"oldest\" or \"least_loaded\""),
            (format!("{MIN}on_unhealthy = false\n"), "group[web].on_unhealthy", 6, "one of \"keep\" or \"destroy\""),
            (format!("{MIN}min_reporting = \"0.5\"\n"), "group[web].min_reporting", 6, "a share from 0.0 to 1.0"),
            (format!("{MIN}protect_tag = 7\n"), "group[web].protect_tag", 6, "a droplet tag"),
            (MIN.replace("tag = \"web\"", "tag = [\"web\"]"), "group[web].tag", 3, "a droplet tag"),
            (format!("{MIN}[group.metrics]\nport = \"9110\"\n"), "group[web].metrics.port", 7, "a port number from 1 to 65535"),
            (format!("{MIN}[group.metrics]\nconcurrency = 6.4\n"), "group[web].metrics.concurrency", 7, "a whole number from 1 to 4096"),
            (format!("{MIN}[group.metrics]\naddress = 10\n"), "group[web].metrics.address", 7, "one of \"private\""),
            (format!("{MIN}[group.metrics]\ntimeout = 3\n"), "group[web].metrics.timeout", 7, "a duration"),
            (format!("{MIN}[group.metrics]\nmax_body = 4000000\n"), "group[web].metrics.max_body", 7, "a size"),
            (format!("{MIN}[group.metrics]\nextra_metrics = \"x\"\n"), "group[web].metrics.extra_metrics", 7, "a list of metric names"),
            (format!("{MIN}{T}monitoring = \"yes\"\n"), "group[web].template.monitoring", 10, "true or false"),
            (format!("{MIN}{T}backups = 1\n"), "group[web].template.backups", 10, "true or false"),
            (format!("{MIN}{T}tags = \"web\"\n"), "group[web].template.tags", 10, "a list of tags"),
            (format!("{MIN}{T}tags = [1]\n"), "group[web].template.tags[0]", 10, "a list of tags"),
            (format!("{MIN}{T}ssh_keys = \"aa:bb\"\n"), "group[web].template.ssh_keys", 10, "a list of SSH key"),
            (format!("{MIN}{T}user_data_file = 3\n"), "group[web].template.user_data_file", 10, "a file path"),
            (format!("{MIN}{T}vpc_uuid = 3\n"), "group[web].template.vpc_uuid", 10, "a VPC id"),
            (MIN.to_string() + "[group.template]\nregion = 1\nsize = \"s\"\nimage = 1\n", "group[web].template.region", 7, "a region slug"),
            (format!("{MIN}[group.health_check]\nports = 9110\n"), "group[web].health_check.ports", 7, "a list of port numbers"),
            (format!("{MIN}[group.health_check]\nports = [9110, \"80\"]\n"), "group[web].health_check.ports[1]", 7, "a list of port numbers"),
            (format!("{MIN}[group.health_check]\nmax_tries = \"12\"\n"), "group[web].health_check.max_tries", 7, "a whole number from 1 to 10000"),
            (format!("{MIN}[group.health_check]\ninterval = 10\n"), "group[web].health_check.interval", 7, "a duration"),
            (format!("{MIN}{P}step = \"1\"\n{}", c("")), "group[web].policy[up].step", 9, "a whole number from 1 to 10000"),
            (format!("{MIN}{P}match = true\n{}", c("")), "group[web].policy[up].match", 9, "one of \"all\" or \"any\""),
            (format!("{MIN}{P}{}", c("").replace("threshold = 1", "threshold = \"2\"")), "group[web].policy[up].conditions[c].threshold", 9, "a number"),
            (format!("{MIN}{P}{}", c("").replace("op = \">\"", "op = 1")), "group[web].policy[up].conditions[c].op", 9, "one of \"<\""),
            (format!("{MIN}{P}{}", c("").replace("function = \"mean\"", "function = 50")), "group[web].policy[up].conditions[c].function", 9, "a percentile such as \"p90\""),
            (format!("{MIN}{P}{}", c("").replace("expr = \"node_load1\"", "expr = 1")), "group[web].policy[up].conditions[c].expr", 9, "a PromQL expression"),
            (format!("{MIN}{P}conditions = \"x\"\n"), "group[web].policy[up].conditions", 9, "a list of conditions"),
            (format!("{MIN}[group.target]\nexpr = \"node_load1\"\nvalue = \"0.6\"\n"), "group[web].target.value", 8, "a number above 0"),
            (format!("{MIN}[group.target]\nexpr = \"node_load1\"\nvalue = 1\ntolerance = \"x\"\n"), "group[web].target.tolerance", 9, "a share from 0.0 to below 1.0"),
            (format!("{MIN}[group.target]\nexpr = \"node_load1\"\nvalue = 1\nstabilization_down = 300\n"), "group[web].target.stabilization_down", 9, "a duration"),
            (format!("{MIN}[[group.hook]]\non = \"after_create\"\ncommand = \"/bin/true\"\n"), "group[web].hook[0].command", 8, "a list: the program, then its arguments"),
            (format!("{MIN}[[group.hook]]\non = \"after_create\"\ncommand = [\"/bin/true\"]\ntimeout = 60\n"), "group[web].hook[0].timeout", 9, "a duration"),
            (format!("{MIN}[[group.hook]]\non = 1\ncommand = [\"/bin/true\"]\n"), "group[web].hook[0].on", 7, "one of \"before_create\""),
            (format!("api = 3\n{MIN}"), "api", 1, "a table"),
            ("group = 3\n".to_string(), "group", 1, "[[group]]"),
            // Out of range: the same words as a wrong type.
            (MIN.replace("max = 3", "max = 20000"), "group[web].max", 5, "a whole number from 0 to 10000"),
            (format!("{MIN}max_step_up = 0\n"), "group[web].max_step_up", 6, "a whole number from 1 to 10000"),
            (format!("{MIN}[group.metrics]\nport = 70000\n"), "group[web].metrics.port", 7, "from 1 to 65535"),
            (format!("{MIN}[group.metrics]\nconcurrency = 0\n"), "group[web].metrics.concurrency", 7, "from 1 to 4096"),
            (format!("{MIN}[group.health_check]\nmax_tries = 0\n"), "group[web].health_check.max_tries", 7, "from 1 to 10000"),
            (format!("{MIN}min_reporting = 2.0\n"), "group[web].min_reporting", 6, "a share from 0.0 to 1.0"),
            // A missing key says what it takes.
            ("[[group]]\nname = \"web\"\ntag = \"web\"\nmin = 1\n".to_string(), "group[web].max", 1, "required: expected a whole number from 0 to 10000"),
        ];
        for (text, key, line, words) in &cases {
            let e = p(text).expect_err(text);
            let shown = e.to_string();
            assert_eq!(&e.key, key, "{text}\n{shown}");
            assert_eq!(e.line, *line, "{text}\n{shown}");
            assert!(e.col > 0, "{shown}");
            assert!(
                shown.starts_with(&format!("/etc/doscale/t.toml:{line}:{}: `{key}`: ", e.col)),
                "{shown}"
            );
            assert!(shown.contains(words), "want {words:?} in {shown}");
            for rust in [
                "i64",
                "u32",
                "u16",
                "f64",
                "usize",
                "invalid type",
                "invalid value",
                "expected a string",
                "a sequence",
                "struct ",
                "Raw",
                "a boolean",
                "field",
            ] {
                assert!(!shown.contains(rust), "{rust:?} in {shown}");
            }
        }
    }

    #[test]
    fn a_misspelt_key_gets_the_closest_name() {
        let e = p(&format!("{MIN}cooldown_upp = \"3m\"\n")).unwrap_err();
        assert_eq!(e.key, "group[web].cooldown_upp");
        assert!(e.msg.contains("did you mean `cooldown_up`"), "{e}");
    }

    #[test]
    fn unknown_metric_names_are_warnings_pointing_at_the_name() {
        let text = format!(
            "{MIN}[[group.policy]]\nname = \"up\"\nscale = \"up\"\nconditions = [ {{ name = \"l\", expr = \"2 * node_lod1\", function = \"mean\", op = \">\", threshold = 1 }} ]\n[group.target]\nexpr = 'avg(node_filesystem_avail_bytes) + myapp_queue + node_load1'\nvalue = 1\n"
        );
        let c = p(&text).unwrap();
        let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w.len(), 3, "{w:#?}");
        assert!(w[0].starts_with("/etc/doscale/t.toml:9:"), "{}", w[0]);
        assert!(
            w[0].contains("`group[web].policy[up].conditions[l].expr`"),
            "{}",
            w[0]
        );
        assert!(
            w[0].contains("`node_lod1`") && w[0].contains("closest is `node_load1`"),
            "{}",
            w[0]
        );
        // the column is the name's, inside the expression
        let col = text.lines().nth(8).unwrap().find("node_lod1").unwrap() + 1;
        assert_eq!(c.warnings[0].col, col);
        assert!(w.iter().any(|w| w.contains("`myapp_queue`")));
        assert!(w
            .iter()
            .any(|w| w.contains("`node_filesystem_avail_bytes`")));
        // extra_metrics: exact names and prefixes
        let text = text.replace(
            "[[group.policy]]",
            "[group.metrics]\nextra_metrics = [\"node_filesystem_avail_bytes\", \"myapp_*\"]\n[[group.policy]]",
        );
        let c = p(&text).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].msg.contains("node_lod1"));
        let e = p(&text.replace("\"myapp_*\"", "\"9bad\"")).unwrap_err();
        assert_eq!(e.key, "group[web].metrics.extra_metrics");
        // The shipped example has no unknown name.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/doscale.toml");
        assert!(load(Path::new(path)).unwrap().warnings.is_empty());
    }

    #[test]
    fn files_the_config_names_are_listed_with_their_place() {
        let c = p(&format!("[api]\ntoken_file = \"tok\"\n{MIN}[group.template]\nregion = \"r\"\nsize = \"s\"\nimage = 1\nuser_data_file = \"ud.yaml\"\n[[group.hook]]\non = \"after_create\"\ncommand = [\"drain\", \"{{id}}\"]\n")).unwrap();
        let f: Vec<_> = c
            .files
            .iter()
            .map(|f| (f.kind, f.path.clone(), f.place.key.clone(), f.place.line))
            .collect();
        assert!(
            f.contains(&(
                FileKind::TokenFile,
                PathBuf::from("/etc/doscale/tok"),
                "api.token_file".into(),
                2
            )),
            "{f:?}"
        );
        assert!(
            f.contains(&(
                FileKind::UserData,
                PathBuf::from("/etc/doscale/ud.yaml"),
                "group[web].template.user_data_file".into(),
                12
            )),
            "{f:?}"
        );
        assert!(
            f.contains(&(
                FileKind::HookProgram,
                PathBuf::from("drain"),
                "group[web].hook.command".into(),
                15
            )),
            "{f:?}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3m").unwrap(), Duration::from_secs(180));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
    }
}
