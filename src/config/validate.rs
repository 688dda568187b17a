//! The validation of the configuration: from the raw layer ([`super::raw`]) to the
//! [`Config`] the program sees, one function per section, each naming the key of what it
//! refuses. Nothing here reads a file or the environment: [`super::Env`] comes in.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::raw::{
    RawApi, RawCondition, RawConfig, RawGroup, RawHealth, RawHook, RawMetrics, RawPolicy,
    RawPrometheus, RawSource, RawTarget, RawTemplate,
};
use super::*;
use crate::error::ConfigError;
use crate::expr::Expr;
use crate::model::AddressKind;

/// The key of a group's setting: `group[web].` and the key.
type KeyOf<'k> = &'k dyn Fn(&str) -> String;

pub(super) struct Cx<'a> {
    pub(super) file: String,
    /// Relative paths of the file are relative to its directory.
    base: PathBuf,
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

    pub(super) fn at(&self, span: Range<usize>, key: &str, msg: impl Into<String>) -> ConfigError {
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

    pub(super) fn duration(&self, s: &Spanned<String>, key: &str) -> Result<Duration, ConfigError> {
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

    pub(super) fn count(
        &self,
        v: &Spanned<i64>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<u32, ConfigError> {
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

    pub(super) fn expr(&self, s: &Spanned<String>, key: &str) -> Result<Expr, ConfigError> {
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
}

impl<'a> Cx<'a> {
    pub(super) fn new(path: &Path, text: &'a str) -> Cx<'a> {
        Cx {
            file: path.display().to_string(),
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            text,
            parsed: Default::default(),
            warnings: Default::default(),
            files: Default::default(),
        }
    }

    /// A path of the file: absolute as written, relative to the file's directory otherwise.
    fn rel(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    /// The whole configuration.
    pub(super) fn config(
        self,
        path: &Path,
        raw: &RawConfig,
        env: &Env,
    ) -> Result<Config, ConfigError> {
        let state_file = self.state_file(raw, env)?;
        let metrics_textfile = raw.metrics_textfile.as_ref().map(|s| self.rel(s.get_ref()));
        let plan_max_age = self.duration_or(&raw.plan_max_age, "plan_max_age", "5m")?;
        let max_scrape_age = self.duration_or(&raw.max_scrape_age, "max_scrape_age", "5m")?;
        let api = self.api(&raw.api)?;
        let groups = self.groups(&raw.group)?;
        Ok(Config {
            path: path.to_path_buf(),
            state_file,
            metrics_textfile,
            plan_max_age,
            max_scrape_age,
            api,
            groups,
            warnings: self.warnings.take(),
            files: self.files.take(),
        })
    }

    /// `state_file`, or `state.json` in the first of `$STATE_DIRECTORY` as passed in.
    fn state_file(&self, raw: &RawConfig, env: &Env) -> Result<PathBuf, ConfigError> {
        Ok(match &raw.state_file {
            Some(s) => {
                self.non_empty(s, "state_file")?;
                self.rel(s.get_ref())
            }
            None => match env.state_directory.as_ref().filter(|s| !s.is_empty()) {
                // systemd may pass several directories separated by ':'; the first is ours.
                Some(dirs) => {
                    let dirs = dirs.to_string_lossy().to_string();
                    PathBuf::from(dirs.split(':').next().unwrap_or_default()).join("state.json")
                }
                None => PathBuf::from("/var/lib/doscale/state.json"),
            },
        })
    }

    /// `[api]`.
    fn api(&self, raw: &RawApi) -> Result<ApiConfig, ConfigError> {
        let url = match &raw.url {
            Some(u) => {
                let v = u.get_ref().trim_end_matches('/').to_string();
                check_api_url(&v).map_err(|m| self.at(u.span(), "api.url", m))?;
                v
            }
            None => "https://api.digitalocean.com".to_string(),
        };
        let token_file = match &raw.token_file {
            Some(s) => {
                self.non_empty(s, "api.token_file")?;
                let path = self.rel(s.get_ref());
                self.named(
                    FileKind::TokenFile,
                    path.clone(),
                    s.span(),
                    "api.token_file",
                );
                Some(path)
            }
            None => None,
        };
        Ok(ApiConfig {
            url,
            token_file,
            timeout: self.duration_or(&raw.timeout, "api.timeout", "30s")?,
            consistency: Consistency {
                window: self.duration_or(
                    &raw.consistency_window,
                    "api.consistency_window",
                    "3m",
                )?,
                listings: match &raw.consistency_listings {
                    Some(n) => self.count(n, "api.consistency_listings", 1, 100)?,
                    None => Consistency::default().listings,
                },
            },
        })
    }

    /// Every `[[group]]`: at least one, names and tags unique.
    fn groups(&self, raw: &[Spanned<RawGroup>]) -> Result<Vec<Group>, ConfigError> {
        let mut groups = Vec::new();
        let mut names = BTreeSet::new();
        let mut tags = BTreeSet::new();
        for g in raw {
            let group = self.group(g.get_ref())?;
            if !names.insert(group.name.clone()) {
                return Err(self.at(
                    g.get_ref().name.span(),
                    "group.name",
                    format!(
                        "a group named {:?} is already defined: group names must be unique",
                        group.name
                    ),
                ));
            }
            if !tags.insert(group.tag.clone()) {
                return Err(self.at(g.get_ref().tag.span(), "group.tag", format!(
                    "tag {:?} is already used by another group: a droplet must belong to one group only",
                    group.tag
                )));
            }
            groups.push(group);
        }
        if groups.is_empty() {
            return Err(ConfigError {
                file: self.file.clone(),
                line: 0,
                col: 0,
                key: "group".into(),
                msg: "no [[group]] is defined: add at least one with name, tag, min and max".into(),
            });
        }
        Ok(groups)
    }

    /// One `[[group]]`, section by section.
    fn group(&self, g: &RawGroup) -> Result<Group, ConfigError> {
        self.non_empty(&g.name, "group.name")?;
        self.non_empty(&g.tag, "group.tag")?;
        let name = g.name.get_ref().clone();
        let k = |key: &str| format!("group[{name}].{key}");
        let (min, max) = self.bounds(g, &k)?;
        let (max_step_up, max_step_down) = self.steps(g, &k)?;
        let (min_reporting, max_destroy_share) = self.shares(g, &k)?;
        let metrics = self.metrics(&g.metrics, &k)?;
        let template = match &g.template {
            None => None,
            Some(t) => Some(self.template(t, g, &name)?),
        };
        let health_check = self.health_check(g.health_check.as_ref(), metrics.port, &k)?;
        let extra = &metrics.extra_metrics;
        let mut policies = Vec::new();
        let mut pnames = BTreeSet::new();
        for p in &g.policy {
            policies.push(self.policy(p, &name, &mut pnames, extra)?);
        }
        let target = match &g.target {
            None => None,
            Some(t) => Some(self.target(t.get_ref(), &k, extra)?),
        };
        if matches!(metrics.source, Source::DigitalOcean(_)) {
            self.digitalocean_series(g, &name)?;
        }
        let mut hooks = Vec::new();
        for h in &g.hook {
            hooks.push(self.hook(h.get_ref(), &k)?);
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
            remove: g.remove.unwrap_or(Remove::Newest),
            min_reporting,
            max_destroy_share,
            protect_tag: g
                .protect_tag
                .as_ref()
                .map(|s| s.get_ref().clone())
                .filter(|s| !s.is_empty()),
            on_unhealthy: g.on_unhealthy.unwrap_or(OnUnhealthy::Keep),
            metrics,
            template,
            health_check,
            policies,
            target,
            hooks,
        })
    }

    /// `min` and `max`, with max >= min.
    fn bounds(&self, g: &RawGroup, k: KeyOf) -> Result<(u32, u32), ConfigError> {
        let min = self.count(&g.min, &k("min"), 0, 10_000)?;
        let max = self.count(&g.max, &k("max"), 0, 10_000)?;
        if min > max {
            return Err(self.at(
                g.max.span(),
                &k("max"),
                format!("max ({max}) is below min ({min}): expected max >= min"),
            ));
        }
        Ok((min, max))
    }

    /// `max_step_up` (no limit unless set) and `max_step_down` (1 unless set).
    fn steps(&self, g: &RawGroup, k: KeyOf) -> Result<(Option<u32>, u32), ConfigError> {
        let max_step_up = g
            .max_step_up
            .as_ref()
            .map(|v| self.count(v, &k("max_step_up"), 1, 10_000))
            .transpose()?;
        let max_step_down = match &g.max_step_down {
            Some(v) => self.count(v, &k("max_step_down"), 1, 10_000)?,
            None => 1,
        };
        Ok((max_step_up, max_step_down))
    }

    /// `min_reporting` (0.0 to 1.0) and `max_destroy_share` (above 0.0, up to 1.0).
    fn shares(&self, g: &RawGroup, k: KeyOf) -> Result<(f64, f64), ConfigError> {
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
        Ok((min_reporting, max_destroy_share))
    }

    /// `[group.metrics]`.
    fn metrics(&self, m: &RawMetrics, k: KeyOf) -> Result<Metrics, ConfigError> {
        let address = m.address.map_or(AddressKind::Private, AddressKind::from);
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
        let source = self.source(m, k)?;
        let metrics = Metrics {
            source,
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
                Some(list) => self.extra_metrics(list, k)?,
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
        Ok(metrics)
    }

    /// `[group.metrics] source` and its section (`[group.metrics.prometheus]`,
    /// `[group.metrics.digitalocean]`).
    fn source(&self, m: &RawMetrics, k: KeyOf) -> Result<Source, ConfigError> {
        let source = m.source.as_ref().map(|s| *s.get_ref());
        if let (Some(d), false) = (&m.digitalocean, source == Some(RawSource::Digitalocean)) {
            return Err(self.at(
                d.span(),
                &k("metrics.digitalocean"),
                "[group.metrics.digitalocean] is set but the group's source is not \"digitalocean\": add source = \"digitalocean\" to [group.metrics], or remove the table",
            ));
        }
        match (source, &m.prometheus) {
            (None | Some(RawSource::Scrape), None) => Ok(Source::Scrape),
            (Some(RawSource::Digitalocean), None) => Ok(Source::DigitalOcean(
                self.digitalocean(m.digitalocean.as_ref().map(|d| d.get_ref()), k)?,
            )),
            (None | Some(RawSource::Scrape | RawSource::Digitalocean), Some(p)) => Err(self.at(
                p.span(),
                &k("metrics.prometheus"),
                "a [group.metrics.prometheus] section is set but source is not \"prometheus\": add source = \"prometheus\" to [group.metrics], or remove the section",
            )),
            (Some(RawSource::Prometheus), None) => {
                let s = m.source.as_ref().expect("set");
                Err(self.at(s.span(), &k("metrics.source"), "source = \"prometheus\" needs a [group.metrics.prometheus] section with at least url, e.g. url = \"http://127.0.0.1:9090\""))
            }
            (Some(RawSource::Prometheus), Some(p)) => {
                Ok(Source::Prometheus(self.prometheus(p.get_ref(), p.span(), k)?))
            }
        }
    }

    /// `[group.metrics.prometheus]`.
    fn prometheus(
        &self,
        p: &RawPrometheus,
        span: Range<usize>,
        k: KeyOf,
    ) -> Result<Prometheus, ConfigError> {
        let key = |s: &str| k(&format!("metrics.prometheus.{s}"));
        let Some(url) = &p.url else {
            return Err(self.at(span, &key("url"), "missing: the base URL of the query API, e.g. url = \"http://127.0.0.1:9090\" (doscale appends /api/v1/query)"));
        };
        let text = url.get_ref().trim().trim_end_matches('/').to_string();
        let parsed = url::Url::parse(&text).map_err(|e| {
            self.at(url.span(), &key("url"), format!("not a URL ({e}): expected e.g. \"http://127.0.0.1:9090\" or \"https://prometheus.example.com\""))
        })?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(self.at(url.span(), &key("url"), "the URL carries a user or password: put them in basic_auth_file (a file holding user:password) so that they are never printed"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(self.at(url.span(), &key("url"), "the URL has a query or fragment: give the base URL only, e.g. \"http://127.0.0.1:9090\" or \"https://example.com/prometheus\""));
        }
        match parsed.scheme() {
            "https" => {}
            "http" => {
                if crate::net::check_api_url(&text).is_err() && p.allow_insecure_http != Some(true)
                {
                    return Err(self.at(url.span(), &key("url"), "plain http:// is only allowed to a loopback address (queries and credentials would travel in clear): use https://, or set allow_insecure_http = true if the network is trusted"));
                }
            }
            other => {
                return Err(self.at(
                    url.span(),
                    &key("url"),
                    format!("unsupported scheme {other:?}: use http:// or https://"),
                ));
            }
        }
        let droplet_label = match &p.droplet_label {
            None => "droplet_id".to_string(),
            Some(l) => {
                let v = l.get_ref();
                let valid = !v.is_empty()
                    && !v.starts_with("__")
                    && v.chars().enumerate().all(|(i, c)| {
                        c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit())
                    });
                if !valid {
                    return Err(self.at(l.span(), &key("droplet_label"), format!("{v:?} is not a label name: expected e.g. \"droplet_id\" (a label holding the droplet id) or \"instance\" (address:port)")));
                }
                v.clone()
            }
        };
        let file = |s: &Option<Spanned<String>>, name: &str, kind: FileKind| {
            s.as_ref().map(|s| {
                let path = self.rel(s.get_ref());
                self.named(kind, path.clone(), s.span(), &key(name));
                path
            })
        };
        let mut headers = Vec::new();
        if let Some(h) = &p.headers {
            for (name, value) in h.get_ref() {
                let lower = name.to_ascii_lowercase();
                // RFC 9110: a name is a token; a value is visible characters, spaces and tabs.
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if name.is_empty() || !name.chars().all(token) {
                    return Err(self.at(
                        h.span(),
                        &key("headers"),
                        format!(
                            "{:?} is not an HTTP header name",
                            crate::clean::sanitize(name)
                        ),
                    ));
                }
                if value
                    .chars()
                    .any(|c| (c.is_control() && c != '\t') || c as u32 == 0x7f)
                {
                    // The value may be a credential: not quoted.
                    return Err(self.at(h.span(), &key("headers"), format!("the value of header {name} is not a valid HTTP header value (control characters?)")));
                }
                if [
                    "host",
                    "content-type",
                    "content-length",
                    "transfer-encoding",
                ]
                .contains(&lower.as_str())
                {
                    return Err(self.at(
                        h.span(),
                        &key("headers"),
                        format!("header {name} is set by doscale itself"),
                    ));
                }
                headers.push((name.clone(), Hidden(value.clone())));
            }
        }
        if let (Some(_), Some(s)) = (&p.bearer_token_file, &p.basic_auth_file) {
            return Err(self.at(
                s.span(),
                &key("basic_auth_file"),
                "both bearer_token_file and basic_auth_file are set: use one",
            ));
        }
        if headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            && (p.bearer_token_file.is_some() || p.basic_auth_file.is_some())
        {
            let s = p.headers.as_ref().expect("set");
            return Err(self.at(s.span(), &key("headers"), "an Authorization header is set besides bearer_token_file or basic_auth_file: use one"));
        }
        let timeout = self.duration_or(&p.timeout, &key("timeout"), "10s")?;
        if timeout.is_zero() {
            let s = p.timeout.as_ref().expect("set when zero");
            return Err(self.at(s.span(), &key("timeout"), "must be longer than 0s"));
        }
        Ok(Prometheus {
            url: text,
            droplet_label,
            bearer_token_file: file(
                &p.bearer_token_file,
                "bearer_token_file",
                FileKind::PrometheusSecret,
            ),
            basic_auth_file: file(
                &p.basic_auth_file,
                "basic_auth_file",
                FileKind::PrometheusSecret,
            ),
            headers,
            ca_file: file(&p.ca_file, "ca_file", FileKind::CaFile),
            timeout,
        })
    }

    /// `[group.metrics] extra_metrics`: metric names, or prefixes ending in `*`.
    fn extra_metrics(
        &self,
        list: &[Spanned<String>],
        k: KeyOf,
    ) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for n in list {
            let name = n.get_ref();
            let body = name.strip_suffix('*').unwrap_or(name);
            let valid = body.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            });
            if !valid || (body.is_empty() && name != "*") {
                return Err(self.at(n.span(), &k("metrics.extra_metrics"), format!(
                    "{name:?} is not a metric name: expected letters, digits, _ and :, not starting with a digit, optionally ending in * (a prefix), e.g. \"node_filesystem_avail_bytes\" or \"myapp_*\""
                )));
            }
            out.push(name.clone());
        }
        Ok(out)
    }

    /// `[group.health_check]`; its ports default to the metrics port.
    fn health_check(
        &self,
        h: Option<&RawHealth>,
        metrics_port: u16,
        k: KeyOf,
    ) -> Result<HealthCheck, ConfigError> {
        let Some(h) = h else {
            return Ok(HealthCheck {
                ports: vec![metrics_port],
                timeout: Duration::from_secs(10),
                interval: Duration::from_secs(10),
                max_tries: 12,
            });
        };
        Ok(HealthCheck {
            ports: match &h.ports {
                None => vec![metrics_port],
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
        })
    }

    /// One `[[group.policy]]` of group `group`; `pnames` holds the names of those before.
    fn policy(
        &self,
        p: &Spanned<RawPolicy>,
        group: &str,
        pnames: &mut BTreeSet<String>,
        extra: &[String],
    ) -> Result<Policy, ConfigError> {
        let k = |key: &str| format!("group[{group}].{key}");
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
        let pk = |key: &str| format!("group[{group}].policy[{pname}].{key}");
        let step = match &p.step {
            Some(s) => self.count(s, &pk("step"), 1, 10_000)?,
            None => 1,
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
            if !cnames.insert(c.name.get_ref().clone()) {
                return Err(self.at(
                    c.name.span(),
                    &pk("conditions.name"),
                    format!(
                        "condition {:?} appears twice in this policy",
                        c.name.get_ref()
                    ),
                ));
            }
            conditions.push(self.condition(c, &pk("conditions"), extra)?);
        }
        Ok(Policy {
            name: pname,
            scale: p.scale,
            step,
            match_: p.match_.unwrap_or(Match::All),
            conditions,
        })
    }

    /// One condition of a policy; `conditions` is the policy's key of its conditions.
    fn condition(
        &self,
        c: &RawCondition,
        conditions: &str,
        extra: &[String],
    ) -> Result<Condition, ConfigError> {
        let cname = c.name.get_ref();
        let ck = |key: &str| format!("{conditions}[{cname}].{key}");
        if !c.threshold.get_ref().is_finite() {
            return Err(self.at(
                c.threshold.span(),
                &ck("threshold"),
                "expected a finite number",
            ));
        }
        Ok(Condition {
            name: cname.clone(),
            expr: self.metric_expr(&c.expr, &ck("expr"), extra)?,
            function: self.function(&c.function, &ck("function"))?,
            op: c.op,
            threshold: *c.threshold.get_ref(),
        })
    }

    /// `[group.target]`.
    fn target(&self, t: &RawTarget, k: KeyOf, extra: &[String]) -> Result<Target, ConfigError> {
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
        Ok(Target {
            expr: self.metric_expr(&t.expr, &k("target.expr"), extra)?,
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

    /// One `[[group.hook]]`; its program is recorded for `check`.
    fn hook(&self, h: &RawHook, k: KeyOf) -> Result<Hook, ConfigError> {
        if h.command.get_ref().is_empty() || h.command.get_ref()[0].trim().is_empty() {
            return Err(self.at(
                h.command.span(),
                &k("hook.command"),
                "expected a non-empty list: the program, then its arguments",
            ));
        }
        self.named(
            FileKind::HookProgram,
            PathBuf::from(&h.command.get_ref()[0]),
            h.command.span(),
            &k("hook.command"),
        );
        Ok(Hook {
            on: h.on,
            command: h.command.get_ref().clone(),
            timeout: self.duration_or(&h.timeout, &k("hook.timeout"), "60s")?,
        })
    }

    fn template(
        &self,
        t: &Spanned<RawTemplate>,
        g: &RawGroup,
        group: &str,
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
        let (image, ssh_keys) = self.image_and_keys(t, &k)?;
        let tags = self.template_tags(t, g, &k)?;
        let user_data_file = match &t.user_data_file {
            Some(s) => {
                self.non_empty(s, &k("user_data_file"))?;
                let path = self.rel(s.get_ref());
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

    /// `[group.template] image` and `ssh_keys`, as the API takes them.
    fn image_and_keys(
        &self,
        t: &RawTemplate,
        k: KeyOf,
    ) -> Result<(serde_json::Value, Vec<serde_json::Value>), ConfigError> {
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
        Ok((image, ssh_keys))
    }

    /// `[group.template] tags`: the group tag among them (alone when none is given).
    fn template_tags(
        &self,
        t: &RawTemplate,
        g: &RawGroup,
        k: KeyOf,
    ) -> Result<Vec<String>, ConfigError> {
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
        Ok(tags)
    }
}

/// Where `name` stands in `expr` as a whole word (not part of a longer name).
pub(super) fn name_offset(expr: &str, name: &str) -> Option<usize> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    expr.match_indices(name).map(|(i, _)| i).find(|&i| {
        !expr[..i].chars().next_back().is_some_and(word)
            && !expr[i + name.len()..].chars().next().is_some_and(word)
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
