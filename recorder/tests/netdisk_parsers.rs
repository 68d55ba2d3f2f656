//! The disk/network/interrupt/slab parsers on every fixture they cover
//! (`tests/data/procfs/`, see its NOTICE.md), with values read off the text,
//! and on hostile input: truncations, random and mutated bytes, numbers
//! beyond u64, bad hex, odd names. A panic fails the test.

use lpo_recorder::procfs::netdisk::*;
use lpo_recorder::procfs::{parse_u64, ParseError};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/procfs");

type Parser = fn(&[u8], &mut String, &mut dyn FnMut(&str, u64)) -> Result<(), ParseError>;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{ROOT}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn collect(p: Parser, text: &[u8]) -> Result<Vec<(String, u64)>, ParseError> {
    let mut buf = String::new();
    let mut out = Vec::new();
    p(text, &mut buf, &mut |k, v| out.push((k.to_owned(), v)))?;
    Ok(out)
}

/// Value of `name`; panics if absent or emitted twice.
fn col(cols: &[(String, u64)], name: &str) -> u64 {
    let mut it = cols.iter().filter(|(k, _)| k == name);
    let v = it
        .next()
        .unwrap_or_else(|| panic!("column {name} missing"))
        .1;
    assert!(it.next().is_none(), "column {name} emitted twice");
    v
}

fn has(cols: &[(String, u64)], name: &str) -> bool {
    cols.iter().any(|(k, _)| k == name)
}

fn assert_unique(cols: &[(String, u64)]) {
    let mut names: Vec<&str> = cols.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    for w in names.windows(2) {
        assert_ne!(w[0], w[1], "duplicate column");
    }
}

fn dev_snmp6_eth0(
    t: &[u8],
    b: &mut String,
    e: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_dev_snmp6("eth0", t, b, e)
}

/// Every parser, by name.
const PARSERS: &[(&str, Parser)] = &[
    ("diskstats", parse_diskstats),
    ("net_dev", parse_net_dev),
    ("snmp", parse_snmp),
    ("netstat", parse_netstat),
    ("snmp6", parse_snmp6),
    ("dev_snmp6", dev_snmp6_eth0),
    ("sockstat", parse_sockstat),
    ("sockstat6", parse_sockstat6),
    ("softnet_stat", parse_softnet_stat),
    ("interrupts", parse_interrupts),
    ("softirqs", parse_softirqs),
    ("slabinfo", parse_slabinfo),
    ("nf_conntrack", parse_nf_conntrack),
];

fn parser(name: &str) -> Parser {
    PARSERS.iter().find(|(n, _)| *n == name).unwrap().1
}

/// (path below tests/data/procfs, parser, parses Ok?, columns emitted)
const FIXTURES: &[(&str, &str, bool, usize)] = &[
    ("prometheus-procfs/diskstats", "diskstats", true, 706),
    ("node-exporter/diskstats", "diskstats", true, 687),
    ("node-exporter/top-level-diskstats", "diskstats", false, 0), // 0 bytes
    ("prometheus-procfs/net/dev", "net_dev", true, 4 * 16),
    ("node-exporter/top-level-net-dev", "net_dev", false, 0), // 0 bytes
    ("node-exporter/net/snmp", "snmp", true, 76),
    ("node-exporter/net/netstat", "netstat", true, 84 + 12),
    ("node-exporter/top-level-netstat", "netstat", false, 0), // 0 bytes
    ("node-exporter/net/snmp6", "snmp6", true, 85),
    (
        "prometheus-procfs/net/dev_snmp6/eth0",
        "dev_snmp6",
        true,
        83,
    ),
    (
        "prometheus-procfs/net/dev_snmp6/eth1",
        "dev_snmp6",
        true,
        80,
    ),
    ("prometheus-procfs/net/sockstat", "sockstat", true, 12),
    ("node-exporter/net/sockstat", "sockstat", true, 12),
    ("prometheus-procfs/net/sockstat6", "sockstat6", true, 6),
    ("node-exporter/net/sockstat6", "sockstat6", true, 6),
    (
        "prometheus-procfs/net/softnet_stat",
        "softnet_stat",
        true,
        24,
    ),
    (
        "prometheus-procfs/net/softnet_stat.broken",
        "softnet_stat",
        false,
        0,
    ),
    (
        "node-exporter/net/softnet_stat",
        "softnet_stat",
        true,
        4 * 5,
    ),
    (
        "prometheus-procfs/interrupts",
        "interrupts",
        true,
        45 * 4 + 2,
    ),
    ("node-exporter/interrupts", "interrupts", true, 28 * 4 + 2),
    (
        "node-exporter/interrupts_aarch64",
        "interrupts",
        true,
        58 * 8 + 1,
    ),
    ("prometheus-procfs/softirqs", "softirqs", true, 20),
    ("node-exporter/softirqs", "softirqs", true, 20),
    ("prometheus-procfs/slabinfo", "slabinfo", true, 300 * 7),
    ("node-exporter/slabinfo", "slabinfo", true, 4 * 7),
    (
        "node-exporter/net/stat/nf_conntrack",
        "nf_conntrack",
        true,
        17,
    ),
    ("lpo-6.18/net/stat/nf_conntrack", "nf_conntrack", true, 17),
];

#[test]
fn every_fixture_parses_as_expected() {
    for &(rel, p, ok, n) in FIXTURES {
        let r = collect(parser(p), &read(rel));
        assert_eq!(r.is_ok(), ok, "{rel} with {p}: {r:?}");
        if let Ok(c) = r {
            assert_eq!(c.len(), n, "{rel}: column count");
            assert_unique(&c);
            for (k, _) in &c {
                let (_, field) = k.rsplit_once('.').unwrap();
                assert!(!field.is_empty(), "{k}");
            }
        }
    }
}

#[test]
fn every_copied_file_is_covered() {
    // The data folder is shared with the other parsers' tests: check that
    // every fixture these parsers claim is there (read by the tests below).
    for (f, ..) in FIXTURES.iter() {
        assert!(
            std::path::Path::new(ROOT).join(f).is_file(),
            "{f} missing from tests/data/procfs"
        );
    }
}

// ---------------------------------------------------------------------------
// values read off the fixtures
// ---------------------------------------------------------------------------

#[test]
fn diskstats_14_18_20_fields() {
    let c = collect(parse_diskstats, &read("prometheus-procfs/diskstats")).unwrap();
    // 8 0 sda 25354637 34367663 1003346126 18492372 28444756 11134226 505697032 63877960 0 9653880 82621804
    let sda = [
        25354637, 34367663, 1003346126, 18492372, 28444756, 11134226, 505697032, 63877960, 0,
        9653880, 82621804,
    ];
    for (f, v) in DISK_FIELDS.iter().zip(sda) {
        assert_eq!(col(&c, &format!("disk.sda.{f}")), v, "{f}");
    }
    assert_eq!(col(&c, "disk.sda.major"), 8);
    assert_eq!(col(&c, "disk.sda.minor"), 0);
    assert!(!has(&c, "disk.sda.discards"));
    assert!(!has(&c, "disk.sda.flushes"));
    // 8 0 sdb … 68851 0 1925173784 11130 (18 fields: discards, no flushes)
    assert_eq!(col(&c, "disk.sdb.discards"), 68851);
    assert_eq!(col(&c, "disk.sdb.discards_merged"), 0);
    assert_eq!(col(&c, "disk.sdb.sectors_discarded"), 1925173784);
    assert_eq!(col(&c, "disk.sdb.discard_ms"), 11130);
    assert!(!has(&c, "disk.sdb.flushes"));
    // 8 0 sdc 14202 71 579164 21861 2995 1589 180500 40875 0 11628 55200 0 0 0 0 127 182
    assert_eq!(col(&c, "disk.sdc.reads"), 14202);
    assert_eq!(col(&c, "disk.sdc.weighted_ms"), 55200);
    assert_eq!(col(&c, "disk.sdc.flushes"), 127);
    assert_eq!(col(&c, "disk.sdc.flush_ms"), 182);
    assert_eq!(col(&c, "disk.nvme0n1p2.sectors_written"), 39451632);
    assert_eq!(col(&c, "disk.dm-0.write_ms"), 1158557800);
    assert_eq!(col(&c, "disk.mmcblk0p1.minor"), 1);
    assert_eq!(col(&c, "disk.mmcblk0p1.major"), 179);
    // File order, major/minor first.
    assert_eq!(c[0], ("disk.ram0.major".to_owned(), 1));
    assert_eq!(c[2], ("disk.ram0.reads".to_owned(), 0));
    assert_eq!(c.last().unwrap(), &("disk.sdc2.flush_ms".to_owned(), 0));

    let c = collect(parse_diskstats, &read("node-exporter/diskstats")).unwrap();
    assert_eq!(col(&c, "disk.sdb.minor"), 16);
    assert_eq!(col(&c, "disk.sdc.minor"), 32);
    // 8 32 sdc 126552 141 1657779 14 11822 1895 172905 1007 0 10730 17070 18851 0 125173784 11130 1555 1944
    assert_eq!(col(&c, "disk.sdc.sectors_read"), 1657779);
    assert_eq!(col(&c, "disk.sdc.sectors_discarded"), 125173784);
    assert_eq!(col(&c, "disk.sdc.flushes"), 1555);
    assert_eq!(col(&c, "disk.sdc.flush_ms"), 1944);
    assert_eq!(col(&c, "disk.sdc1.flushes"), 0);
    assert_eq!(col(&c, "disk.vda.io_ms"), 41614592);
}

#[test]
fn net_dev_prometheus() {
    let c = collect(parse_net_dev, &read("prometheus-procfs/net/dev")).unwrap();
    //   eth0: 874354587 1036395    0    0    0     0          0         0 563352563  732147 …
    assert_eq!(col(&c, "net.eth0.rx_bytes"), 874354587);
    assert_eq!(col(&c, "net.eth0.rx_packets"), 1036395);
    assert_eq!(col(&c, "net.eth0.tx_bytes"), 563352563);
    assert_eq!(col(&c, "net.eth0.tx_packets"), 732147);
    assert_eq!(col(&c, "net.eth0.tx_compressed"), 0);
    assert_eq!(col(&c, "net.lo.rx_bytes"), 1664039048);
    assert_eq!(col(&c, "net.lo.tx_packets"), 1566805);
    assert_eq!(col(&c, "net.docker0.rx_packets"), 38);
    assert_eq!(col(&c, "net.vethf345468.tx_bytes"), 438);
    let order: Vec<&str> = c
        .iter()
        .filter(|(k, _)| k.ends_with(".rx_bytes"))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "net.vethf345468.rx_bytes",
            "net.lo.rx_bytes",
            "net.docker0.rx_bytes",
            "net.eth0.rx_bytes"
        ]
    );
}

#[test]
fn snmp_node_exporter() {
    let c = collect(parse_snmp, &read("node-exporter/net/snmp")).unwrap();
    // Tcp: 1 200 120000 -1 3556 230 341 161 0 57252008 54915039 227 5 1003 0
    for (f, v) in [
        ("RtoAlgorithm", 1),
        ("RtoMin", 200),
        ("RtoMax", 120000),
        ("ActiveOpens", 3556),
        ("PassiveOpens", 230),
        ("AttemptFails", 341),
        ("EstabResets", 161),
        ("CurrEstab", 0),
        ("InSegs", 57252008),
        ("OutSegs", 54915039),
        ("RetransSegs", 227),
        ("InErrs", 5),
        ("OutRsts", 1003),
        ("InCsumErrors", 0),
    ] {
        assert_eq!(col(&c, &format!("snmp.Tcp.{f}")), v, "{f}");
    }
    // MaxConn -1: skipped, not stored as two's complement.
    assert!(!has(&c, "snmp.Tcp.MaxConn"));
    // Udp: 88542 120 0 53028 9 8 0
    assert_eq!(col(&c, "snmp.Udp.InDatagrams"), 88542);
    assert_eq!(col(&c, "snmp.Udp.NoPorts"), 120);
    assert_eq!(col(&c, "snmp.Udp.OutDatagrams"), 53028);
    assert_eq!(col(&c, "snmp.Udp.RcvbufErrors"), 9);
    assert_eq!(col(&c, "snmp.Udp.SndbufErrors"), 8);
    assert_eq!(col(&c, "snmp.UdpLite.InDatagrams"), 0);
    assert_eq!(col(&c, "snmp.Ip.InReceives"), 57740232);
    assert_eq!(col(&c, "snmp.Ip.ForwDatagrams"), 397750);
    assert_eq!(col(&c, "snmp.Ip.OutNoRoutes"), 54);
    assert_eq!(col(&c, "snmp.Icmp.OutMsgs"), 120);
    assert_eq!(col(&c, "snmp.IcmpMsg.InType3"), 104);
    assert_eq!(col(&c, "snmp.IcmpMsg.OutType3"), 120);
}

#[test]
fn netstat_node_exporter() {
    let c = collect(parse_netstat, &read("node-exporter/net/netstat")).unwrap();
    assert_eq!(col(&c, "netstat.TcpExt.SyncookiesSent"), 0);
    assert_eq!(col(&c, "netstat.TcpExt.SyncookiesFailed"), 2);
    assert_eq!(col(&c, "netstat.TcpExt.ListenOverflows"), 0);
    assert_eq!(col(&c, "netstat.TcpExt.ListenDrops"), 0);
    assert_eq!(col(&c, "netstat.TcpExt.TW"), 388812);
    assert_eq!(col(&c, "netstat.TcpExt.DelayedACKs"), 102471);
    assert_eq!(col(&c, "netstat.TcpExt.TCPTimeouts"), 115);
    assert_eq!(col(&c, "netstat.TcpExt.TCPOFOQueue"), 42);
    assert_eq!(col(&c, "netstat.TcpExt.TCPRcvQDrop"), 131);
    assert_eq!(col(&c, "netstat.IpExt.InOctets"), 6286396970);
    assert_eq!(col(&c, "netstat.IpExt.OutOctets"), 2786264347);
}

#[test]
fn snmp6_and_dev_snmp6() {
    let c = collect(parse_snmp6, &read("node-exporter/net/snmp6")).unwrap();
    assert_eq!(col(&c, "snmp6.Ip6InReceives"), 7);
    assert_eq!(col(&c, "snmp6.Ip6OutNoRoutes"), 3003);
    assert_eq!(col(&c, "snmp6.Icmp6OutType143"), 4);
    assert_eq!(col(&c, "snmp6.Udp6RcvbufErrors"), 9);
    assert_eq!(col(&c, "snmp6.Udp6SndbufErrors"), 8);
    assert_eq!(col(&c, "snmp6.UdpLite6InCsumErrors"), 0);

    let mut buf = String::new();
    let mut c = Vec::new();
    parse_dev_snmp6(
        "eth0",
        &read("prometheus-procfs/net/dev_snmp6/eth0"),
        &mut buf,
        &mut |k, v| c.push((k.to_owned(), v)),
    )
    .unwrap();
    assert_eq!(col(&c, "dev_snmp6.eth0.ifIndex"), 1);
    assert_eq!(col(&c, "dev_snmp6.eth0.Ip6InReceives"), 3057229);
    assert_eq!(col(&c, "dev_snmp6.eth0.Icmp6OutType143"), 5353);
    // A bad interface name is an error, not a strange column.
    let mut e = |_: &str, _: u64| {};
    assert!(parse_dev_snmp6("", b"Ip6InReceives 1\n", &mut buf, &mut e).is_err());
    assert!(parse_dev_snmp6("a b", b"Ip6InReceives 1\n", &mut buf, &mut e).is_err());
}

#[test]
fn sockstat_both_trees() {
    let c = collect(parse_sockstat, &read("prometheus-procfs/net/sockstat")).unwrap();
    assert_eq!(col(&c, "sockstat.sockets.used"), 1602);
    assert_eq!(col(&c, "sockstat.TCP.inuse"), 35);
    assert_eq!(col(&c, "sockstat.TCP.orphan"), 0);
    assert_eq!(col(&c, "sockstat.TCP.tw"), 4);
    assert_eq!(col(&c, "sockstat.TCP.alloc"), 59);
    assert_eq!(col(&c, "sockstat.TCP.mem"), 22);
    assert_eq!(col(&c, "sockstat.UDP.inuse"), 12);
    assert_eq!(col(&c, "sockstat.UDP.mem"), 62);
    assert_eq!(col(&c, "sockstat.FRAG.memory"), 0);
    let c = collect(parse_sockstat, &read("node-exporter/net/sockstat")).unwrap();
    assert_eq!(col(&c, "sockstat.sockets.used"), 229);
    assert_eq!(col(&c, "sockstat.TCP.alloc"), 17);
    assert_eq!(col(&c, "sockstat.TCP.mem"), 1);
    for rel in [
        "prometheus-procfs/net/sockstat6",
        "node-exporter/net/sockstat6",
    ] {
        let c = collect(parse_sockstat6, &read(rel)).unwrap();
        assert_eq!(col(&c, "sockstat.TCP6.inuse"), 17);
        assert_eq!(col(&c, "sockstat.UDP6.inuse"), 9);
        assert_eq!(col(&c, "sockstat.RAW6.inuse"), 1);
        assert_eq!(col(&c, "sockstat.FRAG6.memory"), 0);
    }
}

#[test]
fn softnet_stat_formats() {
    // Mixed 13, 13, 11, 9 and 10 columns.
    let c = collect(
        parse_softnet_stat,
        &read("prometheus-procfs/net/softnet_stat"),
    )
    .unwrap();
    assert_eq!(col(&c, "softnet.cpu0.processed"), 0x00358fe3);
    assert_eq!(col(&c, "softnet.cpu0.dropped"), 0x00006283);
    assert_eq!(col(&c, "softnet.cpu0.time_squeeze"), 0);
    assert_eq!(col(&c, "softnet.cpu0.received_rps"), 0x000855fc);
    assert_eq!(col(&c, "softnet.cpu0.flow_limit_count"), 0x76);
    assert_eq!(col(&c, "softnet.cpu0.backlog_len"), 0);
    // 13th column is the CPU id (1 here).
    assert_eq!(col(&c, "softnet.cpu1.processed"), 0x00953d1a);
    assert_eq!(col(&c, "softnet.cpu1.time_squeeze"), 0xb1);
    assert_eq!(col(&c, "softnet.cpu1.backlog_len"), 0xdc);
    // 11 columns: row index 2, no backlog_len.
    assert_eq!(col(&c, "softnet.cpu2.time_squeeze"), 0xf0000769);
    assert_eq!(col(&c, "softnet.cpu2.flow_limit_count"), 2);
    assert!(!has(&c, "softnet.cpu2.backlog_len"));
    // 9 columns: no received_rps.
    assert_eq!(col(&c, "softnet.cpu3.processed"), 0x01663fb2);
    assert!(!has(&c, "softnet.cpu3.received_rps"));
    // 10 columns.
    assert_eq!(col(&c, "softnet.cpu4.received_rps"), 0x10);
    assert!(!has(&c, "softnet.cpu4.flow_limit_count"));

    let c = collect(parse_softnet_stat, &read("node-exporter/net/softnet_stat")).unwrap();
    assert_eq!(col(&c, "softnet.cpu0.processed"), 0x49279);
    assert_eq!(col(&c, "softnet.cpu1.dropped"), 0x29);
    assert_eq!(col(&c, "softnet.cpu1.time_squeeze"), 0x0a);
    assert_eq!(col(&c, "softnet.cpu3.processed"), 0x2f8339);
    assert_eq!(col(&c, "softnet.cpu3.time_squeeze"), 0x32);
    assert!(!has(&c, "softnet.cpu4.processed"));

    // The broken one: 4 columns.
    let e = collect(
        parse_softnet_stat,
        &read("prometheus-procfs/net/softnet_stat.broken"),
    )
    .unwrap_err();
    assert_eq!(e.file, "/proc/net/softnet_stat");

    // The CPU id column wins over the position, and must increase.
    let row = |cpu: u32| {
        format!("00000001 00000002 00000003 0 0 0 0 0 0 00000004 00000005 00000006 {cpu:08x}\n")
    };
    let t = row(0) + &row(2) + &row(5);
    let c = collect(parse_softnet_stat, t.as_bytes()).unwrap();
    assert_eq!(col(&c, "softnet.cpu5.dropped"), 2);
    assert!(!has(&c, "softnet.cpu1.dropped"));
    assert!(collect(parse_softnet_stat, (row(2) + &row(1)).as_bytes()).is_err());
    assert!(collect(parse_softnet_stat, (row(1) + &row(1)).as_bytes()).is_err());
}

#[test]
fn interrupts_x86() {
    let c = collect(parse_interrupts, &read("prometheus-procfs/interrupts")).unwrap();
    //   0:         49          0          0          0   IO-APIC   2-edge      timer
    assert_eq!(col(&c, "irq.0.cpu0"), 49);
    assert_eq!(col(&c, "irq.0.cpu3"), 0);
    assert!(!has(&c, "irq.0.cpu4"));
    //  29:       1362          0          0        934   PCI-MSI 512000-edge      ahci[0000:00:1f.2]
    assert_eq!(col(&c, "irq.29.cpu0"), 1362);
    assert_eq!(col(&c, "irq.29.cpu3"), 934);
    // LOC:      10196       7429       8542       8229   Local timer interrupts
    assert_eq!(col(&c, "irq.LOC.cpu1"), 7429);
    assert_eq!(col(&c, "irq.NMI.cpu0"), 0);
    assert_eq!(col(&c, "irq.CAL.cpu3"), 2367);
    // ERR / MIS: one global number; the blank line before PIN is skipped.
    assert_eq!(col(&c, "irq.ERR.total"), 0);
    assert_eq!(col(&c, "irq.MIS.total"), 0);
    assert!(!has(&c, "irq.ERR.cpu0"));
    assert_eq!(col(&c, "irq.PIW.cpu3"), 0);

    let c = collect(parse_interrupts, &read("node-exporter/interrupts")).unwrap();
    //  16:     328511     322879     293782     351412  IR-IO-APIC-fasteoi   ehci_hcd:usb1, mmc0
    assert_eq!(col(&c, "irq.16.cpu2"), 293782);
    assert_eq!(col(&c, "irq.46.cpu0"), 43078464);
    assert_eq!(col(&c, "irq.LOC.cpu0"), 174326351);
    assert_eq!(col(&c, "irq.MCP.cpu3"), 2399);
    assert_eq!(col(&c, "irq.MIS.total"), 0);
}

#[test]
fn interrupts_aarch64() {
    let c = collect(parse_interrupts, &read("node-exporter/interrupts_aarch64")).unwrap();
    //  10: 3287008667 3310445093 … 3225020442     GICv3  27 Level     arch_timer
    assert_eq!(col(&c, "irq.10.cpu0"), 3287008667);
    assert_eq!(col(&c, "irq.10.cpu7"), 3225020442);
    // The description's "27" is not a ninth count.
    assert!(!has(&c, "irq.10.cpu8"));
    //  50: … ARMH0061:00   3 Edge      ACPI:Event
    assert_eq!(col(&c, "irq.50.cpu7"), 0);
    //  58:          0          0 1195697946        437 …
    assert_eq!(col(&c, "irq.58.cpu2"), 1195697946);
    assert_eq!(col(&c, "irq.58.cpu3"), 437);
    // IPI0:2768808080 2844211768 … (no space after the colon)
    assert_eq!(col(&c, "irq.IPI0.cpu0"), 2768808080);
    assert_eq!(col(&c, "irq.IPI0.cpu7"), 2154252810);
    assert_eq!(col(&c, "irq.IPI1.cpu1"), 213258177);
    assert_eq!(col(&c, "irq.Err.total"), 0);
}

#[test]
fn interrupts_header_gives_cpu_ids() {
    // Offline CPU 1: the header skips it.
    let t = b"           CPU0       CPU2\n  0:         5          7   IO-APIC   2-edge      timer\nLOC:  1 2 Local timer interrupts\n";
    let c = collect(parse_interrupts, t).unwrap();
    assert_eq!(col(&c, "irq.0.cpu2"), 7);
    assert_eq!(col(&c, "irq.LOC.cpu0"), 1);
    assert!(!has(&c, "irq.0.cpu1"));
}

#[test]
fn softirqs_both_trees() {
    let c = collect(parse_softirqs, &read("prometheus-procfs/softirqs")).unwrap();
    assert_eq!(col(&c, "softirq.HI.cpu0"), 3);
    assert_eq!(col(&c, "softirq.TIMER.cpu0"), 2776180);
    assert_eq!(col(&c, "softirq.NET_RX.cpu1"), 28694);
    assert_eq!(col(&c, "softirq.RCU.cpu1"), 532783);
    let c = collect(parse_softirqs, &read("node-exporter/softirqs")).unwrap();
    assert_eq!(col(&c, "softirq.NET_TX.cpu0"), 2301);
    assert_eq!(col(&c, "softirq.NET_RX.cpu1"), 104508);
    assert_eq!(col(&c, "softirq.BLOCK.cpu0"), 23776);
    assert_eq!(col(&c, "softirq.IRQ_POLL.cpu1"), 0);
}

#[test]
fn slabinfo_both_trees() {
    let c = collect(parse_slabinfo, &read("prometheus-procfs/slabinfo")).unwrap();
    // dentry            166069 169074    528   31    4 : tunables    0    0    0 : slabdata   5454   5454      0
    for (f, v) in [
        ("active_objs", 166069),
        ("num_objs", 169074),
        ("objsize", 528),
        ("objperslab", 31),
        ("pagesperslab", 4),
        ("active_slabs", 5454),
        ("num_slabs", 5454),
    ] {
        assert_eq!(col(&c, &format!("slab.dentry.{f}")), v, "{f}");
    }
    assert_eq!(col(&c, "slab.TCP.objsize"), 2624);
    assert_eq!(col(&c, "slab.tw_sock_TCP.num_objs"), 56);
    assert_eq!(col(&c, "slab.nvidia_p2p_page_cache.num_objs"), 0);
    let c = collect(parse_slabinfo, &read("node-exporter/slabinfo")).unwrap();
    // kmalloc-8192         132    148   8192    4    8 : tunables    0    0    0 : slabdata     37     37      0
    assert_eq!(col(&c, "slab.kmalloc-8192.active_objs"), 132);
    assert_eq!(col(&c, "slab.kmalloc-8192.num_objs"), 148);
    assert_eq!(col(&c, "slab.kmalloc-8192.pagesperslab"), 8);
    assert_eq!(col(&c, "slab.kmalloc-8192.num_slabs"), 37);
    assert_eq!(col(&c, "slab.tw_sock_TCP.active_objs"), 704);
    // Statistics columns after slabdata are ignored; other versions are not.
    let stats = b"slabinfo - version: 2.1 (statistics)\nfoo 1 2 3 4 5 : tunables 0 0 0 : slabdata 6 7 0 : globalstat 1 2 3 4 5 6 7 8 9 : cpustat 1 2 3 4\n";
    let c = collect(parse_slabinfo, stats).unwrap();
    assert_eq!(col(&c, "slab.foo.active_slabs"), 6);
    let stats = b"slabinfo - version: 2.1\nfoo 1 2 3 4 5 : tunables 0 0 0 : slabdata 6 7 0 : globalstat 1 2 3 4 5 6 7 8 9 : cpustat 1 2 3 4\n";
    let c = collect(parse_slabinfo, stats).unwrap();
    assert_eq!(col(&c, "slab.foo.num_slabs"), 7);
    assert!(collect(parse_slabinfo, b"slabinfo - version: 1.1\n").is_err());
}

#[test]
fn nf_conntrack_node_exporter() {
    let c = collect(
        parse_nf_conntrack,
        &read("node-exporter/net/stat/nf_conntrack"),
    )
    .unwrap();
    assert_unique(&c);
    // `entries` is the global gauge every row repeats: not summed.
    assert_eq!(col(&c, "conntrack.stat.entries"), 0x21);
    // Counters are summed over the four CPU rows.
    assert_eq!(col(&c, "conntrack.stat.invalid"), 3 + 2 + 1 + 0x2f);
    assert_eq!(
        col(&c, "conntrack.stat.ignore"),
        0x588a + 0x56a4 + 0x58d4 + 0x5688
    );
    assert_eq!(col(&c, "conntrack.stat.search_restart"), 2 + 1 + 4);
    assert_eq!(col(&c, "conntrack.stat.insert_failed"), 0);
    assert_eq!(col(&c, "conntrack.stat.drop"), 0);
    assert_eq!(col(&c, "conntrack.stat.early_drop"), 0);
    assert!(!c.iter().any(|(k, _)| k.contains("cpu")));
}

#[test]
fn nf_conntrack_kernel_6_18_field_names() {
    // 5.x+ kernels renamed `searched` and `delete_list`.
    let c = collect(parse_nf_conntrack, &read("lpo-6.18/net/stat/nf_conntrack")).unwrap();
    assert_unique(&c);
    for f in [
        "clashres",
        "chainlength",
        "found",
        "insert_failed",
        "drop",
        "early_drop",
    ] {
        assert!(has(&c, &format!("conntrack.stat.{f}")), "{f}");
    }
    assert!(!has(&c, "conntrack.stat.searched"));
    // 100000 entries made with `conntrack -R` on CPU 0: the gauge is not
    // summed over the two rows, the counter is.
    assert_eq!(col(&c, "conntrack.stat.entries"), 100_000);
    assert_eq!(col(&c, "conntrack.stat.insert"), 100_000);
}

#[test]
fn kernel_collector_reads_conntrack_sysctls() {
    use lpo_recorder::system::{Columns, SystemCollector};
    for (root, count, max) in [
        ("lpo-6.18", 100_000, 262_144),
        ("node-exporter", 123, 65_536),
    ] {
        let mut k = SystemCollector::open_kernel(std::path::Path::new(&format!("{ROOT}/{root}")));
        let mut cols = Columns::default();
        k.collect(&mut cols, &mut |w| panic!("{w}"));
        assert_eq!(cols.get("conntrack.count"), Some(count), "{root}");
        assert_eq!(cols.get("conntrack.max"), Some(max), "{root}");
        assert!(cols.get("conntrack.stat.entries").is_some(), "{root}");
        // Not the real /proc: no netlink walk of the host's tables.
        assert!(cols.get("conntrack.dump.entries").is_none());
        assert!(cols.get("tcp.dump.entries").is_none());
    }
}

#[test]
fn nf_conntrack_sums_wrap_and_limits() {
    let two = "entries drop\n00000005 ffffffff\n00000005 00000002\n";
    let c = collect(parse_nf_conntrack, two.as_bytes()).unwrap();
    assert_eq!(col(&c, "conntrack.stat.entries"), 5);
    assert_eq!(col(&c, "conntrack.stat.drop"), 0xffff_ffff + 2);
    let wide: String = (0..CONNTRACK_MAX_FIELDS + 1)
        .map(|i| format!("f{i} "))
        .collect();
    let row: String = (0..CONNTRACK_MAX_FIELDS + 1).map(|_| "1 ").collect();
    assert!(collect(parse_nf_conntrack, format!("{wide}\n{row}\n").as_bytes()).is_err());
}

// ---------------------------------------------------------------------------
// names
// ---------------------------------------------------------------------------

#[test]
fn odd_names_are_kept_or_skipped() {
    let head = "Inter-|   Receive |  Transmit\n face |bytes |bytes\n";
    let nums = " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n";
    // A VLAN interface keeps its '.': split the column on the last '.'.
    let t = format!("{head}eth0.100:{nums}");
    let c = collect(parse_net_dev, t.as_bytes()).unwrap();
    assert_eq!(col(&c, "net.eth0.100.rx_bytes"), 1);
    assert_eq!(col(&c, "net.eth0.100.tx_compressed"), 16);
    assert_eq!(
        c[0].0.rsplit_once('.').unwrap(),
        ("net.eth0.100", "rx_bytes")
    );
    // '|' in a name is data, not a header.
    let t = format!("{head}a|b:{nums}");
    assert_eq!(
        col(
            &collect(parse_net_dev, t.as_bytes()).unwrap(),
            "net.a|b.rx_packets"
        ),
        2
    );
    // UTF-8 is fine; 64 bytes is the limit; non-UTF-8 and longer names are
    // skipped, the rest of the file still parses.
    let long64 = "x".repeat(64);
    let long65 = "x".repeat(65);
    let t = format!("{head}é:{nums}{long64}:{nums}{long65}:{nums}lo:{nums}");
    let mut t = t.into_bytes();
    t.extend_from_slice(b"\xff\xfe:");
    t.extend_from_slice(nums.as_bytes());
    let c = collect(parse_net_dev, &t).unwrap();
    assert!(has(&c, "net.é.rx_bytes"));
    assert!(has(&c, &format!("net.{long64}.rx_bytes")));
    assert!(!c.iter().any(|(k, _)| k.contains(&long65)));
    assert!(has(&c, "net.lo.rx_bytes"));
    assert_eq!(c.len(), 3 * 16);

    let c = collect(parse_diskstats, b" 253 0 dm.0 1 2 3 4 5 6 7 8 9 10 11\n").unwrap();
    assert_eq!(col(&c, "disk.dm.0.weighted_ms"), 11);
}

// ---------------------------------------------------------------------------
// hostile input
// ---------------------------------------------------------------------------

const OVER_U64: &str = "18446744073709551616";

fn err_all(p: Parser, cases: &[&str]) {
    for c in cases {
        assert!(collect(p, c.as_bytes()).is_err(), "accepted {c:?}");
    }
}

#[test]
fn diskstats_hostile() {
    err_all(
        parse_diskstats,
        &[
            "",
            "\n\n",
            "8",
            "8 0",
            "8 0 sda",
            "8 0 sda 1 2 3",
            "8 0 sda 1 2 3 4 5 6 7 8 9 10",             // 10 counters
            "8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12",       // 12
            "8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14", // 14
            "8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
            "8 0 sda 1 2 3 4 5 6 7 8 9 10 -11",
            "8 0 sda 1 2 3 4 5 6 7 8 9 10 1.5",
            "x 0 sda 1 2 3 4 5 6 7 8 9 10 11",
            "8 -1 sda 1 2 3 4 5 6 7 8 9 10 11",
            &format!("8 0 sda 1 2 3 4 5 6 7 8 9 10 {OVER_U64}"),
            &format!("{OVER_U64} 0 sda 1 2 3 4 5 6 7 8 9 10 11"),
        ],
    );
    let c = collect(
        parse_diskstats,
        b"8 0 sda 1 2 3 4 5 6 7 8 9 10 18446744073709551615",
    )
    .unwrap();
    assert_eq!(col(&c, "disk.sda.weighted_ms"), u64::MAX);
    // Future kernels: extra counters after the 17th are ignored.
    let c = collect(
        parse_diskstats,
        b"8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",
    )
    .unwrap();
    assert_eq!(col(&c, "disk.sda.flush_ms"), 17);
    assert_eq!(c.len(), 19);
}

#[test]
fn net_dev_hostile() {
    let head = "Inter-|   Receive |  Transmit\n face |bytes |bytes\n";
    let n15 = " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15";
    err_all(
        parse_net_dev,
        &[
            "",
            head,
            "lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
            &format!("{head}lo{n15} 16\n"),
            &format!("{head}lo:{n15}\n"),
            &format!("{head}lo:{n15} 16 17\n"),
            &format!("{head}lo:{n15} x\n"),
            &format!("{head}lo:{n15} -16\n"),
            &format!("{head}lo:{n15} {OVER_U64}\n"),
        ],
    );
}

#[test]
fn snmp_netstat_hostile() {
    for p in [parse_snmp as Parser, parse_netstat] {
        err_all(
            p,
            &[
                "",
                "\n",
                "Tcp: ActiveOpens PassiveOpens\n",
                "Tcp: ActiveOpens PassiveOpens\nTcp: 1\n",
                "Tcp: ActiveOpens\nTcp: 1 2\n",
                "Tcp: ActiveOpens\nUdp: 1\n",
                "Tcp: ActiveOpens\nTcp: x\n",
                "Tcp: ActiveOpens\nTcp: 1.5\n",
                "Tcp: ActiveOpens\nTcp: --1\n",
                "Tcp ActiveOpens\nTcp 1\n",
                "Tcp: Active.Opens\nTcp: 1\n",
                "T cp: ActiveOpens\nT cp: 1\n",
                &format!("Tcp: ActiveOpens\nTcp: {OVER_U64}\n"),
                &format!("Tcp: MaxConn\nTcp: -{OVER_U64}\n"),
            ],
        );
    }
    // Negative values are skipped; the rest of the pair is kept.
    let c = collect(parse_snmp, b"Tcp: A MaxConn B\nTcp: 1 -1 2\n").unwrap();
    assert_eq!(
        c,
        [("snmp.Tcp.A".to_owned(), 1), ("snmp.Tcp.B".to_owned(), 2)]
    );
    let c = collect(parse_snmp, b"Tcp: A\nTcp: -9223372036854775808\n").unwrap();
    assert!(c.is_empty());
    // IcmpMsg may come in several pairs.
    let c = collect(
        parse_snmp,
        b"IcmpMsg: InType0\nIcmpMsg: 5\nIcmpMsg: OutType0\nIcmpMsg: 6\n",
    )
    .unwrap();
    assert_eq!(col(&c, "snmp.IcmpMsg.OutType0"), 6);
}

#[test]
fn small_files_hostile() {
    err_all(
        parse_snmp6,
        &[
            "",
            "Ip6InReceives\n",
            "Ip6InReceives 1 2\n",
            "Ip6InReceives -1\n",
            "Ip6.InReceives 1\n",
            &format!("Ip6InReceives {OVER_U64}\n"),
        ],
    );
    for p in [parse_sockstat as Parser, parse_sockstat6] {
        err_all(
            p,
            &[
                "",
                "sockets used 1\n",
                "sockets:\n",
                "sockets: used\n",
                "sockets: used 1 alloc\n",
                "sockets: used x\n",
                &format!("TCP: inuse {OVER_U64}\n"),
            ],
        );
    }
    let c = collect(parse_sockstat, b"TCP: inuse -1 orphan 2\n").unwrap();
    assert_eq!(c, [("sockstat.TCP.orphan".to_owned(), 2)]);
    err_all(
        parse_softnet_stat,
        &[
            "",
            "0 0 0 0 0 0 0 0\n",
            "g 0 0 0 0 0 0 0 0\n",
            "0x1 0 0 0 0 0 0 0 0\n",
            "-1 0 0 0 0 0 0 0 0\n",
            "10000000000000000 0 0 0 0 0 0 0 0\n",
            "0 0 0 0 0 0 0 0 0 0 0 0 100000000\n", // CPU id over u32
        ],
    );
    let c = collect(parse_softnet_stat, b"ffffffffffffffff 0 0 0 0 0 0 0 0\n").unwrap();
    assert_eq!(col(&c, "softnet.cpu0.processed"), u64::MAX);
    for p in [parse_interrupts as Parser, parse_softirqs] {
        err_all(
            p,
            &[
                "",
                "  \n",
                "CPU0 CPU1\n",
                "CPU0 CPUx\n  0: 1 2\n",
                "CPU0 GPU1\n  0: 1 2\n",
                "CPU0\n  0 1\n",
                "CPU0\n  0: x\n",
                "CPU0\n  0:\n",
                &format!("CPU0\n  0: {OVER_U64}\n"),
                &format!("CPU{OVER_U64}\n  0: 1\n"),
            ],
        );
    }
    err_all(
        parse_slabinfo,
        &[
            "",
            "slabinfo - version: 2.1\nfoo 1 2 3 4 5 : tunables 0 0 0 : slabdata 6 7\n",
            "slabinfo - version: 2.1\nfoo 1 2 3 4 : tunables 0 0 0 : slabdata 6 7 0\n",
            "slabinfo - version: 2.1\nfoo 1 2 3 4 5 tunables 0 0 0 : slabdata 6 7 0\n",
            "slabinfo - version: 2.1\nfoo 1 2 3 4 5 : tunables 0 0 0 : slabdata x 7 0\n",
            &format!("slabinfo - version: 2.1\nfoo 1 2 3 4 {OVER_U64} : tunables 0 0 0 : slabdata 6 7 0\n"),
            "foo 1 2 3 4 5 : tunables 0 0 0 : slabdata 6 7 0\n",
        ],
    );
    err_all(
        parse_nf_conntrack,
        &[
            "",
            "entries searched\n",
            "entries searched\n1\n",
            "entries searched\n1 2 3\n",
            "entries searched\n1 g\n",
            "entries searc.hed\n1 2\n",
            "entries searched\n1 10000000000000000\n",
        ],
    );
}

/// xorshift64*: deterministic pseudo-random bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn truncations_random_and_mutated_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for &(rel, p, ..) in FIXTURES {
        let text = read(rel);
        let p = parser(p);
        // Every prefix.
        for i in 0..=text.len() {
            let _ = collect(p, &text[..i]);
        }
        // Mutations: overwrite, insert and delete bytes.
        if text.is_empty() {
            continue;
        }
        for _ in 0..300 {
            let mut t = text.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % t.len().max(1);
                match rng.next() % 3 {
                    0 if !t.is_empty() => t[i] = rng.next() as u8,
                    1 => {
                        let set = b"0123456789abcdef:.- \n\t|";
                        t.insert(
                            i.min(t.len()),
                            set[(rng.next() % set.len() as u64) as usize],
                        );
                    }
                    _ if !t.is_empty() => {
                        t.remove(i);
                    }
                    _ => {}
                }
            }
            let _ = collect(p, &t);
        }
    }
    // Random bytes, biased towards the characters these files contain.
    let alphabet = b"0123456789abcdefABCDEF :|\n\t-.xCPUTcpslabinfo version";
    for &(_, p) in PARSERS {
        for _ in 0..2000 {
            let len = (rng.next() % 300) as usize;
            let t: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.next().is_multiple_of(4) {
                        rng.next() as u8
                    } else {
                        alphabet[(rng.next() % alphabet.len() as u64) as usize]
                    }
                })
                .collect();
            let _ = collect(p, &t);
        }
    }
}

#[test]
fn parse_u64_is_the_shared_one() {
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    assert_eq!(parse_u64(OVER_U64.as_bytes()), None);
}
