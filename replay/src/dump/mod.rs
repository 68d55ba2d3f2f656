//! `lpo dump`: time series per stream, as CSV, NDJSON or Parquet, like
//! `below dump`.
//!
//! One row per recorded interval (per entity: CPU, process, device,
//! interface) whose end lies in the window; rates are derived here from the
//! raw counters of the two samples that bound the interval, with the same
//! math as the views (spec/VIEWS.md, "dump"). Every row carries `host` and
//! `boot_id`, so captures of many hosts can be unioned.

pub mod parquet;
pub mod table;
pub mod text;

use crate::model::{host_of, load_kv, SysSample};
use crate::procmodel;
use crate::run::{wall_to_key, window};
use crate::time::{format_local, parse_time};
use crate::views::netdisk::{iostat_report, partition_of, sar_dev_rows, sar_edev_rows, IostatOpts};
use crate::views::process::ProcRow;
use crate::views::system::{boot_changed, mpstat_block, CpuSelection, Host};
use crate::ReplayError;
use lpo_format::{HostHeader, RingReader};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use table::{Kind, Row, Table};

/// The streams `lpo dump` knows.
pub const STREAMS: [&str; 6] = ["system", "cpu", "process", "disk", "iface", "conntrack"];

/// Output format (`-O`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Csv,
    Json,
    Parquet,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" | "ndjson" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            _ => Err(format!("unknown output format {s:?}: csv, json or parquet")),
        }
    }
}

/// Arguments of `lpo dump`.
#[derive(Debug, Clone, Default)]
pub struct DumpArgs {
    pub file: PathBuf,
    /// Start of the window (TIME grammar of `lpo replay`); None: the first sample.
    pub from: Option<String>,
    /// End of the window; None: the last sample.
    pub to: Option<String>,
    pub stream: String,
    pub format: Format,
    /// Output file; None (or `-`): standard output.
    pub out: Option<PathBuf>,
    /// `--fields a,b,c`: these columns, in this order.
    pub fields: Option<String>,
    /// Read bare clock times in UTC instead of the recorded host's zone.
    pub utc: bool,
    /// "Now" for relative times; None: the current time.
    pub now_ns: Option<i64>,
    /// Standard output is a terminal (Parquet is never written there).
    pub stdout_is_terminal: bool,
}

const SEC: i64 = 1_000_000_000;

/// Columns every stream starts with.
const BASE: [(&str, Kind); 5] = [
    ("timestamp", Kind::Time),
    ("unix_ns", Kind::Int),
    ("host", Kind::Str),
    ("boot_id", Kind::Str),
    ("interval_s", Kind::Float),
];

/// `8-4-4-4-12` lowercase hex, as /proc/sys/kernel/random/boot_id.
fn boot_id_str(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// What every row needs besides its sample.
struct Ctx {
    host: Host,
    header: HostHeader,
}

/// Length of `prev → cur` in seconds, 0 across a reboot or backwards.
fn dt_s(prev: &SysSample, cur: &SysSample) -> f64 {
    if boot_changed(prev, cur) || cur.mono <= prev.mono {
        0.0
    } else {
        (cur.mono - prev.mono) as f64 / 1e9
    }
}

fn base<'a>(t: &'a mut Table, wall: i64, host: &str, boot: &[u8; 16], dt: f64) -> Row<'a> {
    let mut r = t.row();
    r.set("timestamp", Kind::Time, wall)
        .int("unix_ns", wall)
        .str("host", host)
        .str("boot_id", boot_id_str(boot))
        .float("interval_s", dt);
    r
}

/// Per-second rate of counter `name` over `dt` s; None when either sample
/// lacks it; 0 for an empty interval or a counter that went backwards.
fn rate(prev: &SysSample, cur: &SysSample, name: &str, dt: f64) -> Option<f64> {
    let (p, c) = (prev.get(name)?, cur.get(name)?);
    Some(if dt > 0.0 {
        c.saturating_sub(p) as f64 / dt
    } else {
        0.0
    })
}

fn gauge_div(s: &SysSample, name: &str, div: f64) -> Option<f64> {
    s.get(name).map(|v| v as f64 / div)
}

/// iostat/sar headers as SQL-friendly names: `r/s` → `r_per_s`, `%util` →
/// `util_pct`, `rareq-sz` → `rareq_sz`, `rkB/s` → `rkb_per_s`.
pub fn column_name(header: &str) -> String {
    let (pct, h) = match header.strip_prefix('%') {
        Some(h) => (true, h),
        None => (false, header),
    };
    let mut s = h.replace("/s", "_per_s").replace('-', "_").to_lowercase();
    if pct {
        s.push_str("_pct");
    }
    s
}

// ---------------------------------------------------------------------------
// system
// ---------------------------------------------------------------------------

/// Raw counters of the system stream shown by default (recorded names).
const SYSTEM_RAW: [&str; 13] = [
    "cpu.user",
    "cpu.nice",
    "cpu.system",
    "cpu.idle",
    "cpu.iowait",
    "cpu.irq",
    "cpu.softirq",
    "cpu.steal",
    "cpu.guest",
    "cpu.guest_nice",
    "stat.ctxt",
    "stat.intr",
    "stat.processes",
];

const PSI: [(&str, &str); 7] = [
    ("cpu", "some"),
    ("cpu", "full"),
    ("memory", "some"),
    ("memory", "full"),
    ("io", "some"),
    ("io", "full"),
    ("irq", "full"),
];

fn system(t: &mut Table, c: &Ctx, sys: &[SysSample]) -> Vec<usize> {
    let mut rows = Vec::new();
    for (i, w) in sys.windows(2).enumerate() {
        let (p, s) = (&w[0], &w[1]);
        let dt = dt_s(p, s);
        let cpu = mpstat_block(p, s, &c.host, &CpuSelection::Summary)
            .rows
            .first()
            .copied()
            .unwrap_or_default();
        let has_cpu = s.get("cpu.user").is_some();
        let mem = |n: &str| s.get(&format!("mem.{n}"));
        let mut r = base(t, s.wall, &c.host.hostname, &s.boot_id, dt);
        r.int("reboot", u64::from(boot_changed(p, s)));
        for (n, v) in [
            ("cpu_usr_pct", cpu.usr),
            ("cpu_nice_pct", cpu.nice),
            ("cpu_sys_pct", cpu.sys),
            ("cpu_iowait_pct", cpu.iowait),
            ("cpu_irq_pct", cpu.irq),
            ("cpu_soft_pct", cpu.soft),
            ("cpu_steal_pct", cpu.steal),
            ("cpu_guest_pct", cpu.guest),
            ("cpu_gnice_pct", cpu.gnice),
            ("cpu_idle_pct", cpu.idle),
        ] {
            r.float(n, has_cpu.then_some(v));
        }
        r.float("cs_per_s", rate(p, s, "stat.ctxt", dt))
            .float("intr_per_s", rate(p, s, "stat.intr", dt))
            .float("softirq_per_s", rate(p, s, "stat.softirq", dt))
            .float("forks_per_s", rate(p, s, "stat.processes", dt))
            .int("procs_running", s.get("stat.procs_running"))
            .int("procs_blocked", s.get("stat.procs_blocked"))
            .int("threads", s.get("load.threads"))
            .float("load1", gauge_div(s, "load.avg1", 100.0))
            .float("load5", gauge_div(s, "load.avg5", 100.0))
            .float("load15", gauge_div(s, "load.avg15", 100.0))
            .int("mem_total_kb", mem("MemTotal"))
            .int("mem_free_kb", mem("MemFree"))
            .int("mem_available_kb", mem("MemAvailable"))
            .int(
                "mem_used_kb",
                mem("MemTotal")
                    .zip(mem("MemAvailable"))
                    .map(|(a, b)| a.saturating_sub(b)),
            )
            .int("mem_buffers_kb", mem("Buffers"))
            .int("mem_cached_kb", mem("Cached"))
            .int("mem_shmem_kb", mem("Shmem"))
            .int("mem_sreclaimable_kb", mem("SReclaimable"))
            .int("mem_anon_kb", mem("AnonPages"))
            .int("mem_dirty_kb", mem("Dirty"))
            .int("swap_total_kb", mem("SwapTotal"))
            .int("swap_free_kb", mem("SwapFree"))
            .int(
                "swap_used_kb",
                mem("SwapTotal")
                    .zip(mem("SwapFree"))
                    .map(|(a, b)| a.saturating_sub(b)),
            )
            .float("pgpgin_kb_per_s", rate(p, s, "vm.pgpgin", dt))
            .float("pgpgout_kb_per_s", rate(p, s, "vm.pgpgout", dt))
            .float("pswpin_per_s", rate(p, s, "vm.pswpin", dt))
            .float("pswpout_per_s", rate(p, s, "vm.pswpout", dt))
            .float("pgfault_per_s", rate(p, s, "vm.pgfault", dt))
            .float("pgmajfault_per_s", rate(p, s, "vm.pgmajfault", dt));
        for (res, kind) in PSI {
            let pre = format!("psi.{res}.{kind}");
            // Share of the interval stalled: Δtotal µs / dt.
            let stall = rate(p, s, &format!("{pre}.total"), dt).map(|us_per_s| us_per_s / 1e4);
            r.float(&format!("psi_{res}_{kind}_pct"), stall).float(
                &format!("psi_{res}_{kind}_avg10"),
                gauge_div(s, &format!("{pre}.avg10"), 100.0),
            );
        }
        r.float("uptime_s", gauge_div(s, "uptime.up", 100.0));
        for n in SYSTEM_RAW {
            r.int(n, s.get(n));
        }
        rows.push(i + 1);
    }
    rows
}

/// `--fields` may name any recorded column of the system stream (its raw
/// value at the end of the interval): add those not already in `t`.
fn add_raw_fields(t: &mut Table, sys: &[SysSample], rows: &[usize], fields: &[String]) {
    for f in fields {
        if t.has(f) || !sys.iter().any(|s| s.get(f).is_some()) {
            continue;
        }
        let i = t.column(f, Kind::Int);
        for (r, &si) in t.rows.iter_mut().zip(rows) {
            r[i] = sys[si].get(f).into();
        }
    }
}

// ---------------------------------------------------------------------------
// cpu
// ---------------------------------------------------------------------------

use lpo_format::schema::system::CPU_FIELDS as TICKS;

fn cpu(t: &mut Table, c: &Ctx, sys: &[SysSample]) {
    for w in sys.windows(2) {
        let (p, s) = (&w[0], &w[1]);
        let dt = dt_s(p, s);
        for m in mpstat_block(p, s, &c.host, &CpuSelection::All).rows {
            let Some(n) = m.cpu else { continue };
            let pre = format!("cpu{n}");
            let online = TICKS
                .iter()
                .map(|f| s.get(&format!("{pre}.{f}")).unwrap_or(0))
                .any(|v| v != 0);
            let mut r = base(t, s.wall, &c.host.hostname, &s.boot_id, dt);
            r.int("cpu", n).int("online", u64::from(online));
            for (k, v) in [
                ("usr_pct", m.usr),
                ("nice_pct", m.nice),
                ("sys_pct", m.sys),
                ("iowait_pct", m.iowait),
                ("irq_pct", m.irq),
                ("soft_pct", m.soft),
                ("steal_pct", m.steal),
                ("guest_pct", m.guest),
                ("gnice_pct", m.gnice),
                ("idle_pct", m.idle),
            ] {
                r.float(k, v);
            }
            for f in TICKS {
                r.int(&format!("{f}_ticks"), s.get(&format!("{pre}.{f}")));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// process
// ---------------------------------------------------------------------------

type PKey = (u32, u64, bool);

fn pkey(r: &ProcRow) -> PKey {
    (r.pid, r.starttime, r.is_thread)
}

fn process(t: &mut Table, c: &Ctx, sys: &[SysSample], snaps: &[procmodel::Snap]) {
    let by_key: HashMap<i64, &SysSample> = sys.iter().map(|s| (s.key, s)).collect();
    let header_boot = lpo_format::writer::boot_id_bytes(&c.header.boot_id);
    let users: HashMap<u32, &str> = c
        .header
        .users
        .iter()
        .map(|u| (u.uid, u.name.as_str()))
        .collect();
    let clk = if c.host.clk_tck == 0 {
        100.0
    } else {
        c.host.clk_tck as f64
    };
    let page = if c.host.page_size == 0 {
        4096
    } else {
        c.host.page_size as u64
    };
    for w in snaps.windows(2) {
        let (ps, cs) = (&w[0].snap, &w[1].snap);
        let sysk = by_key.get(&w[1].key);
        let boot = sysk.map_or(header_boot, |s| s.boot_id);
        let mem_total = sysk.and_then(|s| s.get("mem.MemTotal"));
        let reset = sysk
            .zip(by_key.get(&w[0].key))
            .is_some_and(|(s, p)| boot_changed(*p, *s));
        let dt = if reset || cs.mono_ns <= ps.mono_ns {
            0.0
        } else {
            (cs.mono_ns - ps.mono_ns) as f64 / 1e9
        };
        let prev: HashMap<PKey, &ProcRow> = if reset {
            HashMap::new()
        } else {
            ps.rows.iter().map(|r| (pkey(r), r)).collect()
        };
        let boot_wall = cs.wall_ns - cs.mono_ns;
        let mut rows: Vec<&ProcRow> = cs.rows.iter().collect();
        rows.sort_by_key(|r| (r.tgid, r.is_thread, r.pid));
        for x in rows {
            let p = prev.get(&pkey(x)).copied();
            // A process new in the interval: its counters since it started.
            let life = cs.mono_ns as f64 / 1e9 - x.starttime as f64 / clk;
            let secs = match p {
                Some(_) => dt,
                None if life > 0.0 && life.is_finite() && (dt == 0.0 || life < dt) => {
                    life.max(1.0 / clk)
                }
                None => dt,
            };
            let d = |f: fn(&ProcRow) -> u64| f(x).saturating_sub(p.map_or(0, f)) as f64;
            let per_s = |v: f64| if secs > 0.0 { v / secs } else { 0.0 };
            let pct = |ticks: f64| per_s(ticks / clk * 100.0);
            let io = |v: f64| x.io_ok.then(|| per_s(v) / 1024.0);
            let rss_kb = x.rss_pages.saturating_mul(page) / 1024;
            let start = boot_wall.saturating_add((x.starttime as f64 / clk * 1e9) as i64);
            let mut r = base(t, cs.wall_ns, &c.host.hostname, &boot, dt);
            r.int("pid", x.pid)
                .int("tgid", x.tgid)
                .int("ppid", x.ppid)
                .int("is_thread", u64::from(x.is_thread))
                .int("uid", x.uid)
                .str(
                    "user",
                    users
                        .get(&x.uid)
                        .map_or_else(|| x.uid.to_string(), |u| u.to_string()),
                )
                .str("comm", x.comm.as_str())
                .str("state", (x.state as char).to_string())
                .set("start_time", Kind::Time, start)
                .float("cpu_pct", pct(d(|r| r.utime.saturating_add(r.stime))))
                .float("usr_pct", pct(d(|r| r.utime)))
                .float("sys_pct", pct(d(|r| r.stime)))
                .float("wait_pct", per_s(d(|r| r.wait_ns) / 1e7))
                .int("processor", x.processor)
                .int("nice", x.nice)
                .int("priority", x.priority)
                .int("num_threads", x.num_threads)
                .int("vsz_kb", x.vsize / 1024)
                .int("rss_kb", rss_kb)
                .float(
                    "mem_pct",
                    mem_total
                        .filter(|&m| m > 0)
                        .map(|m| rss_kb as f64 / m as f64 * 100.0),
                )
                .int("swap_kb", x.swap_kb)
                .float("minflt_per_s", per_s(d(|r| r.minflt)))
                .float("majflt_per_s", per_s(d(|r| r.majflt)))
                .float("read_kb_per_s", io(d(|r| r.read_bytes)))
                .float("write_kb_per_s", io(d(|r| r.write_bytes)))
                .float(
                    "cancelled_write_kb_per_s",
                    io(d(|r| r.cancelled_write_bytes)),
                )
                .float("cswch_per_s", per_s(d(|r| r.vol_cs)))
                .float("nvcswch_per_s", per_s(d(|r| r.invol_cs)))
                .float("cpu_time_s", x.utime.saturating_add(x.stime) as f64 / clk)
                .int("read_bytes", x.io_ok.then_some(x.read_bytes))
                .int("write_bytes", x.io_ok.then_some(x.write_bytes))
                .str("cmdline", x.cmdline.as_str())
                .str("exe", x.exe.as_str());
        }
    }
}

// ---------------------------------------------------------------------------
// kernel stream: disk, iface, conntrack
// ---------------------------------------------------------------------------

/// `sys` with the kernel stream's columns joined (same tick, same key);
/// samples without a kernel sample are dropped.
fn with_kernel(r: &RingReader, sys: &[SysSample], bad: &mut Vec<String>) -> Vec<SysSample> {
    let (Some(f), Some(l)) = (sys.first(), sys.last()) else {
        return Vec::new();
    };
    let kern = load_kv(r, "kernel", f.key, l.key, bad);
    let by_key: HashMap<i64, &SysSample> = kern.iter().map(|k| (k.key, k)).collect();
    let mut cache = HashMap::new();
    sys.iter()
        .filter_map(|s| by_key.get(&s.key).map(|k| s.merged(k, &mut cache)))
        .collect()
}

fn disk(t: &mut Table, c: &Ctx, ks: &[SysSample]) {
    let opts = IostatOpts {
        partitions: true,
        devices: None,
        cpu: false,
    };
    for w in ks.windows(2) {
        let (p, s) = (&w[0], &w[1]);
        let dt = dt_s(p, s);
        let rep = iostat_report(p, s, &opts);
        let devs: HashSet<&str> = rep.rows.iter().map(|r| r.device.as_str()).collect();
        for d in &rep.rows {
            let raw = |f: &str| s.get(&format!("disk.{}.{f}", d.device));
            let mut r = base(t, s.wall, &c.host.hostname, &s.boot_id, dt);
            r.str("device", d.device.as_str()).int(
                "partition",
                u64::from(partition_of(&d.device, &devs).is_some()),
            );
            for (h, v) in d.columns() {
                r.float(&column_name(h), v);
            }
            for f in [
                "reads",
                "writes",
                "sectors_read",
                "sectors_written",
                "io_ms",
                "in_flight",
            ] {
                r.int(f, raw(f));
            }
        }
    }
}

fn iface(t: &mut Table, c: &Ctx, ks: &[SysSample]) {
    for w in ks.windows(2) {
        let (p, s) = (&w[0], &w[1]);
        let dt = dt_s(p, s);
        let edev = sar_edev_rows(p, s);
        for d in sar_dev_rows(p, s, |_| None) {
            let raw = |f: &str| s.get(&format!("net.{}.{f}", d.iface));
            let mut r = base(t, s.wall, &c.host.hostname, &s.boot_id, dt);
            r.str("iface", d.iface.as_str());
            for (h, v) in d.columns() {
                r.float(&column_name(h), v);
            }
            if let Some(e) = edev.iter().find(|e| e.iface == d.iface) {
                for (h, v) in e.columns() {
                    r.float(&column_name(h), v);
                }
            }
            r.int("speed_mbps", raw("speed_mbps"));
            for f in [
                "rx_bytes",
                "tx_bytes",
                "rx_packets",
                "tx_packets",
                "rx_errs",
                "tx_errs",
                "rx_drop",
                "tx_drop",
            ] {
                r.int(f, raw(f));
            }
        }
    }
}

/// The conntrack statistics by field: `conntrack.stat.<field>` (already
/// summed over CPUs by the recorder), or, in older recordings, the per-CPU
/// `conntrack.cpu<N>.<field>` summed here. First-appearance order.
fn ct_sums(s: &SysSample, names: &[String]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for n in names {
        let field = if let Some(f) = n.strip_prefix("conntrack.stat.") {
            f
        } else if let Some(rest) = n.strip_prefix("conntrack.cpu") {
            match rest.split_once('.') {
                Some((cpu, f)) if !cpu.is_empty() && cpu.bytes().all(|b| b.is_ascii_digit()) => f,
                _ => continue,
            }
        } else {
            continue;
        };
        let v = s.get(n).unwrap_or(0);
        match out.iter_mut().find(|(f, _)| f == field) {
            Some((_, a)) => *a = a.saturating_add(v),
            None => out.push((field.to_string(), v)),
        }
    }
    out
}

/// "key:count;key:count" of the columns `prefix<key>`, largest first.
fn ct_top(s: &SysSample, names: &[String], prefix: &str) -> Option<String> {
    let mut v: Vec<(String, u64)> = names
        .iter()
        .filter_map(|n| Some((n.strip_prefix(prefix)?.to_string(), s.get(n)?)))
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Some(
        v.iter()
            .map(|(k, n)| format!("{k}:{n}"))
            .collect::<Vec<_>>()
            .join(";"),
    )
}

fn conntrack(t: &mut Table, c: &Ctx, ks: &[SysSample]) {
    use crate::views::netdisk::Columns;
    for w in ks.windows(2) {
        let (p, s) = (&w[0], &w[1]);
        let names: Vec<String> = s
            .column_names()
            .into_iter()
            .filter(|n| n.starts_with("conntrack.") || n.starts_with("ct."))
            .collect();
        if names.is_empty() {
            continue;
        }
        let dt = dt_s(p, s);
        let prev = ct_sums(p, &p.column_names());
        let mut r = base(t, s.wall, &c.host.hostname, &s.boot_id, dt);
        for f in ["count", "max", "buckets"] {
            r.int(f, s.get(&format!("conntrack.{f}")));
        }
        for (f, v) in ct_sums(s, &names) {
            let pv = prev.iter().find(|(g, _)| *g == f).map(|x| x.1);
            let rt = pv.map(|pv| {
                if dt > 0.0 {
                    v.saturating_sub(pv) as f64 / dt
                } else {
                    0.0
                }
            });
            r.int(&f, v);
            // `entries` (and `chainlength`, on some kernels) are gauges.
            if !matches!(f.as_str(), "entries" | "chainlength") {
                r.float(&format!("{f}_per_s"), rt);
            }
        }
        // The table walk: entries by family, protocol, TCP state and status.
        for n in &names {
            for pre in [
                "conntrack.l3.",
                "conntrack.proto.",
                "conntrack.tcp.",
                "conntrack.status.",
                "conntrack.dump.",
            ] {
                if let Some(k) = n.strip_prefix(pre) {
                    let col = format!("{}_{}", &pre["conntrack.".len()..pre.len() - 1], k);
                    r.int(&col, s.get(n));
                }
            }
        }
        r.str("top_sources", ct_top(s, &names, "conntrack.src."));
        r.str("top_dports", ct_top(s, &names, "conntrack.dport."));
        for n in names.iter().filter(|n| n.starts_with("ct.")) {
            r.int(n, s.get(n));
        }
    }
}

// ---------------------------------------------------------------------------
// the command
// ---------------------------------------------------------------------------

/// `lpo dump`. Writes to `args.out` (a file) or to `stdout`. Returns the
/// number of rows written.
pub fn dump(
    args: &DumpArgs,
    stdout: &mut dyn Write,
    warn: &mut dyn FnMut(String),
) -> Result<usize, ReplayError> {
    let usage = |m: String| ReplayError::Usage(m);
    if !STREAMS.contains(&args.stream.as_str()) {
        return Err(usage(format!(
            "unknown stream {:?}; streams: {}",
            args.stream,
            STREAMS.join(", ")
        )));
    }
    let fields = args
        .fields
        .as_deref()
        .map(table::parse_fields)
        .transpose()
        .map_err(usage)?;
    let to_file = args.out.as_ref().filter(|o| o.as_os_str() != "-");
    if args.format == Format::Parquet
        && to_file.is_none()
        && (args.out.is_none() || args.stdout_is_terminal)
    {
        return Err(usage(
            "-O parquet writes a binary file: name it with -o FILE (or -o - into a pipe)".into(),
        ));
    }
    let crate::run::Opened {
        r,
        host: header,
        tz,
        sp,
        ctx,
    } = crate::run::open_for_time(&args.file, args.utc, args.now_ns)?;
    let from_t = args
        .from
        .as_deref()
        .map(|f| parse_time(f, &ctx))
        .transpose()?;
    let to_t = args
        .to
        .as_deref()
        .map(|t| parse_time(t, &ctx))
        .transpose()?;
    let (from_t, to_t) = (
        from_t.unwrap_or(sp.first_wall),
        to_t.unwrap_or(sp.last_wall),
    );
    if from_t > to_t {
        return Err(usage(format!(
            "--from {} is after --to {}",
            format_local(from_t, &tz),
            format_local(to_t, &tz)
        )));
    }
    let slack = (header.interval_ns as i64).max(SEC) * 2;
    if to_t < sp.first_wall - slack || from_t > sp.last_wall + slack {
        return Err(ReplayError::NoData(format!(
            "no data from {} to {}: the recording covers {} to {} ({})",
            format_local(from_t, &tz),
            format_local(to_t, &tz),
            format_local(sp.first_wall, &tz),
            format_local(sp.last_wall, &tz),
            tz.name()
        )));
    }
    let mut bad = Vec::new();
    let k_to = wall_to_key(&r, to_t, &mut bad).max(sp.first_key);
    let k_from = if args.from.is_some() {
        wall_to_key(&r, from_t, &mut bad)
    } else {
        sp.first_key
    };
    let sys = window(&r, k_from, k_to, &sp, &mut bad);
    let c = Ctx {
        host: host_of(&header, tz),
        header,
    };
    let mut t = Table::new(&BASE);
    let mut sys_rows = Vec::new();
    match args.stream.as_str() {
        "system" => sys_rows = system(&mut t, &c, &sys),
        "cpu" => cpu(&mut t, &c, &sys),
        "process" => {
            let (snaps, _exits) = procmodel::load_window(&r, k_from, k_to, &mut bad);
            process(&mut t, &c, &sys, &snaps);
        }
        kern => {
            let ks = with_kernel(&r, &sys, &mut bad);
            match kern {
                "disk" => disk(&mut t, &c, &ks),
                "iface" => iface(&mut t, &c, &ks),
                _ => conntrack(&mut t, &c, &ks),
            }
        }
    }
    for b in &bad {
        warn(format!("warning: skipped a damaged block: {b}"));
    }
    if let Some(f) = &fields {
        if args.stream == "system" {
            add_raw_fields(&mut t, &sys, &sys_rows, f);
        }
        t.select(f).map_err(usage)?;
    }
    match to_file {
        Some(path) => {
            let write = |p: &std::path::Path| -> std::io::Result<()> {
                let f = std::fs::File::create(p)?;
                let mut w = std::io::BufWriter::new(f);
                match args.format {
                    Format::Csv => text::write_csv(&t, &mut w)?,
                    Format::Json => text::write_ndjson(&t, &mut w)?,
                    Format::Parquet => {
                        parquet::write_parquet(&t, &mut w).map_err(std::io::Error::other)?
                    }
                }
                w.into_inner().map_err(|e| e.into_error())?.sync_all()
            };
            // Written beside, then renamed: never half a file under OUT.
            let tmp = path.with_file_name(format!(
                ".{}.tmp{}",
                path.file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                std::process::id()
            ));
            write(&tmp)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    ReplayError::NoData(format!("writing {}: {e}", path.display()))
                })?;
        }
        None => match args.format {
            Format::Csv => text::write_csv(&t, stdout)?,
            Format::Json => text::write_ndjson(&t, stdout)?,
            Format::Parquet => {
                let mut buf = Vec::new();
                parquet::write_parquet(&t, &mut buf).map_err(ReplayError::NoData)?;
                stdout.write_all(&buf)?;
                stdout.flush()?;
            }
        },
    }
    Ok(t.rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_become_sql_friendly() {
        assert_eq!(column_name("r/s"), "r_per_s");
        assert_eq!(column_name("rkB/s"), "rkb_per_s");
        assert_eq!(column_name("%util"), "util_pct");
        assert_eq!(column_name("%rrqm"), "rrqm_pct");
        assert_eq!(column_name("rareq-sz"), "rareq_sz");
        assert_eq!(column_name("aqu-sz"), "aqu_sz");
        assert_eq!(column_name("%ifutil"), "ifutil_pct");
        assert_eq!(column_name("r_await"), "r_await");
    }

    #[test]
    fn boot_ids_print_like_the_kernel() {
        let s = "0f4c2b1e-8a77-4b1c-9d7e-1234567890ab";
        assert_eq!(boot_id_str(&lpo_format::writer::boot_id_bytes(s)), s);
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse("csv"), Ok(Format::Csv));
        assert_eq!(Format::parse("json"), Ok(Format::Json));
        assert_eq!(Format::parse("parquet"), Ok(Format::Parquet));
        assert!(Format::parse("xml").is_err());
    }
}
