//! `lpo export`: copy a time slice of a ring into a standalone capture file
//! (same format, FLAG_CAPTURE, whole-file checksum), optionally redacted.
//!
//! The capture is written through the ring writer, sample by sample, so it
//! is the same format any reader already trusts, and redaction works on
//! decoded values (so redacted values are really gone, not just hidden):
//!
//! * kv and table streams keep the samples of the window plus the one just
//!   before it (views derive rates from pairs of samples);
//! * log streams (kernel log, perf, ftrace) keep whole blocks overlapping the
//!   window, with the same block boundaries: their payloads may refer to
//!   per-block dictionaries, so a block is never split.
//!
//! Regions are sized from what they will hold (`plan_exact`), so a capture
//! is small; a capture that would not hold every sample is retried larger,
//! never shipped short.

use crate::redact::{Redaction, Redactor};
use crate::run::wall_to_key;
use crate::time::{format_local, parse_time};
use crate::ReplayError;
use lpo_format::layout::{plan_exact, CODEC_KV, CODEC_LOG, CODEC_TABLE};
use lpo_format::table::{Attrs, RowIn};
use lpo_format::{Batch, BlockRead, RingReader, RingWriter, StreamSpec};
use std::path::PathBuf;

/// Arguments of `lpo export`.
#[derive(Debug, Clone, Default)]
pub struct ExportArgs {
    pub file: PathBuf,
    pub out: PathBuf,
    pub from: String,
    pub to: String,
    /// Streams to keep (ring names or aliases); empty: all.
    pub streams: Vec<String>,
    pub redact: Vec<Redaction>,
    pub utc: bool,
    pub now_ns: Option<i64>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// (stream, samples) kept.
    pub streams: Vec<(String, u64)>,
    /// One line per kind of value redacted, with counts.
    pub redacted: Vec<String>,
    /// Damaged source blocks skipped.
    pub skipped_blocks: Vec<String>,
    pub from_ns: i64,
    pub to_ns: i64,
}

/// Stream names users may type, mapped to ring stream names.
fn canonical(name: &str) -> &str {
    match name {
        "processes" | "proc" => "process",
        "conntrack" | "disks" | "network" | "net" => "kernel",
        "kernel-log" | "dmesg" => "kmsg",
        other => other,
    }
}

struct Plan {
    /// The source stream.
    src: usize,
    spec: StreamSpec,
    sources: Vec<Src>,
    /// Samples the sources hold (for progress).
    expected: u64,
    index_entries: u64,
    staging: u64,
    data: u64,
}

/// Export a slice of `args.file` to `args.out`. `progress(done, total)` is
/// called as samples are written.
pub fn export(
    args: &ExportArgs,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ExportReport, ReplayError> {
    let crate::run::Opened {
        r,
        host,
        tz,
        sp,
        ctx,
    } = crate::run::open_for_time(&args.file, args.utc, args.now_ns)?;
    let (from_t, to_t) = (parse_time(&args.from, &ctx)?, parse_time(&args.to, &ctx)?);
    if from_t > to_t {
        return Err(ReplayError::Usage(format!(
            "--from {} is after --to {}",
            format_local(from_t, &tz),
            format_local(to_t, &tz)
        )));
    }
    if to_t < sp.first_wall || from_t > sp.last_wall {
        return Err(ReplayError::NoData(format!(
            "nothing recorded between {} and {}: the recording covers {} to {}",
            format_local(from_t, &tz),
            format_local(to_t, &tz),
            format_local(sp.first_wall, &tz),
            format_local(sp.last_wall, &tz)
        )));
    }
    let mut bad = Vec::new();
    let kf = wall_to_key(&r, from_t, &mut bad).max(sp.first_key);
    let kt = wall_to_key(&r, to_t, &mut bad);

    // Which streams.
    let all: Vec<String> = r
        .superblock()
        .streams
        .iter()
        .map(|e| e.name.clone())
        .collect();
    let mut want: Vec<String> = if args.streams.is_empty() {
        all.clone()
    } else {
        let mut v = vec!["system".to_string()]; // seek and the time span live there
        for s in &args.streams {
            let c = canonical(s).to_string();
            if !all.contains(&c) {
                return Err(ReplayError::Usage(format!(
                    "--streams: this recording has no stream {s:?} (it has: {})",
                    all.join(", ")
                )));
            }
            if !v.contains(&c) {
                v.push(c);
            }
        }
        v
    };
    want.retain(|n| all.contains(n));

    let mut red = Redactor::new(&args.redact, &host);
    let mut plans = Vec::new();
    for name in &want {
        let i = r.stream(name).expect("listed above");
        let e = r.superblock().streams[i].clone();
        if ![CODEC_KV, CODEC_TABLE, CODEC_LOG].contains(&e.codec) {
            continue; // a codec this reader does not know: nothing it could copy faithfully
        }
        // The blocks to read (one at a time, when writing: memory stays at
        // about one block whatever the window), sized from the index alone.
        let (t, n) = (r.seqs(i).start, r.seqs(i).end);
        let mut sources = Vec::new();
        let (mut src_bytes, mut max_raw, mut expected) = (0u64, 0u64, 0u64);
        if let Some(start) = r.find_block(i, kf).or((t < n).then_some(t)) {
            // kv and table streams also need the sample just before the window.
            let first = if e.codec != CODEC_LOG && start > t {
                start - 1
            } else {
                start
            };
            for seq in first..n {
                if let Some(ent) = r.entry(i, seq) {
                    if ent.first_key > kt {
                        break;
                    }
                    src_bytes += ent.total_len as u64;
                    max_raw = max_raw.max(r.raw_len(i, seq).unwrap_or(ent.total_len) as u64);
                    expected += ent.n_samples as u64;
                }
                sources.push(Src::Block(seq));
            }
        }
        sources.push(Src::Staged);
        let staged = r.head(i).staging_len.min(e.staging_len);
        max_raw = max_raw.max(staged);
        let mut spec = match e.codec {
            CODEC_KV => StreamSpec::kv(name, 1),
            CODEC_LOG => StreamSpec::log(name, 1),
            // The source's own field names (one block decoded to learn them).
            _ => StreamSpec::table(name, 1, table_schema_of(&r, i, &sources)),
        };
        spec.kind = e.kind;
        spec.max_block_samples = u32::MAX;
        spec.max_block_span_ns = i64::MAX;
        let factor = if e.codec == CODEC_LOG { 2 } else { 6 };
        plans.push(Plan {
            src: i,
            spec,
            index_entries: (sources.len() as u64 + 8) * 4,
            staging: (max_raw * factor + (64 << 10)).min(e.staging_len.max(128 << 10)),
            data: src_bytes + staged + 2 * max_raw + (256 << 10),
            sources,
            expected,
        });
    }
    let total: u64 = plans.iter().map(|p| p.expected).sum();
    let out_host = red.host();
    let mut exact = false;
    for attempt in 0..6 {
        let table: Vec<_> = plans
            .iter()
            .map(|p| {
                (
                    p.spec.name.clone(),
                    p.spec.codec,
                    p.spec.kind,
                    p.index_entries,
                    p.staging,
                    p.data,
                )
            })
            .collect();
        let sb = plan_exact(&table, host.started_ns, 0)?;
        let specs: Vec<_> = plans.iter().map(|p| p.spec.clone()).collect();
        let mut w = RingWriter::create_capture(&args.out, &sb, &specs, &out_host)?;
        let mut done = 0u64;
        let mut ok = true;
        let mut kept = Vec::new();
        // Damaged blocks are reported once, from the first pass.
        let mut pass_bad = Vec::new();
        for p in &plans {
            let wi = w.stream(&p.spec.name).expect("planned");
            let (good, n) = copy_stream(
                &r,
                p,
                &mut w,
                wi,
                &mut red,
                (kf, kt),
                &mut pass_bad,
                &mut |k| {
                    done += k;
                    progress(done.min(total), total);
                },
            )?;
            ok &= good;
            kept.push((p.spec.name.clone(), n));
        }
        if attempt == 0 {
            bad.extend(pass_bad);
        }
        if ok && !exact {
            // Sized generously: now that the real sizes are known, write it
            // again sized to fit (the same input gives the same blocks).
            for p in plans.iter_mut() {
                let wi = w.stream(&p.spec.name).expect("planned");
                let (peak, max_block, blocks, bytes) = w.usage(wi);
                p.staging = peak * 4 / 3 + 2 * 4096;
                p.data = bytes.max(2 * max_block) + 4 * 4096;
                p.index_entries = blocks + 1;
            }
            w.abort_capture();
            exact = true;
            red.reset_counts();
            continue;
        }
        if ok {
            let path = w.finish_capture()?;
            // Verify: every sample made it (none evicted by a wrap).
            let c = RingReader::open(&path)?;
            let full = kept
                .iter()
                .all(|(name, n)| c.stream(name).is_some_and(|i| c.info(i).samples == *n));
            if full {
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                return Ok(ExportReport {
                    path,
                    bytes,
                    streams: kept,
                    redacted: red.summary(),
                    skipped_blocks: bad,
                    from_ns: from_t,
                    to_ns: to_t,
                });
            }
            let _ = std::fs::remove_file(&path);
        } else {
            w.abort_capture();
        }
        // Too small somewhere: grow everything and go again.
        for p in plans.iter_mut() {
            p.staging = p.staging.saturating_mul(2);
            p.data = p.data.saturating_mul(2);
            p.index_entries = p.index_entries.saturating_mul(2);
        }
        red.reset_counts();
    }
    Err(ReplayError::NoData(
        "the capture could not be sized to hold the window (please report this)".into(),
    ))
}

fn table_schema_of(r: &RingReader, i: usize, sources: &[Src]) -> lpo_format::table::TableSchema {
    for src in sources {
        let b = match src {
            Src::Block(seq) => match r.read_block(i, *seq) {
                Ok(BlockRead::Ok(b)) => b,
                _ => continue,
            },
            Src::Staged => match r.staged(i) {
                Ok(b) => b,
                Err(_) => continue,
            },
        };
        if let Batch::Table(t) = b {
            if !t.schema.values.is_empty() {
                return t.schema;
            }
        }
    }
    lpo_format::schema::process::table_schema()
}

/// Where a source batch comes from.
#[derive(Debug, Clone, Copy)]
enum Src {
    Block(u64),
    Staged,
}

/// Copy one stream's part of the window, one source block at a time.
/// Returns (every log block stayed whole, samples written).
#[allow(clippy::too_many_arguments)]
fn copy_stream(
    r: &RingReader,
    p: &Plan,
    w: &mut RingWriter,
    wi: usize,
    red: &mut Redactor,
    (kf, kt): (i64, i64),
    bad: &mut Vec<String>,
    progress: &mut dyn FnMut(u64),
) -> Result<(bool, u64), ReplayError> {
    let log = p.spec.codec == CODEC_LOG;
    let (mut ok, mut n, mut last_key, mut started) = (true, 0u64, i64::MIN, false);
    let mut pred: Option<Batch> = None;
    for src in &p.sources {
        let b = match src {
            Src::Block(seq) => match r.read_block(p.src, *seq) {
                Ok(BlockRead::Ok(b)) => b,
                Ok(BlockRead::Gone) => continue,
                Err(e) => {
                    bad.push(e.to_string());
                    continue;
                }
            },
            Src::Staged => match r.staged(p.src) {
                Ok(b) => b,
                Err(e) => {
                    bad.push(e.to_string());
                    continue;
                }
            },
        };
        let times = b.times();
        let (Some(first), Some(last)) = (times.first(), times.last()) else {
            continue;
        };
        // The staged tail can repeat the newest block after a crash: skip it.
        if first.0 <= last_key {
            continue;
        }
        last_key = last.0;
        progress(times.len() as u64);
        if log {
            if first.0 <= kt && last.0 >= kf {
                ok &= write_batch(w, wi, &b, red)?;
                w.seal_stream(wi)?;
                n += times.len() as u64;
            }
            continue;
        }
        if let Some(k) = times.iter().map(|t| t.0).filter(|k| *k < kf).max() {
            pred = Some(slice(&b, k, k));
        }
        let inside = slice(&b, kf, kt);
        if inside.is_empty() {
            continue;
        }
        if !started {
            started = true;
            if let Some(pb) = pred.take() {
                write_batch(w, wi, &pb, red)?;
                w.seal_stream(wi)?;
                n += 1;
            }
        }
        write_batch(w, wi, &inside, red)?;
        w.seal_stream(wi)?;
        n += inside.len() as u64;
    }
    Ok((ok, n))
}

/// The samples of a kv or table batch with keys in [lo, hi].
fn slice(b: &Batch, lo: i64, hi: i64) -> Batch {
    match b {
        Batch::Kv(k) => {
            let mut k2 = lpo_format::kv::KvBatch {
                boot_id: k.boot_id,
                names: k.names.clone(),
                samples: Vec::new(),
            };
            k2.samples = k
                .samples
                .iter()
                .filter(|s| s.key >= lo && s.key <= hi)
                .cloned()
                .collect();
            Batch::Kv(k2)
        }
        Batch::Table(t) => Batch::Table(slice_table(t, lo, hi)),
        Batch::Log(l) => Batch::Log(l.clone()),
    }
}

/// The samples of a table batch with keys in [lo, hi].
fn slice_table(
    t: &lpo_format::table::TableBatch,
    lo: i64,
    hi: i64,
) -> lpo_format::table::TableBatch {
    let keep: Vec<u32> = (0..t.times.len() as u32)
        .filter(|&s| t.times[s as usize].0 >= lo && t.times[s as usize].0 <= hi)
        .collect();
    let (Some(&a), Some(&z)) = (keep.first(), keep.last()) else {
        return lpo_format::table::TableBatch {
            boot_id: t.boot_id,
            schema: t.schema.clone(),
            ..Default::default()
        };
    };
    let mut out = lpo_format::table::TableBatch {
        boot_id: t.boot_id,
        schema: t.schema.clone(),
        times: t.times[a as usize..=z as usize].to_vec(),
        entities: Vec::new(),
        events: Vec::new(),
    };
    for e in &t.entities {
        let (f, l) = (e.first.max(a), e.last.min(z));
        if f > l {
            continue;
        }
        let mut e2 = e.clone();
        e2.values = e
            .values
            .iter()
            .map(|v| v[(f - e.first) as usize..=(l - e.first) as usize].to_vec())
            .collect();
        e2.first = f - a;
        e2.last = l - a;
        out.entities.push(e2);
    }
    out.events = t
        .events
        .iter()
        .filter(|(s, _)| *s >= a && *s <= z)
        .map(|(s, ev)| (s - a, ev.clone()))
        .collect();
    out
}

/// Append one decoded batch to stream `wi` of `w` unchanged (no redaction),
/// as export does: used by the bench to build long rings from a real
/// recording. Returns false when a log batch did not fit in one generation.
pub fn append_batch(w: &mut RingWriter, wi: usize, b: &Batch) -> Result<bool, ReplayError> {
    let mut red = Redactor::new(&[], &lpo_format::HostHeader::default());
    write_batch(w, wi, b, &mut red)
}

/// Append one source batch. Returns false when a log block did not fit in
/// one generation (the caller retries with a larger capture).
fn write_batch(
    w: &mut RingWriter,
    wi: usize,
    b: &Batch,
    red: &mut Redactor,
) -> Result<bool, ReplayError> {
    match b {
        Batch::Kv(k) => {
            let names: Vec<String> = k.names.iter().map(|n| red.kv_name(n)).collect();
            for s in &k.samples {
                let cols = names
                    .iter()
                    .zip(&s.values)
                    .filter_map(|(n, v)| v.map(|v| (n.as_str(), v)));
                w.append_kv(wi, s.key, s.wall, s.mono, cols)?;
            }
            Ok(true)
        }
        Batch::Table(t) => {
            let attrs: Vec<Attrs> = t
                .entities
                .iter()
                .map(|e| red.attrs(&t.schema, &e.attrs))
                .collect();
            let events: Vec<(u32, lpo_format::table::Event)> = t
                .events
                .iter()
                .map(|(s, e)| (*s, red.event(&t.schema, e)))
                .collect();
            // One attribute closure per entity, made once per batch.
            let makers: Vec<_> = attrs.iter().map(|a| move || a.clone()).collect();
            let nf = t.schema.values.len();
            // Each entity's values sample-major ([sample][field]), so a
            // sample's row is one contiguous slice (the columns are
            // field-major: reading them per sample missed the cache).
            let rowmajor: Vec<Vec<u64>> = t
                .entities
                .iter()
                .map(|e| {
                    let cnt = (e.last - e.first + 1) as usize;
                    let mut m = vec![0u64; cnt * nf];
                    for (f, col) in e.values.iter().enumerate().take(nf) {
                        for (j, v) in col.iter().enumerate().take(cnt) {
                            m[j * nf + f] = *v;
                        }
                    }
                    m
                })
                .collect();
            for (s, times) in t.times.iter().enumerate() {
                let s = s as u32;
                let rows: Vec<RowIn> = (0..t.entities.len())
                    .filter(|&e| t.entities[e].first <= s && s <= t.entities[e].last)
                    .map(|e| {
                        let j = (s - t.entities[e].first) as usize * nf;
                        RowIn {
                            ekey: e as u64 + 1,
                            attrs: &makers[e],
                            values: &rowmajor[e][j..j + nf],
                        }
                    })
                    .collect();
                let evs: Vec<_> = events
                    .iter()
                    .filter(|(x, _)| *x == s)
                    .map(|(_, e)| e.clone())
                    .collect();
                w.append_table(wi, times.0, times.1, times.2, &rows, &evs)?;
            }
            Ok(true)
        }
        Batch::Log(l) => {
            let mut ok = true;
            for (n, s) in l.samples.iter().enumerate() {
                let payload = red.bytes(&s.payload);
                w.append_log(wi, s.key, s.wall, s.mono, &mut |fresh, buf| {
                    if fresh != (n == 0) {
                        ok = false;
                    }
                    buf.extend_from_slice(&payload);
                })?;
            }
            Ok(ok)
        }
    }
}
