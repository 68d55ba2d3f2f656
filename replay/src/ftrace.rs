//! Kernel trace events of a window, from the `ftrace` stream: every block's
//! samples decoded in order (per-block dictionaries), events placed in wall
//! time (`sample.wall + (ts − sample.mono)`), formats and strings made
//! global so views can look fields up by name.

use lpo_format::ftrace::{BlockDecoder, EventFormat, FieldKind, Loss};
use lpo_format::RingReader;
use std::collections::HashMap;

/// One event. `vals` indexes [`Trace::vals`]: one value per field of
/// `Trace::formats[fmt]`; strings and byte arrays are ids into `strings`.
#[derive(Debug, Clone, Copy)]
pub struct Ev {
    /// CLOCK_BOOTTIME ns (the instance's `boot` trace clock).
    pub ts: u64,
    /// Unix ns.
    pub wall: i64,
    pub cpu: u32,
    pub pid: i32,
    pub flags: u8,
    pub preempt: u8,
    pub fmt: u32,
    pub vals: u32,
}

/// Events of a window, oldest first.
#[derive(Debug, Default)]
pub struct Trace {
    pub formats: Vec<EventFormat>,
    pub strings: Vec<String>,
    pub events: Vec<Ev>,
    pub vals: Vec<i64>,
    /// (wall of the sample, losses it reported).
    pub loss: Vec<(i64, Loss)>,
    /// Samples of the stream that covered the window (0: nothing recorded).
    pub samples: usize,
    /// Wall/mono of the first and last sample read (for "covered" notes).
    pub first_wall: i64,
    pub last_wall: i64,
    /// Disk names by dev_t (filled by the caller, see [`disk_names`]).
    pub disks: HashMap<u64, String>,
}

impl Trace {
    pub fn format(&self, e: &Ev) -> &EventFormat {
        &self.formats[e.fmt as usize]
    }
    pub fn name(&self, e: &Ev) -> &str {
        &self.formats[e.fmt as usize].name
    }
    /// Global format index of `name` (event name, or `group:name`).
    pub fn fmt_ids(&self, name: &str) -> Vec<u32> {
        let (g, n) = match name.split_once(':') {
            Some((g, n)) => (Some(g), n),
            None => (None, name),
        };
        self.formats
            .iter()
            .enumerate()
            .filter(|(_, f)| (n == "*" || f.name == n) && g.is_none_or(|g| g == f.system))
            .map(|(i, _)| i as u32)
            .collect()
    }
    pub fn int(&self, e: &Ev, field: &str) -> Option<i64> {
        let f = &self.formats[e.fmt as usize];
        let i = f.field(field)?;
        f.fields[i]
            .kind
            .is_int()
            .then(|| self.vals[e.vals as usize + i])
    }
    pub fn str(&self, e: &Ev, field: &str) -> Option<&str> {
        let f = &self.formats[e.fmt as usize];
        let i = f.field(field)?;
        (!f.fields[i].kind.is_int())
            .then(|| self.strings[self.vals[e.vals as usize + i] as usize].as_str())
    }
    /// Total events lost in the window (pages' missed counts or overruns,
    /// whichever is larger per CPU and sample, plus drops).
    pub fn lost(&self) -> u64 {
        self.loss
            .iter()
            .map(|(_, l)| l.missed.max(l.overrun) + l.dropped)
            .sum()
    }
    /// `field=value` pairs of an event, for `trace`.
    pub fn fields_text(&self, e: &Ev) -> String {
        let f = &self.formats[e.fmt as usize];
        let mut s = String::new();
        for (i, fd) in f.fields.iter().enumerate() {
            if !s.is_empty() {
                s.push(' ');
            }
            let v = self.vals[e.vals as usize + i];
            s.push_str(&fd.name);
            s.push('=');
            match fd.kind {
                FieldKind::Unsigned => s.push_str(&(v as u64).to_string()),
                FieldKind::Signed => s.push_str(&v.to_string()),
                FieldKind::Str => s.push_str(&self.strings[v as usize]),
                FieldKind::Bytes => s.push_str(&self.strings[v as usize]),
            }
        }
        s
    }
}

/// Interns a block's strings into the global table.
struct Glob {
    fmt_ix: HashMap<EventFormat, u32>,
    str_ix: HashMap<String, u32>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Load the events with wall times in [from, to] (unix ns). `slack_ns`:
/// how long after an event its sample may have been taken (the interval).
pub fn load(r: &RingReader, from: i64, to: i64, slack_ns: i64, bad: &mut Vec<String>) -> Trace {
    let mut t = Trace::default();
    let Some(i) = r.stream("ftrace") else {
        return t;
    };
    let mut g = Glob {
        fmt_ix: HashMap::new(),
        str_ix: HashMap::new(),
    };
    let mut last_key = i64::MIN;
    let hi = to.saturating_add(slack_ns.max(1_000_000_000) * 3);
    for b in r.batches(i, from, hi, &mut |e| bad.push(e.to_string())) {
        let Some(b) = b.into_log() else { continue };
        let mut dec = BlockDecoder::new();
        // Block-local → global ids, grown as the block defines entries.
        let mut fmap: Vec<u32> = Vec::new();
        let mut smap: Vec<u32> = Vec::new();
        for s in &b.samples {
            let d = match dec.decode(&s.payload) {
                Ok(d) => d,
                Err(e) => {
                    // The rest of the block depends on this sample's dictionary.
                    bad.push(format!("ftrace sample at {}: {e}", s.wall));
                    break;
                }
            };
            while fmap.len() < dec.formats.len() {
                let f = &dec.formats[fmap.len()];
                let n = g.fmt_ix.len() as u32;
                let id = *g.fmt_ix.entry(f.clone()).or_insert_with(|| {
                    t.formats.push(f.clone());
                    n
                });
                fmap.push(id);
            }
            while smap.len() < dec.strings.len() {
                let raw = &dec.strings[smap.len()];
                let nul = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
                let text = match std::str::from_utf8(&raw[..nul]) {
                    Ok(s) if raw[nul..].iter().all(|&c| c == 0) => s.to_string(),
                    _ => hex(raw),
                };
                let n = g.str_ix.len() as u32;
                let id = *g.str_ix.entry(text.clone()).or_insert_with(|| {
                    t.strings.push(text);
                    n
                });
                smap.push(id);
            }
            if s.key <= last_key {
                continue;
            }
            last_key = s.key;
            if s.wall > hi {
                continue;
            }
            if s.wall >= from {
                t.samples += 1;
                if t.first_wall == 0 {
                    t.first_wall = s.wall;
                }
                t.last_wall = s.wall;
                for l in &d.loss {
                    t.loss.push((s.wall, *l));
                }
            }
            for e in &d.events {
                let wall = s.wall.wrapping_add((e.ts as i64).wrapping_sub(s.mono));
                if wall < from || wall > to {
                    continue;
                }
                let f = &dec.formats[e.fmt as usize];
                let vals = t.vals.len() as u32;
                for (k, fd) in f.fields.iter().enumerate() {
                    let v = d.vals[e.vals as usize + k];
                    t.vals.push(if fd.kind.is_int() {
                        v
                    } else {
                        smap.get(v as usize).copied().unwrap_or(0) as i64
                    });
                }
                t.events.push(Ev {
                    ts: e.ts,
                    wall,
                    cpu: e.cpu,
                    pid: e.pid,
                    flags: e.flags,
                    preempt: e.preempt,
                    fmt: fmap[e.fmt as usize],
                    vals,
                });
            }
        }
    }
    if t.strings.is_empty() {
        t.strings.push(String::new());
    }
    t.events.sort_by_key(|e| e.ts);
    t
}

/// Disk names by kernel dev_t (major << 20 | minor, as block tracepoints
/// store it), from the `kernel` stream's `disk.<name>.major/minor`.
pub fn disk_names(r: &RingReader, from: i64, to: i64) -> HashMap<u64, String> {
    let mut bad = Vec::new();
    let mut out = HashMap::new();
    let mut v = crate::model::load_kv(r, "kernel", from, to, &mut bad);
    if v.is_empty() {
        v = crate::model::load_at_in(r, "kernel", to, &mut bad);
    }
    if let Some(s) = v.last() {
        for (n, maj) in s.iter() {
            if let Some(dev) = n
                .strip_prefix("disk.")
                .and_then(|x| x.strip_suffix(".major"))
            {
                if let Some(min) = s.get(&format!("disk.{dev}.minor")) {
                    out.insert((maj << 20) | min, dev.to_string());
                }
            }
        }
    }
    out
}
