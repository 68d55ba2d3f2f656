//! Ring-level tests: wrap, crash recovery, corruption, seek.

use lpo_format::synth::SynthSystem;
use lpo_format::{BlockRead, HostHeader, RingReader, RingWriter, StreamSpec};
use std::path::Path;

const SEC: i64 = 1_000_000_000;

fn host() -> HostHeader {
    HostHeader {
        hostname: "test".into(),
        boot_id: "0123456789abcdef0123456789abcdef".into(),
        ncpu: 2,
        ..Default::default()
    }
}

fn fill(path: &Path, size: u64, n: i64, start: i64) -> RingWriter {
    let specs = [StreamSpec::kv("system", 1)];
    let (mut w, _) = RingWriter::open_or_create(path, size, &specs, &host()).unwrap();
    let s = w.stream("system").unwrap();
    let mut g = SynthSystem::new(2, 7);
    for t in 0..n {
        let k = start + t * SEC;
        w.append_kv(s, k, k, t * SEC, g.next_sample()).unwrap();
    }
    w
}

/// Every key in the stream, in order, read back through the public API.
fn all_keys(r: &RingReader) -> Vec<i64> {
    let i = r.stream("system").unwrap();
    let mut keys = Vec::new();
    for b in r.batches(i, i64::MIN, i64::MAX, &mut |e| {
        panic!("unexpected corruption: {e}")
    }) {
        keys.extend(b.times().iter().map(|s| s.0));
    }
    keys
}

#[test]
fn wraps_three_times_keeps_size_and_newest_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let size = 4 << 20;
    let mut w = fill(&path, size, 1, 0);
    let s = w.stream("system").unwrap();
    let mut g = SynthSystem::new(2, 3);
    let r = RingReader::open(&path).unwrap();
    let i = r.stream("system").unwrap();
    let data_len = r.superblock().streams[i].data_len;
    let mut t = 1i64;
    while r.head(i).write_vpos < 3 * data_len + data_len / 2 {
        w.append_kv(s, t * SEC, t * SEC, t * SEC, g.next_sample())
            .unwrap();
        t += 1;
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let keys = all_keys(&r);
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys strictly increasing"
    );
    assert_eq!(
        *keys.last().unwrap(),
        (t - 1) * SEC,
        "newest sample present"
    );
    assert!(keys[0] > 0, "oldest data was overwritten");
    let info = r.info(i);
    assert_eq!(info.corrupt_blocks, 0);
    assert_eq!(info.samples as usize, keys.len());
    // Seek: any key in range finds the block holding it.
    for probe in [
        keys[0],
        keys[keys.len() / 2] + SEC / 2,
        *keys.last().unwrap(),
    ] {
        let seq = r.find_block(i, probe).unwrap();
        let BlockRead::Ok(b) = r.read_block(i, seq).unwrap() else {
            panic!()
        };
        assert!(b.times()[0].0 <= probe);
    }
    eprintln!(
        "wrapped with {} samples kept, {} bytes/sample",
        keys.len(),
        info.bytes / info.samples.max(1)
    );
}

#[test]
fn unsealed_samples_survive_writer_death_and_are_sealed_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let w = fill(&path, 4 << 20, 450, 1000 * SEC); // 300 sealed, 150 staged
    std::mem::forget(w); // like kill -9: no seal, no flush, lock released at exit... here: leak
    let r = RingReader::open(&path).unwrap();
    let keys = all_keys(&r);
    assert_eq!(
        keys.len(),
        450,
        "staged samples readable while the writer is alive"
    );
    drop(r);
    // A second writer in this process gets the lock only after the fd is closed;
    // simulate the crashed process's exit by reopening through a fresh path handle.
}

#[test]
fn reopen_recovers_staged_samples() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    // Copy the file while a writer is mid-block: that copy is what a crash leaves.
    let w = fill(&path, 4 << 20, 450, 1000 * SEC);
    let crashed = dir.path().join("crashed.ring");
    std::fs::copy(&path, &crashed).unwrap();
    drop(w);
    let staged = {
        let r = RingReader::open(&crashed).unwrap();
        r.info(r.stream("system").unwrap()).staged_samples as usize
    };
    assert!(staged > 0);
    let (mut w2, rep) =
        RingWriter::open_or_create(&crashed, 4 << 20, &[StreamSpec::kv("system", 1)], &host())
            .unwrap();
    assert_eq!(rep.recovered_samples, staged);
    assert_eq!(w2.last_key(), Some(1449 * SEC));
    let s = w2.stream("system").unwrap();
    w2.append_kv(s, 1450 * SEC, 1450 * SEC, 0, [("x", 1)])
        .unwrap();
    assert!(
        w2.append_kv(s, 1450 * SEC, 0, 0, [("x", 1)]).is_err(),
        "keys must increase"
    );
    w2.close().unwrap();
    let keys = all_keys(&RingReader::open(&crashed).unwrap());
    assert_eq!(keys.len(), 451);
    assert_eq!(keys[449], 1449 * SEC);
}

#[test]
fn second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let _w = fill(&path, 2 << 20, 3, 0);
    let err = RingWriter::open_or_create(&path, 2 << 20, &[StreamSpec::kv("system", 1)], &host())
        .err()
        .unwrap();
    assert!(err.to_string().contains("already being recorded"), "{err}");
}

#[test]
fn file_is_private_and_preallocated() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let _w = fill(&path, 3 << 20, 1, 0);
    let m = std::fs::metadata(&path).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert_eq!(m.len(), 3 << 20);
    assert!(
        m.blocks() * 512 >= 3 << 20,
        "space is allocated, not sparse"
    );
}

#[test]
fn corruption_is_detected_and_skipped_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    fill(&path, 2 << 20, 2000, 0).close().unwrap();
    let clean = std::fs::read(&path).unwrap();
    let r = RingReader::open(&path).unwrap();
    let i = r.stream("system").unwrap();
    let e = r.superblock().streams[i].clone();
    let nblocks = r.info(i).blocks;
    assert!(nblocks >= 5);
    drop(r);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut detected = 0;
    for round in 0..300 {
        let mut m = clean.clone();
        match round % 3 {
            0 => {
                // flip bytes inside the data area
                for _ in 0..4 {
                    let o = e.data_off + rnd() % e.data_len;
                    m[o as usize] ^= 1 << (rnd() % 8);
                }
            }
            1 => {
                // zero a page anywhere
                let p = (rnd() % (m.len() as u64 / 4096)) as usize * 4096;
                m[p..p + 4096].fill(0);
            }
            _ => {
                // flip anywhere, including headers
                let o = rnd() % m.len() as u64;
                m[o as usize] ^= 0xff;
            }
        }
        let p = dir.path().join("m.ring");
        std::fs::write(&p, &m).unwrap();
        let Ok(r) = RingReader::open(&p) else {
            continue;
        };
        let Some(i) = r.stream("system") else {
            continue;
        };
        let info = r.info(i);
        let mut bad = 0;
        let batches = r.batches(i, i64::MIN, i64::MAX, &mut |_| bad += 1);
        for b in &batches {
            assert!(b.times().windows(2).all(|w| w[0].0 < w[1].0));
        }
        if info.corrupt_blocks > 0 || bad > 0 {
            detected += 1;
        }
        let _ = r.find_block(i, 500 * SEC);
    }
    assert!(detected > 50, "only {detected} corruptions detected");
    // Truncation: never panics, says truncated.
    for cut in [0usize, 10, 4096, 70_000, clean.len() / 2, clean.len() - 1] {
        let p = dir.path().join("t.ring");
        std::fs::write(&p, &clean[..cut]).unwrap();
        assert!(
            RingReader::open(&p).is_err(),
            "truncated at {cut} must be refused"
        );
    }
}

#[test]
fn wrap_model_every_live_block_is_intact() {
    // Random block sizes: after each seal, every block in [tail, next) must read back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let specs = [StreamSpec {
        max_block_samples: 7,
        ..StreamSpec::kv("system", 1)
    }];
    let (mut w, _) = RingWriter::open_or_create(&path, 1 << 20, &specs, &host()).unwrap();
    w.set_zstd_level(1);
    let s = w.stream("system").unwrap();
    let r = RingReader::open(&path).unwrap();
    let i = r.stream("system").unwrap();
    let mut x: u64 = 12345;
    for t in 1..20_000i64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let ncols = (x % 300) as usize;
        let names: Vec<String> = (0..ncols).map(|c| format!("c{c}")).collect();
        let cols: Vec<(&str, u64)> = names
            .iter()
            .map(|n| (n.as_str(), x.rotate_left(n.len() as u32)))
            .collect();
        w.append_kv(s, t, t, t, cols).unwrap();
        if t % 997 == 0 {
            for seq in r.seqs(i) {
                match r.read_block(i, seq) {
                    Ok(BlockRead::Ok(_)) => {}
                    other => panic!("block {seq} at t={t}: {other:?}"),
                }
            }
        }
    }
    let wraps = r.head(i).write_vpos / r.superblock().streams[i].data_len;
    assert!(wraps >= 2, "wrapped {wraps} times");
}

fn proc_schema() -> lpo_format::table::TableSchema {
    lpo_format::table::TableSchema {
        values: vec!["utime".into(), "rss".into()],
        attr_ints: vec!["pid".into()],
        attr_strs: vec!["comm".into()],
        event_ints: vec!["pid".into()],
        event_strs: vec![],
    }
}

#[test]
fn a_burst_in_one_stream_never_evicts_another() {
    use lpo_format::table::{Attrs, RowIn};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let specs = [
        StreamSpec::kv("system", 1),
        StreamSpec::table("process", 1, proc_schema()),
    ];
    let (mut w, _) = RingWriter::open_or_create(&path, 4 << 20, &specs, &host()).unwrap();
    let (s, p) = (w.stream("system").unwrap(), w.stream("process").unwrap());
    let mut g = SynthSystem::new(2, 9);
    // 200 system samples, then a huge burst of process samples.
    for t in 1..=200i64 {
        w.append_kv(s, t * SEC, t * SEC, t, g.next_sample())
            .unwrap();
    }
    let mut x = 1u64;
    for t in 201..6000i64 {
        let vals: Vec<Vec<u64>> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                vec![x, x >> 3]
            })
            .collect();
        let attrs = |pid: u64| {
            move || Attrs {
                ints: vec![pid],
                strs: vec![format!("proc-{pid}")],
            }
        };
        let fns: Vec<_> = (0..300u64).map(attrs).collect();
        let rows: Vec<RowIn> = (0..300)
            .map(|k| RowIn {
                ekey: k as u64 + t as u64 * 1000,
                attrs: &fns[k],
                values: &vals[k],
            })
            .collect();
        w.append_table(p, t * SEC, t * SEC, t, &rows, &[]).unwrap();
    }
    w.close().unwrap();
    let r = RingReader::open(&path).unwrap();
    let si = r.info(r.stream("system").unwrap());
    let pi = r.info(r.stream("process").unwrap());
    assert_eq!(
        si.samples, 200,
        "system history intact after the process burst"
    );
    assert!(
        pi.first_key.unwrap() > 201 * SEC,
        "the process stream wrapped within its own budget"
    );
    assert_eq!(si.corrupt_blocks + pi.corrupt_blocks, 0);
}

#[test]
fn table_stream_staging_survives_and_is_sealed_on_reopen() {
    use lpo_format::table::{Attrs, Event, RowIn};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.ring");
    let specs = [StreamSpec::table("process", 1, proc_schema())];
    let (mut w, _) = RingWriter::open_or_create(&path, 2 << 20, &specs, &host()).unwrap();
    let p = w.stream("process").unwrap();
    for t in 1..=50i64 {
        let vals = [vec![t as u64, 100], vec![7, 200]];
        let f1 = || Attrs {
            ints: vec![1],
            strs: vec!["init".into()],
        };
        let f2 = || Attrs {
            ints: vec![2],
            strs: vec!["bash".into()],
        };
        let rows = [
            RowIn {
                ekey: 1,
                attrs: &f1,
                values: &vals[0],
            },
            RowIn {
                ekey: 2,
                attrs: &f2,
                values: &vals[1],
            },
        ];
        let ev = [Event {
            ints: vec![t as u64 + 1000],
            strs: vec![],
        }];
        w.append_table(p, t * SEC, t * SEC, t, &rows, &ev).unwrap();
    }
    let crashed = dir.path().join("crashed.ring");
    std::fs::copy(&path, &crashed).unwrap();
    drop(w);
    let r = RingReader::open(&crashed).unwrap();
    let i = r.stream("process").unwrap();
    let staged = r.staged(i).unwrap().into_table().unwrap();
    assert_eq!(staged.times.len(), 50);
    assert_eq!(staged.entities[0].value(0, 49), Some(50));
    assert_eq!(staged.events.len(), 50);
    drop(r);
    let (w2, rep) = RingWriter::open_or_create(&crashed, 2 << 20, &specs, &host()).unwrap();
    assert_eq!(rep.recovered_samples, 50);
    drop(w2);
    let r = RingReader::open(&crashed).unwrap();
    let all: Vec<_> = r.batches(i, i64::MIN, i64::MAX, &mut |e| panic!("{e}"));
    let n: usize = all.iter().map(|b| b.len()).sum();
    assert_eq!(n, 50);
}

/// A per-block dictionary encoder, as perf and ftrace streams use: on a
/// fresh block it defines its words again; later samples refer to them.
#[test]
fn log_stream_dictionaries_restart_per_block_wrap_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.ring");
    let specs = [StreamSpec::kv("system", 1), StreamSpec::log("events", 1)];
    let words = ["alpha", "beta", "gamma"];
    let encode = |i: i64, fresh: bool, buf: &mut Vec<u8>| {
        if fresh {
            buf.push(b'D');
            for w in words {
                buf.extend_from_slice(w.as_bytes());
                buf.push(0);
            }
        } else {
            buf.push(b'R');
        }
        buf.push((i % 3) as u8);
        // Incompressible filler, so the 1 MiB ring wraps.
        let mut x = i as u64;
        for _ in 0..(i % 200) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            buf.push((x >> 56) as u8);
        }
    };
    let decode = |b: &lpo_format::log::LogBatch| -> Vec<String> {
        let mut dict: Vec<String> = Vec::new();
        let mut out = Vec::new();
        for (n, s) in b.samples.iter().enumerate() {
            let p = &s.payload;
            let mut at = 1;
            if p[0] == b'D' {
                dict.clear();
                for _ in 0..3 {
                    let end = at + p[at..].iter().position(|&c| c == 0).unwrap();
                    dict.push(String::from_utf8(p[at..end].to_vec()).unwrap());
                    at = end + 1;
                }
            } else {
                assert!(n > 0, "a block must start with a fresh sample");
            }
            out.push(dict[p[at] as usize].clone());
        }
        out
    };
    let (mut w, _) = RingWriter::open_or_create(&path, 1 << 20, &specs, &host()).unwrap();
    let s = w.stream("events").unwrap();
    let n = 20_000i64;
    for i in 1..=n {
        w.append_log(s, i * 1000, i * 1000, i, &mut |f, b| encode(i, f, b))
            .unwrap();
    }
    let r = RingReader::open(&path).unwrap();
    let i = r.stream("events").unwrap();
    let mut seen = Vec::new();
    for b in r.batches(i, i64::MIN, i64::MAX, &mut |e| panic!("{e}")) {
        let b = b.into_log().unwrap();
        let names = decode(&b);
        for (s, name) in b.samples.iter().zip(names) {
            assert_eq!(name, words[((s.key / 1000) % 3) as usize]);
            seen.push(s.key / 1000);
        }
    }
    // The ring wrapped: only the newest samples are left, in order, up to the last.
    assert_eq!(*seen.last().unwrap(), n);
    assert!(seen.len() < n as usize, "expected a wrap");
    assert!(seen.windows(2).all(|p| p[1] == p[0] + 1));
    // A writer that dies keeps its staged samples: a copy of the file taken
    // now is what a kill -9 leaves, and reopening it seals them.
    let staged = r.staged(i).unwrap().len();
    assert!(staged > 0);
    let crashed = dir.path().join("crashed.ring");
    std::fs::copy(&path, &crashed).unwrap();
    let (w2, rep) = RingWriter::open_or_create(&crashed, 1 << 20, &specs, &host()).unwrap();
    assert_eq!(rep.recovered_samples, staged);
    w2.close().unwrap();
    let r2 = RingReader::open(&crashed).unwrap();
    let j = r2.stream("events").unwrap();
    let last = r2.batches(j, i64::MIN, i64::MAX, &mut |e| panic!("{e}"));
    let b = last.last().unwrap().clone().into_log().unwrap();
    assert_eq!(b.samples.last().unwrap().key, n * 1000);
    decode(&b);
    drop(w);
}
