//! The `ftrace` stream's collector: kernel trace events (scheduler, block
//! I/O, process lifecycle, OOM kills, and any `--events`) read as binary
//! pages from the per-CPU `trace_pipe_raw` files of lpo's own tracefs
//! instance, decoded generically from the events' `format` files, and
//! encoded once per sample by `lpo_format::ftrace`.
//!
//! * [`tracefs`]: mount, the `instances/lpo` instance and its clean-up.
//! * [`decode`]: `header_page`, `format` and page parsers (pure).

pub mod decode;
pub mod tracefs;

use decode::{parse_format, parse_header_page, parse_page, record_type, Format, PageLayout};
use lpo_format::ftrace::{BlockEncoder, Drain, EventFormat, Loss};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// Events recorded unless `--no-ftrace` (each where the kernel has it).
pub const DEFAULT_EVENTS: &[&str] = &[
    "sched:sched_switch",
    "sched:sched_wakeup",
    "sched:sched_wakeup_new",
    "sched:sched_process_fork",
    "sched:sched_process_exec",
    "sched:sched_process_exit",
    "block:block_rq_issue",
    "block:block_rq_complete",
    "oom:mark_victim",
];

/// Per-CPU ring buffer size of the instance.
pub const BUFFER_KB: u32 = 1024;
/// Cap on events held between two samples (the rest stays in the kernel's
/// buffer, where it may be overwritten and counted as overrun).
pub const MAX_DRAIN_EVENTS: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FtraceError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Parse(#[from] decode::ParseError),
}

/// A `group:name[:filter]` event specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub group: String,
    pub name: String,
    pub filter: Option<String>,
}

impl EventSpec {
    pub fn parse(s: &str) -> Result<EventSpec, String> {
        let mut it = s.splitn(3, ':');
        let g = it.next().unwrap_or("").trim();
        let n = it.next().unwrap_or("").trim();
        let ok = |x: &str| {
            !x.is_empty()
                && x.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !ok(g) || !ok(n) {
            return Err(format!("{s:?}: expected GROUP:EVENT[:FILTER], e.g. sched:sched_switch or irq:irq_handler_entry:irq==5"));
        }
        Ok(EventSpec {
            group: g.into(),
            name: n.into(),
            filter: it
                .next()
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty()),
        })
    }
}

struct Cpu {
    id: u32,
    raw: File,
    stats: Option<File>,
    overrun: u64,
    dropped: u64,
    missed: u64,
}

/// Reads the instance's per-CPU pages into a [`Drain`] and encodes it.
pub struct FtraceCollector {
    // Declared first so the per-CPU files are closed before the instance
    // is removed on drop.
    cpus: Vec<Cpu>,
    inst: tracefs::Instance,
    layout: PageLayout,
    fmts: Vec<Format>,
    descs: Vec<EventFormat>,
    by_id: HashMap<u32, u32>,
    page: Vec<u8>,
    drain: Drain,
    enc: BlockEncoder,
    /// Events recorded so far, and events known lost.
    pub events: u64,
    pub lost: u64,
    /// Records of an event id we did not enable (should not happen).
    pub unknown: u64,
    /// Bytes of the data pages read (their commit lengths): what a
    /// page-based trace file stores at least.
    pub raw_bytes: u64,
}

impl FtraceCollector {
    /// Set up the instance with the default events (unless `defaults` is
    /// false) plus `extra`. Notices (a missing event, a recovered instance)
    /// go to `say`.
    pub fn open(
        defaults: bool,
        extra: &[EventSpec],
        say: &mut dyn FnMut(String),
    ) -> Result<FtraceCollector, FtraceError> {
        let root = tracefs::find_or_mount().map_err(FtraceError::Setup)?;
        let hp = tracefs::read_file(&root.join("events/header_page"))
            .map_err(|e| FtraceError::Setup(format!("events/header_page: {e}")))?;
        let layout = parse_header_page(&hp)?;
        let (inst, recovered) = tracefs::Instance::create(&root).map_err(FtraceError::Setup)?;
        if recovered {
            say(format!(
                "note: ftrace: removed {} left by an earlier recorder and created it afresh",
                inst.dir.display()
            ));
        }
        let setup = |r: Result<(), String>| r.map_err(FtraceError::Setup);
        setup(inst.set("tracing_on", "0"))?;
        setup(inst.set("trace_clock", "boot"))?;
        if let Err(e) = inst.set("buffer_size_kb", &BUFFER_KB.to_string()) {
            say(format!("note: ftrace: {e}"));
        }
        let mut specs: Vec<(EventSpec, bool)> = Vec::new();
        if defaults {
            for d in DEFAULT_EVENTS {
                if let Ok(s) = EventSpec::parse(d) {
                    specs.push((s, true));
                }
            }
        }
        for s in extra {
            match specs
                .iter_mut()
                .find(|(x, _)| x.group == s.group && x.name == s.name)
            {
                Some(x) => *x = (s.clone(), false),
                None => specs.push((s.clone(), false)),
            }
        }
        let mut fmts = Vec::new();
        for (s, is_default) in &specs {
            let rel = format!("events/{}/{}", s.group, s.name);
            let text = match inst.read(&format!("{rel}/format")) {
                Ok(t) => t,
                Err(_) if *is_default => continue,
                Err(_) => {
                    say(format!(
                        "skipped: ftrace: no event {}:{} in this kernel",
                        s.group, s.name
                    ));
                    continue;
                }
            };
            let f = match parse_format(&text, &s.group) {
                Ok(f) => f,
                Err(e) => {
                    say(format!("skipped: ftrace: {}:{}: {e}", s.group, s.name));
                    continue;
                }
            };
            if let Some(flt) = &s.filter {
                if let Err(e) = inst.set(&format!("{rel}/filter"), flt) {
                    say(format!(
                        "skipped: ftrace: {}:{}: bad filter {flt:?}: {e}",
                        s.group, s.name
                    ));
                    continue;
                }
            }
            if let Err(e) = inst.set(&format!("{rel}/enable"), "1") {
                say(format!("skipped: ftrace: {}:{}: {e}", s.group, s.name));
                continue;
            }
            fmts.push(f);
        }
        if fmts.is_empty() {
            return Err(FtraceError::Setup("no event could be enabled".into()));
        }
        let mut cpus = Vec::new();
        for id in inst.cpus() {
            let raw = inst
                .open_raw(id)
                .map_err(|e| FtraceError::Setup(format!("per_cpu/cpu{id}/trace_pipe_raw: {e}")))?;
            let stats = inst.open_stats(id).ok();
            let mut c = Cpu {
                id,
                raw,
                stats,
                overrun: 0,
                dropped: 0,
                missed: 0,
            };
            (c.overrun, c.dropped) = read_stats(&c);
            cpus.push(c);
        }
        setup(inst.set("tracing_on", "1"))?;
        let by_id = fmts
            .iter()
            .enumerate()
            .map(|(i, f)| (f.desc.id, i as u32))
            .collect();
        let descs = fmts.iter().map(|f| f.desc.clone()).collect();
        Ok(FtraceCollector {
            page: vec![0; layout.page_size()],
            inst,
            layout,
            fmts,
            descs,
            by_id,
            cpus,
            drain: Drain::default(),
            enc: BlockEncoder::default(),
            events: 0,
            lost: 0,
            unknown: 0,
            raw_bytes: 0,
        })
    }

    /// Names of the enabled events (`group:name`).
    pub fn enabled(&self) -> Vec<String> {
        self.descs
            .iter()
            .map(|d| format!("{}:{}", d.system, d.name))
            .collect()
    }

    /// Read every page the kernel has ready (non-blocking).
    pub fn read(&mut self) {
        let max_pages = (BUFFER_KB as usize * 1024 / self.layout.page_size().max(1)).max(8) * 2;
        for c in self.cpus.iter_mut() {
            for _ in 0..max_pages {
                if self.drain.events.len() >= MAX_DRAIN_EVENTS {
                    return;
                }
                let n = match c.raw.read(&mut self.page) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(_) => break, // EAGAIN: nothing more now
                };
                let (fmts, by_id, drain) = (&self.fmts, &self.by_id, &mut self.drain);
                let mut unknown = 0;
                let type_at = fmts[0].type_at;
                let cpu = c.id;
                let r = parse_page(
                    &self.page[..n],
                    &self.layout,
                    &mut |ts, rec| match record_type(type_at, rec).and_then(|t| by_id.get(&t)) {
                        Some(&slot) => fmts[slot as usize].decode(rec, ts, cpu, slot, drain),
                        None => unknown += 1,
                    },
                );
                self.unknown += unknown;
                if let Ok(info) = r {
                    self.raw_bytes += info.data_len as u64;
                    if info.missed_flag {
                        c.missed += info.missed.max(1);
                    }
                }
            }
        }
    }

    /// Close the sample: loss counters, events in time order.
    pub fn prepare(&mut self) {
        for c in self.cpus.iter_mut() {
            let (o, d) = read_stats(c);
            let l = Loss {
                cpu: c.id,
                missed: std::mem::take(&mut c.missed),
                overrun: o.saturating_sub(c.overrun),
                dropped: d.saturating_sub(c.dropped),
            };
            (c.overrun, c.dropped) = (o.max(c.overrun), d.max(c.dropped));
            if l.missed + l.overrun + l.dropped > 0 {
                self.lost += l.missed.max(l.overrun) + l.dropped;
                self.drain.loss.push(l);
            }
        }
        self.drain.sort();
    }

    /// Encode the prepared sample (called by `RingWriter::append_log`).
    pub fn encode(&mut self, fresh: bool, out: &mut Vec<u8>) {
        self.enc.encode(fresh, &self.descs, &self.drain, out);
    }

    /// Forget the stored sample's events.
    pub fn clear(&mut self) {
        self.events += self.drain.events.len() as u64;
        self.drain.clear();
    }

    /// Stop tracing and remove the instance.
    pub fn close(self) -> Result<(), String> {
        let FtraceCollector { mut inst, cpus, .. } = self;
        drop(cpus);
        inst.remove()
    }
}

fn read_stats(c: &Cpu) -> (u64, u64) {
    let Some(f) = &c.stats else { return (0, 0) };
    let mut b = [0u8; 1024];
    match f.read_at(&mut b, 0) {
        Ok(n) => tracefs::parse_stats(&String::from_utf8_lossy(&b[..n])),
        Err(_) => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_specs() {
        let s = EventSpec::parse("irq:irq_handler_entry:irq==5 && ret:1").unwrap();
        assert_eq!(s.group, "irq");
        assert_eq!(s.filter.as_deref(), Some("irq==5 && ret:1"));
        assert!(EventSpec::parse("sched").is_err());
        assert!(EventSpec::parse("sched:../x").is_err());
        assert!(EventSpec::parse("sched:sched_switch")
            .unwrap()
            .filter
            .is_none());
    }
}
