//! I/O and network views for `lpo replay`: `iostat -x`, `sar -n DEV` and
//! `sar -n EDEV`, `netstat -s`, `ss -s`, per-CPU interrupt and softirq
//! deltas, softnet, and `slabtop -o`, rendered from recorded samples as
//! sysstat 12.6, net-tools 2.10, iproute2 6.1 and procps-ng 4.0.2 print
//! them.
//!
//! Self-contained: depends only on `chrono`, `chrono-tz`, `serde_json` and
//! the input model of [`super::system`] (`Sample`, `Host`, `MapSample`).
//! Column names are the recorder's contract (`recorder/src/procfs/netdisk.rs`):
//! `disk.<dev>.<f>`, `net.<iface>.<f>`, `snmp.<Proto>.<Field>`,
//! `netstat.<Proto>.<Field>`, `sockstat.<PROTO>.<key>`,
//! `softnet.cpu<N>.<f>`, `irq.<irq>.cpu<N>`, `softirq.<NAME>.cpu<N>`,
//! `slab.<cache>.<f>`, plus `cpu.<f>` (USER_HZ ticks) for iostat's avg-cpu
//! block. Names are split on their **last** `.`.
//!
//! Each view has a text renderer (exactly the real tool's layout) and a
//! `…_json` renderer whose keys are the tool's column headers. Interval
//! views take the two samples that bound the interval `(prev, cur)`; its
//! length comes from `mono_ns` (exact, where the tools use `/proc/uptime`
//! centiseconds).
//!
//! Rates and deltas: a counter that went backwards gives a zero delta; a
//! column missing from `prev` counts as 0 there (a device that appeared
//! during the interval shows its whole count, as sysstat does with a newly
//! registered device); when the interval is empty or crosses a reboot
//! (`mono_ns` not increasing, `stat.btime` moved, `uptime.up` went back)
//! every delta and rate is 0 (sysstat would divide by a forced 1-tick
//! interval). Missing columns count as 0. Nothing here panics or overflows
//! on hostile input.
//!
//! Devices and interfaces are discovered through [`Columns`] and listed in
//! the order `column_names()` gives (the recorder's column order is the
//! `/proc` file order, which is what `sar` and `iostat -p ALL` use), except
//! where the tool sorts (iostat's default device list, slabtop).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::DateTime;
use chrono_tz::Tz;
use serde_json::{json, Map, Value};

use super::system::{Host, MapSample, Sample};

// ---------------------------------------------------------------------------
// input model
// ---------------------------------------------------------------------------

/// A [`Sample`] that can list its columns, so that views can discover
/// devices, interfaces, IRQs and caches.
pub trait Columns: Sample {
    /// Every column name present in the sample, preferably in recorded
    /// (file) order: views list devices in first-appearance order.
    fn column_names(&self) -> Vec<String>;
}

impl<T: Columns + ?Sized> Columns for &T {
    fn column_names(&self) -> Vec<String> {
        (**self).column_names()
    }
}

/// Sorted by name (a `HashMap` has no order to keep).
impl Columns for MapSample {
    fn column_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.values.keys().cloned().collect();
        v.sort_unstable();
        v
    }
}

fn val<S: Sample + ?Sized>(s: &S, name: &str) -> u64 {
    s.get(name).unwrap_or(0)
}

/// Distinct `<name>` of the columns `<prefix><name>.<field>` (split on the
/// last `.`), in first-appearance order.
fn entities(names: &[String], prefix: &str, field: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for n in names {
        let Some(rest) = n.strip_prefix(prefix) else {
            continue;
        };
        let Some((ent, f)) = rest.rsplit_once('.') else {
            continue;
        };
        if f == field && !ent.is_empty() && seen.insert(ent) {
            out.push(ent.to_string());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// time and intervals
// ---------------------------------------------------------------------------

fn local(ns: i64, tz: &Tz) -> DateTime<Tz> {
    DateTime::from_timestamp_nanos(ns).with_timezone(tz)
}

/// `14:22:05` (sar's 24-hour timestamps).
fn fmt_hms(ns: i64, tz: &Tz) -> String {
    local(ns, tz).format("%H:%M:%S").to_string()
}

/// `2026-11-27 14:22:05` (JSON timestamps, as the system views).
fn fmt_datetime(ns: i64, tz: &Tz) -> String {
    local(ns, tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `Linux <kernel> (<host>) \t<MM/DD/YYYY> \t_<arch>_\t(<n> CPU)\n`
/// (sysstat's `print_gal_header()`, as `mpstat_banner`); the date is the one
/// at `at_ns`.
pub fn sysstat_banner(host: &Host, at_ns: i64) -> String {
    format!(
        "Linux {} ({}) \t{} \t_{}_\t({} CPU)\n",
        host.kernel,
        host.hostname,
        local(at_ns, &host.tz).format("%m/%d/%Y"),
        host.arch,
        host.ncpu
    )
}

/// `stat.btime` jitters by a second or so between reads.
const BTIME_SLACK_SECS: u64 = 5;

/// Length of the interval `prev → cur` in ns; 0 when rates cannot be
/// computed (empty or negative interval, or another boot).
pub fn interval_ns<P: Sample + ?Sized, C: Sample + ?Sized>(prev: &P, cur: &C) -> u64 {
    let rebooted = matches!(
        (prev.get("stat.btime"), cur.get("stat.btime")),
        (Some(a), Some(b)) if a.abs_diff(b) > BTIME_SLACK_SECS
    ) || matches!(
        (prev.get("uptime.up"), cur.get("uptime.up")),
        (Some(a), Some(b)) if b < a
    );
    if rebooted {
        return 0;
    }
    u64::try_from(i128::from(cur.mono_ns()) - i128::from(prev.mono_ns())).unwrap_or(0)
}

/// The two samples of an interval.
struct Pair<'a, P: ?Sized, C: ?Sized> {
    prev: &'a P,
    cur: &'a C,
    dt_ns: u64,
}

impl<'a, P: Sample + ?Sized, C: Sample + ?Sized> Pair<'a, P, C> {
    fn new(prev: &'a P, cur: &'a C) -> Self {
        Pair {
            prev,
            cur,
            dt_ns: interval_ns(prev, cur),
        }
    }
    /// `cur - prev`, 0 when it went backwards or the interval is void.
    fn delta(&self, name: &str) -> u64 {
        if self.dt_ns == 0 {
            return 0;
        }
        val(self.cur, name).saturating_sub(val(self.prev, name))
    }
}

/// Per-second rate of `delta` over `dt_ns` (0 for an empty interval).
fn per_sec(delta: u64, dt_ns: u64) -> f64 {
    if dt_ns == 0 {
        0.0
    } else {
        delta as f64 * 1e9 / dt_ns as f64
    }
}

/// `num / den`, 0 when `den` is 0.
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// JSON number with the digits the text shows.
fn round(v: f64, digits: usize) -> Value {
    format!("{v:.digits$}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

fn round2(v: f64) -> Value {
    round(v, 2)
}

// ---------------------------------------------------------------------------
// iostat -x
// ---------------------------------------------------------------------------

/// iostat options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IostatOpts {
    /// `-p ALL` (no `devices`): every device and partition, in
    /// `/proc/diskstats` order, including never-used ones. With `devices`
    /// (`-p sda,…`): the listed devices and their partitions.
    pub partitions: bool,
    /// `iostat -x sda nvme0n1`: only these (whole disks or partitions, as
    /// named), even if they never did I/O.
    pub devices: Option<Vec<String>>,
    /// Print the `avg-cpu` block (iostat without `-d`). `false` is `-d`.
    pub cpu: bool,
}

/// iostat's `avg-cpu` line, percent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AvgCpu {
    pub user: f64,
    pub nice: f64,
    /// system + irq + softirq, as iostat.
    pub system: f64,
    pub iowait: f64,
    pub steal: f64,
    pub idle: f64,
}

/// One `iostat -x` device line (sysstat 12.6 `write_ext_stat`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IostatRow {
    pub device: String,
    pub r_s: f64,
    pub rkb_s: f64,
    pub rrqm_s: f64,
    pub rrqm_pct: f64,
    pub r_await: f64,
    pub rareq_sz: f64,
    pub w_s: f64,
    pub wkb_s: f64,
    pub wrqm_s: f64,
    pub wrqm_pct: f64,
    pub w_await: f64,
    pub wareq_sz: f64,
    pub d_s: f64,
    pub dkb_s: f64,
    pub drqm_s: f64,
    pub drqm_pct: f64,
    pub d_await: f64,
    pub dareq_sz: f64,
    pub f_s: f64,
    pub f_await: f64,
    pub aqu_sz: f64,
    pub util: f64,
}

impl IostatRow {
    /// (header, value) pairs in column order.
    pub fn columns(&self) -> [(&'static str, f64); 22] {
        [
            ("r/s", self.r_s),
            ("rkB/s", self.rkb_s),
            ("rrqm/s", self.rrqm_s),
            ("%rrqm", self.rrqm_pct),
            ("r_await", self.r_await),
            ("rareq-sz", self.rareq_sz),
            ("w/s", self.w_s),
            ("wkB/s", self.wkb_s),
            ("wrqm/s", self.wrqm_s),
            ("%wrqm", self.wrqm_pct),
            ("w_await", self.w_await),
            ("wareq-sz", self.wareq_sz),
            ("d/s", self.d_s),
            ("dkB/s", self.dkb_s),
            ("drqm/s", self.drqm_s),
            ("%drqm", self.drqm_pct),
            ("d_await", self.d_await),
            ("dareq-sz", self.dareq_sz),
            ("f/s", self.f_s),
            ("f_await", self.f_await),
            ("aqu-sz", self.aqu_sz),
            ("%util", self.util),
        ]
    }
}

/// One iostat report (one interval).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IostatReport {
    pub wall_ns: i64,
    pub cpu: Option<AvgCpu>,
    pub rows: Vec<IostatRow>,
}

/// The device name `name` is a partition of another device of `devs`:
/// `<disk><digits>` when the disk name ends in a non-digit (`sda1`, `vdb2`,
/// `xvda1`), `<disk>p<digits>` when it ends in a digit (`nvme0n1p1`,
/// `mmcblk0p2`, `loop0p1`, `md127p1`). So `md127` is not a partition of
/// `md1`, nor `dm-10` of `dm-1`. (iostat asks /sys; replay cannot.)
pub fn partition_of<'a>(name: &str, devs: &HashSet<&'a str>) -> Option<&'a str> {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits == name.len() {
        return None;
    }
    let stem = &name[..name.len() - digits];
    if !stem.ends_with(|c: char| c.is_ascii_digit()) {
        if let Some(&d) = devs.get(stem) {
            return Some(d);
        }
    }
    let base = stem.strip_suffix('p')?;
    if base.ends_with(|c: char| c.is_ascii_digit()) {
        return devs.get(base).copied();
    }
    None
}

/// Devices of the report, in display order.
fn iostat_devices<C: Columns + ?Sized>(cur: &C, opts: &IostatOpts) -> Vec<String> {
    let names = cur.column_names();
    let all = entities(&names, "disk.", "reads");
    let set: HashSet<&str> = all.iter().map(String::as_str).collect();
    let mut out: Vec<String> = match (&opts.devices, opts.partitions) {
        // -p ALL: diskstats order, unfiltered.
        (None, true) => return all,
        // Default: whole devices that ever did I/O, sorted like iostat.
        (None, false) => all
            .iter()
            .filter(|d| partition_of(d, &set).is_none())
            .filter(|d| {
                ["reads", "writes", "discards", "flushes"]
                    .iter()
                    .any(|f| val(cur, &format!("disk.{d}.{f}")) != 0)
            })
            .cloned()
            .collect(),
        (Some(list), parts) => all
            .iter()
            .filter(|d| {
                list.iter().any(|l| l == *d)
                    || (parts && partition_of(d, &set).is_some_and(|p| list.iter().any(|l| l == p)))
            })
            .cloned()
            .collect(),
    };
    out.sort_unstable();
    out
}

fn avg_cpu<P: Sample + ?Sized, C: Sample + ?Sized>(p: &Pair<P, C>) -> AvgCpu {
    let d = |f: &str| p.delta(&format!("cpu.{f}"));
    let (user, nice, system, idle, iowait, irq, softirq, steal) = (
        d("user"),
        d("nice"),
        d("system"),
        d("idle"),
        d("iowait"),
        d("irq"),
        d("softirq"),
        d("steal"),
    );
    // iostat: deltot_jiffies = get_interval(), forced to 1 when 0.
    let tot: u128 = [user, nice, system, idle, iowait, irq, softirq, steal]
        .iter()
        .map(|&v| u128::from(v))
        .sum();
    let tot = tot.max(1) as f64;
    let pct = |v: u128| v as f64 / tot * 100.0;
    AvgCpu {
        user: pct(user.into()),
        nice: pct(nice.into()),
        system: pct(u128::from(system) + u128::from(irq) + u128::from(softirq)),
        iowait: pct(iowait.into()),
        steal: pct(steal.into()),
        idle: pct(idle.into()),
    }
}

fn iostat_row<P: Sample + ?Sized, C: Sample + ?Sized>(p: &Pair<P, C>, dev: &str) -> IostatRow {
    let d = |f: &str| p.delta(&format!("disk.{dev}.{f}"));
    let dt = p.dt_ns;
    let (rd, rm, rs, rt) = (
        d("reads"),
        d("reads_merged"),
        d("sectors_read"),
        d("read_ms"),
    );
    let (wr, wm, ws, wt) = (
        d("writes"),
        d("writes_merged"),
        d("sectors_written"),
        d("write_ms"),
    );
    let (dc, dm, ds, dtk) = (
        d("discards"),
        d("discards_merged"),
        d("sectors_discarded"),
        d("discard_ms"),
    );
    let (fl, ft) = (d("flushes"), d("flush_ms"));
    let pct = |merges: u64, ios: u64| ratio(merges, merges.saturating_add(ios)) * 100.0;
    IostatRow {
        device: dev.to_string(),
        r_s: per_sec(rd, dt),
        rkb_s: per_sec(rs, dt) / 2.0,
        rrqm_s: per_sec(rm, dt),
        rrqm_pct: pct(rm, rd),
        r_await: ratio(rt, rd),
        rareq_sz: ratio(rs, rd) / 2.0,
        w_s: per_sec(wr, dt),
        wkb_s: per_sec(ws, dt) / 2.0,
        wrqm_s: per_sec(wm, dt),
        wrqm_pct: pct(wm, wr),
        w_await: ratio(wt, wr),
        wareq_sz: ratio(ws, wr) / 2.0,
        d_s: per_sec(dc, dt),
        dkb_s: per_sec(ds, dt) / 2.0,
        drqm_s: per_sec(dm, dt),
        drqm_pct: pct(dm, dc),
        d_await: ratio(dtk, dc),
        dareq_sz: ratio(ds, dc) / 2.0,
        f_s: per_sec(fl, dt),
        f_await: ratio(ft, fl),
        aqu_sz: per_sec(d("weighted_ms"), dt) / 1000.0,
        // Not capped: sysstat 12.6 prints what io_ms says (it can exceed
        // 100.00 by sampling jitter); only a backwards counter gives 0.
        util: per_sec(d("io_ms"), dt) / 10.0,
    }
}

/// The report for the interval `prev → cur`.
pub fn iostat_report<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    opts: &IostatOpts,
) -> IostatReport {
    let p = Pair::new(prev, cur);
    IostatReport {
        wall_ns: cur.wall_ns(),
        cpu: (opts.cpu && cur.get("cpu.user").is_some()).then(|| avg_cpu(&p)),
        rows: iostat_devices(cur, opts)
            .iter()
            .map(|d| iostat_row(&p, d))
            .collect(),
    }
}

/// Field widths of sysstat's `cprintf_f`/`cprintf_pc` calls, in column order.
const IOSTAT_WIDTHS: [usize; 22] = [
    7, 9, 8, 6, 7, 8, // r
    7, 9, 8, 6, 7, 8, // w
    7, 9, 8, 6, 7, 8, // d
    7, 7, 7, 6, // f/s f_await aqu-sz %util
];

const IOSTAT_HEADER: &str = concat!(
    "Device       ",
    "     r/s     rkB/s   rrqm/s  %rrqm r_await rareq-sz",
    "     w/s     wkB/s   wrqm/s  %wrqm w_await wareq-sz",
    "     d/s     dkB/s   drqm/s  %drqm d_await dareq-sz",
    "     f/s f_await  aqu-sz  %util"
);

/// One report as iostat prints it: the `avg-cpu` block (when computed), the
/// device header and rows, then the two blank lines iostat ends each report
/// with.
pub fn iostat_format_report(r: &IostatReport) -> String {
    let mut out = String::new();
    if let Some(c) = &r.cpu {
        out.push_str("avg-cpu:  %user   %nice %system %iowait  %steal   %idle\n       ");
        for v in [c.user, c.nice, c.system, c.iowait, c.steal, c.idle] {
            out.push_str(&format!(" {v:>7.2}"));
        }
        out.push_str("\n\n");
    }
    out.push_str(IOSTAT_HEADER);
    out.push('\n');
    for row in &r.rows {
        out.push_str(&format!("{:<13}", row.device));
        for ((_, v), w) in row.columns().iter().zip(IOSTAT_WIDTHS) {
            out.push_str(&format!(" {v:>w$.2}"));
        }
        out.push('\n');
    }
    out.push_str("\n\n");
    out
}

/// `iostat -x [-d]` for the interval `prev → cur`: the banner, a blank
/// line and the report, as the second report of `iostat -x 1 2` shows it.
pub fn iostat_x<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
    opts: &IostatOpts,
) -> String {
    let mut out = sysstat_banner(host, prev.wall_ns());
    out.push('\n');
    out.push_str(&iostat_format_report(&iostat_report(prev, cur, opts)));
    out
}

/// `iostat -x [-d] <interval>` over consecutive samples: one banner, then a
/// report per interval.
pub fn iostat_x_series<S: Columns>(samples: &[S], host: &Host, opts: &IostatOpts) -> String {
    let Some(first) = samples.first() else {
        return String::new();
    };
    let mut out = sysstat_banner(host, first.wall_ns());
    out.push('\n');
    for w in samples.windows(2) {
        out.push_str(&iostat_format_report(&iostat_report(&w[0], &w[1], opts)));
    }
    out
}

/// `{"timestamp": …, "avg-cpu": {"%user": …}, "disk": [{"Device": "sda", "r/s": …, …, "%util": …}]}`
pub fn iostat_json(r: &IostatReport, host: &Host) -> Value {
    let mut m = Map::new();
    m.insert("timestamp".into(), json!(fmt_datetime(r.wall_ns, &host.tz)));
    if let Some(c) = &r.cpu {
        m.insert(
            "avg-cpu".into(),
            json!({
                "%user": round2(c.user), "%nice": round2(c.nice), "%system": round2(c.system),
                "%iowait": round2(c.iowait), "%steal": round2(c.steal), "%idle": round2(c.idle),
            }),
        );
    }
    let disks = r
        .rows
        .iter()
        .map(|row| {
            let mut d = Map::new();
            d.insert("Device".into(), json!(row.device));
            for (k, v) in row.columns() {
                d.insert(k.into(), round2(v));
            }
            Value::Object(d)
        })
        .collect();
    m.insert("disk".into(), Value::Array(disks));
    Value::Object(m)
}

/// [`iostat_json`] of every interval of `samples`, as an array.
pub fn iostat_x_series_json<S: Columns>(samples: &[S], host: &Host, opts: &IostatOpts) -> Value {
    Value::Array(
        samples
            .windows(2)
            .map(|w| iostat_json(&iostat_report(&w[0], &w[1], opts), host))
            .collect(),
    )
}

/// [`iostat_json`] of the interval `prev → cur`.
pub fn iostat_x_json<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
    opts: &IostatOpts,
) -> Value {
    iostat_json(&iostat_report(prev, cur, opts), host)
}

// ---------------------------------------------------------------------------
// sar -n DEV / EDEV
// ---------------------------------------------------------------------------

/// One `sar -n DEV` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetDevRow {
    pub iface: String,
    pub rxpck: f64,
    pub txpck: f64,
    pub rxkb: f64,
    pub txkb: f64,
    pub rxcmp: f64,
    pub txcmp: f64,
    pub rxmcst: f64,
    pub ifutil: f64,
}

impl NetDevRow {
    pub fn columns(&self) -> [(&'static str, f64); 8] {
        [
            ("rxpck/s", self.rxpck),
            ("txpck/s", self.txpck),
            ("rxkB/s", self.rxkb),
            ("txkB/s", self.txkb),
            ("rxcmp/s", self.rxcmp),
            ("txcmp/s", self.txcmp),
            ("rxmcst/s", self.rxmcst),
            ("%ifutil", self.ifutil),
        ]
    }
}

/// One `sar -n EDEV` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetEdevRow {
    pub iface: String,
    pub rxerr: f64,
    pub txerr: f64,
    pub coll: f64,
    pub rxdrop: f64,
    pub txdrop: f64,
    pub txcarr: f64,
    pub rxfram: f64,
    pub rxfifo: f64,
    pub txfifo: f64,
}

impl NetEdevRow {
    pub fn columns(&self) -> [(&'static str, f64); 9] {
        [
            ("rxerr/s", self.rxerr),
            ("txerr/s", self.txerr),
            ("coll/s", self.coll),
            ("rxdrop/s", self.rxdrop),
            ("txdrop/s", self.txdrop),
            ("txcarr/s", self.txcarr),
            ("rxfram/s", self.rxfram),
            ("rxfifo/s", self.rxfifo),
            ("txfifo/s", self.txfifo),
        ]
    }
}

/// `/proc/net/dev` counters used by sar, by column suffix.
use lpo_format::schema::kernel::NET_DEV_FIELDS as NET_COUNTERS;

/// Deltas of one interface over some time.
#[derive(Debug, Clone, Default)]
struct NetDeltas {
    d: [u64; 16],
    dt_ns: u64,
}

impl NetDeltas {
    fn get(&self, f: &str) -> u64 {
        NET_COUNTERS
            .iter()
            .position(|c| *c == f)
            .map_or(0, |i| self.d[i])
    }
    fn rate(&self, f: &str) -> f64 {
        per_sec(self.get(f), self.dt_ns)
    }
    fn add(&mut self, o: &NetDeltas) {
        for (a, b) in self.d.iter_mut().zip(o.d) {
            *a = a.saturating_add(b);
        }
    }
}

/// Per-interface deltas of the interval, in `cur`'s interface order.
fn net_deltas<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
) -> Vec<(String, NetDeltas)> {
    let p = Pair::new(prev, cur);
    entities(&cur.column_names(), "net.", "rx_bytes")
        .into_iter()
        .map(|i| {
            let mut d = NetDeltas {
                dt_ns: p.dt_ns,
                ..Default::default()
            };
            for (slot, f) in d.d.iter_mut().zip(NET_COUNTERS) {
                *slot = p.delta(&format!("net.{i}.{f}"));
            }
            (i, d)
        })
        .collect()
}

/// Link speed: the recorded `net.<iface>.speed_mbps` column, else the
/// caller's lookup.
fn speed_of<C: Sample + ?Sized, F: Fn(&str) -> Option<u64>>(
    cur: &C,
    iface: &str,
    speed: &F,
) -> u64 {
    cur.get(&format!("net.{iface}.speed_mbps"))
        .or_else(|| speed(iface))
        .unwrap_or(0)
}

/// sysstat's `compute_ifutil()` for a full-duplex link: the busier
/// direction's bits over the link speed (bytes/s × 800 / (Mb/s × 10⁶)).
fn ifutil(rx_bytes_s: f64, tx_bytes_s: f64, speed_mbps: u64) -> f64 {
    if speed_mbps == 0 {
        return 0.0;
    }
    let speed = speed_mbps as f64 * 1_000_000.0;
    rx_bytes_s.max(tx_bytes_s) * 800.0 / speed
}

fn dev_row(iface: &str, d: &NetDeltas, speed_mbps: u64) -> NetDevRow {
    let (rx, tx) = (d.rate("rx_bytes"), d.rate("tx_bytes"));
    NetDevRow {
        iface: iface.to_string(),
        rxpck: d.rate("rx_packets"),
        txpck: d.rate("tx_packets"),
        rxkb: rx / 1024.0,
        txkb: tx / 1024.0,
        rxcmp: d.rate("rx_compressed"),
        txcmp: d.rate("tx_compressed"),
        rxmcst: d.rate("rx_multicast"),
        ifutil: ifutil(rx, tx, speed_mbps),
    }
}

fn edev_row(iface: &str, d: &NetDeltas) -> NetEdevRow {
    NetEdevRow {
        iface: iface.to_string(),
        rxerr: d.rate("rx_errs"),
        txerr: d.rate("tx_errs"),
        coll: d.rate("tx_colls"),
        rxdrop: d.rate("rx_drop"),
        txdrop: d.rate("tx_drop"),
        txcarr: d.rate("tx_carrier"),
        rxfram: d.rate("rx_frame"),
        rxfifo: d.rate("rx_fifo"),
        txfifo: d.rate("tx_fifo"),
    }
}

/// `sar -n DEV` rows of the interval `prev → cur`.
pub fn sar_dev_rows<P, C, F>(prev: &P, cur: &C, speed_mbps: F) -> Vec<NetDevRow>
where
    P: Sample + ?Sized,
    C: Columns + ?Sized,
    F: Fn(&str) -> Option<u64>,
{
    net_deltas(prev, cur)
        .iter()
        .map(|(i, d)| dev_row(i, d, speed_of(cur, i, &speed_mbps)))
        .collect()
}

/// `sar -n EDEV` rows of the interval `prev → cur`.
pub fn sar_edev_rows<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
) -> Vec<NetEdevRow> {
    net_deltas(prev, cur)
        .iter()
        .map(|(i, d)| edev_row(i, d))
        .collect()
}

/// A sar block: a blank line, the header stamped `hdr`, rows stamped `row`.
fn sar_block(hdr: &str, row: &str, cols: &[&str], rows: &[(String, Vec<f64>)]) -> String {
    let mut out = format!("\n{hdr:<11} {:>9}", "IFACE");
    for c in cols {
        out.push_str(&format!(" {c:>9}"));
    }
    out.push('\n');
    for (iface, vals) in rows {
        out.push_str(&format!("{row:<11} {iface:>9}"));
        for v in vals {
            out.push_str(&format!(" {v:>9.2}"));
        }
        out.push('\n');
    }
    out
}

fn dev_table(rows: &[NetDevRow]) -> (Vec<&'static str>, Vec<(String, Vec<f64>)>) {
    let cols = NetDevRow::default().columns().map(|(k, _)| k).to_vec();
    let rows = rows
        .iter()
        .map(|r| (r.iface.clone(), r.columns().map(|(_, v)| v).to_vec()))
        .collect();
    (cols, rows)
}

fn edev_table(rows: &[NetEdevRow]) -> (Vec<&'static str>, Vec<(String, Vec<f64>)>) {
    let cols = NetEdevRow::default().columns().map(|(k, _)| k).to_vec();
    let rows = rows
        .iter()
        .map(|r| (r.iface.clone(), r.columns().map(|(_, v)| v).to_vec()))
        .collect();
    (cols, rows)
}

/// Interface deltas summed over every interval (sar's `Average:` is the
/// whole span's counters over the whole span's time), in first-appearance
/// order.
fn net_average<S: Columns>(samples: &[S]) -> Vec<(String, NetDeltas)> {
    let mut order: Vec<String> = Vec::new();
    let mut sums: HashMap<String, NetDeltas> = HashMap::new();
    let mut total_dt = 0u64;
    for w in samples.windows(2) {
        let ds = net_deltas(&w[0], &w[1]);
        total_dt = total_dt.saturating_add(interval_ns(&w[0], &w[1]));
        for (i, d) in ds {
            let e = sums.entry(i.clone()).or_insert_with(|| {
                order.push(i.clone());
                NetDeltas::default()
            });
            e.add(&d);
        }
    }
    order
        .into_iter()
        .map(|i| {
            let mut d = sums.remove(&i).unwrap_or_default();
            d.dt_ns = total_dt;
            (i, d)
        })
        .collect()
}

/// Which sar network report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NetReport {
    Dev,
    Edev,
}

fn sar_net_series<S: Columns, F: Fn(&str) -> Option<u64>>(
    samples: &[S],
    host: &Host,
    speed: &F,
    kind: NetReport,
) -> String {
    let Some(first) = samples.first() else {
        return String::new();
    };
    let tz = &host.tz;
    let mut out = sysstat_banner(host, first.wall_ns());
    let table = |cur: &S, deltas: &[(String, NetDeltas)]| match kind {
        NetReport::Dev => dev_table(
            &deltas
                .iter()
                .map(|(i, d)| dev_row(i, d, speed_of(cur, i, speed)))
                .collect::<Vec<_>>(),
        ),
        NetReport::Edev => edev_table(
            &deltas
                .iter()
                .map(|(i, d)| edev_row(i, d))
                .collect::<Vec<_>>(),
        ),
    };
    for w in samples.windows(2) {
        let (cols, rows) = table(&w[1], &net_deltas(&w[0], &w[1]));
        out.push_str(&sar_block(
            &fmt_hms(w[0].wall_ns(), tz),
            &fmt_hms(w[1].wall_ns(), tz),
            &cols,
            &rows,
        ));
    }
    if samples.len() >= 2 {
        let last = &samples[samples.len() - 1];
        let (cols, rows) = table(last, &net_average(samples));
        out.push_str(&sar_block("Average:", "Average:", &cols, &rows));
    }
    out
}

/// `sar -n DEV` over consecutive samples: banner, one block per interval
/// (header stamped with the interval's start, rows with its end), then the
/// `Average:` block. `%ifutil` needs the link speed: the recorded
/// `net.<iface>.speed_mbps` column when present, else `speed_mbps(iface)`,
/// else 0; the link is assumed full duplex.
pub fn sar_dev_series<S: Columns, F: Fn(&str) -> Option<u64>>(
    samples: &[S],
    host: &Host,
    speed_mbps: F,
) -> String {
    sar_net_series(samples, host, &speed_mbps, NetReport::Dev)
}

/// `sar -n EDEV` over consecutive samples (see [`sar_dev_series`]).
pub fn sar_edev_series<S: Columns>(samples: &[S], host: &Host) -> String {
    sar_net_series(samples, host, &|_: &str| None, NetReport::Edev)
}

/// `sar -n DEV` for one interval, as `sar -n DEV <dt> 1` prints it: banner,
/// the block, and the (identical) `Average:` block.
pub fn sar_dev<P, C, F>(prev: &P, cur: &C, host: &Host, speed_mbps: F) -> String
where
    P: Sample + ?Sized,
    C: Columns + ?Sized,
    F: Fn(&str) -> Option<u64>,
{
    let rows = sar_dev_rows(prev, cur, &speed_mbps);
    let (cols, rows) = dev_table(&rows);
    let tz = &host.tz;
    let mut out = sysstat_banner(host, prev.wall_ns());
    out.push_str(&sar_block(
        &fmt_hms(prev.wall_ns(), tz),
        &fmt_hms(cur.wall_ns(), tz),
        &cols,
        &rows,
    ));
    out.push_str(&sar_block("Average:", "Average:", &cols, &rows));
    out
}

/// `sar -n EDEV` for one interval (see [`sar_dev`]).
pub fn sar_edev<P: Sample + ?Sized, C: Columns + ?Sized>(prev: &P, cur: &C, host: &Host) -> String {
    let rows = sar_edev_rows(prev, cur);
    let (cols, rows) = edev_table(&rows);
    let tz = &host.tz;
    let mut out = sysstat_banner(host, prev.wall_ns());
    out.push_str(&sar_block(
        &fmt_hms(prev.wall_ns(), tz),
        &fmt_hms(cur.wall_ns(), tz),
        &cols,
        &rows,
    ));
    out.push_str(&sar_block("Average:", "Average:", &cols, &rows));
    out
}

fn table_json(rows: &(Vec<&'static str>, Vec<(String, Vec<f64>)>)) -> Value {
    Value::Array(
        rows.1
            .iter()
            .map(|(iface, vals)| {
                let mut m = Map::new();
                m.insert("IFACE".into(), json!(iface));
                for (k, v) in rows.0.iter().zip(vals) {
                    m.insert((*k).into(), round2(*v));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

fn sar_net_series_json<S: Columns, F: Fn(&str) -> Option<u64>>(
    samples: &[S],
    host: &Host,
    speed: &F,
    kind: NetReport,
) -> Value {
    let table = |cur: &S, deltas: &[(String, NetDeltas)]| match kind {
        NetReport::Dev => table_json(&dev_table(
            &deltas
                .iter()
                .map(|(i, d)| dev_row(i, d, speed_of(cur, i, speed)))
                .collect::<Vec<_>>(),
        )),
        NetReport::Edev => table_json(&edev_table(
            &deltas
                .iter()
                .map(|(i, d)| edev_row(i, d))
                .collect::<Vec<_>>(),
        )),
    };
    let intervals: Vec<Value> = samples
        .windows(2)
        .map(|w| {
            json!({
                "timestamp": fmt_datetime(w[1].wall_ns(), &host.tz),
                "wall_ns": w[1].wall_ns(),
                "interval_s": interval_ns(&w[0], &w[1]) as f64 / 1e9,
                "interfaces": table(&w[1], &net_deltas(&w[0], &w[1])),
            })
        })
        .collect();
    let average = match samples.last() {
        Some(last) if samples.len() >= 2 => table(last, &net_average(samples)),
        _ => Value::Array(Vec::new()),
    };
    json!({"intervals": intervals, "average": average})
}

/// `{"intervals": [{"timestamp": …, "interfaces": [...]}, …], "average": [...]}` (see [`sar_dev_series`]).
pub fn sar_dev_series_json<S: Columns, F: Fn(&str) -> Option<u64>>(
    samples: &[S],
    host: &Host,
    speed_mbps: F,
) -> Value {
    sar_net_series_json(samples, host, &speed_mbps, NetReport::Dev)
}

/// `{"intervals": [...], "average": [...]}` (see [`sar_edev_series`]).
pub fn sar_edev_series_json<S: Columns>(samples: &[S], host: &Host) -> Value {
    sar_net_series_json(samples, host, &|_: &str| None, NetReport::Edev)
}

/// `{"timestamp": …, "interfaces": [{"IFACE": "eth0", "rxpck/s": …, …, "%ifutil": …}]}`
pub fn sar_dev_json<P, C, F>(prev: &P, cur: &C, host: &Host, speed_mbps: F) -> Value
where
    P: Sample + ?Sized,
    C: Columns + ?Sized,
    F: Fn(&str) -> Option<u64>,
{
    json!({
        "timestamp": fmt_datetime(cur.wall_ns(), &host.tz),
        "interfaces": table_json(&dev_table(&sar_dev_rows(prev, cur, speed_mbps))),
    })
}

/// `{"timestamp": …, "interfaces": [{"IFACE": "eth0", "rxerr/s": …, …}]}`
pub fn sar_edev_json<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
) -> Value {
    json!({
        "timestamp": fmt_datetime(cur.wall_ns(), &host.tz),
        "interfaces": table_json(&edev_table(&sar_edev_rows(prev, cur))),
    })
}

// ---------------------------------------------------------------------------
// netstat -s
// ---------------------------------------------------------------------------

/// How net-tools prints an entry it finds (`statistics.c`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ent {
    /// `%llu …` (printed even when 0 by netstat: `number`).
    Num,
    /// Same wording, printed by netstat only when non-zero (`opt_number`).
    Opt,
    /// Configuration (`Forwarding`, `DefaultTTL`, `RtoAlgorithm`): not printed.
    Static,
    /// Known but never printed (`MaxConn`, `RtoMin`, `RtoMax`).
    Silent,
}

type Table = &'static [(&'static str, &'static str, Ent)];

// net-tools 2.10 statistics.c tables, in their source order. Some are not
// sorted, and netstat looks entries up with bsearch(), so a few entries are
// never found and come out as `Name: value` (e.g. `TCPTimeouts: 2`); this is
// reproduced by searching the same tables the same way.
#[rustfmt::skip]
const IP_TAB: Table = &[
    ("DefaultTTL", "Default TTL is %llu", Ent::Static),
    ("Forwarding", "Forwarding is %s", Ent::Static),
    ("ForwDatagrams", "%llu forwarded", Ent::Num),
    ("FragCreates", "%llu fragments created", Ent::Opt),
    ("FragFails", "%llu outgoing packets failed fragmentation", Ent::Opt),
    ("FragOKs", "%llu outgoing packets fragmented ok", Ent::Opt),
    ("InAddrErrors", "%llu with invalid addresses", Ent::Opt),
    ("InDelivers", "%llu incoming packets delivered", Ent::Num),
    ("InDiscards", "%llu incoming packets discarded", Ent::Num),
    ("InHdrErrors", "%llu with invalid headers", Ent::Opt),
    ("InReceives", "%llu total packets received", Ent::Num),
    ("InUnknownProtos", "%llu with unknown protocol", Ent::Opt),
    ("OutDiscards", "%llu outgoing packets dropped", Ent::Opt),
    ("OutNoRoutes", "%llu dropped because of missing route", Ent::Opt),
    ("OutRequests", "%llu requests sent out", Ent::Num),
    ("ReasmFails", "%llu packet reassemblies failed", Ent::Opt),
    ("ReasmOKs", "%llu packets reassembled ok", Ent::Opt),
    ("ReasmReqds", "%llu reassemblies required", Ent::Opt),
    ("ReasmTimeout", "%llu fragments dropped after timeout", Ent::Opt),
];

#[rustfmt::skip]
const TCP_TAB: Table = &[
    ("ActiveOpens", "%llu active connection openings", Ent::Num),
    ("AttemptFails", "%llu failed connection attempts", Ent::Num),
    ("CurrEstab", "%llu connections established", Ent::Num),
    ("EstabResets", "%llu connection resets received", Ent::Num),
    ("InErrs", "%llu bad segments received", Ent::Num),
    ("InSegs", "%llu segments received", Ent::Num),
    ("MaxConn", "", Ent::Silent),
    ("OutRsts", "%llu resets sent", Ent::Num),
    ("OutSegs", "%llu segments sent out", Ent::Num),
    ("PassiveOpens", "%llu passive connection openings", Ent::Num),
    ("RetransSegs", "%llu segments retransmitted", Ent::Num),
    ("RtoAlgorithm", "RTO algorithm is %s", Ent::Static),
    ("RtoMax", "", Ent::Silent),
    ("RtoMin", "", Ent::Silent),
];

#[rustfmt::skip]
const UDP_TAB: Table = &[
    ("InDatagrams", "%llu packets received", Ent::Num),
    ("InErrors", "%llu packet receive errors", Ent::Num),
    ("NoPorts", "%llu packets to unknown port received", Ent::Num),
    ("OutDatagrams", "%llu packets sent", Ent::Num),
    ("RcvbufErrors", "%llu receive buffer errors", Ent::Num),
    ("SndbufErrors", "%llu send buffer errors", Ent::Num),
];

#[rustfmt::skip]
const TCPEXT_TAB: Table = &[
    ("DelayedACKLocked", "%llu delayed acks further delayed because of locked socket", Ent::Opt),
    ("DelayedACKLost", "Quick ack mode was activated %llu times", Ent::Opt),
    ("DelayedACKs", "%llu delayed acks sent", Ent::Opt),
    ("EmbryonicRsts", "%llu resets received for embryonic SYN_RECV sockets", Ent::Opt),
    ("ListenDrops", "%llu SYNs to LISTEN sockets dropped", Ent::Opt),
    ("ListenOverflows", "%llu times the listen queue of a socket overflowed", Ent::Opt),
    ("LockDroppedIcmps", "%llu ICMP packets dropped because socket was locked", Ent::Opt),
    ("OfoPruned", "%llu packets dropped from out-of-order queue because of socket buffer overrun", Ent::Opt),
    ("OutOfWindowIcmps", "%llu ICMP packets dropped because they were out-of-window", Ent::Opt),
    ("PAWSActive", "%llu active connections rejected because of time stamp", Ent::Opt),
    ("PAWSEstab", "%llu packets rejected in established connections because of timestamp", Ent::Opt),
    ("PAWSPassive", "%llu passive connections rejected because of time stamp", Ent::Opt),
    ("PruneCalled", "%llu packets pruned from receive queue because of socket buffer overrun", Ent::Opt),
    ("RcvPruned", "%llu packets pruned from receive queue", Ent::Opt),
    ("SockMallocOOM", "Ran %llu times out of system memory during packet sending", Ent::Opt),
    ("SyncookiesFailed", "%llu invalid SYN cookies received", Ent::Opt),
    ("SyncookiesRecv", "%llu SYN cookies received", Ent::Opt),
    ("SyncookiesSent", "%llu SYN cookies sent", Ent::Opt),
    ("TCPAbortFailed", "%llu times unable to send RST due to no memory", Ent::Opt),
    ("TCPAbortOnClose", "%llu connections reset due to early user close", Ent::Opt),
    ("TCPAbortOnData", "%llu connections reset due to unexpected data", Ent::Opt),
    ("TCPAbortOnLinger", "%llu connections aborted after user close in linger timeout", Ent::Opt),
    ("TCPAbortOnMemory", "%llu connections aborted due to memory pressure", Ent::Opt),
    ("TCPAbortOnSyn", "%llu connections reset due to unexpected SYN", Ent::Opt),
    ("TCPAbortOnTimeout", "%llu connections aborted due to timeout", Ent::Opt),
    ("TCPDirectCopyFromBacklog", "%llu bytes directly in process context from backlog", Ent::Opt),
    ("TCPDirectCopyFromPrequeue", "%llu bytes directly received in process context from prequeue", Ent::Opt),
    ("TCPDSACKOfoRecv", "%llu DSACKs for out of order packets received", Ent::Opt),
    ("TCPDSACKOfoSent", "%llu DSACKs sent for out of order packets", Ent::Opt),
    ("TCPDSACKOldSent", "%llu DSACKs sent for old packets", Ent::Opt),
    ("TCPDSACKRecv", "%llu DSACKs received", Ent::Opt),
    ("TCPDSackUndo", "%llu congestion window recovered without slow start using DSACK", Ent::Opt),
    ("TCPDSACKUndo", "%llu congestion windows recovered without slow start by DSACK", Ent::Opt),
    ("TCPFACKReorder", "Detected reordering %llu times using FACK", Ent::Opt),
    ("TCPFastRetrans", "%llu fast retransmits", Ent::Opt),
    ("TCPForwardRetrans", "%llu forward retransmits", Ent::Opt),
    ("TCPFullUndo", "%llu congestion windows fully recovered without slow start", Ent::Opt),
    ("TCPHPAcks", "%llu predicted acknowledgments", Ent::Opt),
    ("TCPHPHits", "%llu packet headers predicted", Ent::Num),
    ("TCPHPHitsToUser", "%llu packet headers predicted and directly queued to user", Ent::Opt),
    ("TCPLossFailures", "%llu timeouts in loss state", Ent::Opt),
    ("TCPLoss", "%llu TCP data loss events", Ent::Opt),
    ("TCPLossUndo", "%llu congestion windows recovered without slow start after partial ack", Ent::Opt),
    ("TCPLostRetransmits", "%llu retransmits lost", Ent::Opt),
    ("TCPMemoryPressures", "TCP ran low on memory %llu times", Ent::Opt),
    ("TCPPartialUndo", "%llu congestion windows partially recovered using Hoe heuristic", Ent::Opt),
    ("TCPPrequeued", "%llu packets directly queued to recvmsg prequeue", Ent::Opt),
    ("TCPPrequeueDropped", "%llu packets dropped from prequeue", Ent::Opt),
    ("TCPPureAcks", "%llu acknowledgments not containing data payload received", Ent::Opt),
    ("TCPRcvCollapsed", "%llu packets collapsed in receive queue due to low socket buffer", Ent::Opt),
    ("TCPRenoFailures", "%llu timeouts after reno fast retransmit", Ent::Opt),
    ("TCPRenoRecoveryFailed", "%llu reno fast retransmits failed", Ent::Opt),
    ("TCPRenoRecoveryFail", "%llu classic Reno fast retransmits failed", Ent::Opt),
    ("TCPRenoRecovery", "%llu times recovered from packet loss due to fast retransmit", Ent::Opt),
    ("TCPRenoReorder", "Detected reordering %llu times using reno fast retransmit", Ent::Opt),
    ("TCPSackFailures", "%llu timeouts after SACK recovery", Ent::Opt),
    ("TCPSackRecoveryFail", "%llu SACK retransmits failed", Ent::Opt),
    ("TCPSackRecovery", "%llu times recovered from packet loss by selective acknowledgements", Ent::Opt),
    ("TCPSACKReneging", "%llu bad SACK blocks received", Ent::Opt),
    ("TCPSACKReorder", "Detected reordering %llu times using SACK", Ent::Opt),
    ("TCPSchedulerFailed", "%llu times receiver scheduled too late for direct processing", Ent::Opt),
    ("TCPSlowStartRetrans", "%llu retransmits in slow start", Ent::Opt),
    ("TCPTimeouts", "%llu other TCP timeouts", Ent::Opt),
    ("TCPTSReorder", "Detected reordering %llu times using time stamp", Ent::Opt),
    ("TWKilled", "%llu TCP sockets finished time wait in slow timer", Ent::Opt),
    ("TW", "%llu TCP sockets finished time wait in fast timer", Ent::Opt),
    ("TWRecycled", "%llu time wait sockets recycled by time stamp", Ent::Opt),
];

/// glibc `bsearch()` with `strcmp()` over a table, sorted or not.
fn net_tools_lookup(tab: Table, key: &str) -> Option<(&'static str, Ent)> {
    let (mut l, mut u) = (0usize, tab.len());
    while l < u {
        let idx = (l + u) / 2;
        match key.as_bytes().cmp(tab[idx].0.as_bytes()) {
            std::cmp::Ordering::Less => u = idx,
            std::cmp::Ordering::Greater => l = idx + 1,
            std::cmp::Ordering::Equal => return Some((tab[idx].1, tab[idx].2)),
        }
    }
    None
}

/// The line net-tools prints for `field` = `v` (without indentation), or
/// `None` for entries it never prints.
pub fn netstat_wording(section: &str, field: &str, v: u64) -> Option<String> {
    let tab = match section {
        "Ip" => IP_TAB,
        "Tcp" => TCP_TAB,
        "Udp" => UDP_TAB,
        "TcpExt" => TCPEXT_TAB,
        _ => &[],
    };
    match net_tools_lookup(tab, field) {
        None => Some(format!("{field}: {v}")),
        Some((_, Ent::Static | Ent::Silent)) => None,
        Some((fmt, Ent::Num | Ent::Opt)) => Some(fmt.replacen("%llu", &v.to_string(), 1)),
    }
}

/// Counters shown by [`netstat_s`]: (section, column prefix, fields in
/// kernel order). `Tcp.CurrEstab` is a gauge.
const NETSTAT_LINES: [(&str, &str, &[&str]); 4] = [
    (
        "Ip",
        "snmp.Ip.",
        &[
            "InReceives",
            "InHdrErrors",
            "InAddrErrors",
            "ForwDatagrams",
            "InUnknownProtos",
            "InDiscards",
            "InDelivers",
            "OutRequests",
            "OutDiscards",
            "OutNoRoutes",
            "ReasmFails",
            "FragFails",
        ],
    ),
    (
        "Tcp",
        "snmp.Tcp.",
        &[
            "ActiveOpens",
            "PassiveOpens",
            "AttemptFails",
            "EstabResets",
            "CurrEstab",
            "InSegs",
            "OutSegs",
            "RetransSegs",
            "InErrs",
            "OutRsts",
            "InCsumErrors",
        ],
    ),
    (
        "Udp",
        "snmp.Udp.",
        &[
            "InDatagrams",
            "NoPorts",
            "InErrors",
            "OutDatagrams",
            "RcvbufErrors",
            "SndbufErrors",
            "InCsumErrors",
        ],
    ),
    (
        "TcpExt",
        "netstat.TcpExt.",
        &[
            "SyncookiesSent",
            "SyncookiesRecv",
            "SyncookiesFailed",
            "EmbryonicRsts",
            "PruneCalled",
            "ListenOverflows",
            "ListenDrops",
            "TCPLostRetransmit",
            "TCPFastRetrans",
            "TCPSlowStartRetrans",
            "TCPTimeouts",
            "TCPAbortOnData",
            "TCPAbortOnClose",
            "TCPAbortOnMemory",
            "TCPAbortOnTimeout",
            "TCPMemoryPressures",
            "TCPBacklogDrop",
            "TCPReqQFullDrop",
            "TCPSynRetrans",
            "TCPZeroWindowDrop",
            "TCPRcvQDrop",
        ],
    ),
];

fn is_gauge(section: &str, field: &str) -> bool {
    section == "Tcp" && field == "CurrEstab"
}

/// One `netstat -s` line of [`netstat_s`].
#[derive(Debug, Clone, PartialEq)]
pub struct NetstatLine {
    pub section: &'static str,
    pub field: &'static str,
    /// Value in `cur`.
    pub total: u64,
    /// Per-second rate over the interval (counters); for the gauge
    /// `CurrEstab`, the signed change.
    pub change: f64,
    pub gauge: bool,
    /// net-tools' wording with the total, e.g. `1234 active connection openings`.
    pub text: String,
}

/// The lines of [`netstat_s`]: every listed counter present in `cur`.
pub fn netstat_lines<P: Sample + ?Sized, C: Sample + ?Sized>(
    prev: &P,
    cur: &C,
) -> Vec<NetstatLine> {
    let p = Pair::new(prev, cur);
    let mut out = Vec::new();
    for (section, prefix, fields) in NETSTAT_LINES {
        for &field in fields {
            let name = format!("{prefix}{field}");
            let Some(total) = cur.get(&name) else {
                continue;
            };
            let gauge = is_gauge(section, field);
            let change = if gauge {
                if p.dt_ns == 0 {
                    0.0
                } else {
                    total as f64 - val(prev, &name) as f64
                }
            } else {
                per_sec(p.delta(&name), p.dt_ns)
            };
            let Some(text) = netstat_wording(section, field, total) else {
                continue;
            };
            out.push(NetstatLine {
                section,
                field,
                total,
                change,
                gauge,
                text,
            });
        }
    }
    out
}

/// `netstat -s`, restricted to the counters one looks at first, grouped
/// like net-tools (`Ip:`, `Tcp:`, `Udp:`, `TcpExt:`, four-space indent, its
/// exact wording), each line followed by the rate over the interval:
/// `    1234 active connection openings (+12.0/s)`. The gauge
/// `connections established` shows its change instead: `(+3)`, `(-2)`.
/// Unlike netstat, zero `TcpExt` counters are shown too.
pub fn netstat_s<P: Sample + ?Sized, C: Sample + ?Sized>(
    prev: &P,
    cur: &C,
    _host: &Host,
) -> String {
    let mut out = String::new();
    let mut section = "";
    for l in netstat_lines(prev, cur) {
        if l.section != section {
            section = l.section;
            out.push_str(section);
            out.push_str(":\n");
        }
        if l.gauge {
            out.push_str(&format!("    {} ({:+})\n", l.text, l.change as i64));
        } else {
            out.push_str(&format!("    {} (+{:.1}/s)\n", l.text, l.change));
        }
    }
    out
}

/// `{"timestamp": …, "interval_s": 1.0, "Tcp": {"ActiveOpens": {"total": 1234, "per_s": 12.0}, "CurrEstab": {"total": 5, "change": -2}}, …}`
pub fn netstat_s_json<P: Sample + ?Sized, C: Sample + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
) -> Value {
    let mut m = Map::new();
    m.insert(
        "timestamp".into(),
        json!(fmt_datetime(cur.wall_ns(), &host.tz)),
    );
    m.insert(
        "interval_s".into(),
        round(interval_ns(prev, cur) as f64 / 1e9, 3),
    );
    for l in netstat_lines(prev, cur) {
        let sec = m
            .entry(l.section)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(sec) = sec {
            let v = if l.gauge {
                json!({"total": l.total, "change": l.change as i64})
            } else {
                json!({"total": l.total, "per_s": round2(l.change)})
            };
            sec.insert(l.field.into(), v);
        }
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------
// ss -s
// ---------------------------------------------------------------------------

/// The numbers of `ss -s` (iproute2 `print_summary()`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SsSummary {
    pub total: i64,
    pub tcp_total: i64,
    pub estab: i64,
    pub closed: i64,
    pub orphaned: i64,
    pub timewait: i64,
    /// (IP, IPv6) per transport.
    pub raw: (i64, i64),
    pub udp: (i64, i64),
    pub tcp: (i64, i64),
    pub frag: (i64, i64),
}

impl SsSummary {
    pub fn inet(&self) -> (i64, i64) {
        (
            self.raw.0 + self.udp.0 + self.tcp.0,
            self.raw.1 + self.udp.1 + self.tcp.1,
        )
    }
}

/// `ss -s` numbers from `sockstat`, `sockstat6` and `snmp.Tcp.CurrEstab`,
/// computed as iproute2 does (it reads the same files).
pub fn ss_summary<C: Sample + ?Sized>(cur: &C) -> SsSummary {
    let g = |n: &str| i64::try_from(val(cur, n)).unwrap_or(i64::MAX);
    let (alloc, tw, inuse4, inuse6) = (
        g("sockstat.TCP.alloc"),
        g("sockstat.TCP.tw"),
        g("sockstat.TCP.inuse"),
        g("sockstat.TCP6.inuse"),
    );
    SsSummary {
        total: g("sockstat.sockets.used"),
        tcp_total: alloc.saturating_add(tw),
        estab: g("snmp.Tcp.CurrEstab"),
        closed: alloc.saturating_sub(inuse4.saturating_add(inuse6).saturating_sub(tw)),
        orphaned: g("sockstat.TCP.orphan"),
        timewait: tw,
        raw: (g("sockstat.RAW.inuse"), g("sockstat.RAW6.inuse")),
        udp: (g("sockstat.UDP.inuse"), g("sockstat.UDP6.inuse")),
        tcp: (inuse4, inuse6),
        frag: (g("sockstat.FRAG.inuse"), g("sockstat.FRAG6.inuse")),
    }
}

/// `ss -s` exactly as iproute2 6.1 prints it (trailing blank line and the
/// `%-9d` padding included).
pub fn ss_s<C: Sample + ?Sized>(cur: &C) -> String {
    let s = ss_summary(cur);
    let row = |name: &str, (a, b): (i64, i64)| {
        format!("{name}\t  {:<9} {:<9} {:<9}\n", a.saturating_add(b), a, b)
    };
    let mut out = format!(
        "Total: {}\nTCP:   {} (estab {}, closed {}, orphaned {}, timewait {})\n\n",
        s.total, s.tcp_total, s.estab, s.closed, s.orphaned, s.timewait
    );
    out.push_str("Transport Total     IP        IPv6\n");
    out.push_str(&row("RAW", s.raw));
    out.push_str(&row("UDP", s.udp));
    out.push_str(&row("TCP", s.tcp));
    out.push_str(&row("INET", s.inet()));
    out.push_str(&row("FRAG", s.frag));
    out.push('\n');
    out
}

/// `{"Total": 229, "TCP": {"total": …, "estab": …, …}, "Transport": {"RAW": {"Total": …, "IP": …, "IPv6": …}, …}}`
pub fn ss_s_json<C: Sample + ?Sized>(cur: &C) -> Value {
    let s = ss_summary(cur);
    let t = |(a, b): (i64, i64)| json!({"Total": a.saturating_add(b), "IP": a, "IPv6": b});
    json!({
        "Total": s.total,
        "TCP": {"total": s.tcp_total, "estab": s.estab, "closed": s.closed,
                "orphaned": s.orphaned, "timewait": s.timewait},
        "Transport": {"RAW": t(s.raw), "UDP": t(s.udp), "TCP": t(s.tcp),
                      "INET": t(s.inet()), "FRAG": t(s.frag)},
    })
}

// ---------------------------------------------------------------------------
// interrupts and softirqs
// ---------------------------------------------------------------------------

/// Which table [`interrupts`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqKind {
    /// `/proc/interrupts` (`irq.*` columns).
    Irq,
    /// `/proc/softirqs` (`softirq.*` columns).
    Softirq,
}

impl IrqKind {
    /// `"irq"` or `"softirq"`.
    pub fn from_name(s: &str) -> Option<IrqKind> {
        match s {
            "irq" | "interrupts" => Some(IrqKind::Irq),
            "softirq" | "softirqs" => Some(IrqKind::Softirq),
            _ => None,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            IrqKind::Irq => "irq.",
            IrqKind::Softirq => "softirq.",
        }
    }
    fn label(self) -> &'static str {
        match self {
            IrqKind::Irq => "IRQ",
            IrqKind::Softirq => "SOFTIRQ",
        }
    }
}

/// One row of [`interrupts`]: per-CPU deltas (`None` where the row has no
/// such CPU, e.g. the global `ERR`), their total and its rate.
#[derive(Debug, Clone, PartialEq)]
pub struct IrqRow {
    pub name: String,
    pub per_cpu: Vec<Option<u64>>,
    pub total: u64,
    pub per_sec: f64,
}

/// The moved counters of the interval, and the CPU ids of the columns.
#[derive(Debug, Clone, PartialEq)]
pub struct IrqTable {
    pub prev_wall_ns: i64,
    pub wall_ns: i64,
    pub dt_ns: u64,
    pub cpus: Vec<u32>,
    pub rows: Vec<IrqRow>,
}

/// Counters of `kind` that moved over the interval, sorted by total delta
/// (largest first, then by name).
pub fn irq_table<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    kind: IrqKind,
) -> IrqTable {
    let p = Pair::new(prev, cur);
    let prefix = kind.prefix();
    // name → (cpu → column); `total` rows under u32::MAX.
    let mut rows: Vec<(String, BTreeMap<u32, String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut cpus = std::collections::BTreeSet::new();
    for col in cur.column_names() {
        let Some(rest) = col.strip_prefix(prefix) else {
            continue;
        };
        let Some((name, which)) = rest.rsplit_once('.') else {
            continue;
        };
        let cpu = if which == "total" {
            u32::MAX
        } else {
            match which
                .strip_prefix("cpu")
                .and_then(|n| n.parse::<u32>().ok())
            {
                Some(c) if c != u32::MAX => {
                    cpus.insert(c);
                    c
                }
                _ => continue,
            }
        };
        let i = *index.entry(name.to_string()).or_insert_with(|| {
            rows.push((name.to_string(), BTreeMap::new()));
            rows.len() - 1
        });
        rows[i].1.insert(cpu, col.clone());
    }
    let cpus: Vec<u32> = cpus.into_iter().collect();
    let mut out: Vec<IrqRow> = rows
        .into_iter()
        .filter_map(|(name, cols)| {
            let per_cpu: Vec<Option<u64>> = cpus
                .iter()
                .map(|c| cols.get(c).map(|col| p.delta(col)))
                .collect();
            let total = match cols.get(&u32::MAX) {
                Some(col) => p.delta(col),
                None => per_cpu
                    .iter()
                    .flatten()
                    .fold(0u64, |a, &b| a.saturating_add(b)),
            };
            (total > 0).then(|| IrqRow {
                name,
                per_cpu,
                total,
                per_sec: per_sec(total, p.dt_ns),
            })
        })
        .collect();
    out.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    IrqTable {
        prev_wall_ns: prev.wall_ns(),
        wall_ns: cur.wall_ns(),
        dt_ns: p.dt_ns,
        cpus,
        rows: out,
    }
}

/// Per-CPU deltas over the interval of every IRQ (or softirq) counter that
/// moved, largest first, like what `watch -d cat /proc/interrupts` would
/// highlight:
///
/// ```text
/// 14:22:05 -> 14:22:06  IRQ deltas over 1.00 s
/// IRQ       CPU0       CPU1      TOTAL    TOTAL/s
/// LOC        250        247        497     497.00
/// 25          12          .         12      12.00
/// ERR          -          -          1       1.00
/// ```
///
/// `.` is a CPU whose count did not move, `-` a CPU the row does not have
/// (global rows). Counters that went backwards count as not moved.
pub fn interrupts<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
    kind: IrqKind,
) -> String {
    format_irq_table(&irq_table(prev, cur, kind), host, kind)
}

/// Text of an [`IrqTable`] (see [`interrupts`]).
pub fn format_irq_table(t: &IrqTable, host: &Host, kind: IrqKind) -> String {
    let label = kind.label();
    let mut out = format!(
        "{} -> {}  {label} deltas over {:.2} s\n",
        fmt_hms(t.prev_wall_ns, &host.tz),
        fmt_hms(t.wall_ns, &host.tz),
        t.dt_ns as f64 / 1e9
    );
    let w = t
        .rows
        .iter()
        .map(|r| r.name.chars().count())
        .chain([label.len()])
        .max()
        .unwrap_or(3);
    out.push_str(&format!("{label:<w$}"));
    for c in &t.cpus {
        out.push_str(&format!(" {:>10}", format!("CPU{c}")));
    }
    out.push_str(&format!(" {:>10} {:>10}\n", "TOTAL", "TOTAL/s"));
    if t.rows.is_empty() {
        out.push_str("(no counter moved)\n");
    }
    for r in &t.rows {
        out.push_str(&format!("{:<w$}", r.name));
        for v in &r.per_cpu {
            match v {
                None => out.push_str(&format!(" {:>10}", "-")),
                Some(0) => out.push_str(&format!(" {:>10}", ".")),
                Some(v) => out.push_str(&format!(" {v:>10}")),
            }
        }
        out.push_str(&format!(" {:>10} {:>10.2}\n", r.total, r.per_sec));
    }
    out
}

/// `{"timestamp": …, "interval_s": …, "rows": [{"name": "LOC", "CPU0": 250, …, "TOTAL": 497, "TOTAL/s": 497.0}]}`
pub fn interrupts_json<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
    kind: IrqKind,
) -> Value {
    let t = irq_table(prev, cur, kind);
    let rows: Vec<Value> = t
        .rows
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("name".into(), json!(r.name));
            for (c, v) in t.cpus.iter().zip(&r.per_cpu) {
                if let Some(v) = v {
                    m.insert(format!("CPU{c}"), json!(v));
                }
            }
            m.insert("TOTAL".into(), json!(r.total));
            m.insert("TOTAL/s".into(), round2(r.per_sec));
            Value::Object(m)
        })
        .collect();
    json!({
        "timestamp": fmt_datetime(t.wall_ns, &host.tz),
        "interval_s": round(t.dt_ns as f64 / 1e9, 3),
        "kind": match kind { IrqKind::Irq => "irq", IrqKind::Softirq => "softirq" },
        "rows": rows,
    })
}

// ---------------------------------------------------------------------------
// softnet
// ---------------------------------------------------------------------------

/// One CPU (or `all`) of [`softnet`].
#[derive(Debug, Clone, PartialEq)]
pub struct SoftnetRow {
    /// `None` for the `all` row.
    pub cpu: Option<u32>,
    pub processed: f64,
    pub dropped: f64,
    pub time_squeeze: f64,
}

impl SoftnetRow {
    /// The backlog dropped packets or net_rx_action ran out of budget.
    pub fn flagged(&self) -> bool {
        self.dropped > 0.0 || self.time_squeeze > 0.0
    }
}

/// Per-CPU softnet rates, then the `all` row.
pub fn softnet_rows<P: Sample + ?Sized, C: Columns + ?Sized>(prev: &P, cur: &C) -> Vec<SoftnetRow> {
    let p = Pair::new(prev, cur);
    let mut cpus: Vec<u32> = entities(&cur.column_names(), "softnet.cpu", "processed")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    let mut sums = [0u64; 3];
    let mut out: Vec<SoftnetRow> = cpus
        .iter()
        .map(|&c| {
            let d = ["processed", "dropped", "time_squeeze"]
                .map(|f| p.delta(&format!("softnet.cpu{c}.{f}")));
            for (s, v) in sums.iter_mut().zip(d) {
                *s = s.saturating_add(v);
            }
            SoftnetRow {
                cpu: Some(c),
                processed: per_sec(d[0], p.dt_ns),
                dropped: per_sec(d[1], p.dt_ns),
                time_squeeze: per_sec(d[2], p.dt_ns),
            }
        })
        .collect();
    out.push(SoftnetRow {
        cpu: None,
        processed: per_sec(sums[0], p.dt_ns),
        dropped: per_sec(sums[1], p.dt_ns),
        time_squeeze: per_sec(sums[2], p.dt_ns),
    });
    out
}

/// Per-CPU `/proc/net/softnet_stat` rates with an `all` total; rows whose
/// `dropped` or `time_squeeze` moved are flagged:
///
/// ```text
/// 14:22:05 -> 14:22:06  softnet over 1.00 s
///  CPU  processed/s    dropped/s time_squeeze/s
///    0      1234.00         0.00           0.00
///    1      5678.00         3.00           1.00  <- dropped, time_squeeze
///  all      6912.00         3.00           1.00  <- dropped, time_squeeze
/// ```
pub fn softnet<P: Sample + ?Sized, C: Columns + ?Sized>(prev: &P, cur: &C, host: &Host) -> String {
    let mut out = format!(
        "{} -> {}  softnet over {:.2} s\n",
        fmt_hms(prev.wall_ns(), &host.tz),
        fmt_hms(cur.wall_ns(), &host.tz),
        interval_ns(prev, cur) as f64 / 1e9
    );
    out.push_str(&format!(
        "{:>4} {:>12} {:>12} {:>14}\n",
        "CPU", "processed/s", "dropped/s", "time_squeeze/s"
    ));
    for r in softnet_rows(prev, cur) {
        let cpu = r.cpu.map_or_else(|| "all".to_string(), |c| c.to_string());
        out.push_str(&format!(
            "{cpu:>4} {:>12.2} {:>12.2} {:>14.2}",
            r.processed, r.dropped, r.time_squeeze
        ));
        let flags: Vec<&str> = [
            (r.dropped > 0.0, "dropped"),
            (r.time_squeeze > 0.0, "time_squeeze"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect();
        if !flags.is_empty() {
            out.push_str("  <- ");
            out.push_str(&flags.join(", "));
        }
        out.push('\n');
    }
    out
}

/// `{"timestamp": …, "interval_s": …, "cpus": [{"CPU": "0", "processed/s": …, "dropped/s": …, "time_squeeze/s": …, "flagged": false}, …, {"CPU": "all", …}]}`
pub fn softnet_json<P: Sample + ?Sized, C: Columns + ?Sized>(
    prev: &P,
    cur: &C,
    host: &Host,
) -> Value {
    let rows: Vec<Value> = softnet_rows(prev, cur)
        .iter()
        .map(|r| {
            json!({
                "CPU": r.cpu.map_or_else(|| "all".to_string(), |c| c.to_string()),
                "processed/s": round2(r.processed),
                "dropped/s": round2(r.dropped),
                "time_squeeze/s": round2(r.time_squeeze),
                "flagged": r.flagged(),
            })
        })
        .collect();
    json!({
        "timestamp": fmt_datetime(cur.wall_ns(), &host.tz),
        "interval_s": round(interval_ns(prev, cur) as f64 / 1e9, 3),
        "cpus": rows,
    })
}

// ---------------------------------------------------------------------------
// slabtop -o
// ---------------------------------------------------------------------------

/// slabtop's sort keys (`-s`): `a` active objects, `b` objects per slab,
/// `c` cache size, `l` slabs, `v` active slabs, `n` name (ascending), `o`
/// objects, `p` pages per slab, `s` object size, `u` utilization. Others
/// fall back to `o`, as slabtop does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlabtopOpts {
    pub sort: char,
    /// At most this many caches (`None`: all, like `slabtop -o`).
    pub limit: Option<usize>,
}

impl Default for SlabtopOpts {
    /// Sorted by cache size (`slabtop -o -s c`).
    fn default() -> Self {
        SlabtopOpts {
            sort: 'c',
            limit: None,
        }
    }
}

/// One cache, as procps' `slabinfo` library computes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlabRow {
    pub name: String,
    pub objs: u64,
    pub active: u64,
    /// `(unsigned)(100 * ((float)active / objs))`.
    pub use_pct: u64,
    pub obj_size: u64,
    pub slabs: u64,
    pub active_slabs: u64,
    pub obj_per_slab: u64,
    pub pages_per_slab: u64,
    /// `slabs × pages_per_slab × page_size`, bytes.
    pub cache_size: u64,
}

/// The five summary lines' numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlabSummary {
    pub active_objs: u64,
    pub objs: u64,
    pub active_slabs: u64,
    pub slabs: u64,
    pub active_caches: u64,
    pub caches: u64,
    /// Σ active × obj_size, bytes.
    pub active_size: u64,
    /// Σ objs × obj_size, bytes.
    pub total_size: u64,
    pub min_obj: u64,
    pub avg_obj: u64,
    pub max_obj: u64,
}

/// Caches of `cur` in column order, and the summary.
pub fn slab_rows<C: Columns + ?Sized>(cur: &C, host: &Host) -> (SlabSummary, Vec<SlabRow>) {
    let page = match host.page_size {
        0 => 4096,
        p => u64::from(p),
    };
    let mut sum = SlabSummary {
        // procps starts the minimum at INT_MAX.
        min_obj: i32::MAX as u64,
        ..Default::default()
    };
    let rows: Vec<SlabRow> = entities(&cur.column_names(), "slab.", "num_objs")
        .into_iter()
        .map(|name| {
            let g = |f: &str| val(cur, &format!("slab.{name}.{f}"));
            let (objs, active, obj_size) = (g("num_objs"), g("active_objs"), g("objsize"));
            let (slabs, pps) = (g("num_slabs"), g("pagesperslab"));
            let use_pct = if objs == 0 {
                0
            } else {
                (100.0f32 * (active as f32 / objs as f32)) as u64
            };
            sum.caches += 1;
            if objs != 0 {
                sum.active_caches += 1;
            }
            sum.min_obj = sum.min_obj.min(obj_size);
            sum.max_obj = sum.max_obj.max(obj_size);
            sum.objs = sum.objs.saturating_add(objs);
            sum.active_objs = sum.active_objs.saturating_add(active);
            sum.total_size = sum.total_size.saturating_add(objs.saturating_mul(obj_size));
            sum.active_size = sum
                .active_size
                .saturating_add(active.saturating_mul(obj_size));
            sum.slabs = sum.slabs.saturating_add(slabs);
            sum.active_slabs = sum.active_slabs.saturating_add(g("active_slabs"));
            SlabRow {
                objs,
                active,
                use_pct,
                obj_size,
                slabs,
                active_slabs: g("active_slabs"),
                obj_per_slab: g("objperslab"),
                pages_per_slab: pps,
                cache_size: slabs.saturating_mul(pps).saturating_mul(page),
                name,
            }
        })
        .collect();
    sum.avg_obj = sum.total_size.checked_div(sum.objs).unwrap_or(0);
    (sum, rows)
}

/// Sort like slabtop: descending by the key (ascending for `n`), stable.
fn sort_slabs(rows: &mut [SlabRow], key: char) {
    let k = |r: &SlabRow| -> u64 {
        match key.to_ascii_lowercase() {
            'a' => r.active,
            'b' => r.obj_per_slab,
            'c' => r.cache_size,
            'l' => r.slabs,
            'v' => r.active_slabs,
            'p' => r.pages_per_slab,
            's' => r.obj_size,
            'u' => r.use_pct,
            _ => r.objs,
        }
    };
    if key.eq_ignore_ascii_case(&'n') {
        rows.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    } else {
        rows.sort_by_key(|r| std::cmp::Reverse(k(r)));
    }
}

/// `100.0 * a / b` as glibc prints it with `%.1f` (`-nan` for 0/0).
fn pct1(a: u64, b: u64) -> String {
    if b == 0 {
        if a == 0 {
            "-nan".into()
        } else {
            "inf".into()
        }
    } else {
        format!("{:.1}", 100.0 * a as f64 / b as f64)
    }
}

/// `slabtop -o [-s KEY]`: the summary and the table, as procps-ng 4.0.2
/// prints them (the header padded to 78 columns, names to 23).
pub fn slabtop<C: Columns + ?Sized>(cur: &C, host: &Host, opts: &SlabtopOpts) -> String {
    let (s, mut rows) = slab_rows(cur, host);
    sort_slabs(&mut rows, opts.sort);
    let kib = |b: u64| b as f64 / 1024.0;
    let mut out = format!(
        " {:<35}: {} / {} ({}%)\n",
        "Active / Total Objects (% used)",
        s.active_objs,
        s.objs,
        pct1(s.active_objs, s.objs)
    );
    out.push_str(&format!(
        " {:<35}: {} / {} ({}%)\n",
        "Active / Total Slabs (% used)",
        s.active_slabs,
        s.slabs,
        pct1(s.active_slabs, s.slabs)
    ));
    out.push_str(&format!(
        " {:<35}: {} / {} ({}%)\n",
        "Active / Total Caches (% used)",
        s.active_caches,
        s.caches,
        pct1(s.active_caches, s.caches)
    ));
    out.push_str(&format!(
        " {:<35}: {:.2}K / {:.2}K ({}%)\n",
        "Active / Total Size (% used)",
        kib(s.active_size),
        kib(s.total_size),
        pct1(s.active_size, s.total_size)
    ));
    out.push_str(&format!(
        " {:<35}: {:.2}K / {:.2}K / {:.2}K\n\n",
        "Minimum / Average / Maximum Object",
        kib(s.min_obj),
        kib(s.avg_obj),
        kib(s.max_obj)
    ));
    out.push_str(&format!(
        "{:<78}\n",
        "  OBJS ACTIVE  USE OBJ SIZE  SLABS OBJ/SLAB CACHE SIZE NAME"
    ));
    for r in rows.iter().take(opts.limit.unwrap_or(usize::MAX)) {
        out.push_str(&format!(
            "{:>6} {:>6} {:>3}% {:>7.2}K {:>6} {:>8} {:>9}K {:<23}\n",
            r.objs,
            r.active,
            r.use_pct,
            kib(r.obj_size),
            r.slabs,
            r.obj_per_slab,
            r.cache_size / 1024,
            r.name
        ));
    }
    out
}

/// `{"summary": {...}, "caches": [{"OBJS": …, "ACTIVE": …, "USE": …, "OBJ SIZE": <KiB>, "SLABS": …, "OBJ/SLAB": …, "CACHE SIZE": <KiB>, "NAME": …}]}`
pub fn slabtop_json<C: Columns + ?Sized>(cur: &C, host: &Host, opts: &SlabtopOpts) -> Value {
    let (s, mut rows) = slab_rows(cur, host);
    sort_slabs(&mut rows, opts.sort);
    let caches: Vec<Value> = rows
        .iter()
        .take(opts.limit.unwrap_or(usize::MAX))
        .map(|r| {
            json!({
                "OBJS": r.objs, "ACTIVE": r.active, "USE": r.use_pct,
                "OBJ SIZE": round2(r.obj_size as f64 / 1024.0), "SLABS": r.slabs,
                "OBJ/SLAB": r.obj_per_slab, "CACHE SIZE": r.cache_size / 1024, "NAME": r.name,
            })
        })
        .collect();
    json!({
        "timestamp": fmt_datetime(cur.wall_ns(), &host.tz),
        "summary": {
            "active_objs": s.active_objs, "objs": s.objs,
            "active_slabs": s.active_slabs, "slabs": s.slabs,
            "active_caches": s.active_caches, "caches": s.caches,
            "active_size_kb": round2(s.active_size as f64 / 1024.0),
            "total_size_kb": round2(s.total_size as f64 / 1024.0),
            "min_obj_kb": round2(s.min_obj as f64 / 1024.0),
            "avg_obj_kb": round2(s.avg_obj as f64 / 1024.0),
            "max_obj_kb": round2(s.max_obj as f64 / 1024.0),
        },
        "caches": caches,
    })
}
