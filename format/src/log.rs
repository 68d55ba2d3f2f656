//! The `log` codec: samples whose payload is an opaque byte string that a
//! stream-specific encoder defines (kernel log lines, perf samples, ftrace
//! events). The ring only frames, checksums, compresses and indexes them.
//!
//! A *generation* is the run of samples that end up in one block: it starts
//! empty after every seal. The writer tells the stream's encoder when a
//! sample is the first of a generation (`fresh`), so encoders can keep
//! per-block dictionaries (interned strings, stack tables): every sample of
//! a block is decoded in order from the block's first sample, never alone,
//! so a dictionary entry defined by an earlier sample of the same block is
//! always available to a later one, and never needed across blocks.
//!
//! Staged record: `[REC_LOG_HEADER][boot_id 16]` once per generation, then
//! per sample `[REC_LOG_SAMPLE][key i64][wall i64][mono i64][payload…]`
//! (varints; the payload is the rest of the record). Block payload (before
//! zstd): `n`, then per sample zigzag deltas of key, wall and mono against
//! the previous sample (the first against 0), the payload length and bytes.
//! See spec/FORMAT.md, "log codec".

use crate::error::{Error, Result};
use crate::varint::{put_i64, put_u64, Cursor};

pub const REC_LOG_HEADER: u8 = 1;
pub const REC_LOG_SAMPLE: u8 = 2;
/// Largest payload of one sample (a cap on untrusted input).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Largest sum of payloads in one batch.
pub const MAX_BATCH_BYTES: usize = 256 << 20;

/// One sample of a log stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSample {
    pub key: i64,
    pub wall: i64,
    pub mono: i64,
    pub payload: Vec<u8>,
}

/// The samples of one block (or of the staged tail), oldest first. A
/// stream's decoder must walk them in order, starting from the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogBatch {
    pub boot_id: [u8; 16],
    pub samples: Vec<LogSample>,
}

pub(crate) fn header_record(boot_id: &[u8; 16]) -> Vec<u8> {
    let mut r = Vec::with_capacity(17);
    r.push(REC_LOG_HEADER);
    r.extend_from_slice(boot_id);
    r
}

pub(crate) fn sample_record(key: i64, wall: i64, mono: i64, payload: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(payload.len() + 28);
    r.push(REC_LOG_SAMPLE);
    put_i64(&mut r, key);
    put_i64(&mut r, wall);
    put_i64(&mut r, mono);
    r.extend_from_slice(payload);
    r
}

/// Decode staged records (each already checksum-verified) into a batch.
pub fn decode_staged<'a>(records: impl IntoIterator<Item = &'a [u8]>, at: u64) -> Result<LogBatch> {
    let mut b = LogBatch::default();
    let mut total = 0usize;
    for rec in records {
        let mut c = Cursor::new(rec);
        match c.u8() {
            Some(REC_LOG_HEADER) => {
                let boot = c
                    .bytes(16)
                    .ok_or_else(|| Error::corrupt(at, "staged log header truncated"))?;
                b.boot_id.copy_from_slice(boot);
            }
            Some(REC_LOG_SAMPLE) => {
                let bad = || Error::corrupt(at, "staged log sample truncated");
                let key = c.i64().ok_or_else(bad)?;
                let wall = c.i64().ok_or_else(bad)?;
                let mono = c.i64().ok_or_else(bad)?;
                let rest = c.bytes(c.remaining()).ok_or_else(bad)?;
                if rest.len() > MAX_PAYLOAD {
                    return Err(Error::corrupt(at, "staged log payload too large"));
                }
                total += rest.len();
                if total > MAX_BATCH_BYTES {
                    return Err(Error::corrupt(at, "staged log samples too large"));
                }
                b.samples.push(LogSample {
                    key,
                    wall,
                    mono,
                    payload: rest.to_vec(),
                });
            }
            _ => return Err(Error::corrupt(at, "unknown staged log record kind")),
        }
    }
    Ok(b)
}

/// Encode samples as an uncompressed block payload.
pub fn encode_block(samples: &[LogSample]) -> Vec<u8> {
    let bytes: usize = samples.iter().map(|s| s.payload.len() + 8).sum();
    let mut out = Vec::with_capacity(bytes + 16);
    put_u64(&mut out, samples.len() as u64);
    let (mut k, mut w, mut m) = (0i64, 0i64, 0i64);
    for s in samples {
        put_i64(&mut out, s.key.wrapping_sub(k));
        put_i64(&mut out, s.wall.wrapping_sub(w));
        put_i64(&mut out, s.mono.wrapping_sub(m));
        (k, w, m) = (s.key, s.wall, s.mono);
        put_u64(&mut out, s.payload.len() as u64);
        out.extend_from_slice(&s.payload);
    }
    out
}

/// Decode a block payload of `n_samples` samples.
pub fn decode_block(raw: &[u8], n_samples: u32, boot_id: [u8; 16], at: u64) -> Result<LogBatch> {
    let bad = |what: &str| Error::corrupt(at, format!("log block: {what}"));
    let mut c = Cursor::new(raw);
    let n = c.len(raw.len()).ok_or_else(|| bad("sample count"))?;
    if n != n_samples as usize {
        return Err(bad("sample count differs from header"));
    }
    let mut samples = Vec::with_capacity(n.min(1 << 16));
    let (mut k, mut w, mut m) = (0i64, 0i64, 0i64);
    for _ in 0..n {
        k = k.wrapping_add(c.i64().ok_or_else(|| bad("key truncated"))?);
        w = w.wrapping_add(c.i64().ok_or_else(|| bad("wall truncated"))?);
        m = m.wrapping_add(c.i64().ok_or_else(|| bad("mono truncated"))?);
        let l = c
            .len(MAX_PAYLOAD.min(c.remaining()))
            .ok_or_else(|| bad("payload length"))?;
        let p = c.bytes(l).ok_or_else(|| bad("payload truncated"))?;
        samples.push(LogSample {
            key: k,
            wall: w,
            mono: m,
            payload: p.to_vec(),
        });
    }
    if c.remaining() != 0 {
        return Err(bad("trailing bytes"));
    }
    if samples.windows(2).any(|p| p[1].key <= p[0].key) {
        return Err(bad("keys out of order"));
    }
    Ok(LogBatch { boot_id, samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trip_and_truncations() {
        let samples: Vec<LogSample> = (1..50)
            .map(|i| LogSample {
                key: i * 1000,
                wall: 1_700_000_000_000_000_000 + i * 1000,
                mono: 5 + i,
                payload: vec![i as u8; (i % 7) as usize],
            })
            .collect();
        let raw = encode_block(&samples);
        let b = decode_block(&raw, samples.len() as u32, [7; 16], 0).unwrap();
        assert_eq!(b.samples, samples);
        for cut in 0..raw.len() {
            assert!(decode_block(&raw[..cut], samples.len() as u32, [0; 16], 0).is_err());
        }
        assert!(decode_block(&raw, 3, [0; 16], 0).is_err());
    }

    #[test]
    fn staged_round_trip() {
        let recs = [
            header_record(&[3; 16]),
            sample_record(10, 20, 30, b"hello"),
            sample_record(11, 21, 31, b""),
        ];
        let b = decode_staged(recs.iter().map(|r| r.as_slice()), 0).unwrap();
        assert_eq!(b.boot_id, [3; 16]);
        assert_eq!(b.samples.len(), 2);
        assert_eq!(b.samples[0].payload, b"hello");
        assert!(decode_staged([&[9u8][..]], 0).is_err());
        assert!(decode_staged([&recs[1][..3]], 0).is_err());
    }
}
