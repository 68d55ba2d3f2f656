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
use crate::run::{span, wall_to_key};
use crate::time::{format_local, parse_time, TimeContext};
use crate::{host_tz, ReplayError};
use lpo_format::layout::{plan_exact, CODEC_KV, CODEC_LOG, CODEC_TABLE};
use lpo_format::table::{Attrs, RowIn};
use lpo_format::{Batch, RingReader, RingWriter, StreamSpec};
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
    spec: StreamSpec,
    batches: Vec<Batch>,
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
    let r = RingReader::open(&args.file)?;
    let host = r.host().clone();
    let tz = if args.utc {
        chrono_tz::UTC
    } else {
        host_tz(&host)
    };
    let sp = span(&r).ok_or_else(|| {
        ReplayError::NoData(format!("{}: nothing recorded yet", args.file.display()))
    })?;
    let now = args.now_ns.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    });
    let ctx = TimeContext {
        now_ns: now,
        tz,
        first_ns: sp.first_wall,
        last_ns: sp.last_wall,
    };
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
        let mut batches = r.batches(i, kf, kt, &mut |err| bad.push(err.to_string()));
        if e.codec != CODEC_LOG {
            trim(&r, i, &mut batches, kf, kt, &mut bad);
        }
        batches.retain(|b| !b.is_empty());
        // Size the region from the source blocks it covers.
        let (mut src_bytes, mut max_raw, mut n_blocks) = (0u64, 0u64, 0u64);
        let (t, n) = (r.seqs(i).start, r.seqs(i).end);
        if let Some(start) = r.find_block(i, kf).or((t < n).then_some(t)) {
            for seq in start..n {
                let Some(ent) = r.entry(i, seq) else { continue };
                if ent.first_key > kt {
                    break;
                }
                src_bytes += ent.total_len as u64;
                max_raw = max_raw.max(r.raw_len(i, seq).unwrap_or(ent.total_len) as u64);
                n_blocks += 1;
            }
        }
        let staged = r.head(i).staging_len.min(e.staging_len);
        max_raw = max_raw.max(staged);
        let mut spec = match e.codec {
            CODEC_KV => StreamSpec::kv(name, 1),
            CODEC_LOG => StreamSpec::log(name, 1),
            _ => StreamSpec::table(
                name,
                1,
                match batches.first() {
                    Some(Batch::Table(b)) => b.schema.clone(),
                    _ => lpo_format::schema::process::table_schema(),
                },
            ),
        };
        spec.kind = e.kind;
        spec.max_block_samples = u32::MAX;
        spec.max_block_span_ns = i64::MAX;
        let factor = if e.codec == CODEC_LOG { 2 } else { 6 };
        plans.push(Plan {
            spec,
            index_entries: (n_blocks + batches.len() as u64 + 8) * 2,
            staging: (max_raw * factor + (64 << 10)).min(e.staging_len.max(128 << 10)),
            data: src_bytes + staged + 2 * max_raw + (256 << 10),
            batches,
        });
    }
    let total: u64 = plans
        .iter()
        .flat_map(|p| p.batches.iter().map(|b| b.len() as u64))
        .sum();
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
        for p in &plans {
            let wi = w.stream(&p.spec.name).expect("planned");
            let mut n = 0u64;
            for b in &p.batches {
                ok &= write_batch(&mut w, wi, b, &mut red)?;
                w.seal_stream(wi)?;
                n += b.len() as u64;
                done += b.len() as u64;
                progress(done, total);
            }
            kept.push((p.spec.name.clone(), n));
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
        let _ = attempt; // bounded: at most 4 tries, each twice the size
    }
    Err(ReplayError::NoData(
        "the capture could not be sized to hold the window (please report this)".into(),
    ))
}

/// Keep samples with keys in [predecessor of kf, kt].
fn trim(
    r: &RingReader,
    i: usize,
    batches: &mut Vec<Batch>,
    kf: i64,
    kt: i64,
    bad: &mut Vec<String>,
) {
    let mut prev = batches
        .iter()
        .flat_map(|b| b.times())
        .map(|t| t.0)
        .filter(|k| *k < kf)
        .max();
    if prev.is_none() {
        // The predecessor may be in the block before.
        let before = r.batches(
            i,
            kf.saturating_sub(3600 * 1_000_000_000),
            kf - 1,
            &mut |e| bad.push(e.to_string()),
        );
        if let Some(b) = before.into_iter().rev().find(|b| !b.is_empty()) {
            prev = b.times().last().map(|t| t.0);
            batches.insert(0, b);
        }
    }
    let lo = prev.unwrap_or(kf);
    for b in batches.iter_mut() {
        match b {
            Batch::Kv(k) => k.samples.retain(|s| s.key >= lo && s.key <= kt),
            Batch::Table(t) => *t = slice_table(t, lo, kt),
            Batch::Log(_) => {}
        }
    }
    // The same sample can come twice (staged tail after a crash): keep the first.
    let mut last = i64::MIN;
    batches.retain_mut(|b| {
        let keep = b.times().first().is_some_and(|t| t.0 > last);
        if keep {
            last = b.times().last().map(|t| t.0).unwrap_or(last);
        }
        keep
    });
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
            let nf = t.schema.values.len();
            let mut vals: Vec<Vec<u64>> = vec![Vec::new(); t.entities.len()];
            for (s, times) in t.times.iter().enumerate() {
                let s = s as u32;
                let present: Vec<usize> = (0..t.entities.len())
                    .filter(|&e| t.entities[e].first <= s && s <= t.entities[e].last)
                    .collect();
                for &e in &present {
                    vals[e] = (0..nf)
                        .map(|f| t.entities[e].value(f, s).unwrap_or(0))
                        .collect();
                }
                let closures: Vec<Box<dyn Fn() -> Attrs + '_>> = present
                    .iter()
                    .map(|&e| {
                        let a = &attrs[e];
                        Box::new(move || a.clone()) as Box<dyn Fn() -> Attrs>
                    })
                    .collect();
                let rows: Vec<RowIn> = present
                    .iter()
                    .zip(&closures)
                    .map(|(&e, c)| RowIn {
                        ekey: e as u64 + 1,
                        attrs: c.as_ref(),
                        values: &vals[e],
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
