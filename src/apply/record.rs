//! [`Recorder`]: the API as apply sees it, keeping every request that changes something (the
//! `POST`s and `DELETE`s, with their bodies) for the report. In a real run it sends them on;
//! in a dry run it sends nothing and answers as if each had succeeded, so `--dry-run` prints
//! the requests of the very code that would send them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::do_api::model::{Action, CreateRequest, CreateResponse, Droplet};
use crate::do_api::{ApiError, Deleted, DoApi};

use super::ShownRequest;

pub struct Recorder<'a> {
    inner: &'a dyn DoApi,
    send: bool,
    log: Mutex<Vec<ShownRequest>>,
    /// Ids of the droplets a dry run pretends to make (counting down from the top, so they
    /// cannot be taken for real ones).
    next_id: AtomicU64,
}

impl<'a> Recorder<'a> {
    /// Records and sends on to `inner` (`send`), or records only.
    pub fn new(inner: &'a dyn DoApi, send: bool) -> Self {
        Recorder {
            inner,
            send,
            log: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(u64::MAX),
        }
    }

    /// The requests recorded so far, in order.
    pub fn requests(&self) -> Vec<ShownRequest> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note(&self, r: ShownRequest) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(r);
    }
}

impl DoApi for Recorder<'_> {
    fn list_by_tag(
        &self,
        tag: &str,
        on_page: &mut dyn FnMut(Vec<Droplet>),
    ) -> Result<(), ApiError> {
        self.inner.list_by_tag(tag, on_page)
    }

    fn get_droplet(&self, id: u64) -> Result<Option<Droplet>, ApiError> {
        self.inner.get_droplet(id)
    }

    fn create(&self, req: &CreateRequest) -> Result<CreateResponse, ApiError> {
        self.note(ShownRequest {
            method: "POST".into(),
            path: "/v2/droplets".into(),
            body: serde_json::to_value(req).unwrap_or_default(),
        });
        if self.send {
            return self.inner.create(req);
        }
        Ok(CreateResponse {
            droplets: req
                .names
                .iter()
                .map(|n| Droplet {
                    id: self.next_id.fetch_sub(1, Ordering::Relaxed),
                    name: n.clone(),
                    status: "new".into(),
                    created_at: String::new(),
                    tags: req.tags.clone(),
                    networks: Default::default(),
                })
                .collect(),
            links: Default::default(),
        })
    }

    fn delete(&self, id: u64) -> Result<Deleted, ApiError> {
        self.note(ShownRequest {
            method: "DELETE".into(),
            path: format!("/v2/droplets/{id}"),
            body: serde_json::Value::Null,
        });
        if self.send {
            return self.inner.delete(id);
        }
        Ok(Deleted::Deleted)
    }

    fn get_action(&self, id: u64) -> Result<Action, ApiError> {
        self.inner.get_action(id)
    }

    fn error_count(&self) -> u64 {
        self.inner.error_count()
    }
}
