//! The configuration file (docs/design.md §2): a `Raw*` layer that is pure serde with
//! `deny_unknown_fields`, and a validated [`Config`] built from it. Every error names the
//! file, line:column, the key and what was expected (exit code 2).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::expr::Expr;
use crate::model::AddressKind;

pub mod digitalocean;
mod keys;
mod raw;
mod validate;

pub const DEFAULT_PATH: &str = "/etc/doscale/doscale.toml";

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
    /// `[group.metrics.prometheus] bearer_token_file` or `basic_auth_file`: read by every
    /// scrape of the group.
    PrometheusSecret,
    /// `[group.metrics.prometheus] ca_file`: PEM certificates.
    CaFile,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Where the series come from (`source`): each droplet's page, or a query API.
    pub source: Source,
}

/// `[group.metrics] source`.
#[derive(Debug, Clone, Default)]
pub enum Source {
    /// Each droplet's do-agent page, fetched directly (`"scrape"`).
    #[default]
    Scrape,
    /// A Prometheus-compatible query API that evaluates the expressions (`"prometheus"`).
    Prometheus(Prometheus),
    /// DigitalOcean's monitoring API (`"digitalocean"`, `[group.metrics.digitalocean]`).
    DigitalOcean(digitalocean::DoMonitoring),
}

impl Source {
    /// Whether the source evaluates the expressions itself: the scrape then carries each
    /// droplet's value per expression (see `model::series::expr_value_key`).
    pub fn evaluates(&self) -> bool {
        matches!(self, Source::Prometheus(_))
    }

    /// The word of the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Source::Scrape => "scrape",
            Source::Prometheus(_) => "prometheus",
            Source::DigitalOcean(_) => "digitalocean",
        }
    }
}

/// `[group.metrics.prometheus]`. Secrets are paths (read when a pass starts) or
/// [`Hidden`]: `Debug` never shows a header value.
#[derive(Debug, Clone)]
pub struct Prometheus {
    /// The base URL, without a trailing slash (`/api/v1/query` is appended).
    pub url: String,
    /// How a series names its droplet: a label holding the droplet id (`droplet_id`), or
    /// `instance` holding `address:port` (the group's metrics address and port).
    pub droplet_label: String,
    pub bearer_token_file: Option<PathBuf>,
    /// A file holding `user:password`.
    pub basic_auth_file: Option<PathBuf>,
    pub headers: Vec<(String, Hidden)>,
    /// PEM certificates trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Per query.
    pub timeout: Duration,
}

/// A value of the configuration that is never shown (a header that may carry a credential):
/// `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Prometheus {
    /// Whether the droplet label holds `address:port` rather than the droplet id.
    pub fn by_instance(&self) -> bool {
        self.droplet_label == "instance"
    }
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

/// What the configuration takes from the process environment. The shell reads it
/// (`cmd::process_env`) and passes it in, so that [`parse`] is a function of its arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    /// `$STATE_DIRECTORY` as systemd sets it (`StateDirectory=`; several directories are
    /// separated by ':', the first is ours): the state file's default place. `None` or empty:
    /// `/var/lib/doscale/state.json`.
    pub state_directory: Option<std::ffi::OsString>,
}

/// Parses and validates configuration text; `path` is used for messages and relative paths,
/// `env` for the defaults the environment decides. Reads nothing else: no file, no variable.
pub fn parse(path: &Path, text: &str, env: &Env) -> Result<Config, ConfigError> {
    let cx = validate::Cx::new(path, text);
    let raw: raw::RawConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| keys::translate(&e, text, &|span, key, msg| cx.at(span, key, msg)))?;
    cx.config(path, &raw, env)
}

pub use crate::net::check_api_url;

/// The most user data DigitalOcean accepts for a droplet (`check` and apply read no more).
pub const USER_DATA_MAX: u64 = 64 * 1024;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/doscale/t.toml"), text, &Env::default())
    }

    /// The example configuration shipped in `config/`, as `load_config` would parse it.
    fn example() -> Result<Config, ConfigError> {
        parse(
            Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/doscale.toml")),
            include_str!("../config/doscale.toml"),
            &Env::default(),
        )
    }

    const MIN: &str = "[[group]]\nname = \"web\"\ntag = \"web\"\nmin = 1\nmax = 3\n";

    fn source_err(metrics: &str) -> String {
        p(&format!("{MIN}{metrics}")).unwrap_err().to_string()
    }

    #[test]
    fn the_metric_source_section_is_checked() {
        // The default is today's scrape.
        assert!(!p(MIN).unwrap().groups[0].metrics.source.evaluates());
        let ok = p(&format!(
            "{MIN}[group.metrics]\nsource = \"prometheus\"\n[group.metrics.prometheus]\nurl = \"https://prom.example.com/\"\nheaders = {{ X-Scope-OrgID = \"secret-tenant\" }}\n"
        ))
        .unwrap();
        let Source::Prometheus(pr) = &ok.groups[0].metrics.source else {
            panic!("not prometheus")
        };
        assert_eq!(pr.url, "https://prom.example.com");
        assert_eq!(pr.droplet_label, "droplet_id");
        assert_eq!(pr.timeout, Duration::from_secs(10));
        // A header value never shows in Debug.
        assert!(!format!("{ok:?}").contains("secret-tenant"));

        let e = source_err(
            "[group.metrics]\nsource = \"digitalocean\"\n[group.metrics.prometheus]\nurl = \"http://127.0.0.1:9090\"\n",
        );
        assert!(
            e.contains("group[web].metrics.prometheus")
                && e.contains("source is not \"prometheus\""),
            "{e}"
        );
        let e = source_err("[group.metrics]\nsource = \"prometheus\"\n");
        assert!(
            e.contains("needs a [group.metrics.prometheus] section"),
            "{e}"
        );
        let e = source_err("[group.metrics.prometheus]\nurl = \"http://127.0.0.1:9090\"\n");
        assert!(e.contains("source is not \"prometheus\""), "{e}");
        let e = source_err("[group.metrics]\nsource = \"graphite\"\n");
        assert!(
            e.contains("\"scrape\", \"prometheus\" or \"digitalocean\""),
            "{e}"
        );
        let pro = "[group.metrics]\nsource = \"prometheus\"\n[group.metrics.prometheus]\n";
        let e = source_err(&format!("{pro}url = \"http://10.0.0.5:9090\"\n"));
        assert!(
            e.contains("metrics.prometheus.url") && e.contains("allow_insecure_http"),
            "{e}"
        );
        assert!(p(&format!(
            "{MIN}{pro}url = \"http://10.0.0.5:9090\"\nallow_insecure_http = true\n"
        ))
        .is_ok());
        let e = source_err(&format!("{pro}url = \"https://u:pw@prom.example.com\"\n"));
        assert!(e.contains("basic_auth_file") && !e.contains("pw@"), "{e}");
        let e = source_err(&format!(
            "{pro}url = \"https://p\"\ndroplet_label = \"a-b\"\n"
        ));
        assert!(e.contains("not a label name"), "{e}");
        let e = source_err(&format!(
            "{pro}url = \"https://p\"\nheaders = {{ X = \"a\\nb\" }}\n"
        ));
        assert!(
            e.contains("not a valid HTTP header value") && !e.contains("a\nb"),
            "{e}"
        );
        let e = source_err(&format!("{pro}url = \"https://p\"\ntimeout = \"0s\"\n"));
        assert!(e.contains("metrics.prometheus.timeout"), "{e}");
        let e = source_err(&format!("{pro}droplet_label = \"instance\"\n"));
        assert!(
            e.contains("metrics.prometheus.url") && e.contains("missing"),
            "{e}"
        );
    }

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
    fn relative_paths_follow_the_config_file() {
        let c = p(&format!("state_file = \"st/state.json\"\n{MIN}")).unwrap();
        assert_eq!(c.state_file, PathBuf::from("/etc/doscale/st/state.json"));
    }

    #[test]
    fn the_example_configuration_loads() {
        let c = example().unwrap_or_else(|e| panic!("{e}"));
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
        assert!(example().unwrap().warnings.is_empty());
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

    /// `parse` is a function of its arguments: the same text and `Env` give the same
    /// configuration, and `$STATE_DIRECTORY` counts only when the shell passes it in.
    #[test]
    fn parse_is_pure_the_environment_comes_in_as_an_argument() {
        let show = |c: &Config| format!("{c:?}");
        let text = include_str!("../config/doscale.toml").replace("state_file =", "# state_file =");
        let path = Path::new("/etc/doscale/doscale.toml");
        let systemd = Env {
            state_directory: Some("/var/lib/doscale-a:/var/lib/other".into()),
        };
        let a = parse(path, &text, &systemd).unwrap();
        let b = parse(path, &text, &systemd).unwrap();
        assert_eq!(show(&a), show(&b));
        assert_eq!(a.state_file, Path::new("/var/lib/doscale-a/state.json"));
        // A variable of the process is not read: only what is passed in counts. (No other
        // test reads STATE_DIRECTORY, so setting it here races with nothing.)
        std::env::set_var("STATE_DIRECTORY", "/run/from-the-process");
        let none = parse(path, &text, &Env::default()).unwrap();
        let again = parse(path, &text, &systemd).unwrap();
        std::env::remove_var("STATE_DIRECTORY");
        assert_eq!(none.state_file, Path::new("/var/lib/doscale/state.json"));
        assert_eq!(show(&again), show(&a));
        let empty = Env {
            state_directory: Some("".into()),
        };
        assert_eq!(
            parse(path, &text, &empty).unwrap().state_file,
            Path::new("/var/lib/doscale/state.json")
        );
    }

    /// No module of the configuration reads the environment or a file: the shell does
    /// (`cmd::load_config`, `secret::token_lookup`) and passes in what it read.
    #[test]
    fn the_config_modules_read_no_environment_and_no_file() {
        let sources = [
            ("src/config.rs", include_str!("config.rs")),
            ("src/config/keys.rs", include_str!("config/keys.rs")),
            ("src/config/raw.rs", include_str!("config/raw.rs")),
            ("src/config/validate.rs", include_str!("config/validate.rs")),
        ];
        for (name, text) in sources {
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for banned in [
                "std::env",
                "env::var",
                "std::fs",
                "fs::read",
                "File::open",
                "OpenOptions",
            ] {
                assert!(!code.contains(banned), "{name} uses {banned}");
            }
        }
    }

    /// The keys that take one of a few words are serde enums; a word they do not take gets
    /// the message it had when they were matched by hand, at the word's place. A hook is
    /// named by its index, as in the messages of its other keys.
    #[test]
    fn an_unknown_word_names_the_words_the_key_takes() {
        const P: &str = "[[group.policy]]\nname = \"up\"\nscale = \"up\"\n";
        const C: &str = "conditions = [ { name = \"c\", expr = \"node_load1\", function = \"mean\", op = \">\", threshold = 1 } ]\n";
        const H: &str = "[[group.hook]]\non = \"after_create\"\ncommand = [\"/bin/true\"]\n";
        let cases = [
            (format!("{MIN}remove = \"random\"\n"), "6:10: `group[web].remove`: unknown value \"random\": expected \"newest\", \"oldest\" or \"least_loaded\""),
            (format!("{MIN}on_unhealthy = 'explode'\n"), "6:16: `group[web].on_unhealthy`: unknown value \"explode\": expected \"keep\" or \"destroy\""),
            (format!("{MIN}[group.metrics]\naddress = \"carrier-pigeon\"\n"), "7:11: `group[web].metrics.address`: unknown address \"carrier-pigeon\": expected \"private\", \"public\" or \"ipv6\""),
            (format!("{MIN}{}{C}", P.replace("scale = \"up\"", "scale = \"Up\"")), "8:9: `group[web].policy[up].scale`: unknown value \"Up\": expected \"up\" or \"down\""),
            (format!("{MIN}{P}match = \"some\"\n{C}"), "9:9: `group[web].policy[up].match`: unknown value \"some\": expected \"all\" or \"any\""),
            (format!("{MIN}{P}{}", C.replace("\">\"", "\"=>\"")), "9:75: `group[web].policy[up].conditions[c].op`: unknown operator \"=>\": expected one of < <= > >= == !="),
            (format!("{MIN}{H}{}", H.replace("after_create", "after_lunch")), "10:6: `group[web].hook[1].on`: unknown event \"after_lunch\": expected before_create, after_create, before_destroy or after_destroy"),
            (format!("{MIN}remove = 1\n"), "6:10: `group[web].remove`: expected one of \"newest\", \"oldest\" or \"least_loaded\", got 1"),
        ];
        for (text, want) in &cases {
            let shown = p(text).expect_err(text).to_string();
            assert_eq!(shown, format!("/etc/doscale/t.toml:{want}"), "{text}");
        }
        // The aliases of the address still serve.
        for (word, kind) in [
            ("private_ip_address", AddressKind::Private),
            ("public_ip_address", AddressKind::Public),
            ("ipv6", AddressKind::Ipv6),
        ] {
            let c = p(&format!("{MIN}[group.metrics]\naddress = \"{word}\"\n")).unwrap();
            assert_eq!(c.groups[0].metrics.address, kind);
        }
        let c = p(&format!(
            "{MIN}remove = \"least_loaded\"\non_unhealthy = \"destroy\"\n{P}match = \"any\"\n{}{H}",
            C.replace("\">\"", "\"<=\"")
        ))
        .unwrap();
        let g = &c.groups[0];
        assert_eq!(
            (g.remove, g.on_unhealthy),
            (Remove::LeastLoaded, OnUnhealthy::Destroy)
        );
        let pol = &g.policies[0];
        assert_eq!(
            (pol.scale, pol.match_, pol.conditions[0].op),
            (Scale::Up, Match::Any, Op::Le)
        );
        assert_eq!(g.hooks[0].on, HookEvent::AfterCreate);
    }
}
