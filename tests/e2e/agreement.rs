//! Replayed numbers agree with the real tools run alongside.

use crate::harness::*;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Parse `vmstat -t -n 1` output: rows keyed by their "YYYY-MM-DD HH:MM:SS".
fn parse_vmstat(text: &str) -> Vec<(String, HashMap<String, f64>)> {
    let mut header: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() == Some(&"r") {
            header = f.iter().map(|s| s.to_string()).collect();
            continue;
        }
        if header.is_empty() || f.len() < header.len() + 1 || f[0].parse::<f64>().is_err() {
            continue;
        }
        let n = header.len();
        let ts = format!("{} {}", f[f.len() - 2], f[f.len() - 1]);
        let vals = header
            .iter()
            .cloned()
            .zip(f[..n].iter().map(|v| v.parse::<f64>().unwrap_or(f64::NAN)))
            .collect();
        rows.push((ts, vals));
    }
    rows
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

#[test]
fn vmstat_agrees_with_procps_under_load() {
    let _serial = serial();
    if !have("vmstat") {
        panic!("vmstat (procps) is required: apt-get install procps");
    }
    let d = tmpdir();
    let r = ring_in(&d);
    // Steady load: a context-switch storm and a CPU burner.
    let mut load = Vec::new();
    if have("perf")
        && Command::new("perf")
            .args(["bench", "sched", "pipe", "-l", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        load.push(spawn(
            Command::new("perf")
                .args(["bench", "sched", "pipe", "-l", "100000000"])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        ));
    } else {
        eprintln!("note: perf not available; using a shell pipe ping-pong for context switches");
        load.push(spawn(
            Command::new("sh")
                .args(["-c", "yes | while read -r x; do :; done"])
                .stdout(Stdio::null()),
        ));
    }
    load.push(spawn(
        Command::new("sh").args(["-c", "while :; do :; done"]),
    ));
    std::thread::sleep(Duration::from_secs(1));
    let rec = start_recorder(&r, &["--size", "16MiB", "--interval", "1s"]);
    let vm = Command::new("vmstat")
        .args(["-t", "-n", "1", "14"])
        .env("TZ", "UTC")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&vm.stdout).into_owned();
    drop(rec);
    drop(load);
    let vrows = parse_vmstat(&out);
    assert!(
        vrows.len() >= 12,
        "vmstat printed {} rows:\n{out}",
        vrows.len()
    );
    // Replay the same seconds (vmstat's first row is since boot: skip it).
    let from = &vrows[2].0;
    let to = &vrows[vrows.len() - 1].0;
    let o = run(&[
        "replay",
        "--utc",
        "--json",
        "-f",
        r.to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "vmstat",
    ])
    .ok("replay vmstat");
    let lrows: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
    assert!(lrows.len() >= 8, "lpo replayed {} rows", lrows.len());
    let vsel: Vec<&HashMap<String, f64>> = vrows[2..].iter().map(|(_, v)| v).collect();
    let col = |name: &str| -> (f64, f64) {
        let v = mean(&vsel.iter().map(|m| m[name]).collect::<Vec<_>>());
        let l = mean(
            &lrows
                .iter()
                .map(|m| m[name].as_f64().unwrap())
                .collect::<Vec<_>>(),
        );
        (v, l)
    };
    let mut report = String::new();
    // Relative tolerance for rates (the two tools sample at slightly different
    // instants within each second), absolute points for CPU percentages.
    for (name, rel) in [("cs", 0.15), ("in", 0.20)] {
        let (v, l) = col(name);
        report += &format!("{name}: vmstat {v:.0} lpo {l:.0}\n");
        assert!(
            (v - l).abs() <= rel * v.max(1.0),
            "{name}: vmstat mean {v:.1}, lpo mean {l:.1} (tolerance {}%)\n{report}",
            rel * 100.0
        );
    }
    for name in ["us", "sy", "id"] {
        let (v, l) = col(name);
        report += &format!("{name}: vmstat {v:.1} lpo {l:.1}\n");
        assert!(
            (v - l).abs() <= 8.0,
            "{name}: vmstat mean {v:.1}, lpo mean {l:.1} (tolerance 8 points)\n{report}"
        );
    }
    let (v, l) = col("free");
    report += &format!("free: vmstat {v:.0} lpo {l:.0}\n");
    assert!(
        (v - l).abs() <= 0.05 * v,
        "free: vmstat {v}, lpo {l}\n{report}"
    );
    eprintln!("{report}");
}
