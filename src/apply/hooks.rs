//! Hooks: the operator's commands run before and after a create or destroy, with the event as
//! JSON on stdin and a minimal environment. A hook is a real process: its timeout is measured
//! on the wall clock whatever clock the pass runs on.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{Group, Hook, HookEvent};
use crate::do_api::model::Droplet;

/// Values substituted into hook arguments.
pub struct HookVars {
    pub group: String,
    pub id: String,
    pub name: String,
    pub private_ip: String,
}

impl HookVars {
    pub(super) fn group(g: &Group) -> Self {
        HookVars {
            group: g.name.clone(),
            id: String::new(),
            name: String::new(),
            private_ip: String::new(),
        }
    }
    pub(super) fn droplet(g: &Group, d: &Droplet) -> Self {
        HookVars {
            group: g.name.clone(),
            id: d.id.to_string(),
            name: d.name.clone(),
            private_ip: d
                .address(crate::model::AddressKind::Private)
                .unwrap_or_default(),
        }
    }
}

/// Runs every hook of `event`; the first failure stops and is returned.
pub(super) fn run_hooks(
    group: &Group,
    event: HookEvent,
    payload: &serde_json::Value,
    vars: &HookVars,
) -> std::result::Result<(), String> {
    for h in group.hooks.iter().filter(|h| h.on == event) {
        run_hook(h, payload, vars)?;
    }
    Ok(())
}

/// Variables a hook inherits from doscale's environment, when set (`LC_*` as well). Nothing
/// else is passed on: not the token (`DIGITALOCEAN_TOKEN`), not `CREDENTIALS_DIRECTORY` (where
/// systemd keeps it), not whatever else the service's environment holds.
pub const HOOK_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR",
];

/// The environment of a hook: [`HOOK_ENV`] and `LC_*` from `inherited`, then the event's own
/// `DOSCALE_EVENT`, `DOSCALE_GROUP` and, for a droplet's event, `DOSCALE_DROPLET_ID`,
/// `DOSCALE_DROPLET_NAME`, `DOSCALE_PRIVATE_IP`.
pub fn hook_env(
    inherited: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    event: &str,
    vars: &HookVars,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = inherited
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| HOOK_ENV.contains(&k) || k.starts_with("LC_"))
        })
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    let mut own = vec![("DOSCALE_EVENT", event), ("DOSCALE_GROUP", &vars.group)];
    if !vars.id.is_empty() {
        own.extend([
            ("DOSCALE_DROPLET_ID", vars.id.as_str()),
            ("DOSCALE_DROPLET_NAME", vars.name.as_str()),
            ("DOSCALE_PRIVATE_IP", vars.private_ip.as_str()),
        ]);
    }
    env.extend(own.into_iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// One hook: the event as JSON on stdin, `{id}` `{name}` `{private_ip}` `{group}` in the
/// arguments, a minimal environment ([`hook_env`]), killed after its timeout.
pub fn run_hook(
    h: &Hook,
    payload: &serde_json::Value,
    vars: &HookVars,
) -> std::result::Result<(), String> {
    let subst = |s: &str| {
        s.replace("{id}", &vars.id)
            .replace("{name}", &vars.name)
            .replace("{private_ip}", &vars.private_ip)
            .replace("{group}", &vars.group)
    };
    let program = subst(&h.command[0]);
    let event = payload["event"].as_str().unwrap_or_default();
    let mut child = Command::new(&program)
        .args(h.command[1..].iter().map(|a| subst(a)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env_clear()
        .envs(hook_env(std::env::vars_os(), event, vars))
        .spawn()
        .map_err(|e| format!("hook {program}: cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.to_string().as_bytes());
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = (&mut e).take(400).read_to_string(&mut err);
                }
                let err = crate::output::sanitize(err.trim());
                return Err(format!(
                    "hook {program} exited with {}{}",
                    status
                        .code()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "a signal".into()),
                    if err.is_empty() {
                        String::new()
                    } else {
                        format!(": {err}")
                    }
                ));
            }
            Ok(None) if started.elapsed() >= h.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "hook {program} did not finish within {}: killed",
                    humantime::format_duration(h.timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("hook {program}: {e}")),
        }
    }
}
