//! The perf stream: a frame-pointer test program with a distinctively named
//! hot function, profiled by the recorder, replayed as perf report, perf
//! script and flame graphs, also from a copy with the binary deleted.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PROG: &str = r#"
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
volatile unsigned long sink;
/* Called now and then so the spinners are not leaf functions: gcc sets up
   no frame in a leaf even with -fno-omit-frame-pointer, and the kernel's
   frame-pointer walk would then skip the immediate caller. Both spinners
   are 64-byte aligned so their identical loops run at the same speed. */
__attribute__((noinline)) void lpo_test_tick(void) { __asm__ volatile(""); }
__attribute__((noinline, aligned(64))) void lpo_test_hot_spin(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) { sink += i * i; if ((i & 0xfffff) == 0) lpo_test_tick(); }
}
__attribute__((noinline, aligned(64))) void lpo_test_cool_spin(unsigned long n) {
    for (unsigned long i = 0; i < n; i++) { sink += i * i; if ((i & 0xfffff) == 0) lpo_test_tick(); }
}
__attribute__((noinline)) void lpo_test_hot_caller(void) { lpo_test_hot_spin(4000000); }
__attribute__((noinline)) void lpo_test_syscall_loop(void) {
    for (int i = 0; i < 20000; i++) syscall(SYS_getppid);
}
int main(int argc, char **argv) {
    int mode = argc > 1 ? atoi(argv[1]) : 0;
    for (;;) {
        if (mode == 1) lpo_test_syscall_loop();
        else { lpo_test_hot_caller(); lpo_test_cool_spin(1000000); }
    }
}
"#;

/// The hot function's expected share of the program's samples: it runs
/// 4 M iterations for every 1 M of the cool one (same loop body). The
/// tolerance is max(10 points, 4 binomial standard deviations for the
/// number of samples taken): a loaded machine gives the program fewer.
const HOT_SHARE: f64 = 80.0;

fn tolerance(n: usize) -> f64 {
    let p = HOT_SHARE / 100.0;
    (4.0 * (p * (1.0 - p) / n.max(1) as f64).sqrt() * 100.0).max(10.0)
}

/// Build the test program with frame pointers into `dir`; two copies,
/// named so their comms tell them apart.
fn build(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if !have("gcc") {
        return None;
    }
    let src = dir.join("hot.c");
    std::fs::write(&src, PROG).unwrap();
    let hot = dir.join("lpo_hotprog");
    let ok = Command::new("gcc")
        .args(["-O1", "-fno-omit-frame-pointer", "-g0", "-o"])
        .arg(&hot)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "gcc failed");
    let sys = dir.join("lpo_sysprog");
    std::fs::copy(&hot, &sys).unwrap();
    Some((hot, sys))
}

/// Rows of a `perf report` table: (overhead %, rest of the columns).
fn rows(report: &str) -> Vec<(f64, String)> {
    report
        .lines()
        .filter(|l| !l.starts_with('#') && l.trim_end().ends_with(|_| true))
        .filter_map(|l| {
            let t = l.trim_start();
            let (p, rest) = t.split_once('%')?;
            Some((p.parse().ok()?, rest.trim().to_string()))
        })
        .collect()
}

fn last_second(ring: &Path) -> String {
    let v = info_json(ring);
    format!("@{}", v["last_ns"].as_i64().unwrap() / 1_000_000_000)
}

fn replay(ring: &Path, at: &str, view: &[&str]) -> Out {
    let mut a = vec!["replay", "-f", ring.to_str().unwrap(), "--at", at];
    a.extend_from_slice(view);
    let o = run(&a);
    o.assert_no_panic("replay");
    o
}

/// Check `perf script` text line by line: a header per sample
/// (`comm tid [cpu] secs.usecs: period event: `), indented frames
/// (`\t<hex> sym+0xoff (dso)` or `\t<hex> [unknown] (dso)`), a blank line.
/// Returns the number of samples.
fn check_script_layout(text: &str, what: &str) -> usize {
    let mut n = 0;
    let mut in_sample = false;
    for (i, l) in text.lines().enumerate() {
        if l.is_empty() {
            assert!(in_sample, "{what}: line {i}: blank line outside a sample");
            in_sample = false;
            continue;
        }
        if let Some(f) = l.strip_prefix('\t') {
            assert!(in_sample, "{what}: line {i}: frame before a header: {l:?}");
            let f = f.trim_start();
            let (addr, rest) = f.split_once(' ').unwrap_or_else(|| panic!("{what}: {l:?}"));
            assert!(
                u64::from_str_radix(addr, 16).is_ok(),
                "{what}: line {i}: address {addr:?}"
            );
            assert!(rest.ends_with(')'), "{what}: line {i}: no (dso): {l:?}");
            // `[unknown] (dso)` or `symbol+0xoff (dso)`; symbols and dsos may hold spaces.
            let ok = rest.starts_with("[unknown] (")
                || rest.match_indices("+0x").any(|(at, _)| {
                    let tail = &rest[at + 3..];
                    let hex = tail
                        .find(|c: char| !c.is_ascii_hexdigit())
                        .unwrap_or(tail.len());
                    hex > 0 && tail[hex..].starts_with(" (")
                });
            assert!(ok, "{what}: line {i}: symbol+0xoff (dso) expected: {l:?}");
            continue;
        }
        assert!(
            !in_sample,
            "{what}: line {i}: header without a blank line before: {l:?}"
        );
        // comm (may hold spaces) tid [cpu] secs.usecs: period event:
        assert!(l.ends_with(": "), "{what}: line {i}: header end {l:?}");
        let (head, ev) = l[..l.len() - 2].rsplit_once(' ').unwrap();
        assert!(!ev.is_empty(), "{what}: {l:?}");
        let f: Vec<&str> = head.split_whitespace().collect();
        assert!(f.len() >= 5, "{what}: line {i}: {l:?}");
        let k = f.len();
        assert!(f[k - 1].parse::<u64>().is_ok(), "{what}: period in {l:?}");
        let t = f[k - 2].strip_suffix(':').expect("time ends with ':'");
        let (s, us) = t.split_once('.').expect("secs.usecs");
        assert!(
            s.parse::<u64>().is_ok() && us.len() == 6 && us.parse::<u32>().is_ok(),
            "{what}: time in {l:?}"
        );
        let cpu = f[k - 3];
        assert!(
            cpu.starts_with('[') && cpu.ends_with(']') && cpu.len() == 5,
            "{what}: cpu in {l:?}"
        );
        assert!(
            f[k - 4].split('/').all(|p| p.parse::<u32>().is_ok()),
            "{what}: tid in {l:?}"
        );
        in_sample = true;
        n += 1;
    }
    assert!(!in_sample, "{what}: last sample not closed by a blank line");
    n
}

#[test]
fn perf_profile_hot_function_kernel_symbols_copy_flamegraph_script() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let d = tmpdir();
    let bin = tmpdir();
    let Some((hot, sys)) = build(bin.path()) else {
        eprintln!("skipped: gcc not installed");
        return;
    };
    let r = ring_in(&d);
    let rec = start_recorder(&r, &["--size", "64MiB", "--interval", "1s", "--no-kernel"]);
    wait_samples(&r, 1, Duration::from_secs(20));
    let log = recorder_log(&r);
    assert!(
        !log.contains("skipped: perf"),
        "perf skipped as root: {log}"
    );
    let h = spawn(&mut Command::new(&hot));
    let s = spawn(Command::new(&sys).arg("1"));
    std::thread::sleep(Duration::from_secs(7));
    drop(h);
    drop(s);
    std::thread::sleep(Duration::from_millis(1500));
    rec.signal(libc::SIGTERM);
    let mut rec = rec;
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
    let at = last_second(&r);

    // perf report: the hot function first, with its expected share.
    let o = replay(&r, &at, &["perf", "report", "--comm", "lpo_hotprog"]).ok("perf report");
    assert!(o.stdout.contains("# Samples: "), "{}", o.stdout);
    assert!(o.stdout.contains("# Total Lost Samples: "), "{}", o.stdout);
    assert!(o.stdout.contains("# Overhead  Command"), "{}", o.stdout);
    let rs = rows(&o.stdout);
    assert!(!rs.is_empty(), "{}", o.stdout);
    let n: usize = o
        .stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("# Samples: ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap();
    // 7 s at 49 Hz is 343 samples on an idle machine; a busy one runs it less.
    assert!(n >= 40, "too few samples of the hot program: {n}");
    let tol = tolerance(n);
    assert!(
        rs[0].1.ends_with("[.] lpo_test_hot_spin") && rs[0].1.contains("lpo_hotprog"),
        "hot function not first: {}",
        o.stdout
    );
    assert!(
        (rs[0].0 - HOT_SHARE).abs() <= tol,
        "hot share {} not within {HOT_SHARE}±{tol:.1} ({n} samples): {}",
        rs[0].0,
        o.stdout
    );
    assert!(
        rs.iter().any(|r| r.1.ends_with("lpo_test_cool_spin")),
        "{}",
        o.stdout
    );

    // -g: the call graph shows the caller under the hot function (callee order).
    let o =
        replay(&r, &at, &["perf", "report", "-g", "--comm", "lpo_hotprog"]).ok("perf report -g");
    let after = o
        .stdout
        .split_once("[.] lpo_test_hot_spin\n")
        .map(|x| x.1)
        .unwrap_or("");
    let graph: String = after.lines().take(6).collect::<Vec<_>>().join("\n");
    assert!(graph.contains("---lpo_test_hot_spin"), "{}", o.stdout);
    assert!(
        graph.contains("lpo_test_hot_caller"),
        "caller missing: {}",
        o.stdout
    );
    // Caller order: main above the caller above the hot function.
    let o = replay(
        &r,
        &at,
        &["perf", "report", "-g", "caller", "--comm", "lpo_hotprog"],
    )
    .ok("-g caller");
    let g = o.stdout.split("[.] lpo_test_hot_spin").nth(1).unwrap_or("");
    let (m, c, h) = (
        g.find("main"),
        g.find("lpo_test_hot_caller"),
        g.find("lpo_test_hot_spin"),
    );
    assert!(m < c && c < h && m.is_some(), "caller order: {}", o.stdout);
    // --children: the caller carries the hot function's share.
    let o = replay(
        &r,
        &at,
        &["perf", "report", "--children", "--comm", "lpo_hotprog"],
    )
    .ok("--children");
    assert!(o.stdout.contains("# Children      Self"), "{}", o.stdout);
    let caller = o
        .stdout
        .lines()
        .find(|l| l.ends_with("lpo_test_hot_caller"))
        .expect("caller row");
    let ch: f64 = caller.split('%').next().unwrap().trim().parse().unwrap();
    assert!(ch >= HOT_SHARE - tol, "{caller}");
    // --sort and --pid filters.
    let o = replay(
        &r,
        &at,
        &[
            "perf",
            "report",
            "--sort",
            "dso,sym",
            "--pid",
            &h_pid_of(&o.stdout, &r, &at),
        ],
    )
    .ok("--sort --pid");
    assert!(
        o.stdout.contains("# Overhead  Shared Object"),
        "{}",
        o.stdout
    );

    // Kernel work shows kernel symbols.
    let o = replay(&r, &at, &["perf", "report", "--comm", "lpo_sysprog"]).ok("perf report sys");
    let rs = rows(&o.stdout);
    let kernel: f64 = rs
        .iter()
        .filter(|r| r.1.contains("[k] "))
        .map(|r| r.0)
        .sum();
    assert!(kernel >= 20.0, "kernel share {kernel}: {}", o.stdout);
    assert!(
        rs.iter()
            .take(10)
            .any(|r| r.1.contains("[kernel.kallsyms]") && r.1.contains("[k] ")),
        "{}",
        o.stdout
    );

    // perf script: the layout perf prints, and what stackcollapse-perf reads.
    let o = replay(&r, &at, &["perf", "script", "--comm", "lpo_hotprog"]).ok("perf script");
    let ns = check_script_layout(&o.stdout, "lpo perf script");
    assert_eq!(ns, n);
    assert!(o.stdout.contains("lpo_test_hot_spin+0x"));
    assert!(
        o.stdout.contains(&format!("({})", hot.display())),
        "dso path"
    );
    let mut folded = Vec::new();
    use inferno::collapse::Collapse;
    inferno::collapse::perf::Folder::default()
        .collapse(o.stdout.as_bytes(), &mut folded)
        .expect("inferno's stackcollapse-perf reads it");
    let folded = String::from_utf8(folded).unwrap();
    assert!(
        folded.lines().any(|l| l.starts_with("lpo_hotprog;")
            && l.contains("main;lpo_test_hot_caller;lpo_test_hot_spin ")),
        "{folded}"
    );

    // Flame graph: well-formed SVG with the hot function; folded stacks.
    let svg = d.path().join("out.svg");
    replay(&r, &at, &["flamegraph", "-o", svg.to_str().unwrap()]).ok("flamegraph");
    let text = std::fs::read_to_string(&svg).unwrap();
    let mut rd = quick_xml::Reader::from_str(&text);
    let mut depth = 0i64;
    let mut elems = 0;
    loop {
        match rd.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => {
                depth += 1;
                elems += 1
            }
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("flame graph is not well-formed XML: {e}"),
        }
    }
    assert_eq!(depth, 0);
    assert!(elems > 10 && text.contains("<svg") && text.contains("lpo_test_hot_spin"));
    let o = replay(&r, &at, &["flamegraph", "--folded"]).ok("folded");
    assert!(
        o.stdout.lines().any(|l| l.starts_with("lpo_hotprog;")
            && l.contains(";lpo_test_hot_caller;lpo_test_hot_spin ")),
        "{}",
        o.stdout
    );

    // The summary lists the top symbols.
    let o = replay(&r, &at, &[]).ok("summary");
    assert!(o.stdout.contains("Top symbols (perf"), "{}", o.stdout);
    let top = o.stdout.split("Top symbols (perf").nth(1).unwrap();
    assert!(top.contains("lpo_test_hot_spin"), "{}", o.stdout);

    // The capture elsewhere, the binaries gone: the names stay.
    drop(bin);
    assert!(!hot.exists());
    let other = tmpdir();
    let copy = other.path().join("copy.ring");
    std::fs::copy(&r, &copy).unwrap();
    drop(d);
    let o = replay(&copy, &at, &["perf", "report", "--comm", "lpo_hotprog"]).ok("report from copy");
    assert!(
        rows(&o.stdout)[0].1.ends_with("[.] lpo_test_hot_spin"),
        "{}",
        o.stdout
    );
    let o = replay(&copy, &at, &["perf", "script", "--comm", "lpo_sysprog"]).ok("script from copy");
    assert!(
        o.stdout.contains("lpo_test_syscall_loop+0x"),
        "{}",
        o.stdout
    );
}

/// The pid of the hot program, from `perf script --json`.
fn h_pid_of(_: &str, r: &Path, at: &str) -> String {
    let o = replay(
        r,
        at,
        &["perf", "script", "--json", "--comm", "lpo_hotprog"],
    )
    .ok("script json");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v[0]["pid"].as_u64().unwrap().to_string()
}

#[test]
fn perf_script_matches_real_perf_script_layout() {
    let _serial = serial();
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if !have("perf") {
        eprintln!("skipped: perf not installed (apt-get install linux-perf)");
        return;
    }
    let d = tmpdir();
    let Some((hot, _)) = build(d.path()) else {
        eprintln!("skipped: gcc not installed");
        return;
    };
    let r = ring_in(&d);
    let rec = start_recorder(&r, &["--size", "32MiB", "--no-kernel", "--no-processes"]);
    wait_samples(&r, 1, Duration::from_secs(20));
    let h = spawn(&mut Command::new(&hot));
    let data = d.path().join("perf.data");
    let p = Command::new("perf")
        .args(["record", "-F", "49", "-a", "-g", "-q", "-o"])
        .arg(&data)
        .args(["--", "sleep", "3"])
        .output()
        .unwrap();
    assert!(
        p.status.success(),
        "perf record: {}",
        String::from_utf8_lossy(&p.stderr)
    );
    drop(h);
    std::thread::sleep(Duration::from_millis(1500));
    let mut rec = rec;
    rec.signal(libc::SIGTERM);
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
    let real = Command::new("perf")
        .args(["script", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).into_owned();
    let at = last_second(&r);
    let ours = replay(&r, &at, &["perf", "script"])
        .ok("perf script")
        .stdout;
    let n_real = check_script_layout(&real, "perf script");
    let n_ours = check_script_layout(&ours, "lpo perf script");
    assert!(n_real > 50 && n_ours > 50, "{n_real} {n_ours}");
    // The same frame lines for the same code: perf and lpo name the hot
    // function with the same address form, symbol+offset and dso path.
    let frames = |t: &str| -> std::collections::BTreeSet<String> {
        t.lines()
            .filter(|l| l.contains("lpo_test_hot_spin+0x"))
            .map(|l| l.to_string())
            .collect()
    };
    let (fr, fo) = (frames(&real), frames(&ours));
    assert!(!fr.is_empty() && !fo.is_empty());
    assert!(
        fr.intersection(&fo).count() > 0,
        "no identical frame line:\nperf: {fr:?}\nlpo: {fo:?}"
    );
    // Header lines: same fields in the same places.
    let hdr = |t: &str| {
        t.lines().find(|l| l.starts_with("lpo_hotprog ")).map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f.len(),
                f[1].parse::<u32>().is_ok(),
                f[2].len(),
                f[3].ends_with(':'),
            )
        })
    };
    let (hr, ho) = (hdr(&real).unwrap(), hdr(&ours).unwrap());
    assert_eq!(hr, ho, "header shapes differ");
}
