//! Views over kernel trace events (the `ftrace` stream): `sched` (run-queue
//! latency like runqlat and `perf sched latency`), `biolatency` (block I/O
//! latency like bcc's biolatency, per disk and per process), and the
//! lifecycle events that `exits`/`execsnoop` add to per-process history.

use crate::ftrace::{Ev, Trace};
use crate::time::format_local;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write;

/// bcc's log2 slot of a value: 0 and 1 in slot 1 ("0 -> 1"), 2..3 in 2, …
pub fn log2_slot(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1)
}

/// A log2 histogram (slot i holds [2^(i-1), 2^i − 1]).
#[derive(Debug, Default, Clone)]
pub struct Hist(pub Vec<u64>);

impl Hist {
    pub fn add(&mut self, v: u64) {
        let s = log2_slot(v);
        if self.0.len() <= s {
            self.0.resize(s + 1, 0);
        }
        self.0[s] += 1;
    }
    /// bcc's `print_log2_hist` layout.
    pub fn text(&self, unit: &str) -> String {
        let mut out = String::new();
        let max = self.0.iter().copied().max().unwrap_or(0);
        let last = self.0.iter().rposition(|&c| c > 0).unwrap_or(0);
        let _ = writeln!(out, "{:>16} : count    distribution", unit);
        for i in 1..=last.max(1) {
            let c = self.0.get(i).copied().unwrap_or(0);
            let (mut lo, hi) = ((1u64 << i) >> 1, (1u64 << i) - 1);
            if lo == hi {
                lo -= 1;
            }
            let stars = if max > 0 {
                (c * 40).div_ceil(max) as usize
            } else {
                0
            };
            let stars = if c > 0 { stars.max(1) } else { 0 };
            let _ = writeln!(
                out,
                "{:>10} -> {:<10} : {:<8} |{:<40}|",
                lo,
                hi,
                c,
                "*".repeat(stars.min(40))
            );
        }
        out
    }
    pub fn json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| json!({"lo": (1u64 << i) >> 1, "hi": (1u64 << i) - 1, "count": c}))
                .collect(),
        )
    }
}

/// The p-th percentile (0..=100) of sorted values, nearest rank.
pub fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let r = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[r.clamp(1, sorted.len()) - 1]
}

fn comm_of(t: &Trace, comms: &mut HashMap<i32, String>, e: &Ev) {
    match t.name(e) {
        "sched_switch" => {
            for (p, c) in [("prev_pid", "prev_comm"), ("next_pid", "next_comm")] {
                if let (Some(pid), Some(comm)) = (t.int(e, p), t.str(e, c)) {
                    comms.insert(pid as i32, comm.to_string());
                }
            }
        }
        "sched_wakeup" | "sched_wakeup_new" | "sched_process_exit" => {
            if let (Some(pid), Some(comm)) = (t.int(e, "pid"), t.str(e, "comm")) {
                comms.insert(pid as i32, comm.to_string());
            }
        }
        "sched_process_fork" => {
            if let (Some(pid), Some(comm)) = (t.int(e, "child_pid"), t.str(e, "child_comm")) {
                comms.insert(pid as i32, comm.to_string());
            }
        }
        _ => {}
    }
}

/// Every pid's last known comm in the window.
pub fn comms(t: &Trace) -> HashMap<i32, String> {
    let mut m = HashMap::new();
    for e in &t.events {
        comm_of(t, &mut m, e);
    }
    m.insert(0, "swapper".into());
    m
}

// ---------------------------------------------------------------------------
// sched
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct SchedOpts {
    pub pids: Option<Vec<i32>>,
    pub comm: Option<String>,
    /// Per-task histograms (runqlat -P).
    pub per_task_hist: bool,
    /// Milliseconds instead of microseconds in histograms.
    pub millis: bool,
    /// Rows shown (0: all).
    pub limit: usize,
    /// Sort key: wait (total run-queue wait, default), max, avg, p99,
    /// switches, runtime, offcpu.
    pub sort: String,
}

impl SchedOpts {
    pub fn parse(args: &[&String]) -> Result<SchedOpts, String> {
        let mut o = SchedOpts {
            limit: 20,
            sort: "wait".into(),
            ..Default::default()
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-p" | "--pid" => {
                    let v = it.next().ok_or("sched: -p needs a PID list")?;
                    let p: Result<Vec<i32>, _> = v.split(',').map(|x| x.parse()).collect();
                    o.pids =
                        Some(p.map_err(|_| format!("sched: -p {v:?}: expected PID[,PID...]"))?);
                }
                "-C" | "--comm" => {
                    o.comm = Some(
                        it.next()
                            .ok_or("sched: -C needs a command name")?
                            .to_string(),
                    )
                }
                "-P" | "--pids" => o.per_task_hist = true,
                "-m" => o.millis = true,
                "-n" => {
                    o.limit = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("sched: -n needs a number of rows (0: all)")?
                }
                "-s" | "--sort" => {
                    let v = it.next().ok_or("sched: -s needs a key")?;
                    if !["wait", "max", "avg", "p99", "switches", "runtime", "offcpu"]
                        .contains(&v.as_str())
                    {
                        return Err(format!("sched: -s {v:?}: keys are wait, max, avg, p99, switches, runtime, offcpu"));
                    }
                    o.sort = v.to_string();
                }
                a => {
                    return Err(format!(
                    "sched: unknown argument {a:?} (known: -p PID, -C COMM, -P, -m, -n N, -s KEY)"
                ))
                }
            }
        }
        Ok(o)
    }
}

/// Per-task scheduler statistics over the window.
#[derive(Debug, Default, Clone)]
pub struct TaskSched {
    pub pid: i32,
    pub comm: String,
    pub runtime_ns: u64,
    pub switches: u64,
    pub involuntary: u64,
    pub offcpu_ns: u64,
    /// Run-queue latencies (ns), sorted.
    pub waits: Vec<u64>,
}

impl TaskSched {
    fn wait_total(&self) -> u64 {
        self.waits.iter().sum()
    }
}

/// Walk the window's sched events: run-queue latency is wakeup (or
/// wakeup_new, or preemption: switched out while runnable) → switch-in;
/// off-CPU time is switch-out → switch-in; runtime switch-in → switch-out.
pub fn sched_stats(t: &Trace) -> (Vec<TaskSched>, Hist, u64) {
    let sw = t.fmt_ids("sched:sched_switch");
    let wk: Vec<u32> = ["sched:sched_wakeup", "sched:sched_wakeup_new"]
        .iter()
        .flat_map(|n| t.fmt_ids(n))
        .collect();
    let mut tasks: HashMap<i32, TaskSched> = HashMap::new();
    let mut runnable: HashMap<i32, u64> = HashMap::new();
    let mut oncpu: HashMap<i32, u64> = HashMap::new();
    let mut offcpu: HashMap<i32, u64> = HashMap::new();
    let mut names = HashMap::new();
    let mut all = Hist::default();
    let mut n = 0;
    for e in &t.events {
        comm_of(t, &mut names, e);
        // Some kernels do not trace the switch out of the idle task (seen on
        // 6.18 VMs: no `prev_pid=0` sched_switch on an idle CPU). A woken
        // task that was never seen switched in is then running at its first
        // own event: count the wait up to it (an upper bound).
        if e.pid != 0 && !oncpu.contains_key(&e.pid) {
            let inferred = if sw.contains(&e.fmt) {
                t.int(e, "prev_pid").unwrap_or(0) as i32 == e.pid
            } else {
                true
            };
            if inferred {
                if let Some(w) = runnable.remove(&e.pid) {
                    let ts = tasks.entry(e.pid).or_insert_with(|| TaskSched {
                        pid: e.pid,
                        ..Default::default()
                    });
                    let lat = e.ts.saturating_sub(w);
                    ts.waits.push(lat);
                    all.add(lat / 1000);
                    if let Some(o) = offcpu.remove(&e.pid) {
                        ts.offcpu_ns += e.ts.saturating_sub(o);
                    }
                    oncpu.insert(e.pid, e.ts);
                }
            }
        }
        if wk.contains(&e.fmt) {
            if let Some(pid) = t.int(e, "pid") {
                let pid = pid as i32;
                if pid != 0 && !oncpu.contains_key(&pid) {
                    runnable.entry(pid).or_insert(e.ts);
                }
            }
            n += 1;
        } else if sw.contains(&e.fmt) {
            n += 1;
            let prev = t.int(e, "prev_pid").unwrap_or(0) as i32;
            let next = t.int(e, "next_pid").unwrap_or(0) as i32;
            let state = t.int(e, "prev_state").unwrap_or(0);
            if prev != 0 {
                let ts = tasks.entry(prev).or_insert_with(|| TaskSched {
                    pid: prev,
                    ..Default::default()
                });
                ts.switches += 1;
                if let Some(s) = oncpu.remove(&prev) {
                    ts.runtime_ns += e.ts.saturating_sub(s);
                }
                // TASK_RUNNING (state 0, maybe with the preempt bit): preempted.
                if state & 0xff == 0 {
                    ts.involuntary += 1;
                    runnable.insert(prev, e.ts);
                } else {
                    runnable.remove(&prev);
                }
                offcpu.insert(prev, e.ts);
            }
            if next != 0 {
                let ts = tasks.entry(next).or_insert_with(|| TaskSched {
                    pid: next,
                    ..Default::default()
                });
                if let Some(w) = runnable.remove(&next) {
                    let lat = e.ts.saturating_sub(w);
                    ts.waits.push(lat);
                    all.add(lat / 1000);
                }
                if let Some(o) = offcpu.remove(&next) {
                    ts.offcpu_ns += e.ts.saturating_sub(o);
                }
                oncpu.insert(next, e.ts);
            }
        }
    }
    let mut v: Vec<TaskSched> = tasks
        .into_values()
        .map(|mut t| {
            t.waits.sort_unstable();
            t.comm = names.get(&t.pid).cloned().unwrap_or_default();
            t
        })
        .collect();
    v.sort_by_key(|t| t.pid);
    (v, all, n)
}

fn window_line(t: &Trace, from: i64, to: i64, tz: &chrono_tz::Tz, what: &str, n: u64) -> String {
    format!(
        "{what}: {} to {} ({:.1} s), {n} events, {} lost\n",
        format_local(from, tz),
        format_local(to, tz),
        (to - from) as f64 / 1e9,
        t.lost()
    )
}

fn selected(o_pids: &Option<Vec<i32>>, o_comm: &Option<String>, pid: i32, comm: &str) -> bool {
    o_pids.as_ref().is_none_or(|p| p.contains(&pid)) && o_comm.as_ref().is_none_or(|c| c == comm)
}

fn sched_rows(t: &Trace, o: &SchedOpts) -> (Vec<TaskSched>, Hist, u64) {
    let (mut v, all, n) = sched_stats(t);
    v.retain(|x| selected(&o.pids, &o.comm, x.pid, &x.comm));
    let key = |x: &TaskSched| -> u64 {
        match o.sort.as_str() {
            "max" => x.waits.last().copied().unwrap_or(0),
            "avg" => x.wait_total() / (x.waits.len() as u64).max(1),
            "p99" => pct(&x.waits, 99.0),
            "switches" => x.switches,
            "runtime" => x.runtime_ns,
            "offcpu" => x.offcpu_ns,
            _ => x.wait_total(),
        }
    };
    v.sort_by(|a, b| key(b).cmp(&key(a)).then(a.pid.cmp(&b.pid)));
    (v, all, n)
}

pub fn sched_text(t: &Trace, o: &SchedOpts, from: i64, to: i64, tz: &chrono_tz::Tz) -> String {
    let (v, all, n) = sched_rows(t, o);
    let mut out = window_line(t, from, to, tz, "sched", n);
    let unit = if o.millis { "msecs" } else { "usecs" };
    let div = if o.millis { 1_000_000 } else { 1000 };
    let hist_of = |x: &TaskSched| {
        let mut h = Hist::default();
        for &w in &x.waits {
            h.add(w / div);
        }
        h
    };
    if o.pids.is_some() || o.comm.is_some() {
        let mut h = Hist::default();
        for x in &v {
            for &w in &x.waits {
                h.add(w / div);
            }
        }
        out.push_str("\nRun-queue latency (wakeup or preemption → switch-in), selected tasks\n");
        out.push_str(&h.text(unit));
    } else {
        out.push_str("\nRun-queue latency (wakeup or preemption → switch-in), all tasks\n");
        let h = if o.millis {
            let mut h = Hist::default();
            for x in &v {
                for &w in &x.waits {
                    h.add(w / div);
                }
            }
            h
        } else {
            all
        };
        out.push_str(&h.text(unit));
    }
    let _ = writeln!(
        out,
        "\n{:>7} {:<16} {:>10} {:>8} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "PID",
        "COMM",
        "RUNTIME_ms",
        "SWITCHES",
        "INVOL",
        "WAITS",
        "AVG_us",
        "P50_us",
        "P95_us",
        "P99_us",
        "MAX_us",
        "OFFCPU_ms"
    );
    let shown = if o.limit == 0 {
        v.len()
    } else {
        o.limit.min(v.len())
    };
    for x in &v[..shown] {
        let us = |ns: u64| ns as f64 / 1000.0;
        let _ = writeln!(
            out,
            "{:>7} {:<16} {:>10.3} {:>8} {:>7} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.3}",
            x.pid,
            x.comm,
            x.runtime_ns as f64 / 1e6,
            x.switches,
            x.involuntary,
            x.waits.len(),
            us(x.wait_total() / (x.waits.len() as u64).max(1)),
            us(pct(&x.waits, 50.0)),
            us(pct(&x.waits, 95.0)),
            us(pct(&x.waits, 99.0)),
            us(x.waits.last().copied().unwrap_or(0)),
            x.offcpu_ns as f64 / 1e6
        );
        if o.per_task_hist && !x.waits.is_empty() {
            let _ = writeln!(out, "\npid = {} {}", x.pid, x.comm);
            out.push_str(&hist_of(x).text(unit));
            out.push('\n');
        }
    }
    if shown < v.len() {
        let _ = writeln!(out, "({} more tasks; -n 0 shows all)", v.len() - shown);
    }
    out
}

pub fn sched_json(t: &Trace, o: &SchedOpts, from: i64, to: i64) -> Value {
    let (v, all, n) = sched_rows(t, o);
    let shown = if o.limit == 0 {
        v.len()
    } else {
        o.limit.min(v.len())
    };
    json!({
        "from_ns": from, "to_ns": to, "events": n, "lost": t.lost(),
        "hist_usecs": all.json(),
        "tasks": v[..shown].iter().map(|x| {
            let mut h = Hist::default();
            for &w in &x.waits { h.add(w / 1000); }
            json!({
                "pid": x.pid, "comm": x.comm, "runtime_ns": x.runtime_ns, "switches": x.switches,
                "involuntary": x.involuntary, "waits": x.waits.len(),
                "avg_ns": x.wait_total() / (x.waits.len() as u64).max(1),
                "p50_ns": pct(&x.waits, 50.0), "p95_ns": pct(&x.waits, 95.0), "p99_ns": pct(&x.waits, 99.0),
                "max_ns": x.waits.last().copied().unwrap_or(0), "offcpu_ns": x.offcpu_ns,
                "hist_usecs": h.json(),
            })
        }).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------
// biolatency
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct BioOpts {
    /// One histogram per disk.
    pub per_disk: bool,
    pub millis: bool,
    pub disks: Option<Vec<String>>,
}

impl BioOpts {
    pub fn parse(args: &[&String]) -> Result<BioOpts, String> {
        let mut o = BioOpts::default();
        for a in args {
            match a.as_str() {
                "-D" | "--disks" => o.per_disk = true,
                "-m" | "--milliseconds" => o.millis = true,
                a if a.parse::<f64>().is_ok() => {}
                a if !a.starts_with('-') => {
                    o.disks.get_or_insert_with(Vec::new).push(a.to_string())
                }
                a => {
                    return Err(format!(
                        "biolatency: unknown argument {a:?} (known: -D, -m, DISK...)"
                    ))
                }
            }
        }
        Ok(o)
    }
}

/// One completed request.
#[derive(Debug, Clone)]
pub struct Bio {
    pub disk: String,
    pub pid: i32,
    pub comm: String,
    pub lat_ns: u64,
    pub bytes: u64,
    pub rwbs: String,
}

/// Pair block_rq_issue with block_rq_complete by (dev, sector).
pub fn bios(t: &Trace) -> Vec<Bio> {
    let issue = t.fmt_ids("block:block_rq_issue");
    let done = t.fmt_ids("block:block_rq_complete");
    let mut inflight: HashMap<(i64, i64), &Ev> = HashMap::new();
    let mut out = Vec::new();
    for e in &t.events {
        if issue.contains(&e.fmt) {
            if let (Some(d), Some(s)) = (t.int(e, "dev"), t.int(e, "sector")) {
                inflight.insert((d, s), e);
            }
        } else if done.contains(&e.fmt) {
            let (Some(d), Some(s)) = (t.int(e, "dev"), t.int(e, "sector")) else {
                continue;
            };
            if let Some(i) = inflight.remove(&(d, s)) {
                let dev = d as u64;
                let disk = t
                    .disks
                    .get(&dev)
                    .cloned()
                    .unwrap_or_else(|| format!("{},{}", dev >> 20, dev & 0xfffff));
                out.push(Bio {
                    disk,
                    pid: i.pid,
                    comm: t.str(i, "comm").unwrap_or("").to_string(),
                    lat_ns: e.ts.saturating_sub(i.ts),
                    bytes: t.int(i, "bytes").unwrap_or(0) as u64,
                    rwbs: t.str(i, "rwbs").unwrap_or("").to_string(),
                });
            }
        }
    }
    out
}

struct BioGroups {
    disks: Vec<(String, Hist)>,
    procs: Vec<(i32, String, String, Vec<u64>, u64)>,
    all: Hist,
    n: usize,
}

fn bio_groups(t: &Trace, o: &BioOpts) -> BioGroups {
    let div = if o.millis { 1_000_000 } else { 1000 };
    let mut bs = bios(t);
    if let Some(d) = &o.disks {
        bs.retain(|b| d.contains(&b.disk));
    }
    let mut disks: HashMap<String, Hist> = HashMap::new();
    let mut procs: HashMap<(i32, String, String), (Vec<u64>, u64)> = HashMap::new();
    let mut all = Hist::default();
    for b in &bs {
        all.add(b.lat_ns / div);
        disks.entry(b.disk.clone()).or_default().add(b.lat_ns / div);
        let p = procs
            .entry((b.pid, b.comm.clone(), b.disk.clone()))
            .or_default();
        p.0.push(b.lat_ns);
        p.1 += b.bytes;
    }
    let mut disks: Vec<_> = disks.into_iter().collect();
    disks.sort_by(|a, b| a.0.cmp(&b.0));
    let mut procs: Vec<_> = procs
        .into_iter()
        .map(|((pid, comm, disk), (mut l, by))| {
            l.sort_unstable();
            (pid, comm, disk, l, by)
        })
        .collect();
    procs.sort_by(|a, b| b.3.len().cmp(&a.3.len()).then(a.0.cmp(&b.0)));
    BioGroups {
        disks,
        procs,
        all,
        n: bs.len(),
    }
}

pub fn biolatency_text(t: &Trace, o: &BioOpts, from: i64, to: i64, tz: &chrono_tz::Tz) -> String {
    let g = bio_groups(t, o);
    let mut out = window_line(t, from, to, tz, "biolatency", g.n as u64);
    let unit = if o.millis { "msecs" } else { "usecs" };
    if o.per_disk {
        for (d, h) in &g.disks {
            let _ = writeln!(out, "\ndisk = {d}");
            out.push_str(&h.text(unit));
        }
    } else {
        out.push('\n');
        out.push_str(&g.all.text(unit));
    }
    let _ = writeln!(
        out,
        "\n{:>7} {:<16} {:<10} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "PID", "COMM", "DISK", "I/O", "AVG_us", "P50_us", "P99_us", "MAX_us", "KBYTES"
    );
    for (pid, comm, disk, l, by) in &g.procs {
        let us = |ns: u64| ns as f64 / 1000.0;
        let _ = writeln!(
            out,
            "{:>7} {:<16} {:<10} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10}",
            pid,
            comm,
            disk,
            l.len(),
            us(l.iter().sum::<u64>() / (l.len() as u64).max(1)),
            us(pct(l, 50.0)),
            us(pct(l, 99.0)),
            us(l.last().copied().unwrap_or(0)),
            by / 1024
        );
    }
    out
}

pub fn biolatency_json(t: &Trace, o: &BioOpts, from: i64, to: i64) -> Value {
    let g = bio_groups(t, o);
    json!({
        "from_ns": from, "to_ns": to, "ios": g.n, "lost": t.lost(),
        "unit": if o.millis { "msecs" } else { "usecs" },
        "hist": g.all.json(),
        "disks": g.disks.iter().map(|(d, h)| json!({"disk": d, "hist": h.json()})).collect::<Vec<_>>(),
        "processes": g.procs.iter().map(|(pid, comm, disk, l, by)| json!({
            "pid": pid, "comm": comm, "disk": disk, "ios": l.len(),
            "avg_ns": l.iter().sum::<u64>() / (l.len() as u64).max(1),
            "p50_ns": pct(l, 50.0), "p99_ns": pct(l, 99.0), "max_ns": l.last().copied().unwrap_or(0),
            "bytes": by,
        })).collect::<Vec<_>>(),
    })
}

// ---------------------------------------------------------------------------
// exits / execsnoop: what the trace adds
// ---------------------------------------------------------------------------

/// Add what ftrace saw to the process lifecycle: exact start times (fork
/// or exec) for exits whose taskstats start is whole seconds, and processes
/// that exec'd in the window but neither exited nor appeared in a sample.
pub fn merge_lifecycle(
    t: &Trace,
    exits: &mut [super::process::ExitEvent],
    started: &mut Vec<(i64, super::process::ProcRow)>,
) {
    let mut fork: HashMap<i32, (i64, i32)> = HashMap::new();
    let mut exec: HashMap<i32, (i64, String)> = HashMap::new();
    for e in &t.events {
        match t.name(e) {
            "sched_process_fork" => {
                if let (Some(c), Some(p)) = (t.int(e, "child_pid"), t.int(e, "parent_pid")) {
                    fork.insert(c as i32, (e.wall, p as i32));
                }
            }
            "sched_process_exec" => {
                if let Some(p) = t.int(e, "pid") {
                    exec.entry(p as i32)
                        .or_insert((e.wall, t.str(e, "filename").unwrap_or("").to_string()));
                }
            }
            _ => {}
        }
    }
    const S: i64 = 1_000_000_000;
    for x in exits.iter_mut() {
        let pid = x.pid as i32;
        let cand = fork
            .get(&pid)
            .map(|f| f.0)
            .or_else(|| exec.get(&pid).map(|e| e.0));
        // taskstats gives the start in whole seconds and the end as start +
        // elapsed: both move to the exact fork (or exec) time.
        if let Some(w) = cand {
            if w.div_euclid(S) == x.start_ns.div_euclid(S) && w >= x.start_ns {
                let elapsed = x.end_ns - x.start_ns;
                x.start_ns = w;
                x.end_ns = w + elapsed;
            }
        }
    }
    for (pid, (wall, file)) in exec {
        let known = exits
            .iter()
            .any(|x| x.pid as i32 == pid || x.tgid as i32 == pid)
            || started.iter().any(|(_, r)| r.pid as i32 == pid);
        if known {
            continue;
        }
        let comm = file
            .rsplit('/')
            .next()
            .unwrap_or("")
            .chars()
            .take(15)
            .collect();
        started.push((
            wall,
            super::process::ProcRow {
                pid: pid as u32,
                tgid: pid as u32,
                ppid: fork.get(&pid).map(|f| f.1 as u32).unwrap_or(0),
                comm,
                cmdline: file,
                ..Default::default()
            },
        ));
    }
    started.sort_by_key(|s| s.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use lpo_format::ftrace::{EventFormat, FieldDesc, FieldKind};

    fn fd(n: &str, k: FieldKind) -> FieldDesc {
        FieldDesc {
            name: n.into(),
            ctype: String::new(),
            kind: k,
            size: 4,
        }
    }

    /// A trace with a task (pid 7) woken at 0, running at `lat` µs later,
    /// preempted, and running again; plus a block request of 250 µs.
    fn trace() -> Trace {
        let mut t = Trace {
            strings: vec![
                "".into(),
                "sleeper".into(),
                "hog".into(),
                "dd".into(),
                "W".into(),
            ],
            samples: 1,
            ..Default::default()
        };
        use FieldKind::*;
        t.formats.push(EventFormat {
            id: 1,
            system: "sched".into(),
            name: "sched_switch".into(),
            fields: vec![
                fd("prev_comm", Str),
                fd("prev_pid", Signed),
                fd("prev_state", Signed),
                fd("next_comm", Str),
                fd("next_pid", Signed),
            ],
        });
        t.formats.push(EventFormat {
            id: 2,
            system: "sched".into(),
            name: "sched_wakeup".into(),
            fields: vec![fd("comm", Str), fd("pid", Signed)],
        });
        t.formats.push(EventFormat {
            id: 3,
            system: "block".into(),
            name: "block_rq_issue".into(),
            fields: vec![
                fd("dev", Unsigned),
                fd("sector", Unsigned),
                fd("bytes", Unsigned),
                fd("comm", Str),
                fd("rwbs", Str),
            ],
        });
        t.formats.push(EventFormat {
            id: 4,
            system: "block".into(),
            name: "block_rq_complete".into(),
            fields: vec![fd("dev", Unsigned), fd("sector", Unsigned)],
        });
        let push = |t: &mut Trace, ts: u64, fmt: u32, pid: i32, vals: &[i64]| {
            let v = t.vals.len() as u32;
            t.vals.extend_from_slice(vals);
            t.events.push(Ev {
                ts,
                wall: ts as i64,
                cpu: 0,
                pid,
                flags: 0,
                preempt: 0,
                fmt,
                vals: v,
            });
        };
        push(&mut t, 1_000, 1, 9, &[1, 7]); // wake 7
        push(&mut t, 3_001_000, 0, 9, &[2, 9, 0, 1, 7]); // hog preempted, 7 in after 3 ms
        push(&mut t, 3_500_000, 0, 7, &[1, 7, 1, 2, 9]); // 7 sleeps, hog in (waited 0.499 ms)
        push(&mut t, 13_500_000, 1, 9, &[1, 7]); // wake 7 again
        push(&mut t, 13_510_000, 0, 9, &[2, 9, 0, 1, 7]); // 7 in after 10 µs
        push(&mut t, 20_000_000, 2, 7, &[(8 << 20) | 1, 100, 4096, 3, 4]);
        push(&mut t, 20_250_000, 3, 0, &[(8 << 20) | 1, 100]);
        t.disks.insert((8 << 20) | 1, "sda1".into());
        t
    }

    #[test]
    fn run_queue_latency_from_wakeups_and_preemption() {
        let t = trace();
        let (v, all, _) = sched_stats(&t);
        let s = v.iter().find(|x| x.pid == 7).unwrap();
        assert_eq!(s.comm, "sleeper");
        assert_eq!(s.waits, vec![10_000, 3_000_000]);
        assert_eq!(s.switches, 1);
        assert_eq!(s.runtime_ns, 499_000);
        assert_eq!(s.offcpu_ns, 10_010_000);
        let h = v.iter().find(|x| x.pid == 9).unwrap();
        assert_eq!(h.involuntary, 2);
        assert_eq!(h.waits, vec![499_000]);
        assert_eq!(all.0.iter().sum::<u64>(), 3);
        assert_eq!(pct(&s.waits, 50.0), 10_000);
        assert_eq!(pct(&s.waits, 99.0), 3_000_000);
        let txt = sched_text(
            &t,
            &SchedOpts {
                limit: 20,
                sort: "wait".into(),
                ..Default::default()
            },
            0,
            1,
            &chrono_tz::UTC,
        );
        assert!(txt.contains("2048 -> 4095"), "{txt}");
        assert!(
            txt.lines()
                .any(|l| l.contains(" 7 ") && l.contains("sleeper")),
            "{txt}"
        );
    }

    #[test]
    fn block_requests_pair_issue_and_complete() {
        let t = trace();
        let b = bios(&t);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (
                b[0].disk.as_str(),
                b[0].comm.as_str(),
                b[0].lat_ns,
                b[0].bytes
            ),
            ("sda1", "dd", 250_000, 4096)
        );
        let j = biolatency_json(&t, &BioOpts::default(), 0, 1);
        assert_eq!(j["processes"][0]["pid"], 7);
        assert_eq!(j["hist"][0]["lo"], 128);
    }

    #[test]
    fn log2_slots_like_bcc() {
        assert_eq!(log2_slot(0), 1);
        assert_eq!(log2_slot(1), 1);
        assert_eq!(log2_slot(2), 2);
        assert_eq!(log2_slot(3), 2);
        assert_eq!(log2_slot(4), 3);
        let mut h = Hist::default();
        h.add(5);
        assert!(h.text("usecs").contains("4 -> 7"));
    }
}
