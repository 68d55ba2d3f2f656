//! System parsers on every fixture they cover, with values read off the text.

use super::*;

const CPU_LINES: [&str; 9] = [
    "cpu", "cpu0", "cpu1", "cpu2", "cpu3", "cpu4", "cpu5", "cpu6", "cpu7",
];

#[test]
fn stat_prometheus() {
    let c = collect(parse_stat, &fixture!("prometheus-procfs/stat")).unwrap();
    // cpu  301854 612 111922 8979004 3552 2 3944 0 0 0
    let agg = [301854, 612, 111922, 8979004, 3552, 2, 3944, 0, 0, 0];
    for (f, v) in CPU_FIELDS.iter().zip(agg) {
        assert_eq!(col(&c, &format!("cpu.{f}")), v, "cpu.{f}");
    }
    // cpu7 29098 268 10164 1139282 555 0 31 0 0 0
    assert_eq!(col(&c, "cpu7.user"), 29098);
    assert_eq!(col(&c, "cpu7.nice"), 268);
    assert_eq!(col(&c, "cpu7.idle"), 1139282);
    assert_eq!(col(&c, "cpu0.softirq"), 3410);
    assert_eq!(col(&c, "cpu3.iowait"), 533);
    assert_eq!(col(&c, "stat.intr"), 73777505);
    assert_eq!(col(&c, "stat.ctxt"), 38014093);
    assert_eq!(col(&c, "stat.btime"), 1418183276);
    assert_eq!(col(&c, "stat.processes"), 26442);
    assert_eq!(col(&c, "stat.procs_running"), 2);
    assert_eq!(col(&c, "stat.procs_blocked"), 1);
    assert_eq!(col(&c, "stat.softirq"), 5057579);
    assert!(!has(&c, "cpu8.user"));
    assert_eq!(c.len(), 9 * 10 + 7);
    // Order: file order, aggregate first.
    assert_eq!(c[0], ("cpu.user".to_owned(), 301854));
    assert_eq!(c.last().unwrap(), &("stat.softirq".to_owned(), 5057579));
}

#[test]
fn stat_node_exporter() {
    let c = collect(parse_stat, &fixture!("node-exporter/stat")).unwrap();
    // cpu  301854 612 111922 8979004 3552 2 3944 0 44 36
    assert_eq!(col(&c, "cpu.user"), 301854);
    assert_eq!(col(&c, "cpu.guest"), 44);
    assert_eq!(col(&c, "cpu.guest_nice"), 36);
    // cpu7 29098 268 10164 1139282 555 0 31 0 9 8
    assert_eq!(col(&c, "cpu7.guest"), 9);
    assert_eq!(col(&c, "cpu7.guest_nice"), 8);
    assert_eq!(col(&c, "cpu0.guest_nice"), 1);
    assert_eq!(col(&c, "stat.intr"), 8885917);
    assert_eq!(col(&c, "stat.ctxt"), 38014093);
    assert_eq!(col(&c, "stat.procs_blocked"), 0);
    assert_eq!(col(&c, "stat.softirq"), 5057579);
    for cpu in CPU_LINES {
        for f in CPU_FIELDS {
            assert!(has(&c, &format!("{cpu}.{f}")));
        }
    }
    assert_eq!(c.len(), 97);
}

#[test]
fn stat_old_kernel_fewer_fields_and_unknown_lines() {
    // 2.4-style: 4 cpu fields, `page`/`swap`/`disk_io` lines.
    let text = b"cpu  1 2 3 4\ncpu0 1 2 3 4\npage 5 6\nswap 7 8\ndisk_io: (3,0):(1,2,3,4,5)\nctxt 99\nbtime 5\n";
    let c = collect(parse_stat, text).unwrap();
    assert_eq!(col(&c, "cpu.idle"), 4);
    assert!(!has(&c, "cpu.iowait"));
    assert!(!has(&c, "cpu0.steal"));
    assert_eq!(col(&c, "stat.ctxt"), 99);
    assert_eq!(c.len(), 10);
    // 2.6.11-style: 8 fields (up to steal); a future 11th field is ignored.
    let c = collect(
        parse_stat,
        b"cpu 1 2 3 4 5 6 7 8\ncpu12 1 2 3 4 5 6 7 8 9 10 11\n",
    )
    .unwrap();
    assert_eq!(col(&c, "cpu.steal"), 8);
    assert!(!has(&c, "cpu.guest"));
    assert_eq!(col(&c, "cpu12.guest_nice"), 10);
    assert_eq!(c.len(), 18);
}

#[test]
fn loadavg_prometheus() {
    let c = collect(parse_loadavg, &fixture!("prometheus-procfs/loadavg")).unwrap();
    // 0.02 0.04 0.05 1/497 11947
    assert_eq!(
        c,
        [
            ("load.avg1".to_owned(), 2),
            ("load.avg5".to_owned(), 4),
            ("load.avg15".to_owned(), 5),
            ("load.runnable".to_owned(), 1),
            ("load.threads".to_owned(), 497),
            ("load.last_pid".to_owned(), 11947),
        ]
    );
}

#[test]
fn loadavg_node_exporter() {
    let c = collect(parse_loadavg, &fixture!("node-exporter/loadavg")).unwrap();
    // 0.21 0.37 0.39 1/719 19737
    assert_eq!(col(&c, "load.avg1"), 21);
    assert_eq!(col(&c, "load.avg5"), 37);
    assert_eq!(col(&c, "load.avg15"), 39);
    assert_eq!(col(&c, "load.runnable"), 1);
    assert_eq!(col(&c, "load.threads"), 719);
    assert_eq!(col(&c, "load.last_pid"), 19737);
    // Big loads stay exact (no floats).
    let c = collect(parse_loadavg, b"1234.56 100.00 7.10 12/3456 7890\n").unwrap();
    assert_eq!(col(&c, "load.avg1"), 123456);
    assert_eq!(col(&c, "load.avg5"), 10000);
    assert_eq!(col(&c, "load.avg15"), 710);
}

#[test]
fn loadavg_top_level_is_empty_and_rejected() {
    // The shared copy of node_exporter's loose `loadavg` fixture is 0 bytes.
    let text = fixture!("node-exporter/top-level-loadavg");
    assert!(text.is_empty());
    let e = collect(parse_loadavg, &text).unwrap_err();
    assert_eq!(e.file, "/proc/loadavg");
}

#[test]
fn meminfo_prometheus() {
    let c = collect(parse_meminfo, &fixture!("prometheus-procfs/meminfo")).unwrap();
    assert_eq!(c.len(), 45);
    assert_eq!(c[0], ("mem.MemTotal".to_owned(), 15666184));
    assert_eq!(col(&c, "mem.MemFree"), 440324);
    assert_eq!(col(&c, "mem.Active(anon)"), 267256);
    assert_eq!(col(&c, "mem.Inactive(file)"), 6532440);
    assert_eq!(col(&c, "mem.Zswap"), 22414);
    assert_eq!(col(&c, "mem.Zswapped"), 10502);
    assert_eq!(col(&c, "mem.Percpu"), 26176);
    assert_eq!(col(&c, "mem.VmallocTotal"), 34359738367);
    assert_eq!(col(&c, "mem.HugePages_Total"), 0);
    assert_eq!(col(&c, "mem.Hugepagesize"), 2048);
    assert_eq!(col(&c, "mem.DirectMap2M"), 16039936);
}

#[test]
fn meminfo_node_exporter() {
    let c = collect(parse_meminfo, &fixture!("node-exporter/meminfo")).unwrap();
    assert_eq!(c.len(), 42);
    assert_eq!(col(&c, "mem.MemTotal"), 3742148);
    assert_eq!(col(&c, "mem.Active(anon)"), 2020004);
    assert_eq!(col(&c, "mem.Committed_AS"), 7835436);
    assert_eq!(col(&c, "mem.NFS_Unstable"), 0);
    assert_eq!(col(&c, "mem.VmallocChunk"), 34359338876);
    assert_eq!(col(&c, "mem.HugePages_Surp"), 0);
    assert_eq!(col(&c, "mem.DirectMap2M"), 3698688);
    assert!(!has(&c, "mem.Zswap"));
    // HugePages_* counts are taken as is.
    let c = collect(
        parse_meminfo,
        b"MemTotal: 10 kB\nHugePages_Total:      12\n",
    )
    .unwrap();
    assert_eq!(col(&c, "mem.HugePages_Total"), 12);
}

#[test]
fn meminfo_top_level_is_empty_and_rejected() {
    let text = fixture!("node-exporter/top-level-meminfo");
    assert!(text.is_empty());
    let e = collect(parse_meminfo, &text).unwrap_err();
    assert_eq!(e.file, "/proc/meminfo");
}

#[test]
fn vmstat_node_exporter() {
    let c = collect(parse_vmstat, &fixture!("node-exporter/vmstat")).unwrap();
    assert_eq!(c.len(), 120);
    assert_eq!(c[0], ("vm.nr_free_pages".to_owned(), 977769));
    assert_eq!(col(&c, "vm.nr_alloc_batch"), 4158);
    assert_eq!(col(&c, "vm.nr_dirty"), 21);
    assert_eq!(col(&c, "vm.pgpgin"), 7344136);
    assert_eq!(col(&c, "vm.pgfault"), 2320168809);
    assert_eq!(col(&c, "vm.pgmajfault"), 507162);
    assert_eq!(col(&c, "vm.pswpin"), 1476);
    assert_eq!(col(&c, "vm.pswpout"), 35045);
    assert_eq!(c.last().unwrap(), &("vm.oom_kill".to_owned(), 0));
}

fn psi(c: &[(String, u64)], prefix: &str) -> [u64; 4] {
    ["avg10", "avg60", "avg300", "total"].map(|k| col(c, &format!("{prefix}.{k}")))
}

#[test]
fn pressure_prometheus() {
    // cpu: some avg10=0.10 avg60=2.00 avg300=3.85 total=15
    let c = collect(pressure_cpu, &fixture!("prometheus-procfs/pressure/cpu")).unwrap();
    assert_eq!(psi(&c, "psi.cpu.some"), [10, 200, 385, 15]);
    assert_eq!(c.len(), 4);
    // io/memory: + full avg10=0.20 avg60=3.00 avg300=4.95 total=25
    for (p, res) in [
        (pressure_io as SysParser, "io"),
        (pressure_memory, "memory"),
    ] {
        let text = match res {
            "io" => fixture!("prometheus-procfs/pressure/io"),
            _ => fixture!("prometheus-procfs/pressure/memory"),
        };
        let c = collect(p, &text).unwrap();
        assert_eq!(psi(&c, &format!("psi.{res}.some")), [10, 200, 385, 15]);
        assert_eq!(psi(&c, &format!("psi.{res}.full")), [20, 300, 495, 25]);
        assert_eq!(c.len(), 8);
    }
}

#[test]
fn pressure_node_exporter() {
    let c = collect(pressure_cpu, &fixture!("node-exporter/pressure/cpu")).unwrap();
    assert_eq!(psi(&c, "psi.cpu.some"), [0, 0, 0, 14036781]);
    assert_eq!(psi(&c, "psi.cpu.full"), [0, 0, 0, 0]);
    let c = collect(pressure_io, &fixture!("node-exporter/pressure/io")).unwrap();
    assert_eq!(psi(&c, "psi.io.some"), [18, 34, 10, 159886802]);
    assert_eq!(psi(&c, "psi.io.full"), [18, 34, 10, 159229614]);
    let c = collect(pressure_memory, &fixture!("node-exporter/pressure/memory")).unwrap();
    assert_eq!(psi(&c, "psi.memory.some"), [0, 0, 0, 0]);
    assert_eq!(psi(&c, "psi.memory.full"), [0, 0, 0, 0]);
    assert_eq!(c.len(), 8);
    // irq has only a `full` line and no trailing newline: total=8494
    let c = collect(pressure_irq, &fixture!("node-exporter/pressure/irq")).unwrap();
    assert_eq!(psi(&c, "psi.irq.full"), [0, 0, 0, 8494]);
    assert!(!has(&c, "psi.irq.some.total"));
    assert_eq!(c.len(), 4);
}

#[test]
fn uptime_strings() {
    let c = collect(parse_uptime, b"350735.47 234388.90\n").unwrap();
    assert_eq!(
        c,
        [
            ("uptime.up".to_owned(), 35073547),
            ("uptime.idle".to_owned(), 23438890)
        ]
    );
    // Idle may exceed uptime on SMP; no trailing newline is fine.
    let c = collect(parse_uptime, b"12.05 40.10").unwrap();
    assert_eq!(col(&c, "uptime.up"), 1205);
    assert_eq!(col(&c, "uptime.idle"), 4010);
    let c = collect(parse_uptime, b"0.00 0.00\n").unwrap();
    assert_eq!(col(&c, "uptime.up"), 0);
    for bad in [
        &b""[..],
        b"\n",
        b"350735.47\n",
        b"350735.47 x\n",
        b"1.234 5.00\n",
        b"1 2 3\n",
        b"-1.00 2.00\n",
    ] {
        assert!(collect(parse_uptime, bad).is_err(), "{bad:?}");
    }
}

#[test]
fn name_buf_is_reused() {
    let mut buf = String::with_capacity(64);
    let cap = buf.capacity();
    let text = fixture!("node-exporter/stat");
    let mut n = 0;
    parse_stat(&text, &mut buf, &mut |_, _| n += 1).unwrap();
    parse_meminfo(&fixture!("node-exporter/meminfo"), &mut buf, &mut |_, _| {
        n += 1
    })
    .unwrap();
    assert_eq!(buf.capacity(), cap, "names fit in the buffer, no regrowth");
    assert_eq!(n, 97 + 42);
}
