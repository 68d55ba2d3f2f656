//! The ctnetlink and sock_diag parsers on real dump replies captured from a
//! 6.18 kernel (`tests/data/netlink/`, see its README.md), checked against
//! what `conntrack -L` and `ss -tan`/`ss -ltn` printed at the same moment;
//! hostile input (every truncation, bit flips, bad lengths) gives an error
//! or a smaller aggregate, never a panic; and live dumps of this process's
//! own sockets.

use lpo_recorder::netlink::conntrack::{self, CtAggregate};
use lpo_recorder::netlink::sockdiag::{self, TcpAggregate};
use lpo_recorder::netlink::{aggregate, Dumper, NlError};
use std::collections::BTreeMap;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/netlink");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}
fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

fn columns(emit: impl FnOnce(&mut String, &mut dyn FnMut(&str, u64))) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut buf = String::new();
    emit(&mut buf, &mut |k, v| {
        assert!(out.insert(k.to_owned(), v).is_none(), "{k} emitted twice");
    });
    out
}

/// What `conntrack -L | awk` gives: entries by protocol, TCP state,
/// source (`src=` of the original direction) and destination port.
fn awk_conntrack(l: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in l.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        *m.entry(format!("conntrack.proto.{}", f[0])).or_default() += 1;
        if f[0] == "tcp" {
            *m.entry(format!("conntrack.tcp.{}", f[3])).or_default() += 1;
        }
        if let Some(s) = f.iter().find_map(|w| w.strip_prefix("src=")) {
            *m.entry(format!("conntrack.src.{s}")).or_default() += 1;
        }
        if let Some(p) = f.iter().find_map(|w| w.strip_prefix("dport=")) {
            *m.entry(format!("conntrack.dport.{p}")).or_default() += 1;
        }
        if line.contains("[UNREPLIED]") {
            *m.entry("conntrack.status.unreplied".into()).or_default() += 1;
        }
        if line.contains("[ASSURED]") {
            *m.entry("conntrack.status.assured".into()).or_default() += 1;
        }
    }
    m
}

#[test]
fn ctnetlink_capture_matches_conntrack_l() {
    let raw = read("ctnetlink_dump.bin");
    let mut agg = CtAggregate::default();
    aggregate(&mut agg, &raw).unwrap();
    let cols = columns(|b, e| agg.emit(b, e));
    let want = awk_conntrack(&text("ctnetlink_dump.conntrack-L.txt"));
    let lines = text("ctnetlink_dump.conntrack-L.txt").lines().count() as u64;
    assert_eq!(cols["conntrack.dump.entries"], lines);
    assert_eq!(cols["conntrack.dump.truncated"], 0);
    assert_eq!(cols["conntrack.l3.ipv4"] + cols["conntrack.l3.ipv6"], lines);
    for (k, v) in &want {
        // Top lists hold at most 10 entries; this capture has fewer.
        assert_eq!(cols.get(k), Some(v), "{k}");
    }
    for k in cols.keys() {
        if !k.starts_with("conntrack.dump.") && !k.starts_with("conntrack.l3.") {
            assert!(want.contains_key(k), "{k} not in conntrack -L");
        }
    }
    // The numbers the capture was made for (see README.md).
    assert_eq!(agg.tcp("ESTABLISHED"), 24);
    assert_eq!(agg.tcp("TIME_WAIT"), 25);
    assert_eq!(agg.proto(6), 49);
    assert_eq!(
        agg.top_sources()[0],
        (40, "10.9.0.2".parse().unwrap()),
        "busiest source first"
    );
    // Ties broken by the smaller port: 53, 123, 9001 (one entry each).
    let ports: Vec<u16> = agg.top_ports().iter().map(|p| p.1).collect();
    assert_eq!(ports, [8080, 9000, 53, 123, 9001]);
}

#[test]
fn sock_diag_capture_matches_ss() {
    let raw = read("sock_diag_tcp_dump.bin");
    let mut agg = TcpAggregate::default();
    aggregate(&mut agg, &raw).unwrap();
    let cols = columns(|b, e| agg.emit(b, e));
    // `ss -tan | awk '{print $1}' | sort | uniq -c`
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for l in text("sock_diag_tcp_dump.ss-tan.txt").lines().skip(1) {
        let st = l.split_whitespace().next().unwrap();
        let st = if st == "UNCONN" { "CLOSE" } else { st };
        *want.entry(format!("tcp.state.{st}")).or_default() += 1;
    }
    let got: BTreeMap<String, u64> = cols
        .iter()
        .filter(|(k, _)| k.starts_with("tcp.state."))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        cols["tcp.dump.entries"],
        text("sock_diag_tcp_dump.ss-tan.txt").lines().count() as u64 - 1
    );
    // `ss -ltn`: State Recv-Q Send-Q Local Address:Port …
    let mut n = 0;
    for l in text("sock_diag_tcp_dump.ss-ltn.txt").lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(
            cols[&format!("tcp.listen.{}.recvq", f[3])].to_string(),
            f[1],
            "{l}"
        );
        assert_eq!(
            cols[&format!("tcp.listen.{}.sendq", f[3])].to_string(),
            f[2],
            "{l}"
        );
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(agg.listeners().len(), 3);
    assert_eq!(agg.state("ESTAB"), 48);
}

/// Every prefix of a capture either fails cleanly or (at a message
/// boundary after a NLMSG_DONE) parses; flipped bytes never panic.
#[test]
fn hostile_replies_never_panic() {
    for name in ["ctnetlink_dump.bin", "sock_diag_tcp_dump.bin"] {
        let raw = read(name);
        for cut in 0..raw.len() {
            let mut c = CtAggregate::default();
            let mut t = TcpAggregate::default();
            let r1 = aggregate(&mut c, &raw[..cut]);
            let r2 = aggregate(&mut t, &raw[..cut]);
            // A cut never yields the full aggregate silently.
            if cut < raw.len() - 20 {
                assert!(r1.is_err() || r2.is_err() || c.entries + t.entries > 0 || cut == 0);
            }
        }
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            let mut m = raw.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed % m.len() as u64) as usize;
                m[i] = (seed >> 32) as u8;
            }
            let _ = aggregate(&mut CtAggregate::default(), &m);
            let _ = aggregate(&mut TcpAggregate::default(), &m);
        }
    }
}

#[test]
fn malformed_messages_are_errors() {
    // A ctnetlink entry: nlmsghdr + nfgenmsg + CTA_TUPLE_ORIG whose nested
    // attribute claims more bytes than it has.
    let mut m = Vec::new();
    let body: &[u8] = &[
        2, 0, 0, 0, // nfgenmsg: AF_INET
        12, 0, 0x01, 0x80, // CTA_TUPLE_ORIG (nested), len 12
        20, 0, 0x01, 0x80, // CTA_TUPLE_IP, len 20 > 8 left
        0, 0, 0, 0,
    ];
    let len = 16 + body.len() as u32;
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&0x100u16.to_ne_bytes());
    m.extend_from_slice(&[0; 10]);
    m.extend_from_slice(body);
    assert!(matches!(
        conntrack::parse_entry(&m[16..]),
        Err(NlError::Malformed(_))
    ));
    assert!(aggregate(&mut CtAggregate::default(), &m).is_err());
    // Short fixed-size attributes.
    let short_src: &[u8] = &[
        2, 0, 0, 0, 12, 0, 1, 0x80, 8, 0, 1, 0x80, 6, 0, 1, 0, 10, 0, 0, 0,
    ];
    assert!(conntrack::parse_entry(short_src).is_err());
    assert!(conntrack::parse_entry(&[2, 0]).is_err());
    // sock_diag: a message shorter than inet_diag_msg, an unknown family.
    assert!(sockdiag::parse_sock(&[2u8; 71]).is_err());
    let mut s = [0u8; 72];
    s[0] = 99;
    assert!(sockdiag::parse_sock(&s).is_err());
    // A header whose length is below the header size, or beyond the data.
    let mut bad = vec![0u8; 20];
    bad[0] = 8;
    assert!(aggregate(&mut TcpAggregate::default(), &bad).is_err());
    bad[0] = 200;
    assert!(aggregate(&mut TcpAggregate::default(), &bad).is_err());
    // A kernel error reply.
    let mut e = vec![0u8; 36];
    e[0..4].copy_from_slice(&36u32.to_ne_bytes());
    e[4..6].copy_from_slice(&2u16.to_ne_bytes()); // NLMSG_ERROR
    e[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
    let r = aggregate(&mut CtAggregate::default(), &e);
    assert!(r.as_ref().is_err_and(|e| e.is_permission()), "{r:?}");
}

/// A real dump sees this process's own listener with its backlog and
/// accept queue, and the cap truncates and recovers.
#[test]
fn live_sock_diag_sees_own_listener() {
    use std::os::fd::AsRawFd;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Re-listen with a backlog of 5 (std uses 128).
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 5) }, 0);
    let port = l.local_addr().unwrap().port();
    let _c1 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _c2 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut d = Dumper::new(TcpAggregate::default());
    d.dump().unwrap();
    let me = d
        .kind
        .listeners()
        .iter()
        .find(|x| x.port == port)
        .copied()
        .expect("own listener");
    assert_eq!(me.wqueue, 5, "Send-Q is the backlog");
    assert_eq!(me.rqueue, 2, "Recv-Q is the accept queue");
    assert!(d.kind.state("ESTAB") >= 4);
    assert!(!d.kind.truncated);
    d.cap = 1;
    d.dump().unwrap();
    assert!(d.kind.truncated);
    assert_eq!(d.kind.entries, 1);
    d.cap = u32::MAX;
    d.dump().unwrap();
    assert!(!d.kind.truncated && d.kind.entries >= 5);
}
