//! The `kv` codec: samples of named u64 counters (the system stream).
//!
//! Writer side, a sample is staged uncompressed (so `kill -9` cannot lose it)
//! as records in the stream's staging area; when a block is sealed, the
//! samples are laid out column by column, delta-encoded and zstd-compressed.
//! See spec/FORMAT.md, "kv codec".

use crate::error::{Error, Result};
use crate::varint::{put_i64, put_u64, zigzag, Cursor};
use std::collections::HashMap;

/// Staging record kinds.
pub const REC_COLUMNS: u8 = 1;
pub const REC_SAMPLE: u8 = 2;

/// Caps applied to untrusted input.
pub const MAX_COLUMNS: usize = 1 << 16;
pub const MAX_NAME: usize = 255;
pub const MAX_CELLS: usize = 4 << 20;

/// A decoded run of samples sharing one column list (a block, or the staged tail).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvBatch {
    pub boot_id: [u8; 16],
    pub names: Vec<String>,
    pub samples: Vec<KvSample>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvSample {
    /// Recording timeline (ns): monotonic across the whole file; what seek uses.
    pub key: i64,
    /// CLOCK_REALTIME (ns since the Unix epoch) when the sample was taken.
    pub wall: i64,
    /// CLOCK_BOOTTIME (ns since boot) when the sample was taken.
    pub mono: i64,
    /// One slot per entry of `KvBatch::names`.
    pub values: Vec<Option<u64>>,
}

impl KvBatch {
    /// Name → column position, for lookups.
    pub fn column_map(&self) -> HashMap<&str, usize> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect()
    }
}

/// A fast non-cryptographic hasher (FxHash's rotate-multiply) for the
/// column-name map: it is hit once per column per sample, and the names
/// come from our own collectors.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;

/// Writer-side column registry for one staging generation.
#[derive(Default)]
pub struct KvStager {
    pub names: Vec<String>,
    map: FxMap<String, u32>,
    announced: usize,
    scratch: Vec<Option<u64>>,
}

impl KvStager {
    pub fn reset(&mut self) {
        self.names.clear();
        self.map.clear();
        self.announced = 0;
    }

    /// Turn one sample's (name, value) pairs into staging records appended to
    /// `out` (a COLUMNS record first if new names appeared), and return the
    /// values aligned to `self.names`.
    pub fn stage<'a>(
        &mut self,
        key: i64,
        wall: i64,
        mono: i64,
        boot_id: &[u8; 16],
        cols: impl IntoIterator<Item = (&'a str, u64)>,
        out: &mut Vec<Vec<u8>>,
    ) -> Vec<Option<u64>> {
        self.scratch.clear();
        self.scratch.resize(self.names.len(), None);
        for (name, v) in cols {
            let idx = match self.map.get(name) {
                Some(&i) => i as usize,
                None => {
                    if self.names.len() >= MAX_COLUMNS || name.len() > MAX_NAME {
                        continue;
                    }
                    let i = self.names.len();
                    self.names.push(name.to_string());
                    self.map.insert(name.to_string(), i as u32);
                    self.scratch.push(None);
                    i
                }
            };
            self.scratch[idx] = Some(v);
        }
        if self.announced < self.names.len() {
            let mut r = vec![REC_COLUMNS];
            if self.announced == 0 {
                r.extend_from_slice(boot_id);
            } else {
                r.extend_from_slice(&[0u8; 16]);
            }
            put_u64(&mut r, (self.names.len() - self.announced) as u64);
            for n in &self.names[self.announced..] {
                put_u64(&mut r, n.len() as u64);
                r.extend_from_slice(n.as_bytes());
            }
            self.announced = self.names.len();
            out.push(r);
        }
        let mut r = vec![REC_SAMPLE];
        put_i64(&mut r, key);
        put_i64(&mut r, wall);
        put_i64(&mut r, mono);
        put_u64(&mut r, self.scratch.len() as u64);
        let mut bm = vec![0u8; self.scratch.len().div_ceil(8)];
        for (i, v) in self.scratch.iter().enumerate() {
            if v.is_some() {
                bm[i / 8] |= 1 << (i % 8);
            }
        }
        r.extend_from_slice(&bm);
        for v in self.scratch.iter().flatten() {
            put_u64(&mut r, *v);
        }
        out.push(r);
        self.scratch.clone()
    }
}

fn read_names(c: &mut Cursor, names: &mut Vec<String>, at: u64) -> Result<()> {
    let n = c
        .len(MAX_COLUMNS)
        .ok_or_else(|| Error::corrupt(at, "bad column count"))?;
    if names.len() + n > MAX_COLUMNS {
        return Err(Error::corrupt(at, "too many columns"));
    }
    for _ in 0..n {
        let l = c
            .len(MAX_NAME)
            .ok_or_else(|| Error::corrupt(at, "bad column name length"))?;
        let b = c
            .bytes(l)
            .ok_or_else(|| Error::corrupt(at, "column name truncated"))?;
        let s =
            std::str::from_utf8(b).map_err(|_| Error::corrupt(at, "column name is not UTF-8"))?;
        names.push(s.to_string());
    }
    Ok(())
}

/// Decode staged records (each already checksum-verified) into a batch.
pub fn decode_staged<'a>(records: impl IntoIterator<Item = &'a [u8]>, at: u64) -> Result<KvBatch> {
    let mut b = KvBatch::default();
    let mut cells = 0usize;
    for rec in records {
        let mut c = Cursor::new(rec);
        match c.u8() {
            Some(REC_COLUMNS) => {
                let boot = c
                    .bytes(16)
                    .ok_or_else(|| Error::corrupt(at, "staged columns record truncated"))?;
                if b.names.is_empty() {
                    b.boot_id.copy_from_slice(boot);
                }
                read_names(&mut c, &mut b.names, at)?;
            }
            Some(REC_SAMPLE) => {
                let bad = || Error::corrupt(at, "staged sample truncated");
                let key = c.i64().ok_or_else(bad)?;
                let wall = c.i64().ok_or_else(bad)?;
                let mono = c.i64().ok_or_else(bad)?;
                let n = c
                    .len(b.names.len())
                    .ok_or_else(|| Error::corrupt(at, "staged sample has unknown columns"))?;
                let bm = c.bytes(n.div_ceil(8)).ok_or_else(bad)?;
                cells += b.names.len();
                if cells > MAX_CELLS {
                    return Err(Error::corrupt(at, "staging holds too many values"));
                }
                let mut values = vec![None; b.names.len()];
                for (i, slot) in values.iter_mut().enumerate().take(n) {
                    if bm[i / 8] & (1 << (i % 8)) != 0 {
                        *slot = Some(c.u64().ok_or_else(bad)?);
                    }
                }
                b.samples.push(KvSample {
                    key,
                    wall,
                    mono,
                    values,
                });
            }
            _ => return Err(Error::corrupt(at, "unknown staged record kind")),
        }
    }
    Ok(b)
}

/// Encode samples as an uncompressed columnar block payload.
pub fn encode_block(names: &[String], samples: &[KvSample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * names.len() + 1024);
    put_u64(&mut out, samples.len() as u64);
    put_u64(&mut out, names.len() as u64);
    for n in names {
        put_u64(&mut out, n.len() as u64);
        out.extend_from_slice(n.as_bytes());
    }
    // Times: key and mono as delta-of-delta, wall as its offset from key.
    let dod = |out: &mut Vec<u8>, f: &dyn Fn(&KvSample) -> i64| {
        let (mut prev, mut prev_d) = (0i64, 0i64);
        for (i, s) in samples.iter().enumerate() {
            let v = f(s);
            if i == 0 {
                put_i64(out, v);
            } else {
                let d = v.wrapping_sub(prev);
                put_i64(out, d.wrapping_sub(prev_d));
                prev_d = d;
            }
            prev = v;
        }
    };
    dod(&mut out, &|s| s.key);
    dod(&mut out, &|s| s.mono);
    for s in samples {
        put_i64(&mut out, s.wall.wrapping_sub(s.key));
    }
    for c in 0..names.len() {
        let get = |s: &KvSample| s.values.get(c).copied().flatten();
        let present = samples.iter().filter(|s| get(s).is_some()).count();
        if present == samples.len() {
            out.push(0);
        } else if present == 0 {
            out.push(2);
            continue;
        } else {
            out.push(1);
            let mut bm = vec![0u8; samples.len().div_ceil(8)];
            for (i, s) in samples.iter().enumerate() {
                if get(s).is_some() {
                    bm[i / 8] |= 1 << (i % 8);
                }
            }
            out.extend_from_slice(&bm);
        }
        let mut prev: Option<u64> = None;
        for v in samples.iter().filter_map(get) {
            match prev {
                None => put_u64(&mut out, v),
                Some(p) => put_u64(&mut out, zigzag(v.wrapping_sub(p) as i64)),
            }
            prev = Some(v);
        }
    }
    out
}

/// Decode a columnar block payload of `n_samples` samples.
pub fn decode_block(raw: &[u8], n_samples: u32, boot_id: [u8; 16], at: u64) -> Result<KvBatch> {
    let mut c = Cursor::new(raw);
    let bad = |what: &str| Error::corrupt(at, format!("kv block: {what}"));
    let n = c.len(raw.len()).ok_or_else(|| bad("sample count"))?;
    if n != n_samples as usize {
        return Err(bad("sample count differs from header"));
    }
    let mut names = Vec::new();
    read_names(&mut c, &mut names, at)?;
    if n.saturating_mul(names.len().max(1)) > MAX_CELLS {
        return Err(bad("too many values"));
    }
    let mut samples: Vec<KvSample> = (0..n)
        .map(|_| KvSample {
            values: vec![None; names.len()],
            ..Default::default()
        })
        .collect();
    for which in 0..2 {
        let (mut prev, mut prev_d) = (0i64, 0i64);
        for (i, s) in samples.iter_mut().enumerate() {
            let x = c.i64().ok_or_else(|| bad("times truncated"))?;
            let v = if i == 0 {
                x
            } else {
                let d = prev_d.wrapping_add(x);
                prev_d = d;
                prev.wrapping_add(d)
            };
            prev = v;
            if which == 0 {
                s.key = v;
            } else {
                s.mono = v;
            }
        }
    }
    for s in samples.iter_mut() {
        s.wall = s
            .key
            .wrapping_add(c.i64().ok_or_else(|| bad("times truncated"))?);
    }
    for col in 0..names.len() {
        let mode = c.u8().ok_or_else(|| bad("column truncated"))?;
        let bm = match mode {
            0 => None,
            1 => Some(
                c.bytes(n.div_ceil(8))
                    .ok_or_else(|| bad("bitmap truncated"))?,
            ),
            2 => continue,
            _ => return Err(bad("unknown column mode")),
        };
        let mut prev: Option<u64> = None;
        for (i, s) in samples.iter_mut().enumerate() {
            if let Some(bm) = bm {
                if bm[i / 8] & (1 << (i % 8)) == 0 {
                    continue;
                }
            }
            let x = c.u64().ok_or_else(|| bad("values truncated"))?;
            let v = match prev {
                None => x,
                Some(p) => p.wrapping_add(crate::varint::unzigzag(x) as u64),
            };
            s.values[col] = Some(v);
            prev = Some(v);
        }
    }
    if c.remaining() != 0 {
        return Err(bad("trailing bytes"));
    }
    Ok(KvBatch {
        boot_id,
        names,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_batch() -> (Vec<Vec<u8>>, KvBatch) {
        let mut st = KvStager::default();
        let mut recs = Vec::new();
        let boot = [9u8; 16];
        for i in 0..50i64 {
            let mut cols = vec![
                ("cpu.user", 1000 + i as u64 * 37),
                ("mem.MemFree", 5_000_000 - i as u64),
            ];
            if i >= 10 {
                cols.push(("disk.sda.reads", u64::MAX - i as u64)); // appears later; near-wrap values
            }
            if i % 7 == 0 {
                cols.push(("rare", 1));
            }
            st.stage(
                i * 1_000_000_000,
                i * 1_000_000_000 + 5,
                77 + i,
                &boot,
                cols,
                &mut recs,
            );
        }
        let batch = decode_staged(recs.iter().map(|r| r.as_slice()), 0).unwrap();
        (recs, batch)
    }

    #[test]
    fn staged_then_block_roundtrip() {
        let (_, batch) = sample_batch();
        assert_eq!(batch.samples.len(), 50);
        assert_eq!(batch.boot_id, [9u8; 16]);
        let m = batch.column_map();
        assert_eq!(batch.samples[3].values[m["cpu.user"]], Some(1000 + 3 * 37));
        assert_eq!(
            batch.samples[3]
                .values
                .get(m["disk.sda.reads"])
                .copied()
                .flatten(),
            None
        );
        let raw = encode_block(&batch.names, &batch.samples);
        let back = decode_block(&raw, 50, batch.boot_id, 0).unwrap();
        // Staged samples have short value vectors for early samples; normalize.
        for (a, b) in batch.samples.iter().zip(&back.samples) {
            assert_eq!((a.key, a.wall, a.mono), (b.key, b.wall, b.mono));
            for (i, v) in b.values.iter().enumerate() {
                assert_eq!(a.values.get(i).copied().flatten(), *v);
            }
        }
    }

    #[test]
    fn hostile_blocks_never_panic() {
        let (_, batch) = sample_batch();
        let raw = encode_block(&batch.names, &batch.samples);
        for cut in 0..raw.len() {
            let _ = decode_block(&raw[..cut], 50, [0; 16], 0);
        }
        let mut x: u32 = 1;
        for _ in 0..5000 {
            let mut m = raw.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = x as usize % m.len();
            m[i] ^= (x >> 8) as u8 | 1;
            let _ = decode_block(&m, 50, [0; 16], 0);
        }
        assert!(decode_block(&[0xff; 32], 50, [0; 16], 0).is_err());
    }
}
