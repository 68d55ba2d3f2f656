//! # lpo-recorder: collectors and the recording daemon
//!
//! Reads the kernel's interfaces (/proc now; perf_event, tracefs, netlink
//! later) and appends samples to a ring through `lpo-format`'s
//! [`lpo_format::RingWriter`]. It stores raw counters; rates are derived at
//! replay time.
//!
//! * [`procfs`]: allocation-free parsers of /proc text, tested on captured
//!   files from many kernels (`tests/data/procfs`).
//! * [`system::SystemCollector`]: the system stream; keeps its /proc files
//!   open and re-reads them with `pread`. Every reader takes an injectable
//!   proc root.
//! * [`netlink`]: conntrack (ctnetlink) and TCP socket (sock_diag) table
//!   walks for the kernel stream, with a cap and a CPU budget.
//! * [`clock::Timeline`]: the recording timeline that seek uses.
//! * [`daemon::record`]: the tokio loop behind `lpo record`.
//!
//! ```no_run
//! use lpo_recorder::daemon::{record, RecordOptions};
//! use std::time::Duration;
//! let mut opts = RecordOptions::new("/tmp/demo.ring".into());
//! opts.size = 64 << 20;
//! opts.samples = Some(5);
//! opts.interval = Duration::from_millis(200);
//! record(&opts, &mut |line| eprintln!("{line}")).unwrap();
//! ```

pub mod clock;
pub mod daemon;
pub mod exits;
pub mod ftrace;
pub mod host;
pub mod kmsg;
pub mod netlink;
pub mod perf;
pub mod proc_stream;
pub mod process;
pub mod procfs;
pub mod system;
