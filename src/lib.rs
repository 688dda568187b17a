//! doscale: keeps groups of DigitalOcean droplets at the size their load needs.
//!
//! The functional core (`expr`, `policy`, `plan`, `series`, `exposition`) is pure: values in,
//! values out, no clock, no I/O. The imperative shell (`do_api`, `scrape`, `state`, `apply`,
//! `output`, `cmd`) sits around it. `sim` is the simulated fleet used by `doscale demo`, the
//! integration tests and the benchmarks.

pub mod apply;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod do_api;
pub mod error;
pub mod exposition;
pub mod expr;
pub mod failpoint;
pub mod logging;
pub mod manpage;
pub mod output;
pub mod plan;
pub mod policy;
pub mod scrape;
pub mod secret;
pub mod seed_import;
pub mod series;
pub mod sim;
pub mod state;
pub mod textfile;
pub mod units;
