//! Views: what procps, sysstat and top would have printed, from recorded
//! raw counters. `system` renders vmstat, mpstat, free and uptime; `process`
//! renders top, pidstat, ps and exits. This module parses view arguments,
//! builds the shared context and dispatches.

pub mod dmesg;
pub mod net;
pub mod netdisk;
pub mod perf;
pub mod process;
pub mod sched;
pub mod system;
pub mod trace;

pub use system::{Host, Sample};

use crate::model::SysSample;
use crate::time::format_rfc3339;
use process::{ExitEvent, ProcRow, ProcSnapshot, SysCtx, Users};
use serde_json::Value;

/// Every view `lpo replay` knows.
pub const VIEWS: &[&str] = &[
    "summary",
    "vmstat",
    "mpstat",
    "free",
    "uptime",
    "top",
    "pidstat",
    "ps",
    "exits",
    "execsnoop",
    "iostat",
    "sar",
    "netstat",
    "ss",
    "interrupts",
    "softirqs",
    "softnet",
    "slabtop",
    "dmesg",
    "conntrack",
    "perf",
    "flamegraph",
    "sched",
    "biolatency",
    "trace",
];

/// Network reports of `sar -n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SarReport {
    Dev,
    Edev,
}

/// Parsed view arguments.
#[derive(Debug, Clone)]
pub enum ViewArgs {
    Summary,
    Vmstat,
    Mpstat(system::CpuSelection),
    Free(system::FreeUnit),
    Uptime,
    Top(process::TopOpts, usize),
    Pidstat(process::PidstatOpts),
    Ps(process::PsOpts),
    Exits,
    Iostat(netdisk::IostatOpts),
    Sar(SarReport),
    Netstat,
    Ss,
    Irq(netdisk::IrqKind),
    Softnet,
    Slabtop(netdisk::SlabtopOpts),
    Dmesg(dmesg::DmesgOpts),
    /// `conntrack`, `ss -ltn`, `ss -tan` (views/net.rs).
    Net(net::NetView),
    Perf(perf::PerfCmd),
    Flamegraph(perf::FlameOpts),
    Sched(sched::SchedOpts),
    Biolatency(sched::BioOpts),
    Trace(trace::TraceOpts),
}

impl ViewArgs {
    /// Does this view read the process stream?
    pub fn needs_processes(&self) -> bool {
        matches!(
            self,
            ViewArgs::Summary
                | ViewArgs::Top(..)
                | ViewArgs::Pidstat(_)
                | ViewArgs::Ps(_)
                | ViewArgs::Exits
        )
    }
    /// Does this view read the `kernel` stream (disks, network, interrupts, slabs)?
    pub fn needs_kernel(&self) -> bool {
        matches!(
            self,
            ViewArgs::Iostat(_)
                | ViewArgs::Sar(_)
                | ViewArgs::Netstat
                | ViewArgs::Ss
                | ViewArgs::Irq(_)
                | ViewArgs::Softnet
                | ViewArgs::Slabtop(_)
                | ViewArgs::Net(_)
        )
    }
    /// Does this view read the `perf` stream (CPU profiles)?
    pub fn needs_perf(&self) -> bool {
        matches!(
            self,
            ViewArgs::Summary | ViewArgs::Perf(_) | ViewArgs::Flamegraph(_)
        )
    }
    /// For `--at`, the window of perf samples: the 60 s ending at TIME.
    pub fn perf_window_ns(&self) -> i64 {
        60_000_000_000
    }
    /// Does this view read the `ftrace` stream (exits: when it is there)?
    pub fn needs_ftrace(&self) -> bool {
        matches!(
            self,
            ViewArgs::Sched(_) | ViewArgs::Biolatency(_) | ViewArgs::Trace(_) | ViewArgs::Exits
        )
    }
    /// For `--at`, how far back the view looks (exits: a window ending at TIME).
    pub fn at_window_ns(&self) -> i64 {
        match self {
            ViewArgs::Exits | ViewArgs::Sched(_) | ViewArgs::Biolatency(_) | ViewArgs::Trace(_) => {
                60_000_000_000
            }
            _ => 0,
        }
    }
}

fn unknown_arg(view: &str, a: &str, known: &str) -> String {
    format!("{view}: unknown argument {a:?} (known: {known})")
}

fn is_num(a: &str) -> bool {
    a.parse::<f64>().is_ok()
}

/// Parse `VIEW [ARGS]`. A `--json` among the view's arguments sets `json`.
pub fn parse_view(view: &str, args: &[String], json: &mut bool) -> Result<ViewArgs, String> {
    let args: Vec<&String> = args
        .iter()
        .filter(|a| {
            if a.as_str() == "--json" {
                *json = true;
                false
            } else {
                true
            }
        })
        .collect();
    let mut it = args.into_iter().peekable();
    // Interval and count operands (`vmstat 1 5`) are accepted and ignored:
    // replay prints what was recorded.
    match view {
        "summary" | "exits" | "execsnoop" | "uptime" => match it.next() {
            None => Ok(match view {
                "summary" => ViewArgs::Summary,
                "uptime" => ViewArgs::Uptime,
                _ => ViewArgs::Exits,
            }),
            Some(a) => Err(unknown_arg(view, a, "none")),
        },
        "vmstat" => {
            for a in it {
                if !(is_num(a)
                    || matches!(
                        a.as_str(),
                        "-t" | "-n" | "-w" | "--timestamp" | "--one-header" | "--wide"
                    ))
                {
                    return Err(unknown_arg(view, a, "-t, -n, -w"));
                }
            }
            Ok(ViewArgs::Vmstat)
        }
        "mpstat" => {
            let mut sel = system::CpuSelection::parse("ALL").map_err(|e| format!("mpstat: {e}"))?;
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-P" => {
                        let v = it.next().ok_or("mpstat: -P needs ALL, ON or a CPU list")?;
                        sel = system::CpuSelection::parse(v)
                            .map_err(|e| format!("mpstat: -P {v}: {e}"))?;
                    }
                    "-u" => {}
                    a if is_num(a) => {}
                    a => return Err(unknown_arg(view, a, "-P ALL|ON|LIST, -u")),
                }
            }
            Ok(ViewArgs::Mpstat(sel))
        }
        "free" => {
            let mut unit = system::FreeUnit::Kibi;
            for a in it {
                unit = match a.as_str() {
                    "-b" | "--bytes" => system::FreeUnit::Bytes,
                    "-k" | "--kibi" => system::FreeUnit::Kibi,
                    "-m" | "--mebi" => system::FreeUnit::Mebi,
                    "-g" | "--gibi" => system::FreeUnit::Gibi,
                    "-h" | "--human" => system::FreeUnit::Human,
                    a if is_num(a) => unit,
                    a => return Err(unknown_arg(view, a, "-b, -k, -m, -g, -h")),
                };
            }
            Ok(ViewArgs::Free(unit))
        }
        "top" => {
            let mut o = process::TopOpts::default();
            let mut width = 512;
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-b" => {}
                    "-c" => o.full_cmd = true,
                    "-H" => o.threads = true,
                    "-o" => {
                        o.sort = it
                            .next()
                            .ok_or("top: -o needs a field (e.g. %CPU, %MEM, PID, TIME+)")?
                            .trim_start_matches(['+', '-'])
                            .to_string()
                    }
                    "-n" => {
                        o.limit = Some(
                            it.next()
                                .and_then(|v| v.parse().ok())
                                .ok_or("top: -n needs a number of rows")?,
                        )
                    }
                    "-w" => {
                        width = it
                            .next()
                            .and_then(|v| v.parse().ok())
                            .ok_or("top: -w needs a width")?
                    }
                    a => return Err(unknown_arg(view, a, "-o FIELD, -c, -n N, -H, -w WIDTH")),
                }
            }
            Ok(ViewArgs::Top(o, width.clamp(80, process::TOP_MAX_WIDTH)))
        }
        "pidstat" => {
            let mut o = process::PidstatOpts::default();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-p" => {
                        let v = it.next().ok_or("pidstat: -p needs a PID list")?;
                        if v != "ALL" {
                            let pids: Result<Vec<u32>, _> =
                                v.split(',').map(|p| p.parse::<u32>()).collect();
                            o.pids = Some(pids.map_err(|_| {
                                format!("pidstat: -p {v:?}: expected PID[,PID...] or ALL")
                            })?);
                        }
                    }
                    "-C" => {
                        o.comm = Some(it.next().ok_or("pidstat: -C needs a command name")?.clone())
                    }
                    a if is_num(a) => {}
                    a if a.starts_with('-')
                        && a.len() > 1
                        && a[1..].chars().all(|c| "uwdrtlh".contains(c)) =>
                    {
                        for c in a[1..].chars() {
                            match c {
                                'u' => o.u = true,
                                'w' => o.w = true,
                                'd' => o.d = true,
                                'r' => o.r = true,
                                't' => o.t = true,
                                _ => {}
                            }
                        }
                    }
                    a => return Err(unknown_arg(view, a, "-u, -w, -d, -r, -t, -p PID, -C COMM")),
                }
            }
            if !(o.u || o.w || o.d || o.r) {
                o.u = true;
            }
            Ok(ViewArgs::Pidstat(o))
        }
        "ps" => {
            let mut o = process::PsOpts::default();
            for a in it {
                match a.as_str() {
                    "--forest" | "f" | "-H" => o.forest = true,
                    "-L" | "-T" | "H" | "-m" => o.threads = true,
                    "-e" | "-A" | "-f" | "-ef" | "aux" | "-aux" | "ax" | "-ly" | "-l" => {}
                    a => return Err(unknown_arg(view, a, "--forest, -L, -e, -f")),
                }
            }
            Ok(ViewArgs::Ps(o))
        }
        "iostat" => {
            let mut o = netdisk::IostatOpts {
                partitions: false,
                devices: None,
                cpu: true,
            };
            let mut devs: Vec<String> = Vec::new();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-x" | "-k" | "-z" | "-t" | "-y" => {}
                    "-d" | "-dx" | "-xd" => o.cpu = false,
                    "-p" => {
                        o.partitions = true;
                        if let Some(v) = it.next_if(|v| !v.starts_with('-') && !is_num(v)) {
                            if v != "ALL" {
                                devs.extend(v.split(',').map(String::from));
                            }
                        }
                    }
                    a if is_num(a) => {}
                    a if !a.starts_with('-') => devs.push(a.to_string()),
                    a => return Err(unknown_arg(view, a, "-x, -d, -p [ALL|DEV,...], DEVICE...")),
                }
            }
            if !devs.is_empty() {
                o.devices = Some(devs);
            }
            Ok(ViewArgs::Iostat(o))
        }
        "sar" => {
            let mut rep = None;
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-n" => {
                        rep = Some(match it.next().map(|v| v.as_str()) {
                            Some("DEV") => SarReport::Dev,
                            Some("EDEV") => SarReport::Edev,
                            other => {
                                return Err(format!(
                                    "sar: -n {}: recorded reports are DEV and EDEV",
                                    other.unwrap_or("")
                                ))
                            }
                        })
                    }
                    a if is_num(a) => {}
                    a => {
                        return Err(unknown_arg(
                            view,
                            a,
                            "-n DEV, -n EDEV (for CPU and memory use mpstat, vmstat)",
                        ))
                    }
                }
            }
            rep.map(ViewArgs::Sar)
                .ok_or_else(|| "sar: say which report: -n DEV or -n EDEV".into())
        }
        "netstat" => {
            for a in it {
                if a != "-s" {
                    return Err(unknown_arg(view, a, "-s"));
                }
            }
            Ok(ViewArgs::Netstat)
        }
        "ss" => Ok(net::parse_ss(&it.collect::<Vec<_>>())?.map_or(ViewArgs::Ss, ViewArgs::Net)),
        "conntrack" => Ok(ViewArgs::Net(net::parse_conntrack(
            &it.collect::<Vec<_>>(),
        )?)),
        "interrupts" | "softirqs" | "softnet" => match it.next() {
            None => Ok(match view {
                "interrupts" => ViewArgs::Irq(netdisk::IrqKind::Irq),
                "softirqs" => ViewArgs::Irq(netdisk::IrqKind::Softirq),
                _ => ViewArgs::Softnet,
            }),
            Some(a) => Err(unknown_arg(view, a, "none")),
        },
        "slabtop" => {
            let mut o = netdisk::SlabtopOpts::default();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-o" | "--once" => {}
                    "-s" | "--sort" => {
                        let v = it
                            .next()
                            .ok_or("slabtop: -s needs a sort key (a b c l v n o p s u)")?;
                        o.sort = v
                            .chars()
                            .next()
                            .filter(|c| "abclvnopsu".contains(*c))
                            .ok_or_else(|| {
                                format!("slabtop: -s {v:?}: sort keys are a b c l v n o p s u")
                            })?;
                    }
                    "-n" => {
                        o.limit = Some(
                            it.next()
                                .and_then(|v| v.parse().ok())
                                .ok_or("slabtop: -n needs a number")?,
                        )
                    }
                    a => return Err(unknown_arg(view, a, "-o, -s KEY, -n N")),
                }
            }
            Ok(ViewArgs::Slabtop(o))
        }
        "dmesg" => dmesg::parse_args(it).map(ViewArgs::Dmesg),
        "perf" => {
            let a: Vec<&String> = it.collect();
            perf::parse_perf(&a).map(ViewArgs::Perf)
        }
        "flamegraph" => {
            let a: Vec<&String> = it.collect();
            perf::parse_flame(&a).map(ViewArgs::Flamegraph)
        }
        "sched" => sched::SchedOpts::parse(&it.collect::<Vec<_>>()).map(ViewArgs::Sched),
        "biolatency" => sched::BioOpts::parse(&it.collect::<Vec<_>>()).map(ViewArgs::Biolatency),
        "trace" => trace::TraceOpts::parse(&it.collect::<Vec<_>>()).map(ViewArgs::Trace),
        _ => Err(format!(
            "unknown view {view:?}; views: {}",
            VIEWS.join(", ")
        )),
    }
}

/// Validate a view and its arguments before any file is opened.
pub fn check_view(view: &str, args: &[String], json: &mut bool) -> Result<(), String> {
    parse_view(view, args, json).map(|_| ())
}

/// Everything a view may need, loaded by the caller.
pub struct Data<'a> {
    pub host: &'a Host,
    pub header: &'a lpo_format::HostHeader,
    /// System samples; the first only provides the counters the first
    /// interval's rates start from.
    pub sys: &'a [SysSample],
    /// Process snapshots (same convention), when the view needs them.
    pub procs: &'a [ProcSnapshot],
    pub exits: &'a [ExitEvent],
    /// Kernel log lines near TIME (summary, dmesg); None: no kmsg stream.
    pub kmsg: Option<&'a [dmesg::KmsgLine]>,
    /// CPU profile samples of the window, when the view needs them.
    pub perf: Option<&'a perf::PerfData>,
    /// Window shown, unix ns (for exits).
    pub from_ns: i64,
    pub to_ns: i64,
    /// Kernel trace events of the window, for the views that read them.
    pub ftrace: Option<&'a crate::ftrace::Trace>,
}

/// Add `time` (RFC 3339 in the host's zone) and `wall_ns` to JSON rows,
/// `rows[i]` describing `samples[i]`.
fn stamp(v: Value, walls: &[i64], host: &Host) -> Value {
    match v {
        Value::Array(rows) => Value::Array(
            rows.into_iter()
                .zip(walls)
                .map(|(r, &w)| match r {
                    Value::Object(mut m) => {
                        m.insert("time".into(), Value::String(format_rfc3339(w, &host.tz)));
                        m.insert("wall_ns".into(), Value::from(w));
                        Value::Object(m)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn json_text(v: Value) -> String {
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

fn users(h: &lpo_format::HostHeader) -> Users {
    h.users.iter().map(|u| (u.uid, u.name.clone())).collect()
}

/// top's header context from the system samples around `wall`.
pub fn sys_ctx(d: &Data, wall: i64) -> SysCtx {
    let i = d.sys.iter().rposition(|s| s.wall <= wall).unwrap_or(0);
    let cur = &d.sys[i];
    let prev = &d.sys[i.saturating_sub(1)];
    let up = system::uptime_row(cur);
    let fr = system::free_row(cur);
    let mut cpu = [0.0; 8];
    if let (Some(a), Some(b)) = (
        system::CpuTicks::read(prev, "cpu"),
        system::CpuTicks::read(cur, "cpu"),
    ) {
        let dv = [
            b.user.saturating_sub(a.user),
            b.system.saturating_sub(a.system),
            b.nice.saturating_sub(a.nice),
            b.idle.saturating_sub(a.idle),
            b.iowait.saturating_sub(a.iowait),
            b.irq.saturating_sub(a.irq),
            b.softirq.saturating_sub(a.softirq),
            b.steal.saturating_sub(a.steal),
        ];
        let tot: u64 = dv.iter().sum();
        if tot > 0 {
            for k in 0..8 {
                cpu[k] = dv[k] as f64 * 100.0 / tot as f64;
            }
        } else {
            cpu[3] = 100.0;
        }
    }
    let btime = cur
        .get("stat.btime")
        .map(|b| b as i64 * 1_000_000_000)
        .unwrap_or_else(|| cur.wall - cur.mono);
    SysCtx {
        wall_ns: cur.wall,
        uptime_s: up.up_secs,
        load: [
            up.load1 as f64 / 100.0,
            up.load5 as f64 / 100.0,
            up.load15 as f64 / 100.0,
        ],
        cpu_pct: cpu,
        mem_total_kb: fr.total,
        mem_free_kb: fr.free,
        mem_used_kb: fr.used,
        mem_buff_cache_kb: fr.buff_cache,
        mem_avail_kb: fr.available,
        swap_total_kb: fr.swap_total,
        swap_free_kb: fr.swap_free,
        swap_used_kb: fr.swap_used,
        ncpu: d.host.ncpu,
        clk_tck: d.host.clk_tck,
        page_size: d.host.page_size,
        boot_unix_ns: btime,
    }
}

fn need_procs(d: &Data) -> Result<(), String> {
    if d.procs.len() < 2 {
        return Err(
            "no process samples around that time (was the recorder run with --no-processes?)"
                .into(),
        );
    }
    Ok(())
}

fn need_perf<'a>(d: &Data<'a>) -> Result<&'a perf::PerfData, String> {
    d.perf.filter(|p| p.recorded).ok_or_else(|| {
        "this recording has no perf stream (recorded with --no-perf, or by an lpo without it)"
            .to_string()
    })
}

/// Render `view` over the loaded data.
pub fn render(view: &str, args: &[String], d: &Data, json: bool) -> Result<String, String> {
    let mut j = json;
    let va = parse_view(view, args, &mut j)?;
    let host = d.host;
    let sys = d.sys;
    let shown: Vec<&SysSample> = sys.iter().skip(1).collect();
    let walls: Vec<i64> = shown.iter().map(|s| s.wall).collect();
    let tz = host.tz;
    let u = users(d.header);
    let out = match (&va, j) {
        (ViewArgs::Vmstat, false) => system::vmstat_series(sys, host),
        (ViewArgs::Vmstat, true) => {
            json_text(stamp(system::vmstat_series_json(sys, host), &walls, host))
        }
        (ViewArgs::Mpstat(sel), false) => system::mpstat_series(sys, host, sel),
        (ViewArgs::Mpstat(sel), true) => json_text(system::mpstat_series_json(sys, host, sel)),
        (ViewArgs::Free(unit), false) => system::free_series(&shown, *unit),
        (ViewArgs::Free(_), true) => {
            json_text(stamp(system::free_series_json(&shown, host), &walls, host))
        }
        (ViewArgs::Uptime, false) => system::uptime_series(&shown, host),
        (ViewArgs::Uptime, true) => json_text(stamp(
            system::uptime_series_json(&shown, host),
            &walls,
            host,
        )),
        (ViewArgs::Top(o, width), _) => {
            need_procs(d)?;
            let mut text = String::new();
            let mut arr = Vec::new();
            for w in d.procs.windows(2) {
                let ctx = sys_ctx(d, w[1].wall_ns);
                if j {
                    arr.push(serde_json::json!({"time": format_rfc3339(w[1].wall_ns, &tz), "wall_ns": w[1].wall_ns,
                        "tasks": process::top_json(&w[0], &w[1], &ctx, &u, o)}));
                } else {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&process::top_in(&w[0], &w[1], &ctx, &u, o, tz, *width));
                }
            }
            if j {
                json_text(Value::Array(arr))
            } else {
                text
            }
        }
        (ViewArgs::Pidstat(o), false) => {
            need_procs(d)?;
            let ctx = sys_ctx(d, d.procs[d.procs.len() - 1].wall_ns);
            let h = d.header;
            let mut t = process::pidstat_banner(
                &h.kernel_release,
                &h.hostname,
                &h.arch,
                h.ncpu,
                d.procs[1].wall_ns,
                tz,
            );
            t.push('\n');
            if !o.delayacct && o.d && !delayacct_on(sys) {
                t = format!("note: iodelay not collected (kernel.task_delayacct was 0; record with --delayacct)\n{t}");
            }
            let mut o = o.clone();
            o.delayacct = delayacct_on(sys);
            t.push_str(&process::pidstat_series_in(d.procs, &ctx, &u, &o, tz));
            t
        }
        (ViewArgs::Pidstat(o), true) => {
            need_procs(d)?;
            let ctx = sys_ctx(d, d.procs[d.procs.len() - 1].wall_ns);
            let mut o = o.clone();
            o.delayacct = delayacct_on(sys);
            json_text(process::pidstat_series_json(d.procs, &ctx, &u, &o))
        }
        (ViewArgs::Ps(o), _) => {
            let cur = d.procs.last().ok_or(
                "no process samples around that time (was the recorder run with --no-processes?)",
            )?;
            let ctx = sys_ctx(d, cur.wall_ns);
            if j {
                json_text(process::ps_json_in(cur, &ctx, &u, o, tz))
            } else {
                process::ps_in(cur, &ctx, &u, o, tz)
            }
        }
        (ViewArgs::Exits, _) => {
            let mut started = started_in(d);
            let mut ev: Vec<ExitEvent> = d.exits.to_vec();
            if let Some(t) = d.ftrace {
                sched::merge_lifecycle(t, &mut ev, &mut started);
            }
            if j {
                json_text(process::exits_json(&ev, &started, &u, tz))
            } else {
                process::exits(&ev, &started, &u, tz)
            }
        }
        (ViewArgs::Iostat(o), false) => netdisk::iostat_x_series(sys, host, o),
        (ViewArgs::Iostat(o), true) => json_text(stamp(
            netdisk::iostat_x_series_json(sys, host, o),
            &walls,
            host,
        )),
        (ViewArgs::Sar(SarReport::Dev), false) => netdisk::sar_dev_series(sys, host, speed(sys)),
        (ViewArgs::Sar(SarReport::Dev), true) => json_text(stamp(
            netdisk::sar_dev_series_json(sys, host, speed(sys)),
            &walls,
            host,
        )),
        (ViewArgs::Sar(SarReport::Edev), false) => netdisk::sar_edev_series(sys, host),
        (ViewArgs::Sar(SarReport::Edev), true) => json_text(stamp(
            netdisk::sar_edev_series_json(sys, host),
            &walls,
            host,
        )),
        (ViewArgs::Netstat, false) => pairs(sys, |p, c| netdisk::netstat_s(p, c, host)),
        (ViewArgs::Netstat, true) => json_text(Value::Array(
            sys.windows(2)
                .map(|w| netdisk::netstat_s_json(&w[0], &w[1], host))
                .collect(),
        )),
        (ViewArgs::Ss, false) => shown
            .iter()
            .map(|c| netdisk::ss_s(*c))
            .collect::<Vec<_>>()
            .join("\n"),
        (ViewArgs::Ss, true) => json_text(stamp(
            Value::Array(shown.iter().map(|c| netdisk::ss_s_json(*c)).collect()),
            &walls,
            host,
        )),
        (ViewArgs::Irq(k), false) => pairs(sys, |p, c| netdisk::interrupts(p, c, host, *k)),
        (ViewArgs::Irq(k), true) => json_text(Value::Array(
            sys.windows(2)
                .map(|w| netdisk::interrupts_json(&w[0], &w[1], host, *k))
                .collect(),
        )),
        (ViewArgs::Softnet, false) => pairs(sys, |p, c| netdisk::softnet(p, c, host)),
        (ViewArgs::Softnet, true) => json_text(Value::Array(
            sys.windows(2)
                .map(|w| netdisk::softnet_json(&w[0], &w[1], host))
                .collect(),
        )),
        (ViewArgs::Slabtop(o), false) => shown
            .iter()
            .map(|c| netdisk::slabtop(*c, host, o))
            .collect::<Vec<_>>()
            .join("\n"),
        (ViewArgs::Slabtop(o), true) => json_text(stamp(
            Value::Array(
                shown
                    .iter()
                    .map(|c| netdisk::slabtop_json(*c, host, o))
                    .collect(),
            ),
            &walls,
            host,
        )),
        (ViewArgs::Dmesg(o), false) => dmesg::render_text(d.kmsg.unwrap_or(&[]), o, &tz),
        (ViewArgs::Dmesg(o), true) => json_text(dmesg::render_json(d.kmsg.unwrap_or(&[]), o, &tz)),
        (ViewArgs::Net(v), _) => net::render(v, sys, host, j)?,
        (ViewArgs::Perf(perf::PerfCmd::Report(o)), false) => {
            perf::report_text(need_perf(d)?, o, &tz)
        }
        (ViewArgs::Perf(perf::PerfCmd::Report(o)), true) => {
            json_text(perf::report_json(need_perf(d)?, o, &tz))
        }
        (ViewArgs::Perf(perf::PerfCmd::Script(f)), false) => perf::script_text(need_perf(d)?, f),
        (ViewArgs::Perf(perf::PerfCmd::Script(f)), true) => {
            json_text(perf::script_json(need_perf(d)?, f, &tz))
        }
        (ViewArgs::Flamegraph(o), _) => perf::flamegraph(need_perf(d)?, o, &tz)?,
        (ViewArgs::Sched(_) | ViewArgs::Biolatency(_) | ViewArgs::Trace(_), _)
            if d.ftrace.is_none_or(|t| t.samples == 0) =>
        {
            return Err("no kernel trace events recorded in that window (recorded without root, with --no-ftrace, or by an lpo without the ftrace stream)".into())
        }
        (ViewArgs::Sched(o), false) => sched::sched_text(ft(d), o, d.from_ns, d.to_ns, &tz),
        (ViewArgs::Sched(o), true) => json_text(sched::sched_json(ft(d), o, d.from_ns, d.to_ns)),
        (ViewArgs::Biolatency(o), false) => {
            sched::biolatency_text(ft(d), o, d.from_ns, d.to_ns, &tz)
        }
        (ViewArgs::Biolatency(o), true) => {
            json_text(sched::biolatency_json(ft(d), o, d.from_ns, d.to_ns))
        }
        (ViewArgs::Trace(o), false) => trace::trace_text(ft(d), o, &tz)?,
        (ViewArgs::Trace(o), true) => json_text(trace::trace_json(ft(d), o, &tz)?),
        (ViewArgs::Summary, false) => summary_text(d, &u),
        (ViewArgs::Summary, true) => json_text(summary_json(d, &u)),
    };
    Ok(out)
}

fn ft<'a>(d: &Data<'a>) -> &'a crate::ftrace::Trace {
    static EMPTY: std::sync::OnceLock<crate::ftrace::Trace> = std::sync::OnceLock::new();
    d.ftrace
        .unwrap_or_else(|| EMPTY.get_or_init(crate::ftrace::Trace::default))
}

/// One report per interval, separated by a blank line.
fn pairs(sys: &[SysSample], f: impl Fn(&SysSample, &SysSample) -> String) -> String {
    sys.windows(2)
        .map(|w| f(&w[0], &w[1]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Link speed of an interface (Mb/s) as recorded from sysfs, for %ifutil.
fn speed(sys: &[SysSample]) -> impl Fn(&str) -> Option<u64> + '_ {
    move |iface: &str| {
        sys.last()
            .and_then(|s| s.get(&format!("net.{iface}.speed_mbps")))
    }
}

fn delayacct_on(sys: &[SysSample]) -> bool {
    sys.iter().any(|s| s.get("sys.task_delayacct") == Some(1))
}

/// Processes first seen inside the window (and still alive at its end, or
/// gone without an exit record), for the exits view.
fn started_in(d: &Data) -> Vec<(i64, ProcRow)> {
    let mut out = Vec::new();
    let key = |r: &ProcRow| (r.pid, r.starttime, r.is_thread);
    for w in d.procs.windows(2) {
        let before: std::collections::HashSet<_> = w[0].rows.iter().map(key).collect();
        for r in &w[1].rows {
            if !r.is_thread && !before.contains(&key(r)) && w[1].wall_ns >= d.from_ns {
                out.push((w[1].wall_ns, r.clone()));
            }
        }
    }
    out
}

/// Top processes by CPU and by I/O over the last interval.
fn top_procs(d: &Data) -> (Vec<(f64, ProcRow)>, Vec<(f64, f64, ProcRow)>) {
    let n = d.procs.len();
    if n < 2 {
        return (Vec::new(), Vec::new());
    }
    let (p, c) = (&d.procs[n - 2], &d.procs[n - 1]);
    let dt = ((c.mono_ns - p.mono_ns) as f64 / 1e9).max(1e-3);
    let hz = d.host.clk_tck.max(1) as f64;
    let prev: std::collections::HashMap<(u32, u64), &ProcRow> = p
        .rows
        .iter()
        .filter(|r| !r.is_thread)
        .map(|r| ((r.pid, r.starttime), r))
        .collect();
    let mut cpu = Vec::new();
    let mut io = Vec::new();
    for r in c.rows.iter().filter(|r| !r.is_thread) {
        let Some(q) = prev.get(&(r.pid, r.starttime)) else {
            continue;
        };
        let ticks = (r.utime + r.stime).saturating_sub(q.utime + q.stime);
        cpu.push((ticks as f64 / hz / dt * 100.0, r.clone()));
        let rd = r.read_bytes.saturating_sub(q.read_bytes) as f64 / 1024.0 / dt;
        let wr = r.write_bytes.saturating_sub(q.write_bytes) as f64 / 1024.0 / dt;
        if rd + wr > 0.0 {
            io.push((rd, wr, r.clone()));
        }
    }
    cpu.retain(|c| c.0 > 0.0);
    cpu.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.pid.cmp(&b.1.pid)));
    io.sort_by(|a, b| (b.0 + b.1).total_cmp(&(a.0 + a.1)));
    cpu.truncate(5);
    io.truncate(5);
    (cpu, io)
}

/// The default view: one screen like atop's head: load and PSI, CPU, memory,
/// the top processes by CPU and by I/O, for the interval ending at TIME.
fn summary_text(d: &Data, u: &Users) -> String {
    let (sys, host) = (d.sys, d.host);
    let n = sys.len();
    let (prev, cur) = (&sys[n - 2], &sys[n - 1]);
    let mut out = system::uptime_format(&system::uptime_row(cur), host);
    out.push('\n');
    let block = system::mpstat_block(
        prev,
        cur,
        host,
        &system::CpuSelection::parse("ALL").unwrap(),
    );
    out.push_str(&system::mpstat_format_block(&block, host));
    out.push('\n');
    out.push_str(&system::free_format(
        &system::free_row(cur),
        system::FreeUnit::Mebi,
    ));
    out.push('\n');
    out.push_str(&system::vmstat_series(&sys[n - 2..], host));
    let (cpu, io) = top_procs(d);
    let name = |uid: u32| u.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
    if !cpu.is_empty() {
        out.push_str("\nTop processes by CPU\n    PID USER         %CPU COMMAND\n");
        for (pct, r) in &cpu {
            out.push_str(&format!(
                "{:>7} {:<10} {:>7.1} {}\n",
                r.pid,
                name(r.uid),
                pct,
                r.comm
            ));
        }
    }
    if !io.is_empty() {
        out.push_str("\nTop processes by I/O\n    PID USER        kB_rd/s    kB_wr/s COMMAND\n");
        for (rd, wr, r) in &io {
            out.push_str(&format!(
                "{:>7} {:<10} {:>10.2} {:>10.2} {}\n",
                r.pid,
                name(r.uid),
                rd,
                wr,
                r.comm
            ));
        }
    }
    if let Some(k) = d.kmsg {
        out.push_str(&dmesg::summary_text(k, d.to_ns, &host.tz));
    }
    if let Some(p) = d.perf.filter(|p| !p.samples.is_empty()) {
        out.push_str(&perf::summary_text(p));
    }
    out
}

fn summary_json(d: &Data, u: &Users) -> Value {
    let (sys, host) = (d.sys, d.host);
    let n = sys.len();
    let (prev, cur) = (&sys[n - 2], &sys[n - 1]);
    let block = system::mpstat_block(
        prev,
        cur,
        host,
        &system::CpuSelection::parse("ALL").unwrap(),
    );
    let (cpu, io) = top_procs(d);
    let name = |uid: u32| u.get(&uid).cloned().unwrap_or_else(|| uid.to_string());
    let mut v = serde_json::json!({
        "time": format_rfc3339(cur.wall, &host.tz),
        "uptime": system::uptime_json(&system::uptime_row(cur), host),
        "mpstat": system::mpstat_json(&block, host),
        "free": system::free_json(&system::free_row(cur), host),
        "vmstat": system::vmstat_json(&system::vmstat_row(prev, cur, host), host),
        "top_cpu": cpu.iter().map(|(p, r)| serde_json::json!({"pid": r.pid, "user": name(r.uid), "%CPU": p, "comm": r.comm})).collect::<Vec<_>>(),
        "top_io": io.iter().map(|(rd, wr, r)| serde_json::json!({"pid": r.pid, "user": name(r.uid), "kB_rd/s": rd, "kB_wr/s": wr, "comm": r.comm})).collect::<Vec<_>>(),
        "top_symbols": d.perf.map(perf::summary_json).unwrap_or(Value::Array(Vec::new())),
    });
    if let Some(k) = d.kmsg {
        v["kernel_events"] = dmesg::summary_json(k, d.to_ns, &host.tz);
    }
    v
}
