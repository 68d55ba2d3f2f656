//! The conntrack table through ctnetlink: an `IPCTNL_MSG_CT_GET` dump
//! (`NLM_F_DUMP`, family `AF_UNSPEC`: IPv4 and IPv6) aggregated into
//! entries by layer-3 family, layer-4 protocol, TCP state and status, the
//! top source addresses and the top destination ports of the original
//! direction, what `conntrack -L | awk` gave.
//!
//! Message layout (linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h):
//! `nlmsghdr` (type `NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW`),
//! `nfgenmsg` (u8 family, u8 version, be16 res_id), then attributes:
//! `CTA_TUPLE_ORIG` { `CTA_TUPLE_IP` { `CTA_IP_V4_SRC` | `CTA_IP_V6_SRC`, … },
//! `CTA_TUPLE_PROTO` { `CTA_PROTO_NUM` u8, `CTA_PROTO_DST_PORT` be16, … } },
//! `CTA_STATUS` be32, `CTA_PROTOINFO` { `CTA_PROTOINFO_TCP` {
//! `CTA_PROTOINFO_TCP_STATE` u8 } }.
//!
//! # Columns (contract, spec/STREAMS.md)
//!
//! | column | meaning |
//! |---|---|
//! | `conntrack.dump.entries` | entries walked (all of them unless truncated) |
//! | `conntrack.dump.truncated` | 1 when the walk stopped at the cap |
//! | `conntrack.l3.ipv4`, `conntrack.l3.ipv6` | entries by family |
//! | `conntrack.proto.<name>` | entries by L4 protocol (`tcp`, `udp`, `icmp`, `icmpv6`, `sctp`, `gre`, `dccp`, `udplite`, `igmp`, else the number) |
//! | `conntrack.tcp.<STATE>` | TCP entries by conntrack state (`SYN_SENT`, `ESTABLISHED`, `TIME_WAIT`, … as `conntrack -L` prints them) |
//! | `conntrack.status.assured`, `conntrack.status.unreplied` | entries with IPS_ASSURED, without IPS_SEEN_REPLY (`[UNREPLIED]`) |
//! | `conntrack.src.<addr>` | the [`TOP_N`] original source addresses with most entries (IPv4 dotted, IPv6 as Rust/RFC 5952 prints it) |
//! | `conntrack.dport.<port>` | the [`TOP_N`] original destination ports with most entries (any protocol with ports) |
//!
//! Only non-zero counts are emitted. Ties in a top list are broken by the
//! smaller address or port, so the choice is stable.

use super::{attrs, rd, DumpKind, NlError};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const NFGENMSG_LEN: usize = 4;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;
const IPS_SEEN_REPLY: u32 = 1 << 1;
const IPS_ASSURED: u32 = 1 << 2;

/// Entries of the top-sources and top-ports lists.
pub const TOP_N: usize = 10;

/// `enum tcp_conntrack` names as `conntrack -L` prints them.
pub const TCP_STATES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];

/// L4 protocol name as conntrack prints it, if it has one.
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        47 => "gre",
        58 => "icmpv6",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

/// One dump's aggregate. Buffers are kept between dumps, so a steady
/// table is walked without allocating.
#[derive(Debug, Default)]
pub struct CtAggregate {
    pub entries: u32,
    pub truncated: bool,
    pub ipv4: u32,
    pub ipv6: u32,
    pub assured: u32,
    pub unreplied: u32,
    proto: Vec<u32>,     // 256
    tcp_state: Vec<u32>, // TCP_STATES.len() + 1 (unknown)
    src: HashMap<IpAddr, u32>,
    dport: HashMap<u16, u32>,
    top_src: Vec<(u32, IpAddr)>,
    top_port: Vec<(u32, u16)>,
}

/// What one conntrack entry contributes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub family: u8,
    pub proto: Option<u8>,
    pub src: Option<IpAddr>,
    pub dport: Option<u16>,
    pub status: Option<u32>,
    pub tcp_state: Option<u8>,
}

fn tuple_orig(b: &[u8], e: &mut Entry) -> Result<(), NlError> {
    for a in attrs(b) {
        let (t, p) = a?;
        match t {
            CTA_TUPLE_IP => {
                for a in attrs(p) {
                    let (t, p) = a?;
                    match t {
                        CTA_IP_V4_SRC => {
                            let v: [u8; 4] =
                                rd(p, 0).ok_or(NlError::Malformed("short CTA_IP_V4_SRC"))?;
                            e.src = Some(IpAddr::V4(Ipv4Addr::from(v)));
                        }
                        CTA_IP_V6_SRC => {
                            let v: [u8; 16] =
                                rd(p, 0).ok_or(NlError::Malformed("short CTA_IP_V6_SRC"))?;
                            e.src = Some(IpAddr::V6(Ipv6Addr::from(v)));
                        }
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for a in attrs(p) {
                    let (t, p) = a?;
                    match t {
                        CTA_PROTO_NUM => {
                            e.proto =
                                Some(*p.first().ok_or(NlError::Malformed("empty CTA_PROTO_NUM"))?)
                        }
                        CTA_PROTO_DST_PORT => {
                            let v: [u8; 2] =
                                rd(p, 0).ok_or(NlError::Malformed("short CTA_PROTO_DST_PORT"))?;
                            e.dport = Some(u16::from_be_bytes(v));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decodes one ctnetlink entry message payload (after `nlmsghdr`).
pub fn parse_entry(payload: &[u8]) -> Result<Entry, NlError> {
    let family = *payload
        .first()
        .filter(|_| payload.len() >= NFGENMSG_LEN)
        .ok_or(NlError::Malformed("short nfgenmsg"))?;
    let mut e = Entry {
        family,
        ..Default::default()
    };
    for a in attrs(&payload[NFGENMSG_LEN..]) {
        let (t, p) = a?;
        match t {
            CTA_TUPLE_ORIG => tuple_orig(p, &mut e)?,
            CTA_STATUS => {
                let v: [u8; 4] = rd(p, 0).ok_or(NlError::Malformed("short CTA_STATUS"))?;
                e.status = Some(u32::from_be_bytes(v));
            }
            CTA_PROTOINFO => {
                for a in attrs(p) {
                    let (t, p) = a?;
                    if t != CTA_PROTOINFO_TCP {
                        continue;
                    }
                    for a in attrs(p) {
                        let (t, p) = a?;
                        if t == CTA_PROTOINFO_TCP_STATE {
                            e.tcp_state = Some(
                                *p.first()
                                    .ok_or(NlError::Malformed("empty CTA_PROTOINFO_TCP_STATE"))?,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(e)
}

/// The `n` largest `(count, key)` by count, ties by smaller key, in `v`.
fn top<K: Ord + Copy>(v: &mut Vec<(u32, K)>, n: usize) {
    let cmp = |a: &(u32, K), b: &(u32, K)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
    if v.len() > n {
        v.select_nth_unstable_by(n, cmp);
        v.truncate(n);
    }
    v.sort_unstable_by(cmp);
}

impl CtAggregate {
    /// Accounts one decoded entry.
    pub fn add(&mut self, e: &Entry) {
        self.entries += 1;
        match e.family as i32 {
            libc::AF_INET => self.ipv4 += 1,
            libc::AF_INET6 => self.ipv6 += 1,
            _ => {}
        }
        if let Some(p) = e.proto {
            if let Some(c) = self.proto.get_mut(p as usize) {
                *c += 1;
            }
            if p == libc::IPPROTO_TCP as u8 {
                let i = e
                    .tcp_state
                    .map_or(TCP_STATES.len(), |s| (s as usize).min(TCP_STATES.len()));
                if let Some(c) = self.tcp_state.get_mut(i) {
                    *c += 1;
                }
            }
        }
        if let Some(s) = e.status {
            self.assured += u32::from(s & IPS_ASSURED != 0);
            self.unreplied += u32::from(s & IPS_SEEN_REPLY == 0);
        }
        if let Some(a) = e.src {
            *self.src.entry(a).or_insert(0) += 1;
        }
        if let Some(p) = e.dport {
            *self.dport.entry(p).or_insert(0) += 1;
        }
    }

    /// Entries of TCP state `name` (one of [`TCP_STATES`]).
    pub fn tcp(&self, name: &str) -> u32 {
        TCP_STATES
            .iter()
            .position(|s| *s == name)
            .and_then(|i| self.tcp_state.get(i).copied())
            .unwrap_or(0)
    }

    /// Entries of L4 protocol number `p`.
    pub fn proto(&self, p: u8) -> u32 {
        self.proto.get(p as usize).copied().unwrap_or(0)
    }

    /// The top sources with their counts (after [`CtAggregate::emit`] or
    /// [`CtAggregate::finish`]).
    pub fn top_sources(&self) -> &[(u32, IpAddr)] {
        &self.top_src
    }
    pub fn top_ports(&self) -> &[(u32, u16)] {
        &self.top_port
    }

    /// Computes the top lists.
    pub fn finish(&mut self) {
        self.top_src.clear();
        self.top_src.extend(self.src.iter().map(|(a, c)| (*c, *a)));
        top(&mut self.top_src, TOP_N);
        self.top_port.clear();
        self.top_port
            .extend(self.dport.iter().map(|(p, c)| (*c, *p)));
        top(&mut self.top_port, TOP_N);
    }

    /// Emits the columns listed in the module documentation.
    pub fn emit(&mut self, name_buf: &mut String, emit: &mut dyn FnMut(&str, u64)) {
        self.finish();
        emit("conntrack.dump.entries", self.entries as u64);
        emit("conntrack.dump.truncated", self.truncated as u64);
        for (n, v) in [
            ("conntrack.l3.ipv4", self.ipv4),
            ("conntrack.l3.ipv6", self.ipv6),
            ("conntrack.status.assured", self.assured),
            ("conntrack.status.unreplied", self.unreplied),
        ] {
            if v > 0 {
                emit(n, v as u64);
            }
        }
        for (p, &c) in self.proto.iter().enumerate() {
            if c == 0 {
                continue;
            }
            name_buf.clear();
            name_buf.push_str("conntrack.proto.");
            match proto_name(p as u8) {
                Some(n) => name_buf.push_str(n),
                None => {
                    let _ = write!(name_buf, "{p}");
                }
            }
            emit(name_buf, c as u64);
        }
        for (i, &c) in self.tcp_state.iter().enumerate() {
            if c == 0 {
                continue;
            }
            name_buf.clear();
            name_buf.push_str("conntrack.tcp.");
            name_buf.push_str(TCP_STATES.get(i).copied().unwrap_or("UNKNOWN"));
            emit(name_buf, c as u64);
        }
        for &(c, a) in &self.top_src {
            name_buf.clear();
            let _ = write!(name_buf, "conntrack.src.{a}");
            emit(name_buf, c as u64);
        }
        for &(c, p) in &self.top_port {
            name_buf.clear();
            let _ = write!(name_buf, "conntrack.dport.{p}");
            emit(name_buf, c as u64);
        }
    }
}

impl DumpKind for CtAggregate {
    const PROTOCOL: libc::c_int = libc::NETLINK_NETFILTER;
    const WHAT: &'static str = "ctnetlink dump";

    fn request(&self, part: usize, seq: u32, out: &mut Vec<u8>) -> bool {
        if part > 0 {
            return false;
        }
        // nfgenmsg: AF_UNSPEC (every family), NFNETLINK_V0, res_id 0.
        super::request(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET,
            seq,
            &[libc::AF_UNSPEC as u8, 0, 0, 0],
            out,
        );
        true
    }

    fn reset(&mut self) {
        self.entries = 0;
        self.truncated = false;
        self.ipv4 = 0;
        self.ipv6 = 0;
        self.assured = 0;
        self.unreplied = 0;
        self.proto.clear();
        self.proto.resize(256, 0);
        self.tcp_state.clear();
        self.tcp_state.resize(TCP_STATES.len() + 1, 0);
        self.src.clear();
        self.dport.clear();
    }

    fn on_message(&mut self, typ: u16, payload: &[u8]) -> Result<(), NlError> {
        if typ >> 8 != NFNL_SUBSYS_CTNETLINK {
            return Ok(());
        }
        let e = parse_entry(payload)?;
        self.add(&e);
        Ok(())
    }

    fn entries(&self) -> u32 {
        self.entries
    }

    fn set_truncated(&mut self) {
        self.truncated = true;
    }
}
