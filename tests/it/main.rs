//! Integration tests: the real `doscale` binary against `doscale sim` on loopback.

mod backtest;
mod check;
mod common;
mod crash;
mod faults;
mod foundation;
mod hostile;
mod man_page;
mod monitoring;
mod openapi;
mod operator;
mod operator_output;
mod pipeline;
mod prometheus;
mod props;
mod safety;
mod tour;
