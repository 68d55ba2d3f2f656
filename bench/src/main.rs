//! `lpo-bench`: helpers for `bench/run`.
//!
//! * `lpo-bench fill RING SIZE [INTERVAL_S]`: fill a new ring of SIZE bytes
//!   with realistic synthetic system samples (2 CPUs) through the format
//!   crate's writer, until it has wrapped once; prints the covered range.
//! * `lpo-bench stretch SRC DST SIZE`: build a ring of SIZE bytes (the
//!   daemon's stream layout) from a real recording SRC, repeating its system,
//!   process and kernel samples back to back into the past until each of
//!   those streams has wrapped once; the newest copy keeps SRC's own times. Prints
//!   `period_s=` (the shift between copies) and `copies=`, so bench/run can
//!   stretch the peers' files the same way.
//! * `lpo-bench time N CMD...`: run CMD N times, print the median and
//!   min/max wall time in milliseconds.

use lpo_format::synth::SynthSystem;
use lpo_format::{HostHeader, RingReader, RingWriter, StreamSpec};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const SEC: i64 = 1_000_000_000;

fn parse_size(s: &str) -> u64 {
    let (num, mult) = if let Some(n) = s.strip_suffix("GiB") {
        (n, 1u64 << 30)
    } else if let Some(n) = s.strip_suffix("MiB") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("KiB") {
        (n, 1 << 10)
    } else {
        (s, 1)
    };
    num.parse::<u64>().expect("size") * mult
}

fn fill(path: &Path, size: u64, interval_s: i64) {
    let _ = std::fs::remove_file(path);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let host = HostHeader {
        hostname: "bench".into(),
        kernel_release: "6.1.0-bench".into(),
        arch: "x86_64".into(),
        boot_id: "0123456789abcdef0123456789abcdef".into(),
        ncpu: 2,
        clk_tck: 100,
        page_size: 4096,
        timezone: "UTC".into(),
        interval_ns: (interval_s * SEC) as u64,
        ..Default::default()
    };
    let (mut w, _) = RingWriter::open_or_create(path, size, &[StreamSpec::kv("system", 1)], &host)
        .expect("create ring");
    w.set_zstd_level(3);
    let s = w.stream("system").unwrap();
    let r = RingReader::open(path).unwrap();
    let data_len = r.superblock().streams[0].data_len;
    let mut g = SynthSystem::new(2, 11);
    // Estimate how many samples wrap the ring once, then place them so the
    // newest sample is "now".
    let t0 = Instant::now();
    let mut n = 0i64;
    let start = now - 400_000_000 * SEC; // far enough back for any ring size
    let mut mono = 0i64;
    while r.head(0).write_vpos < data_len + data_len / 8 {
        let k = start + n * interval_s * SEC;
        mono += interval_s * SEC;
        w.append_kv(s, k, k, mono, g.next_sample()).unwrap();
        n += 1;
    }
    w.close().unwrap();
    let si = r.info(0);
    println!(
        "filled {} ({} MiB): {} samples kept of {} written in {:.1}s, {:.1} bytes/sample",
        path.display(),
        size >> 20,
        si.samples,
        n,
        t0.elapsed().as_secs_f64(),
        si.bytes as f64 / si.samples as f64
    );
}

fn stretch(src: &Path, dst: &Path, size: u64) {
    let r = RingReader::open(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let names = ["system", "process", "kernel"];
    let mut batches: Vec<Vec<lpo_format::Batch>> = Vec::new();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for n in names {
        let i = r
            .stream(n)
            .unwrap_or_else(|| panic!("{} has no {n} stream", src.display()));
        let b = r.batches(i, i64::MIN, i64::MAX, &mut |e| panic!("{n}: {e}"));
        for t in b.iter().flat_map(|b| b.times()) {
            first = first.min(t.0);
            last = last.max(t.0);
        }
        batches.push(b);
    }
    let interval = r.host().interval_ns as i64;
    // Whole seconds, so atop's and sadc's files can be shifted the same way.
    let period = ((last - first + interval) + SEC / 2) / SEC * SEC;
    let schema = batches[1]
        .iter()
        .find_map(|b| match b {
            lpo_format::Batch::Table(t) if !t.schema.values.is_empty() => Some(t.schema.clone()),
            _ => None,
        })
        .expect("no process samples");
    let specs = [
        StreamSpec::kv("system", 1),
        StreamSpec::table("process", 6, schema),
        StreamSpec::kv("kernel", 2),
        StreamSpec::log("kmsg", 1),
        StreamSpec::log("perf", 3),
        StreamSpec::log("ftrace", 3),
    ];
    let _ = std::fs::remove_file(dst);
    let (mut w, _) = RingWriter::open_or_create(dst, size, &specs, r.host()).expect("create ring");
    let out = RingReader::open(dst).unwrap();
    // Copies that wrap each stream once (+2); each stream gets only its
    // newest copies, so all end at SRC's own times.
    let need: Vec<i64> = (0..3)
        .map(|k| {
            let si = r.info(r.stream(names[k]).unwrap());
            let len = out.superblock().streams[k].data_len;
            (len / si.bytes.max(1)) as i64 + 2
        })
        .collect();
    let copies = *need.iter().max().unwrap();
    let t0 = Instant::now();
    let mut shifted = vec![0i64; 3];
    for c in 0..copies {
        let shift = -(copies - 1 - c) * period;
        for (k, bs) in batches.iter_mut().enumerate() {
            if c < copies - need[k] {
                continue;
            }
            let wi = w.stream(names[k]).unwrap();
            for b in bs.iter_mut() {
                shift_batch(b, shift - shifted[k]);
                lpo_replay::export::append_batch(&mut w, wi, b).expect("append");
            }
            shifted[k] = shift;
        }
        if c % 50 == 49 {
            eprintln!(
                "lpo-bench: copy {} of {copies}, {:.0} s",
                c + 1,
                t0.elapsed().as_secs_f64()
            );
        }
    }
    w.close().unwrap();
    println!(
        "period_s={} copies={copies} newest_key_s={} seconds={:.1}",
        period / SEC,
        last / SEC,
        t0.elapsed().as_secs_f64()
    );
}

fn shift_batch(b: &mut lpo_format::Batch, d: i64) {
    match b {
        lpo_format::Batch::Kv(k) => k.samples.iter_mut().for_each(|s| {
            s.key += d;
            s.wall += d;
            s.mono += d;
        }),
        lpo_format::Batch::Table(t) => t.times.iter_mut().for_each(|s| {
            s.0 += d;
            s.1 += d;
            s.2 += d;
        }),
        lpo_format::Batch::Log(l) => l.samples.iter_mut().for_each(|s| {
            s.key += d;
            s.wall += d;
            s.mono += d;
        }),
    }
}

fn time(n: usize, cmd: &[String]) {
    let mut ms = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let out = Command::new(&cmd[0]).args(&cmd[1..]).output().expect("run");
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
            std::process::exit(1);
        }
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "median_ms={:.2} min_ms={:.2} max_ms={:.2} runs={n}",
        ms[n / 2],
        ms[0],
        ms[n - 1]
    );
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.first().map(|s| s.as_str()) {
        Some("fill") if a.len() >= 3 => fill(
            Path::new(&a[1]),
            parse_size(&a[2]),
            a.get(3).map(|s| s.parse().unwrap()).unwrap_or(1),
        ),
        Some("time") if a.len() >= 3 => time(a[1].parse().unwrap(), &a[2..]),
        Some("stretch") if a.len() == 4 => {
            stretch(Path::new(&a[1]), Path::new(&a[2]), parse_size(&a[3]))
        }
        _ => {
            eprintln!(
                "usage: lpo-bench fill RING SIZE [INTERVAL_S] | lpo-bench stretch SRC DST SIZE | lpo-bench time N CMD..."
            );
            std::process::exit(2);
        }
    }
}
