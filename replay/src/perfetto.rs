//! `lpo export --format perfetto`: a window of kernel trace events as Chrome
//! trace-event JSON, which the Perfetto UI and trace processor open:
//!
//! * process "CPUs", one thread track per CPU ("CPU N"): what ran there,
//!   one complete (`X`) slice per stretch between two sched_switch events,
//!   named `comm pid`;
//! * one track per task (pid and tid = the task's pid, named by its comm):
//!   `Running` slices with the CPU in args; `exec` instants;
//! * process "Block I/O": one async slice per request (issue → complete),
//!   named by rwbs, bytes and disk.
//!
//! Times are CLOCK_BOOTTIME in µs (the recorder's `boot` trace clock).

use crate::ftrace::Trace;
use crate::time::{parse_time, TimeContext};
use crate::ReplayError;
use lpo_format::RingReader;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

/// Pseudo-process ids for the CPU and block tracks (above any real pid).
pub const CPU_PID: i64 = 2_000_000_000;
pub const BIO_PID: i64 = 2_100_000_000;

#[derive(Debug, Clone, Default)]
pub struct ExportArgs {
    pub file: PathBuf,
    pub from: String,
    pub to: String,
    pub utc: bool,
    pub now_ns: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ExportSummary {
    pub events: usize,
    pub cpu_slices: usize,
    pub thread_slices: usize,
    pub io_slices: usize,
}

/// Resolve the window and write the trace JSON to `out`.
pub fn export_perfetto(
    args: &ExportArgs,
    out: &mut dyn Write,
    warn: &mut dyn FnMut(String),
) -> Result<ExportSummary, ReplayError> {
    let r = RingReader::open(&args.file)?;
    let host = r.host().clone();
    let tz = if args.utc {
        chrono_tz::UTC
    } else {
        crate::host_tz(&host)
    };
    let (first, last) = r
        .stream("system")
        .and_then(|i| r.info_range(i))
        .map(|s| (s.0, s.1))
        .ok_or_else(|| {
            ReplayError::NoData(format!("{}: nothing recorded yet", args.file.display()))
        })?;
    let ctx = TimeContext {
        now_ns: crate::run::now_or_clock(args.now_ns),
        tz,
        first_ns: first,
        last_ns: last,
    };
    let (from, to) = (parse_time(&args.from, &ctx)?, parse_time(&args.to, &ctx)?);
    if from > to {
        return Err(ReplayError::Usage("--from is after --to".into()));
    }
    let mut bad = Vec::new();
    let mut t = crate::ftrace::load(&r, from, to, host.interval_ns as i64, &mut bad);
    t.disks = crate::ftrace::disk_names(&r, from, to);
    for b in bad {
        warn(format!("warning: skipped damaged trace events: {b}"));
    }
    if t.samples == 0 {
        return Err(ReplayError::NoData(
            "no kernel trace events recorded in that window (recorded without root, with --no-ftrace, or by an lpo without the ftrace stream)".into(),
        ));
    }
    let mut w = std::io::BufWriter::new(out);
    let s = write_chrome_json(&t, from, to, &mut w)?;
    w.flush()?;
    Ok(s)
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Write `t` (events with wall times in [from, to]) as Chrome trace JSON.
pub fn write_chrome_json(
    t: &Trace,
    from: i64,
    to: i64,
    w: &mut dyn Write,
) -> std::io::Result<ExportSummary> {
    let comms = crate::views::sched::comms(t);
    let mut s = ExportSummary {
        events: t.events.len(),
        ..Default::default()
    };
    // Boot-clock ns of the window's ends, from any event's wall ↔ boot pair.
    // Clamped to the events' span, so an open-ended window does not stretch
    // the first and last slices.
    let (t0, t1) = match (t.events.first(), t.events.last()) {
        (Some(e), Some(l)) => {
            let off = e.ts as i64 - e.wall;
            (
                ((from + off).max(0) as u64).max(e.ts),
                ((to + off).max(0) as u64).min(l.ts),
            )
        }
        _ => (0, 0),
    };
    w.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")?;
    let mut o = JsonOut { w, first: true };
    let w = &mut o;
    w.emit(json!({"ph": "M", "name": "process_name", "pid": CPU_PID, "args": {"name": "CPUs"}}))?;
    w.emit(json!({"ph": "M", "name": "process_sort_index", "pid": CPU_PID, "args": {"sort_index": -2}}))?;
    let sw = t.fmt_ids("sched:sched_switch");
    let exec = t.fmt_ids("sched:sched_process_exec");
    let mut cur: HashMap<u32, (i32, u64)> = HashMap::new();
    let mut cpus: Vec<u32> = Vec::new();
    let mut tasks: Vec<i32> = Vec::new();
    let slice = |w: &mut JsonOut,
                 s: &mut ExportSummary,
                 cpu: u32,
                 pid: i32,
                 a: u64,
                 b: u64|
     -> std::io::Result<()> {
        if pid == 0 || b < a {
            return Ok(());
        }
        let comm = comms.get(&pid).map(|c| c.as_str()).unwrap_or("");
        let name = format!("{comm} {pid}");
        w.emit(json!({"ph": "X", "name": name, "cat": "sched", "pid": CPU_PID, "tid": CPU_PID + cpu as i64,
            "ts": us(a), "dur": us(b - a), "args": {"pid": pid, "comm": comm}}))?;
        w.emit(
            json!({"ph": "X", "name": "Running", "cat": "sched", "pid": pid, "tid": pid,
            "ts": us(a), "dur": us(b - a), "args": {"cpu": cpu}}),
        )?;
        s.cpu_slices += 1;
        s.thread_slices += 1;
        Ok(())
    };
    for e in &t.events {
        if !cpus.contains(&e.cpu) {
            cpus.push(e.cpu);
        }
        if sw.contains(&e.fmt) {
            let prev = t.int(e, "prev_pid").unwrap_or(0) as i32;
            let next = t.int(e, "next_pid").unwrap_or(0) as i32;
            let since = match cur.get(&e.cpu) {
                Some(&(p, a)) if p == prev => a,
                Some(_) => e.ts, // a lost event: do not invent a slice
                None => t0.min(e.ts),
            };
            slice(w, &mut s, e.cpu, prev, since, e.ts)?;
            cur.insert(e.cpu, (next, e.ts));
            for p in [prev, next] {
                if p != 0 && !tasks.contains(&p) {
                    tasks.push(p);
                }
            }
        } else if exec.contains(&e.fmt) {
            let f = t.str(e, "filename").unwrap_or("");
            w.emit(
                json!({"ph": "i", "s": "t", "name": format!("exec {f}"), "cat": "process",
                "pid": e.pid, "tid": e.pid, "ts": us(e.ts)}),
            )?;
        }
    }
    let end = t1;
    let mut open: Vec<_> = cur.into_iter().collect();
    open.sort_unstable();
    for (cpu, (pid, a)) in open {
        slice(w, &mut s, cpu, pid, a, end)?;
    }
    cpus.sort_unstable();
    for c in &cpus {
        w.emit(json!({"ph": "M", "name": "thread_name", "pid": CPU_PID, "tid": CPU_PID + *c as i64, "args": {"name": format!("CPU {c}")}}))?;
        w.emit(json!({"ph": "M", "name": "thread_sort_index", "pid": CPU_PID, "tid": CPU_PID + *c as i64, "args": {"sort_index": *c}}))?;
    }
    tasks.sort_unstable();
    for p in &tasks {
        let comm = comms.get(p).map(|c| c.as_str()).unwrap_or("");
        w.emit(json!({"ph": "M", "name": "process_name", "pid": p, "args": {"name": comm}}))?;
        w.emit(
            json!({"ph": "M", "name": "thread_name", "pid": p, "tid": p, "args": {"name": comm}}),
        )?;
    }
    // Block I/O: issue → complete by (dev, sector).
    let issue = t.fmt_ids("block:block_rq_issue");
    let done = t.fmt_ids("block:block_rq_complete");
    let mut inflight: HashMap<(i64, i64), &crate::ftrace::Ev> = HashMap::new();
    let mut devs: Vec<u64> = Vec::new();
    let mut id = 0u64;
    for e in &t.events {
        if issue.contains(&e.fmt) {
            if let (Some(d), Some(sec)) = (t.int(e, "dev"), t.int(e, "sector")) {
                inflight.insert((d, sec), e);
            }
        } else if done.contains(&e.fmt) {
            let (Some(d), Some(sec)) = (t.int(e, "dev"), t.int(e, "sector")) else {
                continue;
            };
            let Some(i) = inflight.remove(&(d, sec)) else {
                continue;
            };
            let dev = d as u64;
            let disk = t
                .disks
                .get(&dev)
                .cloned()
                .unwrap_or_else(|| format!("{},{}", dev >> 20, dev & 0xfffff));
            let di = match devs.iter().position(|&x| x == dev) {
                Some(p) => p,
                None => {
                    devs.push(dev);
                    w.emit(json!({"ph": "M", "name": "thread_name", "pid": BIO_PID, "tid": BIO_PID + devs.len() as i64 - 1, "args": {"name": disk}}))?;
                    devs.len() - 1
                }
            };
            let name = format!(
                "{} {} B {}",
                t.str(i, "rwbs").unwrap_or(""),
                t.int(i, "bytes").unwrap_or(0),
                disk
            );
            id += 1;
            let tid = BIO_PID + di as i64;
            w.emit(json!({"ph": "b", "cat": "block", "name": name, "id": id, "pid": BIO_PID, "tid": tid, "ts": us(i.ts),
                "args": {"sector": sec, "pid": i.pid, "comm": t.str(i, "comm").unwrap_or("")}}))?;
            w.emit(json!({"ph": "e", "cat": "block", "name": name, "id": id, "pid": BIO_PID, "tid": tid, "ts": us(e.ts)}))?;
            s.io_slices += 1;
        }
    }
    if !devs.is_empty() {
        w.emit(json!({"ph": "M", "name": "process_name", "pid": BIO_PID, "args": {"name": "Block I/O"}}))?;
    }
    w.w.write_all(b"\n]}\n")?;
    Ok(s)
}

struct JsonOut<'a> {
    w: &'a mut dyn Write,
    first: bool,
}

impl JsonOut<'_> {
    fn emit(&mut self, v: serde_json::Value) -> std::io::Result<()> {
        if !self.first {
            self.w.write_all(b",\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.w, &v).map_err(std::io::Error::other)
    }
}
