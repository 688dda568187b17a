//! doscale: keeps groups of DigitalOcean droplets at the size their load needs.
//!
//! `model` is the plain data that flows between the stages and is kept in the state file; it
//! imports nothing of doscale's. The functional core (`expr`, `policy`, `plan`, `exposition`)
//! builds on it and is pure: values in, values out, no clock, no I/O. The imperative shell
//! (`state`, `do_api`, `scrape`, `apply`, `output`, `cmd`) sits around it; `net` holds the
//! address checks the shell shares. `sim` is the simulated fleet used by `doscale demo`, the
//! integration tests and the benchmarks. The `layers` test keeps the core off the shell.

pub mod apply;
pub mod backtest;
pub mod clean;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod do_api;
pub mod error;
pub mod exposition;
pub mod expr;
pub mod failpoint;
pub mod logging;
pub mod manpage;
pub mod model;
pub mod net;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod scrape;
pub mod secret;
pub mod seed_import;
pub mod sources;
/// Series keys and maps, part of the model (`crate::series` for short).
pub use model::series;
pub mod sim;
pub mod state;
pub mod textfile;
pub mod units;

#[cfg(test)]
mod layers;
