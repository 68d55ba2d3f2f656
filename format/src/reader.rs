//! The ring reader: validated, bounds-checked access to a ring or capture,
//! safe to use while a recorder writes the same file.

use crate::error::{Error, Result};
use crate::host::HostHeader;
use crate::kv::{self, KvBatch};
use crate::layout::*;
use crate::log::{self, LogBatch};
use crate::ring::{self, HeadState};
use crate::table::{self, TableBatch};
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Read-only view of a ring file.
pub struct RingReader {
    path: PathBuf,
    map: Mmap,
    sb: Superblock,
    host: HostHeader,
}

/// Decoded samples of one block (or of the staged tail), by codec.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Batch {
    Kv(KvBatch),
    Table(TableBatch),
    Log(LogBatch),
}

impl Batch {
    /// (key, wall) of every sample, in order.
    pub fn times(&self) -> Vec<(i64, i64)> {
        match self {
            Batch::Kv(b) => b.samples.iter().map(|s| (s.key, s.wall)).collect(),
            Batch::Table(b) => b.times.iter().map(|t| (t.0, t.1)).collect(),
            Batch::Log(b) => b.samples.iter().map(|s| (s.key, s.wall)).collect(),
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Batch::Kv(b) => b.samples.len(),
            Batch::Table(b) => b.times.len(),
            Batch::Log(b) => b.samples.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn into_kv(self) -> Option<KvBatch> {
        match self {
            Batch::Kv(b) => Some(b),
            _ => None,
        }
    }
    pub fn into_log(self) -> Option<LogBatch> {
        match self {
            Batch::Log(b) => Some(b),
            _ => None,
        }
    }
    pub fn into_table(self) -> Option<TableBatch> {
        match self {
            Batch::Table(b) => Some(b),
            _ => None,
        }
    }
}

/// What a block read found.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BlockRead {
    Ok(Batch),
    /// Overwritten by the recorder since the index was read: not an error.
    Gone,
}

/// Per-stream figures for `lpo info`.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub name: String,
    pub samples: u64,
    pub blocks: u64,
    /// Bytes of the ring holding this stream's data now (compressed blocks + staged samples).
    pub bytes: u64,
    /// Uncompressed size of the same samples' block payloads.
    pub raw_bytes: u64,
    pub budget: u64,
    pub staged_samples: u64,
    pub corrupt_blocks: u64,
    pub first_key: Option<i64>,
    pub last_key: Option<i64>,
    pub first_wall: Option<i64>,
    pub last_wall: Option<i64>,
}

impl RingReader {
    pub fn open(path: &Path) -> Result<RingReader> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::NotARing { path: path.into() });
        }
        let len = meta.len();
        if len < SUPERBLOCK_LEN {
            return Err(Error::NotARing { path: path.into() });
        }
        // SAFETY: read-only mapping; every access below is bounds-checked
        // against the superblock, which is checked against the file length.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        let sb = Superblock::decode_file(&map[..SUPERBLOCK_LEN as usize], len, path)?;
        let (_, host) = ring::read_host(&map)?;
        Ok(RingReader {
            path: path.into(),
            map,
            sb,
            host,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn host(&self) -> &HostHeader {
        &self.host
    }
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }
    /// True for an exported capture (not a live ring).
    pub fn is_capture(&self) -> bool {
        self.sb.flags & FLAG_CAPTURE != 0
    }
    /// Verify the whole-file checksum: `None` when the file carries none
    /// (live rings), else whether it matches.
    pub fn verify_file_crc(&self) -> Option<bool> {
        if self.sb.flags & FLAG_FILE_CRC == 0 {
            return None;
        }
        let end = (self.sb.file_size as usize).min(self.map.len());
        Some(file_crc(&self.map[..end]) == self.sb.file_crc && end as u64 == self.sb.file_size)
    }
    pub fn stream(&self, name: &str) -> Option<usize> {
        self.sb.streams.iter().position(|s| s.name == name)
    }
    pub fn head(&self, i: usize) -> HeadState {
        ring::read_head(&self.map, i)
    }

    /// Valid sealed-block range [tail, next) of stream `i`, sanitized.
    fn live_range(&self, i: usize) -> (u64, u64) {
        let e = &self.sb.streams[i];
        let h = self.head(i);
        let next = h.next_seq;
        let tail = h
            .tail_seq
            .max(next.saturating_sub(e.index_entries))
            .min(next);
        (tail, next)
    }

    /// The index entry for `seq`, if its slot holds that block and is intact.
    pub fn entry(&self, i: usize, seq: u64) -> Option<IndexEntry> {
        let e = &self.sb.streams[i];
        let o = (e.index_off + (seq % e.index_entries) * INDEX_ENTRY_LEN) as usize;
        IndexEntry::decode(&self.map[o..o + INDEX_ENTRY_LEN as usize]).filter(|x| x.seq == seq)
    }

    /// Sealed blocks of stream `i`, oldest first (seq numbers).
    pub fn seqs(&self, i: usize) -> std::ops::Range<u64> {
        let (t, n) = self.live_range(i);
        t..n
    }

    /// O(log n): the newest block whose first key is ≤ `key` (None if every
    /// block starts after `key`). Corrupt index entries are stepped over.
    pub fn find_block(&self, i: usize, key: i64) -> Option<u64> {
        let (mut lo, mut hi) = self.live_range(i);
        let mut found = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let mut m = mid;
            let mut ent = None;
            while m < hi {
                if let Some(x) = self.entry(i, m) {
                    ent = Some(x);
                    break;
                }
                m += 1;
            }
            match ent {
                None => hi = mid,
                Some(x) if x.first_key <= key => {
                    found = Some(m);
                    lo = m + 1;
                }
                Some(_) => hi = mid,
            }
        }
        found
    }

    /// Uncompressed payload size of block `seq` of stream `i`, from its
    /// header (None when the block is gone or its header is damaged).
    pub fn raw_len(&self, i: usize, seq: u64) -> Option<u32> {
        let e = &self.sb.streams[i];
        let ent = self.entry(i, seq)?;
        let phys = ent.vpos % e.data_len;
        if phys + BLOCK_HEADER_LEN > e.data_len {
            return None;
        }
        let at = (e.data_off + phys) as usize;
        let bh =
            BlockHeader::decode(&self.map[at..at + BLOCK_HEADER_LEN as usize], at as u64).ok()?;
        (bh.seq == seq && bh.raw_len as u64 <= MAX_BLOCK_RAW).then_some(bh.raw_len)
    }

    /// Read and decode block `seq` of stream `i`.
    pub fn read_block(&self, i: usize, seq: u64) -> Result<BlockRead> {
        self.read_block_with(i, seq, None)
    }

    /// [`read_block`](Self::read_block) of a table stream, decoding only the
    /// samples `pick` chooses (see [`table::decode_block_picked`]); other
    /// codecs decode whole.
    pub fn read_block_picked(
        &self,
        i: usize,
        seq: u64,
        pick: &mut table::Pick<'_>,
    ) -> Result<BlockRead> {
        self.read_block_with(i, seq, Some(pick))
    }

    fn read_block_with(
        &self,
        i: usize,
        seq: u64,
        pick: Option<&mut table::Pick<'_>>,
    ) -> Result<BlockRead> {
        let e = &self.sb.streams[i];
        let ent = match self.entry(i, seq) {
            Some(x) => x,
            None => {
                let (t, _) = self.live_range(i);
                if seq < t {
                    return Ok(BlockRead::Gone);
                }
                let o = e.index_off + (seq % e.index_entries) * INDEX_ENTRY_LEN;
                return Err(Error::corrupt(
                    o,
                    format!("index entry of block {seq} of stream {} is damaged", e.name),
                ));
            }
        };
        let len = ent.total_len as u64;
        let phys = ent.vpos % e.data_len;
        let at = e.data_off + phys;
        if len < BLOCK_HEADER_LEN || phys + len > e.data_len {
            return Err(Error::corrupt(
                at,
                format!("block {seq} has an impossible length {len}"),
            ));
        }
        // Copy first: the recorder may overwrite the block while we decode.
        let bytes = self.map[at as usize..(at + len) as usize].to_vec();
        let res = (|| {
            let bh = BlockHeader::decode(&bytes, at)?;
            if bh.seq != seq
                || bh.vpos != ent.vpos
                || bh.payload_len as u64 + BLOCK_HEADER_LEN != len
            {
                return Err(Error::corrupt(
                    at,
                    format!("block {seq} header does not match its index entry"),
                ));
            }
            let payload = &bytes[BLOCK_HEADER_LEN as usize..];
            if crc32c::crc32c(payload) != bh.payload_crc {
                return Err(Error::corrupt(
                    at,
                    format!("block {seq} payload checksum mismatch"),
                ));
            }
            if bh.codec != CODEC_KV && bh.codec != CODEC_TABLE && bh.codec != CODEC_LOG {
                return Err(Error::corrupt(
                    at,
                    format!("block {seq} has unknown codec {}", bh.codec),
                ));
            }
            let raw = zstd::bulk::decompress(payload, bh.raw_len as usize).map_err(|err| {
                Error::corrupt(at, format!("block {seq} does not decompress: {err}"))
            })?;
            if raw.len() != bh.raw_len as usize {
                return Err(Error::corrupt(
                    at,
                    format!("block {seq} decompressed to the wrong size"),
                ));
            }
            if bh.codec != e.codec {
                return Err(Error::corrupt(
                    at,
                    format!(
                        "block {seq} has codec {} in a codec-{} stream",
                        bh.codec, e.codec
                    ),
                ));
            }
            if bh.codec == CODEC_KV {
                kv::decode_block(&raw, bh.n_samples, bh.boot_id, at).map(Batch::Kv)
            } else if bh.codec == CODEC_LOG {
                log::decode_block(&raw, bh.n_samples, bh.boot_id, at).map(Batch::Log)
            } else if let Some(pick) = pick {
                table::decode_block_picked(&raw, bh.n_samples, bh.boot_id, at, pick)
                    .map(Batch::Table)
            } else {
                table::decode_block(&raw, bh.n_samples, bh.boot_id, at).map(Batch::Table)
            }
        })();
        match res {
            Ok(b) => Ok(BlockRead::Ok(b)),
            Err(err) => {
                // Overwritten under us by a live recorder? Then it is gone, not corrupt.
                if self.live_range(i).0 > seq {
                    Ok(BlockRead::Gone)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Samples staged after the newest sealed block (up to the last completed sample).
    pub fn staged(&self, i: usize) -> Result<Batch> {
        self.staged_with(i, None)
    }

    /// [`staged`](Self::staged) of a table stream, keeping only the samples
    /// `pick` chooses.
    pub fn staged_picked(&self, i: usize, pick: &mut table::Pick<'_>) -> Result<Batch> {
        self.staged_with(i, Some(pick))
    }

    fn staged_with(&self, i: usize, mut pick: Option<&mut table::Pick<'_>>) -> Result<Batch> {
        let e = &self.sb.streams[i];
        for _ in 0..8 {
            let h1 = self.head(i);
            let len = h1.staging_len.min(e.staging_len) as usize;
            let so = e.staging_off as usize;
            let copy = self.map[so..so + len].to_vec();
            let h2 = self.head(i);
            if h1.staging_gen != h2.staging_gen || h1.next_seq != h2.next_seq {
                continue; // sealed while we copied: read again
            }
            let (recs, _) = ring::staged_records(&copy);
            let b = if e.codec == CODEC_TABLE {
                match pick.as_deref_mut() {
                    Some(p) => Batch::Table(table::decode_staged_picked(recs, e.staging_off, p)?),
                    None => Batch::Table(table::decode_staged(recs, e.staging_off)?),
                }
            } else if e.codec == CODEC_LOG {
                Batch::Log(log::decode_staged(recs, e.staging_off)?)
            } else {
                Batch::Kv(kv::decode_staged(recs, e.staging_off)?)
            };
            // After a crash between sealing and resetting staging, the staged
            // samples are exactly the newest block's: drop them.
            if h2.next_seq > 0 {
                if let Some(last) = self.entry(i, h2.next_seq - 1) {
                    if b.times().first().is_some_and(|t| t.0 <= last.last_key) {
                        return Ok(self.empty(i));
                    }
                }
            }
            return Ok(b);
        }
        Ok(self.empty(i))
    }

    fn empty(&self, i: usize) -> Batch {
        if self.sb.streams[i].codec == CODEC_TABLE {
            Batch::Table(TableBatch::default())
        } else if self.sb.streams[i].codec == CODEC_LOG {
            Batch::Log(LogBatch::default())
        } else {
            Batch::Kv(KvBatch::default())
        }
    }

    /// (first_wall, last_wall, first_key, last_key) of stream `i`, from the
    /// index and staging only (no block is decompressed).
    pub fn info_range(&self, i: usize) -> Option<(i64, i64, i64, i64)> {
        let (t, n) = self.live_range(i);
        let first = (t..n).find_map(|s| self.entry(i, s));
        let last = (t..n).rev().find_map(|s| self.entry(i, s));
        let staged = self
            .staged(i)
            .ok()
            .map(|b| b.times())
            .filter(|t| !t.is_empty());
        let (fw, fk) = match (&first, &staged) {
            (Some(e), _) => (e.first_wall, e.first_key),
            (None, Some(t)) => (t[0].1, t[0].0),
            _ => return None,
        };
        let (lw, lk) = match (&staged, &last) {
            (Some(t), _) => {
                let s = t.last().unwrap();
                (s.1, s.0)
            }
            (None, Some(e)) => (e.last_wall, e.last_key),
            _ => return None,
        };
        Some((fw, lw, fk, lk))
    }

    /// Batches of stream `i` holding keys in [from, to], oldest first. Bad
    /// blocks are passed to `on_bad` and skipped.
    pub fn batches(
        &self,
        i: usize,
        from: i64,
        to: i64,
        on_bad: &mut dyn FnMut(Error),
    ) -> Vec<Batch> {
        let (t, n) = self.live_range(i);
        let start = self.find_block(i, from).unwrap_or(t);
        let mut out = Vec::new();
        for seq in start..n {
            match self.entry(i, seq) {
                Some(x) if x.first_key > to => break,
                Some(x) if x.last_key < from => continue,
                _ => {}
            }
            match self.read_block(i, seq) {
                Ok(BlockRead::Ok(b)) => out.push(b),
                Ok(BlockRead::Gone) => {}
                Err(e) => on_bad(e),
            }
        }
        match self.staged(i) {
            Ok(b) if b.times().first().is_some_and(|s| s.0 <= to) => out.push(b),
            Ok(_) => {}
            Err(e) => on_bad(e),
        }
        out
    }

    /// Whole-stream statistics; verifies every block's checksums.
    pub fn info(&self, i: usize) -> StreamInfo {
        let e = &self.sb.streams[i];
        let mut si = StreamInfo {
            name: e.name.clone(),
            budget: e.budget(),
            ..Default::default()
        };
        let (t, n) = self.live_range(i);
        for seq in t..n {
            let Some(ent) = self.entry(i, seq) else {
                si.corrupt_blocks += 1;
                continue;
            };
            let len = ent.total_len as u64;
            let phys = ent.vpos % e.data_len;
            let ok = len >= BLOCK_HEADER_LEN && phys + len <= e.data_len && {
                let at = (e.data_off + phys) as usize;
                let b = &self.map[at..at + len as usize];
                match BlockHeader::decode(b, at as u64) {
                    Ok(bh) => {
                        bh.seq == seq
                            && bh.payload_len as u64 + BLOCK_HEADER_LEN == len
                            && crc32c::crc32c(&b[BLOCK_HEADER_LEN as usize..]) == bh.payload_crc
                            && {
                                si.raw_bytes += bh.raw_len as u64;
                                true
                            }
                    }
                    Err(_) => false,
                }
            };
            if !ok {
                si.corrupt_blocks += 1;
                continue;
            }
            si.blocks += 1;
            si.samples += ent.n_samples as u64;
            si.bytes += len + INDEX_ENTRY_LEN;
            si.first_key = Some(si.first_key.map_or(ent.first_key, |k| k.min(ent.first_key)));
            si.last_key = Some(si.last_key.map_or(ent.last_key, |k| k.max(ent.last_key)));
            si.first_wall = Some(
                si.first_wall
                    .map_or(ent.first_wall, |k| k.min(ent.first_wall)),
            );
            si.last_wall = Some(si.last_wall.map_or(ent.last_wall, |k| k.max(ent.last_wall)));
        }
        if let Ok(b) = self.staged(i) {
            let t = b.times();
            si.staged_samples = t.len() as u64;
            si.samples += t.len() as u64;
            si.bytes += self.head(i).staging_len.min(e.staging_len);
            for &(key, wall) in &t {
                si.first_key = Some(si.first_key.map_or(key, |k| k.min(key)));
                si.last_key = Some(si.last_key.map_or(key, |k| k.max(key)));
                si.first_wall = Some(si.first_wall.map_or(wall, |k| k.min(wall)));
                si.last_wall = Some(si.last_wall.map_or(wall, |k| k.max(wall)));
            }
        }
        si
    }
}
