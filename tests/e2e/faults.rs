//! Corrupt, truncated and hostile files; a full disk; a read-only place;
//! the wall clock stepped back; a small ring wrapped many times.

use crate::harness::*;
use std::process::Command;
use std::time::Duration;

fn recorded(samples: &str, interval: &str, size: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tmpdir();
    let r = ring_in(&d);
    run(&[
        "record",
        "-q",
        "-f",
        r.to_str().unwrap(),
        "--size",
        size,
        "--interval",
        interval,
        "--samples",
        samples,
    ])
    .ok("record");
    (d, r)
}

#[test]
fn flipped_zeroed_and_truncated_files_never_panic() {
    let _serial = serial();
    let (d, r) = recorded("1500", "2ms", "4MiB");
    let clean = std::fs::read(&r).unwrap();
    let v = info_json(&r);
    let last = v["last"].as_str().unwrap().to_string();
    let first = v["first"].as_str().unwrap().to_string();
    let blocks = v["streams"][0]["blocks"].as_u64().unwrap();
    assert!(blocks >= 4, "{v}");
    // The system stream's written blocks (spec: stream table entry 0 at 64,
    // data_off at +64; head page at 69632, write_vpos at +24; not wrapped yet),
    // which every replay below reads.
    let u64_at = |o: usize| u64::from_le_bytes(clean[o..o + 8].try_into().unwrap()) as usize;
    let (data_off, written) = (u64_at(64 + 64), u64_at(69632 + 24));
    assert!(written > 4096, "system blocks written: {written}");
    let mut rng = Rng(42);
    let (mut counted, mut warned) = (0, 0);
    for round in 0..60 {
        let mut m = clean.clone();
        match round % 4 {
            0 => {
                for _ in 0..8 {
                    let o = data_off + rng.below(written as u64) as usize;
                    m[o] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let p = data_off + rng.below((written / 4096).max(1) as u64) as usize * 4096;
                m[p..p + 4096].fill(0);
            }
            2 => {
                let o = rng.below(m.len() as u64) as usize;
                m[o] ^= 0xff;
            }
            _ => {
                let cut = rng.below(m.len() as u64) as usize;
                m.truncate(cut);
            }
        }
        let p = d.path().join("m.ring");
        std::fs::write(&p, &m).unwrap();
        let f = p.to_str().unwrap();
        let i = run(&["info", "--json", "-f", f]);
        i.assert_no_panic("info on a damaged file");
        if i.code != 0 {
            i.assert_clean_failure("info refuses a damaged file");
            continue;
        }
        let iv: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
        if iv["corrupt_blocks"].as_u64().unwrap() > 0 {
            counted += 1;
        }
        for args in [
            vec!["replay", "-f", f, "--at", &last, "vmstat"],
            vec!["replay", "-f", f, "--from", &first, "--to", &last, "mpstat"],
        ] {
            let o = run(&args);
            o.assert_no_panic("replay on a damaged file");
            if o.stderr.contains("skipped a damaged block") {
                warned += 1;
            }
            if o.code != 0 {
                assert_eq!(
                    o.stderr.lines().count(),
                    o.stderr.lines().filter(|l| l.starts_with("lpo: ")).count(),
                    "{}",
                    o.stderr
                );
            }
        }
    }
    eprintln!(
        "{counted} damaged files with corrupt blocks counted by info; {warned} replays warned"
    );
    assert!(
        counted >= 10,
        "info counted corrupt blocks in only {counted} of 60 damaged files"
    );
    assert!(
        warned >= 20, // 30 of the 60 files are damaged inside the system blocks every replay reads
        "replay warned about skipped blocks in only {warned} runs"
    );
}

#[test]
fn wall_clock_stepped_back_keeps_order_and_seek() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    // After 40 samples the recorder's wall clock reads one hour earlier.
    let o = run_cmd(lpo().env("LPO_TEST_CLOCK_STEP", "40:-3600").args([
        "record",
        "-q",
        "-f",
        r.to_str().unwrap(),
        "--size",
        "4MiB",
        "--interval",
        "20ms",
        "--samples",
        "80",
    ]));
    o.ok("record with a clock step");
    let v = info_json(&r);
    assert_eq!(v["streams"][0]["samples"], 80);
    // Every row of the whole recording comes out, in recorded order.
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--json",
        "--from",
        "@0",
        "--to",
        "@4000000000",
        "vmstat",
    ])
    .ok("replay across the step");
    let rows: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 79, "one row per interval");
    let walls: Vec<i64> = rows
        .iter()
        .map(|r| r["wall_ns"].as_i64().unwrap())
        .collect();
    let backs = walls.windows(2).filter(|w| w[1] < w[0]).count();
    assert_eq!(
        backs, 1,
        "the wall clock went back exactly once, and rows stay in recorded order"
    );
    // Seek: a time in the stepped hour finds the samples recorded with those wall times.
    let stepped = walls[60];
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--json",
        "--at",
        &format!("@{}", stepped as f64 / 1e9),
        "vmstat",
    ])
    .ok("seek after the step");
    let row: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let got = row[0]["wall_ns"].as_i64().unwrap();
    assert!(
        (got - stepped).abs() < 25_000_000,
        "seek found wall {got}, wanted {stepped}"
    );
}

#[test]
fn four_mib_ring_wraps_three_times() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let f = r.to_str().unwrap();
    let mut rec = start_recorder(
        &r,
        &["--size", "4MiB", "--interval", "1ms", "--flush", "1s"],
    );
    let t0 = std::time::Instant::now();
    let mut wrapped = false;
    while t0.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(500));
        // The system stream's data area has been overwritten at least 3
        // times, the (larger) process stream's at least once.
        let (sys, sys_len) = head_write_vpos(&r, 0);
        let (proc, proc_len) = head_write_vpos(&r, 1);
        if sys > 3 * sys_len && proc > proc_len {
            wrapped = true;
            break;
        }
    }
    eprintln!("wrapped 3 times in {:?}", t0.elapsed());
    rec.signal(libc::SIGTERM);
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
    assert!(wrapped, "ring did not wrap 3 times in 10 minutes");
    assert_eq!(
        std::fs::metadata(&r).unwrap().len(),
        4 << 20,
        "file size unchanged"
    );
    let v = info_json(&r);
    let first = v["first"].as_str().unwrap().to_string();
    let last = v["last"].as_str().unwrap().to_string();
    assert_eq!(v["corrupt_blocks"], 0);
    // Only the newest data: the system stream's oldest kept sample is much
    // younger than the recording's start.
    let started = v["recorder"]["started"].as_str().unwrap().to_string();
    let sys_first = v["streams"][0]["first_ns"].as_i64().unwrap();
    let start_ns = v["recorder"]["started_ns"].as_i64().unwrap();
    assert!(
        sys_first > start_ns + 5_000_000_000,
        "system stream keeps only newer data: first {sys_first}, started {started}"
    );
    let o = run(&["replay", "-f", f, "--at", &last, "vmstat"]).ok("seek to the end");
    assert!(o.stdout.contains(" r  b"));
    let o = run(&["replay", "-f", f, "--at", &first, "vmstat"]);
    o.assert_no_panic("seek to the oldest kept sample");
}

/// (write_vpos, data_len) of stream `i`, read straight from the file:
/// the head page (spec: HEADS_OFF + 4096 × i, field +24) and the stream
/// table (spec: 64 + 96 × i, data_len at +72).
fn head_write_vpos(r: &std::path::Path, i: u64) -> (u64, u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(r).unwrap();
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, 69632 + 4096 * i + 24).unwrap();
    let vpos = u64::from_le_bytes(b);
    f.read_exact_at(&mut b, 64 + 96 * i + 72).unwrap();
    (vpos, u64::from_le_bytes(b))
}

#[test]
fn full_disk_at_creation_leaves_nothing_behind() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root (mounts a small tmpfs)");
        return;
    }
    let d = tmpdir();
    let mnt = d.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs");
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(mnt.clone());
    let ring = mnt.join("lpo.ring");
    let o = run(&[
        "record",
        "-f",
        ring.to_str().unwrap(),
        "--size",
        "64MiB",
        "--samples",
        "1",
    ]);
    o.assert_clean_failure("disk full at creation");
    assert!(o.stderr.contains("not enough disk space"), "{}", o.stderr);
    assert_eq!(
        std::fs::read_dir(&mnt).unwrap().count(),
        0,
        "no half-made ring left behind"
    );
}

#[test]
fn read_only_location_is_a_clear_error() {
    let _serial = serial();
    let d = tmpdir();
    let ro = d.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    if is_root() {
        // Root ignores permission bits: use a read-only bind mount.
        let ok = Command::new("mount")
            .args(["--bind"])
            .arg(&ro)
            .arg(&ro)
            .status()
            .unwrap()
            .success()
            && Command::new("mount")
                .args(["-o", "remount,bind,ro"])
                .arg(&ro)
                .status()
                .unwrap()
                .success();
        assert!(ok, "read-only bind mount");
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    let ring = ro.join("lpo.ring");
    let o = run(&[
        "record",
        "-f",
        ring.to_str().unwrap(),
        "--size",
        "4MiB",
        "--samples",
        "1",
    ]);
    if is_root() {
        let _ = Command::new("umount").arg(&ro).status();
    }
    o.assert_clean_failure("read-only location");
    assert!(
        o.stderr.contains("lpo.ring")
            && (o.stderr.contains("Read-only") || o.stderr.contains("ermission")),
        "{}",
        o.stderr
    );
}
