//! Byte layout of a ring file. `spec/FORMAT.md` is the normative text; every
//! offset here is named there, and the two change together.
//!
//! ```text
//! 0            superblock (4 KiB, written once at creation)
//! 4 KiB        host header slot A (32 KiB, rkyv, rewritten at each recorder start)
//! 36 KiB       host header slot B
//! 68 KiB       stream heads: one 4 KiB page per stream (the only mutable metadata)
//! ...          stream regions, each = index | staging | data, 4 KiB aligned
//! ```

use crate::error::{Error, Result};

pub const MAGIC: [u8; 8] = *b"LPORING\0";
/// Major version: a reader refuses a file whose major is greater than this.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor version: additions a reader of the same major may ignore.
pub const FORMAT_MINOR: u16 = 1;

pub const PAGE: u64 = 4096;
pub const SUPERBLOCK_LEN: u64 = PAGE;
pub const HEADER_SLOT_OFF: u64 = SUPERBLOCK_LEN;
pub const HEADER_SLOT_LEN: u64 = 32 * 1024;
pub const HEADS_OFF: u64 = HEADER_SLOT_OFF + 2 * HEADER_SLOT_LEN;
pub const HEAD_LEN: u64 = PAGE;
pub const MAX_STREAMS: usize = 32;
pub const STREAM_ENTRY_OFF: usize = 64;
pub const STREAM_ENTRY_LEN: usize = 96;
pub const STREAM_NAME_LEN: usize = 24;
pub const INDEX_ENTRY_LEN: u64 = 64;
pub const BLOCK_HEADER_LEN: u64 = 96;
pub const BLOCK_MAGIC: [u8; 4] = *b"LPOB";
pub const HEAD_MAGIC: [u8; 4] = *b"LPOH";
/// A block never decompresses to more than this (zstd-bomb cap).
pub const MAX_BLOCK_RAW: u64 = 64 * 1024 * 1024;
/// Smallest ring accepted.
pub const MIN_RING: u64 = 1024 * 1024;

/// Superblock flag: the file is an exported capture, not a live ring.
pub const FLAG_CAPTURE: u32 = 1;
/// Superblock flag: bytes 36..40 hold a crc32c of the whole file (see [`file_crc`]).
pub const FLAG_FILE_CRC: u32 = 2;
/// Where the whole-file checksum sits in the superblock.
pub const FILE_CRC_OFF: usize = 36;

/// Stream codecs.
pub const CODEC_KV: u8 = 1;
pub const CODEC_TABLE: u8 = 2;
pub const CODEC_LOG: u8 = 3;

/// Offsets inside a head page (all u64, naturally aligned, written atomically).
pub mod head {
    pub const MAGIC: usize = 0; // [u8;4] + u32 stream index
    pub const NEXT_SEQ: usize = 8;
    pub const TAIL_SEQ: usize = 16;
    pub const WRITE_VPOS: usize = 24;
    pub const STAGING_LEN: usize = 32;
    pub const STAGING_GEN: usize = 40;
    pub const SAMPLES_SEALED: usize = 48;
    pub const CORRUPT_SEEN: usize = 56;
}

pub fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
pub fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
pub fn le_i64(b: &[u8], at: usize) -> i64 {
    le_u64(b, at) as i64
}

/// One stream's place in the file, from the superblock's stream table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    pub name: String,
    pub codec: u8,
    pub kind: u8,
    pub weight: u32,
    pub index_off: u64,
    pub index_entries: u64,
    pub staging_off: u64,
    pub staging_len: u64,
    pub data_off: u64,
    pub data_len: u64,
}

impl StreamEntry {
    /// Total bytes this stream owns (its budget).
    pub fn budget(&self) -> u64 {
        self.index_entries * INDEX_ENTRY_LEN + self.staging_len + self.data_len
    }
}

/// The superblock: fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    pub major: u16,
    pub minor: u16,
    pub flags: u32,
    pub file_size: u64,
    pub created_ns: i64,
    pub streams: Vec<StreamEntry>,
    /// Whole-file crc32c, meaningful when `flags & FLAG_FILE_CRC`.
    pub file_crc: u32,
}

impl Superblock {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SUPERBLOCK_LEN as usize];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.file_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_ns.to_le_bytes());
        b[32..36].copy_from_slice(&(self.streams.len() as u32).to_le_bytes());
        b[FILE_CRC_OFF..FILE_CRC_OFF + 4].copy_from_slice(&self.file_crc.to_le_bytes());
        for (i, s) in self.streams.iter().enumerate() {
            let o = STREAM_ENTRY_OFF + i * STREAM_ENTRY_LEN;
            let e = &mut b[o..o + STREAM_ENTRY_LEN];
            let n = s.name.as_bytes();
            e[..n.len()].copy_from_slice(n);
            e[24] = s.codec;
            e[25] = s.kind;
            e[28..32].copy_from_slice(&s.weight.to_le_bytes());
            e[32..40].copy_from_slice(&s.index_off.to_le_bytes());
            e[40..48].copy_from_slice(&s.index_entries.to_le_bytes());
            e[48..56].copy_from_slice(&s.staging_off.to_le_bytes());
            e[56..64].copy_from_slice(&s.staging_len.to_le_bytes());
            e[64..72].copy_from_slice(&s.data_off.to_le_bytes());
            e[72..80].copy_from_slice(&s.data_len.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b[..4092]);
        b[4092..4096].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and validate the superblock of a file of `actual_len` bytes.
    /// Returns `Ok(None)` when the magic does not match (not our file).
    pub fn decode(b: &[u8], actual_len: u64) -> Result<Option<Superblock>> {
        if b.len() < SUPERBLOCK_LEN as usize || b[0..8] != MAGIC {
            return Ok(None);
        }
        let major = le_u16(b, 8);
        let minor = le_u16(b, 10);
        if major > FORMAT_MAJOR {
            // The caller turns this into NewerVersion with the path.
            return Err(Error::NewerVersion {
                path: Default::default(),
                found_major: major,
                found_minor: minor,
                supported_major: FORMAT_MAJOR,
            });
        }
        let crc = le_u32(b, 4092);
        if crc32c::crc32c(&b[..4092]) != crc {
            return Err(Error::corrupt(0, "superblock checksum mismatch"));
        }
        let flags = le_u32(b, 12);
        let file_size = le_u64(b, 16);
        let created_ns = le_i64(b, 24);
        let n = le_u32(b, 32) as usize;
        if n == 0 || n > MAX_STREAMS {
            return Err(Error::corrupt(32, format!("stream count {n} out of range")));
        }
        if file_size > actual_len {
            return Err(Error::corrupt(
                16,
                format!("file is truncated: header says {file_size} bytes, file has {actual_len}"),
            ));
        }
        let mut streams = Vec::with_capacity(n);
        let mut prev_end = HEADS_OFF + n as u64 * HEAD_LEN;
        for i in 0..n {
            let o = STREAM_ENTRY_OFF + i * STREAM_ENTRY_LEN;
            let e = &b[o..o + STREAM_ENTRY_LEN];
            let name_end = e[..STREAM_NAME_LEN]
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(STREAM_NAME_LEN);
            let name = std::str::from_utf8(&e[..name_end])
                .map_err(|_| Error::corrupt(o as u64, "stream name is not UTF-8"))?
                .to_string();
            let s = StreamEntry {
                name,
                codec: e[24],
                kind: e[25],
                weight: le_u32(e, 28),
                index_off: le_u64(e, 32),
                index_entries: le_u64(e, 40),
                staging_off: le_u64(e, 48),
                staging_len: le_u64(e, 56),
                data_off: le_u64(e, 64),
                data_len: le_u64(e, 72),
            };
            // Invariant: regions are laid out in order, do not overlap and lie inside the file.
            let idx_len = s.index_entries.checked_mul(INDEX_ENTRY_LEN);
            let ok = idx_len.is_some()
                && s.index_entries > 0
                && s.index_off >= prev_end
                && s.index_off.checked_add(idx_len.unwrap()) == Some(s.staging_off)
                && s.staging_off.checked_add(s.staging_len) == Some(s.data_off)
                && s.data_len >= BLOCK_HEADER_LEN
                && s.data_off
                    .checked_add(s.data_len)
                    .is_some_and(|end| end <= file_size)
                && s.staging_len > 0;
            if !ok || s.name.is_empty() {
                return Err(Error::corrupt(
                    o as u64,
                    format!("stream table entry {i} is inconsistent"),
                ));
            }
            prev_end = s.data_off + s.data_len;
            streams.push(s);
        }
        Ok(Some(Superblock {
            major,
            minor,
            flags,
            file_crc: le_u32(b, FILE_CRC_OFF),
            file_size,
            created_ns,
            streams,
        }))
    }
}

impl Superblock {
    /// `decode` for the file at `path`: not ours → `NotARing`, a newer
    /// major → `NewerVersion` naming the file.
    pub fn decode_file(b: &[u8], actual_len: u64, path: &std::path::Path) -> Result<Superblock> {
        match Superblock::decode(b, actual_len) {
            Ok(Some(sb)) => Ok(sb),
            Ok(None) => Err(Error::NotARing { path: path.into() }),
            Err(Error::NewerVersion {
                found_major,
                found_minor,
                supported_major,
                ..
            }) => Err(Error::NewerVersion {
                path: path.into(),
                found_major,
                found_minor,
                supported_major,
            }),
            Err(e) => Err(e),
        }
    }
}

/// Plan the regions of a new ring of `size` bytes for `streams` (name, codec, kind, weight).
pub fn plan(
    size: u64,
    streams: &[(String, u8, u8, u32)],
    created_ns: i64,
    flags: u32,
) -> Result<Superblock> {
    if streams.is_empty() || streams.len() > MAX_STREAMS {
        return Err(Error::Invalid(format!(
            "{} streams (1..={MAX_STREAMS})",
            streams.len()
        )));
    }
    let fixed = HEADS_OFF + streams.len() as u64 * HEAD_LEN;
    if size < MIN_RING || size < fixed + streams.len() as u64 * 64 * PAGE {
        return Err(Error::TooSmall {
            path: Default::default(),
            size,
            min: MIN_RING.max(fixed + streams.len() as u64 * 64 * PAGE),
        });
    }
    let total_w: u64 = streams.iter().map(|s| s.3.max(1) as u64).sum();
    let avail = (size - fixed) / PAGE * PAGE;
    let mut off = fixed;
    let mut out = Vec::new();
    for (i, (name, codec, kind, w)) in streams.iter().enumerate() {
        if name.is_empty() || name.len() > STREAM_NAME_LEN {
            return Err(Error::Invalid(format!("stream name {name:?}")));
        }
        let region = if i + 1 == streams.len() {
            size / PAGE * PAGE - off
        } else {
            avail / total_w * (*w).max(1) as u64 / PAGE * PAGE
        };
        // Index: one 64-byte entry per 2 KiB of region; staging: 1/8 of the
        // region, between 128 KiB (a kernel-stream sample with all its
        // column names is ~70 KiB) and 8 MiB; data: the rest.
        let index_entries = (region / 2048).max(64).div_ceil(64) * 64;
        let index_bytes = index_entries * INDEX_ENTRY_LEN;
        let staging_len = (region / 8).clamp(32 * PAGE, 2048 * PAGE) / PAGE * PAGE;
        let data_len = region
            .checked_sub(index_bytes + staging_len)
            .filter(|d| *d >= 16 * PAGE)
            .ok_or(Error::TooSmall {
                path: Default::default(),
                size,
                min: size + 64 * PAGE,
            })?;
        out.push(StreamEntry {
            name: name.clone(),
            codec: *codec,
            kind: *kind,
            weight: *w,
            index_off: off,
            index_entries,
            staging_off: off + index_bytes,
            staging_len,
            data_off: off + index_bytes + staging_len,
            data_len,
        });
        off += region;
    }
    Ok(Superblock {
        major: FORMAT_MAJOR,
        minor: FORMAT_MINOR,
        flags,
        file_crc: 0,
        file_size: size,
        created_ns,
        streams: out,
    })
}

/// Lay out streams with exactly the given (index entries, staging bytes,
/// data bytes) each, back to back: for exported captures, sized to fit
/// what they hold. The file size follows.
pub fn plan_exact(
    streams: &[(String, u8, u8, u64, u64, u64)],
    created_ns: i64,
    flags: u32,
) -> Result<Superblock> {
    if streams.is_empty() || streams.len() > MAX_STREAMS {
        return Err(Error::Invalid(format!(
            "{} streams (1..={MAX_STREAMS})",
            streams.len()
        )));
    }
    let mut off = HEADS_OFF + streams.len() as u64 * HEAD_LEN;
    let mut out = Vec::new();
    for (name, codec, kind, n, staging, data) in streams {
        if name.is_empty() || name.len() > STREAM_NAME_LEN {
            return Err(Error::Invalid(format!("stream name {name:?}")));
        }
        let index_entries = (*n).max(64).div_ceil(64) * 64;
        let staging_len = (*staging).max(32 * PAGE).div_ceil(PAGE) * PAGE;
        let data_len = (*data).max(16 * PAGE).div_ceil(PAGE) * PAGE;
        let e = StreamEntry {
            name: name.clone(),
            codec: *codec,
            kind: *kind,
            weight: 1,
            index_off: off,
            index_entries,
            staging_off: off + index_entries * INDEX_ENTRY_LEN,
            staging_len,
            data_off: off + index_entries * INDEX_ENTRY_LEN + staging_len,
            data_len,
        };
        off = e.data_off + data_len;
        out.push(e);
    }
    Ok(Superblock {
        major: FORMAT_MAJOR,
        minor: FORMAT_MINOR,
        flags,
        file_crc: 0,
        file_size: off,
        created_ns,
        streams: out,
    })
}

/// The whole-file checksum: crc32c of the file with the checksum field
/// (superblock bytes 36..40) and the superblock's own crc (4092..4096)
/// read as zeros.
pub fn file_crc(file: &[u8]) -> u32 {
    if file.len() < SUPERBLOCK_LEN as usize {
        return crc32c::crc32c(file);
    }
    let mut sb = file[..SUPERBLOCK_LEN as usize].to_vec();
    sb[FILE_CRC_OFF..FILE_CRC_OFF + 4].fill(0);
    sb[4092..4096].fill(0);
    let c = crc32c::crc32c(&sb);
    crc32c::crc32c_append(c, &file[SUPERBLOCK_LEN as usize..])
}

/// An index entry: where block `seq` lives and what time it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexEntry {
    pub seq: u64,
    pub vpos: u64,
    pub first_key: i64,
    pub last_key: i64,
    pub first_wall: i64,
    pub last_wall: i64,
    pub total_len: u32,
    pub n_samples: u32,
    pub header_crc: u32,
}

impl IndexEntry {
    pub fn encode(&self) -> [u8; INDEX_ENTRY_LEN as usize] {
        let mut b = [0u8; INDEX_ENTRY_LEN as usize];
        b[0..8].copy_from_slice(&self.seq.to_le_bytes());
        b[8..16].copy_from_slice(&self.vpos.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_key.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_key.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_wall.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_wall.to_le_bytes());
        b[48..52].copy_from_slice(&self.total_len.to_le_bytes());
        b[52..56].copy_from_slice(&self.n_samples.to_le_bytes());
        b[56..60].copy_from_slice(&self.header_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }
    /// None when the checksum does not match (torn or corrupt entry).
    pub fn decode(b: &[u8]) -> Option<IndexEntry> {
        if b.len() < INDEX_ENTRY_LEN as usize || crc32c::crc32c(&b[..60]) != le_u32(b, 60) {
            return None;
        }
        Some(IndexEntry {
            seq: le_u64(b, 0),
            vpos: le_u64(b, 8),
            first_key: le_i64(b, 16),
            last_key: le_i64(b, 24),
            first_wall: le_i64(b, 32),
            last_wall: le_i64(b, 40),
            total_len: le_u32(b, 48),
            n_samples: le_u32(b, 52),
            header_crc: le_u32(b, 56),
        })
    }
}

/// The fixed header in front of every block's compressed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHeader {
    pub codec: u8,
    pub stream: u16,
    pub seq: u64,
    pub vpos: u64,
    pub first_key: i64,
    pub last_key: i64,
    pub first_wall: i64,
    pub last_wall: i64,
    pub n_samples: u32,
    pub payload_len: u32,
    pub raw_len: u32,
    pub payload_crc: u32,
    pub boot_id: [u8; 16],
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN as usize] {
        let mut b = [0u8; BLOCK_HEADER_LEN as usize];
        b[0..4].copy_from_slice(&BLOCK_MAGIC);
        b[4] = 1;
        b[5] = self.codec;
        b[6..8].copy_from_slice(&self.stream.to_le_bytes());
        b[8..16].copy_from_slice(&self.seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.first_key.to_le_bytes());
        b[24..32].copy_from_slice(&self.last_key.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_wall.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_wall.to_le_bytes());
        b[48..52].copy_from_slice(&self.n_samples.to_le_bytes());
        b[52..56].copy_from_slice(&self.payload_len.to_le_bytes());
        b[56..60].copy_from_slice(&self.raw_len.to_le_bytes());
        b[60..64].copy_from_slice(&self.payload_crc.to_le_bytes());
        b[64..80].copy_from_slice(&self.boot_id);
        b[80..88].copy_from_slice(&self.vpos.to_le_bytes());
        let crc = crc32c::crc32c(&b[..92]);
        b[92..96].copy_from_slice(&crc.to_le_bytes());
        b
    }
    pub fn crc_of(b: &[u8]) -> u32 {
        le_u32(b, 92)
    }
    pub fn decode(b: &[u8], at: u64) -> Result<BlockHeader> {
        if b.len() < BLOCK_HEADER_LEN as usize || b[0..4] != BLOCK_MAGIC {
            return Err(Error::corrupt(at, "block magic missing"));
        }
        if crc32c::crc32c(&b[..92]) != le_u32(b, 92) {
            return Err(Error::corrupt(at, "block header checksum mismatch"));
        }
        if b[4] != 1 {
            return Err(Error::corrupt(
                at,
                format!("unknown block version {}", b[4]),
            ));
        }
        let h = BlockHeader {
            codec: b[5],
            stream: le_u16(b, 6),
            seq: le_u64(b, 8),
            first_key: le_i64(b, 16),
            last_key: le_i64(b, 24),
            first_wall: le_i64(b, 32),
            last_wall: le_i64(b, 40),
            n_samples: le_u32(b, 48),
            payload_len: le_u32(b, 52),
            raw_len: le_u32(b, 56),
            payload_crc: le_u32(b, 60),
            boot_id: b[64..80].try_into().unwrap(),
            vpos: le_u64(b, 80),
        };
        if h.raw_len as u64 > MAX_BLOCK_RAW {
            return Err(Error::corrupt(
                at,
                format!("block claims {} raw bytes (cap {MAX_BLOCK_RAW})", h.raw_len),
            ));
        }
        if h.first_key > h.last_key || h.n_samples == 0 {
            return Err(Error::corrupt(
                at,
                "block header time range or sample count invalid",
            ));
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_roundtrip() {
        let sb = plan(
            64 << 20,
            &[
                ("system".into(), CODEC_KV, 0, 1),
                ("process".into(), CODEC_KV, 0, 8),
            ],
            123,
            0,
        )
        .unwrap();
        let b = sb.encode();
        let back = Superblock::decode(&b, 64 << 20).unwrap().unwrap();
        assert_eq!(back, sb);
        assert_eq!(
            back.streams[1].data_off + back.streams[1].data_len,
            64 << 20
        );
        let mut bad = b.clone();
        bad[100] ^= 1;
        assert!(Superblock::decode(&bad, 64 << 20).is_err());
        assert!(
            Superblock::decode(&b, 1 << 20).is_err(),
            "truncated file detected"
        );
    }

    #[test]
    fn index_and_block_header_roundtrip() {
        let e = IndexEntry {
            seq: 7,
            vpos: 99,
            first_key: 1,
            last_key: 2,
            first_wall: 3,
            last_wall: 4,
            total_len: 5,
            n_samples: 6,
            header_crc: 8,
        };
        let b = e.encode();
        assert_eq!(IndexEntry::decode(&b), Some(e));
        let mut bad = b;
        bad[3] ^= 0x10;
        assert_eq!(IndexEntry::decode(&bad), None);
        let h = BlockHeader {
            codec: 1,
            stream: 2,
            seq: 3,
            vpos: 4,
            first_key: 5,
            last_key: 6,
            first_wall: 7,
            last_wall: 8,
            n_samples: 9,
            payload_len: 10,
            raw_len: 11,
            payload_crc: 12,
            boot_id: [7; 16],
        };
        assert_eq!(BlockHeader::decode(&h.encode(), 0).unwrap(), h);
    }

    #[test]
    fn too_small() {
        assert!(matches!(
            plan(100_000, &[("system".into(), 1, 0, 1)], 0, 0),
            Err(Error::TooSmall { .. })
        ));
    }
}
