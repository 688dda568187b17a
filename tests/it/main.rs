//! Integration tests: the real `doscale` binary against `doscale sim` on loopback.

mod common;
mod faults;
mod foundation;
mod man_page;
mod pipeline;
mod props;
