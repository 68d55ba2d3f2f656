//! Payload of the `kmsg` stream (log codec): the kernel log records read
//! from /dev/kmsg in one drain. Shared by the recorder (encode) and replay
//! (decode); the layout is normative in spec/STREAMS.md, "kmsg".
//!
//! ```text
//! u8 version (1)
//! varint lost            records the kernel overwrote before they were read
//! varint n               records in this sample (≤ MAX_RECORDS)
//! per record:
//!   varint prio          facility × 8 + level, as /dev/kmsg writes it
//!   zigzag seq − previous record's seq (the first against 0)
//!   zigzag usec − previous record's usec (the first against 0)
//!   u8 flags             bit 0: continuation ('c'), bit 1: text cut by the recorder
//!   varint len, bytes    message (unescaped bytes, ≤ MAX_MSG)
//!   varint n_dict        (≤ MAX_DICT) then per entry: varint len, bytes "KEY=value"
//! ```
//!
//! No dictionary across samples: each payload decodes alone. Every length
//! and count is checked; hostile input is an error, never a panic.

use crate::varint::{put_i64, put_u64, Cursor};

pub const VERSION: u8 = 1;
/// Longest message text stored (the kernel's own limit is ~1 KiB).
pub const MAX_MSG: usize = 4096;
/// Most dictionary lines (SUBSYSTEM=, DEVICE=) per record.
pub const MAX_DICT: usize = 16;
/// Longest dictionary line.
pub const MAX_DICT_LEN: usize = 1024;
/// Most records in one sample.
pub const MAX_RECORDS: usize = 65_536;

pub const FLAG_CONT: u8 = 1;
pub const FLAG_CUT: u8 = 2;

/// One kernel log record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsgRecord {
    /// facility × 8 + level.
    pub prio: u32,
    /// The kernel's sequence number (per boot).
    pub seq: u64,
    /// Kernel timestamp, µs since boot (the printk clock).
    pub usec: u64,
    pub flags: u8,
    /// Message text, unescaped (may hold any byte).
    pub msg: Vec<u8>,
    /// Continuation lines, "KEY=value" (unescaped).
    pub dict: Vec<Vec<u8>>,
}

impl KmsgRecord {
    pub fn level(&self) -> u8 {
        (self.prio & 7) as u8
    }
    pub fn facility(&self) -> u32 {
        self.prio >> 3
    }
}

/// One sample's worth of records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsgPayload {
    pub lost: u64,
    pub records: Vec<KmsgRecord>,
}

/// Append the encoding of `lost` and `records` to `out`. Over-long texts,
/// dictionaries and record counts are cut to the limits (and flagged), so
/// the output always decodes.
pub fn encode(lost: u64, records: &[KmsgRecord], out: &mut Vec<u8>) {
    let records = &records[..records.len().min(MAX_RECORDS)];
    out.push(VERSION);
    put_u64(out, lost);
    put_u64(out, records.len() as u64);
    let (mut seq, mut usec) = (0u64, 0u64);
    for r in records {
        put_u64(out, r.prio as u64);
        put_i64(out, r.seq.wrapping_sub(seq) as i64);
        put_i64(out, r.usec.wrapping_sub(usec) as i64);
        (seq, usec) = (r.seq, r.usec);
        let cut = r.msg.len() > MAX_MSG
            || r.dict.len() > MAX_DICT
            || r.dict.iter().any(|d| d.len() > MAX_DICT_LEN);
        out.push((r.flags & FLAG_CONT) | if cut { FLAG_CUT } else { r.flags & FLAG_CUT });
        let m = &r.msg[..r.msg.len().min(MAX_MSG)];
        put_u64(out, m.len() as u64);
        out.extend_from_slice(m);
        let dict = &r.dict[..r.dict.len().min(MAX_DICT)];
        put_u64(out, dict.len() as u64);
        for d in dict {
            let d = &d[..d.len().min(MAX_DICT_LEN)];
            put_u64(out, d.len() as u64);
            out.extend_from_slice(d);
        }
    }
}

/// Why a payload did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("kmsg payload: {0}")]
pub struct DecodeError(pub &'static str);

/// Decode one sample's payload.
pub fn decode(buf: &[u8]) -> Result<KmsgPayload, DecodeError> {
    let e = DecodeError;
    let mut c = Cursor::new(buf);
    match c.u8() {
        Some(VERSION) => {}
        Some(_) => return Err(e("unknown version")),
        None => return Err(e("empty")),
    }
    let lost = c.u64().ok_or(e("lost count"))?;
    let n = c.len(MAX_RECORDS).ok_or(e("record count"))?;
    // Each record takes at least 6 bytes: do not reserve for a lying count.
    let mut records = Vec::with_capacity(n.min(c.remaining() / 6));
    let (mut seq, mut usec) = (0u64, 0u64);
    for _ in 0..n {
        let prio = c.u64().ok_or(e("prio truncated"))?;
        let prio = u32::try_from(prio).map_err(|_| e("prio out of range"))?;
        seq = seq.wrapping_add(c.i64().ok_or(e("seq truncated"))? as u64);
        usec = usec.wrapping_add(c.i64().ok_or(e("timestamp truncated"))? as u64);
        let flags = c.u8().ok_or(e("flags truncated"))?;
        if flags & !(FLAG_CONT | FLAG_CUT) != 0 {
            return Err(e("unknown flags"));
        }
        let l = c.len(MAX_MSG).ok_or(e("message length"))?;
        let msg = c.bytes(l).ok_or(e("message truncated"))?.to_vec();
        let nd = c.len(MAX_DICT).ok_or(e("dictionary count"))?;
        let mut dict = Vec::with_capacity(nd);
        for _ in 0..nd {
            let l = c.len(MAX_DICT_LEN).ok_or(e("dictionary length"))?;
            dict.push(c.bytes(l).ok_or(e("dictionary truncated"))?.to_vec());
        }
        records.push(KmsgRecord {
            prio,
            seq,
            usec,
            flags,
            msg,
            dict,
        });
    }
    if c.remaining() != 0 {
        return Err(e("trailing bytes"));
    }
    Ok(KmsgPayload { lost, records })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<KmsgRecord> {
        let mut v: Vec<KmsgRecord> = (0..40u64)
            .map(|i| KmsgRecord {
                prio: (i % 8) as u32 | if i % 5 == 0 { 3 << 3 } else { 0 },
                seq: 1000 + i,
                usec: 5_000_000 + i * 1234,
                flags: (i % 3 == 0) as u8,
                msg: format!("line {i}: something happened on eth{i}").into_bytes(),
                dict: if i % 4 == 0 {
                    vec![
                        b"SUBSYSTEM=pci".to_vec(),
                        b"DEVICE=+pci:0000:00:1f.2".to_vec(),
                    ]
                } else {
                    Vec::new()
                },
            })
            .collect();
        v.push(KmsgRecord {
            prio: 0,
            seq: 0, // a seq going backwards still round-trips
            usec: u64::MAX,
            flags: 0,
            msg: vec![0, 0xff, b'\n', 0x1b],
            dict: Vec::new(),
        });
        v
    }

    #[test]
    fn round_trip() {
        let recs = sample();
        let mut buf = Vec::new();
        encode(7, &recs, &mut buf);
        let p = decode(&buf).unwrap();
        assert_eq!(p.lost, 7);
        assert_eq!(p.records, recs);
        let mut empty = Vec::new();
        encode(0, &[], &mut empty);
        assert_eq!(decode(&empty).unwrap(), KmsgPayload::default());
        assert_eq!(empty.len(), 3);
    }

    #[test]
    fn over_long_input_is_cut_and_flagged() {
        let r = KmsgRecord {
            msg: vec![b'a'; MAX_MSG + 10],
            dict: vec![vec![b'b'; MAX_DICT_LEN + 1]; MAX_DICT + 3],
            ..Default::default()
        };
        let mut buf = Vec::new();
        encode(0, &[r], &mut buf);
        let p = decode(&buf).unwrap();
        let d = &p.records[0];
        assert_eq!(d.msg.len(), MAX_MSG);
        assert_eq!(d.dict.len(), MAX_DICT);
        assert!(d.dict.iter().all(|x| x.len() == MAX_DICT_LEN));
        assert_eq!(d.flags, FLAG_CUT);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        encode(3, &sample(), &mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError("trailing bytes")));
    }

    #[test]
    fn bit_flips_and_garbage_never_panic() {
        let mut buf = Vec::new();
        encode(3, &sample(), &mut buf);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b);
            }
        }
        let mut x = 0x9e3779b97f4a7c15u64;
        for len in 0..2000 {
            let g: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&g);
            let mut v = vec![VERSION];
            v.extend_from_slice(&g);
            let _ = decode(&v);
        }
        // A huge claimed count with no bytes behind it: an error, no big allocation.
        assert!(decode(&[VERSION, 0, 0x80, 0x80, 0x04]).is_err());
        assert!(decode(&[VERSION, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
