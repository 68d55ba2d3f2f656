//! # lpo-format: the lpo ring file
//!
//! One preallocated file, mapped with `memmap2`, that never grows. It holds
//! several *streams* (system metrics, processes, perf samples, …), each with
//! its own fixed region (its budget), so a burst in one stream can never
//! evict another's history. Inside a region:
//!
//! * an **index** of fixed 64-byte entries, one per block, addressed by
//!   `seq % entries`, searched in O(log n) by time;
//! * a **staging area** where each sample is appended uncompressed, with a
//!   checksum, the moment it is taken, so `kill -9` loses at most the sample
//!   being taken;
//! * a **data area**: a circular log of checksummed, zstd-compressed
//!   columnar blocks; the oldest are overwritten when it is full.
//!
//! The byte layout is normative in `spec/FORMAT.md`; [`layout`] mirrors it.
//! This crate never touches /proc or any Linux interface beyond files.
//!
//! Main types: [`RingWriter`] (the recorder's side), [`RingReader`] (replay's
//! side, safe on a file being written and on hostile files), [`HostHeader`],
//! [`kv::KvBatch`].
//!
//! ```
//! use lpo_format::{RingWriter, RingReader, StreamSpec, HostHeader, BlockRead};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("demo.ring");
//! let host = HostHeader { hostname: "demo".into(), ..Default::default() };
//! let (mut w, _) = RingWriter::open_or_create(&path, 4 << 20, &[StreamSpec::kv("system", 1)], &host).unwrap();
//! let s = w.stream("system").unwrap();
//! for t in 1..=10i64 {
//!     w.append_kv(s, t * 1_000_000_000, t * 1_000_000_000, t, [("stat.ctxt", 100 * t as u64)]).unwrap();
//! }
//! let r = RingReader::open(&path).unwrap();
//! let i = r.stream("system").unwrap();
//! let staged = r.staged(i).unwrap(); // readable before any block is sealed
//! assert_eq!(staged.len(), 10);
//! w.close().unwrap();
//! assert_eq!(r.info(i).samples, 10);
//! ```

pub mod error;
pub mod ftrace;
pub mod host;
pub mod kmsg;
pub mod kv;
pub mod layout;
pub mod log;
pub mod perf;
pub mod reader;
mod ring;
pub mod schema;
pub mod synth;
pub mod table;
pub mod varint;
pub mod writer;

pub use error::{Error, Result};
pub use host::{HostHeader, UserName, SCHEMA_VERSION};
pub use layout::{FORMAT_MAJOR, FORMAT_MINOR};
pub use reader::{Batch, BlockRead, RingReader, StreamInfo};
pub use ring::HeadState;
pub use writer::{boot_id_bytes, OpenReport, RingWriter, StreamSpec};
