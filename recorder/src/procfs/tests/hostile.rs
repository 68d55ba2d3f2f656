//! Hostile input: empty text, truncations, non-numbers, numbers beyond u64,
//! random and mutated bytes. Parsers return `Err` (or skip gracefully); a
//! panic fails the test.

use super::coverage::{read, run, FIXTURES};
use super::*;

const OVER_U64: &str = "18446744073709551616"; // u64::MAX + 1

#[test]
fn parse_u64_bounds() {
    assert_eq!(parse_u64(b"0"), Some(0));
    assert_eq!(parse_u64(b"1234567890"), Some(1234567890));
    assert_eq!(parse_u64(b"9999999999999999999"), Some(9999999999999999999)); // 19 digits
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64(b"00000000000000000000000000042"), Some(42));
    assert_eq!(parse_u64(OVER_U64.as_bytes()), None);
    assert_eq!(parse_u64(b"99999999999999999999"), None);
    assert_eq!(parse_u64(b"184467440737095516150"), None);
    for bad in [
        &b""[..],
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"1.0",
        b"1a",
        b"a",
        b"\x001",
        b"\xff",
    ] {
        assert_eq!(parse_u64(bad), None, "{bad:?}");
    }
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_i64(b"-20"), Some(-20));
    assert_eq!(parse_i64(b"-9223372036854775809"), None);
    assert_eq!(parse_i64(b"9223372036854775808"), None);
    assert_eq!(parse_i64(b"-"), None);
    assert_eq!(parse_i64(b"--1"), None);
    assert_eq!(parse_centi(b"3.85"), Some(385));
    assert_eq!(parse_centi(b"0.05"), Some(5));
    assert_eq!(parse_centi(b"2"), Some(200));
    assert_eq!(parse_centi(b"0.5"), Some(50));
    assert_eq!(parse_centi(b"184467440737095516.15"), Some(u64::MAX));
    for bad in [
        &b""[..],
        b".",
        b"1.",
        b".5",
        b"1.234",
        b"1.2.3",
        b"1.a",
        b"-1.00",
        b"184467440737095516.16",
    ] {
        assert_eq!(parse_centi(bad), None, "{bad:?}");
    }
}

fn sys_err(p: SysParser, cases: &[&str]) {
    for c in cases {
        assert!(collect(p, c.as_bytes()).is_err(), "accepted {c:?}");
    }
}

#[test]
fn stat_hostile() {
    sys_err(
        parse_stat,
        &[
            "",
            "\n\n",
            "ctxt 5\n",           // no cpu line
            "cpu0 1 2 3 4\n",     // no aggregate line
            "cpu",                // truncated
            "cpu  301854 612 11", // truncated: 3 fields
            "cpu  1 2 3 x\n",     // non-number
            "cpu  1 2 3 4.5\n",
            "cpu  1 2 3 -4\n",
            &format!("cpu  1 2 3 {OVER_U64}\n"),
            "cpuX 1 2 3 4\ncpu 1 2 3 4\n", // bad cpu name
            "cpu 1 2 3 4\ncpu99999999999 1 2 3 4\n",
            "cpu 1 2 3 4\nctxt\n", // missing value
            "cpu 1 2 3 4\nctxt abc\n",
            &format!("cpu 1 2 3 4\nintr {OVER_U64} 1 2\n"),
            "cpu 1 2 3 4\nsoftirq -1\n",
        ],
    );
    // Graceful: unknown lines, blank lines, trailing garbage on intr.
    let c = collect(parse_stat, b"\ncpu 1 2 3 4\nwhatever x y\n\nintr 7 x\n").unwrap();
    assert_eq!(col(&c, "stat.intr"), 7);
    assert_eq!(c.len(), 5);
}

#[test]
fn loadavg_hostile() {
    sys_err(
        parse_loadavg,
        &[
            "",
            "\n",
            "0.02 0.04",
            "0.02 0.04 0.05 1/497",
            "0.02 0.04 0.05 1497 11947",
            "0.02 0.04 0.05 1/ 11947",
            "0.02 0.04 0.05 /497 11947",
            "0.02 0.04 0.05 1/497 11947 extra",
            "a b c 1/2 3",
            "0.021 0.04 0.05 1/497 11947",
            "-0.02 0.04 0.05 1/497 11947",
            "0.02 0.04 0.05 1/497 x",
            &format!("0.02 0.04 0.05 1/{OVER_U64} 11947"),
            "99999999999999999999.00 0.04 0.05 1/497 11947",
        ],
    );
}

#[test]
fn meminfo_hostile() {
    sys_err(
        parse_meminfo,
        &[
            "",
            "\n",
            "MemTotal 123 kB\n",
            "MemTotal: abc kB\n",
            "MemTotal: 123 MB\n",
            "MemTotal: 1 kB 2\n",
            "MemTotal:\n",
            ": 5 kB\n",
            "Mem Total: 5 kB\n",
            "MemFree: 5 kB\n", // no MemTotal
            &format!("MemTotal: {OVER_U64} kB\n"),
            "MemTotal: 5 kB\nbroken line\n",
            "MemTotal: -5 kB\n",
        ],
    );
    // A line truncated inside the number still parses (the prefix is a number).
    let c = collect(parse_meminfo, b"MemTotal:        37421").unwrap();
    assert_eq!(col(&c, "mem.MemTotal"), 37421);
    // Invalid UTF-8 in a key: Err, not a panic.
    assert!(collect(parse_meminfo, b"MemTotal: 1 kB\n\xff\xfe: 2 kB\n").is_err());
}

#[test]
fn vmstat_hostile() {
    sys_err(
        parse_vmstat,
        &[
            "",
            "\n",
            "nr_free_pages",
            "nr_free_pages x",
            "nr_free_pages 1 2",
            "nr_free_pages -1",
            "nr_free_pages 1\nnr_dirty",
            &format!("nr_free_pages {OVER_U64}"),
        ],
    );
    assert!(collect(parse_vmstat, b"\xff 1\n").is_err());
}

#[test]
fn pressure_hostile() {
    sys_err(
        pressure_memory,
        &[
            "",
            "\n",
            "some",
            "some avg10=0.10 avg60=2.00 avg300=3.85",
            "some avg10=0.10 avg60=2.00 avg300=3.85 total=",
            "some avg10=x avg60=2.00 avg300=3.85 total=15",
            "some avg10=0.101 avg60=2.00 avg300=3.85 total=15",
            "some avg10 0.10 avg60=2.00 avg300=3.85 total=15",
            "half avg10=0.10 avg60=2.00 avg300=3.85 total=15",
            "some avg10=0.10 avg60=2.00 avg300=3.85 total=-15",
            &format!("some avg10=0.10 avg60=2.00 avg300=3.85 total={OVER_U64}"),
            "some avg10=0.10 avg60=2.00 avg300=3.85 total=15\nfull avg1",
        ],
    );
    // Unknown key=value pairs are skipped.
    let c = collect(
        pressure_cpu,
        b"some avg10=0.10 avg60=2.00 avg300=3.85 total=15 new=x\n",
    )
    .unwrap();
    assert_eq!(col(&c, "psi.cpu.some.total"), 15);
}

#[test]
fn pid_stat_hostile() {
    let ok = "1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22";
    let mut s = PidStat::default();
    assert!(parse_pid_stat(ok.as_bytes(), &mut s).is_ok());
    let over = ok.replace(" 9 ", &format!(" {OVER_U64} "));
    let cases = [
        "",
        "\n",
        "1",
        "1 (a",
        "1 a) S 1",
        ")1 (a S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "x (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "-1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "4294967296 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "1 (a) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "1 (a) S x 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        "1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 2.2",
        "1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 junk",
        "1 (a) S 1 2 3 4 5 6 7 8 9 10",
        "1 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20\n21 22",
        &over,
    ];
    for c in cases {
        let mut s = PidStat {
            pid: 9,
            ..PidStat::default()
        };
        assert!(
            parse_pid_stat(c.as_bytes(), &mut s).is_err(),
            "accepted {c:?}"
        );
    }
}

#[test]
fn pid_status_hostile() {
    let ok = "Tgid:\t5\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\n";
    assert!(parse_pid_status(ok.as_bytes(), &mut PidStatus::default()).is_ok());
    let cases = [
        "",
        "\n",
        "Name:\tx\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\n", // no Gid
        "Tgid:\tx\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\n",
        "Tgid:\t4294967296\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\n",
        "Tgid:\t5\nUid:\t1\t2\t3\nGid:\t1\t2\t3\t4\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\t5\nGid:\t1\t2\t3\t4\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t-4\nGid:\t1\t2\t3\t4\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nVmRSS:\t12 MB\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nVmRSS:\tkB\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\ngarbage\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nThreads:\t18446744073709551616\n",
        "Tgid:\t5\nUid:\t1\t2\t3\t4\nGid:\t1\t2\t3\t4\nvoluntary_ctxt_switches:\t-1\n",
    ];
    for c in cases {
        assert!(
            parse_pid_status(c.as_bytes(), &mut PidStatus::default()).is_err(),
            "accepted {c:?}"
        );
    }
}

#[test]
fn pid_io_hostile() {
    let ok = "rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 5\nwrite_bytes: 6\ncancelled_write_bytes: 7\n";
    let mut io = PidIo::default();
    parse_pid_io(ok.as_bytes(), &mut io).unwrap();
    assert_eq!(io.cancelled_write_bytes, 7);
    let cases = [
        "".to_owned(),
        "\n".to_owned(),
        "rchar: 1\n".to_owned(),           // missing lines
        ok.replace("syscr: 3\n", ""),      // one missing
        ok.replace("rchar: 1", "rchar 1"), // no colon
        ok.replace("rchar: 1", "rchar: x"),
        ok.replace("rchar: 1", "rchar: -"),
        ok.replace("rchar: 1", "rchar: 1 2"),
        ok.replace("rchar: 1", &format!("rchar: {OVER_U64}")),
        ok.replace("rchar: 1", "rchar: -99999999999999999999"),
        ok[..ok.len() - 4].to_owned() + ":",
    ];
    for c in cases {
        assert!(
            parse_pid_io(c.as_bytes(), &mut PidIo::default()).is_err(),
            "accepted {c:?}"
        );
    }
}

#[test]
fn pid_schedstat_hostile() {
    for c in [
        "",
        "\n",
        "1",
        "1 2",
        "1 2 x",
        "a b c",
        "1 2 -3",
        &format!("{OVER_U64} 1 2"),
        "1 2 3 x",
        "\n1 2 3\n",
    ] {
        assert!(
            parse_pid_schedstat(c.as_bytes(), &mut PidSchedstat::default()).is_err(),
            "accepted {c:?}"
        );
    }
    // Extra numbers (a future kernel) are ignored.
    let mut s = PidSchedstat::default();
    parse_pid_schedstat(b"1 2 3 4\n", &mut s).unwrap();
    assert_eq!(s.timeslices, 3);
}

/// Every prefix of every covered fixture. Files over 8 KiB (only the 132 KB
/// prometheus `stat`, whose `intr` line is huge) are cut at every byte of
/// their first 4 KiB and last 256 bytes and at a stride of 97 in between,
/// to keep the debug-build run short.
#[test]
fn every_prefix_of_every_fixture_never_panics() {
    let mut cuts = 0usize;
    for &(rel, parser, _) in FIXTURES {
        let text = read(rel);
        let n = text.len();
        for len in 0..=n {
            if n > 8192 && len > 4096 && len < n - 256 && len % 97 != 0 {
                continue;
            }
            let _ = run(rel, parser, &text[..len]);
            cuts += 1;
        }
        // The prefix of a line ending (what a short read gives) too.
        let _ = run(rel, parser, &text[..n.saturating_sub(1)]);
    }
    assert!(cuts > 10_000, "{cuts}");
}

/// Cheap deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&[u8]] = &[
    b"cpu",
    b"cpu0 ",
    b"intr ",
    b"ctxt ",
    b"some ",
    b"full ",
    b"avg10=",
    b"total=",
    b"MemTotal:",
    b" kB",
    b"Tgid:",
    b"Uid:",
    b"Gid:",
    b"rchar:",
    b"VmRSS:",
    b"(",
    b")",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-9223372036854775808",
    b"0.05",
    b"1/497",
    b"\n",
    b" ",
    b"\t",
    b":",
    b"\0",
    b"=",
    b".",
];

fn random_input(rng: &mut Rng, buf: &mut Vec<u8>) {
    buf.clear();
    let len = rng.below(64);
    for _ in 0..len {
        match rng.below(4) {
            0 => buf.push(rng.next() as u8),
            1 => buf.push(b'0' + rng.below(10) as u8),
            _ => buf.extend_from_slice(PIECES[rng.below(PIECES.len())]),
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let parsers = all_parsers();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut buf = Vec::new();
    let mut oks = 0;
    for _ in 0..3000 {
        random_input(&mut rng, &mut buf);
        for (_, p) in &parsers {
            oks += p(&buf).is_ok() as u32;
        }
    }
    // Pure noise: next to nothing is accepted (cmdline accepts anything).
    assert!(oks >= 3000, "{oks}");
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for &(rel, parser, _) in FIXTURES {
        let orig = read(rel);
        if orig.is_empty() || orig.len() > 8192 {
            continue;
        }
        for _ in 0..150 {
            let mut t = orig.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(t.len().max(1));
                match rng.below(4) {
                    0 if !t.is_empty() => t[i] = rng.next() as u8,
                    1 if !t.is_empty() => {
                        t.remove(i);
                    }
                    2 => t.insert(i.min(t.len()), b"0123456789 \n:()-."[rng.below(17)]),
                    _ => t
                        .splice(
                            i.min(t.len())..i.min(t.len()),
                            PIECES[rng.below(PIECES.len())].iter().copied(),
                        )
                        .for_each(drop),
                }
            }
            let _ = run(rel, parser, &t);
        }
    }
}

#[test]
fn non_utf8_and_nul_bytes() {
    let mut buf = String::new();
    let e = &mut |_: &str, _: u64| {};
    assert!(
        parse_stat(b"cpu 1 2 3 4\n\xff\xff 1\n", &mut buf, e).is_ok(),
        "unknown line skipped"
    );
    assert!(parse_stat(b"cpu\xff 1 2 3 4\n", &mut buf, e).is_err());
    assert!(parse_stat(b"cpu 1 2 3 4\0\n", &mut buf, e).is_err());
    assert!(parse_pressure(
        "io",
        b"some\0avg10=0.10 avg60=2.00 avg300=3.85 total=15",
        &mut buf,
        e
    )
    .is_err());
    let mut s = PidStat::default();
    let comm = parse_pid_stat(
        b"1 (\xff\0) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22",
        &mut s,
    )
    .unwrap();
    assert_eq!(comm, b"\xff\0");
}
