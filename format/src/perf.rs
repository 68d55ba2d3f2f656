//! Payload of the `perf` stream (log codec): CPU profile samples with
//! symbolized call stacks, as the recorder drains them (one log sample per
//! drain, holding every perf sample taken since the previous drain).
//!
//! Everything a replay needs travels in the payload: symbol and object
//! names, never only addresses, so a capture replays on another machine
//! with the profiled binaries gone. To stay small (target: ≤ 16 bytes per
//! perf sample after zstd), names, frames, stacks and threads are defined
//! once per block in dictionaries that later samples of the same block
//! refer to by id; stacks are a prefix tree (a node is a frame and its
//! caller node), so stacks that share callers share nodes.
//!
//! Layout, version 2 (all integers LEB128 varints; `z` marks zigzag;
//! spec/STREAMS.md, "perf", has the details):
//!
//! ```text
//! u8 version (2)
//! lost                          samples the kernel dropped since the previous drain
//! n_str,     n × (len, bytes)   new strings, ids continue the block's table
//! n_sym,     n × (dso << 1 | kernel, z(name − prev − 1), z(start − prev start))
//!                               a symbol and its start, stored once
//! n_frame,   n × frame          0, dso << 1 | kernel, addr  (no symbol)
//!                               or 1 + z(sym − prev − 1), offset in the symbol
//! n_node,    n × (back, z(frame − prev − 1))  back 0 = outermost caller, else
//!                               the parent is `back` nodes before this one
//! n_proc,    n × (z(pid − prev pid), comm str)
//! n_thread,  n × (process back from the newest, z(tid − pid))
//! event str                     e.g. "cpu-clock"
//! n_sample, then columns of n values each:
//!   cpu; period: z(first), then z(deltas);
//!   time µs: z(t − same CPU's previous + period, else the previous sample or mono)
//!   thread, stack: z(id − highest so far) (stack 0 = none, else leaf node id + 1)
//! ```
//!
//! Ids count from 0 in order of definition within a block. The encoder is
//! told by the ring when a payload starts a block (`fresh`) and then forgets
//! every dictionary; the decoder is reset at the start of each block.

use crate::varint::{put_i64, put_u64, Cursor};
use std::collections::HashMap;
use std::hash::Hash;

pub const PAYLOAD_VERSION: u8 = 2;
/// Caps on untrusted input (per block for tables, per payload for samples).
pub const MAX_STRINGS: usize = 1 << 20;
pub const MAX_STRING_LEN: usize = 4096;
pub const MAX_SYMS: usize = 1 << 22;
pub const MAX_FRAMES: usize = 1 << 22;
pub const MAX_NODES: usize = 1 << 22;
pub const MAX_THREADS: usize = 1 << 20;
pub const MAX_SAMPLES: usize = 1 << 22;
/// Deepest stack a decoder walks (perf's own limit is 127 frames per context).
pub const MAX_DEPTH: usize = 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PerfCodecError {
    #[error("perf payload: {0}")]
    Corrupt(&'static str),
    #[error("perf payload version {0} is not the one this lpo reads (2)")]
    Version(u8),
}

fn bad(what: &'static str) -> PerfCodecError {
    PerfCodecError::Corrupt(what)
}

/// One frame of a call stack, as the recorder resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Kernel address, or for user frames the address relative to the
    /// mapped file (file offset), what `perf script` prints.
    pub addr: u64,
    /// Symbol name and the offset of `addr` inside it, when known.
    pub sym: Option<(String, u64)>,
    /// `[kernel.kallsyms]`, `[module]`, a file path, or `[unknown]`.
    pub dso: String,
    pub kernel: bool,
}

/// A sample to encode. `stack` is leaf first (the sampled IP first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// CLOCK_BOOTTIME ns.
    pub time_ns: i64,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub cpu: u32,
    pub period: u64,
    pub stack: Vec<Frame>,
}

/// A dictionary whose new entries can be taken back (a payload that the
/// ring did not store must not leave definitions behind).
#[derive(Debug)]
struct Interner<K: Hash + Eq + Clone> {
    map: HashMap<K, u32>,
    keys: Vec<K>,
    committed: usize,
}

impl<K: Hash + Eq + Clone> Default for Interner<K> {
    fn default() -> Self {
        Interner {
            map: HashMap::new(),
            keys: Vec::new(),
            committed: 0,
        }
    }
}

impl<K: Hash + Eq + Clone> Interner<K> {
    /// (id, new?)
    fn get(&mut self, k: &K) -> (u32, bool) {
        if let Some(&id) = self.map.get(k) {
            return (id, false);
        }
        let id = self.keys.len() as u32;
        self.map.insert(k.clone(), id);
        self.keys.push(k.clone());
        (id, true)
    }
    fn clear(&mut self) {
        self.map.clear();
        self.keys.clear();
        self.committed = 0;
    }
    fn commit(&mut self) {
        self.committed = self.keys.len();
    }
    fn rollback(&mut self) {
        for k in self.keys.drain(self.committed..) {
            self.map.remove(&k);
        }
    }
    fn fresh_since_commit(&self) -> &[K] {
        &self.keys[self.committed..]
    }
}

/// (dso << 1 | kernel, name, start)
type SymKey = (u32, u32, u64);
/// (symbol id + 1, offset) for a symbolized frame, else (0, address) and
/// `raw` = dso << 1 | kernel.
type FrameKey = (u32, u64, u32);

/// Encodes drains into payloads, keeping the per-block dictionaries.
#[derive(Debug, Default)]
pub struct Encoder {
    strings: Interner<String>,
    syms: Interner<SymKey>,
    frames: Interner<FrameKey>,
    nodes: Interner<(u32, u32)>,
    procs: Interner<(u32, u32)>,
    threads: Interner<(u32, u32)>,
    /// Per-CPU time of the previous sample (µs), for the time column.
    stack_ids: Vec<u32>,
    thread_ids: Vec<u32>,
    /// Where each section of the last payload starts (for measurements).
    #[cfg(test)]
    sections: Vec<usize>,
}

fn zz(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzz(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// An id coded as z(id − previous − 1), checked against `len`.
fn rel(c: &mut Cursor, prev: i64, len: usize) -> Option<u32> {
    let id = prev.checked_add(unzz(c.u64()?))?.checked_add(1)?;
    (0..len as i64).contains(&id).then_some(id as u32)
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    fn str_id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.strings.map.get(s) {
            return id;
        }
        self.strings.get(&s.to_string()).0
    }

    /// Encode one drain. `fresh`: this payload starts a block (forget the
    /// dictionaries). `mono`: the log sample's CLOCK_BOOTTIME ns. Samples
    /// should be in time order (any order encodes, sorted is smaller).
    /// Call [`Encoder::commit`] once the ring stored the payload, or
    /// [`Encoder::rollback`] if it did not.
    pub fn encode(
        &mut self,
        fresh: bool,
        mono: i64,
        event: &str,
        lost: u64,
        samples: &[Sample],
        out: &mut Vec<u8>,
    ) {
        if fresh {
            self.strings.clear();
            self.syms.clear();
            self.frames.clear();
            self.nodes.clear();
            self.procs.clear();
            self.threads.clear();
        } else {
            // A previous attempt of the same payload may have been cut short.
            self.rollback();
        }
        let mut stack_ids = std::mem::take(&mut self.stack_ids);
        let mut thread_ids = std::mem::take(&mut self.thread_ids);
        stack_ids.clear();
        thread_ids.clear();
        let event_id = self.str_id(event);
        for s in samples {
            let comm = self.str_id(&s.comm);
            let proc = self.procs.get(&(s.pid, comm)).0;
            thread_ids.push(self.threads.get(&(proc, s.tid)).0);
            // Nodes go from the outermost caller to the leaf.
            let mut parent = 0u32;
            for f in s.stack.iter().rev().take(MAX_DEPTH) {
                let dso = self.str_id(&f.dso) << 1 | u32::from(f.kernel);
                let key = match &f.sym {
                    Some((n, off)) => {
                        let name = self.str_id(n);
                        let start = f.addr.wrapping_sub(*off);
                        (self.syms.get(&(dso, name, start)).0 + 1, *off, 0)
                    }
                    None => (0, f.addr, dso),
                };
                let fid = self.frames.get(&key).0;
                parent = self.nodes.get(&(parent, fid)).0 + 1;
            }
            stack_ids.push(parent);
        }
        #[cfg(test)]
        {
            self.sections.clear();
            self.sections.push(out.len());
        }
        out.push(PAYLOAD_VERSION);
        put_u64(out, lost);
        let strs = self.strings.fresh_since_commit();
        put_u64(out, strs.len() as u64);
        for s in strs {
            put_u64(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        // Symbols: starts delta-coded against the previous symbol of the
        // same kind (kernel or user) in the block.
        let mut prev = [0u64; 2];
        for (dso, _, start) in &self.syms.keys[..self.syms.committed] {
            prev[(dso & 1) as usize] = *start;
        }
        let mut prev_name = self.syms.keys[..self.syms.committed]
            .last()
            .map_or(-1, |s| i64::from(s.1));
        let syms = self.syms.fresh_since_commit();
        #[cfg(test)]
        self.sections.push(out.len());
        put_u64(out, syms.len() as u64);
        for (dso, name, start) in syms {
            put_u64(out, u64::from(*dso));
            put_u64(out, zz(i64::from(*name) - prev_name - 1));
            prev_name = i64::from(*name);
            let p = &mut prev[(dso & 1) as usize];
            put_u64(out, zz(start.wrapping_sub(*p) as i64));
            *p = *start;
        }
        let mut prev_sym = self.frames.keys[..self.frames.committed]
            .iter()
            .rev()
            .find(|f| f.0 != 0)
            .map_or(0, |f| i64::from(f.0));
        let frames = self.frames.fresh_since_commit();
        #[cfg(test)]
        self.sections.push(out.len());
        put_u64(out, frames.len() as u64);
        for (sym, v, dso) in frames {
            // 0: no symbol (dso and address follow), else 1 + z(symbol − the
            // previous frame's symbol − 1), then the offset in the symbol.
            if *sym == 0 {
                put_u64(out, 0);
                put_u64(out, u64::from(*dso));
            } else {
                put_u64(out, 1 + zz(i64::from(*sym) - prev_sym - 1));
                prev_sym = i64::from(*sym);
            }
            put_u64(out, *v);
        }
        let base = self.nodes.committed as u64;
        let mut prev_frame = self.nodes.keys[..self.nodes.committed]
            .last()
            .map_or(-1, |n| i64::from(n.1));
        let nodes = self.nodes.fresh_since_commit();
        #[cfg(test)]
        self.sections.push(out.len());
        put_u64(out, nodes.len() as u64);
        for (i, (parent, frame)) in nodes.iter().enumerate() {
            // 0: no parent, else how many nodes back the parent is.
            let id = base + i as u64;
            put_u64(
                out,
                if *parent == 0 {
                    0
                } else {
                    id + 1 - u64::from(*parent)
                },
            );
            put_u64(out, zz(i64::from(*frame) - prev_frame - 1));
            prev_frame = i64::from(*frame);
        }
        let mut prev_pid = self.procs.keys[..self.procs.committed]
            .last()
            .map_or(0, |p| p.0);
        let procs = self.procs.fresh_since_commit();
        #[cfg(test)]
        self.sections.push(out.len());
        put_u64(out, procs.len() as u64);
        for (pid, comm) in procs {
            put_u64(out, zz(i64::from(*pid) - i64::from(prev_pid)));
            put_u64(out, u64::from(*comm));
            prev_pid = *pid;
        }
        let n_procs = self.procs.keys.len() as u64;
        let threads = self.threads.fresh_since_commit();
        put_u64(out, threads.len() as u64);
        for (proc, tid) in threads {
            // Process as a distance back from the newest; tid against its pid.
            put_u64(out, n_procs - 1 - u64::from(*proc));
            let pid = self.procs.keys[*proc as usize].0;
            put_u64(out, zz(i64::from(*tid) - i64::from(pid)));
        }
        #[cfg(test)]
        self.sections.push(out.len());
        put_u64(out, u64::from(event_id));
        put_u64(out, samples.len() as u64);
        for s in samples {
            put_u64(out, u64::from(s.cpu));
        }
        let mut prev = 0i64;
        for s in samples {
            put_i64(out, (s.period as i64).wrapping_sub(prev));
            prev = s.period as i64;
        }
        // Time (µs): against the same CPU's previous sample in this payload
        // plus this sample's period (a cpu-clock sample comes one period
        // after the last), else against the previous sample (the first
        // against mono).
        let mut last: Vec<(u32, i64)> = Vec::new();
        let mut prev = mono / 1000;
        for s in samples {
            let t = s.time_ns / 1000;
            let pred = match last.iter_mut().find(|l| l.0 == s.cpu) {
                Some(l) => {
                    let p = l.1.wrapping_add((s.period / 1000) as i64);
                    l.1 = t;
                    p
                }
                None => {
                    last.push((s.cpu, t));
                    prev
                }
            };
            put_i64(out, t.wrapping_sub(pred));
            prev = t;
        }
        // Threads and stacks: z(id − the highest id so far in the block),
        // so that new ones (defined by this payload, in sample order) are
        // small positive numbers.
        let mut hi = self.threads.committed as i64;
        for t in &thread_ids {
            put_i64(out, i64::from(*t) - hi);
            hi = hi.max(i64::from(*t));
        }
        let mut hi = self.nodes.committed as i64;
        for n in &stack_ids {
            put_i64(out, i64::from(*n) - hi);
            hi = hi.max(i64::from(*n));
        }
        self.stack_ids = stack_ids;
        self.thread_ids = thread_ids;
    }

    /// The last encoded payload was stored: keep its definitions.
    pub fn commit(&mut self) {
        self.strings.commit();
        self.syms.commit();
        self.frames.commit();
        self.nodes.commit();
        self.procs.commit();
        self.threads.commit();
    }

    /// The last encoded payload was not stored: forget its definitions.
    pub fn rollback(&mut self) {
        self.strings.rollback();
        self.syms.rollback();
        self.frames.rollback();
        self.nodes.rollback();
        self.procs.rollback();
        self.threads.rollback();
    }
}

/// A frame as decoded: names are ids into [`Decoder::strings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameDef {
    pub addr: u64,
    pub sym: Option<(u32, u64)>,
    pub dso: u32,
    pub kernel: bool,
    /// The symbol's id in the block (frames of one symbol share it).
    pub sym_id: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadDef {
    pub pid: u32,
    pub tid: u32,
    pub comm: u32,
}

/// A decoded sample; `thread` and `stack` are ids into the decoder's tables
/// (stack 0 = none, else leaf node id + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedSample {
    pub time_ns: i64,
    pub thread: u32,
    pub cpu: u32,
    pub stack: u32,
    pub period: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    pub lost: u64,
    /// String id of the event name.
    pub event: u32,
    pub samples: Vec<DecodedSample>,
}

/// Decodes the payloads of one block, in order. Call [`Decoder::reset`]
/// (or make a new one) at every block.
#[derive(Debug, Default)]
pub struct Decoder {
    pub strings: Vec<String>,
    pub frames: Vec<FrameDef>,
    /// (parent: 0 or node id + 1, frame id)
    pub nodes: Vec<(u32, u32)>,
    pub threads: Vec<ThreadDef>,
    /// (dso string id << 1 | kernel, name string id, start address)
    syms: Vec<(u32, u32, u64)>,
    /// (pid, comm string id)
    procs: Vec<(u32, u32)>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }
    pub fn reset(&mut self) {
        *self = Decoder::default();
    }

    fn str_id(&self, c: &mut Cursor) -> Result<u32, PerfCodecError> {
        let v = c.len(u32::MAX as usize).ok_or(bad("truncated"))?;
        if v >= self.strings.len() {
            return Err(bad("string id out of range"));
        }
        Ok(v as u32)
    }

    /// Decode one payload; `mono` is the log sample's CLOCK_BOOTTIME ns.
    /// On error the decoder may hold a partial definition set: reset it.
    pub fn decode(&mut self, payload: &[u8], mono: i64) -> Result<Decoded, PerfCodecError> {
        let t = bad("truncated");
        let mut c = Cursor::new(payload);
        let v = c.u8().ok_or(t.clone())?;
        if v != PAYLOAD_VERSION {
            return Err(PerfCodecError::Version(v));
        }
        let lost = c.u64().ok_or(t.clone())?;
        // Table sizes before this payload.
        let committed = (self.threads.len(), self.nodes.len());
        let n = c.len(MAX_STRINGS).ok_or(bad("string count"))?;
        if self.strings.len() + n > MAX_STRINGS {
            return Err(bad("too many strings"));
        }
        for _ in 0..n {
            let l = c.len(MAX_STRING_LEN).ok_or(bad("string length"))?;
            let b = c.bytes(l).ok_or(t.clone())?;
            self.strings.push(String::from_utf8_lossy(b).into_owned());
        }
        let n = c.len(MAX_SYMS).ok_or(bad("symbol count"))?;
        if self.syms.len() + n > MAX_SYMS {
            return Err(bad("too many symbols"));
        }
        let mut prev = [0u64; 2];
        for &(dso, _, start) in &self.syms {
            prev[(dso & 1) as usize] = start;
        }
        let mut prev_name = self.syms.last().map_or(-1, |s| i64::from(s.1));
        for _ in 0..n {
            let dso = c.len(u32::MAX as usize).ok_or(t.clone())? as u32;
            if (dso >> 1) as usize >= self.strings.len() {
                return Err(bad("string id out of range"));
            }
            let name = rel(&mut c, prev_name, self.strings.len()).ok_or(bad("symbol name"))?;
            prev_name = i64::from(name);
            let d = c.i64().ok_or(t.clone())?;
            let p = &mut prev[(dso & 1) as usize];
            *p = p.wrapping_add(d as u64);
            self.syms.push((dso, name, *p));
        }
        let n = c.len(MAX_FRAMES).ok_or(bad("frame count"))?;
        if self.frames.len() + n > MAX_FRAMES {
            return Err(bad("too many frames"));
        }
        let mut prev_sym = self
            .frames
            .iter()
            .rev()
            .find_map(|f| f.sym_id)
            .map_or(0, |s| i64::from(s) + 1);
        for _ in 0..n {
            let v = c.u64().ok_or(t.clone())?;
            let f = if v == 0 {
                let dso = c.len(u32::MAX as usize).ok_or(t.clone())? as u32;
                if (dso >> 1) as usize >= self.strings.len() {
                    return Err(bad("string id out of range"));
                }
                FrameDef {
                    addr: c.u64().ok_or(t.clone())?,
                    sym: None,
                    dso: dso >> 1,
                    kernel: dso & 1 != 0,
                    sym_id: None,
                }
            } else {
                let sym = prev_sym
                    .checked_add(unzz(v - 1))
                    .and_then(|x| x.checked_add(1))
                    .filter(|&x| x >= 1 && x <= self.syms.len() as i64)
                    .ok_or(bad("frame symbol"))?;
                prev_sym = sym;
                let (dso, name, start) = self.syms[sym as usize - 1];
                let off = c.u64().ok_or(t.clone())?;
                FrameDef {
                    addr: start.wrapping_add(off),
                    sym: Some((name, off)),
                    dso: dso >> 1,
                    kernel: dso & 1 != 0,
                    sym_id: Some(sym as u32 - 1),
                }
            };
            self.frames.push(f);
        }
        let n = c.len(MAX_NODES).ok_or(bad("node count"))?;
        if self.nodes.len() + n > MAX_NODES {
            return Err(bad("too many nodes"));
        }
        let mut prev_frame = self.nodes.last().map_or(-1, |n| i64::from(n.1));
        for _ in 0..n {
            let id = self.nodes.len();
            let back = c.len(id).ok_or(bad("node parent"))?;
            let parent = if back == 0 { 0 } else { id + 1 - back };
            let frame = rel(&mut c, prev_frame, self.frames.len()).ok_or(bad("node frame"))?;
            prev_frame = i64::from(frame);
            self.nodes.push((parent as u32, frame));
        }
        let n = c.len(MAX_THREADS).ok_or(bad("process count"))?;
        if self.procs.len() + n > MAX_THREADS {
            return Err(bad("too many processes"));
        }
        let mut pid = self.procs.last().map_or(0, |p| p.0);
        for _ in 0..n {
            let d = c.i64().ok_or(t.clone())?;
            let p = i64::from(pid)
                .checked_add(d)
                .filter(|p| (0..=u32::MAX as i64).contains(p))
                .ok_or(bad("pid out of range"))?;
            pid = p as u32;
            let comm = self.str_id(&mut c)?;
            self.procs.push((pid, comm));
        }
        let n = c.len(MAX_THREADS).ok_or(bad("thread count"))?;
        if self.threads.len() + n > MAX_THREADS {
            return Err(bad("too many threads"));
        }
        for _ in 0..n {
            let back = c
                .len(self.procs.len().saturating_sub(1))
                .ok_or(bad("thread process"))?;
            let Some(&(pid, comm)) = self.procs.get(self.procs.len().wrapping_sub(1 + back)) else {
                return Err(bad("thread process"));
            };
            let tid = c.i64().ok_or(t.clone())?;
            let tid = i64::from(pid)
                .checked_add(tid)
                .filter(|t| (0..=u32::MAX as i64).contains(t))
                .ok_or(bad("tid out of range"))?;
            self.threads.push(ThreadDef {
                pid,
                tid: tid as u32,
                comm,
            });
        }
        let event = self.str_id(&mut c)?;
        // Every sample takes at least 5 bytes (one per column).
        let n = c
            .len(MAX_SAMPLES.min(c.remaining() / 5))
            .ok_or(bad("sample count"))?;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            samples.push(DecodedSample {
                time_ns: 0,
                thread: 0,
                cpu: c.len(u32::MAX as usize).ok_or(bad("cpu"))? as u32,
                stack: 0,
                period: 0,
            });
        }
        let mut prev = 0i64;
        for s in samples.iter_mut() {
            prev = prev.wrapping_add(c.i64().ok_or(t.clone())?);
            s.period = prev as u64;
        }
        let mut last: Vec<(u32, i64)> = Vec::new();
        let mut prev = mono / 1000;
        for s in samples.iter_mut() {
            let d = c.i64().ok_or(t.clone())?;
            let tm = match last.iter_mut().find(|l| l.0 == s.cpu) {
                Some(l) => {
                    let tm = l.1.wrapping_add((s.period / 1000) as i64).wrapping_add(d);
                    l.1 = tm;
                    tm
                }
                None => {
                    let tm = prev.wrapping_add(d);
                    last.push((s.cpu, tm));
                    tm
                }
            };
            prev = tm;
            s.time_ns = tm.saturating_mul(1000);
        }
        let mut hi = committed.0 as i64;
        for s in samples.iter_mut() {
            let th = hi
                .checked_add(c.i64().ok_or(t.clone())?)
                .filter(|&x| (0..self.threads.len() as i64).contains(&x))
                .ok_or(bad("thread id out of range"))?;
            hi = hi.max(th);
            s.thread = th as u32;
        }
        let mut hi = committed.1 as i64;
        for s in samples.iter_mut() {
            let st = hi
                .checked_add(c.i64().ok_or(t.clone())?)
                .filter(|&x| (0..=self.nodes.len() as i64).contains(&x))
                .ok_or(bad("stack id out of range"))?;
            hi = hi.max(st);
            s.stack = st as u32;
        }
        if c.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        Ok(Decoded {
            lost,
            event,
            samples,
        })
    }

    /// Frame ids of a stack, leaf first. Parents always precede their
    /// children (checked at decode), so the walk ends.
    pub fn stack(&self, stack: u32, out: &mut Vec<u32>) {
        out.clear();
        let mut n = stack as usize;
        while n > 0 && out.len() < MAX_DEPTH {
            let Some(&(parent, frame)) = self.nodes.get(n - 1) else {
                break;
            };
            out.push(frame);
            n = parent as usize;
        }
    }

    pub fn string(&self, id: u32) -> &str {
        self.strings
            .get(id as usize)
            .map(|s| s.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(addr: u64, sym: &str, dso: &str, kernel: bool) -> Frame {
        Frame {
            addr,
            sym: (!sym.is_empty()).then(|| (sym.to_string(), addr & 0xff)),
            dso: dso.into(),
            kernel,
        }
    }

    /// A busy-looking minute: a few hot stacks, many threads, idle.
    fn workload(n: usize, seed: u64) -> Vec<Sample> {
        let mut x = seed | 1;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let idle = vec![
            frame(
                0xffffffff821f4dab,
                "pv_native_safe_halt",
                "[kernel.kallsyms]",
                true,
            ),
            frame(
                0xffffffff821f68b5,
                "default_idle",
                "[kernel.kallsyms]",
                true,
            ),
            frame(0xffffffff813c59a6, "do_idle", "[kernel.kallsyms]", true),
            frame(
                0xffffffff813c5ca5,
                "cpu_startup_entry",
                "[kernel.kallsyms]",
                true,
            ),
        ];
        let mut out = Vec::new();
        let mut t = 10_000_000_000i64;
        for i in 0..n {
            t += 10_204_081 + (rnd() % 2000) as i64;
            let cpu = (i % 2) as u32;
            let (pid, comm, stack) = match rnd() % 4 {
                0 => (0, "swapper", idle.clone()),
                1 => {
                    let leaf = 0x1130 + (rnd() % 40);
                    (
                        4242,
                        "hot",
                        vec![
                            frame(leaf, "lpo_test_hot_spin", "/tmp/hot", false),
                            frame(0x1180, "caller_of_hot", "/tmp/hot", false),
                            frame(0x1200, "main", "/tmp/hot", false),
                            frame(
                                0x29d90,
                                "__libc_start_call_main",
                                "/usr/lib/libc.so.6",
                                false,
                            ),
                        ],
                    )
                }
                2 => {
                    let k = rnd() % 6;
                    let mut st = vec![frame(
                        0xffffffff81000000 + k * 0x40,
                        &format!("ksym{k}"),
                        "[kernel.kallsyms]",
                        true,
                    )];
                    st.push(frame(
                        0xffffffff82000000,
                        "entry_SYSCALL_64",
                        "[kernel.kallsyms]",
                        true,
                    ));
                    st.push(frame(0x11c0 + (rnd() % 3), "", "/tmp/sys", false));
                    (5000 + (rnd() % 30) as u32, "sys", st)
                }
                _ => (
                    7000 + (rnd() % 200) as u32,
                    "misc",
                    vec![frame(rnd() % 0x100000, "", "/usr/bin/x", false)],
                ),
            };
            out.push(Sample {
                time_ns: t,
                pid,
                tid: pid,
                comm: comm.into(),
                cpu,
                period: 20_408_163,
                stack,
            });
        }
        out
    }

    fn roundtrip_block(drains: &[Vec<Sample>]) -> (usize, Vec<Vec<Sample>>) {
        let mut enc = Encoder::new();
        let mut payloads = Vec::new();
        for (i, d) in drains.iter().enumerate() {
            let mut p = Vec::new();
            let mono = d.first().map(|s| s.time_ns).unwrap_or(0) + 500_000_000;
            enc.encode(i == 0, mono, "cpu-clock", i as u64, d, &mut p);
            enc.commit();
            payloads.push((mono, p));
        }
        let raw: Vec<u8> = payloads.iter().flat_map(|p| p.1.iter().copied()).collect();
        let z = zstd::bulk::compress(&raw, 3).unwrap();
        let mut dec = Decoder::new();
        let mut back = Vec::new();
        let mut fr = Vec::new();
        for (i, (mono, p)) in payloads.iter().enumerate() {
            let d = dec.decode(p, *mono).unwrap();
            assert_eq!(d.lost, i as u64);
            assert_eq!(dec.string(d.event), "cpu-clock");
            back.push(
                d.samples
                    .iter()
                    .map(|s| {
                        let th = dec.threads[s.thread as usize];
                        dec.stack(s.stack, &mut fr);
                        Sample {
                            time_ns: s.time_ns,
                            pid: th.pid,
                            tid: th.tid,
                            comm: dec.string(th.comm).into(),
                            cpu: s.cpu,
                            period: s.period,
                            stack: fr
                                .iter()
                                .map(|&f| {
                                    let f = dec.frames[f as usize];
                                    Frame {
                                        addr: f.addr,
                                        sym: f.sym.map(|(n, o)| (dec.string(n).into(), o)),
                                        dso: dec.string(f.dso).into(),
                                        kernel: f.kernel,
                                    }
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            );
        }
        (z.len(), back)
    }

    #[test]
    fn roundtrip_and_bytes_per_sample() {
        let all = workload(98 * 60, 7);
        let drains: Vec<Vec<Sample>> = all.chunks(98).map(|c| c.to_vec()).collect();
        let (zlen, back) = roundtrip_block(&drains);
        for (d, b) in drains.iter().zip(&back) {
            assert_eq!(d.len(), b.len());
            for (x, y) in d.iter().zip(b) {
                // Times are kept to the microsecond.
                assert_eq!(x.time_ns / 1000 * 1000, y.time_ns);
                let mut y = y.clone();
                y.time_ns = x.time_ns;
                assert_eq!(x, &y);
            }
        }
        let per = zlen as f64 / all.len() as f64;
        eprintln!(
            "perf payload: {per:.2} bytes per sample after zstd ({} samples)",
            all.len()
        );
        assert!(per <= 16.0, "{per} bytes per sample");
    }

    #[test]
    fn rollback_forgets_definitions() {
        let d = workload(50, 3);
        let mut enc = Encoder::new();
        let mut p1 = Vec::new();
        enc.encode(true, 0, "cpu-clock", 0, &d[..10], &mut p1);
        enc.commit();
        let mut lost = Vec::new();
        enc.encode(false, 0, "cpu-clock", 0, &d[10..30], &mut lost);
        enc.rollback();
        let mut p2 = Vec::new();
        enc.encode(false, 0, "cpu-clock", 0, &d[30..], &mut p2);
        enc.commit();
        let mut dec = Decoder::new();
        dec.decode(&p1, 0).unwrap();
        let b = dec.decode(&p2, 0).unwrap();
        assert_eq!(b.samples.len(), 20);
        // Re-encoding the same payload without an explicit rollback also works.
        let mut p3 = Vec::new();
        enc.encode(false, 0, "cpu-clock", 0, &d[..30], &mut p3);
        let mut p3b = Vec::new();
        enc.encode(false, 0, "cpu-clock", 0, &d[..30], &mut p3b);
        assert_eq!(p3, p3b);
    }

    #[test]
    fn hostile_payloads_never_panic() {
        let d = workload(300, 11);
        let mut enc = Encoder::new();
        let mut p = Vec::new();
        enc.encode(true, 5_000_000_000, "cpu-clock", 3, &d, &mut p);
        // Every truncation fails cleanly.
        for n in 0..p.len() {
            assert!(
                Decoder::new().decode(&p[..n], 0).is_err(),
                "truncated at {n}"
            );
        }
        // Bit flips and random bytes: errors or garbage, never a panic or a hang.
        let mut x = 0x9e3779b97f4a7c15u64;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut q = p.clone();
            let at = (x as usize) % q.len();
            q[at] ^= 1 << (x >> 60 & 7);
            if i % 3 == 0 {
                let at2 = (x >> 20) as usize % q.len();
                q[at2] = (x >> 40) as u8;
            }
            let mut dec = Decoder::new();
            if let Ok(dd) = dec.decode(&q, 0) {
                let mut fr = Vec::new();
                for s in &dd.samples {
                    dec.stack(s.stack, &mut fr);
                    for f in &fr {
                        let _ = dec.frames[*f as usize];
                    }
                }
            }
        }
        let mut junk = vec![1u8];
        junk.extend(std::iter::repeat_n(0xff, 64));
        assert!(Decoder::new().decode(&junk, 0).is_err());
        assert_eq!(
            Decoder::new().decode(&[9], 0),
            Err(PerfCodecError::Version(9))
        );
    }

    #[test]
    fn empty_drain() {
        let mut enc = Encoder::new();
        let mut p = Vec::new();
        enc.encode(true, 1, "cycles", 7, &[], &mut p);
        let mut dec = Decoder::new();
        let d = dec.decode(&p, 1).unwrap();
        assert_eq!((d.lost, d.samples.len()), (7, 0));
        assert_eq!(dec.string(d.event), "cycles");
    }

    /// Blocks of drains: (mono, lost, samples) per drain.
    type Dump = Vec<Vec<(i64, u64, Vec<Sample>)>>;

    fn read_dump(path: &str) -> Dump {
        let text = std::fs::read_to_string(path).unwrap();
        let mut out: Dump = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split('\t').collect();
            match f[0] {
                "B" => out.push(Vec::new()),
                "D" => out.last_mut().unwrap().push((
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    Vec::new(),
                )),
                "S" => out.last_mut().unwrap().last_mut().unwrap().2.push(Sample {
                    time_ns: f[1].parse().unwrap(),
                    pid: f[2].parse().unwrap(),
                    tid: f[3].parse().unwrap(),
                    cpu: f[4].parse().unwrap(),
                    period: f[5].parse().unwrap(),
                    comm: f[6].into(),
                    stack: Vec::new(),
                }),
                "F" => {
                    let s = out.last_mut().unwrap().last_mut().unwrap();
                    s.2.last_mut().unwrap().stack.push(Frame {
                        kernel: f[1] == "1",
                        addr: f[2].parse().unwrap(),
                        sym: (f[3] != "-").then(|| (f[5].to_string(), f[3].parse().unwrap())),
                        dso: f[4].into(),
                    })
                }
                _ => panic!("dump line {l}"),
            }
        }
        out
    }

    /// Re-encode a dump (`LPO_PERF_DUMP`) block by block; print zstd bytes
    /// per sample. `cargo test -p lpo-format --release perf::tests::reencode -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn reencode_dump() {
        let Ok(path) = std::env::var("LPO_PERF_DUMP") else {
            return;
        };
        let mut dump = read_dump(&path);
        if std::env::var("LPO_PERF_CUT").is_ok() {
            for b in &mut dump {
                for d in b.iter_mut() {
                    for s in d.2.iter_mut() {
                        // Leaf first: keep up to and including the first unmapped user frame.
                        if let Some(i) = s
                            .stack
                            .iter()
                            .position(|f| !f.kernel && f.dso == "[unknown]")
                        {
                            s.stack.truncate(i + 1);
                        }
                    }
                }
            }
        }
        let (mut raw_total, mut z_total, mut n_total) = (0, 0, 0);
        for block in &dump {
            let mut enc = Encoder::new();
            let mut raw = Vec::new();
            let mut dec = Decoder::new();
            let mut secs = vec![Vec::new(); 6];
            for (i, (mono, lost, d)) in block.iter().enumerate() {
                let mut p = Vec::new();
                enc.encode(i == 0, *mono, "cpu-clock", *lost, d, &mut p);
                enc.commit();
                let mut b = enc.sections.clone();
                b.push(p.len());
                for k in 0..6 {
                    secs[k].extend_from_slice(&p[b[k]..b[k + 1]]);
                }
                let dd = dec.decode(&p, *mono).unwrap();
                assert_eq!(dd.samples.len(), d.len());
                raw.extend_from_slice(&p);
                n_total += d.len();
            }
            eprintln!(
                "block: {} strings ({} bytes), {} syms, {} frames, {} nodes, {} procs, {} threads",
                enc.strings.keys.len(),
                enc.strings.keys.iter().map(|s| s.len()).sum::<usize>(),
                enc.syms.keys.len(),
                enc.frames.keys.len(),
                enc.nodes.keys.len(),
                enc.procs.keys.len(),
                enc.threads.keys.len()
            );
            for (k, name) in ["strings", "syms", "frames", "nodes", "threads", "samples"]
                .iter()
                .enumerate()
            {
                eprintln!(
                    "{name}: raw {} zstd {}",
                    secs[k].len(),
                    zstd::bulk::compress(&secs[k], 9).unwrap().len()
                );
            }
            let mut sb = Vec::new();
            for st in &enc.strings.keys {
                put_u64(&mut sb, st.len() as u64);
                sb.extend_from_slice(st.as_bytes());
            }
            eprintln!(
                "strings zstd {} B",
                zstd::bulk::compress(&sb, 3).unwrap().len()
            );
            raw_total += raw.len();
            z_total += zstd::bulk::compress(&raw, 9).unwrap().len();
        }
        eprintln!(
            "{n_total} samples: raw {:.1} B/sample, zstd {:.1} B/sample",
            raw_total as f64 / n_total as f64,
            z_total as f64 / n_total as f64
        );
    }

    /// Dump the perf stream of a ring (`LPO_PERF_RING`) to `LPO_PERF_DUMP`
    /// as text, for [`reencode_dump`].
    #[test]
    #[ignore]
    fn dump_ring() {
        use std::fmt::Write;
        let (Ok(ring), Ok(path)) = (
            std::env::var("LPO_PERF_RING"),
            std::env::var("LPO_PERF_DUMP"),
        ) else {
            return;
        };
        let r = crate::RingReader::open(std::path::Path::new(&ring)).unwrap();
        let i = r.stream("perf").unwrap();
        let mut out = String::new();
        let mut fr = Vec::new();
        for b in r.batches(i, i64::MIN, i64::MAX, &mut |e| panic!("{e}")) {
            let crate::Batch::Log(b) = b else { continue };
            out.push_str("B\n");
            let mut dec = Decoder::new();
            for ls in &b.samples {
                let d = dec.decode(&ls.payload, ls.mono).unwrap();
                writeln!(out, "D\t{}\t{}", ls.mono, d.lost).unwrap();
                for s in &d.samples {
                    let th = dec.threads[s.thread as usize];
                    writeln!(
                        out,
                        "S\t{}\t{}\t{}\t{}\t{}\t{}",
                        s.time_ns,
                        th.pid,
                        th.tid,
                        s.cpu,
                        s.period,
                        dec.string(th.comm)
                    )
                    .unwrap();
                    dec.stack(s.stack, &mut fr);
                    for &f in &fr {
                        let f = dec.frames[f as usize];
                        let (off, name) = match f.sym {
                            Some((n, o)) => (o.to_string(), dec.string(n)),
                            None => ("-".to_string(), ""),
                        };
                        writeln!(
                            out,
                            "F\t{}\t{}\t{}\t{}\t{}",
                            u8::from(f.kernel),
                            f.addr,
                            off,
                            dec.string(f.dso),
                            name
                        )
                        .unwrap();
                    }
                }
            }
        }
        std::fs::write(path, out).unwrap();
    }
}
