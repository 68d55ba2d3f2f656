//! Bad input gets one line on stderr and a non-zero exit, never a panic.

use crate::harness::*;

fn small_ring() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tmpdir();
    let r = ring_in(&d);
    run(&[
        "record",
        "-q",
        "-f",
        r.to_str().unwrap(),
        "--size",
        "4MiB",
        "--interval",
        "20ms",
        "--samples",
        "20",
    ])
    .ok("record");
    (d, r)
}

#[test]
fn unknown_view_bad_time_and_out_of_range() {
    let _serial = serial();
    let (_d, r) = small_ring();
    let f = r.to_str().unwrap();
    let o = run(&["replay", "-f", f, "--at", "-1s", "nosuchview"]);
    o.assert_clean_failure("unknown view");
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("nosuchview") && o.stderr.contains("vmstat"),
        "{}",
        o.stderr
    );

    let o = run(&["replay", "-f", f, "--at", "25:99", "vmstat"]);
    o.assert_clean_failure("bad time");
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("25:99"), "{}", o.stderr);

    let o = run(&["replay", "-f", f, "--at", "@1000000000", "vmstat"]);
    o.assert_clean_failure("time outside the recording");
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("recording covers"),
        "names the recorded range: {}",
        o.stderr
    );

    let o = run(&["replay", "-f", f, "vmstat"]);
    o.assert_clean_failure("no time");

    let o = run(&["record", "-f", f, "--interval", "fast"]);
    o.assert_clean_failure("bad duration");
    let o = run(&["record", "-f", "/tmp/x.ring", "--size", "lots"]);
    o.assert_clean_failure("bad size");
}

#[test]
fn missing_foreign_and_newer_files() {
    let _serial = serial();
    let d = tmpdir();
    let missing = d.path().join("nope.ring");
    for cmd in [
        &["info", "-f"][..],
        &["replay", "--at", "-1m", "vmstat", "-f"][..],
    ] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.push(missing.to_str().unwrap());
        let o = run(&args);
        o.assert_clean_failure("missing file");
        assert!(o.stderr.contains("nope.ring"), "{}", o.stderr);
    }

    let foreign = d.path().join("passwd");
    std::fs::write(&foreign, "root:x:0:0:root:/root:/bin/bash\n".repeat(200)).unwrap();
    let o = run(&["info", "-f", foreign.to_str().unwrap()]);
    o.assert_clean_failure("not a ring");
    assert!(o.stderr.contains("not an lpo ring"), "{}", o.stderr);
    let o = run(&["record", "-f", foreign.to_str().unwrap(), "--samples", "1"]);
    o.assert_clean_failure("record into a foreign file");
    assert_eq!(
        std::fs::read(&foreign).unwrap().len(),
        32 * 200,
        "a foreign file is never overwritten"
    );

    let (_d2, r) = small_ring();
    let mut b = std::fs::read(&r).unwrap();
    b[8] = 2; // format major 2
    let crc = crc32c(&b[..4092]);
    b[4092..4096].copy_from_slice(&crc.to_le_bytes());
    let newer = d.path().join("newer.ring");
    std::fs::write(&newer, &b).unwrap();
    let o = run(&["info", "-f", newer.to_str().unwrap()]);
    o.assert_clean_failure("newer version");
    assert!(o.stderr.contains("newer"), "{}", o.stderr);
}

#[test]
fn second_recorder_is_refused() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let _rec = start_recorder(&r, &["--size", "4MiB", "--interval", "50ms"]);
    wait_samples(&r, 2, std::time::Duration::from_secs(10));
    let o = run(&["record", "-q", "-f", r.to_str().unwrap(), "--samples", "1"]);
    o.assert_clean_failure("second recorder");
    assert!(o.stderr.contains("already being recorded"), "{}", o.stderr);
}

/// CRC-32C (Castagnoli), bitwise: the spec's checksum, written independently.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32c_matches_the_spec_check_value() {
    let _serial = serial();
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}
