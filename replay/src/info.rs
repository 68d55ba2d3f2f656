//! `lpo info`: what a ring or capture holds.

use crate::time::{format_local, format_rfc3339};
use crate::{host_tz, ReplayError};
use lpo_format::RingReader;
use serde_json::json;
use std::io::Write;
use std::path::Path;

fn human(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < U.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[u])
    }
}

pub fn info(path: &Path, as_json: bool, out: &mut dyn Write) -> Result<(), ReplayError> {
    let r = RingReader::open(path)?;
    let h = r.host().clone();
    let sb = r.superblock().clone();
    let tz = host_tz(&h);
    let streams: Vec<_> = (0..sb.streams.len()).map(|i| r.info(i)).collect();
    let corrupt: u64 = streams.iter().map(|s| s.corrupt_blocks).sum();
    let checksum = r.verify_file_crc();
    let mismatch = || {
        Err(ReplayError::NoData(format!(
            "{}: whole-file checksum MISMATCH: the capture was changed or damaged after export",
            path.display()
        )))
    };
    let first = streams.iter().filter_map(|s| s.first_wall).min();
    let last = streams.iter().filter_map(|s| s.last_wall).max();
    let rfc = |t: Option<i64>| t.map(|t| format_rfc3339(t, &tz));
    let per_sample = |s: &lpo_format::StreamInfo| {
        let sealed = s.samples - s.staged_samples;
        let sealed_bytes = s.bytes.saturating_sub(
            r.head(sb.streams.iter().position(|e| e.name == s.name).unwrap())
                .staging_len,
        );
        (sealed > 0).then(|| sealed_bytes as f64 / sealed as f64)
    };
    if as_json {
        let v = json!({
            "file": path.display().to_string(),
            "format_version": format!("{}.{}", sb.major, sb.minor),
            "file_size": sb.file_size,
            "capture": sb.flags & lpo_format::layout::FLAG_CAPTURE != 0,
            "checksum": checksum.map(|ok| if ok { "ok" } else { "mismatch" }),
            "host": {
                "hostname": h.hostname, "kernel_release": h.kernel_release, "kernel_version": h.kernel_version,
                "arch": h.arch, "boot_id": h.boot_id, "ncpu": h.ncpu, "clk_tck": h.clk_tck, "page_size": h.page_size,
                "timezone": h.timezone, "utc_offset_s": h.utc_offset_s,
            },
            "recorder": {
                "version": h.recorder_version, "pid": h.recorder_pid, "schema_version": h.schema_version,
                "started": format_rfc3339(h.started_ns, &tz), "started_ns": h.started_ns, "interval_ns": h.interval_ns, "flush_ns": h.flush_ns,
                "skipped": h.skipped,
            },
            "first": rfc(first),
            "last": rfc(last),
            "first_ns": first,
            "last_ns": last,
            "streams": streams.iter().map(|s| json!({
                "name": s.name, "samples": s.samples, "staged_samples": s.staged_samples, "blocks": s.blocks,
                "bytes": s.bytes, "budget": s.budget, "raw_bytes": s.raw_bytes,
                "bytes_per_sample": per_sample(s),
                "compression_ratio": (s.raw_bytes > 0).then(|| s.raw_bytes as f64 / s.bytes.max(1) as f64),
                "first": rfc(s.first_wall), "last": rfc(s.last_wall), "first_ns": s.first_wall, "last_ns": s.last_wall,
                "corrupt_blocks": s.corrupt_blocks,
            })).collect::<Vec<_>>(),
            "corrupt_blocks": corrupt,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap())?;
        return if checksum == Some(false) {
            mismatch()
        } else {
            Ok(())
        };
    }
    let kind = if sb.flags & lpo_format::layout::FLAG_CAPTURE != 0 {
        "capture"
    } else {
        "ring"
    };
    writeln!(
        out,
        "{:<12}{} ({}, format {}.{})",
        format!("{kind}:"),
        path.display(),
        human(sb.file_size),
        sb.major,
        sb.minor
    )?;
    writeln!(
        out,
        "host:       {}, Linux {} {}, {} CPUs, boot {}",
        h.hostname, h.kernel_release, h.arch, h.ncpu, h.boot_id
    )?;
    writeln!(
        out,
        "recorder:   lpo {} (pid {}), interval {} ms, flush {} ms, started {}",
        h.recorder_version,
        h.recorder_pid,
        h.interval_ns / 1_000_000,
        h.flush_ns / 1_000_000,
        format_local(h.started_ns, &tz)
    )?;
    writeln!(
        out,
        "time zone:  {}",
        if h.timezone.is_empty() {
            tz.name()
        } else {
            &h.timezone
        }
    )?;
    match checksum {
        Some(true) => writeln!(
            out,
            "checksum:   ok (crc32c of the whole file, verified now)"
        )?,
        Some(false) => writeln!(
            out,
            "checksum:   MISMATCH (changed or damaged after export)"
        )?,
        None => {}
    }
    match (first, last) {
        (Some(f), Some(l)) => {
            writeln!(out, "first:      {}", format_local(f, &tz))?;
            writeln!(out, "last:       {}", format_local(l, &tz))?;
        }
        _ => writeln!(out, "first:      (empty)\nlast:       (empty)")?,
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<10} {:>10} {:>7} {:>11} {:>11} {:>6} {:>13} {:>7}",
        "STREAM", "SAMPLES", "BLOCKS", "BYTES", "BUDGET", "USED", "BYTES/SAMPLE", "RATIO"
    )?;
    for s in &streams {
        writeln!(
            out,
            "{:<10} {:>10} {:>7} {:>11} {:>11} {:>5.1}% {:>13} {:>7}",
            s.name,
            s.samples,
            s.blocks,
            human(s.bytes),
            human(s.budget),
            s.bytes as f64 * 100.0 / s.budget.max(1) as f64,
            per_sample(s)
                .map(|b| format!("{b:.1}"))
                .unwrap_or_else(|| "-".into()),
            if s.raw_bytes > 0 {
                format!("{:.1}x", s.raw_bytes as f64 / s.bytes.max(1) as f64)
            } else {
                "-".into()
            },
        )?;
    }
    writeln!(out)?;
    writeln!(out, "corrupt blocks skipped: {corrupt}")?;
    for s in &h.skipped {
        writeln!(out, "not recorded: {s}")?;
    }
    if checksum == Some(false) {
        return mismatch();
    }
    Ok(())
}
