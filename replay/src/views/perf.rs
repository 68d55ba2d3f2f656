//! CPU profile views over a window of the `perf` stream: `perf report`
//! (like `perf report --stdio --no-children`), `perf script` (perf's
//! default layout with call chains, which FlameGraph's stackcollapse-perf.pl
//! reads), `flamegraph` (SVG through inferno, or folded stacks) and the top
//! symbols of the summary view.

use crate::time::format_local;
use lpo_format::perf::Decoder;
use lpo_format::{Batch, RingReader};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// A frame with names interned in [`PerfData::strings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PFrame {
    pub addr: u64,
    pub sym: Option<(u32, u64)>,
    pub dso: u32,
    pub kernel: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct PSample {
    pub wall_ns: i64,
    /// CLOCK_BOOTTIME ns (what perf script prints as the time).
    pub mono_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub comm: u32,
    pub cpu: u32,
    pub period: u64,
    /// Index into [`PerfData::stacks`].
    pub stack: u32,
}

/// The perf samples of a window, with every name interned once.
#[derive(Debug, Default)]
pub struct PerfData {
    pub strings: Vec<String>,
    pub frames: Vec<PFrame>,
    /// Frame ids, leaf first.
    pub stacks: Vec<Vec<u32>>,
    pub samples: Vec<PSample>,
    /// Samples the kernel reported lost in the window.
    pub lost: u64,
    pub event: String,
    pub from_ns: i64,
    pub to_ns: i64,
    /// Is there a perf stream in this file at all?
    pub recorded: bool,
}

impl PerfData {
    pub fn s(&self, id: u32) -> &str {
        self.strings
            .get(id as usize)
            .map(|s| s.as_str())
            .unwrap_or("")
    }
    fn frame(&self, id: u32) -> &PFrame {
        &self.frames[id as usize]
    }
    fn stack(&self, s: &PSample) -> &[u32] {
        self.stacks
            .get(s.stack as usize)
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }
}

#[derive(Default)]
struct Interner {
    strings: HashMap<String, u32>,
    frames: HashMap<PFrame, u32>,
    stacks: HashMap<Vec<u32>, u32>,
}

/// Load the perf samples whose time lies in [from_ns, to_ns] (wall), from
/// log samples with keys in [k_from, k_to + slack]: a drain stores the
/// samples taken before it.
pub fn load(
    r: &RingReader,
    k_from: i64,
    k_to: i64,
    from_ns: i64,
    to_ns: i64,
    bad: &mut Vec<String>,
) -> PerfData {
    let mut d = PerfData {
        from_ns,
        to_ns,
        ..Default::default()
    };
    let Some(i) = r.stream("perf") else {
        return d;
    };
    d.recorded = true;
    let mut it = Interner::default();
    let slack = 30_000_000_000;
    let batches = r.batches(
        i,
        k_from.saturating_sub(slack),
        k_to.saturating_add(slack),
        &mut |e| bad.push(e.to_string()),
    );
    let mut dec = Decoder::new();
    let mut chain = Vec::new();
    for b in batches {
        let Batch::Log(b) = b else { continue };
        dec.reset();
        // Block-local id → global id caches.
        let mut str_map: Vec<Option<u32>> = Vec::new();
        let mut stack_map: HashMap<u32, u32> = HashMap::new();
        let mut thread_comm: Vec<Option<u32>> = Vec::new();
        for ls in &b.samples {
            let dd = match dec.decode(&ls.payload, ls.mono) {
                Ok(dd) => dd,
                Err(e) => {
                    // Later samples of the block may refer to what this one defined.
                    bad.push(format!("perf samples at {}: {e}", ls.wall));
                    break;
                }
            };
            let in_window = |t: i64| ls.wall.saturating_add(t.saturating_sub(ls.mono));
            // Lost samples are counted by the drain that noticed them.
            if ls.wall >= from_ns && ls.wall <= to_ns.saturating_add(2_000_000_000) {
                d.lost += dd.lost;
            }
            let mut gstr = |id: u32, d: &mut PerfData, dec: &Decoder| -> u32 {
                let i = id as usize;
                if str_map.len() <= i {
                    str_map.resize(i + 1, None);
                }
                if let Some(g) = str_map[i] {
                    return g;
                }
                let s = dec.string(id);
                let g = *it.strings.entry(s.to_string()).or_insert_with(|| {
                    d.strings.push(s.to_string());
                    (d.strings.len() - 1) as u32
                });
                str_map[i] = Some(g);
                g
            };
            if d.event.is_empty() {
                d.event = dec.string(dd.event).to_string();
            }
            for s in &dd.samples {
                let wall = in_window(s.time_ns);
                if wall < from_ns || wall > to_ns {
                    continue;
                }
                let Some(th) = dec.threads.get(s.thread as usize).copied() else {
                    continue;
                };
                let ti = s.thread as usize;
                if thread_comm.len() <= ti {
                    thread_comm.resize(ti + 1, None);
                }
                let comm = match thread_comm[ti] {
                    Some(c) => c,
                    None => {
                        let c = gstr(th.comm, &mut d, &dec);
                        thread_comm[ti] = Some(c);
                        c
                    }
                };
                let stack = match stack_map.get(&s.stack) {
                    Some(&g) => g,
                    None => {
                        dec.stack(s.stack, &mut chain);
                        let mut gframes = Vec::with_capacity(chain.len());
                        for &f in &chain {
                            let Some(fd) = dec.frames.get(f as usize).copied() else {
                                continue;
                            };
                            let pf = PFrame {
                                addr: fd.addr,
                                sym: fd.sym.map(|(n, o)| (gstr(n, &mut d, &dec), o)),
                                dso: gstr(fd.dso, &mut d, &dec),
                                kernel: fd.kernel,
                            };
                            let g = *it.frames.entry(pf).or_insert_with(|| {
                                d.frames.push(pf);
                                (d.frames.len() - 1) as u32
                            });
                            gframes.push(g);
                        }
                        let g = match it.stacks.get(&gframes) {
                            Some(&g) => g,
                            None => {
                                d.stacks.push(gframes.clone());
                                let g = (d.stacks.len() - 1) as u32;
                                it.stacks.insert(gframes, g);
                                g
                            }
                        };
                        stack_map.insert(s.stack, g);
                        g
                    }
                };
                d.samples.push(PSample {
                    wall_ns: wall,
                    mono_ns: s.time_ns,
                    pid: th.pid,
                    tid: th.tid,
                    comm,
                    cpu: s.cpu,
                    period: s.period,
                    stack,
                });
            }
        }
    }
    d.samples.sort_by_key(|s| (s.mono_ns, s.cpu));
    if d.event.is_empty() {
        d.event = "cpu-clock".into();
    }
    d
}

// ---------------------------------------------------------------- options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Comm,
    Pid,
    Dso,
    Sym,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Caller,
    Callee,
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub pids: Option<Vec<u32>>,
    pub comms: Option<Vec<String>>,
}

impl Filter {
    fn keep(&self, d: &PerfData, s: &PSample) -> bool {
        self.pids
            .as_ref()
            .is_none_or(|p| p.contains(&s.pid) || p.contains(&s.tid))
            && self
                .comms
                .as_ref()
                .is_none_or(|c| c.iter().any(|c| c == d.s(s.comm)))
    }
    /// Parse a filter option; true if `a` was one.
    fn parse(
        &mut self,
        view: &str,
        a: &str,
        it: &mut dyn Iterator<Item = &String>,
    ) -> Result<bool, String> {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a, None),
        };
        match name {
            "--pid" | "-p" | "--tid" | "-t" => {
                let v = inline
                    .or_else(|| it.next().cloned())
                    .ok_or(format!("{view}: {name} needs a PID list"))?;
                let p: Result<Vec<u32>, _> = v.split(',').map(|p| p.trim().parse()).collect();
                self.pids =
                    Some(p.map_err(|_| format!("{view}: {name} {v:?}: expected PID[,PID...]"))?);
                Ok(true)
            }
            "--comm" | "-c" => {
                let v = inline
                    .or_else(|| it.next().cloned())
                    .ok_or(format!("{view}: {name} needs a command name list"))?;
                self.comms = Some(v.split(',').map(|s| s.to_string()).collect());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReportOpts {
    pub sort: Vec<SortKey>,
    pub children: bool,
    pub graph: Option<Order>,
    pub filter: Filter,
    pub show_samples: bool,
}

impl Default for ReportOpts {
    fn default() -> Self {
        ReportOpts {
            sort: vec![SortKey::Comm, SortKey::Dso, SortKey::Sym],
            children: false,
            graph: None,
            filter: Filter::default(),
            show_samples: false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum PerfCmd {
    Report(ReportOpts),
    Script(Filter),
}

#[derive(Debug, Clone, Default)]
pub struct FlameOpts {
    pub out: Option<std::path::PathBuf>,
    pub folded: bool,
    pub filter: Filter,
}

pub fn parse_perf(args: &[&String]) -> Result<PerfCmd, String> {
    let mut it = args.iter().copied();
    let sub = it
        .next()
        .ok_or("perf: say which: perf report [OPTIONS] or perf script [OPTIONS]")?;
    match sub.as_str() {
        "report" => {
            let mut o = ReportOpts::default();
            while let Some(a) = it.next() {
                if o.filter.parse("perf report", a, &mut it)? {
                    continue;
                }
                let (name, inline) = match a.split_once('=') {
                    Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                    _ => (a.as_str(), None),
                };
                match name {
                    "--stdio" | "--no-children" => {
                        if name == "--no-children" {
                            o.children = false
                        }
                    }
                    "--children" => o.children = true,
                    "-n" | "--show-nr-samples" => o.show_samples = true,
                    "-s" | "--sort" => {
                        let v = inline
                            .or_else(|| it.next().cloned())
                            .ok_or("perf report: --sort needs keys (comm,pid,dso,sym)")?;
                        let mut keys = Vec::new();
                        for k in v.split(',') {
                            keys.push(match k.trim() {
                                "comm" => SortKey::Comm,
                                "pid" => SortKey::Pid,
                                "dso" => SortKey::Dso,
                                "sym" | "symbol" => SortKey::Sym,
                                other => {
                                    return Err(format!(
                                        "perf report: --sort {other:?}: known keys are comm, pid, dso, sym"
                                    ))
                                }
                            });
                        }
                        if keys.is_empty() {
                            return Err("perf report: --sort needs keys (comm,pid,dso,sym)".into());
                        }
                        o.sort = keys;
                    }
                    "-g" | "--call-graph" | "-G" | "--inverted" => {
                        o.graph = Some(match name {
                            "-G" | "--inverted" => Order::Caller,
                            _ => Order::Callee,
                        });
                        let v = inline;
                        let mut apply = |v: &str| -> bool {
                            let mut any = false;
                            for part in v.split(',') {
                                match part {
                                    "caller" => {
                                        o.graph = Some(Order::Caller);
                                        any = true
                                    }
                                    "callee" => {
                                        o.graph = Some(Order::Callee);
                                        any = true
                                    }
                                    "graph" | "fractal" | "flat" | "folded" => any = true,
                                    _ => {}
                                }
                            }
                            any
                        };
                        if let Some(v) = v {
                            apply(&v);
                        } else if let Some(next) = it.clone().next() {
                            if apply(next) {
                                it.next();
                            }
                        }
                    }
                    other => {
                        return Err(format!(
                            "perf report: unknown argument {other:?} (known: --sort comm,pid,dso,sym, --children, --no-children, -g [caller|callee], -G, -n, --pid PID, --comm COMM)"
                        ))
                    }
                }
            }
            Ok(PerfCmd::Report(o))
        }
        "script" => {
            let mut f = Filter::default();
            while let Some(a) = it.next() {
                if !f.parse("perf script", a, &mut it)? {
                    return Err(format!(
                        "perf script: unknown argument {a:?} (known: --pid PID, --comm COMM)"
                    ));
                }
            }
            Ok(PerfCmd::Script(f))
        }
        other => Err(format!(
            "perf: {other:?}: recorded subcommands are report and script (and the flamegraph view)"
        )),
    }
}

pub fn parse_flame(args: &[&String]) -> Result<FlameOpts, String> {
    let mut o = FlameOpts::default();
    let mut it = args.iter().copied();
    while let Some(a) = it.next() {
        if o.filter.parse("flamegraph", a, &mut it)? {
            continue;
        }
        match a.as_str() {
            "-o" | "--output" => {
                o.out = Some(
                    it.next()
                        .ok_or("flamegraph: -o needs a file name")?
                        .into(),
                )
            }
            "--folded" => o.folded = true,
            a => {
                return Err(format!(
                    "flamegraph: unknown argument {a:?} (known: -o FILE, --folded, --pid PID, --comm COMM)"
                ))
            }
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------- report

fn basename(p: &str) -> &str {
    if p.starts_with('[') {
        return p;
    }
    p.rsplit('/').next().unwrap_or(p)
}

/// "[k] name" / "[.] name" (or the address when the name is unknown).
fn sym_label(d: &PerfData, f: &PFrame) -> String {
    let tag = if f.kernel { "[k]" } else { "[.]" };
    match f.sym {
        Some((n, _)) => format!("{tag} {}", d.s(n)),
        None => format!("{tag} {:#018x}", f.addr),
    }
}

/// Name of a frame in call graphs and folded stacks.
fn frame_name(d: &PerfData, f: &PFrame) -> String {
    match f.sym {
        Some((n, _)) => d.s(n).to_string(),
        None if f.kernel => format!("{:#x}", f.addr),
        None => format!("[{}]", basename(d.s(f.dso))),
    }
}

/// A report row key: the values of the sort keys.
type RowKey = Vec<String>;

fn row_key(d: &PerfData, s: &PSample, f: Option<&PFrame>, sort: &[SortKey]) -> RowKey {
    sort.iter()
        .map(|k| match k {
            SortKey::Comm => d.s(s.comm).to_string(),
            SortKey::Pid => format!("{:>7}:{}", s.pid, d.s(s.comm)),
            SortKey::Dso => f
                .map(|f| basename(d.s(f.dso)).to_string())
                .unwrap_or_else(|| "[unknown]".into()),
            SortKey::Sym => f
                .map(|f| sym_label(d, f))
                .unwrap_or_else(|| "[.] [unknown]".into()),
        })
        .collect()
}

fn header_of(k: SortKey) -> &'static str {
    match k {
        SortKey::Comm => "Command",
        SortKey::Pid => "Pid:Command",
        SortKey::Dso => "Shared Object",
        SortKey::Sym => "Symbol",
    }
}

pub struct Row {
    pub key: RowKey,
    pub self_period: u64,
    pub children_period: u64,
    pub samples: u64,
    /// Samples (indices) whose leaf is this row, for call graphs.
    members: Vec<usize>,
}

pub struct Report {
    pub rows: Vec<Row>,
    pub total_period: u64,
    pub samples: u64,
}

fn weight(s: &PSample, all_zero: bool) -> u64 {
    if all_zero {
        1
    } else {
        s.period
    }
}

pub fn aggregate(d: &PerfData, o: &ReportOpts) -> Report {
    let kept: Vec<usize> = (0..d.samples.len())
        .filter(|&i| o.filter.keep(d, &d.samples[i]))
        .collect();
    let all_zero = kept.iter().all(|&i| d.samples[i].period == 0);
    let mut rows: HashMap<RowKey, Row> = HashMap::new();
    let mut total = 0u64;
    for &i in &kept {
        let s = &d.samples[i];
        let w = weight(s, all_zero);
        total += w;
        let st = d.stack(s);
        let leaf = st.first().map(|&f| d.frame(f));
        let k = row_key(d, s, leaf, &o.sort);
        let r = rows.entry(k.clone()).or_insert_with(|| Row {
            key: k,
            self_period: 0,
            children_period: 0,
            samples: 0,
            members: Vec::new(),
        });
        r.self_period += w;
        r.samples += 1;
        r.members.push(i);
        if o.children {
            let mut seen: Vec<RowKey> = Vec::new();
            for &f in st {
                let k = row_key(d, s, Some(d.frame(f)), &o.sort);
                if seen.contains(&k) {
                    continue;
                }
                seen.push(k.clone());
                rows.entry(k.clone())
                    .or_insert_with(|| Row {
                        key: k,
                        self_period: 0,
                        children_period: 0,
                        samples: 0,
                        members: Vec::new(),
                    })
                    .children_period += w;
            }
            if st.is_empty() {
                if let Some(r) = rows.get_mut(&row_key(d, s, None, &o.sort)) {
                    r.children_period += w;
                }
            }
        }
    }
    let mut rows: Vec<Row> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        let (x, y) = if o.children {
            (b.children_period, a.children_period)
        } else {
            (b.self_period, a.self_period)
        };
        x.cmp(&y)
            .then(b.self_period.cmp(&a.self_period))
            .then(a.key.cmp(&b.key))
    });
    Report {
        rows,
        total_period: total,
        samples: kept.len() as u64,
    }
}

fn pct(v: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        v as f64 * 100.0 / total as f64
    }
}

fn window_line(d: &PerfData, tz: &chrono_tz::Tz) -> String {
    format!(
        "# lpo: {} to {} ({})\n",
        format_local(d.from_ns, tz),
        format_local(d.to_ns, tz),
        tz.name()
    )
}

pub fn report_text(d: &PerfData, o: &ReportOpts, tz: &chrono_tz::Tz) -> String {
    let rep = aggregate(d, o);
    let mut out = String::new();
    out.push_str(&window_line(d, tz));
    out.push_str("#\n#\n");
    let _ = writeln!(out, "# Total Lost Samples: {}", d.lost);
    out.push_str("#\n");
    let _ = writeln!(out, "# Samples: {}  of event '{}'", rep.samples, d.event);
    let _ = writeln!(out, "# Event count (approx.): {}", rep.total_period);
    out.push_str("#\n");
    // Column widths: header or widest value.
    let mut widths: Vec<usize> = o.sort.iter().map(|k| header_of(*k).len()).collect();
    for r in &rep.rows {
        for (w, v) in widths.iter_mut().zip(&r.key) {
            *w = (*w).max(v.chars().count());
        }
    }
    let mut head = String::from("#");
    let mut dots = String::from("#");
    if o.children {
        head.push_str(" Children      Self");
        dots.push_str(" ........  ........");
    } else {
        head.push_str(" Overhead");
        dots.push_str(" ........");
    }
    if o.show_samples {
        head.push_str("       Samples");
        dots.push_str("  ............");
    }
    for (k, w) in o.sort.iter().zip(&widths) {
        let _ = write!(head, "  {:<w$}", header_of(*k), w = *w);
        let _ = write!(dots, "  {}", ".".repeat(*w));
    }
    out.push_str(head.trim_end());
    out.push('\n');
    out.push_str(&dots);
    out.push_str("\n#\n");
    for r in &rep.rows {
        if o.children && r.children_period == 0 && r.self_period == 0 {
            continue;
        }
        let mut line = String::new();
        if o.children {
            let _ = write!(
                line,
                "{:>9.2}%  {:>7.2}%",
                pct(r.children_period, rep.total_period),
                pct(r.self_period, rep.total_period)
            );
        } else {
            let _ = write!(line, "{:>9.2}%", pct(r.self_period, rep.total_period));
        }
        if o.show_samples {
            let _ = write!(line, "  {:>12}", r.samples);
        }
        for (v, w) in r.key.iter().zip(&widths) {
            let _ = write!(line, "  {:<w$}", v, w = *w);
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if let Some(order) = o.graph {
            if !r.members.is_empty() {
                out.push_str(&call_graph(
                    d,
                    r,
                    order,
                    rep.total_period,
                    all_zero(d, &rep),
                ));
                out.push('\n');
            }
        }
    }
    if rep.rows.is_empty() {
        out.push_str("# (no samples in this window)\n");
    }
    out
}

fn all_zero(d: &PerfData, rep: &Report) -> bool {
    rep.rows
        .iter()
        .flat_map(|r| r.members.iter())
        .all(|&i| d.samples[i].period == 0)
}

pub fn report_json(d: &PerfData, o: &ReportOpts, tz: &chrono_tz::Tz) -> Value {
    let rep = aggregate(d, o);
    let rows: Vec<Value> = rep
        .rows
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            m.insert(
                "overhead".into(),
                json!(pct(r.self_period, rep.total_period)),
            );
            if o.children {
                m.insert(
                    "children".into(),
                    json!(pct(r.children_period, rep.total_period)),
                );
            }
            m.insert("samples".into(), json!(r.samples));
            for (k, v) in o.sort.iter().zip(&r.key) {
                let name = match k {
                    SortKey::Comm => "comm",
                    SortKey::Pid => "pid",
                    SortKey::Dso => "dso",
                    SortKey::Sym => "sym",
                };
                m.insert(name.into(), json!(v.trim()));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "from": crate::time::format_rfc3339(d.from_ns, tz),
        "to": crate::time::format_rfc3339(d.to_ns, tz),
        "event": d.event,
        "samples": rep.samples,
        "event_count": rep.total_period,
        "lost": d.lost,
        "rows": rows,
    })
}

/// A call tree node: name, weight, children.
#[derive(Default)]
struct Node {
    w: u64,
    kids: Vec<(String, Node)>,
}

impl Node {
    fn child(&mut self, name: &str) -> &mut Node {
        let i = match self.kids.iter().position(|k| k.0 == name) {
            Some(i) => i,
            None => {
                self.kids.push((name.to_string(), Node::default()));
                self.kids.len() - 1
            }
        };
        &mut self.kids[i].1
    }
}

/// perf's graph layout (absolute percentages, 0.5% threshold).
fn call_graph(d: &PerfData, r: &Row, order: Order, total: u64, zero: bool) -> String {
    let mut root = Node::default();
    for &i in &r.members {
        let s = &d.samples[i];
        let w = weight(s, zero);
        let mut names: Vec<String> = d
            .stack(s)
            .iter()
            .map(|&f| frame_name(d, d.frame(f)))
            .collect();
        if order == Order::Caller {
            names.reverse();
        }
        root.w += w;
        let mut n = &mut root;
        for name in &names {
            n = n.child(name);
            n.w += w;
        }
    }
    let limit = total / 200; // 0.5%
    let mut out = String::from("            |\n");
    let kids = sorted_kids(&root, limit);
    if kids.len() == 1 {
        let (name, n) = kids[0];
        let _ = writeln!(out, "            ---{name}");
        chain(&mut out, n, "               ", total, limit);
    } else {
        branches(&mut out, &root, "            ", total, limit);
    }
    out
}

fn sorted_kids(n: &Node, limit: u64) -> Vec<(&String, &Node)> {
    let mut v: Vec<(&String, &Node)> = n
        .kids
        .iter()
        .filter(|k| k.1.w > limit || k.1.w == n.w)
        .map(|k| (&k.0, &k.1))
        .collect();
    v.sort_by(|a, b| b.1.w.cmp(&a.1.w).then(a.0.cmp(b.0)));
    v
}

/// Print the single-child run below `n` at `prefix`, then branch.
fn chain(out: &mut String, mut n: &Node, prefix: &str, total: u64, limit: u64) {
    loop {
        let kids = sorted_kids(n, limit);
        match kids.len() {
            0 => return,
            1 if kids[0].1.w == n.w => {
                let _ = writeln!(out, "{prefix}{}", kids[0].0);
                n = kids[0].1;
            }
            _ => {
                branches(out, n, prefix, total, limit);
                return;
            }
        }
    }
}

fn branches(out: &mut String, n: &Node, prefix: &str, total: u64, limit: u64) {
    let kids = sorted_kids(n, limit);
    for (i, (name, k)) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let _ = writeln!(out, "{prefix}|          ");
        let lead = format!(
            "{}--{:.2}%--",
            if last { " " } else { "|" },
            pct(k.w, total)
        );
        let _ = writeln!(out, "{prefix}{lead}{name}");
        let sub = format!(
            "{prefix}{}{}",
            if last { " " } else { "|" },
            " ".repeat(lead.len() - 1)
        );
        chain(out, k, &sub, total, limit);
    }
}

// ---------------------------------------------------------------- script

/// `perf script` with call chains, in perf's default layout.
pub fn script_text(d: &PerfData, f: &Filter) -> String {
    let mut out = String::new();
    for s in d.samples.iter().filter(|s| f.keep(d, s)) {
        let t = s.mono_ns.max(0);
        let _ = writeln!(
            out,
            "{} {:>5} [{:03}] {:>5}.{:06}: {:>10} {}: ",
            d.s(s.comm),
            s.tid,
            s.cpu,
            t / 1_000_000_000,
            t % 1_000_000_000 / 1000,
            s.period,
            d.event
        );
        for &fid in d.stack(s) {
            let fr = d.frame(fid);
            match fr.sym {
                Some((n, off)) => {
                    let _ = writeln!(
                        out,
                        "\t{:>16x} {}+{:#x} ({})",
                        fr.addr,
                        d.s(n),
                        off,
                        d.s(fr.dso)
                    );
                }
                None => {
                    let _ = writeln!(out, "\t{:>16x} [unknown] ({})", fr.addr, d.s(fr.dso));
                }
            }
        }
        out.push('\n');
    }
    out
}

pub fn script_json(d: &PerfData, f: &Filter, tz: &chrono_tz::Tz) -> Value {
    Value::Array(
        d.samples
            .iter()
            .filter(|s| f.keep(d, s))
            .map(|s| {
                json!({
                    "time": crate::time::format_rfc3339(s.wall_ns, tz),
                    "wall_ns": s.wall_ns,
                    "boottime_ns": s.mono_ns,
                    "comm": d.s(s.comm),
                    "pid": s.pid,
                    "tid": s.tid,
                    "cpu": s.cpu,
                    "period": s.period,
                    "event": d.event,
                    "stack": d.stack(s).iter().map(|&f| {
                        let fr = d.frame(f);
                        json!({"addr": format!("{:#x}", fr.addr),
                               "sym": fr.sym.map(|(n, _)| d.s(n)),
                               "offset": fr.sym.map(|(_, o)| o),
                               "dso": d.s(fr.dso), "kernel": fr.kernel})
                    }).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

// ---------------------------------------------------------------- flame graphs

/// Folded stacks: `comm;outermost;...;leaf count`, sorted, as
/// stackcollapse-perf.pl prints them.
pub fn folded(d: &PerfData, f: &Filter) -> Vec<String> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for s in d.samples.iter().filter(|s| f.keep(d, s)) {
        let mut line = d.s(s.comm).replace([';', ' '], "_");
        for &fid in d.stack(s).iter().rev() {
            line.push(';');
            line.push_str(&frame_name(d, d.frame(fid)).replace(';', ":"));
        }
        *counts.entry(line).or_default() += 1;
    }
    let mut v: Vec<String> = counts
        .into_iter()
        .map(|(k, c)| format!("{k} {c}"))
        .collect();
    v.sort();
    v
}

pub fn flamegraph(d: &PerfData, o: &FlameOpts, tz: &chrono_tz::Tz) -> Result<String, String> {
    let lines = folded(d, &o.filter);
    if o.folded {
        let mut s = lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        return Ok(s);
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!(
        "lpo: {} to {} ({})",
        format_local(d.from_ns, tz),
        format_local(d.to_ns, tz),
        tz.name()
    );
    opts.count_name = "samples".into();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(|s| s.as_str()), &mut svg)
        .map_err(|e| format!("flamegraph: {e}"))?;
    match &o.out {
        Some(p) => {
            std::fs::write(p, &svg).map_err(|e| format!("flamegraph: {}: {e}", p.display()))?;
            Ok(String::new())
        }
        None => Ok(String::from_utf8_lossy(&svg).into_owned()),
    }
}

// ---------------------------------------------------------------- summary

/// The top `n` symbols of the window, idle (pid 0) left out:
/// (share of non-idle samples %, command, shared object, symbol).
pub fn top_symbols(d: &PerfData, n: usize) -> Vec<(f64, String, String, String)> {
    let o = ReportOpts {
        sort: vec![SortKey::Comm, SortKey::Dso, SortKey::Sym],
        filter: Filter::default(),
        ..Default::default()
    };
    let busy = PerfData {
        samples: d.samples.iter().filter(|s| s.pid != 0).copied().collect(),
        strings: d.strings.clone(),
        frames: d.frames.clone(),
        stacks: d.stacks.clone(),
        event: d.event.clone(),
        ..Default::default()
    };
    let rep = aggregate(&busy, &o);
    rep.rows
        .iter()
        .take(n)
        .map(|r| {
            (
                pct(r.self_period, rep.total_period),
                r.key[0].clone(),
                r.key[1].clone(),
                r.key[2].clone(),
            )
        })
        .collect()
}

pub fn summary_text(d: &PerfData) -> String {
    let top = top_symbols(d, 5);
    let idle = d.samples.iter().filter(|s| s.pid == 0).count();
    let mut out = format!(
        "\nTop symbols (perf, {} samples of {} in the 60 s window, {:.1}% idle{})\nOverhead  Command          Shared Object        Symbol\n",
        d.samples.len(),
        d.event,
        pct(idle as u64, d.samples.len() as u64),
        if d.lost > 0 {
            format!(", {} lost", d.lost)
        } else {
            String::new()
        }
    );
    for (p, c, dso, s) in &top {
        let _ = writeln!(out, "{:>7.2}%  {:<16} {:<20} {}", p, c, dso, s);
    }
    out
}

pub fn summary_json(d: &PerfData) -> Value {
    Value::Array(
        top_symbols(d, 5)
            .into_iter()
            .map(|(p, c, dso, s)| json!({"overhead": p, "comm": c, "dso": dso, "sym": s}))
            .collect(),
    )
}
