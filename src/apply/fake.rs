//! [`FakeApi`]: an in-memory DigitalOcean for unit tests of apply (and any caller that wants
//! a fleet without HTTP): droplets in a map, and scriptable trouble — a create refused, failed
//! or timed out (made or not), droplets the listings show late, droplets slow to turn active,
//! failing listings, lookups and deletes. Every call is logged. No clock: slowness is counted
//! in polls, so it behaves the same on a virtual clock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::do_api::model::{Action, CreateRequest, CreateResponse, Droplet, NetworkV4, Networks};
use crate::do_api::{ApiError, Deleted, DoApi};

/// What the next `POST /v2/droplets` does instead of succeeding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateFault {
    /// Answered with this HTTP status; nothing is made.
    Status(u16),
    /// The droplets are made, but the answer is lost (a timeout): the outcome is unknown.
    TimeoutMade,
    /// Timed out before the API did anything: nothing is made, the outcome is unknown.
    TimeoutNotMade,
    /// Made and answered, but the create action errors: the droplets vanish (404) before
    /// turning active.
    ActionErrors,
}

#[derive(Default)]
struct Fleet {
    droplets: BTreeMap<u64, Droplet>,
    /// Observations (a listing or lookup showing it) left before a droplet turns active.
    activation: BTreeMap<u64, u32>,
    /// Listings left that do not show a droplet yet.
    hidden: BTreeMap<u64, u32>,
    /// Droplets whose create action errored: gone at their first observation.
    doomed: Vec<u64>,
    next_id: u64,
    create_faults: VecDeque<CreateFault>,
    delete_faults: VecDeque<u16>,
    list_failures: u32,
    lookup_failures: u32,
    /// Observations before a new droplet turns active (`u32::MAX`: never).
    activate_after: u32,
    /// Listings that miss a new droplet.
    list_lag: u32,
    calls: Vec<String>,
}

/// The in-memory API. New droplets get ids from 1001 up, a private address 10.0.x.y, and the
/// request's tags.
pub struct FakeApi {
    fleet: Mutex<Fleet>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi {
            fleet: Mutex::new(Fleet {
                next_id: 1001,
                ..Default::default()
            }),
        }
    }
}

fn status_error(method: &str, path: String, status: u16) -> ApiError {
    ApiError::Status {
        method: method.into(),
        path,
        status,
        id: None,
        message: None,
        request_id: None,
    }
}

fn timeout(method: &str, path: String) -> ApiError {
    ApiError::Transport {
        method: method.into(),
        path,
        msg: "timed out".into(),
    }
}

impl FakeApi {
    pub fn new() -> Self {
        Self::default()
    }

    fn fleet(&self) -> MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a droplet as it stands now; returns its id.
    pub fn add(&self, name: &str, status: &str, tags: &[&str]) -> u64 {
        let mut f = self.fleet();
        let id = f.next_id;
        f.next_id += 1;
        f.droplets.insert(
            id,
            droplet(
                id,
                name,
                status,
                tags.iter().map(|t| t.to_string()).collect(),
            ),
        );
        id
    }

    /// Removes a droplet (destroyed by hand): its id answers 404 from now on.
    pub fn remove(&self, id: u64) {
        self.fleet().droplets.remove(&id);
    }

    /// The next creates fail as scripted, one fault each, in order.
    pub fn fail_creates(&self, faults: &[CreateFault]) {
        self.fleet().create_faults.extend(faults);
    }

    /// The next deletes answer these HTTP statuses, one each, in order.
    pub fn fail_deletes(&self, statuses: &[u16]) {
        self.fleet().delete_faults.extend(statuses);
    }

    /// The next `n` listings fail (HTTP 500).
    pub fn fail_listings(&self, n: u32) {
        self.fleet().list_failures = n;
    }

    /// The next `n` lookups by id fail (HTTP 500).
    pub fn fail_lookups(&self, n: u32) {
        self.fleet().lookup_failures = n;
    }

    /// New droplets turn active after being observed (listed or looked up) `n` times;
    /// `u32::MAX` never. 0 (the default): active at once.
    pub fn activate_after(&self, n: u32) {
        self.fleet().activate_after = n;
    }

    /// New droplets are missing from the next `n` listings (the API's eventual consistency).
    pub fn list_lag(&self, n: u32) {
        self.fleet().list_lag = n;
    }

    /// Every call so far: `POST names`, `DELETE id`, `LIST tag`, `GET id`.
    pub fn calls(&self) -> Vec<String> {
        self.fleet().calls.clone()
    }

    /// The calls that change something (`POST`, `DELETE`).
    pub fn mutations(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.starts_with("POST") || c.starts_with("DELETE"))
            .collect()
    }

    /// Every droplet there is now, by id.
    pub fn droplets(&self) -> Vec<Droplet> {
        self.fleet().droplets.values().cloned().collect()
    }
}

fn droplet(id: u64, name: &str, status: &str, tags: Vec<String>) -> Droplet {
    Droplet {
        id,
        name: name.into(),
        status: status.into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        tags,
        networks: Networks {
            v4: vec![NetworkV4 {
                ip_address: format!("10.0.{}.{}", id / 256 % 256, id % 256),
                netmask: None,
                gateway: None,
                kind: "private".into(),
            }],
            v6: vec![],
        },
    }
}

impl Fleet {
    /// A droplet seen by a listing or lookup: the action errored (gone), or one step nearer
    /// to active.
    fn observe(&mut self, id: u64) -> Option<Droplet> {
        if let Some(i) = self.doomed.iter().position(|d| *d == id) {
            self.doomed.remove(i);
            self.droplets.remove(&id);
            return None;
        }
        if let Some(left) = self.activation.get_mut(&id) {
            if *left == u32::MAX {
            } else if *left <= 1 {
                self.activation.remove(&id);
                if let Some(d) = self.droplets.get_mut(&id) {
                    d.status = "active".into();
                }
            } else {
                *left -= 1;
            }
        }
        self.droplets.get(&id).cloned()
    }
}

impl DoApi for FakeApi {
    fn list_by_tag(
        &self,
        tag: &str,
        on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> Result<(), ApiError> {
        let mut f = self.fleet();
        f.calls.push(format!("LIST {tag}"));
        if f.list_failures > 0 {
            f.list_failures -= 1;
            return Err(status_error(
                "GET",
                format!("/v2/droplets?tag_name={tag}"),
                500,
            ));
        }
        let ids: Vec<u64> = f
            .droplets
            .values()
            .filter(|d| d.tags.iter().any(|t| t == tag))
            .map(|d| d.id)
            .collect();
        let mut page = Vec::new();
        for id in ids {
            if let Some(left) = f.hidden.get_mut(&id) {
                *left -= 1;
                if *left == 0 {
                    f.hidden.remove(&id);
                }
                continue;
            }
            if let Some(d) = f.observe(id) {
                page.push(d);
            }
        }
        drop(f);
        on_page(page);
        Ok(())
    }

    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError> {
        let mut f = self.fleet();
        f.calls.push(format!("GET {id}"));
        if f.lookup_failures > 0 {
            f.lookup_failures -= 1;
            return Err(status_error("GET", format!("/v2/droplets/{id}"), 500));
        }
        Ok(f.observe(id))
    }

    fn create(&self, req: &CreateRequest) -> Result<CreateResponse, ApiError> {
        let mut f = self.fleet();
        f.calls.push(format!("POST {}", req.names.join(",")));
        let fault = f.create_faults.pop_front();
        let path = || "/v2/droplets".to_string();
        match fault {
            Some(CreateFault::Status(s)) => return Err(status_error("POST", path(), s)),
            Some(CreateFault::TimeoutNotMade) => return Err(timeout("POST", path())),
            _ => {}
        }
        let mut made = Vec::new();
        for n in &req.names {
            let id = f.next_id;
            f.next_id += 1;
            let d = droplet(id, n, "new", req.tags.clone());
            f.droplets.insert(id, d.clone());
            let polls = f.activate_after.max(1);
            f.activation.insert(id, polls);
            if f.list_lag > 0 {
                let lag = f.list_lag;
                f.hidden.insert(id, lag);
            }
            if fault == Some(CreateFault::ActionErrors) {
                f.doomed.push(id);
            }
            made.push(d);
        }
        if fault == Some(CreateFault::TimeoutMade) {
            return Err(timeout("POST", path()));
        }
        Ok(CreateResponse {
            droplets: made,
            links: Default::default(),
        })
    }

    fn delete(&self, id: u64) -> Result<Deleted, ApiError> {
        let mut f = self.fleet();
        f.calls.push(format!("DELETE {id}"));
        if let Some(s) = f.delete_faults.pop_front() {
            return Err(status_error("DELETE", format!("/v2/droplets/{id}"), s));
        }
        Ok(match f.droplets.remove(&id) {
            Some(_) => Deleted::Deleted,
            None => Deleted::AlreadyGone,
        })
    }

    fn get_action(&self, id: u64) -> Result<Action, ApiError> {
        Err(status_error("GET", format!("/v2/actions/{id}"), 404))
    }
}
