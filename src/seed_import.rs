//! `doscale import-seed`: converts a do-scaler scaler file (`conf.d/<name>.cfg`, Python
//! configparser with extended interpolation), the policy JSON files it lists and the droplet
//! JSON its create action names, into one doscale `[[group]]`.
//!
//! The output is a complete configuration that `doscale check` accepts. What has no
//! equivalent (custom actions, the scheduler interval, `private_networking`) becomes a
//! comment that says what to do instead. The API token is never copied.

mod ini;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{bail, eyre, WrapErr};
use serde_json::Value;

use ini::Ini;

const CREATE: &str = "digitalocean_create_droplet";
const DESTROY: &str = "digitalocean_destroy_droplet";
const HEALTH: &str = "health_check_tcp";

/// Converts the scaler file at `path` (and the policy and droplet JSON files it references)
/// into doscale TOML.
pub fn convert(path: &Path) -> color_eyre::Result<String> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the do-scaler scaler file {}", path.display()))?;
    let file = path.display().to_string();
    let ini = Ini::parse(&text).map_err(|e| eyre!("{file}: {e}"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let cx = Cx {
        file: file.clone(),
        ini: &ini,
        dir,
    };
    cx.convert()
}

/// Converts several scaler files into one configuration: the first file's header and `[api]`,
/// then each file's `[[group]]` in the order given. Two files for the same group name or tag
/// are refused, naming both. One file gives exactly what [`convert`] gives.
pub fn convert_all(paths: &[PathBuf]) -> color_eyre::Result<String> {
    let [first, rest @ ..] = paths else {
        bail!("import-seed needs at least one scaler file");
    };
    let one = convert(first)?;
    if rest.is_empty() {
        return Ok(one);
    }
    let mut seen: Vec<(String, String, &Path)> = Vec::new(); // (name, tag, file)
    let mut groups = String::new();
    let mut converted = vec![(first, one.clone())];
    for p in rest {
        converted.push((p, convert(p)?));
    }
    for (path, text) in &converted {
        let file = path.display();
        let at = text
            .find("\n[[group]]\n")
            .ok_or_else(|| eyre!("{file}: the conversion has no [[group]]"))?;
        let group = &text[at + 1..];
        let cfg = crate::config::parse(
            &path.with_file_name("doscale.toml"),
            text,
            &Default::default(),
        )
        .map_err(|e| eyre!("{file}: the converted configuration is not valid: {e}"))?;
        for g in &cfg.groups {
            if let Some((_, _, other)) = seen.iter().find(|(n, t, _)| *n == g.name || *t == g.tag) {
                bail!(
                    "{} and {file} both convert to the group {:?} (tag {:?}): doscale keeps one \
                     group per tag; convert them apart, or merge the two scaler files first",
                    other.display(),
                    g.name,
                    g.tag
                );
            }
            seen.push((g.name.clone(), g.tag.clone(), path));
        }
        writeln!(
            groups,
            "# from the do-scaler scaler file {}",
            c(&file.to_string())
        )?;
        groups.push_str(group);
        if !groups.ends_with("\n\n") {
            groups.push('\n');
        }
    }
    // The header of the first file, naming every file it came from.
    let header = &one[..one.find("\n[[group]]\n").expect("checked above") + 1];
    let mut lines = header.lines();
    let mut out = String::new();
    let _ = lines.next(); // "# doscale configuration converted from the do-scaler scaler file"
    let _ = lines.next(); // "#   <file>"
    writeln!(
        out,
        "# doscale configuration converted from the do-scaler scaler files"
    )?;
    for p in paths {
        writeln!(out, "#   {}", c(&p.display().to_string()))?;
    }
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.push_str(&groups);
    let out = out.trim_end().to_string() + "\n";
    crate::config::parse(
        &first.with_file_name("doscale.toml"),
        &out,
        &Default::default(),
    )
    .map_err(|e| eyre!("the merged configuration is not valid: {e}"))?;
    Ok(out)
}

struct Cx<'a> {
    file: String,
    ini: &'a Ini,
    dir: PathBuf,
}

/// A TOML literal (string, number, array) in TOML syntax.
fn lit(v: impl Into<toml::Value>) -> String {
    v.into().to_string()
}

/// A line with a trailing comment, comments aligned.
fn kv(w: &mut String, text: String, comment: &str) -> std::fmt::Result {
    writeln!(w, "{text:<32} # {comment}")
}

/// Text safe inside a `#` comment (no line breaks or control characters).
fn c(s: &str) -> String {
    s.chars()
        .map(|ch| if ch.is_control() { '?' } else { ch })
        .collect()
}

/// A policy read from its JSON file.
struct SeedPolicy {
    file: String,
    name: String,
    actions: Vec<String>,
    match_: String,
    conditions: Vec<SeedCondition>,
}

struct SeedCondition {
    name: String,
    expr: String,
    function: String,
    op: String,
    threshold: f64,
    note: Option<String>,
}

impl Cx<'_> {
    fn get(&self, section: &str, key: &str) -> color_eyre::Result<Option<String>> {
        self.ini
            .get(section, key)
            .map_err(|e| eyre!("{}: {e}", self.file))
    }

    fn need(&self, section: &str, key: &str, why: &str) -> color_eyre::Result<String> {
        match self.get(section, key)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => bail!("{}: [{section}] {key} is missing: {why}", self.file),
        }
    }

    fn number<T: std::str::FromStr>(
        &self,
        section: &str,
        key: &str,
        v: &str,
    ) -> color_eyre::Result<T> {
        v.trim().parse().map_err(|_| {
            eyre!(
                "{}: [{section}] {key} = {:?} is not a whole number",
                self.file,
                c(v)
            )
        })
    }

    /// `path` relative to `base` unless absolute.
    fn resolve(base: &Path, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            base.join(p)
        }
    }

    fn convert(&self) -> color_eyre::Result<String> {
        let tag = self.need(
            "scaler",
            "tag_name",
            "it names the tag of the droplets to scale",
        )?;
        let tag = tag.trim().to_string();
        let policy_dir = match self.get("scaler", "policy_dir")? {
            Some(d) => Self::resolve(&self.dir, d.trim()),
            None => self.dir.join("policies"),
        };
        let files = self.need("scaler", "policy_files", "it lists the policy JSON files")?;
        let mut policies = Vec::new();
        for f in files.split_whitespace() {
            policies.push(self.policy(&policy_dir.join(f))?);
        }
        let uses = |action: &str| {
            policies
                .iter()
                .any(|p| p.actions.iter().any(|a| a == action))
        };

        let mut out = String::new();
        let w = &mut out;
        writeln!(
            w,
            "# doscale configuration converted from the do-scaler scaler file"
        )?;
        writeln!(w, "#   {}", c(&self.file))?;
        writeln!(
            w,
            "# by `doscale import-seed`. Review it, then run `doscale --config FILE check`."
        )?;
        writeln!(w, "#")?;
        writeln!(w, "# The API token ([scaler] do_token) is not copied. Put it in a file readable by doscale only")?;
        writeln!(w, "# (chmod 600) and uncomment token_file below, or set DIGITALOCEAN_TOKEN, or pass the systemd")?;
        writeln!(w, "# credential \"digitalocean-token\" (LoadCredential=).")?;
        writeln!(w, "#")?;
        self.schedule_note(w)?;
        writeln!(w, "#")?;
        writeln!(w, "# Differences from do-scaler: a droplet counts toward metrics only when it is active, out of")?;
        writeln!(w, "# warmup and scraped (a condition without any value is not satisfied); scale-downs need every")?;
        writeln!(w, "# eligible droplet to report (min_reporting); cooldowns keep actions apart (do-scaler had none);")?;
        writeln!(w, "# several satisfied scale-up policies add the largest step once, not one droplet each.")?;
        writeln!(w)?;
        writeln!(w, "[api]")?;
        writeln!(w, "# token_file = \"/etc/doscale/token\"")?;
        writeln!(w)?;

        writeln!(w, "[[group]]")?;
        writeln!(w, "name = {}", lit(tag.clone()))?;
        kv(
            w,
            format!("tag = {}", lit(tag.clone())),
            "[scaler] tag_name",
        )?;
        let min_why = "doscale needs the group's lower bound (do-scaler's destroy action never goes below it)";
        let min: i64 = {
            let v = self.need(DESTROY, "min", min_why)?;
            self.number(DESTROY, "min", &v)?
        };
        let max: i64 = {
            let v = self.need(CREATE, "max", "doscale needs the group's upper bound (do-scaler's create action never goes above it)")?;
            self.number(CREATE, "max", &v)?
        };
        if min < 0 || max < min {
            bail!("{}: the bounds are not usable: min = {min} ([{DESTROY}]), max = {max} ([{CREATE}])", self.file);
        }
        kv(w, format!("min = {min}"), &format!("[{DESTROY}] min"))?;
        kv(w, format!("max = {max}"), &format!("[{CREATE}] max"))?;
        // do-scaler's max only stopped creation; doscale's is a bound it repairs toward. Said
        // in the file and on stderr: an operator must count the fleet before the first apply.
        writeln!(w, "# do-scaler used max only to stop creating; doscale destroys droplets above it (at most")?;
        writeln!(
            w,
            "# max_step_down a pass, never more than max_destroy_share): count the droplets tagged"
        )?;
        writeln!(
            w,
            "# {} before the first apply and raise max if there are more than {max}.",
            c(&tag)
        )?;
        tracing::warn!(
            "{}: max = {max}: do-scaler used max only to stop creating, doscale destroys droplets above it (at most max_step_down a pass): count the droplets tagged {:?} before the first apply and raise max if there are more",
            self.file,
            c(&tag)
        );
        kv(
            w,
            "remove = \"oldest\"".into(),
            "do-scaler destroyed the first droplet the API listed (the oldest)",
        )?;
        writeln!(w, "# do-scaler added one droplet per satisfied policy per run, with no cooldown or warmup; doscale's")?;
        writeln!(w, "# defaults apply: cooldown_up = \"3m\", cooldown_down = \"10m\", warmup = \"5m\", max_step_down = 1.")?;
        writeln!(w)?;

        self.metrics(w)?;
        if self.ini.has_section(CREATE) {
            self.template(w, &tag)?;
        } else {
            writeln!(w, "# No [{CREATE}] section: without [group.template] the group can shrink but not grow.")?;
            writeln!(w)?;
        }
        if self.ini.has_section(HEALTH) {
            self.health(w, uses(HEALTH))?;
        }

        let mut names: Vec<String> = Vec::new();
        for p in &policies {
            self.write_policy(w, p, &mut names)?;
        }

        // The result must be a configuration doscale accepts; check it here so a problem is
        // reported against the seed files rather than discovered later.
        let check_path = self.dir.join("doscale.toml");
        crate::config::parse(&check_path, &out, &Default::default()).map_err(|e| {
            eyre!(
                "{}: the converted configuration is not valid: {e}",
                self.file
            )
        })?;
        Ok(out)
    }

    fn schedule_note(&self, w: &mut String) -> color_eyre::Result<()> {
        // do-scaler's scheduler interval lives in do-scaler.cfg, beside conf.d/.
        let base = self.dir.parent().map(|p| p.join("do-scaler.cfg"));
        let interval = base.as_ref().filter(|p| p.is_file()).and_then(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let v = Ini::parse(&text)
                .ok()?
                .get("scheduler", "interval")
                .ok()??;
            v.trim().parse::<u64>().ok().map(|s| (p.clone(), s))
        });
        match interval {
            Some((p, s)) => {
                writeln!(
                    w,
                    "# do-scaler ran every {s}s ([scheduler] interval in {}).",
                    c(&p.display().to_string())
                )?;
                writeln!(w, "# doscale runs one pass per invocation: set the systemd timer to the same pace,")?;
                writeln!(w, "# OnUnitInactiveSec={s}s in doscale.timer.")?;
            }
            None => {
                writeln!(w, "# do-scaler's [scheduler] interval (do-scaler.cfg) becomes the systemd timer's pace:")?;
                writeln!(w, "# OnUnitInactiveSec= in doscale.timer.")?;
            }
        }
        Ok(())
    }

    fn metrics(&self, w: &mut String) -> color_eyre::Result<()> {
        kv(w, "[group.metrics]".into(), "[scaler.metrics]")?;
        let address = self
            .get("scaler.metrics", "address")?
            .unwrap_or_else(|| "private_ip_address".into());
        let kind = match address.trim() {
            "private_ip_address" | "private" => "private",
            "ip_address" | "public_ip_address" | "public" => "public",
            "ip_v6_address" | "ipv6" => "ipv6",
            other => bail!(
                "{}: [scaler.metrics] address = {:?}: expected private_ip_address, ip_address or ip_v6_address",
                self.file,
                c(other)
            ),
        };
        kv(w, format!("address = {}", lit(kind)), &c(address.trim()))?;
        let port: u16 = match self.get("scaler.metrics", "port")? {
            Some(p) => self.number("scaler.metrics", "port", &p)?,
            None => 9110,
        };
        writeln!(w, "port = {port}")?;
        writeln!(w)?;
        Ok(())
    }

    fn template(&self, w: &mut String, tag: &str) -> color_eyre::Result<()> {
        let droplet = self.need(
            CREATE,
            "droplet",
            "it names the droplet JSON file new droplets are created from",
        )?;
        let droplet_dir = match self.get(CREATE, "droplet_dir")? {
            Some(d) => Self::resolve(&self.dir, d.trim()),
            None => self.dir.join("droplets"),
        };
        let path = droplet_dir.join(droplet.trim());
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).wrap_err_with(|| {
            format!(
                "{}: reading the droplet file {shown} named by [{CREATE}] droplet",
                self.file
            )
        })?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| eyre!("{shown}: not valid JSON: {e}"))?;
        let Some(obj) = json.as_object() else {
            bail!("{shown}: expected a JSON object of droplet attributes")
        };
        let string = |key: &str| -> color_eyre::Result<Option<String>> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => bail!("{shown}: \"{key}\" should be a string, found {other}"),
            }
        };
        kv(w, "[group.template]".into(), &c(&shown))?;
        let mut notes = Vec::new();
        let name = string("name")?
            .ok_or_else(|| eyre!("{shown}: \"name\" is missing: new droplets need a name"))?;
        let mut tname = name.replace("{}", "{n}").replace("{0}", "{n}");
        if tname.contains("{n}") {
            writeln!(w, "# do-scaler filled {:?} with the droplet count + 1, which repeats names after a scale-down;", c(&name))?;
            writeln!(w, "# {{n}} is the smallest number not in use in the group.")?;
        } else {
            tname = format!("{tname}-{{n}}");
            notes.push(format!(
                "the name {:?} has no {{}}: \"-{{n}}\" was added so that names stay unique",
                c(&name)
            ));
        }
        writeln!(w, "name = {}", lit(tname))?;
        let region = string("region")?.ok_or_else(|| eyre!("{shown}: \"region\" is missing"))?;
        writeln!(w, "region = {}", lit(region))?;
        let size = match string("size_slug")? {
            Some(s) => s,
            None => string("size")?.ok_or_else(|| eyre!("{shown}: \"size_slug\" is missing"))?,
        };
        kv(w, format!("size = {}", lit(size)), "size_slug")?;
        match obj.get("image") {
            Some(Value::String(s)) => writeln!(w, "image = {}", lit(s.clone()))?,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|i| i > 0) => {
                writeln!(w, "image = {}", n)?
            }
            _ => bail!("{shown}: \"image\" should be an image id or slug"),
        }
        if let Some(keys) = obj.get("ssh_keys") {
            let Some(keys) = keys.as_array() else {
                bail!("{shown}: \"ssh_keys\" should be a list")
            };
            let mut out = Vec::new();
            for k in keys {
                match k {
                    Value::Number(n) if n.as_i64().is_some() => out.push(n.to_string()),
                    Value::String(s) if s.starts_with("ssh-") || s.starts_with("ecdsa-") => notes.push(
                        "a public key in ssh_keys was left out: add it to the account and list its fingerprint or id".into(),
                    ),
                    Value::String(s) => out.push(lit(s.clone())),
                    other => bail!("{shown}: ssh_keys: {other} is neither a key id nor a fingerprint"),
                }
            }
            writeln!(w, "ssh_keys = [{}]", out.join(", "))?;
        }
        let mut tags: Vec<String> = match obj.get("tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(String::from)
                        .ok_or_else(|| eyre!("{shown}: tags: {t} is not a string"))
                })
                .collect::<color_eyre::Result<_>>()?,
            Some(_) => bail!("{shown}: \"tags\" should be a list of strings"),
        };
        if !tags.iter().any(|t| t == tag) {
            tags.insert(0, tag.to_string());
            notes.push(format!("the group tag {:?} was added to tags: without it new droplets would not join the group", c(tag)));
        }
        writeln!(w, "tags = {}", lit(tags))?;
        for key in ["monitoring", "ipv6", "backups"] {
            match obj.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => writeln!(w, "{key} = {b}")?,
                Some(other) => bail!("{shown}: \"{key}\" should be true or false, found {other}"),
            }
        }
        if let Some(v) = string("vpc_uuid")? {
            writeln!(w, "vpc_uuid = {}", lit(v))?;
        }
        for (key, _) in obj {
            let note = match key.as_str() {
                "name" | "region" | "size_slug" | "size" | "image" | "ssh_keys" | "tags" | "monitoring" | "ipv6"
                | "backups" | "vpc_uuid" => continue,
                "private_networking" => "private_networking has no equivalent: every new droplet gets a private (VPC) address; set vpc_uuid to choose the VPC".to_string(),
                "user_data" => "user_data: write it to a file and set user_data_file to its path".to_string(),
                "volumes" => "volumes have no equivalent: attach them in a hook (after_create)".to_string(),
                "token" => "token: not copied (see the top of this file)".to_string(),
                other => format!("{} has no equivalent and was left out", c(other)),
            };
            notes.push(note);
        }
        for n in notes {
            writeln!(w, "# {n}")?;
        }
        writeln!(w)?;
        Ok(())
    }

    fn health(&self, w: &mut String, used: bool) -> color_eyre::Result<()> {
        kv(w, "[group.health_check]".into(), &format!("[{HEALTH}]"))?;
        if !used {
            writeln!(
                w,
                "# No policy ran {HEALTH} in do-scaler; doscale checks every created droplet."
            )?;
        }
        if let Some(ports) = self.get(HEALTH, "ports")? {
            let ports: Vec<String> = ports
                .split_whitespace()
                .map(|p| {
                    self.number::<u16>(HEALTH, "ports", p)
                        .map(|p| p.to_string())
                })
                .collect::<color_eyre::Result<_>>()?;
            writeln!(w, "ports = [{}]", ports.join(", "))?;
        }
        for key in ["timeout", "interval"] {
            if let Some(v) = self.get(HEALTH, key)? {
                let s: u64 = self.number(HEALTH, key, &v)?;
                writeln!(w, "{key} = \"{s}s\"")?;
            }
        }
        if let Some(v) = self.get(HEALTH, "max_tries")? {
            let n: u32 = self.number(HEALTH, "max_tries", &v)?;
            writeln!(w, "max_tries = {n}")?;
        }
        if let Some(a) = self.get(HEALTH, "address")? {
            writeln!(
                w,
                "# address = {}: doscale checks the droplet at the address kind of [group.metrics]",
                c(a.trim())
            )?;
        }
        writeln!(w)?;
        Ok(())
    }

    /// Reads one policy JSON file.
    fn policy(&self, path: &Path) -> color_eyre::Result<SeedPolicy> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).wrap_err_with(|| {
            format!(
                "{}: reading the policy file {shown} listed in [scaler] policy_files",
                self.file
            )
        })?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| eyre!("{shown}: not valid JSON: {e}"))?;
        let str_of = |v: &Value, key: &str, place: &str| -> color_eyre::Result<String> {
            match v.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => bail!("{shown}: {place}\"{key}\" should be a string, found {other}"),
                None => bail!("{shown}: {place}\"{key}\" is missing"),
            }
        };
        let name = str_of(&json, "name", "")?;
        let actions: Vec<String> = match json.get("actions") {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| eyre!("{shown}: \"actions\": {x} is not an action name"))
                })
                .collect::<color_eyre::Result<_>>()?,
            _ => bail!("{shown}: \"actions\" should be a list of action names"),
        };
        let match_ = match json.get("match") {
            None => "all".to_string(),
            Some(_) => str_of(&json, "match", "")?,
        };
        if match_ != "all" && match_ != "any" {
            bail!(
                "{shown}: \"match\" is {:?}: expected \"all\" or \"any\"",
                c(&match_)
            );
        }
        let Some(conds) = json.get("conditions").and_then(Value::as_array) else {
            bail!("{shown}: \"conditions\" should be a list");
        };
        let mut conditions = Vec::new();
        for (i, cj) in conds.iter().enumerate() {
            let cname = match cj.get("name") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                _ => format!("condition{}", i + 1),
            };
            let place = format!("condition {:?}: ", c(&cname));
            let Some(samples) = cj
                .get("samples")
                .and_then(Value::as_array)
                .filter(|s| !s.is_empty())
            else {
                bail!("{shown}: {place}\"samples\" should be a non-empty list");
            };
            let mut names = Vec::new();
            for s in samples {
                let n = str_of(s, "name", &format!("{place}a sample's "))?;
                let valid = n
                    .chars()
                    .next()
                    .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
                    && n.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
                if !valid {
                    bail!("{shown}: {place}sample {:?} is not a metric name", c(&n));
                }
                names.push(n);
            }
            let reducer = match cj.get("reducer") {
                None | Some(Value::Null) if names.len() == 1 => "+".to_string(),
                None | Some(Value::Null) => {
                    bail!("{shown}: {place}several samples need a \"reducer\" (+ - * /)")
                }
                Some(_) => str_of(cj, "reducer", &place)?,
            };
            if !matches!(reducer.as_str(), "+" | "-" | "*" | "/") {
                bail!(
                    "{shown}: {place}reducer {:?}: expected one of + - * /",
                    c(&reducer)
                );
            }
            let op = str_of(cj, "operator", &place)?;
            if !matches!(op.as_str(), "<" | "<=" | ">" | ">=" | "==") {
                bail!(
                    "{shown}: {place}operator {:?}: expected one of < <= > >= ==",
                    c(&op)
                );
            }
            let function = str_of(cj, "function", &place)?;
            if !matches!(function.as_str(), "min" | "max" | "median" | "mean") {
                bail!(
                    "{shown}: {place}function {:?}: expected one of min max median mean",
                    c(&function)
                );
            }
            let threshold = match cj.get("threshold") {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|t| t.is_finite())
            .ok_or_else(|| {
                eyre!("{shown}: {place}\"threshold\" should be a number (or a string holding one)")
            })?;
            // The samples joined by the reducer: PromQL evaluates `a - b - c` left to right,
            // as Python's reduce does.
            let expr = names.join(&format!(" {reducer} "));
            let note = crate::expr::parse(&expr).err().map(|e| {
                format!(
                    "do-scaler compared the first series of each sample; doscale cannot: {}",
                    c(&e.msg)
                )
            });
            conditions.push(SeedCondition {
                name: cname,
                expr,
                function,
                op,
                threshold,
                note,
            });
        }
        Ok(SeedPolicy {
            file: shown,
            name,
            actions,
            match_,
            conditions,
        })
    }

    fn write_policy(
        &self,
        w: &mut String,
        p: &SeedPolicy,
        names: &mut Vec<String>,
    ) -> color_eyre::Result<()> {
        let up = p.actions.iter().any(|a| a == CREATE);
        let down = p.actions.iter().any(|a| a == DESTROY);
        let actions = p
            .actions
            .iter()
            .map(|a| c(a))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(w, "# {} (actions: {actions})", c(&p.file))?;
        for a in p
            .actions
            .iter()
            .filter(|a| ![CREATE, DESTROY, HEALTH].contains(&a.as_str()))
        {
            let on = if down {
                "before_destroy"
            } else {
                "after_create"
            };
            writeln!(
                w,
                "# The custom action {:?} has no equivalent: run it as a hook, for example",
                c(a)
            )?;
            writeln!(w, "#   [[group.hook]]")?;
            writeln!(w, "#   on = \"{on}\"          # before_create | after_create | before_destroy | after_destroy")?;
            writeln!(w, "#   command = [\"/usr/local/bin/{}\", \"{{id}}\"]   # the event is given as JSON on stdin", c(a))?;
        }
        let scale = match (up, down) {
            (true, false) => "up",
            (false, true) => "down",
            (true, true) => {
                writeln!(w, "# This policy both creates and destroys droplets, which doscale cannot express: it is left out.")?;
                writeln!(w)?;
                return Ok(());
            }
            (false, false) => {
                writeln!(w, "# This policy neither creates nor destroys droplets: it is left out (see the hook above).")?;
                writeln!(w)?;
                return Ok(());
            }
        };
        let live: Vec<&SeedCondition> =
            p.conditions.iter().filter(|cd| cd.note.is_none()).collect();
        // Policy names are unique in a group; the seed's file names make them so, its
        // "name" fields need not.
        let mut name = if p.name.trim().is_empty() {
            "policy".to_string()
        } else {
            p.name.clone()
        };
        if names.contains(&name) {
            let base = name.clone();
            let mut i = 2;
            while names.contains(&name) {
                name = format!("{base}-{i}");
                i += 1;
            }
            writeln!(
                w,
                "# renamed from {:?}: another policy has that name",
                c(&base)
            )?;
        }
        names.push(name.clone());
        let commented = live.is_empty() || (p.match_ == "all" && live.len() < p.conditions.len());
        let prefix = if commented { "# " } else { "" };
        if commented {
            writeln!(w, "# Left out (commented) until its conditions are fixed:")?;
        }
        writeln!(w, "{prefix}[[group.policy]]")?;
        writeln!(w, "{prefix}name = {}", lit(name))?;
        writeln!(w, "{prefix}scale = \"{scale}\"")?;
        kv(
            w,
            format!("{prefix}step = 1"),
            "do-scaler's actions add or remove one droplet",
        )?;
        writeln!(w, "{prefix}match = \"{}\"", p.match_)?;
        writeln!(w, "{prefix}conditions = [")?;
        let mut cnames: Vec<String> = Vec::new();
        for cd in &p.conditions {
            let mut cname = cd.name.clone();
            let mut i = 2;
            while cnames.contains(&cname) {
                cname = format!("{}-{i}", cd.name);
                i += 1;
            }
            cnames.push(cname.clone());
            let line = format!(
                "{{ name = {}, expr = {}, function = \"{}\", op = \"{}\", threshold = {} }},",
                lit(cname),
                lit(cd.expr.clone()),
                cd.function,
                cd.op,
                lit(cd.threshold)
            );
            match &cd.note {
                None => writeln!(w, "{prefix}  {line}")?,
                Some(n) => {
                    writeln!(w, "  # {n}")?;
                    writeln!(w, "  # {line}")?;
                }
            }
        }
        writeln!(w, "{prefix}]")?;
        writeln!(w)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
