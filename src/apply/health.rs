//! The health check of a new droplet, behind [`HealthProbe`]: one try of the check on one
//! droplet. apply makes `max_tries` rounds `interval` apart on its clock (so a virtual clock
//! never waits); [`TcpProbe`], every port accepting a connection, is the production probe and
//! `backtest` or a test can pass another.

use std::net::{IpAddr, SocketAddr, TcpStream};

use crate::config::HealthCheck;
use crate::do_api::model::Droplet;

/// Why one try of a health check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The droplet cannot be checked at all (no address, a forbidden one): not tried again.
    Unusable(String),
    /// This try failed: tried again after `interval`, up to `max_tries`.
    Failed(String),
}

/// One try of the health check `hc` on droplet `d`, reached at `addr` (by `[group.metrics]
/// address`; `None` when it has no such address).
pub trait HealthProbe: Send + Sync {
    fn probe(&self, d: &Droplet, addr: Option<&str>, hc: &HealthCheck) -> Result<(), ProbeError>;
}

/// A closure is a probe (`backtest`'s simulated fleet, tests).
impl<F> HealthProbe for F
where
    F: Fn(&Droplet, Option<&str>, &HealthCheck) -> Result<(), ProbeError> + Send + Sync,
{
    fn probe(&self, d: &Droplet, addr: Option<&str>, hc: &HealthCheck) -> Result<(), ProbeError> {
        self(d, addr, hc)
    }
}

/// TCP health check: every port must accept a connection within `timeout`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpProbe;

impl HealthProbe for TcpProbe {
    fn probe(&self, _d: &Droplet, addr: Option<&str>, hc: &HealthCheck) -> Result<(), ProbeError> {
        let Some(addr) = addr else {
            return Err(ProbeError::Unusable("no address to check".into()));
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| ProbeError::Unusable(format!("bad address {addr}")))?;
        if let Some(why) = crate::net::forbidden(ip) {
            return Err(ProbeError::Unusable(format!("address {ip} is {why}")));
        }
        let failed: Vec<String> = hc
            .ports
            .iter()
            .filter_map(|p| {
                TcpStream::connect_timeout(&SocketAddr::new(ip, *p), hc.timeout)
                    .err()
                    .map(|e| format!("port {p}: {e}"))
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ProbeError::Failed(failed.join(", ")))
        }
    }
}
