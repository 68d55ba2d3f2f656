//! The `process` stream: per-process rows (table codec) and process exits.
//! Column names are a contract with replay, documented in spec/STREAMS.md.

use crate::exits::ExitRecord;
use crate::process::ProcRow;
use lpo_format::table::{Attrs, Event, RowIn, TableSchema};
use std::sync::Arc;

pub fn schema() -> TableSchema {
    lpo_format::schema::process::table_schema()
}

pub fn values(r: &ProcRow) -> [u64; 27] {
    [
        r.state as u64,
        r.priority as u64,
        r.nice as u64,
        r.num_threads,
        r.vsize,
        r.rss_pages,
        r.minflt,
        r.majflt,
        r.utime,
        r.stime,
        r.processor as u64,
        r.delayacct_blkio_ticks,
        r.vol_cs,
        r.invol_cs,
        r.rss_anon_kb,
        r.rss_file_kb,
        r.rss_shmem_kb,
        r.swap_kb,
        r.rchar,
        r.wchar,
        r.read_bytes,
        r.write_bytes,
        r.cancelled_write_bytes,
        r.run_ns,
        r.wait_ns,
        r.timeslices,
        r.io_ok as u64,
    ]
}

/// Identity of one process life with one set of attributes: a change of
/// any attribute (exec, reparenting, setuid) makes a new entity.
pub fn ekey(r: &ProcRow) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |v: u64| {
        h = (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    };
    for v in [
        r.pid as u64,
        r.starttime,
        r.is_thread as u64,
        r.ppid as u64,
        r.pgrp as u64,
        r.session as u64,
        r.uid as u64,
        r.euid as u64,
    ] {
        mix(v);
    }
    for s in [&r.comm, &r.cmdline, &r.exe] {
        mix(Arc::as_ptr(s) as *const u8 as u64);
        mix(s.len() as u64);
    }
    h
}

pub fn attrs(r: &ProcRow) -> Attrs {
    Attrs {
        ints: vec![
            r.pid as u64,
            r.tgid as u64,
            r.starttime,
            r.ppid as u64,
            r.pgrp as u64,
            r.session as u64,
            r.uid as u64,
            r.euid as u64,
            r.is_thread as u64,
        ],
        strs: vec![r.comm.to_string(), r.cmdline.to_string(), r.exe.to_string()],
    }
}

pub fn event(e: &ExitRecord) -> Event {
    Event {
        ints: vec![
            e.pid as u64,
            e.tgid as u64,
            e.ppid as u64,
            e.uid as u64,
            e.start_unix_ns as u64,
            e.elapsed_us,
            e.exit_code as u64,
            e.utime_us,
            e.stime_us,
            e.read_bytes,
            e.write_bytes,
            (e.is_thread_group || (e.group_dead && (e.tgid == 0 || e.tgid == e.pid))) as u64,
        ],
        strs: vec![e.comm.clone()],
    }
}

/// Rows for the writer, borrowing the collector's rows.
pub struct Rows {
    vals: Vec<[u64; 27]>,
    keys: Vec<u64>,
}

impl Rows {
    pub fn new() -> Rows {
        Rows {
            vals: Vec::new(),
            keys: Vec::new(),
        }
    }
    pub fn fill(&mut self, rows: &[ProcRow]) {
        self.vals.clear();
        self.keys.clear();
        for r in rows {
            self.vals.push(values(r));
            self.keys.push(ekey(r));
        }
    }
    /// Call `f` with the RowIn slice for `rows` (as passed to `fill`).
    pub fn with<T>(&self, rows: &[ProcRow], f: impl FnOnce(&[RowIn]) -> T) -> T {
        // One closure type for every row: no per-row boxing.
        let fns: Vec<_> = rows.iter().map(|r| move || attrs(r)).collect();
        let ins: Vec<RowIn> = (0..rows.len())
            .map(|i| RowIn {
                ekey: self.keys[i],
                attrs: &fns[i],
                values: &self.vals[i],
            })
            .collect();
        f(&ins)
    }
}

impl Default for Rows {
    fn default() -> Self {
        Rows::new()
    }
}

/// uid → user name from /etc/passwd (so a replay elsewhere shows names).
pub fn read_users(etc: &std::path::Path) -> Vec<lpo_format::UserName> {
    let text = std::fs::read_to_string(etc.join("passwd")).unwrap_or_default();
    let mut out: Vec<lpo_format::UserName> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some(lpo_format::UserName {
                uid,
                name: name.chars().take(64).collect(),
            })
        })
        .collect();
    out.sort_by_key(|u| u.uid);
    out.dedup_by_key(|u| u.uid);
    out.truncate(500);
    out
}
