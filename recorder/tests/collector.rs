//! ProcessCollector on fixture trees and on the live /proc.

mod common;

use common::{copy_dir, fixture_root, Kids, TempDir};
use lpo_recorder::process::{ProcOptions, ProcRow, ProcessCollector, SweepStats};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn find(rows: &[ProcRow], pid: u32) -> Option<&ProcRow> {
    rows.iter().find(|r| r.pid == pid && !r.is_thread)
}

/// No periodic refresh during a test (phases never line up).
const NO_REFRESH: ProcOptions = ProcOptions {
    threads: false,
    full_refresh_every: 1_000_000,
};

#[test]
fn fixture_values_of_26231() {
    let mut c = ProcessCollector::open(&fixture_root(), NO_REFRESH);
    assert_eq!(c.proc_root(), fixture_root().as_path());
    let mut rows = Vec::new();
    let st = c.collect(&mut rows);
    let r = find(&rows, 26231).expect("26231 listed");
    // stat: 26231 (vim) R 5392 7446 5392 34835 7446 4218880 32533 309516 26
    //       82 1677 44 158 99 20 0 1 0 82375 56274944 1981 ... 17 0 0 0 31
    assert_eq!((r.tgid, r.starttime, r.is_thread), (26231, 82375, false));
    assert_eq!((r.ppid, r.pgrp, r.session), (5392, 7446, 5392));
    assert_eq!(&*r.comm, "vim");
    assert_eq!(r.state, b'R');
    assert_eq!((r.priority, r.nice, r.num_threads), (20, 0, 1));
    assert_eq!((r.vsize, r.rss_pages), (56274944, 1981));
    assert_eq!(
        (r.minflt, r.majflt, r.utime, r.stime),
        (32533, 26, 1677, 44)
    );
    assert_eq!((r.processor, r.delayacct_blkio_ticks), (0, 31));
    // status: Uid 1000 1000 1000 0, ctxt switches, Rss*, VmSwap
    assert_eq!((r.uid, r.euid), (1000, 1000));
    assert_eq!((r.vol_cs, r.invol_cs), (4742839, 1727500));
    assert_eq!(
        (r.rss_anon_kb, r.rss_file_kb, r.rss_shmem_kb, r.swap_kb),
        (2092, 4624, 0, 660)
    );
    // io (cancelled_write_bytes: -1024 is clamped to 0)
    assert!(r.io_ok);
    assert_eq!(
        (r.rchar, r.wchar, r.read_bytes, r.write_bytes),
        (750339, 818609, 1024, 2048)
    );
    assert_eq!(r.cancelled_write_bytes, 0);
    // schedstat: 411605849 93680043 79
    assert_eq!(
        (r.run_ns, r.wait_ns, r.timeslices),
        (411605849, 93680043, 79)
    );
    // cmdline "vim\0test.go\0+10\0"; no exe link in the fixture
    assert_eq!(&*r.cmdline, "vim test.go +10");
    assert_eq!(&*r.exe, "");
    assert!(r.refreshed);

    // The odd ones: a kernel thread with out-of-range fields, a comm with
    // spaces and parentheses; dirs without stat (26233, 26235) are skipped.
    let k = find(&rows, 26232).expect("26232");
    assert_eq!(
        (&*k.comm, &*k.cmdline, k.state, k.ppid),
        ("ata_sff", "", b'S', 2)
    );
    assert!(!k.io_ok);
    assert_eq!(&*find(&rows, 584).expect("584").comm, "(a b ) ( c d) ");
    assert!(find(&rows, 26233).is_none() && find(&rows, 26235).is_none());
    assert_eq!(st.processes, 4);
    assert_eq!(st.new, 4);
    assert_eq!(st.full_reads, 4);
    assert_eq!(st.slow, 0);

    // Second sweep: 26231's schedstat did not move, so its other files are
    // not re-read; the others have no schedstat and are always re-read.
    let before = r.clone();
    let st = c.collect(&mut rows);
    let r = find(&rows, 26231).unwrap();
    assert!(!r.refreshed);
    assert_eq!(
        ProcRow {
            refreshed: true,
            ..r.clone()
        },
        before
    );
    assert_eq!(
        (st.new, st.gone, st.skipped_unchanged, st.full_reads),
        (0, 0, 1, 3)
    );
}

#[test]
fn fixture_threads() {
    let opts = ProcOptions {
        threads: true,
        ..NO_REFRESH
    };
    let mut c = ProcessCollector::open(&fixture_root(), opts);
    let mut rows = Vec::new();
    let st = c.collect(&mut rows);
    let i = rows
        .iter()
        .position(|r| r.pid == 27079 && !r.is_thread)
        .unwrap();
    let p = &rows[i];
    assert_eq!(
        (&*p.comm, p.num_threads, p.utime),
        ("pthread_load", 5, 58125)
    );
    let tids: Vec<u32> = rows[i + 1..]
        .iter()
        .take_while(|r| r.is_thread)
        .map(|r| r.pid)
        .collect();
    assert_eq!(tids, [27079, 27080, 27081, 27082, 27083]);
    assert!(rows.iter().filter(|r| r.is_thread).all(|r| r.tgid == 27079));
    assert_eq!(st.threads, 5);
    // 26231 has no task/ dir in the fixture: no thread rows, still a row.
    assert!(find(&rows, 26231).is_some());
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{path:?} lacks {from:?}");
    std::fs::write(path, s.replacen(from, to, 1)).unwrap(); // same inode
}

#[test]
fn pid_reuse_and_exec_on_fixture_copy() {
    let tmp = TempDir::new("reuse");
    let dir = tmp.path().join("26231");
    copy_dir(&fixture_root().join("26231"), &dir);
    let mut c = ProcessCollector::open(tmp.path(), NO_REFRESH);
    let mut rows = Vec::new();
    c.collect(&mut rows);
    assert_eq!(&*rows[0].cmdline, "vim test.go +10");

    // exec: comm changes, same starttime: same life, cmdline re-read.
    rewrite(&dir.join("stat"), "(vim)", "(nvim)");
    rewrite(&dir.join("schedstat"), "411605849", "411605850");
    std::fs::write(dir.join("cmdline"), b"nvim\0test.go\0").unwrap();
    let st = c.collect(&mut rows);
    assert_eq!((st.new, st.gone, st.full_reads), (0, 0, 1));
    assert_eq!(
        (&*rows[0].comm, &*rows[0].cmdline, rows[0].starttime),
        ("nvim", "nvim test.go", 82375)
    );

    // Idle: nothing re-read.
    let st = c.collect(&mut rows);
    assert_eq!((st.skipped_unchanged, st.full_reads), (1, 0));

    // pid reuse: another starttime means another process.
    rewrite(&dir.join("stat"), " 82375 ", " 99999 ");
    rewrite(&dir.join("schedstat"), "411605850", "1000");
    std::fs::write(dir.join("cmdline"), b"bash\0-l\0").unwrap();
    let st = c.collect(&mut rows);
    assert_eq!((st.new, st.gone, st.processes), (1, 1, 1));
    assert_eq!(
        (rows[0].starttime, &*rows[0].cmdline, rows[0].run_ns),
        (99999, "bash -l", 1000)
    );

    // Vanished.
    std::fs::remove_dir_all(&dir).unwrap();
    let st = c.collect(&mut rows);
    assert_eq!((st.processes, st.gone), (0, 1));
    assert!(rows.is_empty());
}

#[test]
fn stuck_cmdline_does_not_stall_the_sweep() {
    let tmp = TempDir::new("stuck");
    copy_dir(&fixture_root().join("26231"), &tmp.path().join("100"));
    copy_dir(&fixture_root().join("26231"), &tmp.path().join("200"));
    // A FIFO without writer: opening it blocks like a cmdline read of a
    // process whose mmap_lock is held by a thread stuck in D state.
    let fifo = tmp.path().join("100/cmdline");
    std::fs::remove_file(&fifo).unwrap();
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    struct Unblock(std::ffi::CString);
    impl Drop for Unblock {
        fn drop(&mut self) {
            // Give the blocked helper a writer (then EOF) so it can exit.
            let fd = unsafe { libc::open(self.0.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK) };
            if fd >= 0 {
                unsafe { libc::close(fd) };
            }
        }
    }
    let _unblock = Unblock(c_path);

    let mut c = ProcessCollector::open(tmp.path(), NO_REFRESH);
    let mut rows = Vec::new();
    let t = Instant::now();
    let st = c.collect(&mut rows);
    let took = t.elapsed();
    assert!(took < Duration::from_millis(500), "sweep took {took:?}");
    assert_eq!(st.slow, 1, "{st:?}");
    assert_eq!(&*find(&rows, 200).unwrap().cmdline, "vim test.go +10");
    assert_eq!(&*find(&rows, 100).unwrap().cmdline, "");
    assert_eq!(find(&rows, 100).unwrap().utime, 1677); // the rest is there
                                                       // Next sweep: still slow (retried later with backoff), and fast.
    let t = Instant::now();
    let st = c.collect(&mut rows);
    assert!(t.elapsed() < Duration::from_millis(20), "{:?}", t.elapsed());
    assert_eq!((st.slow, st.processes), (1, 2));
}

fn stats_line(st: &SweepStats) -> String {
    format!("{st:?}")
}

#[test]
fn live_sleeper_and_burner() {
    let me = std::process::id();
    let mut kids = Kids::default();
    kids.0
        .push(Command::new("sleep").arg("30").spawn().unwrap());
    kids.0.push(
        Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap(),
    );
    kids.0
        .push(Command::new("sleep").arg("31").spawn().unwrap());
    let (sleeper, burner, victim) = (kids.0[0].id(), kids.0[1].id(), kids.0[2].id());
    // Let sleep exec and fall asleep.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
        .map_or(true, |s| !s.contains("(sleep) S"))
    {
        assert!(Instant::now() < deadline, "sleeper never slept");
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut c = ProcessCollector::open(Path::new("/proc"), NO_REFRESH);
    let mut rows = Vec::new();
    let st1 = c.collect(&mut rows);
    let s = find(&rows, sleeper).expect("sleeper");
    assert_eq!(s.state, b'S');
    assert_eq!(s.ppid, me);
    assert_eq!(&*s.comm, "sleep");
    assert!(s.io_ok);
    let b1 = find(&rows, burner).expect("burner").clone();
    assert_eq!(b1.ppid, me);
    let own = find(&rows, me).expect("own row");
    assert!(own.num_threads >= 1 && own.uid == unsafe { libc::getuid() });
    assert!(
        st1.processes >= 3 && st1.new == st1.processes,
        "{}",
        stats_line(&st1)
    );
    // Kernel threads are there, with an empty cmdline.
    let kthreadd = find(&rows, 2).expect("kthreadd");
    assert_eq!((&*kthreadd.comm, &*kthreadd.cmdline), ("kthreadd", ""));

    assert!(find(&rows, victim).is_some());

    // Between the sweeps one child ends (reaped) and another starts.
    kids.0[2].kill().unwrap();
    kids.0[2].wait().unwrap();
    kids.0
        .push(Command::new("sleep").arg("32").spawn().unwrap());
    let newcomer = kids.0[3].id();
    std::thread::sleep(Duration::from_millis(300));
    let st2 = c.collect(&mut rows);
    assert!(find(&rows, victim).is_none(), "reaped child still listed");
    assert!(find(&rows, newcomer).is_some(), "new child not listed");
    assert!(st2.gone >= 1 && st2.new >= 1, "{st2:?}");
    let s = find(&rows, sleeper).unwrap();
    assert!(!s.refreshed, "sleeper re-read");
    assert_eq!(s.state, b'S');
    // cmdline/exe come from the helper thread: on a loaded box (parallel
    // tests, the burner) the first sweep may defer them to this one.
    assert_eq!(&*s.cmdline, "sleep 30", "{st1:?} {st2:?}");
    assert!(s.exe.ends_with("/sleep"), "exe {:?}", s.exe);
    let b2 = find(&rows, burner).unwrap();
    assert!(b2.refreshed, "burner not re-read");
    assert!(b2.utime > b1.utime, "utime {} -> {}", b1.utime, b2.utime);
    assert!(b2.run_ns > b1.run_ns);
    assert!(
        st2.skipped_unchanged >= 1 && st2.full_reads >= 1,
        "{}",
        stats_line(&st2)
    );
}

#[test]
fn live_zombie() {
    let me = std::process::id();
    // SAFETY: the child only calls _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        unsafe { libc::_exit(7) };
    }
    struct Reap(i32);
    impl Drop for Reap {
        fn drop(&mut self) {
            let mut st = 0;
            unsafe { libc::waitpid(self.0, &mut st, 0) };
        }
    }
    let _reap = Reap(pid);
    let mut c = ProcessCollector::open(Path::new("/proc"), ProcOptions::default());
    let mut rows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.collect(&mut rows);
        if let Some(r) = find(&rows, pid as u32) {
            if r.state == b'Z' {
                assert_eq!(r.ppid, me);
                assert_eq!(&*r.cmdline, "");
                break;
            }
        }
        assert!(Instant::now() < deadline, "no zombie row");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn live_threads_mode() {
    let me = std::process::id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let opts = ProcOptions {
        threads: true,
        full_refresh_every: 1_000_000,
    };
    let mut c = ProcessCollector::open(Path::new("/proc"), opts);
    let mut rows = Vec::new();
    let st = c.collect(&mut rows);
    let i = rows
        .iter()
        .position(|r| r.pid == me && !r.is_thread)
        .unwrap();
    let n = rows[i + 1..]
        .iter()
        .take_while(|r| r.is_thread && r.tgid == me)
        .count();
    assert!(n >= 2, "only {n} thread rows");
    assert!(rows[i + 1..i + 1 + n].iter().any(|r| r.pid == me)); // main thread
    assert!(rows[i + 1..i + 1 + n]
        .iter()
        .all(|r| r.cmdline == rows[i].cmdline));
    assert!(st.threads >= n);
    // An idle single-threaded process's thread row is reused cheaply.
    let st = c.collect(&mut rows);
    assert!(st.skipped_unchanged > 0, "{st:?}");
    let kthreadd: Vec<_> = rows.iter().filter(|r| r.tgid == 2).collect();
    assert_eq!(kthreadd.len(), 2); // process row + its one thread
    tx.send(()).unwrap();
    helper.join().unwrap();
}

/// Cost micro-check (printed, not asserted): 500 extra sleeping processes.
#[test]
fn cost_with_500_sleepers() {
    let before = std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .count();
    let mut kids = Kids::default();
    for _ in 0..500 {
        kids.0
            .push(Command::new("sleep").arg("60").spawn().unwrap());
    }
    // Wait until every child has exec'd sleep.
    let deadline = Instant::now() + Duration::from_secs(20);
    for k in &kids.0 {
        while std::fs::read_to_string(format!("/proc/{}/comm", k.id()))
            .map_or(true, |s| s != "sleep\n")
        {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for (label, opts) in [
        ("processes", ProcOptions::default()),
        (
            "processes+threads",
            ProcOptions {
                threads: true,
                ..ProcOptions::default()
            },
        ),
    ] {
        let mut c = ProcessCollector::open(Path::new("/proc"), opts);
        let mut rows = Vec::new();
        let first = c.collect(&mut rows);
        let mut times = Vec::new();
        let mut last = first;
        for _ in 0..20 {
            last = c.collect(&mut rows);
            times.push(last.elapsed_ns);
        }
        times.sort_unstable();
        let median = times[times.len() / 2] as f64 / 1000.0;
        let nrows = last.processes + last.threads;
        println!(
            "cost[{label}]: {} processes ({} before spawning), {} threads rows; first sweep {:.0} µs; \
             median of 20 sweeps {:.0} µs = {:.2} µs/row (min {:.0}, max {:.0}); last: {:?}",
            last.processes,
            before,
            last.threads,
            first.elapsed_ns as f64 / 1000.0,
            median,
            median / nrows as f64,
            times[0] as f64 / 1000.0,
            times[times.len() - 1] as f64 / 1000.0,
            last
        );
        assert!(last.processes >= 500);
    }
}

#[test]
fn collector_is_send() {
    fn send<T: Send>() {}
    send::<ProcessCollector>();
}
