//! The kernel stream: disks, interfaces and protocol counters agree with
//! the real tools and /proc deltas.

use crate::harness::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn last_at(r: &std::path::Path) -> (f64, f64) {
    let v = info_json(r);
    (
        v["first_ns"].as_i64().unwrap() as f64 / 1e9,
        v["last_ns"].as_i64().unwrap() as f64 / 1e9,
    )
}

/// The device holding `path`, as named in /proc/diskstats.
fn device_of(path: &std::path::Path) -> Option<String> {
    let out = Command::new("findmnt")
        .args(["-no", "SOURCE", "-T"])
        .arg(path)
        .output()
        .ok()?;
    let src = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let name = src.rsplit('/').next()?.to_string();
    std::fs::read_to_string("/proc/diskstats")
        .ok()?
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(&name))
        .then_some(name)
}

#[test]
fn iostat_shows_a_dd_writer_like_sysstat_iostat() {
    let _serial = serial();
    if !have("iostat") {
        panic!("iostat (sysstat) is required: apt-get install sysstat");
    }
    let d = tmpdir();
    let Some(dev) = device_of(d.path()) else {
        eprintln!("skipped: the temp dir is not on a block device listed in /proc/diskstats");
        return;
    };
    let r = ring_in(&d);
    let rec = start_recorder(&r, &["--size", "32MiB", "--interval", "1s"]);
    wait_samples(&r, 2, Duration::from_secs(20));
    // Steady direct writes for ~8 s, rate-limited so the device is busy but not saturated.
    let target = d.path().join("w");
    let w = spawn(Command::new("sh").args(["-c", &format!("while :; do dd if=/dev/zero of={} bs=256k count=40 oflag=direct conv=notrunc status=none; sleep 0.1; done", target.display())]));
    std::thread::sleep(Duration::from_millis(1500));
    let io = Command::new("iostat")
        .args(["-x", "-d", "-y", &dev, "1", "5"])
        .env("LC_ALL", "C")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    drop(w);
    std::thread::sleep(Duration::from_millis(1200));
    drop(rec);
    let real = String::from_utf8_lossy(&io.stdout).into_owned();
    let parse = |text: &str| -> Vec<std::collections::HashMap<String, f64>> {
        let mut hdr: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() == Some(&"Device") {
                hdr = f.iter().map(|s| s.to_string()).collect();
            } else if !hdr.is_empty() && f.first() == Some(&dev.as_str()) {
                rows.push(
                    hdr.iter()
                        .cloned()
                        .zip(f.iter().map(|v| v.parse::<f64>().unwrap_or(f64::NAN)))
                        .collect(),
                );
            }
        }
        rows
    };
    let a = parse(&real);
    let (_, last) = last_at(&r);
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &format!("@{}", last - 7.0),
        "--to",
        &format!("@{}", last - 1.5),
        "iostat",
        "-x",
        "-d",
        &dev,
    ])
    .ok("replay iostat");
    let b = parse(&o.stdout);
    assert!(
        a.len() >= 4 && b.len() >= 4,
        "rows: iostat {} lpo {}\n{real}\n{}",
        a.len(),
        b.len(),
        o.stdout
    );
    let mean = |rows: &[std::collections::HashMap<String, f64>], k: &str| {
        rows.iter().map(|m| m[k]).sum::<f64>() / rows.len() as f64
    };
    let mut report = String::new();
    for (k, rel, abs) in [
        ("w/s", 0.35, 5.0),
        ("wkB/s", 0.35, 500.0),
        ("%util", 0.0, 20.0),
    ] {
        let (x, y) = (mean(&a, k), mean(&b, k));
        report += &format!("{k}: iostat {x:.1} lpo {y:.1}\n");
        assert!(
            y > 0.0 || k == "%util",
            "{k} is zero in lpo's iostat:\n{}",
            o.stdout
        );
        assert!((x - y).abs() <= abs + rel * x, "{report}");
    }
    eprintln!("{report}");
}

#[test]
fn listen_overflows_rise_in_netstat_s() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let rec = start_recorder(&r, &["--size", "32MiB", "--interval", "500ms"]);
    wait_samples(&r, 2, Duration::from_secs(20));
    // A listener with a backlog of 1 that never accepts, flooded with connects.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: a valid listening socket; listen() again only changes the backlog.
    unsafe { libc::listen(std::os::unix::io::AsRawFd::as_raw_fd(&l), 1) };
    let addr = l.local_addr().unwrap();
    let before = overflows();
    let mut conns = Vec::new();
    for _ in 0..200 {
        if let Ok(c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(20)) {
            conns.push(c);
        }
    }
    let after = overflows();
    std::thread::sleep(Duration::from_millis(1500));
    drop(rec);
    drop(conns);
    assert!(
        after > before,
        "the kernel counted no ListenOverflows ({before} → {after})"
    );
    let (first, last) = last_at(&r);
    let o = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &format!("@{first}"),
        "--to",
        &format!("@{last}"),
        "netstat",
        "-s",
    ])
    .ok("replay netstat -s");
    let moved: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains("listen queue of a socket overflowed") && !l.contains("(+0.0/s)"))
        .collect();
    assert!(
        !moved.is_empty(),
        "ListenOverflows did not rise in replayed netstat -s:\n{}",
        o.stdout
    );
}

/// TcpExt ListenOverflows now, from /proc/net/netstat.
fn overflows() -> u64 {
    let t = std::fs::read_to_string("/proc/net/netstat").unwrap();
    let lines: Vec<&str> = t.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    let (h, v) = (lines[0].split_whitespace(), lines[1].split_whitespace());
    h.zip(v)
        .find(|(k, _)| *k == "ListenOverflows")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap()
}

#[test]
fn veth_traffic_between_namespaces_shows_in_sar_n_dev() {
    let _serial = serial();
    if !is_root() || !have("ip") {
        eprintln!("skipped: needs root and iproute2 (network namespaces)");
        return;
    }
    let ns = format!("lpo{}", std::process::id());
    let sh = |c: &str| {
        Command::new("sh")
            .args(["-c", c])
            .status()
            .unwrap()
            .success()
    };
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}a", self.0)])
                .status();
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}b", self.0)])
                .status();
        }
    }
    let _c = Cleanup(ns.clone());
    assert!(sh(&format!(
        "ip netns add {ns}a && ip netns add {ns}b && ip link add {ns}x type veth peer name {ns}y && \
         ip link set {ns}x netns {ns}a && ip link set {ns}y netns {ns}b && \
         ip -n {ns}a addr add 10.231.0.1/30 dev {ns}x && ip -n {ns}b addr add 10.231.0.2/30 dev {ns}y && \
         ip -n {ns}a link set {ns}x up && ip -n {ns}b link set {ns}y up && ip -n {ns}a link set lo up"
    )));
    // Record inside namespace b: its /proc/net/dev shows the veth end.
    let d = tmpdir();
    let r = ring_in(&d);
    let log = std::fs::File::create(r.with_extension("log")).unwrap();
    let rec = spawn(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("{ns}b"),
                lpo_bin(),
                "record",
                "-f",
                r.to_str().unwrap(),
                "--size",
                "32MiB",
                "--interval",
                "1s",
                "--no-processes",
            ])
            .stdout(Stdio::null())
            .stderr(log),
    );
    wait_samples(&r, 2, Duration::from_secs(20));
    let dev_b = |field: usize| -> u64 {
        let o = Command::new("ip")
            .args(["netns", "exec", &format!("{ns}b"), "cat", "/proc/net/dev"])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{ns}y:")))
            .unwrap()
            .to_string();
        line.split(':')
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(field)
            .unwrap()
            .parse()
            .unwrap()
    };
    let (p0, b0) = (dev_b(1), dev_b(0));
    let t0 = std::time::Instant::now();
    // Pings from a to b: ~400 packets of 1000 bytes over ~4 s.
    assert!(sh(&format!(
        "ip netns exec {ns}a ping -q -c 400 -i 0.01 -s 1000 10.231.0.2 >/dev/null"
    )));
    let secs = t0.elapsed().as_secs_f64();
    let (p1, b1) = (dev_b(1), dev_b(0));
    std::thread::sleep(Duration::from_millis(2500));
    drop(rec);
    let (first, last) = last_at(&r);
    let o = run(&[
        "replay",
        "--json",
        "-f",
        r.to_str().unwrap(),
        "--from",
        &format!("@{first}"),
        "--to",
        &format!("@{last}"),
        "sar",
        "-n",
        "DEV",
    ])
    .ok("replay sar -n DEV");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    // Sum rx packets and kB over all intervals: rate × interval length.
    let mut pk = 0.0;
    let mut kb = 0.0;
    for blk in v["intervals"].as_array().unwrap() {
        let dt = blk["interval_s"].as_f64().unwrap_or(1.0);
        for i in blk["interfaces"].as_array().unwrap() {
            if i["IFACE"] == format!("{ns}y") {
                pk += i["rxpck/s"].as_f64().unwrap() * dt;
                kb += i["rxkB/s"].as_f64().unwrap() * dt;
            }
        }
    }
    let (dp, dk) = ((p1 - p0) as f64, (b1 - b0) as f64 / 1024.0);
    eprintln!("over {secs:.1} s: /proc/net/dev rx {dp} packets {dk:.0} kB; sar -n DEV replay {pk:.0} packets {kb:.0} kB");
    assert!(dp >= 400.0);
    assert!(
        (pk - dp).abs() <= 0.05 * dp + 5.0,
        "packets: replay {pk}, /proc/net/dev {dp}"
    );
    assert!(
        (kb - dk).abs() <= 0.05 * dk + 5.0,
        "kB: replay {kb}, /proc/net/dev {dk}"
    );
}
