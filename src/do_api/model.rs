//! DigitalOcean API v2 shapes that doscale reads and writes, following
//! `tests/fixtures/digitalocean-openapi/` (schemas `droplet`, `network_v4`, `network_v6`,
//! `droplet_create`, `droplet_multi_create`, `error`, `action`). Fields doscale does not
//! need are not modelled on the way in (serde ignores them) and the simulator fills in
//! the required ones on the way out.

use serde::{Deserialize, Serialize};

use crate::model::AddressKind;

/// One droplet as listed by `GET /v2/droplets` (only what doscale needs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Droplet {
    pub id: u64,
    pub name: String,
    /// `new`, `active`, `off` or `archive`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub networks: Networks,
    /// The droplet's CPUs (the monitoring source shares its CPU seconds among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Networks {
    #[serde(default)]
    pub v4: Vec<NetworkV4>,
    #[serde(default)]
    pub v6: Vec<NetworkV6>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkV4 {
    pub ip_address: String,
    #[serde(default)]
    pub netmask: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    /// `public` or `private`.
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkV6 {
    pub ip_address: String,
    #[serde(default)]
    pub netmask: Option<u32>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `GET /v2/droplets` response.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DropletList {
    pub droplets: Vec<Droplet>,
    #[serde(default)]
    pub links: Links,
    #[serde(default)]
    pub meta: Option<Meta>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Links {
    #[serde(default)]
    pub pages: Option<Pages>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Pages {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Meta {
    pub total: u64,
}

/// `GET /v2/droplets/{id}` response.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DropletOne {
    pub droplet: Droplet,
}

/// The body of `POST /v2/droplets` (schema `droplet_multi_create`: `names` instead of
/// `name`). Optional fields are omitted when unset so the body stays minimal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRequest {
    pub names: Vec<String>,
    pub region: String,
    pub size: String,
    pub image: serde_json::Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_uuid: Option<String>,
}

/// `POST /v2/droplets` response for several names (`droplet_multi_create_response`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CreateResponse {
    pub droplets: Vec<Droplet>,
    #[serde(default)]
    pub links: CreateLinks,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CreateLinks {
    #[serde(default)]
    pub actions: Vec<ActionLink>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ActionLink {
    pub id: u64,
    pub rel: String,
    pub href: String,
}

/// `GET /v2/actions/{id}` response.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ActionOne {
    pub action: Action,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Action {
    pub id: u64,
    /// `in-progress`, `completed` or `errored`.
    pub status: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub resource_id: Option<u64>,
    #[serde(default)]
    pub resource_type: Option<String>,
}

/// The API's error body (schema `error`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ApiErrorBody {
    pub id: String,
    pub message: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl Droplet {
    /// The address doscale scrapes, by `[group.metrics] address`.
    pub fn address(&self, which: AddressKind) -> Option<String> {
        match which {
            AddressKind::Private => self
                .networks
                .v4
                .iter()
                .find(|n| n.kind == "private")
                .map(|n| n.ip_address.clone()),
            AddressKind::Public => self
                .networks
                .v4
                .iter()
                .find(|n| n.kind == "public")
                .map(|n| n.ip_address.clone()),
            AddressKind::Ipv6 => self
                .networks
                .v6
                .iter()
                .find(|n| n.kind == "public")
                .map(|n| n.ip_address.clone()),
        }
    }
}
