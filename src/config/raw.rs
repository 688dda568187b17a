//! The raw layer of the configuration: what the TOML says, pure serde with
//! `deny_unknown_fields`. The spans (`Spanned`) are kept for the messages of validation;
//! keys that take one of a few words are enums, so serde refuses another word.

use serde::Deserialize;
use toml::Spanned;

use super::{HookEvent, Match, OnUnhealthy, Op, Remove, Scale};
use crate::model::AddressKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) state_file: Option<Spanned<String>>,
    pub(super) metrics_textfile: Option<Spanned<String>>,
    pub(super) plan_max_age: Option<Spanned<String>>,
    pub(super) max_scrape_age: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) group: Vec<Spanned<RawGroup>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) url: Option<Spanned<String>>,
    pub(super) token_file: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) consistency_window: Option<Spanned<String>>,
    pub(super) consistency_listings: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) name: Spanned<String>,
    pub(super) tag: Spanned<String>,
    pub(super) min: Spanned<i64>,
    pub(super) max: Spanned<i64>,
    pub(super) cooldown_up: Option<Spanned<String>>,
    pub(super) cooldown_down: Option<Spanned<String>>,
    pub(super) warmup: Option<Spanned<String>>,
    pub(super) max_step_up: Option<Spanned<i64>>,
    pub(super) max_step_down: Option<Spanned<i64>>,
    pub(super) remove: Option<Remove>,
    pub(super) min_reporting: Option<Spanned<f64>>,
    pub(super) max_destroy_share: Option<Spanned<f64>>,
    pub(super) protect_tag: Option<Spanned<String>>,
    pub(super) on_unhealthy: Option<OnUnhealthy>,
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    pub(super) template: Option<Spanned<RawTemplate>>,
    pub(super) health_check: Option<RawHealth>,
    #[serde(default)]
    pub(super) policy: Vec<Spanned<RawPolicy>>,
    pub(super) target: Option<Spanned<RawTarget>>,
    #[serde(default)]
    pub(super) hook: Vec<Spanned<RawHook>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) address: Option<RawAddress>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) concurrency: Option<Spanned<i64>>,
    pub(super) max_body: Option<Spanned<String>>,
    pub(super) extra_metrics: Option<Vec<Spanned<String>>>,
    pub(super) max_series: Option<Spanned<i64>>,
    pub(super) source: Option<Spanned<RawSource>>,
    pub(super) prometheus: Option<Spanned<RawPrometheus>>,
    pub(super) digitalocean: Option<Spanned<super::digitalocean::RawDigitalOcean>>,
}

/// `[group.metrics] source`: where the group's metrics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawSource {
    Scrape,
    Prometheus,
    Digitalocean,
}

/// `[group.metrics.prometheus]`: the query API of Prometheus or a compatible engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrometheus {
    pub(super) url: Option<Spanned<String>>,
    pub(super) droplet_label: Option<Spanned<String>>,
    pub(super) bearer_token_file: Option<Spanned<String>>,
    pub(super) basic_auth_file: Option<Spanned<String>>,
    pub(super) headers: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) allow_insecure_http: Option<bool>,
}

/// `[group.metrics] address`: [`AddressKind`] by its name, or by the API's name of the field.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawAddress {
    #[serde(alias = "private_ip_address")]
    Private,
    #[serde(alias = "public_ip_address")]
    Public,
    Ipv6,
}

impl From<RawAddress> for AddressKind {
    fn from(a: RawAddress) -> AddressKind {
        match a {
            RawAddress::Private => AddressKind::Private,
            RawAddress::Public => AddressKind::Public,
            RawAddress::Ipv6 => AddressKind::Ipv6,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplate {
    pub(super) name: Option<Spanned<String>>,
    pub(super) region: Spanned<String>,
    pub(super) size: Spanned<String>,
    pub(super) image: Spanned<toml::Value>,
    #[serde(default)]
    pub(super) ssh_keys: Vec<Spanned<toml::Value>>,
    pub(super) vpc_uuid: Option<String>,
    pub(super) user_data_file: Option<Spanned<String>>,
    pub(super) tags: Option<Spanned<Vec<String>>>,
    pub(super) monitoring: Option<bool>,
    pub(super) ipv6: Option<bool>,
    pub(super) backups: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    pub(super) ports: Option<Vec<Spanned<i64>>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) max_tries: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub(super) name: Spanned<String>,
    pub(super) scale: Scale,
    pub(super) step: Option<Spanned<i64>>,
    #[serde(rename = "match")]
    pub(super) match_: Option<Match>,
    pub(super) conditions: Vec<Spanned<RawCondition>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCondition {
    pub(super) name: Spanned<String>,
    pub(super) expr: Spanned<String>,
    pub(super) function: Spanned<String>,
    pub(super) op: Op,
    pub(super) threshold: Spanned<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) expr: Spanned<String>,
    pub(super) function: Option<Spanned<String>>,
    pub(super) value: Spanned<f64>,
    pub(super) tolerance: Option<Spanned<f64>>,
    pub(super) stabilization_down: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    pub(super) on: HookEvent,
    pub(super) command: Spanned<Vec<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}
