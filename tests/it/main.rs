//! Integration tests: the real `doscale` binary against `doscale sim` on loopback.

mod common;
mod crash;
mod faults;
mod foundation;
mod man_page;
mod openapi;
mod pipeline;
mod props;
mod safety;
