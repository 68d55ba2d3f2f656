//! Replay views on a live recording: layouts, time forms, JSON, info.

use crate::harness::*;
use std::time::Duration;

#[test]
fn views_time_forms_and_info_on_a_live_ring() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let f = r.to_str().unwrap();
    let rec = start_recorder(&r, &["--size", "8MiB", "--interval", "200ms"]);
    wait_samples(&r, 12, Duration::from_secs(20));
    // Readable while the recorder writes it, up to the last completed sample.
    let v = info_json(&r);
    let last = v["last"].as_str().unwrap().to_string();
    for view in [
        &["vmstat"][..],
        &["mpstat", "-P", "ALL"],
        &["free", "-m"],
        &["uptime"],
        &[],
    ] {
        let mut args = vec!["replay", "-f", f, "--at", &last];
        args.extend_from_slice(view);
        let o = run(&args).ok(&format!("replay {view:?}"));
        assert!(!o.stdout.is_empty());
        match view.first() {
            Some(&"vmstat") => {
                let l: Vec<&str> = o.stdout.lines().collect();
                assert!(
                    l[0].starts_with("procs -----------memory----------"),
                    "{}",
                    o.stdout
                );
                assert_eq!(
                    l[1].split_whitespace().take(17).collect::<Vec<_>>(),
                    "r b swpd free buff cache si so bi bo in cs us sy id wa st"
                        .split(' ')
                        .collect::<Vec<_>>()
                );
                assert_eq!(l.len(), 3);
            }
            Some(&"mpstat") => {
                assert!(
                    o.stdout.contains("%usr")
                        && o.stdout.contains("%idle")
                        && o.stdout.contains(" all "),
                    "{}",
                    o.stdout
                );
                let ncpu = v["host"]["ncpu"].as_u64().unwrap();
                let rows = o
                    .stdout
                    .lines()
                    .filter(|l| {
                        !l.starts_with("Average")
                            && l.split_whitespace()
                                .nth(1)
                                .is_some_and(|c| c.parse::<u64>().is_ok())
                    })
                    .count();
                assert_eq!(rows as u64, ncpu, "one row per CPU:\n{}", o.stdout);
            }
            Some(&"free") => {
                assert!(o.stdout.lines().next().unwrap().split_whitespace().eq([
                    "total",
                    "used",
                    "free",
                    "shared",
                    "buff/cache",
                    "available"
                ]));
                let mem: Vec<u64> = o
                    .stdout
                    .lines()
                    .nth(1)
                    .unwrap()
                    .split_whitespace()
                    .skip(1)
                    .map(|x| x.parse().unwrap())
                    .collect();
                let total_mib = v["host"]["ncpu"].as_u64().map(|_| mem[0]).unwrap();
                let real: u64 = std::fs::read_to_string("/proc/meminfo")
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(
                    total_mib,
                    real / 1024,
                    "free -m total matches this host's MemTotal"
                );
            }
            Some(&"uptime") => assert!(o.stdout.contains("load average:"), "{}", o.stdout),
            _ => assert!(
                o.stdout.contains("load average") && o.stdout.contains("%Cpu")
                    || o.stdout.contains("CPU"),
                "{}",
                o.stdout
            ),
        }
    }
    // Relative and absolute time forms land in the recording.
    for t in ["-1s", "1s ago", &last] {
        run(&["replay", "-f", f, "--at", t, "uptime"]).ok(&format!("--at {t}"));
    }
    // A window prints one row per interval.
    let first = format!("@{}", v["first_ns"].as_i64().unwrap() as f64 / 1e9);
    let last = format!("@{}", v["last_ns"].as_i64().unwrap() as f64 / 1e9 + 0.001);
    let o = run(&["replay", "-f", f, "--from", &first, "--to", &last, "vmstat"]).ok("window");
    let rows = o.stdout.lines().skip(2).count();
    assert!(rows >= 10, "{rows} rows:\n{}", o.stdout);
    let o = run(&[
        "replay", "--json", "-f", f, "--from", &first, "--to", &last, "vmstat",
    ])
    .ok("window json");
    let j: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j.as_array().unwrap().len(), rows);
    drop(rec);
    // Info's required keys.
    let v = info_json(&r);
    for k in ["first", "last", "streams", "corrupt_blocks"] {
        assert!(!v[k].is_null(), "info --json lacks {k}: {v}");
    }
    let s = &v["streams"][0];
    for k in ["name", "samples", "bytes", "budget"] {
        assert!(!s[k].is_null(), "stream lacks {k}");
    }
}

#[test]
fn bytes_per_system_sample_is_small() {
    let _serial = serial();
    // Enough samples to seal real blocks, at a fast interval so the test is quick.
    let d = tmpdir();
    let r = ring_in(&d);
    run(&[
        "record",
        "-q",
        "-f",
        r.to_str().unwrap(),
        "--size",
        "16MiB",
        "--interval",
        "5ms",
        "--samples",
        "1200",
    ])
    .ok("record");
    let v = info_json(&r);
    let s = &v["streams"][0];
    let bps = s["bytes_per_sample"].as_f64().unwrap();
    let ncpu = v["host"]["ncpu"].as_u64().unwrap();
    eprintln!("system stream: {bps:.1} bytes per sample on {ncpu} CPUs");
    // Target: ≤ 200 bytes on a 2-CPU host; per-CPU columns grow it elsewhere.
    assert!(
        bps <= 200.0 + 40.0 * ncpu.saturating_sub(2) as f64,
        "{bps} bytes per sample"
    );
    let o = run(&["info", "-f", r.to_str().unwrap()]).ok("info");
    assert!(
        o.stdout.contains("BYTES/SAMPLE"),
        "info prints bytes per sample:\n{}",
        o.stdout
    );
}
