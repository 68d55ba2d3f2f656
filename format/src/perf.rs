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
//! Layout (all integers LEB128 varints; `z` marks zigzag; see
//! spec/STREAMS.md, "perf"):
//!
//! ```text
//! u8 version (1)
//! lost                          samples the kernel dropped since the previous drain
//! n_str,     n × (len, bytes)   new strings, ids continue the block's table
//! n_frame,   n × frame          new frames
//!   frame: flags (bit0 kernel, bit1 symbolized), dso str, [sym str, offset], addr
//! n_node,    n × (parent, frame)  new stack nodes; parent 0 = outermost caller,
//!                               else node id + 1 (must be an earlier node)
//! n_thread,  n × (pid, tid, comm str)
//! event str                     e.g. "cpu-clock"
//! n_sample, then columns of n values each:
//!   time µs: z(first − mono/1000), then z(deltas)
//!   thread id, cpu, stack (0 = no stack, else leaf node id + 1),
//!   period: z(first), then z(deltas)
//! ```
//!
//! Ids count from 0 in order of definition within a block. The encoder is
//! told by the ring when a payload starts a block (`fresh`) and then forgets
//! every dictionary; the decoder is reset at the start of each block.

use crate::varint::{put_i64, put_u64, Cursor};
use std::collections::HashMap;
use std::hash::Hash;

pub const PAYLOAD_VERSION: u8 = 1;
/// Caps on untrusted input (per block for tables, per payload for samples).
pub const MAX_STRINGS: usize = 1 << 20;
pub const MAX_STRING_LEN: usize = 4096;
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
    #[error("perf payload version {0} is newer than this lpo reads (1)")]
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

type FrameKey = (u64, Option<(u32, u64)>, u32, bool);

/// Encodes drains into payloads, keeping the per-block dictionaries.
#[derive(Debug, Default)]
pub struct Encoder {
    strings: Interner<String>,
    frames: Interner<FrameKey>,
    nodes: Interner<(u32, u32)>,
    threads: Interner<(u32, u32, u32)>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
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
            self.frames.clear();
            self.nodes.clear();
            self.threads.clear();
        } else {
            // A previous attempt of the same payload may have been cut short.
            self.rollback();
        }
        let mut stack_ids = Vec::with_capacity(samples.len());
        let mut thread_ids = Vec::with_capacity(samples.len());
        let event_id = self.strings.get(&event.to_string()).0;
        for s in samples {
            let comm = self.strings.get(&s.comm).0;
            thread_ids.push(self.threads.get(&(s.pid, s.tid, comm)).0);
            // Nodes go from the outermost caller to the leaf.
            let mut parent = 0u32;
            for f in s.stack.iter().rev().take(MAX_DEPTH) {
                let dso = self.strings.get(&f.dso).0;
                let sym = f.sym.as_ref().map(|(n, off)| (self.strings.get(n).0, *off));
                let fid = self.frames.get(&(f.addr, sym, dso, f.kernel)).0;
                parent = self.nodes.get(&(parent, fid)).0 + 1;
            }
            stack_ids.push(parent);
        }
        out.push(PAYLOAD_VERSION);
        put_u64(out, lost);
        let strs = self.strings.fresh_since_commit();
        put_u64(out, strs.len() as u64);
        for s in strs {
            put_u64(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        let frames = self.frames.fresh_since_commit();
        put_u64(out, frames.len() as u64);
        for (addr, sym, dso, kernel) in frames {
            put_u64(out, u64::from(*kernel) | (u64::from(sym.is_some()) << 1));
            put_u64(out, u64::from(*dso));
            if let Some((name, off)) = sym {
                put_u64(out, u64::from(*name));
                put_u64(out, *off);
            }
            put_u64(out, *addr);
        }
        let nodes = self.nodes.fresh_since_commit();
        put_u64(out, nodes.len() as u64);
        for (parent, frame) in nodes {
            put_u64(out, u64::from(*parent));
            put_u64(out, u64::from(*frame));
        }
        let threads = self.threads.fresh_since_commit();
        put_u64(out, threads.len() as u64);
        for (pid, tid, comm) in threads {
            put_u64(out, u64::from(*pid));
            put_i64(out, i64::from(*tid) - i64::from(*pid));
            put_u64(out, u64::from(*comm));
        }
        put_u64(out, u64::from(event_id));
        put_u64(out, samples.len() as u64);
        let mut prev = mono / 1000;
        for s in samples {
            let t = s.time_ns / 1000;
            put_i64(out, t.wrapping_sub(prev));
            prev = t;
        }
        for t in &thread_ids {
            put_u64(out, u64::from(*t));
        }
        for s in samples {
            put_u64(out, u64::from(s.cpu));
        }
        for n in &stack_ids {
            put_u64(out, u64::from(*n));
        }
        let mut prev = 0i64;
        for s in samples {
            put_i64(out, (s.period as i64).wrapping_sub(prev));
            prev = s.period as i64;
        }
    }

    /// The last encoded payload was stored: keep its definitions.
    pub fn commit(&mut self) {
        self.strings.commit();
        self.frames.commit();
        self.nodes.commit();
        self.threads.commit();
    }

    /// The last encoded payload was not stored: forget its definitions.
    pub fn rollback(&mut self) {
        self.strings.rollback();
        self.frames.rollback();
        self.nodes.rollback();
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
        let n = c.len(MAX_STRINGS).ok_or(bad("string count"))?;
        if self.strings.len() + n > MAX_STRINGS {
            return Err(bad("too many strings"));
        }
        for _ in 0..n {
            let l = c.len(MAX_STRING_LEN).ok_or(bad("string length"))?;
            let b = c.bytes(l).ok_or(t.clone())?;
            self.strings.push(String::from_utf8_lossy(b).into_owned());
        }
        let n = c.len(MAX_FRAMES).ok_or(bad("frame count"))?;
        if self.frames.len() + n > MAX_FRAMES {
            return Err(bad("too many frames"));
        }
        for _ in 0..n {
            let flags = c.u64().ok_or(t.clone())?;
            if flags > 3 {
                return Err(bad("frame flags"));
            }
            let dso = self.str_id(&mut c)?;
            let sym = if flags & 2 != 0 {
                let name = self.str_id(&mut c)?;
                Some((name, c.u64().ok_or(t.clone())?))
            } else {
                None
            };
            let addr = c.u64().ok_or(t.clone())?;
            self.frames.push(FrameDef {
                addr,
                sym,
                dso,
                kernel: flags & 1 != 0,
            });
        }
        let n = c.len(MAX_NODES).ok_or(bad("node count"))?;
        if self.nodes.len() + n > MAX_NODES {
            return Err(bad("too many nodes"));
        }
        for _ in 0..n {
            let parent = c.len(self.nodes.len()).ok_or(bad("node parent"))? as u32;
            let frame = c.len(u32::MAX as usize).ok_or(t.clone())?;
            if frame >= self.frames.len() {
                return Err(bad("node frame out of range"));
            }
            self.nodes.push((parent, frame as u32));
        }
        let n = c.len(MAX_THREADS).ok_or(bad("thread count"))?;
        if self.threads.len() + n > MAX_THREADS {
            return Err(bad("too many threads"));
        }
        for _ in 0..n {
            let pid = c.u64().ok_or(t.clone())?;
            let tid = c.i64().ok_or(t.clone())?;
            let tid = (pid as i64).checked_add(tid).ok_or(bad("tid"))?;
            if pid > u32::MAX as u64 || !(0..=u32::MAX as i64).contains(&tid) {
                return Err(bad("pid or tid out of range"));
            }
            let comm = self.str_id(&mut c)?;
            self.threads.push(ThreadDef {
                pid: pid as u32,
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
        let mut prev = mono / 1000;
        for _ in 0..n {
            prev = prev.wrapping_add(c.i64().ok_or(t.clone())?);
            samples.push(DecodedSample {
                time_ns: prev.saturating_mul(1000),
                thread: 0,
                cpu: 0,
                stack: 0,
                period: 0,
            });
        }
        for s in samples.iter_mut() {
            let th = c.len(u32::MAX as usize).ok_or(t.clone())?;
            if th >= self.threads.len() {
                return Err(bad("thread id out of range"));
            }
            s.thread = th as u32;
        }
        for s in samples.iter_mut() {
            s.cpu = c.len(u32::MAX as usize).ok_or(bad("cpu"))? as u32;
        }
        for s in samples.iter_mut() {
            s.stack = c.len(self.nodes.len()).ok_or(bad("stack id"))? as u32;
        }
        let mut prev = 0i64;
        for s in samples.iter_mut() {
            prev = prev.wrapping_add(c.i64().ok_or(t.clone())?);
            s.period = prev as u64;
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
}
