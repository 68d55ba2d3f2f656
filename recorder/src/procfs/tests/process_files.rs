//! Per-process parsers on every fixture they cover, with values read off
//! the text.

use super::*;

fn stat(text: &[u8]) -> (Vec<u8>, PidStat) {
    let mut s = PidStat::default();
    let comm = parse_pid_stat(text, &mut s).unwrap().to_vec();
    (comm, s)
}

#[test]
fn pid_stat_27079() {
    let (comm, s) = stat(&fixture!("prometheus-procfs/27079/stat"));
    assert_eq!(comm, b"pthread_load");
    assert_eq!(
        s,
        PidStat {
            pid: 27079,
            state: b'S',
            ppid: 1,
            pgrp: 27079,
            session: 1,
            tty_nr: 34816,
            minflt: 113,
            majflt: 1,
            utime: 58125,
            stime: 15,
            cutime: 0,
            cstime: 0,
            priority: 20,
            nice: 0,
            num_threads: 5,
            starttime: 4289574,
            vsize: 36282368,
            rss_pages: 138,
            processor: 2,
            rt_priority: 0,
            policy: 0,
            delayacct_blkio_ticks: 0,
            guest_time: 0,
            exit_code: 0,
        }
    );
}

#[test]
fn pid_stat_27079_tasks() {
    // (tid, state, minflt, majflt, utime, stime, starttime, processor)
    let cases = [
        (
            fixture!("prometheus-procfs/27079/task/27079/stat"),
            (27079, b'S', 97, 1, 0, 0, 4289574, 2),
        ),
        (
            fixture!("prometheus-procfs/27079/task/27080/stat"),
            (27080, b'R', 7, 0, 34136, 3, 4289575, 0),
        ),
        (
            fixture!("prometheus-procfs/27079/task/27081/stat"),
            (27081, b'S', 3, 0, 13680, 4, 4289575, 5),
        ),
        (
            fixture!("prometheus-procfs/27079/task/27082/stat"),
            (27082, b'S', 3, 0, 6859, 3, 4289575, 1),
        ),
        (
            fixture!("prometheus-procfs/27079/task/27083/stat"),
            (27083, b'S', 3, 0, 3452, 4, 4289575, 4),
        ),
    ];
    for (text, (tid, state, minflt, majflt, utime, stime, starttime, cpu)) in cases {
        let (comm, s) = stat(&text);
        assert_eq!(comm, b"pthread_load");
        assert_eq!(
            (
                s.pid,
                s.state,
                s.minflt,
                s.majflt,
                s.utime,
                s.stime,
                s.starttime,
                s.processor
            ),
            (tid, state, minflt, majflt, utime, stime, starttime, cpu)
        );
        assert_eq!(
            (s.ppid, s.pgrp, s.session, s.num_threads, s.rss_pages),
            (1, 27079, 1, 5, 138)
        );
    }
}

#[test]
fn pid_stat_26231() {
    let (comm, s) = stat(&fixture!("prometheus-procfs/26231/stat"));
    assert_eq!(comm, b"vim");
    assert_eq!(
        (s.pid, s.state, s.ppid, s.pgrp, s.session, s.tty_nr),
        (26231, b'R', 5392, 7446, 5392, 34835)
    );
    assert_eq!(
        (s.minflt, s.majflt, s.utime, s.stime, s.cutime, s.cstime),
        (32533, 26, 1677, 44, 158, 99)
    );
    assert_eq!(
        (s.priority, s.nice, s.num_threads, s.starttime),
        (20, 0, 1, 82375)
    );
    assert_eq!(
        (s.vsize, s.rss_pages, s.delayacct_blkio_ticks),
        (56274944, 1981, 31)
    );
}

#[test]
fn pid_stat_26232_extreme_values_saturate() {
    // 33 (ata_sff) S 2 0 0 0 -1 ... cutime=-9223372036854775808
    // cstime=9223372036854775807 ... nice=-20 ... processor=9223372036854775807
    let (comm, s) = stat(&fixture!("prometheus-procfs/26232/stat"));
    assert_eq!(comm, b"ata_sff");
    assert_eq!(
        (s.pid, s.state, s.ppid, s.pgrp, s.session, s.tty_nr),
        (33, b'S', 2, 0, 0, 0)
    );
    assert_eq!(s.cutime, 0, "negative clamps to 0");
    assert_eq!(s.cstime, 9223372036854775807);
    assert_eq!(
        (s.priority, s.nice, s.num_threads, s.starttime),
        (0, -20, 1, 5)
    );
    assert_eq!((s.vsize, s.rss_pages), (0, 0));
    assert_eq!(s.processor, u32::MAX, "too big for u32 saturates");
    assert_eq!((s.rt_priority, s.policy, s.exit_code), (0, 0, 0));
}

#[test]
fn pid_stat_584_comm_with_parens_and_trailing_line() {
    // 1020 ((a b ) ( c d) ) R 28378 ... then a second line `#!/bin/cat ...`
    let (comm, s) = stat(&fixture!("prometheus-procfs/584/stat"));
    assert_eq!(comm, b"(a b ) ( c d) ");
    assert_eq!(
        (s.pid, s.state, s.ppid, s.pgrp, s.session, s.tty_nr),
        (1020, b'R', 28378, 1020, 28378, 34842)
    );
    assert_eq!(
        (s.minflt, s.starttime, s.vsize, s.rss_pages, s.processor),
        (286, 10839175, 10395648, 155, 5)
    );
}

#[test]
fn pid_stat_node_exporter() {
    let (comm, s) = stat(&fixture!("node-exporter/1/stat"));
    assert_eq!(comm, b"systemd");
    assert_eq!((s.pid, s.ppid, s.pgrp, s.session), (1, 0, 1, 1));
    assert_eq!(
        (s.minflt, s.majflt, s.utime, s.stime, s.cutime, s.cstime),
        (9061, 94, 36, 98, 54406, 13885)
    );
    assert_eq!(
        (s.starttime, s.vsize, s.rss_pages, s.delayacct_blkio_ticks),
        (29, 109604864, 2507, 19)
    );

    let (comm, s) = stat(&fixture!("node-exporter/10/stat"));
    assert_eq!(comm, b"khungtaskd");
    assert_eq!(
        (s.pid, s.state, s.ppid, s.utime, s.starttime),
        (17, b'S', 2, 14, 24)
    );

    // Idle kernel thread with SCHED_FIFO priority 1: prio -2, rt_priority 1, policy 1.
    let (comm, s) = stat(&fixture!("node-exporter/11/stat"));
    assert_eq!(comm, b"rcu_preempt");
    assert_eq!(
        (s.pid, s.state, s.stime, s.priority, s.starttime),
        (11, b'I', 346, -2, 32)
    );
    assert_eq!((s.processor, s.rt_priority, s.policy), (2, 1, 1));
}

#[test]
fn pid_stat_missing_stat_is_rejected() {
    let text = fixture!("node-exporter/11/.missing_stat");
    let mut s = PidStat::default();
    let e = parse_pid_stat(&text, &mut s).unwrap_err();
    assert_eq!(e.file, "/proc/PID/stat");
}

#[test]
fn pid_stat_comm_edge_cases() {
    let mut s = PidStat::default();
    let tail = b" S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22";
    for comm in [
        &b"a) b"[..],
        b"",
        b"((",
        b"))",
        b"x y z",
        b"new\nline",
        b"a) b) c",
    ] {
        let mut text = b"42 (".to_vec();
        text.extend_from_slice(comm);
        text.push(b')');
        text.extend_from_slice(tail);
        assert_eq!(parse_pid_stat(&text, &mut s).unwrap(), comm);
        assert_eq!((s.pid, s.state, s.ppid, s.rss_pages), (42, b'S', 1, 21));
    }
    // "(a) b)" from the brief.
    let text = b"7 (a) b) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22\n";
    assert_eq!(parse_pid_stat(text, &mut s).unwrap(), b"a) b");
    assert_eq!(s.state, b'R');
}

#[test]
fn pid_stat_old_kernel_fields_default_to_zero() {
    let mut s = PidStat {
        guest_time: 5,
        exit_code: 9,
        processor: 3,
        ..PidStat::default()
    };
    // Exactly up to rss (field 24): everything after stays 0.
    let text = b"5 (old) S 1 5 5 0 -1 0 10 0 2 0 30 40 0 0 20 0 1 0 100 4096 7\n";
    parse_pid_stat(text, &mut s).unwrap();
    assert_eq!(
        (s.minflt, s.majflt, s.utime, s.stime, s.vsize, s.rss_pages),
        (10, 2, 30, 40, 4096, 7)
    );
    assert_eq!(
        (s.processor, s.guest_time, s.exit_code, s.policy),
        (0, 0, 0, 0)
    );
    // 2.6.18-style, 42 fields (delayacct, no guest_time).
    let text = b"5 (old) S 1 5 5 0 -1 0 10 0 2 0 30 40 0 0 20 0 1 0 100 4096 7 1 2 3 4 5 6 7 8 9 10 11 12 13 -1 3 0 0 77\n";
    parse_pid_stat(text, &mut s).unwrap();
    assert_eq!(
        (s.processor, s.delayacct_blkio_ticks, s.guest_time),
        (3, 77, 0)
    );
    // One field short of rss: Err.
    let text = b"5 (old) S 1 5 5 0 -1 0 10 0 2 0 30 40 0 0 20 0 1 0 100 4096\n";
    assert!(parse_pid_stat(text, &mut s).is_err());
}

#[test]
fn pid_status_26235() {
    let mut s = PidStatus::default();
    parse_pid_status(&fixture!("prometheus-procfs/26235/status"), &mut s).unwrap();
    assert_eq!(
        s,
        PidStatus {
            uid: [0; 4],
            gid: [0; 4],
            voluntary_ctxt_switches: 4742839,
            nonvoluntary_ctxt_switches: 1727500,
            vm_rss_kb: 42652,
            rss_anon_kb: 24852,
            rss_file_kb: 17800,
            rss_shmem_kb: 0,
            vm_swap_kb: 0,
            vm_size_kb: 758200,
            threads: 51,
            tgid: 26235,
        }
    );
}

#[test]
fn pid_status_26231_leading_blank_line_and_tabs() {
    let mut s = PidStatus::default();
    parse_pid_status(&fixture!("prometheus-procfs/26231/status"), &mut s).unwrap();
    assert_eq!(s.tgid, 26231);
    assert_eq!(s.uid, [1000, 1000, 1000, 0]);
    assert_eq!(s.gid, [1001, 1001, 1001, 0]);
    assert_eq!(
        (
            s.vm_size_kb,
            s.vm_rss_kb,
            s.rss_anon_kb,
            s.rss_file_kb,
            s.rss_shmem_kb
        ),
        (58440, 6716, 2092, 4624, 0)
    );
    assert_eq!((s.vm_swap_kb, s.threads), (660, 1));
    assert_eq!(
        (s.voluntary_ctxt_switches, s.nonvoluntary_ctxt_switches),
        (4742839, 1727500)
    );
}

#[test]
fn pid_status_kernel_thread_lacks_vm_lines() {
    let text = b"Name:\tkthreadd\nState:\tS (sleeping)\nTgid:\t2\nPid:\t2\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t1\nvoluntary_ctxt_switches:\t9\nnonvoluntary_ctxt_switches:\t1\n";
    let mut s = PidStatus {
        vm_rss_kb: 99,
        ..PidStatus::default()
    };
    parse_pid_status(text, &mut s).unwrap();
    assert_eq!((s.tgid, s.threads, s.vm_rss_kb, s.vm_size_kb), (2, 1, 0, 0));
    assert_eq!(s.voluntary_ctxt_switches, 9);
}

#[test]
fn pid_io_26231() {
    let mut io = PidIo::default();
    parse_pid_io(&fixture!("prometheus-procfs/26231/io"), &mut io).unwrap();
    assert_eq!(
        io,
        PidIo {
            rchar: 750339,
            wchar: 818609,
            syscr: 7405,
            syscw: 5245,
            read_bytes: 1024,
            write_bytes: 2048,
            cancelled_write_bytes: 0, // fixture says -1024: clamped
        }
    );
}

#[test]
fn pid_schedstat_26231() {
    let mut s = PidSchedstat::default();
    parse_pid_schedstat(&fixture!("prometheus-procfs/26231/schedstat"), &mut s).unwrap();
    assert_eq!(
        s,
        PidSchedstat {
            run_ns: 411605849,
            wait_ns: 93680043,
            timeslices: 79
        }
    );
}

#[test]
fn pid_schedstat_26233_malformed_is_rejected() {
    let mut s = PidSchedstat {
        run_ns: 1,
        wait_ns: 2,
        timeslices: 3,
    };
    let e =
        parse_pid_schedstat(&fixture!("prometheus-procfs/26233/schedstat"), &mut s).unwrap_err();
    assert_eq!(e.file, "/proc/PID/schedstat");
    assert_eq!(s, PidSchedstat::default());
}

fn args(text: &[u8]) -> Vec<&[u8]> {
    cmdline_args(text).collect()
}

#[test]
fn cmdline_fixtures() {
    let t = fixture!("prometheus-procfs/26231/cmdline");
    assert_eq!(args(&t), [&b"vim"[..], b"test.go", b"+10"]);
    // Kernel thread: empty file.
    let t = fixture!("prometheus-procfs/26232/cmdline");
    assert!(t.is_empty());
    assert!(args(&t).is_empty());
    // Rewritten argv padded with NULs.
    let t = fixture!("prometheus-procfs/26233/cmdline");
    assert_eq!(args(&t), [&b"com.github.uiautomator"[..]]);
}

#[test]
fn cmdline_edge_cases() {
    assert!(args(b"").is_empty());
    assert!(args(b"\0").is_empty());
    assert!(args(b"\0\0\0").is_empty());
    assert_eq!(args(b"sh"), [&b"sh"[..]]);
    assert_eq!(args(b"sh\0"), [&b"sh"[..]]);
    assert_eq!(args(b"sh\0-c\0echo hi\0"), [&b"sh"[..], b"-c", b"echo hi"]);
    assert_eq!(
        args(b"a\0\0b"),
        [&b"a"[..], b"", b"b"],
        "inner empty arg kept"
    );
    assert_eq!(args(b"\0a"), [&b""[..], b"a"]);
}
