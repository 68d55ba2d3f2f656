//! Classic-tool views for `lpo replay`: `vmstat -t`, `mpstat [-P …]`, `free`
//! and `uptime`, rendered from recorded samples as procps-ng 4.0.2 and
//! sysstat 12.6 would have printed them.
//!
//! Self-contained: depends only on `chrono`, `chrono-tz` and `serde_json`.
//!
//! Each view has a numbers struct (`…Row`/`…Block`), a text renderer and a
//! JSON renderer whose field names are the column headers. Interval views
//! (vmstat, mpstat) take the two samples that bound the interval `(prev,
//! cur)`; the interval length comes from `mono_ns` (CLOCK_BOOTTIME).
//!
//! When the two samples come from different boots ([`boot_changed`]) the
//! row is printed from absolute values: memory/process columns as usual,
//! per-second rates as 0, and CPU percentages since boot (from `cur` alone,
//! like the first line of `vmstat`). Counters that merely step backwards are
//! clamped to a zero delta. Missing columns count as 0. Nothing here panics
//! or overflows on hostile input.

use std::collections::HashMap;

use chrono::DateTime;
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------
// input model
// ---------------------------------------------------------------------------

/// One recorded sample: named u64 counters plus its times.
pub trait Sample {
    /// A column value, e.g. `cpu.user`, `cpu3.idle`, `mem.MemFree`.
    fn get(&self, name: &str) -> Option<u64>;
    /// Wall-clock time of the sample, unix ns.
    fn wall_ns(&self) -> i64;
    /// CLOCK_BOOTTIME of the sample, ns (exact interval lengths).
    fn mono_ns(&self) -> i64;
}

impl<T: Sample + ?Sized> Sample for &T {
    fn get(&self, name: &str) -> Option<u64> {
        (**self).get(name)
    }
    fn wall_ns(&self) -> i64 {
        (**self).wall_ns()
    }
    fn mono_ns(&self) -> i64 {
        (**self).mono_ns()
    }
}

/// A `HashMap`-backed [`Sample`] (tests, ad-hoc callers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapSample {
    pub values: HashMap<String, u64>,
    pub wall_ns: i64,
    pub mono_ns: i64,
}

impl MapSample {
    pub fn new(wall_ns: i64, mono_ns: i64) -> Self {
        MapSample {
            values: HashMap::new(),
            wall_ns,
            mono_ns,
        }
    }
    /// Builder-style setter.
    pub fn with(mut self, name: &str, value: u64) -> Self {
        self.values.insert(name.to_string(), value);
        self
    }
    pub fn set(&mut self, name: &str, value: u64) {
        self.values.insert(name.to_string(), value);
    }
}

impl Sample for MapSample {
    fn get(&self, name: &str) -> Option<u64> {
        self.values.get(name).copied()
    }
    fn wall_ns(&self) -> i64 {
        self.wall_ns
    }
    fn mono_ns(&self) -> i64 {
        self.mono_ns
    }
}

/// The recorded host.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    /// e.g. `x86_64`
    pub arch: String,
    pub ncpu: u32,
    pub clk_tck: u32,
    pub page_size: u32,
    pub tz: Tz,
}

fn val<S: Sample + ?Sized>(s: &S, name: &str) -> u64 {
    s.get(name).unwrap_or(0)
}

// ---------------------------------------------------------------------------
// time helpers
// ---------------------------------------------------------------------------

fn local(ns: i64, tz: &Tz) -> DateTime<Tz> {
    DateTime::from_timestamp_nanos(ns).with_timezone(tz)
}

/// `2026-11-27 14:22:05` (vmstat -t timestamps).
fn fmt_datetime(ns: i64, tz: &Tz) -> String {
    local(ns, tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `14:22:05` (mpstat, uptime).
fn fmt_hms(ns: i64, tz: &Tz) -> String {
    local(ns, tz).format("%H:%M:%S").to_string()
}

/// Zone abbreviation in force at `ns` (`JST`, `EST`, `UTC`, `+03`).
fn tz_abbrev(ns: i64, tz: &Tz) -> String {
    local(ns, tz).format("%Z").to_string()
}

// ---------------------------------------------------------------------------
// intervals, boots and CPU ticks
// ---------------------------------------------------------------------------

/// `stat.btime` jitters by a second or so between reads (it is derived from
/// the wall clock); a larger move means another boot.
const BTIME_SLACK_SECS: u64 = 5;

/// True when `prev` and `cur` cannot be from the same boot: boot time
/// moved, CLOCK_BOOTTIME went backwards, or a monotonic kernel counter
/// (`uptime.up`, `stat.ctxt`, `stat.processes`) decreased.
pub fn boot_changed<P: Sample + ?Sized, C: Sample + ?Sized>(prev: &P, cur: &C) -> bool {
    if cur.mono_ns() < prev.mono_ns() {
        return true;
    }
    if matches!(
        (prev.get("stat.btime"), cur.get("stat.btime")),
        (Some(a), Some(b)) if a.abs_diff(b) > BTIME_SLACK_SECS
    ) {
        return true;
    }
    ["uptime.up", "stat.ctxt", "stat.processes"]
        .iter()
        .any(|n| matches!((prev.get(n), cur.get(n)), (Some(a), Some(b)) if b < a))
}

/// Interval between two samples: `dt_ns` is 0 when rates cannot be computed.
#[derive(Debug, Clone, Copy)]
struct Span {
    dt_ns: u64,
    reset: bool,
}

fn span<P: Sample + ?Sized, C: Sample + ?Sized>(prev: &P, cur: &C) -> Span {
    let reset = boot_changed(prev, cur);
    let dt = if reset {
        0
    } else {
        u64::try_from(i128::from(cur.mono_ns()) - i128::from(prev.mono_ns())).unwrap_or(0)
    };
    Span { dt_ns: dt, reset }
}

/// Per-second rate of `delta` over `dt_ns`, rounded half up (for whole-second
/// intervals this equals procps' `(delta + sleep/2) / sleep`).
fn rate(delta: u64, dt_ns: u64) -> u64 {
    if dt_ns == 0 {
        return 0;
    }
    let r = (u128::from(delta) * 1_000_000_000 + u128::from(dt_ns / 2)) / u128::from(dt_ns);
    u64::try_from(r).unwrap_or(u64::MAX)
}

/// CPU time counters of one `/proc/stat` cpu line, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl CpuTicks {
    /// Read `<prefix>.<field>` (prefix `cpu` or `cpu3`); `None` if no field exists.
    pub fn read<S: Sample + ?Sized>(s: &S, prefix: &str) -> Option<CpuTicks> {
        let mut any = false;
        let mut f = |name: &str| {
            let v = s.get(&format!("{prefix}.{name}"));
            any |= v.is_some();
            v.unwrap_or(0)
        };
        let t = CpuTicks {
            user: f("user"),
            nice: f("nice"),
            system: f("system"),
            idle: f("idle"),
            iowait: f("iowait"),
            irq: f("irq"),
            softirq: f("softirq"),
            steal: f("steal"),
            guest: f("guest"),
            guest_nice: f("guest_nice"),
        };
        any.then_some(t)
    }

    /// user+nice+system+idle+iowait+irq+softirq+steal (guest is inside user).
    pub fn total(&self) -> u128 {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .iter()
        .map(|&v| u128::from(v))
        .sum()
    }

    /// Field-wise `self - prev`, each clamped at 0.
    fn saturating_delta(&self, prev: &CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(prev.user),
            nice: self.nice.saturating_sub(prev.nice),
            system: self.system.saturating_sub(prev.system),
            idle: self.idle.saturating_sub(prev.idle),
            iowait: self.iowait.saturating_sub(prev.iowait),
            irq: self.irq.saturating_sub(prev.irq),
            softirq: self.softirq.saturating_sub(prev.softirq),
            steal: self.steal.saturating_sub(prev.steal),
            guest: self.guest.saturating_sub(prev.guest),
            guest_nice: self.guest_nice.saturating_sub(prev.guest_nice),
        }
    }
}

fn json_str(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

// ---------------------------------------------------------------------------
// vmstat
// ---------------------------------------------------------------------------

/// One `vmstat -t` row (procps-ng 4.0.2 semantics). Memory in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmstatRow {
    /// Wall time of the sample that ends the interval.
    pub wall_ns: i64,
    /// The interval crosses a reboot: rates are 0, CPU % are since boot.
    pub reset: bool,
    pub r: u64,
    pub b: u64,
    pub swpd: u64,
    pub free: u64,
    pub buff: u64,
    pub cache: u64,
    pub si: u64,
    pub so: u64,
    pub bi: u64,
    pub bo: u64,
    /// Column `in` (interrupts/s).
    pub intr: u64,
    pub cs: u64,
    pub us: u64,
    pub sy: u64,
    pub id: u64,
    pub wa: u64,
    pub st: u64,
}

/// procps' `unitConvert()` for the default KiB unit goes through a C
/// `float`, so values above 2^24 KiB (16 GiB) lose low bits exactly as the
/// real tool prints them.
fn unit_convert(kib: u64) -> u64 {
    kib as f32 as u64
}

/// vmstat's row for the interval ending at `cur`.
pub fn vmstat_row<P: Sample + ?Sized, C: Sample + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
) -> VmstatRow {
    let sp = span(prev, cur);
    let delta = |name: &str| {
        if sp.reset {
            0
        } else {
            val(cur, name).saturating_sub(val(prev, name))
        }
    };
    let kb_per_page = match host.page_size {
        0 => 4,
        p => u64::from(p / 1024),
    };

    // CPU: after a reboot, cur's absolute ticks are the since-boot delta.
    let c = CpuTicks::read(cur, "cpu").unwrap_or_default();
    let p = if sp.reset {
        CpuTicks::default()
    } else {
        CpuTicks::read(prev, "cpu").unwrap_or_default()
    };
    let d = c.saturating_delta(&p);
    let us = u128::from(d.user) + u128::from(d.nice);
    let sy = u128::from(d.system) + u128::from(d.irq) + u128::from(d.softirq);
    let mut id = u128::from(d.idle);
    let wa = u128::from(d.iowait);
    let st = u128::from(d.steal);
    let mut div = us + sy + id + wa + st;
    if div == 0 {
        div = 1;
        id = 1;
    }
    let pct = |x: u128| u64::try_from((100 * x + div / 2) / div).unwrap_or(u64::MAX);

    let mem = |k: &str| val(cur, &format!("mem.{k}"));
    VmstatRow {
        wall_ns: cur.wall_ns(),
        reset: sp.reset,
        r: val(cur, "stat.procs_running"),
        b: val(cur, "stat.procs_blocked"),
        swpd: unit_convert(mem("SwapTotal").saturating_sub(mem("SwapFree"))),
        free: unit_convert(mem("MemFree")),
        buff: unit_convert(mem("Buffers")),
        cache: unit_convert(mem("Cached").saturating_add(mem("SReclaimable"))),
        si: rate(
            unit_convert(delta("vm.pswpin").saturating_mul(kb_per_page)),
            sp.dt_ns,
        ),
        so: rate(
            unit_convert(delta("vm.pswpout").saturating_mul(kb_per_page)),
            sp.dt_ns,
        ),
        bi: rate(delta("vm.pgpgin"), sp.dt_ns),
        bo: rate(delta("vm.pgpgout"), sp.dt_ns),
        intr: rate(delta("stat.intr"), sp.dt_ns),
        cs: rate(delta("stat.ctxt"), sp.dt_ns),
        us: pct(us),
        sy: pct(sy),
        id: pct(id),
        wa: pct(wa),
        st: pct(st),
    }
}

/// The two `vmstat -t` header lines (each ending in `\n`); the zone
/// abbreviation is the one in force at `at_ns`.
pub fn vmstat_header(host: &Host, at_ns: i64) -> String {
    let abbr: String = tz_abbrev(at_ns, &host.tz).chars().take(19).collect();
    format!(
        "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu----- -----timestamp-----\n\
         {:>2} {:>2} {:>6} {:>6} {:>6} {:>6} {:>4} {:>4} {:>5} {:>5} {:>4} {:>4} {:>2} {:>2} {:>2} {:>2} {:>2} {:>19}\n",
        "r",
        "b",
        "swpd",
        "free",
        "buff",
        "cache",
        "si",
        "so",
        "bi",
        "bo",
        "in",
        "cs",
        "us",
        "sy",
        "id",
        "wa",
        "st",
        abbr
    )
}

/// One `vmstat -t` data line (ending in `\n`). Numbers wider than their
/// column push the rest of the line right, as in procps.
pub fn vmstat_format_row(row: &VmstatRow, host: &Host) -> String {
    format!(
        "{:>2} {:>2} {:>6} {:>6} {:>6} {:>6} {:>4} {:>4} {:>5} {:>5} {:>4} {:>4} {:>2} {:>2} {:>2} {:>2} {:>2} {}\n",
        row.r,
        row.b,
        row.swpd,
        row.free,
        row.buff,
        row.cache,
        row.si,
        row.so,
        row.bi,
        row.bo,
        row.intr,
        row.cs,
        row.us,
        row.sy,
        row.id,
        row.wa,
        row.st,
        fmt_datetime(row.wall_ns, &host.tz)
    )
}

/// JSON object keyed by the column headers (`r`, `b`, `swpd`, … `st`,
/// `timestamp`).
pub fn vmstat_json(row: &VmstatRow, host: &Host) -> Value {
    json!({
        "r": row.r, "b": row.b,
        "swpd": row.swpd, "free": row.free, "buff": row.buff, "cache": row.cache,
        "si": row.si, "so": row.so, "bi": row.bi, "bo": row.bo,
        "in": row.intr, "cs": row.cs,
        "us": row.us, "sy": row.sy, "id": row.id, "wa": row.wa, "st": row.st,
        "timestamp": fmt_datetime(row.wall_ns, &host.tz),
    })
}

/// One row per consecutive pair of samples.
pub fn vmstat_rows<S: Sample>(samples: &[S], host: &Host) -> Vec<VmstatRow> {
    samples
        .windows(2)
        .map(|w| vmstat_row(&w[0], &w[1], host))
        .collect()
}

/// Like `vmstat -t N`: headers once, then one row per interval. Empty input
/// gives an empty string; a single sample gives only the headers.
pub fn vmstat_series<S: Sample>(samples: &[S], host: &Host) -> String {
    let Some(first) = samples.first() else {
        return String::new();
    };
    let mut out = vmstat_header(host, first.wall_ns());
    for row in vmstat_rows(samples, host) {
        out.push_str(&vmstat_format_row(&row, host));
    }
    out
}

/// JSON array of [`vmstat_json`] rows.
pub fn vmstat_series_json<S: Sample>(samples: &[S], host: &Host) -> Value {
    Value::Array(
        vmstat_rows(samples, host)
            .iter()
            .map(|r| vmstat_json(r, host))
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// mpstat
// ---------------------------------------------------------------------------

/// Linux's largest NR_CPUS; bounds CPU lists and a corrupt `Host::ncpu`.
const MAX_CPUS: u32 = 8192;

/// Which CPUs `mpstat` reports (`-P`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CpuSelection {
    /// No `-P`: only the `all` row.
    #[default]
    Summary,
    /// `-P ALL`: `all` and every CPU (offline ones as zeros).
    All,
    /// `-P ON`: `all` and the online CPUs.
    Online,
    /// `-P 0,2-3` (optionally with `all` in the list).
    List { all: bool, cpus: Vec<u32> },
}

impl CpuSelection {
    /// Parse a `-P` argument: `ALL`, `ON`, or a list like `0,1`, `0-3,7`,
    /// `all,2`.
    pub fn parse(arg: &str) -> Result<CpuSelection, String> {
        let a = arg.trim();
        if a.eq_ignore_ascii_case("ALL") {
            return Ok(CpuSelection::All);
        }
        if a.eq_ignore_ascii_case("ON") {
            return Ok(CpuSelection::Online);
        }
        let bad = || {
            let shown: String = a.chars().take(40).collect();
            format!("bad CPU list {shown:?}: expected ALL, ON or a list like 0,2-3")
        };
        let num = |t: &str| -> Result<u32, String> {
            if t.is_empty() || t.len() > 6 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse().ok().filter(|&n| n < MAX_CPUS).ok_or_else(bad)
        };
        let mut all = false;
        let mut cpus = Vec::new();
        for tok in a.split(',') {
            let tok = tok.trim();
            if tok.eq_ignore_ascii_case("all") {
                all = true;
            } else if let Some((lo, hi)) = tok.split_once('-') {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(bad());
                }
                cpus.extend(lo..=hi);
            } else {
                cpus.push(num(tok)?);
            }
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuSelection::List { all, cpus })
    }

    fn wants_all(&self) -> bool {
        match self {
            CpuSelection::List { all, .. } => *all,
            _ => true,
        }
    }

    /// CPUs to report, given the host's CPU count.
    fn cpus(&self, ncpu: u32) -> Vec<u32> {
        match self {
            CpuSelection::Summary => Vec::new(),
            CpuSelection::All | CpuSelection::Online => (0..ncpu.min(MAX_CPUS)).collect(),
            CpuSelection::List { cpus, .. } => cpus.iter().copied().filter(|&c| c < ncpu).collect(),
        }
    }
}

/// One mpstat row: percentages of the CPU's tick delta.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MpstatRow {
    /// `None` is the `all` row.
    pub cpu: Option<u32>,
    pub usr: f64,
    pub nice: f64,
    pub sys: f64,
    pub iowait: f64,
    pub irq: f64,
    pub soft: f64,
    pub steal: f64,
    pub guest: f64,
    pub gnice: f64,
    pub idle: f64,
}

/// One mpstat report block (an interval, or the `Average:` block).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MpstatBlock {
    pub prev_wall_ns: i64,
    pub wall_ns: i64,
    /// The interval crosses a reboot (values are since boot).
    pub reset: bool,
    pub rows: Vec<MpstatRow>,
}

/// Clamped tick deltas of one CPU over one or more intervals, following
/// sysstat's `ll_sp_value()` / `get_per_cpu_interval()` rules.
#[derive(Debug, Clone, Copy, Default)]
struct CpuDelta {
    offline: bool,
    usr: u64,
    nice: u64,
    sys: u64,
    iowait: u64,
    irq: u64,
    soft: u64,
    steal: u64,
    guest: u64,
    gnice: u64,
    idle: u64,
    itv: u128,
}

impl CpuDelta {
    fn compute(prev: &CpuTicks, cur: &CpuTicks) -> CpuDelta {
        let d = |p: u64, c: u64| c.saturating_sub(p);
        let usr_c = cur.user.saturating_sub(cur.guest);
        let usr_p = prev.user.saturating_sub(prev.guest);
        let nice_c = cur.nice.saturating_sub(cur.guest_nice);
        let nice_p = prev.nice.saturating_sub(prev.guest_nice);
        // get_per_cpu_interval(): guest running ahead of user widens the
        // interval; idle/iowait restarting from zero (CPU back online) count
        // from zero.
        let mut ishift: i128 = 0;
        if usr_c < usr_p {
            ishift += i128::from(usr_p - usr_c);
        }
        if nice_c < nice_p {
            ishift += i128::from(nice_p - nice_c);
        }
        let mut p = *prev;
        if cur.idle < p.idle {
            p.idle = 0;
        }
        if cur.iowait < p.iowait {
            p.iowait = 0;
        }
        let itv = cur.total() as i128 - p.total() as i128 + ishift;
        CpuDelta {
            offline: false,
            usr: d(usr_p, usr_c),
            nice: d(nice_p, nice_c),
            sys: d(p.system, cur.system),
            iowait: d(p.iowait, cur.iowait),
            irq: d(p.irq, cur.irq),
            soft: d(p.softirq, cur.softirq),
            steal: d(p.steal, cur.steal),
            guest: d(p.guest, cur.guest),
            gnice: d(p.guest_nice, cur.guest_nice),
            idle: d(p.idle, cur.idle),
            itv: u128::try_from(itv).unwrap_or(0),
        }
    }

    fn add(&mut self, o: &CpuDelta) {
        self.usr = self.usr.saturating_add(o.usr);
        self.nice = self.nice.saturating_add(o.nice);
        self.sys = self.sys.saturating_add(o.sys);
        self.iowait = self.iowait.saturating_add(o.iowait);
        self.irq = self.irq.saturating_add(o.irq);
        self.soft = self.soft.saturating_add(o.soft);
        self.steal = self.steal.saturating_add(o.steal);
        self.guest = self.guest.saturating_add(o.guest);
        self.gnice = self.gnice.saturating_add(o.gnice);
        self.idle = self.idle.saturating_add(o.idle);
        self.itv = self.itv.saturating_add(o.itv);
    }

    fn row(&self, cpu: Option<u32>) -> MpstatRow {
        if self.offline {
            return MpstatRow {
                cpu,
                ..MpstatRow::default()
            };
        }
        if self.itv == 0 {
            // Tickless CPU: no change at all.
            return MpstatRow {
                cpu,
                idle: 100.0,
                ..MpstatRow::default()
            };
        }
        let itv = self.itv as f64;
        // SP_VALUE(): ((double) delta) / itv * 100
        let p = |v: u64| v as f64 / itv * 100.0;
        MpstatRow {
            cpu,
            usr: p(self.usr),
            nice: p(self.nice),
            sys: p(self.sys),
            iowait: p(self.iowait),
            irq: p(self.irq),
            soft: p(self.soft),
            steal: p(self.steal),
            guest: p(self.guest),
            gnice: p(self.gnice),
            idle: p(self.idle),
        }
    }
}

/// Deltas for the `all` row (None) and each selected CPU over one interval.
fn mpstat_deltas<P: Sample + ?Sized, C: Sample + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
    sel: &CpuSelection,
    reset: bool,
) -> Vec<(Option<u32>, CpuDelta)> {
    let mut out = Vec::new();
    let one = |prefix: &str| -> CpuDelta {
        let Some(c) = CpuTicks::read(cur, prefix) else {
            return CpuDelta {
                offline: true,
                ..CpuDelta::default()
            };
        };
        let p = if reset {
            CpuTicks::default()
        } else {
            CpuTicks::read(prev, prefix).unwrap_or_default()
        };
        CpuDelta::compute(&p, &c)
    };
    if sel.wants_all() {
        let mut d = one("cpu");
        // "all" is never reported offline; with no data it reads as idle.
        d.offline = false;
        out.push((None, d));
    }
    for n in sel.cpus(host.ncpu) {
        let prefix = format!("cpu{n}");
        let mut d = one(&prefix);
        // sysstat: an offline CPU is missing from /proc/stat, or all zero.
        if !d.offline && CpuTicks::read(cur, &prefix).is_some_and(|t| t.total() == 0) {
            d.offline = true;
        }
        if d.offline && *sel == CpuSelection::Online {
            continue;
        }
        out.push((Some(n), d));
    }
    out
}

/// The mpstat block for the interval ending at `cur`.
pub fn mpstat_block<P: Sample + ?Sized, C: Sample + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
    sel: &CpuSelection,
) -> MpstatBlock {
    let reset = boot_changed(prev, cur);
    MpstatBlock {
        prev_wall_ns: prev.wall_ns(),
        wall_ns: cur.wall_ns(),
        reset,
        rows: mpstat_deltas(prev, cur, host, sel, reset)
            .iter()
            .map(|(cpu, d)| d.row(*cpu))
            .collect(),
    }
}

/// The `Average:` block over all intervals of `samples` (tick deltas
/// summed per interval, so a reboot inside the range is handled). A CPU is
/// offline if it is offline in the last sample. `None` with < 2 samples.
pub fn mpstat_average<S: Sample>(
    samples: &[S],
    host: &Host,
    sel: &CpuSelection,
) -> Option<MpstatBlock> {
    let (first, last) = (samples.first()?, samples.last()?);
    if samples.len() < 2 {
        return None;
    }
    let mut acc: Vec<(Option<u32>, CpuDelta)> = Vec::new();
    let mut any_reset = false;
    for w in samples.windows(2) {
        let reset = boot_changed(&w[0], &w[1]);
        any_reset |= reset;
        for (cpu, d) in mpstat_deltas(&w[0], &w[1], host, sel, reset) {
            match acc.iter_mut().find(|(c, _)| *c == cpu) {
                Some((_, a)) => {
                    a.add(&d);
                    a.offline = d.offline;
                }
                None => acc.push((cpu, d)),
            }
        }
    }
    // Keep only rows present in the last interval (e.g. -P ON), in order.
    let last_rows = mpstat_deltas(&samples[samples.len() - 2], last, host, sel, false);
    let rows = last_rows
        .iter()
        .filter_map(|(cpu, _)| acc.iter().find(|(c, _)| c == cpu))
        .map(|(cpu, d)| d.row(*cpu))
        .collect();
    Some(MpstatBlock {
        prev_wall_ns: first.wall_ns(),
        wall_ns: last.wall_ns(),
        reset: any_reset,
        rows,
    })
}

/// `Linux <kernel> (<host>) \t<MM/DD/YYYY> \t_<arch>_\t(<n> CPU)\n`
/// (sysstat's `print_gal_header()`; the date is the one at `at_ns`).
pub fn mpstat_banner(host: &Host, at_ns: i64) -> String {
    format!(
        "Linux {} ({}) \t{} \t_{}_\t({} CPU)\n",
        host.kernel,
        host.hostname,
        local(at_ns, &host.tz).format("%m/%d/%Y"),
        host.arch,
        host.ncpu
    )
}

const MPSTAT_COLUMNS: &str =
    "  CPU    %usr   %nice    %sys %iowait    %irq   %soft  %steal  %guest  %gnice   %idle";

fn mpstat_lines(block: &MpstatBlock, head_label: &str, row_label: &str) -> String {
    let mut out = format!("\n{head_label:<11}{MPSTAT_COLUMNS}\n");
    for r in &block.rows {
        let cpu = r.cpu.map_or_else(|| "all".to_string(), |n| n.to_string());
        out.push_str(&format!("{row_label:<11} {cpu:>4}"));
        for v in [
            r.usr, r.nice, r.sys, r.iowait, r.irq, r.soft, r.steal, r.guest, r.gnice, r.idle,
        ] {
            out.push_str(&format!(" {v:>7.2}"));
        }
        out.push('\n');
    }
    out
}

/// An interval block: a blank line, the header stamped with the previous
/// sample's time, then the rows stamped with the current one (24-hour).
pub fn mpstat_format_block(block: &MpstatBlock, host: &Host) -> String {
    mpstat_lines(
        block,
        &fmt_hms(block.prev_wall_ns, &host.tz),
        &fmt_hms(block.wall_ns, &host.tz),
    )
}

/// The `Average:` block.
pub fn mpstat_format_average(block: &MpstatBlock) -> String {
    mpstat_lines(block, "Average:", "Average:")
}

fn round2(v: f64) -> Value {
    // Same digits as the text output.
    format!("{v:.2}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn mpstat_rows_json(block: &MpstatBlock) -> Value {
    Value::Array(
        block
            .rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                let cpu = r.cpu.map_or_else(|| "all".to_string(), |n| n.to_string());
                m.insert("CPU".into(), json_str(cpu));
                for (k, v) in [
                    ("%usr", r.usr),
                    ("%nice", r.nice),
                    ("%sys", r.sys),
                    ("%iowait", r.iowait),
                    ("%irq", r.irq),
                    ("%soft", r.soft),
                    ("%steal", r.steal),
                    ("%guest", r.guest),
                    ("%gnice", r.gnice),
                    ("%idle", r.idle),
                ] {
                    m.insert(k.into(), round2(v));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// `{"timestamp": "2026-11-27 14:22:07", "cpus": [{"CPU": "all", "%usr": 37.5, …}]}`
pub fn mpstat_json(block: &MpstatBlock, host: &Host) -> Value {
    json!({
        "timestamp": fmt_datetime(block.wall_ns, &host.tz),
        "cpus": mpstat_rows_json(block),
    })
}

/// All interval blocks of a series.
pub fn mpstat_blocks<S: Sample>(
    samples: &[S],
    host: &Host,
    sel: &CpuSelection,
) -> Vec<MpstatBlock> {
    samples
        .windows(2)
        .map(|w| mpstat_block(&w[0], &w[1], host, sel))
        .collect()
}

/// Like `mpstat [-P …] N`: banner, one block per interval, then `Average:`.
/// Empty input gives an empty string; one sample gives only the banner.
pub fn mpstat_series<S: Sample>(samples: &[S], host: &Host, sel: &CpuSelection) -> String {
    let Some(first) = samples.first() else {
        return String::new();
    };
    let mut out = mpstat_banner(host, first.wall_ns());
    for b in mpstat_blocks(samples, host, sel) {
        out.push_str(&mpstat_format_block(&b, host));
    }
    if let Some(avg) = mpstat_average(samples, host, sel) {
        out.push_str(&mpstat_format_average(&avg));
    }
    out
}

/// `{"host": {...}, "intervals": [mpstat_json…], "average": [rows] | null}`
pub fn mpstat_series_json<S: Sample>(samples: &[S], host: &Host, sel: &CpuSelection) -> Value {
    json!({
        "host": {
            "nodename": host.hostname,
            "release": host.kernel,
            "machine": host.arch,
            "number-of-cpus": host.ncpu,
        },
        "intervals": mpstat_blocks(samples, host, sel)
            .iter()
            .map(|b| mpstat_json(b, host))
            .collect::<Vec<_>>(),
        "average": mpstat_average(samples, host, sel).map(|a| mpstat_rows_json(&a)),
    })
}

// ---------------------------------------------------------------------------
// free
// ---------------------------------------------------------------------------

/// `free` numbers in KiB (procps-ng 4.0.2 rules).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FreeRow {
    pub wall_ns: i64,
    pub total: u64,
    /// MemTotal - MemAvailable; without MemAvailable, total - free - buff/cache.
    pub used: u64,
    pub free: u64,
    /// Shmem
    pub shared: u64,
    /// Buffers + Cached + SReclaimable
    pub buff_cache: u64,
    /// MemAvailable (MemFree if missing or larger than MemTotal)
    pub available: u64,
    pub swap_total: u64,
    pub swap_used: u64,
    pub swap_free: u64,
}

/// Display unit of `free`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FreeUnit {
    /// `-b`
    Bytes,
    /// default / `-k`
    #[default]
    Kibi,
    /// `-m`
    Mebi,
    /// `-g`
    Gibi,
    /// `-h`
    Human,
}

pub fn free_row<S: Sample + ?Sized>(cur: &S) -> FreeRow {
    let mem = |k: &str| cur.get(&format!("mem.{k}"));
    let m0 = |k: &str| mem(k).unwrap_or(0);
    let total = m0("MemTotal");
    let free = m0("MemFree");
    let buff_cache = m0("Buffers")
        .saturating_add(m0("Cached"))
        .saturating_add(m0("SReclaimable"));
    let (used, available) = match mem("MemAvailable") {
        Some(avail) => {
            // libproc2: an "available" above "total" (containers) is bogus.
            let avail = if avail > total { free } else { avail };
            (total.saturating_sub(avail), avail)
        }
        None => {
            let used = total
                .checked_sub(free)
                .and_then(|v| v.checked_sub(buff_cache))
                .unwrap_or_else(|| total.saturating_sub(free));
            (used, free)
        }
    };
    let swap_total = m0("SwapTotal");
    let swap_free = m0("SwapFree");
    FreeRow {
        wall_ns: cur.wall_ns(),
        total,
        used,
        free,
        shared: m0("Shmem"),
        buff_cache,
        available,
        swap_total,
        swap_used: swap_total.saturating_sub(swap_free),
        swap_free,
    }
}

/// procps `scale_size()` for the binary (non `--si`) units.
fn scale_size(kib: u64, unit: FreeUnit) -> String {
    let bytes = u128::from(kib) * 1024;
    match unit {
        FreeUnit::Bytes => bytes.to_string(),
        FreeUnit::Kibi => kib.to_string(),
        FreeUnit::Mebi => (kib / 1024).to_string(),
        FreeUnit::Gibi => (kib / (1024 * 1024)).to_string(),
        FreeUnit::Human => {
            let b = format!("{bytes}B");
            if b.len() <= 4 {
                return b;
            }
            let mut last = b;
            for (i, u) in ['K', 'M', 'G', 'T', 'P'].iter().enumerate() {
                let scaled = bytes as f64 / 1024f64.powi(i as i32 + 1);
                // C: "%.1f" of a (float) cast, then "%ld" truncation.
                let s = format!("{:.1}{u}i", scaled as f32 as f64);
                if s.len() <= 5 {
                    return s;
                }
                last = format!("{}{u}i", scaled as i64);
                if last.len() <= 5 {
                    return last;
                }
            }
            last
        }
    }
}

/// The three lines of `free` (header, `Mem:`, `Swap:`), each ending in `\n`.
pub fn free_format(row: &FreeRow, unit: FreeUnit) -> String {
    // procps 4: the label padded to 9 columns, then "%11s" and " %11s"…
    let line = |label: &str, vals: &[u64]| {
        let mut l = format!("{label:<9}");
        for (i, v) in vals.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            l.push_str(&format!("{sep}{:>11}", scale_size(*v, unit)));
        }
        l.push('\n');
        l
    };
    let mut out = String::from(
        "               total        used        free      shared  buff/cache   available\n",
    );
    out.push_str(&line(
        "Mem:",
        &[
            row.total,
            row.used,
            row.free,
            row.shared,
            row.buff_cache,
            row.available,
        ],
    ));
    out.push_str(&line(
        "Swap:",
        &[row.swap_total, row.swap_used, row.swap_free],
    ));
    out
}

/// `{"timestamp", "Mem": {"total", "used", "free", "shared", "buff/cache",
/// "available"}, "Swap": {"total", "used", "free"}}`, values in KiB.
pub fn free_json(row: &FreeRow, host: &Host) -> Value {
    json!({
        "timestamp": fmt_datetime(row.wall_ns, &host.tz),
        "unit": "KiB",
        "Mem": {
            "total": row.total, "used": row.used, "free": row.free,
            "shared": row.shared, "buff/cache": row.buff_cache, "available": row.available,
        },
        "Swap": { "total": row.swap_total, "used": row.swap_used, "free": row.swap_free },
    })
}

/// Like `free -s N -c M`: one block per sample, separated by a blank line.
pub fn free_series<S: Sample>(samples: &[S], unit: FreeUnit) -> String {
    samples
        .iter()
        .map(|s| free_format(&free_row(s), unit))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn free_series_json<S: Sample>(samples: &[S], host: &Host) -> Value {
    Value::Array(
        samples
            .iter()
            .map(|s| free_json(&free_row(s), host))
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// uptime
// ---------------------------------------------------------------------------

/// One `/proc/pressure/<resource>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PsiLine {
    /// `cpu`, `memory`, `io` or `irq`
    pub resource: &'static str,
    /// `some` or `full`
    pub kind: &'static str,
    /// ×100
    pub avg10: u64,
    pub avg60: u64,
    pub avg300: u64,
    /// µs
    pub total: u64,
}

/// `uptime` numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UptimeRow {
    pub wall_ns: i64,
    /// Whole seconds since boot (`uptime.up`, else wall - `stat.btime`).
    pub up_secs: u64,
    /// Load averages ×100.
    pub load1: u64,
    pub load5: u64,
    pub load15: u64,
    pub psi: Vec<PsiLine>,
}

const PSI_RESOURCES: [&str; 4] = ["cpu", "memory", "io", "irq"];
const PSI_KINDS: [&str; 2] = ["some", "full"];

pub fn uptime_row<S: Sample + ?Sized>(cur: &S) -> UptimeRow {
    let up_secs = match (cur.get("uptime.up"), cur.get("stat.btime")) {
        (Some(cs), _) => cs / 100,
        (None, Some(bt)) => {
            let wall = cur.wall_ns().div_euclid(1_000_000_000);
            u64::try_from(i128::from(wall) - i128::from(bt)).unwrap_or(0)
        }
        (None, None) => 0,
    };
    let mut psi = Vec::new();
    for resource in PSI_RESOURCES {
        for kind in PSI_KINDS {
            let key = |f: &str| format!("psi.{resource}.{kind}.{f}");
            let fields = ["avg10", "avg60", "avg300", "total"].map(|f| cur.get(&key(f)));
            if fields.iter().all(Option::is_none) {
                continue;
            }
            let [avg10, avg60, avg300, total] = fields.map(|v| v.unwrap_or(0));
            psi.push(PsiLine {
                resource,
                kind,
                avg10,
                avg60,
                avg300,
                total,
            });
        }
    }
    UptimeRow {
        wall_ns: cur.wall_ns(),
        up_secs,
        load1: val(cur, "load.avg1"),
        load5: val(cur, "load.avg5"),
        load15: val(cur, "load.avg15"),
        psi,
    }
}

/// A ×100 fixed-point value as `%.2f`.
fn centi(v: u64) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

/// procps' ` 14:22:05 up 3 days,  2:04,  load average: 0.00, 0.01, 0.05`
/// (the users field is not recorded, so it is left out), then one
/// `PSI <resource> <some|full> avg10=… avg60=… avg300=… total=…` line per
/// recorded pressure line. Every line ends in `\n`.
pub fn uptime_format(row: &UptimeRow, host: &Host) -> String {
    let up = row.up_secs;
    let (days, hours, mins) = (up / 86_400, (up / 3600) % 24, (up / 60) % 60);
    let mut out = format!(" {} up ", fmt_hms(row.wall_ns, &host.tz));
    if days > 0 {
        out.push_str(&format!(
            "{days} {}, ",
            if days > 1 { "days" } else { "day" }
        ));
    }
    if hours > 0 {
        out.push_str(&format!("{hours:2}:{mins:02}, "));
    } else {
        out.push_str(&format!("{mins} min, "));
    }
    out.push_str(&format!(
        " load average: {}, {}, {}\n",
        centi(row.load1),
        centi(row.load5),
        centi(row.load15)
    ));
    for p in &row.psi {
        out.push_str(&format!(
            "PSI {} {} avg10={} avg60={} avg300={} total={}\n",
            p.resource,
            p.kind,
            centi(p.avg10),
            centi(p.avg60),
            centi(p.avg300),
            p.total
        ));
    }
    out
}

/// `{"timestamp", "up": seconds, "load average": [1, 5, 15],
/// "PSI": [{"resource", "kind", "avg10", "avg60", "avg300", "total"}]}`
pub fn uptime_json(row: &UptimeRow, host: &Host) -> Value {
    let l = |v: u64| round2(v as f64 / 100.0);
    json!({
        "timestamp": fmt_datetime(row.wall_ns, &host.tz),
        "up": row.up_secs,
        "load average": [l(row.load1), l(row.load5), l(row.load15)],
        "PSI": row.psi.iter().map(|p| json!({
            "resource": p.resource, "kind": p.kind,
            "avg10": l(p.avg10), "avg60": l(p.avg60), "avg300": l(p.avg300),
            "total": p.total,
        })).collect::<Vec<_>>(),
    })
}

/// One `uptime` report per sample.
pub fn uptime_series<S: Sample>(samples: &[S], host: &Host) -> String {
    samples
        .iter()
        .map(|s| uptime_format(&uptime_row(s), host))
        .collect()
}

pub fn uptime_series_json<S: Sample>(samples: &[S], host: &Host) -> Value {
    Value::Array(
        samples
            .iter()
            .map(|s| uptime_json(&uptime_row(s), host))
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    /// 2026-11-27 05:22:05 UTC = 14:22:05 JST.
    const T0: i64 = 1_795_756_925 * S;

    fn host() -> Host {
        Host {
            hostname: "db1".into(),
            kernel: "6.1.0-28-amd64".into(),
            arch: "x86_64".into(),
            ncpu: 2,
            clk_tck: 100,
            page_size: 4096,
            tz: chrono_tz::Asia::Tokyo,
        }
    }

    use lpo_format::schema::system::CPU_FIELDS as FIELDS;

    /// A sample with per-CPU ticks (aggregate = sum) and the given extra columns.
    fn sample(wall: i64, mono: i64, cpus: &[[u64; 10]], extra: &[(&str, u64)]) -> MapSample {
        let mut s = MapSample::new(wall, mono);
        let mut agg = [0u64; 10];
        for (n, t) in cpus.iter().enumerate() {
            for (i, f) in FIELDS.iter().enumerate() {
                s.set(&format!("cpu{n}.{f}"), t[i]);
                agg[i] = agg[i].saturating_add(t[i]);
            }
        }
        for (i, f) in FIELDS.iter().enumerate() {
            s.set(&format!("cpu.{f}"), agg[i]);
        }
        for (k, v) in extra {
            s.set(k, *v);
        }
        s
    }

    fn mem_cols(free: u64) -> Vec<(&'static str, u64)> {
        vec![
            ("mem.MemTotal", 16_314_236),
            ("mem.MemFree", free),
            ("mem.MemAvailable", 9_876_543),
            ("mem.Buffers", 234_567),
            ("mem.Cached", 3_456_789),
            ("mem.SReclaimable", 123_456),
            ("mem.Shmem", 45_678),
            ("mem.SwapTotal", 2_097_148),
            ("mem.SwapFree", 2_000_000),
            ("stat.procs_running", 3),
            ("stat.procs_blocked", 1),
            ("stat.btime", 1_795_000_000),
        ]
    }

    /// Three samples 2 s apart (14:22:05, :07, :09 JST).
    fn series() -> Vec<MapSample> {
        let mut e0 = mem_cols(1_234_567);
        e0.extend([
            ("stat.intr", 1_000_000),
            ("stat.ctxt", 5_000_000),
            ("vm.pgpgin", 100_000),
            ("vm.pgpgout", 200_000),
            ("vm.pswpin", 10),
            ("vm.pswpout", 20),
        ]);
        let mut e1 = mem_cols(1_234_567);
        e1.extend([
            ("stat.intr", 1_002_345),
            ("stat.ctxt", 5_004_321),
            ("vm.pgpgin", 100_101),
            ("vm.pgpgout", 200_400),
            ("vm.pswpin", 13),
            ("vm.pswpout", 20),
        ]);
        let mut e2 = mem_cols(1_234_000);
        e2.extend([
            ("stat.intr", 1_002_345),
            ("stat.ctxt", 5_004_321),
            ("vm.pgpgin", 100_101),
            ("vm.pgpgout", 200_400),
            ("vm.pswpin", 13),
            ("vm.pswpout", 20),
        ]);
        let p0 = [5000, 100, 2000, 90000, 500, 100, 200, 0, 1000, 50];
        let p1 = [4000, 80, 1800, 95000, 400, 90, 150, 10, 800, 40];
        let c0 = [5120, 115, 2030, 90020, 510, 103, 202, 0, 1030, 60];
        let c1 = [4080, 85, 1830, 95060, 414, 93, 154, 14, 820, 40];
        let mut d0 = c0;
        d0[3] += 200; // cpu0: idle only
        let mut d1 = c1;
        d1[0] += 200; // cpu1: user only
        vec![
            sample(T0, 1000 * S, &[p0, p1], &e0),
            sample(T0 + 2 * S, 1002 * S, &[c0, c1], &e1),
            sample(T0 + 4 * S, 1004 * S, &[d0, d1], &e2),
        ]
    }

    const VM_HEAD: &str = "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu----- -----timestamp-----\n r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st                 JST\n";

    #[test]
    fn vmstat_two_samples() {
        let s = series();
        let h = host();
        let row = vmstat_row(&s[0], &s[1], &h);
        assert!(!row.reset);
        assert_eq!(
            vmstat_format_row(&row, &h),
            " 3  1  97148 1234567 234567 3580245    6    0    51   200 1173 2161 55 18 20  6  1 2026-11-27 14:22:07\n"
        );
        assert_eq!(vmstat_header(&h, T0), VM_HEAD);
        let j = vmstat_json(&row, &h);
        assert_eq!(j["in"], 1173);
        assert_eq!(j["cs"], 2161);
        assert_eq!(j["us"], 55);
        assert_eq!(j["swpd"], 97148);
        assert_eq!(j["timestamp"], "2026-11-27 14:22:07");
    }

    #[test]
    fn vmstat_series_text() {
        let s = series();
        let h = host();
        let want = [
            VM_HEAD,
            " 3  1  97148 1234567 234567 3580245    6    0    51   200 1173 2161 55 18 20  6  1 2026-11-27 14:22:07\n",
            " 3  1  97148 1234000 234567 3580245    0    0     0     0    0    0 50  0 50  0  0 2026-11-27 14:22:09\n",
        ]
        .concat();
        assert_eq!(vmstat_series(&s, &h), want);
        assert_eq!(vmstat_series(&s[..1], &h), VM_HEAD);
        assert_eq!(vmstat_series::<MapSample>(&[], &h), "");
        assert_eq!(vmstat_series_json(&s, &h).as_array().unwrap().len(), 2);
    }

    #[test]
    fn vmstat_header_zone_abbreviations() {
        let mut h = host();
        h.tz = chrono_tz::UTC;
        assert!(vmstat_header(&h, T0).ends_with(" st                 UTC\n"));
        h.tz = chrono_tz::America::New_York;
        assert!(vmstat_header(&h, T0).ends_with(" st                 EST\n"));
        // July: daylight time.
        assert!(vmstat_header(&h, T0 - 140 * 86_400 * S).ends_with(" st                 EDT\n"));
    }

    #[test]
    fn vmstat_reboot_between_samples() {
        let s = series();
        let h = host();
        // New boot: mono restarted, counters small, btime moved.
        let mut cur = sample(
            T0 + 120 * S,
            60 * S,
            &[
                [150, 0, 50, 2750, 45, 2, 3, 0, 0, 0],
                [150, 0, 50, 2750, 45, 3, 2, 0, 0, 0],
            ],
            &mem_cols(15_000_000),
        );
        cur.set("stat.btime", 1_795_757_000);
        cur.set("stat.intr", 5000);
        cur.set("stat.ctxt", 9000);
        cur.set("vm.pgpgin", 40);
        let row = vmstat_row(&s[1], &cur, &h);
        assert!(row.reset);
        // us = 300/6000 -> 5, sy = 110/6000 -> 2, id = 5500/6000 -> 92, wa = 90/6000 -> 2
        assert_eq!(
            vmstat_format_row(&row, &h),
            " 3  1  97148 15000000 234567 3580245    0    0     0     0    0    0  5  2 92  2  0 2026-11-27 14:24:05\n"
        );
        // Only uptime going backwards is enough to detect the new boot.
        let a = MapSample::new(T0, 100 * S)
            .with("uptime.up", 50_000)
            .with("stat.ctxt", 10);
        let b = MapSample::new(T0 + S, 101 * S)
            .with("uptime.up", 100)
            .with("stat.ctxt", 500);
        assert!(boot_changed(&a, &b));
        assert!(vmstat_row(&a, &b, &h).reset);
        assert_eq!(vmstat_row(&a, &b, &h).cs, 0);
        // Small btime jitter is not a reboot.
        let a = MapSample::new(T0, 100 * S).with("stat.btime", 1000);
        let b = MapSample::new(T0 + S, 101 * S).with("stat.btime", 1001);
        assert!(!boot_changed(&a, &b));
    }

    #[test]
    fn vmstat_single_counter_backwards_is_clamped() {
        let s = series();
        let h = host();
        let mut cur = s[1].clone();
        cur.set("stat.intr", 10); // went backwards: rate 0, no reset
        cur.set("cpu.idle", 0); // idle ran backwards: clamped to 0 ticks
        let row = vmstat_row(&s[0], &cur, &h);
        assert!(!row.reset);
        assert_eq!(row.intr, 0);
        assert_eq!(row.cs, 2161);
        // Div = 220 + 72 + 0 + 24 + 4 = 320: us 68.75 -> 69, sy 22.5 -> 23 (half up), wa 7.5 -> 8, st 1.25 -> 1
        assert_eq!((row.us, row.sy, row.id, row.wa, row.st), (69, 23, 0, 8, 1));
    }

    #[test]
    fn vmstat_missing_columns_and_zero_interval() {
        let h = host();
        let a = MapSample::new(T0, 5 * S);
        let b = MapSample::new(T0 + S, 5 * S);
        let row = vmstat_row(&a, &b, &h);
        assert_eq!(
            vmstat_format_row(&row, &h),
            " 0  0      0      0      0      0    0    0     0     0    0    0  0  0 100  0  0 2026-11-27 14:22:06\n"
        );
    }

    #[test]
    fn vmstat_wide_numbers_push_right() {
        let h = host();
        let mut a = MapSample::new(T0, 10 * S);
        let mut b = MapSample::new(T0 + S, 11 * S);
        for (k, v) in [
            ("stat.intr", 0),
            ("stat.ctxt", 0),
            ("vm.pgpgin", 0),
            ("vm.pswpin", 0),
        ] {
            a.set(k, v);
        }
        for (k, v) in [
            ("stat.procs_running", 1234),
            ("stat.procs_blocked", 567),
            ("mem.MemFree", 123_456_789_012),
            ("mem.Buffers", 16_777_217),
            ("mem.Cached", 1),
            ("stat.intr", 123_456_789),
            ("stat.ctxt", 9_876_543_210),
            ("vm.pgpgin", 1_234_567),
            ("vm.pswpin", 250_000),
            ("cpu.user", 100),
        ] {
            b.set(k, v);
        }
        let row = vmstat_row(&a, &b, &h);
        // MemFree and Buffers go through a C float in procps (2^24 KiB and up lose low bits).
        assert_eq!(row.free, 123_456_790_528);
        assert_eq!(row.buff, 16_777_216);
        assert_eq!(
            vmstat_format_row(&row, &h),
            "1234 567      0 123456790528 16777216      1 1000000    0 1234567     0 123456789 9876543210 100  0  0  0  0 2026-11-27 14:22:06\n"
        );
    }

    #[test]
    fn vmstat_fractional_interval() {
        let h = host();
        let a = MapSample::new(T0, 0)
            .with("stat.ctxt", 0)
            .with("stat.intr", 0);
        // 1.5 s: 300 / 1.5 = 200; 301 / 1.5 = 200.67 -> 201
        let b = MapSample::new(T0 + S, 1_500_000_000)
            .with("stat.ctxt", 300)
            .with("stat.intr", 301);
        let row = vmstat_row(&a, &b, &h);
        assert_eq!((row.cs, row.intr), (200, 201));
    }

    const MP_HEAD: &str =
        "  CPU    %usr   %nice    %sys %iowait    %irq   %soft  %steal  %guest  %gnice   %idle\n";

    #[test]
    fn mpstat_all_cpus_series() {
        let s = series();
        let h = host();
        let want = [
            "Linux 6.1.0-28-amd64 (db1) \t11/27/2026 \t_x86_64_\t(2 CPU)\n",
            "\n",
            "14:22:05   ", MP_HEAD,
            "14:22:07     all   37.50    2.50   15.00    6.00    1.50    1.50    1.00   12.50    2.50   20.00\n",
            "14:22:07       0   45.00    2.50   15.00    5.00    1.50    1.00    0.00   15.00    5.00   10.00\n",
            "14:22:07       1   30.00    2.50   15.00    7.00    1.50    2.00    2.00   10.00    0.00   30.00\n",
            "\n",
            "14:22:07   ", MP_HEAD,
            "14:22:09     all   50.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00   50.00\n",
            "14:22:09       0    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00  100.00\n",
            "14:22:09       1  100.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00\n",
            "\n",
            "Average:   ", MP_HEAD,
            "Average:     all   43.75    1.25    7.50    3.00    0.75    0.75    0.50    6.25    1.25   35.00\n",
            "Average:       0   22.50    1.25    7.50    2.50    0.75    0.50    0.00    7.50    2.50   55.00\n",
            "Average:       1   65.00    1.25    7.50    3.50    0.75    1.00    1.00    5.00    0.00   15.00\n",
        ]
        .concat();
        assert_eq!(mpstat_series(&s, &h, &CpuSelection::All), want);
    }

    #[test]
    fn mpstat_selections() {
        let s = series();
        let h = host();
        let summary = mpstat_series(&s[..2], &h, &CpuSelection::Summary);
        assert_eq!(
            summary,
            [
                "Linux 6.1.0-28-amd64 (db1) \t11/27/2026 \t_x86_64_\t(2 CPU)\n",
                "\n",
                "14:22:05   ", MP_HEAD,
                "14:22:07     all   37.50    2.50   15.00    6.00    1.50    1.50    1.00   12.50    2.50   20.00\n",
                "\n",
                "Average:   ", MP_HEAD,
                "Average:     all   37.50    2.50   15.00    6.00    1.50    1.50    1.00   12.50    2.50   20.00\n",
            ]
            .concat()
        );
        let sel = CpuSelection::parse("1").unwrap();
        let b = mpstat_block(&s[0], &s[1], &h, &sel);
        assert_eq!(
            mpstat_format_block(&b, &h),
            [
                "\n14:22:05   ", MP_HEAD,
                "14:22:07       1   30.00    2.50   15.00    7.00    1.50    2.00    2.00   10.00    0.00   30.00\n",
            ]
            .concat()
        );
        assert_eq!(CpuSelection::parse("ALL").unwrap(), CpuSelection::All);
        assert_eq!(CpuSelection::parse("on").unwrap(), CpuSelection::Online);
        assert_eq!(
            CpuSelection::parse("all,3,0-1").unwrap(),
            CpuSelection::List {
                all: true,
                cpus: vec![0, 1, 3]
            }
        );
        for bad in ["", "x", "1-", "3-1", "-1", "99999999", "0,,1", "0-8192"] {
            assert!(CpuSelection::parse(bad).is_err(), "{bad}");
        }
        // CPUs beyond the host's count are ignored.
        let b = mpstat_block(&s[0], &s[1], &h, &CpuSelection::parse("0,7").unwrap());
        assert_eq!(b.rows.len(), 1);
        assert_eq!(b.rows[0].cpu, Some(0));
    }

    #[test]
    fn mpstat_json_fields() {
        let s = series();
        let h = host();
        let b = mpstat_block(&s[0], &s[1], &h, &CpuSelection::All);
        let j = mpstat_json(&b, &h);
        assert_eq!(j["timestamp"], "2026-11-27 14:22:07");
        assert_eq!(j["cpus"][0]["CPU"], "all");
        assert_eq!(j["cpus"][0]["%usr"], 37.5);
        assert_eq!(j["cpus"][2]["CPU"], "1");
        assert_eq!(j["cpus"][2]["%idle"], 30.0);
        let sj = mpstat_series_json(&s, &h, &CpuSelection::Summary);
        assert_eq!(sj["intervals"].as_array().unwrap().len(), 2);
        assert_eq!(sj["average"][0]["%usr"], 43.75);
    }

    #[test]
    fn mpstat_offline_tickless_and_reboot() {
        let s = series();
        let h = host();
        // cpu1 vanished (offline); cpu0 did not tick at all (tickless).
        let mut cur = s[0].clone();
        cur.wall_ns += 2 * S;
        cur.mono_ns += 2 * S;
        for f in FIELDS {
            cur.values.remove(&format!("cpu1.{f}"));
        }
        let b = mpstat_block(&s[0], &cur, &h, &CpuSelection::All);
        let text = mpstat_format_block(&b, &h);
        assert!(text.ends_with(
            "14:22:07       0    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00  100.00\n\
             14:22:07       1    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00\n"
        ), "{text}");
        // -P ON skips the offline CPU.
        let b = mpstat_block(&s[0], &cur, &h, &CpuSelection::Online);
        assert_eq!(
            b.rows.iter().map(|r| r.cpu).collect::<Vec<_>>(),
            vec![None, Some(0)]
        );

        // Reboot: percentages since boot from cur alone.
        let mut rb = sample(
            T0 + 60 * S,
            30 * S,
            &[
                [100, 0, 50, 800, 50, 0, 0, 0, 0, 0],
                [300, 0, 100, 600, 0, 0, 0, 0, 0, 0],
            ],
            &[],
        );
        rb.set("stat.btime", 1_795_756_950);
        let b = mpstat_block(&s[1], &rb, &h, &CpuSelection::All);
        assert!(b.reset);
        assert_eq!(
            mpstat_format_block(&b, &h),
            [
                "\n14:22:07   ", MP_HEAD,
                "14:23:05     all   20.00    0.00    7.50    2.50    0.00    0.00    0.00    0.00    0.00   70.00\n",
                "14:23:05       0   10.00    0.00    5.00    5.00    0.00    0.00    0.00    0.00    0.00   80.00\n",
                "14:23:05       1   30.00    0.00   10.00    0.00    0.00    0.00    0.00    0.00    0.00   60.00\n",
            ]
            .concat()
        );
    }

    #[test]
    fn mpstat_guest_ahead_of_user_and_garbage() {
        let h = host();
        // guest > user in cur (kernel timing): usr clamps to 0, interval widens.
        let a = sample(T0, 0, &[[100, 0, 0, 100, 0, 0, 0, 0, 0, 0]], &[]);
        let b = sample(T0 + S, S, &[[150, 0, 0, 150, 0, 0, 0, 0, 160, 0]], &[]);
        let blk = mpstat_block(&a, &b, &host(), &CpuSelection::Summary);
        // usr: (150-160 -> 0) < 100 -> 0; itv = 100 + ishift 100 = 200; idle 50/200
        assert_eq!(blk.rows[0].usr, 0.0);
        assert_eq!(blk.rows[0].guest, 80.0);
        assert_eq!(blk.rows[0].idle, 25.0);
        // Extreme values never panic.
        let big = sample(
            T0,
            i64::MAX,
            &[[u64::MAX; 10], [u64::MAX; 10]],
            &[("stat.intr", u64::MAX)],
        );
        let zero = sample(T0, i64::MIN, &[[0; 10], [0; 10]], &[]);
        for (p, c) in [(&big, &zero), (&zero, &big), (&big, &big)] {
            let _ = mpstat_series(&[p.clone(), c.clone()], &h, &CpuSelection::All);
            let _ = vmstat_series(&[p.clone(), c.clone()], &h);
            let _ = free_format(&free_row(c), FreeUnit::Human);
            let _ = uptime_format(&uptime_row(c), &h);
        }
    }

    fn free_sample() -> MapSample {
        let mut s = MapSample::new(T0, S);
        for (k, v) in mem_cols(1_234_567) {
            s.set(k, v);
        }
        s
    }

    #[test]
    fn free_default_and_units() {
        let row = free_row(&free_sample());
        // used = 16314236 - 9876543; buff/cache = 234567 + 3456789 + 123456
        assert_eq!(
            free_format(&row, FreeUnit::Kibi),
            "               total        used        free      shared  buff/cache   available\n\
             Mem:        16314236     6437693     1234567       45678     3814812     9876543\n\
             Swap:        2097148       97148     2000000\n"
        );
        assert_eq!(
            free_format(&row, FreeUnit::Mebi),
            "               total        used        free      shared  buff/cache   available\n\
             Mem:           15931        6286        1205          44        3725        9645\n\
             Swap:           2047          94        1953\n"
        );
        assert_eq!(
            free_format(&row, FreeUnit::Gibi),
            "               total        used        free      shared  buff/cache   available\n\
             Mem:              15           6           1           0           3           9\n\
             Swap:              1           0           1\n"
        );
        assert_eq!(
            free_format(&row, FreeUnit::Human),
            "               total        used        free      shared  buff/cache   available\n\
             Mem:            15Gi       6.1Gi       1.2Gi        44Mi       3.6Gi       9.4Gi\n\
             Swap:          2.0Gi        94Mi       1.9Gi\n"
        );
        assert!(free_format(&row, FreeUnit::Bytes)
            .contains("Mem:     16705777664  6592197632  1264196608"));
        let j = free_json(&row, &host());
        assert_eq!(j["Mem"]["buff/cache"], 3_814_812);
        assert_eq!(j["Swap"]["used"], 97_148);
    }

    #[test]
    fn free_edge_cases() {
        // MemAvailable above MemTotal (container): procps uses MemFree.
        let s = MapSample::new(T0, 0)
            .with("mem.MemTotal", 1000)
            .with("mem.MemFree", 600)
            .with("mem.MemAvailable", 5000);
        let r = free_row(&s);
        assert_eq!((r.used, r.available), (400, 600));
        // No MemAvailable: total - free - buff/cache; never underflows.
        let s = MapSample::new(T0, 0)
            .with("mem.MemTotal", 1000)
            .with("mem.MemFree", 600)
            .with("mem.Cached", 900);
        assert_eq!(free_row(&s).used, 400);
        let r = free_row(&MapSample::new(T0, 0));
        assert_eq!(
            free_format(&r, FreeUnit::Human),
            "               total        used        free      shared  buff/cache   available\n\
             Mem:              0B          0B          0B          0B          0B          0B\n\
             Swap:             0B          0B          0B\n"
        );
        // Wide values push the line right.
        let s = MapSample::new(T0, 0)
            .with("mem.MemTotal", 123_456_789_012_345)
            .with("mem.MemAvailable", 0);
        assert!(free_format(&free_row(&s), FreeUnit::Kibi)
            .contains("Mem:     123456789012345 123456789012345           0"));
        // Series: blocks separated by a blank line.
        let two = free_series(&[free_sample(), free_sample()], FreeUnit::Gibi);
        assert_eq!(two.matches("Swap:").count(), 2);
        assert!(two.contains("1\n\n               total"));
    }

    #[test]
    fn human_scale_matches_procps() {
        assert_eq!(scale_size(0, FreeUnit::Human), "0B");
        assert_eq!(scale_size(1, FreeUnit::Human), "1.0Ki");
        assert_eq!(scale_size(1023, FreeUnit::Human), "1.0Mi");
        assert_eq!(scale_size(1024, FreeUnit::Human), "1.0Mi");
        assert_eq!(scale_size(10 * 1024, FreeUnit::Human), "10Mi");
        assert_eq!(scale_size(1_048_575, FreeUnit::Human), "1.0Gi");
        // 1.25 GiB: float 1.25 prints as 1.2 (round half to even, like glibc).
        assert_eq!(scale_size(1_310_720, FreeUnit::Human), "1.2Gi");
        assert_eq!(scale_size(u64::MAX, FreeUnit::Human), "16777216Pi");
    }

    fn up_sample(up_cs: u64, loads: [u64; 3]) -> MapSample {
        MapSample::new(T0, 0)
            .with("uptime.up", up_cs)
            .with("load.avg1", loads[0])
            .with("load.avg5", loads[1])
            .with("load.avg15", loads[2])
    }

    #[test]
    fn uptime_formats() {
        let h = host();
        let f = |cs, l| uptime_format(&uptime_row(&up_sample(cs, l)), &h);
        assert_eq!(
            f(25_920_000 + 744_000 + 5_000, [0, 1, 5]),
            " 14:22:05 up 3 days,  2:04,  load average: 0.00, 0.01, 0.05\n"
        );
        assert_eq!(
            f(30_099, [123, 4567, 10]),
            " 14:22:05 up 5 min,  load average: 1.23, 45.67, 0.10\n"
        );
        assert_eq!(
            f(8_640_000 + 59, [0, 0, 0]),
            " 14:22:05 up 1 day, 0 min,  load average: 0.00, 0.00, 0.00\n"
        );
        assert_eq!(
            f(4_500_000, [0, 0, 0]),
            " 14:22:05 up 12:30,  load average: 0.00, 0.00, 0.00\n"
        );
        assert_eq!(
            f(99_999_999_999, [0, 0, 0]),
            " 14:22:05 up 11574 days,  1:46,  load average: 0.00, 0.00, 0.00\n"
        );
    }

    #[test]
    fn uptime_with_and_without_psi() {
        let h = host();
        let mut s = up_sample(360_000, [10, 200, 385]);
        let plain = uptime_format(&uptime_row(&s), &h);
        assert_eq!(
            plain,
            " 14:22:05 up  1:00,  load average: 0.10, 2.00, 3.85\n"
        );
        for (k, v) in [
            ("psi.cpu.some.avg10", 10),
            ("psi.cpu.some.avg60", 200),
            ("psi.cpu.some.avg300", 385),
            ("psi.cpu.some.total", 15),
            ("psi.io.full.avg10", 20),
            ("psi.io.full.total", 25),
            ("psi.io.some.total", 99),
        ] {
            s.set(k, v);
        }
        let row = uptime_row(&s);
        assert_eq!(
            uptime_format(&row, &h),
            " 14:22:05 up  1:00,  load average: 0.10, 2.00, 3.85\n\
             PSI cpu some avg10=0.10 avg60=2.00 avg300=3.85 total=15\n\
             PSI io some avg10=0.00 avg60=0.00 avg300=0.00 total=99\n\
             PSI io full avg10=0.20 avg60=0.00 avg300=0.00 total=25\n"
        );
        let j = uptime_json(&row, &h);
        assert_eq!(j["up"], 3600);
        assert_eq!(j["load average"][2], 3.85);
        assert_eq!(j["PSI"][0]["avg300"], 3.85);
        assert_eq!(j["PSI"].as_array().unwrap().len(), 3);
        // Without uptime.up, uptime comes from btime; without both it is 0.
        let s = MapSample::new(T0, 0).with("stat.btime", (T0 / S - 125) as u64);
        assert!(uptime_format(&uptime_row(&s), &h).starts_with(" 14:22:05 up 2 min,  load"));
        assert!(uptime_format(&uptime_row(&MapSample::new(T0, 0)), &h)
            .starts_with(" 14:22:05 up 0 min,  load"));
        assert_eq!(uptime_series(&[s.clone(), s], &h).lines().count(), 2);
    }
}
