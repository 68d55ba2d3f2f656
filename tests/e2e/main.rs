//! End-to-end tests: the real `lpo` binary against the real kernel.
//! One test binary with a small harness (`harness.rs`).

mod harness;

mod agreement;
mod bad_input;
mod crash;
mod faults;
mod ftrace;
mod kernel;
mod processes;
mod replay;
