//! Per-process history: the culprit shows in top at the right time, a
//! writer in pidstat -d, zombies, short-lived processes, agreement with
//! sysstat's pidstat run alongside.

use crate::harness::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A shell script whose file name becomes the process's comm.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn at_ns(v: &serde_json::Value) -> String {
    format!("@{}", v.as_i64().unwrap() as f64 / 1e9)
}

#[test]
fn cpu_burner_is_first_in_top_with_about_100_percent() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let burner = script(d.path(), "lpo_burn_7q", "while :; do :; done");
    let rec = start_recorder(&r, &["--size", "32MiB", "--interval", "1s"]);
    wait_samples(&r, 2, Duration::from_secs(20));
    let b = spawn(&mut Command::new(&burner));
    let started = std::time::SystemTime::now();
    wait_samples(&r, 6, Duration::from_secs(30));
    drop(b);
    wait_samples(&r, 8, Duration::from_secs(30));
    drop(rec);
    // Four seconds after the burner started: a moment when it was running.
    let t = started
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 3.5;
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--at",
        &format!("@{t}"),
        "top",
        "-n",
        "5",
    ])
    .ok("replay top");
    let rows: Vec<&str> = o
        .stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .collect();
    let first = rows
        .first()
        .unwrap_or_else(|| panic!("no rows:\n{}", o.stdout));
    assert!(
        first.ends_with("lpo_burn_7q"),
        "burner first in top:\n{}",
        o.stdout
    );
    let cpu: f64 = first.split_whitespace().nth(8).unwrap().parse().unwrap();
    assert!(
        (85.0..=105.0).contains(&cpu),
        "burner at {cpu}% CPU (want about 100):\n{}",
        o.stdout
    );
    // After it was killed, it is gone from top.
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--at",
        &format!("@{}", t + 4.0),
        "top",
    ])
    .ok("top after");
    assert!(!o.stdout.contains("lpo_burn_7q"), "{}", o.stdout);
}

#[test]
fn zombies_show_as_z_and_in_the_tasks_count() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    // The children exit; after exec, `sleep` is their parent and never reaps them.
    let z = spawn(
        Command::new("sh").args(["-c", "for i in 1 2 3; do sleep 0.01 & done; exec sleep 30"]),
    );
    std::thread::sleep(Duration::from_millis(300));
    run(&[
        "record",
        "-q",
        "-f",
        r.to_str().unwrap(),
        "--size",
        "16MiB",
        "--interval",
        "200ms",
        "--samples",
        "4",
    ])
    .ok("record");
    drop(z);
    let v = info_json(&r);
    let at = at_ns(&v["last_ns"]);
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--at",
        &at,
        "top",
        "-n",
        "0",
    ])
    .ok("top");
    let tasks = o.stdout.lines().find(|l| l.starts_with("Tasks:")).unwrap();
    let zombies: u32 = tasks
        .split(',')
        .next_back()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(zombies >= 3, "{tasks}");
    let o = run(&["replay", "-f", r.to_str().unwrap(), "--at", &at, "ps"]).ok("ps");
    let z_rows = o
        .stdout
        .lines()
        .filter(|l| {
            l.contains("<defunct>")
                && l.split_whitespace()
                    .nth(3)
                    .is_some_and(|s| s.starts_with('Z'))
        })
        .count();
    assert!(z_rows >= 3, "{}", o.stdout);
}

#[test]
fn dd_writer_shows_in_pidstat_d() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let rec = start_recorder(&r, &["--size", "32MiB", "--interval", "1s"]);
    wait_samples(&r, 2, Duration::from_secs(20));
    let t0 = std::time::Instant::now();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // ~4 s of direct writes through a uniquely named writer.
    let writer = script(
        d.path(),
        "lpo_dd_9w",
        &format!(
            "exec dd if=/dev/zero of={}/out bs=1M count=4000 oflag=direct status=none",
            d.path().display()
        ),
    );
    let mut w = spawn(&mut Command::new(&writer));
    let wpid = w.pid() as u64;
    // It runs until done or 4 s, whichever is first: its real rate is its
    // bytes over its own lifetime.
    if w.wait_timeout(Duration::from_secs(4)).is_none() {
        w.signal(libc::SIGKILL);
        w.wait_timeout(Duration::from_secs(5));
    }
    let secs = t0.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(d.path().join("out")).unwrap().len();
    wait_samples(&r, 8, Duration::from_secs(30));
    drop(rec);
    let real_kbs = bytes as f64 / 1024.0 / secs;
    let o = run(&[
        "replay",
        "--json",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &format!("@{start}"),
        "--to",
        &format!("@{}", start + secs + 1.5),
        "pidstat",
        "-d",
    ])
    .ok("pidstat -d");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
    let mine: Vec<f64> = rows
        .iter()
        .filter(|x| x["PID"].as_u64() == Some(wpid))
        .map(|x| x["kB_wr/s"].as_f64().unwrap())
        .collect();
    assert!(!mine.is_empty(), "writer not in pidstat -d: {}", o.stdout);
    // The busiest interval fully inside dd's life shows its rate.
    let mean = mine.iter().cloned().fold(0.0, f64::max);
    eprintln!("dd wrote {real_kbs:.0} kB/s over {secs:.1} s (its own count); pidstat -d replayed up to {mean:.0} kB_wr/s");
    assert!(
        mean > real_kbs / 3.0 && mean < real_kbs * 3.0,
        "kB_wr/s {mean} vs real {real_kbs}"
    );
}

#[test]
fn burst_of_200_short_lived_processes_appears_in_exits() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root (taskstats)");
        return;
    }
    let d = tmpdir();
    let r = ring_in(&d);
    let rec = start_recorder(&r, &["--size", "32MiB", "--interval", "2s"]);
    wait_samples(&r, 2, Duration::from_secs(20));
    let quick = script(d.path(), "lpo_blip_3k", "exit 0");
    let t0 = std::time::Instant::now();
    for _ in 0..200 {
        let st = Command::new(&quick).stdout(Stdio::null()).status().unwrap();
        assert!(st.success());
    }
    let burst = t0.elapsed();
    assert!(burst < Duration::from_secs(2), "burst took {burst:?}");
    let n0 = samples(&r, "system");
    wait_samples(&r, n0 + 2, Duration::from_secs(20));
    drop(rec);
    let v = info_json(&r);
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &at_ns(&v["first_ns"]),
        "--to",
        &at_ns(&v["last_ns"]),
        "exits",
    ])
    .ok("exits");
    let n = o
        .stdout
        .lines()
        .filter(|l| l.ends_with("lpo_blip_3k"))
        .count();
    assert_eq!(
        n,
        200,
        "every short-lived process has a record:\n{}",
        o.stdout.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    let o = run(&[
        "replay",
        "--json",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &at_ns(&v["first_ns"]),
        "--to",
        &at_ns(&v["last_ns"]),
        "exits",
    ])
    .ok("exits json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&o.stdout).unwrap();
    let blip: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|x| x["COMMAND"] == "lpo_blip_3k")
        .collect();
    assert!(
        blip.iter().all(|x| x["CODE"] == "exit 0"),
        "{:?}",
        blip.first()
    );
}

/// Parse `pidstat -u -d -w -p ... 1 N` output into per-(report, pid) value lists.
fn parse_pidstat(text: &str) -> std::collections::HashMap<(String, u32), Vec<f64>> {
    let mut out: std::collections::HashMap<(String, u32), Vec<f64>> = Default::default();
    let mut header: Vec<String> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[0].starts_with("Average") || f[0] == "Linux" {
            continue;
        }
        if f.contains(&"PID") {
            header = f.iter().map(|s| s.to_string()).collect();
            continue;
        }
        let Ok(pid) = f.get(2).unwrap_or(&"").parse::<u32>() else {
            continue;
        };
        for (i, h) in header.iter().enumerate() {
            if ["%CPU", "kB_wr/s", "cswch/s", "nvcswch/s", "%usr", "%system"].contains(&h.as_str())
            {
                if let Some(v) = f.get(i).and_then(|x| x.parse::<f64>().ok()) {
                    out.entry((h.clone(), pid)).or_default().push(v);
                }
            }
        }
    }
    out
}

#[test]
fn pidstat_agrees_with_sysstat_run_alongside() {
    let _serial = serial();
    if !have("pidstat") {
        panic!("pidstat (sysstat) is required: apt-get install sysstat");
    }
    let d = tmpdir();
    let r = ring_in(&d);
    // A half-busy process that also context-switches, and a writer.
    let busy = script(
        d.path(),
        "lpo_half_5b",
        "while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.01; done",
    );
    let wr = script(d.path(), "lpo_wr_5b", &format!("while :; do dd if=/dev/zero of={}/w bs=256k count=8 oflag=direct status=none; sleep 0.05; done", d.path().display()));
    let b = spawn(&mut Command::new(&busy));
    let w = spawn(&mut Command::new(&wr));
    let (bpid, wpid) = (b.pid(), w.pid());
    let pids = format!("{bpid},{wpid}");
    let rec = start_recorder(&r, &["--size", "32MiB", "--interval", "1s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let ps = Command::new("pidstat")
        .args(["-u", "-d", "-w", "-p", &pids, "1", "8"])
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&ps.stdout).into_owned();
    drop(rec);
    drop(b);
    drop(w);
    let v = info_json(&r);
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &format!("@{}", v["last_ns"].as_i64().unwrap() as f64 / 1e9 - 8.5),
        "--to",
        &at_ns(&v["last_ns"]),
        "pidstat",
        "-u",
        "-d",
        "-w",
        "-p",
        &pids,
    ])
    .ok("replay pidstat");
    let a = parse_pidstat(&real);
    let l = parse_pidstat(&o.stdout);
    let mean = |m: &std::collections::HashMap<(String, u32), Vec<f64>>, k: &str, pid: i32| {
        let v = m
            .get(&(k.to_string(), pid as u32))
            .cloned()
            .unwrap_or_default();
        (v.iter().sum::<f64>() / v.len().max(1) as f64, v.len())
    };
    let mut report = String::new();
    // Tolerances: the two tools sample at different instants within each
    // second; CPU ±12 points, rates ±35% (plus a floor for tiny values).
    for (k, pid, abs, rel) in [
        ("%CPU", bpid, 12.0, 0.0),
        ("cswch/s", bpid, 10.0, 0.35),
        ("kB_wr/s", wpid, 200.0, 0.35),
        ("%CPU", wpid, 12.0, 0.0),
    ] {
        let (x, nx) = mean(&a, k, pid);
        let (y, ny) = mean(&l, k, pid);
        report += &format!("{k} pid {pid}: pidstat {x:.1} ({nx} rows), lpo {y:.1} ({ny} rows)\n");
        assert!(
            nx >= 5 && ny >= 5,
            "rows missing\n{report}\nreal:\n{real}\nlpo:\n{}",
            o.stdout
        );
        assert!((x - y).abs() <= abs + rel * x.abs(), "{report}");
    }
    eprintln!("{report}");
}
