//! Thousands of mutated captures (bit flips, truncations, spliced blocks,
//! lying lengths) through `info` and `replay`: never a panic, never a hang;
//! each ends in a clean error or a skipped block. The in-process loop covers
//! the decoder the way a fuzzer would (see fuzz/ for the cargo-fuzz target);
//! a sample of the cases also goes through the real binary.

use crate::harness::*;
use lpo_format::layout::*;
use std::time::{Duration, Instant};

/// Offsets of the length and offset fields a liar would target.
fn length_fields(c: &[u8]) -> Vec<(usize, usize)> {
    let mut v = vec![(16, 8), (32, 4), (12, 4)];
    let sb = Superblock::decode(c, c.len() as u64).unwrap().unwrap();
    for (i, e) in sb.streams.iter().enumerate() {
        let o = STREAM_ENTRY_OFF + i * STREAM_ENTRY_LEN;
        for f in [32, 40, 48, 56, 64, 72] {
            v.push((o + f, 8));
        }
        let h = (HEADS_OFF + i as u64 * HEAD_LEN) as usize;
        for f in [8, 16, 24, 32, 40] {
            v.push((h + f, 8));
        }
        for k in 0..e.index_entries.min(8) {
            let io = (e.index_off + k * INDEX_ENTRY_LEN) as usize;
            for (f, w) in [(0, 8), (8, 8), (40, 4), (44, 4)] {
                v.push((io + f, w));
            }
        }
        // Block headers at the start of the data area.
        let bo = e.data_off as usize;
        for (f, w) in [(8, 8), (16, 8), (64, 4), (68, 4), (72, 4)] {
            v.push((bo + f, w));
        }
    }
    v.retain(|(o, w)| o + w <= c.len());
    v
}

fn mutate(rng: &mut Rng, c: &[u8], fields: &[(usize, usize)]) -> (String, Vec<u8>) {
    let mut m = c.to_vec();
    let n = m.len() as u64;
    match rng.below(5) {
        0 => {
            let k = 1 + rng.below(8);
            for _ in 0..k {
                let o = rng.below(n) as usize;
                m[o] ^= 1 << rng.below(8);
            }
            (format!("{k} bit flips"), m)
        }
        1 => {
            let l = rng.below(n) as usize;
            m.truncate(l);
            (format!("truncated to {l}"), m)
        }
        2 => {
            // Splice: a chunk copied over another place (a block where an
            // index entry or another block should be).
            let len = 64 + rng.below(8192) as usize;
            let a = rng.below(n.saturating_sub(len as u64)) as usize;
            let b = rng.below(n.saturating_sub(len as u64)) as usize;
            let chunk = m[a..a + len].to_vec();
            m[b..b + len].copy_from_slice(&chunk);
            (format!("spliced {len} bytes from {a} to {b}"), m)
        }
        3 => {
            let (o, w) = fields[rng.below(fields.len() as u64) as usize];
            let v: u64 = match rng.below(5) {
                0 => 0,
                1 => u64::MAX,
                2 => u32::MAX as u64,
                3 => rng.next() % (n * 2),
                _ => rng.next(),
            };
            m[o..o + w].copy_from_slice(&v.to_le_bytes()[..w]);
            (format!("length/offset field at {o} set to {v:#x}"), m)
        }
        _ => {
            // A zeroed page, as after a torn write.
            let o = (rng.below(n) as usize) & !4095;
            let e = (o + 4096).min(m.len());
            m[o..e].fill(0);
            (format!("zeroed page at {o}"), m)
        }
    }
}

#[test]
fn thousands_of_mutated_captures_never_panic_or_hang() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let f = r.to_str().unwrap();
    let mut rec = start_recorder(&r, &["--size", "16MiB", "--interval", "100ms"]);
    wait_samples(&r, 30, Duration::from_secs(30));
    rec.signal(libc::SIGTERM);
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
    let v = info_json(&r);
    let (first, last) = (
        v["first_ns"].as_i64().unwrap(),
        v["last_ns"].as_i64().unwrap(),
    );
    let cap = d.path().join("c.lpo");
    run(&[
        "export",
        "-f",
        f,
        "--from",
        &format!("@{}", first / 1_000_000_000),
        "--to",
        &format!("@{}", last / 1_000_000_000 + 1),
        "-o",
        cap.to_str().unwrap(),
    ])
    .ok("export");
    let clean = std::fs::read(&cap).unwrap();
    let fields = length_fields(&clean);
    let mid = format!("@{}", (first + last) / 2_000_000_000);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let cases = std::env::var("LPO_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000u32);
    let m = d.path().join("m.lpo");
    let started = Instant::now();
    let (mut errors, mut oks, mut slowest) = (0u32, 0u32, Duration::ZERO);
    for case in 0..cases {
        let (what, bytes) = mutate(&mut rng, &clean, &fields);
        std::fs::write(&m, &bytes).unwrap();
        let t = Instant::now();
        let res = std::panic::catch_unwind(|| {
            let mut sink = Vec::new();
            let a = lpo_replay::info(&m, case % 2 == 0, &mut sink);
            let mut outs = Vec::new();
            for view in [
                vec![],
                vec!["top".to_string()],
                vec!["iostat".into(), "-x".into()],
            ] {
                let args = lpo_replay::ReplayArgs {
                    file: m.clone(),
                    at: Some(mid.clone()),
                    view,
                    ..Default::default()
                };
                outs.push(lpo_replay::replay(&args, &mut sink, &mut |_| {}).is_ok());
            }
            (a.is_ok(), outs)
        });
        let dt = t.elapsed();
        slowest = slowest.max(dt);
        match res {
            Ok((ok, outs)) => {
                if ok && outs.iter().all(|x| *x) {
                    oks += 1;
                } else {
                    errors += 1;
                }
            }
            Err(_) => panic!("case {case} ({what}) panicked"),
        }
        assert!(
            dt < Duration::from_secs(5),
            "case {case} ({what}) took {dt:?}: a hang"
        );
        // Every 100th case through the real binary: one line, non-zero or success.
        if case % 100 == 0 {
            for args in [
                vec!["info", "-f", m.to_str().unwrap()],
                vec!["replay", "-f", m.to_str().unwrap(), "--at", &mid, "top"],
            ] {
                let o = run(&args);
                o.assert_no_panic(&what);
                assert!(
                    matches!(o.code, 0..=2),
                    "{what}: exit {}: {}",
                    o.code,
                    o.stderr
                );
                // Warnings about skipped blocks may come first; the error is one line.
                if o.code != 0 {
                    let last = o.stderr.lines().last().unwrap_or("");
                    assert!(last.starts_with("lpo: "), "{what}: {}", o.stderr);
                    assert!(
                        o.stderr.lines().all(|l| l.starts_with("lpo: ")),
                        "{what}: {}",
                        o.stderr
                    );
                }
            }
        }
    }
    eprintln!(
        "{cases} mutated captures in {:?}: {oks} still fully readable, {errors} refused or partly skipped, slowest {slowest:?}",
        started.elapsed()
    );
    assert!(errors > cases / 10, "mutations should be noticed");
}
