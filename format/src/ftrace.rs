//! The payload of the `ftrace` stream (a log-codec stream): the kernel
//! trace events read since the previous sample, columnar, with timestamps
//! delta-encoded and strings interned in a per-block dictionary.
//!
//! This module is pure data code shared by the recorder (which fills a
//! [`Drain`] from tracefs and encodes it with a [`BlockEncoder`]) and replay
//! (which walks a block's samples in order with one [`BlockDecoder`]).
//! Every count and length read from a payload is checked; hostile bytes give
//! an [`FtraceError`], never a panic.
//!
//! Payload (spec/STREAMS.md, "ftrace"):
//!
//! ```text
//! u8 version (1)
//! varint n_formats   new event formats: varint id, str system, str name,
//!                    varint n_fields, per field: str name, str type, u8 kind, varint size
//! varint n_strings   new dictionary strings: str (ids continue the block's dictionary)
//! varint n_loss      per entry: varint cpu, varint missed, varint overrun, varint dropped
//! varint n_events
//! columns, n_events values each: cpu (varint), ts (zigzag delta, the first
//!   against 0), format (varint block index), common_pid (zigzag),
//!   common_flags (u8), common_preempt_count (u8)
//! then for each block format with events in this sample, in block index
//!   order, for each of its fields, one value per such event in event order:
//!   integers zigzag(value − previous value of that column), strings and
//!   byte arrays a varint dictionary id
//! ```
//!
//! `str` is a varint length and that many bytes.

use crate::varint::{put_i64, put_u64, Cursor};
use std::collections::HashMap;

pub const PAYLOAD_VERSION: u8 = 1;
/// Caps on untrusted input.
pub const MAX_EVENTS: usize = 1 << 22;
pub const MAX_FORMATS: usize = 4096;
pub const MAX_FIELDS: usize = 256;
pub const MAX_STRINGS: usize = 1 << 22;
pub const MAX_STR: usize = 1 << 16;
pub const MAX_NAME: usize = 1024;
pub const MAX_LOSS: usize = 1 << 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FtraceError {
    #[error("ftrace payload: {0}")]
    Corrupt(&'static str),
}

fn bad(what: &'static str) -> FtraceError {
    FtraceError::Corrupt(what)
}

/// How a field's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// An unsigned integer (up to 8 bytes).
    Unsigned = 0,
    /// A signed integer, sign-extended.
    Signed = 1,
    /// A NUL-terminated string (`char x[N]`, `__data_loc char[]`): interned.
    Str = 2,
    /// Any other array: raw bytes, interned.
    Bytes = 3,
}

impl FieldKind {
    fn from_u8(b: u8) -> Option<FieldKind> {
        Some(match b {
            0 => FieldKind::Unsigned,
            1 => FieldKind::Signed,
            2 => FieldKind::Str,
            3 => FieldKind::Bytes,
            _ => return None,
        })
    }
    pub fn is_int(self) -> bool {
        matches!(self, FieldKind::Unsigned | FieldKind::Signed)
    }
}

/// One field of an event, as its `format` file declares it (common fields
/// excluded: they are columns of every event).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldDesc {
    pub name: String,
    /// The C type as written, e.g. `pid_t`, `char[16]`, `__data_loc char[]`.
    pub ctype: String,
    pub kind: FieldKind,
    /// Size in the record (4 for a `__data_loc`).
    pub size: u32,
}

/// An event's format: its tracefs id, group, name and fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventFormat {
    pub id: u32,
    pub system: String,
    pub name: String,
    pub fields: Vec<FieldDesc>,
}

impl EventFormat {
    pub fn field(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// Events lost on one CPU since the previous sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loss {
    pub cpu: u32,
    /// Events the ring-buffer pages reported missing (missed-events flag).
    pub missed: u64,
    /// Events overwritten before they were read (per_cpu stats `overrun`).
    pub overrun: u64,
    /// Events dropped because the buffer was full (stats `dropped events`).
    pub dropped: u64,
}

/// One event as the recorder read it. `vals` indexes `Drain::vals`: one
/// value per field of `formats[fmt]`; integers as their i64 bits, strings
/// and byte arrays as an id into `Drain::strings`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawEvent {
    pub ts: u64,
    pub cpu: u32,
    pub fmt: u32,
    pub pid: i32,
    pub flags: u8,
    pub preempt: u8,
    pub vals: u32,
}

/// The events of one drain, with a drain-local string table.
#[derive(Debug, Default)]
pub struct Drain {
    pub events: Vec<RawEvent>,
    pub vals: Vec<i64>,
    pub strings: Vec<Box<[u8]>>,
    index: HashMap<Box<[u8]>, u32>,
    pub loss: Vec<Loss>,
}

impl Drain {
    pub fn clear(&mut self) {
        self.events.clear();
        self.vals.clear();
        self.strings.clear();
        self.index.clear();
        self.loss.clear();
    }
    /// The drain-local id of `s`.
    pub fn intern(&mut self, s: &[u8]) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.into());
        self.index.insert(s.into(), i);
        i
    }
    /// Sort events by timestamp (stable: per-CPU order is kept on ties).
    pub fn sort(&mut self) {
        self.events.sort_by_key(|e| e.ts);
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Per-block encoder state: which formats and strings the block defined.
#[derive(Debug, Default)]
pub struct BlockEncoder {
    fmt_map: HashMap<u32, u32>,
    n_fmts: u32,
    strings: HashMap<Box<[u8]>, u32>,
    // scratch
    local: Vec<u32>,
    order: Vec<u32>,
}

impl BlockEncoder {
    /// Encode `d` as one payload. `fresh`: this sample starts a block
    /// (dictionaries reset). `formats[e.fmt]` describes event `e`.
    pub fn encode(&mut self, fresh: bool, formats: &[EventFormat], d: &Drain, out: &mut Vec<u8>) {
        if fresh {
            self.fmt_map.clear();
            self.n_fmts = 0;
            self.strings.clear();
        }
        out.push(PAYLOAD_VERSION);
        // New formats, in order of first use.
        let mut new_fmts: Vec<u32> = Vec::new();
        for e in &d.events {
            if !self.fmt_map.contains_key(&e.fmt) && !new_fmts.contains(&e.fmt) {
                new_fmts.push(e.fmt);
            }
        }
        put_u64(out, new_fmts.len() as u64);
        for &f in &new_fmts {
            let ef = &formats[f as usize];
            put_u64(out, ef.id as u64);
            put_str(out, ef.system.as_bytes());
            put_str(out, ef.name.as_bytes());
            put_u64(out, ef.fields.len() as u64);
            for fd in &ef.fields {
                put_str(out, fd.name.as_bytes());
                put_str(out, fd.ctype.as_bytes());
                out.push(fd.kind as u8);
                put_u64(out, fd.size as u64);
            }
            self.fmt_map.insert(f, self.n_fmts);
            self.n_fmts += 1;
        }
        // Strings this drain uses that the block lacks.
        self.local.clear();
        let mut new_strs: Vec<u32> = Vec::new();
        for s in d.strings.iter() {
            let id = match self.strings.get(s) {
                Some(&id) => id,
                None => {
                    let id = self.strings.len() as u32;
                    self.strings.insert(s.clone(), id);
                    new_strs.push(id);
                    id
                }
            };
            self.local.push(id);
        }
        put_u64(out, new_strs.len() as u64);
        // New ids are consecutive and in drain order.
        for (s, &id) in d.strings.iter().zip(self.local.iter()) {
            if new_strs.first().is_some_and(|&f| id >= f) {
                put_str(out, s);
            }
        }
        put_u64(out, d.loss.len() as u64);
        for l in &d.loss {
            put_u64(out, l.cpu as u64);
            put_u64(out, l.missed);
            put_u64(out, l.overrun);
            put_u64(out, l.dropped);
        }
        put_u64(out, d.events.len() as u64);
        for e in &d.events {
            put_u64(out, e.cpu as u64);
        }
        let mut prev = 0i64;
        for e in &d.events {
            put_i64(out, (e.ts as i64).wrapping_sub(prev));
            prev = e.ts as i64;
        }
        for e in &d.events {
            put_u64(out, self.fmt_map[&e.fmt] as u64);
        }
        for e in &d.events {
            put_i64(out, e.pid as i64);
        }
        out.extend(d.events.iter().map(|e| e.flags));
        out.extend(d.events.iter().map(|e| e.preempt));
        // Field columns, per block format in index order.
        self.order.clear();
        for e in &d.events {
            let b = self.fmt_map[&e.fmt];
            if !self.order.contains(&b) {
                self.order.push(b);
            }
        }
        self.order.sort_unstable();
        let by_block: HashMap<u32, u32> = self.fmt_map.iter().map(|(&s, &b)| (b, s)).collect();
        for &b in &self.order {
            let slot = by_block[&b];
            let ef = &formats[slot as usize];
            for (fi, fd) in ef.fields.iter().enumerate() {
                let mut prev = 0i64;
                for e in d.events.iter().filter(|e| e.fmt == slot) {
                    let v = d.vals[e.vals as usize + fi];
                    if fd.kind.is_int() {
                        put_i64(out, v.wrapping_sub(prev));
                        prev = v;
                    } else {
                        put_u64(out, self.local[v as usize] as u64);
                    }
                }
            }
        }
    }
}

/// One decoded event. `vals` indexes [`Decoded::vals`]; `fmt` indexes
/// [`BlockDecoder::formats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub ts: u64,
    pub cpu: u32,
    pub fmt: u32,
    pub pid: i32,
    pub flags: u8,
    pub preempt: u8,
    pub vals: u32,
}

/// The events of one sample.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    pub events: Vec<Event>,
    pub vals: Vec<i64>,
    pub loss: Vec<Loss>,
}

/// Decodes the samples of one block, in order, from the first.
#[derive(Debug, Default)]
pub struct BlockDecoder {
    pub formats: Vec<EventFormat>,
    pub strings: Vec<Vec<u8>>,
}

fn get_str(c: &mut Cursor, max: usize, what: &'static str) -> Result<String, FtraceError> {
    let n = c.len(max).ok_or(bad(what))?;
    let b = c.bytes(n).ok_or(bad(what))?;
    Ok(String::from_utf8_lossy(b).into_owned())
}

impl BlockDecoder {
    pub fn new() -> BlockDecoder {
        BlockDecoder::default()
    }
    /// A string of the dictionary (lossy UTF-8, up to the first NUL).
    pub fn string(&self, id: i64) -> String {
        let b = usize::try_from(id)
            .ok()
            .and_then(|i| self.strings.get(i))
            .map(|v| v.as_slice())
            .unwrap_or(b"");
        let b = b.split(|&c| c == 0).next().unwrap_or(b"");
        String::from_utf8_lossy(b).into_owned()
    }
    pub fn bytes(&self, id: i64) -> &[u8] {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.strings.get(i))
            .map(|v| v.as_slice())
            .unwrap_or(b"")
    }

    /// Decode the next sample of the block.
    pub fn decode(&mut self, p: &[u8]) -> Result<Decoded, FtraceError> {
        let mut c = Cursor::new(p);
        if c.u8() != Some(PAYLOAD_VERSION) {
            return Err(bad("unknown version"));
        }
        let nf = c.len(MAX_FORMATS).ok_or(bad("format count"))?;
        if self.formats.len() + nf > MAX_FORMATS {
            return Err(bad("too many formats"));
        }
        for _ in 0..nf {
            let id = c.u64().ok_or(bad("format id"))?;
            let id = u32::try_from(id).map_err(|_| bad("format id"))?;
            let system = get_str(&mut c, MAX_NAME, "format system")?;
            let name = get_str(&mut c, MAX_NAME, "format name")?;
            let n = c.len(MAX_FIELDS).ok_or(bad("field count"))?;
            let mut fields = Vec::with_capacity(n);
            for _ in 0..n {
                let name = get_str(&mut c, MAX_NAME, "field name")?;
                let ctype = get_str(&mut c, MAX_NAME, "field type")?;
                let kind = c
                    .u8()
                    .and_then(FieldKind::from_u8)
                    .ok_or(bad("field kind"))?;
                let size = c.len(1 << 20).ok_or(bad("field size"))? as u32;
                fields.push(FieldDesc {
                    name,
                    ctype,
                    kind,
                    size,
                });
            }
            self.formats.push(EventFormat {
                id,
                system,
                name,
                fields,
            });
        }
        let ns = c.len(MAX_STRINGS).ok_or(bad("string count"))?;
        if self.strings.len() + ns > MAX_STRINGS || ns > c.remaining() {
            return Err(bad("too many strings"));
        }
        for _ in 0..ns {
            let n = c.len(MAX_STR).ok_or(bad("string length"))?;
            let b = c.bytes(n).ok_or(bad("string truncated"))?;
            self.strings.push(b.to_vec());
        }
        let nl = c.len(MAX_LOSS).ok_or(bad("loss count"))?;
        let mut loss = Vec::with_capacity(nl.min(c.remaining()));
        for _ in 0..nl {
            let cpu = c.u64().and_then(|v| u32::try_from(v).ok());
            let (m, o, d) = (c.u64(), c.u64(), c.u64());
            match (cpu, m, o, d) {
                (Some(cpu), Some(missed), Some(overrun), Some(dropped)) => loss.push(Loss {
                    cpu,
                    missed,
                    overrun,
                    dropped,
                }),
                _ => return Err(bad("loss truncated")),
            }
        }
        let n = c.len(MAX_EVENTS).ok_or(bad("event count"))?;
        // Every event takes at least 5 bytes (cpu, ts, fmt, pid, flags, preempt).
        if n.saturating_mul(6) > c.remaining() {
            return Err(bad("event count larger than the payload"));
        }
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            let cpu = c.u64().and_then(|v| u32::try_from(v).ok());
            events.push(Event {
                ts: 0,
                cpu: cpu.ok_or(bad("cpu column"))?,
                fmt: 0,
                pid: 0,
                flags: 0,
                preempt: 0,
                vals: 0,
            });
        }
        let mut prev = 0i64;
        for e in events.iter_mut() {
            prev = prev.wrapping_add(c.i64().ok_or(bad("ts column"))?);
            e.ts = prev as u64;
        }
        let nfmt = self.formats.len();
        let mut counts = vec![0usize; nfmt];
        for e in events.iter_mut() {
            let f = c.len(nfmt.saturating_sub(1)).ok_or(bad("format column"))?;
            if f >= nfmt {
                return Err(bad("format column"));
            }
            e.fmt = f as u32;
            counts[f] += 1;
        }
        for e in events.iter_mut() {
            let v = c.i64().ok_or(bad("pid column"))?;
            e.pid = i32::try_from(v).map_err(|_| bad("pid column"))?;
        }
        let fl = c.bytes(n).ok_or(bad("flags column"))?;
        let pr = c.bytes(n).ok_or(bad("preempt column"))?;
        for (i, e) in events.iter_mut().enumerate() {
            e.flags = fl[i];
            e.preempt = pr[i];
        }
        // Lay values out per event.
        let mut total = 0usize;
        for e in events.iter_mut() {
            e.vals = u32::try_from(total).map_err(|_| bad("too many values"))?;
            total += self.formats[e.fmt as usize].fields.len();
        }
        if total > c.remaining() {
            return Err(bad("values larger than the payload"));
        }
        let mut vals = vec![0i64; total];
        let nstr = self.strings.len() as u64;
        for (f, &cnt) in counts.iter().enumerate() {
            if cnt == 0 {
                continue;
            }
            let nfields = self.formats[f].fields.len();
            for fi in 0..nfields {
                let kind = self.formats[f].fields[fi].kind;
                let mut prev = 0i64;
                for e in events.iter().filter(|e| e.fmt as usize == f) {
                    let v = if kind.is_int() {
                        prev = prev.wrapping_add(c.i64().ok_or(bad("value column"))?);
                        prev
                    } else {
                        let id = c.u64().ok_or(bad("string column"))?;
                        if id >= nstr {
                            return Err(bad("string id out of range"));
                        }
                        id as i64
                    };
                    vals[e.vals as usize + fi] = v;
                }
            }
        }
        if c.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        Ok(Decoded { events, vals, loss })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats() -> Vec<EventFormat> {
        let f = |n: &str, t: &str, k, s| FieldDesc {
            name: n.into(),
            ctype: t.into(),
            kind: k,
            size: s,
        };
        vec![
            EventFormat {
                id: 372,
                system: "sched".into(),
                name: "sched_switch".into(),
                fields: vec![
                    f("prev_comm", "char[16]", FieldKind::Str, 16),
                    f("prev_pid", "pid_t", FieldKind::Signed, 4),
                    f("prev_state", "long", FieldKind::Signed, 8),
                    f("next_comm", "char[16]", FieldKind::Str, 16),
                    f("next_pid", "pid_t", FieldKind::Signed, 4),
                ],
            },
            EventFormat {
                id: 300,
                system: "block".into(),
                name: "block_rq_issue".into(),
                fields: vec![
                    f("dev", "dev_t", FieldKind::Unsigned, 4),
                    f("sector", "sector_t", FieldKind::Unsigned, 8),
                    f("cmd", "__data_loc char[]", FieldKind::Bytes, 4),
                ],
            },
        ]
    }

    fn drain(seed: u64, n: usize) -> Drain {
        let mut d = Drain::default();
        let mut x = seed;
        for i in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let fmt = (x >> 60) as u32 % 2;
            let vals = d.vals.len() as u32;
            if fmt == 0 {
                let a = d.intern(format!("comm{}", x % 5).as_bytes());
                let b = d.intern(b"swapper/0");
                d.vals
                    .extend([a as i64, (x % 1000) as i64, -1, b as i64, 0]);
            } else {
                let a = d.intern(&[1, 2, 0, 3]);
                d.vals
                    .extend([0x800001, u64::MAX as i64 - i as i64, a as i64]);
            }
            d.events.push(RawEvent {
                ts: 1_000_000_000_000 + i as u64 * 97_000 + (x % 1000),
                cpu: (x % 3) as u32,
                fmt,
                pid: (x % 50000) as i32 - 1,
                flags: (x >> 8) as u8,
                preempt: (x >> 16) as u8,
                vals,
            });
        }
        d.loss.push(Loss {
            cpu: 1,
            missed: 3,
            overrun: 4,
            dropped: 5,
        });
        d
    }

    fn check(fm: &[EventFormat], d: &Drain, dec: &BlockDecoder, got: &Decoded) {
        assert_eq!(got.events.len(), d.events.len());
        assert_eq!(got.loss, d.loss);
        for (a, b) in d.events.iter().zip(&got.events) {
            assert_eq!(
                (a.ts, a.cpu, a.pid, a.flags, a.preempt),
                (b.ts, b.cpu, b.pid, b.flags, b.preempt)
            );
            let f = &fm[a.fmt as usize];
            assert_eq!(dec.formats[b.fmt as usize], *f);
            for (i, fd) in f.fields.iter().enumerate() {
                let (x, y) = (d.vals[a.vals as usize + i], got.vals[b.vals as usize + i]);
                if fd.kind.is_int() {
                    assert_eq!(x, y);
                } else {
                    assert_eq!(&*d.strings[x as usize], dec.bytes(y));
                }
            }
        }
    }

    #[test]
    fn round_trip_across_samples_of_a_block() {
        let fm = formats();
        let mut enc = BlockEncoder::default();
        let mut dec = BlockDecoder::new();
        let mut payloads = Vec::new();
        for s in 0..4 {
            let d = drain(s, 200 + s as usize);
            let mut out = Vec::new();
            enc.encode(s == 0, &fm, &d, &mut out);
            let got = dec.decode(&out).unwrap();
            check(&fm, &d, &dec, &got);
            payloads.push(out);
        }
        // The second sample reuses the first's dictionary: it defines no format.
        assert!(payloads[1].len() < payloads[0].len() + 20);
        // A new block restarts the dictionaries.
        let d = drain(9, 10);
        let mut out = Vec::new();
        enc.encode(true, &fm, &d, &mut out);
        let mut fresh = BlockDecoder::new();
        let got = fresh.decode(&out).unwrap();
        check(&fm, &d, &fresh, &got);
        // Empty drains are valid.
        let mut out = Vec::new();
        enc.encode(false, &fm, &Drain::default(), &mut out);
        assert!(fresh.decode(&out).unwrap().events.is_empty());
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let fm = formats();
        let d = drain(3, 60);
        let mut out = Vec::new();
        BlockEncoder::default().encode(true, &fm, &d, &mut out);
        for cut in 0..out.len() {
            assert!(
                BlockDecoder::new().decode(&out[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut x = 12345u64;
        for _ in 0..20000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut p = out.clone();
            let i = (x % p.len() as u64) as usize;
            p[i] ^= 1 << ((x >> 32) % 8);
            if x & 3 == 0 {
                let j = ((x >> 20) % p.len() as u64) as usize;
                p[j] = (x >> 40) as u8;
            }
            let _ = BlockDecoder::new().decode(&p);
        }
        // Hostile counts do not allocate their claim.
        let mut p = vec![PAYLOAD_VERSION, 0, 0, 0];
        put_u64(&mut p, MAX_EVENTS as u64);
        assert!(BlockDecoder::new().decode(&p).is_err());
    }
}
