//! The kernel log: a line written to /dev/kmsg while recording shows in
//! `dmesg` at its time and among the summary's kernel events, and a
//! recorder restart on the same ring does not store it twice.

use crate::harness::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// `lpo replay --json … dmesg`: (wall_ns, message) of every line.
fn dmesg_json(ring: &str, when: &[&str]) -> Vec<(i64, String)> {
    let mut args = vec!["replay", "-f", ring, "--json"];
    args.extend_from_slice(when);
    args.push("dmesg");
    let o = run(&args).ok("replay dmesg --json");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("dmesg --json parses");
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["wall_ns"].as_i64().unwrap(),
                l["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Write a line to the kernel log at level err; its wall time.
fn kmsg_write(line: &str) -> i64 {
    let t = now_ns();
    std::fs::write("/dev/kmsg", format!("<3>{line}\n")).expect("write /dev/kmsg");
    t
}

fn stop(mut rec: Guard) {
    rec.signal(libc::SIGTERM);
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
}

#[test]
fn a_kmsg_line_shows_in_dmesg_and_the_summary_once_across_restarts() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let d = tmpdir();
    let r = ring_in(&d);
    let rs = r.to_str().unwrap();
    let tag = format!("{}-{}", std::process::id(), now_ns() % 1_000_000_007);
    let line = format!("lpo-test: I/O error marker-{tag}");

    let rec = start_recorder(&r, &["--size", "16MiB", "--interval", "500ms"]);
    wait_samples(&r, 2, Duration::from_secs(20));
    let written = kmsg_write(&line);
    std::thread::sleep(Duration::from_millis(1500));
    stop(rec);
    let log = recorder_log(&r);
    assert!(!log.contains("skipped: kmsg"), "{log}");

    // dmesg --at TIME (the 5 minutes before TIME): the line, once, at its time.
    let at = format!("@{}", written / 1_000_000_000 + 1);
    let found: Vec<_> = dmesg_json(rs, &["--at", &at])
        .into_iter()
        .filter(|l| l.1 == line)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let off = (found[0].0 - written) as f64 / 1e9;
    assert!(
        off.abs() < 2.0,
        "line stored {off:.3} s from when it was written"
    );

    // The text layout is dmesg -T's.
    let o = run(&["replay", "-f", rs, "--at", &at, "dmesg", "--level", "err"]).ok("dmesg");
    let shown: Vec<_> = o.stdout.lines().filter(|l| l.contains(&line)).collect();
    assert_eq!(shown.len(), 1, "{}", o.stdout);
    assert!(
        shown[0].starts_with('[') && shown[0].ends_with(&format!("] {line}")),
        "{}",
        shown[0]
    );
    let o = run(&["replay", "-f", rs, "--at", &at, "dmesg", "--level", "info"]).ok("dmesg");
    assert!(!o.stdout.contains(&line), "--level info shows an err line");

    // The default summary lists it under kernel events.
    let o = run(&["replay", "-f", rs, "--at", &at]).ok("summary");
    let events = o
        .stdout
        .split("Kernel events near")
        .nth(1)
        .unwrap_or_else(|| panic!("no kernel events section:\n{}", o.stdout));
    assert!(events.contains(&line), "{}", o.stdout);

    // A restart on the same ring re-reads the kernel's buffer but stores
    // only what is new.
    let rec = start_recorder(&r, &["--size", "16MiB", "--interval", "500ms"]);
    let n = samples(&r, "system");
    wait_samples(&r, n + 2, Duration::from_secs(20));
    let line2 = format!("lpo-test: after restart marker-{tag}");
    kmsg_write(&line2);
    std::thread::sleep(Duration::from_millis(1500));
    stop(rec);
    let from = format!("@{}", written / 1_000_000_000 - 10);
    let all = dmesg_json(rs, &["--from", &from, "--to", "now"]);
    let count = |l: &str| all.iter().filter(|x| x.1 == l).count();
    assert_eq!((count(&line), count(&line2)), (1, 1), "{all:?}");
    // Nothing from before the restart was stored twice.
    let mut seen = std::collections::HashSet::new();
    for l in &all {
        assert!(seen.insert(l), "stored twice: {l:?}");
    }
}
