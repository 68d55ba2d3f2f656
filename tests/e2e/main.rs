//! End-to-end tests: the real `lpo` binary against the real kernel.
//! One test binary with a small harness (`harness.rs`).

mod harness;

mod agreement;
mod bad_input;
mod conntrack;
mod crash;
mod dump;
mod export;
mod faults;
mod ftrace;
mod kernel;
mod kmsg;
mod mutation;
mod perf;
mod processes;
mod replay;
