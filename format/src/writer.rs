//! The ring writer: create or reopen a ring, stage samples, seal blocks.

use crate::error::{Error, Result};
use crate::host::HostHeader;
use crate::kv::{self, KvSample, KvStager};
use crate::layout::*;
use crate::log::{self, LogSample};
use crate::ring::{self, head_off, load, store};
use crate::table::{self, Event, RowIn, TableBuilder, TableSchema};
use memmap2::MmapMut;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// What a stream is, and when its blocks are sealed.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    pub codec: u8,
    /// 0 = periodic snapshots, 1 = events.
    pub kind: u8,
    /// Share of the ring, relative to the other streams' weights.
    pub weight: u32,
    /// Seal a block after this many samples...
    pub max_block_samples: u32,
    /// ...or when it spans this long (ns), whichever comes first.
    pub max_block_span_ns: i64,
    /// Field names, for table-codec streams.
    pub table: Option<TableSchema>,
}

impl StreamSpec {
    pub fn kv(name: &str, weight: u32) -> StreamSpec {
        StreamSpec {
            name: name.into(),
            codec: CODEC_KV,
            kind: 0,
            weight,
            max_block_samples: 300,
            max_block_span_ns: 15 * 60 * 1_000_000_000,
            table: None,
        }
    }

    /// A stream of opaque, encoder-defined payloads (see [`crate::log`]).
    pub fn log(name: &str, weight: u32) -> StreamSpec {
        StreamSpec {
            name: name.into(),
            codec: CODEC_LOG,
            kind: 1,
            weight,
            max_block_samples: 600,
            max_block_span_ns: 15 * 60 * 1_000_000_000,
            table: None,
        }
    }

    pub fn table(name: &str, weight: u32, schema: TableSchema) -> StreamSpec {
        StreamSpec {
            name: name.into(),
            codec: CODEC_TABLE,
            kind: 0,
            weight,
            max_block_samples: 120,
            max_block_span_ns: 15 * 60 * 1_000_000_000,
            table: Some(schema),
        }
    }
}

/// Outcome of opening a ring for writing.
#[derive(Debug, Default)]
pub struct OpenReport {
    /// True when the file was created by this call.
    pub created: bool,
    /// Requested streams the existing ring has no region for.
    pub missing_streams: Vec<String>,
    /// Samples found staged after a crash and sealed on open.
    pub recovered_samples: usize,
    /// Size of the existing file, when it differs from the requested size.
    pub existing_size: Option<u64>,
}

struct StreamW {
    idx: usize,
    e: StreamEntry,
    spec: StreamSpec,
    stager: KvStager,
    pending: Vec<KvSample>,
    pending_log: Vec<LogSample>,
    table: Option<TableBuilder>,
    staging_used: u64,
    boot_id: [u8; 16],
    last_key: i64,
    /// Most staging bytes used by one generation, and the largest block, so far.
    staging_peak: u64,
    block_peak: u64,
    blocks_written: u64,
    bytes_written: u64,
}

impl StreamW {
    fn n_pending(&self) -> usize {
        match &self.table {
            Some(b) => b.n_samples() as usize,
            None => self.pending.len() + self.pending_log.len(),
        }
    }
    fn first_key(&self) -> Option<i64> {
        match &self.table {
            Some(b) => b.first_key(),
            None => self
                .pending
                .first()
                .map(|s| s.key)
                .or(self.pending_log.first().map(|s| s.key)),
        }
    }
    fn must_seal(&self, key: i64) -> bool {
        let span_full = self
            .first_key()
            .is_some_and(|f| key - f >= self.spec.max_block_span_ns);
        self.n_pending() >= self.spec.max_block_samples as usize
            || span_full
            || self.staging_used * 4 >= self.e.staging_len * 3
    }
}

/// Writes one ring. Holds an exclusive lock on the file for its lifetime.
pub struct RingWriter {
    path: PathBuf,
    _file: File,
    map: MmapMut,
    sb: Superblock,
    streams: Vec<StreamW>,
    boot_id: [u8; 16],
    last_key: i64,
    zstd_level: i32,
    /// For a capture: its final name (the file is written under a temporary one).
    capture_dest: Option<PathBuf>,
}

fn available_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } == 0 {
        s.f_bavail as u64 * s.f_frsize as u64
    } else {
        0
    }
}

/// Parse a boot id like "0f4c…-…" into 16 bytes (zeros if it does not parse).
pub fn boot_id_bytes(s: &str) -> [u8; 16] {
    let hex: Vec<u8> = s.bytes().filter(|c| c.is_ascii_hexdigit()).collect();
    let mut out = [0u8; 16];
    if hex.len() == 32 {
        for i in 0..16 {
            let h = |c: u8| (c as char).to_digit(16).unwrap() as u8;
            out[i] = h(hex[2 * i]) << 4 | h(hex[2 * i + 1]);
        }
    }
    out
}

impl RingWriter {
    /// Open `path` for recording, creating it preallocated to `size` bytes if
    /// it does not exist. The file is created 0600, in full or not at all.
    pub fn open_or_create(
        path: &Path,
        size: u64,
        specs: &[StreamSpec],
        host: &HostHeader,
    ) -> Result<(RingWriter, OpenReport)> {
        let mut report = OpenReport::default();
        if !path.exists() {
            create(path, size, specs, host)?;
            report.created = true;
        }
        Self::open_file(path, Some(size), specs, host, report, false)
    }

    /// Start an exported capture at `path` (which must not exist) laid out by
    /// `sb` (see [`plan_exact`]). It is written under a temporary name and
    /// appears at `path` only when [`RingWriter::finish_capture`] succeeds.
    pub fn create_capture(
        path: &Path,
        sb: &Superblock,
        specs: &[StreamSpec],
        host: &HostHeader,
    ) -> Result<RingWriter> {
        if path.exists() {
            return Err(Error::Invalid(format!(
                "{} already exists; not overwriting it",
                path.display()
            )));
        }
        let tmp = tmp_name(path);
        let mut sb = sb.clone();
        sb.flags |= FLAG_CAPTURE;
        if let Err(e) = create_file(&tmp, path, &sb, host) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        match Self::open_file(&tmp, None, specs, host, OpenReport::default(), true) {
            Ok((mut w, _)) => {
                w.capture_dest = Some(path.into());
                Ok(w)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Seal stream `i`'s staged samples into a block now.
    pub fn seal_stream(&mut self, i: usize) -> Result<()> {
        self.seal(i)?;
        self.reset_staging(i);
        Ok(())
    }

    /// Seal everything, stamp the whole-file checksum, sync, and move the
    /// capture to its final name.
    pub fn finish_capture(mut self) -> Result<PathBuf> {
        let Some(dest) = self.capture_dest.take() else {
            return Err(Error::Invalid("not a capture".into()));
        };
        let res = (|| {
            self.seal_all()?;
            self.sb.flags |= FLAG_FILE_CRC;
            self.sb.file_crc = 0;
            self.map[..SUPERBLOCK_LEN as usize].copy_from_slice(&self.sb.encode());
            self.sb.file_crc = file_crc(&self.map);
            self.map[..SUPERBLOCK_LEN as usize].copy_from_slice(&self.sb.encode());
            self.flush()?;
            self._file
                .sync_all()
                .map_err(|e| Error::io(&self.path, e))?;
            std::fs::rename(&self.path, &dest).map_err(|e| Error::io(&dest, e))
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        res.map(|_| dest)
    }

    /// Give up on a capture: remove its temporary file.
    pub fn abort_capture(self) {
        if self.capture_dest.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn open_file(
        path: &Path,
        size: Option<u64>,
        specs: &[StreamSpec],
        host: &HostHeader,
        mut report: OpenReport,
        capture: bool,
    ) -> Result<(RingWriter, OpenReport)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let pid = crate::RingReader::open(path)
                .ok()
                .map(|r| r.host().recorder_pid)
                .filter(|p| *p != 0);
            return Err(Error::Locked {
                path: path.into(),
                pid,
            });
        }
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < SUPERBLOCK_LEN {
            return Err(Error::NotARing { path: path.into() });
        }
        // SAFETY: the file is locked against other lpo writers; readers map it read-only.
        let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| Error::io(path, e))?;
        let sb = Superblock::decode_file(&map[..SUPERBLOCK_LEN as usize], len, path)?;
        if sb.flags & FLAG_CAPTURE != 0 && !capture {
            return Err(Error::Invalid(format!(
                "{} is an exported capture, not a ring: record into a ring",
                path.display()
            )));
        }
        if size.is_some_and(|z| !report.created && sb.file_size != z) {
            report.existing_size = Some(sb.file_size);
        }
        // Write the host header into the older slot.
        let gen = ring::read_host(&map).map(|(g, _)| g).unwrap_or(0) + 1;
        let slot = ring::encode_host_slot(host, gen)?;
        let o = (HEADER_SLOT_OFF + (gen % 2) * HEADER_SLOT_LEN) as usize;
        map[o..o + slot.len()].copy_from_slice(&slot);
        let boot_id = boot_id_bytes(&host.boot_id);
        let mut w = RingWriter {
            path: path.into(),
            _file: file,
            map,
            sb: sb.clone(),
            streams: Vec::new(),
            boot_id,
            last_key: i64::MIN,
            zstd_level: 9,
            capture_dest: None,
        };
        for spec in specs {
            match sb.streams.iter().position(|e| e.name == spec.name) {
                Some(idx) => {
                    let e = sb.streams[idx].clone();
                    if e.codec != spec.codec {
                        return Err(Error::Invalid(format!(
                            "stream {} has codec {} in the ring, {} requested",
                            e.name, e.codec, spec.codec
                        )));
                    }
                    w.streams.push(StreamW {
                        idx,
                        e,
                        spec: spec.clone(),
                        stager: KvStager::default(),
                        pending: Vec::new(),
                        pending_log: Vec::new(),
                        table: None,
                        last_key: i64::MIN,
                        staging_used: 0,
                        staging_peak: 0,
                        block_peak: 0,
                        blocks_written: 0,
                        bytes_written: 0,
                        boot_id,
                    })
                }
                None => report.missing_streams.push(spec.name.clone()),
            }
        }
        for i in 0..w.streams.len() {
            report.recovered_samples += w.recover(i)?;
        }
        w.map.flush().map_err(|e| Error::io(&w.path, e))?;
        Ok((w, report))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }
    /// Position of a stream in this writer (not in the file), by name.
    pub fn stream(&self, name: &str) -> Option<usize> {
        self.streams.iter().position(|s| s.spec.name == name)
    }
    /// The newest key in the ring: new samples must have a larger key.
    pub fn last_key(&self) -> Option<i64> {
        (self.last_key != i64::MIN).then_some(self.last_key)
    }
    pub fn set_zstd_level(&mut self, level: i32) {
        self.zstd_level = level;
    }

    /// Bring a stream's head in line with what is in the file after a crash,
    /// and seal any staged samples into a block. Returns samples recovered.
    fn recover(&mut self, i: usize) -> Result<usize> {
        let (idx, e) = (self.streams[i].idx, self.streams[i].e.clone());
        let h = head_off(idx);
        if self.map[h as usize..h as usize + 4] != HEAD_MAGIC {
            return Err(Error::corrupt(h, "stream head magic missing"));
        }
        // A block whose index entry landed but whose head update did not.
        loop {
            let st = ring::read_head(&self.map, idx);
            let io = (e.index_off + (st.next_seq % e.index_entries) * INDEX_ENTRY_LEN) as usize;
            match IndexEntry::decode(&self.map[io..io + INDEX_ENTRY_LEN as usize]) {
                Some(ent)
                    if ent.seq == st.next_seq
                        && ent.vpos >= st.write_vpos
                        && self.block_ok(&e, &ent) =>
                {
                    store(
                        &mut self.map,
                        h + head::WRITE_VPOS as u64,
                        ent.vpos + ent.total_len as u64,
                    );
                    store(&mut self.map, h + head::NEXT_SEQ as u64, st.next_seq + 1);
                }
                _ => break,
            }
        }
        let st = ring::read_head(&self.map, idx);
        let mut newest = i64::MIN;
        if st.next_seq > st.tail_seq {
            let io =
                (e.index_off + ((st.next_seq - 1) % e.index_entries) * INDEX_ENTRY_LEN) as usize;
            if let Some(ent) = IndexEntry::decode(&self.map[io..io + INDEX_ENTRY_LEN as usize]) {
                newest = ent.last_key;
            }
        }
        let slen = st.staging_len.min(e.staging_len) as usize;
        let so = e.staging_off as usize;
        let (recs, _) = ring::staged_records(&self.map[so..so + slen]);
        let mut recovered = 0;
        if !recs.is_empty() && e.codec == CODEC_TABLE {
            if let Ok(Some((b, boot))) =
                table::builder_from_staged(recs.iter().copied(), e.staging_off)
            {
                // Keep only samples after the newest block (a crash between seal and reset).
                let keep = b.times().iter().all(|t| t.0 > newest);
                if b.n_samples() > 0 && keep {
                    recovered = b.n_samples() as usize;
                    self.streams[i].table = Some(b);
                    self.streams[i].boot_id = boot;
                    self.seal(i)?;
                    newest = newest.max(self.last_key);
                }
            }
        } else if !recs.is_empty() && e.codec == CODEC_LOG {
            if let Ok(batch) = log::decode_staged(recs, e.staging_off) {
                let samples: Vec<LogSample> = batch
                    .samples
                    .into_iter()
                    .filter(|s| s.key > newest)
                    .collect();
                if !samples.is_empty() {
                    recovered = samples.len();
                    let s = &mut self.streams[i];
                    s.pending_log = samples;
                    s.boot_id = batch.boot_id;
                    self.seal(i)?;
                    newest = newest.max(self.last_key);
                }
            }
        } else if !recs.is_empty() {
            if let Ok(batch) = kv::decode_staged(recs, e.staging_off) {
                let samples: Vec<KvSample> = batch
                    .samples
                    .into_iter()
                    .filter(|s| s.key > newest)
                    .collect();
                if !samples.is_empty() {
                    recovered = samples.len();
                    let s = &mut self.streams[i];
                    s.pending = samples;
                    s.stager.names = batch.names;
                    s.boot_id = batch.boot_id;
                    self.seal(i)?;
                    newest = newest.max(self.last_key);
                }
            }
        }
        self.reset_staging(i);
        self.last_key = self.last_key.max(newest);
        self.streams[i].last_key = newest;
        Ok(recovered)
    }

    fn block_ok(&self, e: &StreamEntry, ent: &IndexEntry) -> bool {
        let len = ent.total_len as u64;
        if len < BLOCK_HEADER_LEN || len > e.data_len {
            return false;
        }
        let phys = ent.vpos % e.data_len;
        if phys + len > e.data_len {
            return false;
        }
        let o = (e.data_off + phys) as usize;
        let b = &self.map[o..o + len as usize];
        match BlockHeader::decode(b, o as u64) {
            Ok(bh) => {
                bh.seq == ent.seq
                    && bh.vpos == ent.vpos
                    && crc32c::crc32c(&b[BLOCK_HEADER_LEN as usize..]) == bh.payload_crc
            }
            Err(_) => false,
        }
    }

    fn reset_staging(&mut self, i: usize) {
        let idx = self.streams[i].idx;
        let h = head_off(idx);
        let gen = load(&self.map, h + head::STAGING_GEN as u64);
        store(&mut self.map, h + head::STAGING_GEN as u64, gen + 1);
        store(&mut self.map, h + head::STAGING_LEN as u64, 0);
        let s = &mut self.streams[i];
        s.staging_used = 0;
        s.stager.reset();
        s.pending.clear();
        s.pending_log.clear();
        s.table = None;
        s.boot_id = self.boot_id;
    }

    /// Append one sample of named counters to stream `i`. When this returns,
    /// the sample is in the mapped file (it survives `kill -9` of this process).
    pub fn append_kv<'a>(
        &mut self,
        i: usize,
        key: i64,
        wall: i64,
        mono: i64,
        cols: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Result<()> {
        self.begin(i, key, CODEC_KV, "kv")?;
        let boot_id = self.boot_id;
        let s = &mut self.streams[i];
        let mut recs = Vec::new();
        let values = s.stager.stage(key, wall, mono, &boot_id, cols, &mut recs);
        self.write_staged(i, &recs)?;
        self.streams[i].pending.push(KvSample {
            key,
            wall,
            mono,
            values,
        });
        self.streams[i].last_key = key;
        self.last_key = self.last_key.max(key);
        Ok(())
    }

    /// Append one sample to log stream `i`. `encode(fresh, buf)` writes the
    /// sample's payload into `buf`; `fresh` is true when the sample is the
    /// first of a block, so the stream's encoder must start its per-block
    /// dictionaries over. It may be called twice for one sample (the second
    /// time fresh) when the sample did not fit the staging area and a block
    /// was sealed first. As with `append_kv`, the sample is in the mapped
    /// file when this returns.
    pub fn append_log(
        &mut self,
        i: usize,
        key: i64,
        wall: i64,
        mono: i64,
        encode: &mut dyn FnMut(bool, &mut Vec<u8>),
    ) -> Result<()> {
        self.begin(i, key, CODEC_LOG, "log")?;
        let mut payload = Vec::new();
        loop {
            let fresh = self.streams[i].n_pending() == 0;
            payload.clear();
            encode(fresh, &mut payload);
            if payload.len() > log::MAX_PAYLOAD {
                return Err(Error::Invalid(format!(
                    "a {}-byte sample is larger than a log sample may be",
                    payload.len()
                )));
            }
            let mut recs = Vec::with_capacity(2);
            if fresh {
                recs.push(log::header_record(&self.boot_id));
            }
            recs.push(log::sample_record(key, wall, mono, &payload));
            match self.write_staged(i, &recs) {
                Ok(()) => break,
                Err(_) if !fresh => {
                    self.seal(i)?;
                    self.reset_staging(i);
                }
                Err(err) => {
                    self.reset_staging(i);
                    return Err(err);
                }
            }
        }
        self.streams[i].pending_log.push(LogSample {
            key,
            wall,
            mono,
            payload,
        });
        self.streams[i].last_key = key;
        self.last_key = self.last_key.max(key);
        Ok(())
    }

    /// What every append starts with: the key moves forward, the stream
    /// uses `codec`, and a full block is sealed first.
    fn begin(&mut self, i: usize, key: i64, codec: u8, what: &str) -> Result<()> {
        self.check_key(i, key)?;
        if self.streams[i].e.codec != codec {
            return Err(Error::Invalid(format!(
                "stream {} is not a {what} stream",
                self.streams[i].spec.name
            )));
        }
        if self.streams[i].must_seal(key) {
            self.seal(i)?;
            self.reset_staging(i);
        }
        Ok(())
    }

    fn check_key(&self, i: usize, key: i64) -> Result<()> {
        let last = self.streams[i].last_key;
        if key <= last {
            return Err(Error::Invalid(format!(
                "sample key {key} is not after stream {}'s last key {last}",
                self.streams[i].spec.name
            )));
        }
        Ok(())
    }

    /// Append one sample of rows (and events) to table stream `i`. As with
    /// `append_kv`, the sample is in the mapped file when this returns.
    pub fn append_table(
        &mut self,
        i: usize,
        key: i64,
        wall: i64,
        mono: i64,
        rows: &[RowIn],
        events: &[Event],
    ) -> Result<()> {
        self.begin(i, key, CODEC_TABLE, "table")?;
        let boot_id = self.boot_id;
        let s = &mut self.streams[i];
        let mut recs = Vec::new();
        if s.table.is_none() {
            // The schema is cloned once per block, not per sample.
            let Some(schema) = s.spec.table.clone() else {
                return Err(Error::Invalid(format!(
                    "stream {} has no table schema",
                    s.spec.name
                )));
            };
            let b = TableBuilder::new(schema);
            recs.push(b.schema_record(&boot_id));
            s.table = Some(b);
        }
        recs.push(
            s.table
                .as_mut()
                .unwrap()
                .push(key, wall, mono, rows, events),
        );
        if let Err(err) = self.write_staged(i, &recs) {
            // Did not fit what is left of staging: rebuild the builder from
            // what is staged (dropping this sample), seal it, and retry once
            // in an empty staging area.
            let s = &self.streams[i];
            if s.n_pending() > 1 {
                let (off, used) = (s.e.staging_off as usize, s.staging_used as usize);
                let rebuilt = {
                    let (good, _) = ring::staged_records(&self.map[off..off + used]);
                    table::builder_from_staged(good.iter().copied(), off as u64)?
                };
                self.streams[i].table = rebuilt.map(|(b, _)| b);
                self.seal(i)?;
                self.reset_staging(i);
                return self.append_table(i, key, wall, mono, rows, events);
            }
            self.reset_staging(i);
            return Err(err);
        }
        self.streams[i].last_key = key;
        self.last_key = self.last_key.max(key);
        Ok(())
    }

    /// Write records to the staging area, then publish them (staging_len).
    fn write_staged(&mut self, i: usize, recs: &[Vec<u8>]) -> Result<()> {
        let s = &self.streams[i];
        let need: u64 = recs.iter().map(|r| 8 + r.len() as u64).sum();
        if s.staging_used + need > s.e.staging_len {
            return Err(Error::Invalid(format!(
                "a {need}-byte sample does not fit the {}-byte staging area of stream {}",
                s.e.staging_len, s.spec.name
            )));
        }
        let mut p = (s.e.staging_off + s.staging_used) as usize;
        for r in recs {
            self.map[p..p + 4].copy_from_slice(&(r.len() as u32).to_le_bytes());
            self.map[p + 4..p + 8].copy_from_slice(&crc32c::crc32c(r).to_le_bytes());
            self.map[p + 8..p + 8 + r.len()].copy_from_slice(r);
            p += 8 + r.len();
        }
        let s = &mut self.streams[i];
        s.staging_used += need;
        s.staging_peak = s.staging_peak.max(s.staging_used);
        let (used, h) = (s.staging_used, head_off(s.idx));
        store(&mut self.map, h + head::STAGING_LEN as u64, used);
        Ok(())
    }

    /// Compress the pending samples of stream `i` into a block in the data area.
    /// The staging area is left as is; callers reset it after.
    fn seal(&mut self, i: usize) -> Result<()> {
        let s = &self.streams[i];
        if s.n_pending() == 0 {
            return Ok(());
        }
        let e = s.e.clone();
        let (raw, times): (Vec<u8>, Vec<(i64, i64)>) = match &s.table {
            Some(b) => (b.finish(), b.times().iter().map(|t| (t.0, t.1)).collect()),
            None if e.codec == CODEC_LOG => (
                log::encode_block(&s.pending_log),
                s.pending_log.iter().map(|x| (x.key, x.wall)).collect(),
            ),
            None => (
                kv::encode_block(&s.stager.names, &s.pending),
                s.pending.iter().map(|x| (x.key, x.wall)).collect(),
            ),
        };
        let comp = zstd::bulk::compress(&raw, self.zstd_level)
            .map_err(|err| Error::io(&self.path, err))?;
        let total = BLOCK_HEADER_LEN + comp.len() as u64;
        if total > e.data_len / 2 || raw.len() as u64 > MAX_BLOCK_RAW {
            return Err(Error::Invalid(format!("a {total}-byte block is too large for stream {}'s {}-byte data area; use a larger ring", e.name, e.data_len)));
        }
        let h = head_off(s.idx);
        let st = ring::read_head(&self.map, s.idx);
        let seq = st.next_seq;
        let mut vpos = st.write_vpos;
        let phys = vpos % e.data_len;
        if phys + total > e.data_len {
            vpos += e.data_len - phys; // blocks never straddle the end of the data area
        }
        let new_vpos = vpos + total;
        // Evict: blocks the new one overwrites, and the one whose index slot it reuses.
        let mut tail = st.tail_seq;
        while tail < seq {
            let io = (e.index_off + (tail % e.index_entries) * INDEX_ENTRY_LEN) as usize;
            let live = match IndexEntry::decode(&self.map[io..io + INDEX_ENTRY_LEN as usize]) {
                Some(ent) if ent.seq == tail => {
                    ent.vpos + e.data_len >= new_vpos && seq - tail < e.index_entries
                }
                _ => false,
            };
            if live {
                break;
            }
            tail += 1;
        }
        store(&mut self.map, h + head::TAIL_SEQ as u64, tail);
        let bh = BlockHeader {
            codec: e.codec,
            stream: s.idx as u16,
            seq,
            vpos,
            first_key: times[0].0,
            last_key: times[times.len() - 1].0,
            first_wall: times.iter().map(|x| x.1).min().unwrap(),
            last_wall: times.iter().map(|x| x.1).max().unwrap(),
            n_samples: times.len() as u32,
            payload_len: comp.len() as u32,
            raw_len: raw.len() as u32,
            payload_crc: crc32c::crc32c(&comp),
            boot_id: s.boot_id,
        };
        let hb = bh.encode();
        let o = (e.data_off + vpos % e.data_len) as usize;
        self.map[o..o + hb.len()].copy_from_slice(&hb);
        self.map[o + hb.len()..o + total as usize].copy_from_slice(&comp);
        let ent = IndexEntry {
            seq,
            vpos,
            first_key: bh.first_key,
            last_key: bh.last_key,
            first_wall: bh.first_wall,
            last_wall: bh.last_wall,
            total_len: total as u32,
            n_samples: bh.n_samples,
            header_crc: BlockHeader::crc_of(&hb),
        };
        let io = (e.index_off + (seq % e.index_entries) * INDEX_ENTRY_LEN) as usize;
        self.map[io..io + INDEX_ENTRY_LEN as usize].copy_from_slice(&ent.encode());
        store(&mut self.map, h + head::WRITE_VPOS as u64, new_vpos);
        store(&mut self.map, h + head::NEXT_SEQ as u64, seq + 1);
        let sealed = load(&self.map, h + head::SAMPLES_SEALED as u64);
        store(
            &mut self.map,
            h + head::SAMPLES_SEALED as u64,
            sealed + bh.n_samples as u64,
        );
        self.last_key = self.last_key.max(bh.last_key);
        let s = &mut self.streams[i];
        s.block_peak = s.block_peak.max(total);
        s.blocks_written += 1;
        s.bytes_written += total;
        Ok(())
    }

    /// What this writer has put in stream `i`: (most staging bytes one
    /// generation used, largest block, blocks, block bytes). Exports use it
    /// to size a capture exactly.
    pub fn usage(&self, i: usize) -> (u64, u64, u64, u64) {
        let s = &self.streams[i];
        (
            s.staging_peak,
            s.block_peak,
            s.blocks_written,
            s.bytes_written,
        )
    }

    /// Seal every stream's pending samples now (used at clean shutdown).
    pub fn seal_all(&mut self) -> Result<()> {
        for i in 0..self.streams.len() {
            self.seal(i)?;
            self.reset_staging(i);
        }
        Ok(())
    }

    /// msync: after this returns, everything appended survives a power cut.
    pub fn flush(&self) -> Result<()> {
        self.map.flush().map_err(|e| Error::io(&self.path, e))
    }

    /// Seal, flush and release the ring.
    pub fn close(mut self) -> Result<()> {
        self.seal_all()?;
        self.flush()
    }
}

fn create(path: &Path, size: u64, specs: &[StreamSpec], host: &HostHeader) -> Result<()> {
    let created_ns = host.started_ns;
    let table: Vec<_> = specs
        .iter()
        .map(|s| (s.name.clone(), s.codec, s.kind, s.weight))
        .collect();
    let sb = plan(size, &table, created_ns, 0).map_err(|e| match e {
        Error::TooSmall { size, min, .. } => Error::TooSmall {
            path: path.into(),
            size,
            min,
        },
        e => e,
    })?;
    let tmp = tmp_name(path);
    let result = create_file(&tmp, path, &sb, host)
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn tmp_name(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ring".into());
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Create `tmp` preallocated and initialised for `sb` (not renamed).
fn create_file(tmp: &Path, path: &Path, sb: &Superblock, host: &HostHeader) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let size = sb.file_size;
    {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
            .map_err(|e| Error::io(tmp, e))?;
        // SAFETY: fd is valid; posix_fallocate returns an errno value.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
        if rc == libc::ENOSPC || rc == libc::EDQUOT || rc == libc::EFBIG {
            return Err(Error::NoSpace {
                path: path.into(),
                size,
                available: available_bytes(dir),
            });
        } else if rc != 0 {
            return Err(Error::io(tmp, std::io::Error::from_raw_os_error(rc)));
        }
        // SAFETY: a new file only we know about.
        let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(|e| Error::io(tmp, e))?;
        map[..SUPERBLOCK_LEN as usize].copy_from_slice(&sb.encode());
        let slot = ring::encode_host_slot(host, 1)?;
        let o = (HEADER_SLOT_OFF + HEADER_SLOT_LEN) as usize; // generation 1 → slot 1
        map[o..o + slot.len()].copy_from_slice(&slot);
        for (i, _) in sb.streams.iter().enumerate() {
            let h = head_off(i) as usize;
            map[h..h + 4].copy_from_slice(&HEAD_MAGIC);
            map[h + 4..h + 8].copy_from_slice(&(i as u32).to_le_bytes());
        }
        map.flush().map_err(|e| Error::io(tmp, e))?;
        file.sync_all().map_err(|e| Error::io(tmp, e))?;
        Ok(())
    }
}
