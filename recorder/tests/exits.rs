//! Taskstats exit records from the real kernel (root only).

use lpo_recorder::exits::{ExitListener, ExitRecord};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn ncpus() -> usize {
    // SAFETY: plain sysconf.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    n.max(1) as usize
}

#[test]
fn short_lived_processes_leave_records() {
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root");
        return;
    }
    let me = std::process::id();
    let l = ExitListener::start(ncpus()).expect("taskstats listener");
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut pids = Vec::new();
    for _ in 0..200 {
        let mut c = Command::new("true").spawn().unwrap();
        pids.push(c.id());
        assert!(c.wait().unwrap().success());
    }
    let mut c = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let sh = c.id();
    assert_eq!(c.wait().unwrap().code(), Some(3));
    std::thread::sleep(Duration::from_millis(500));
    let t1 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;

    let mut recs: Vec<ExitRecord> = Vec::new();
    l.drain(&mut recs);
    let by_pid = |pid: u32| recs.iter().find(|r| r.pid == pid && !r.is_thread_group);
    for &pid in &pids {
        let r =
            by_pid(pid).unwrap_or_else(|| panic!("no exit record for {pid} (lost {})", l.lost()));
        assert_eq!(r.comm, "true");
        assert_eq!(r.exit_code, 0);
        assert_eq!((r.tgid, r.ppid), (pid, me));
        assert!(r.group_dead);
        assert!(r.elapsed_us < 5_000_000);
        // btime has whole-second resolution
        assert!(
            r.start_unix_ns >= t0 - 2_000_000_000 && r.start_unix_ns <= t1,
            "start {} not in [{t0}, {t1}]",
            r.start_unix_ns
        );
    }
    let r = by_pid(sh).expect("sh record");
    assert_eq!((r.comm.as_str(), r.exit_code), ("sh", 3 << 8));

    // A thread of ours exiting: an AGGR_PID record with our tgid.
    let tid = std::thread::spawn(|| unsafe { libc::gettid() } as u32)
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    recs.clear();
    l.drain(&mut recs);
    let t = recs.iter().find(|r| r.pid == tid).expect("thread exit");
    assert_eq!(t.tgid, me);
    assert!(!t.is_thread_group && !t.group_dead);
    println!(
        "taskstats: {} records, version {}, lost {}",
        pids.len() + 2,
        t.version,
        l.lost()
    );
    drop(l); // joins the thread and deregisters
}

#[test]
fn start_error_is_one_line() {
    // Whatever happens, the message is one line and names the feature.
    match ExitListener::start(ncpus()) {
        Ok(_) => {}
        Err(e) => {
            let m = e.to_string();
            assert!(
                m.starts_with("short-lived processes not recorded: ") && !m.contains('\n'),
                "{m}"
            );
        }
    }
}
