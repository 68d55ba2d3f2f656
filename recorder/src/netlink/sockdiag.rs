//! TCP sockets through sock_diag (NETLINK_SOCK_DIAG, `inet_diag_req_v2`,
//! the interface `ss` uses): one dump for AF_INET and one for AF_INET6,
//! `IPPROTO_TCP`, every state `ss -a` asks for (`(1 << 13) - 1`), no
//! extensions (the 72-byte `inet_diag_msg` is all we read), aggregated into
//! a state histogram and the listening sockets with their queues.
//!
//! # Columns (contract, spec/STREAMS.md)
//!
//! | column | meaning |
//! |---|---|
//! | `tcp.dump.entries`, `tcp.dump.truncated` | sockets walked; 1 when the walk stopped at the cap |
//! | `tcp.state.<STATE>` | sockets by state, names as `ss` prints them except `CLOSE` (ss: `UNCONN`): `ESTAB SYN-SENT SYN-RECV FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT CLOSE CLOSE-WAIT LAST-ACK LISTEN CLOSING`; request sockets (`NEW_SYN_RECV`) count as `SYN-RECV`. Only non-zero states. |
//! | `tcp.listen.<local>.recvq` | a listening socket's current accept queue (`idiag_rqueue`, ss's Recv-Q) |
//! | `tcp.listen.<local>.sendq` | its backlog limit (`idiag_wqueue`, ss's Send-Q) |
//! | `tcp.listen.omitted` | listening sockets beyond [`MAX_LISTENERS`] not listed |
//!
//! `<local>` is the address as `ss -ltn` prints it: `0.0.0.0:22`,
//! `127.0.0.53%lo:53`, `[::1]:631`, `*:80` (IPv6 wildcard without
//! IPV6_V6ONLY). Sockets sharing one address (SO_REUSEPORT) are summed into
//! one entry. When there are more than [`MAX_LISTENERS`], the ones with the
//! fullest accept queues are kept.

use super::{attrs, rd, rd_u32, DumpKind, NlError};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// linux/sock_diag.h, inet_diag.h
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const INET_DIAG_MSG_LEN: usize = 72;
const INET_DIAG_SKV6ONLY: u16 = 11;
/// `ss -a`: every state of iproute2's `SS_ALL` (bits 0..=12).
const ALL_STATES: u32 = (1 << 13) - 1;

/// Listening sockets listed at most per sample.
pub const MAX_LISTENERS: usize = 64;

/// TCP states by kernel number (`TCP_ESTABLISHED` = 1 …), as column names.
pub const STATES: [&str; 12] = [
    "UNKNOWN",
    "ESTAB",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "CLOSE",
    "CLOSE-WAIT",
    "LAST-ACK",
    "LISTEN",
    "CLOSING",
];
const TCP_LISTEN: u8 = 10;
const TCP_NEW_SYN_RECV: u8 = 12;

/// One socket as the dump describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sock {
    pub family: u8,
    pub state: u8,
    pub local: IpAddr,
    pub port: u16,
    pub ifindex: u32,
    pub rqueue: u32,
    pub wqueue: u32,
    /// IPV6_V6ONLY (only meaningful for AF_INET6).
    pub v6only: bool,
}

/// Decodes one `SOCK_DIAG_BY_FAMILY` reply payload (an `inet_diag_msg`
/// and its attributes).
pub fn parse_sock(p: &[u8]) -> Result<Sock, NlError> {
    let short = || NlError::Malformed("short inet_diag_msg");
    if p.len() < INET_DIAG_MSG_LEN {
        return Err(short());
    }
    let family = p[0];
    let state = p[1];
    let port = u16::from_be_bytes(rd(p, 4).ok_or_else(short)?);
    let src: [u8; 16] = rd(p, 8).ok_or_else(short)?;
    let local = match family as i32 {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(src[0], src[1], src[2], src[3])),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(src)),
        _ => return Err(NlError::Malformed("inet_diag_msg of an unknown family")),
    };
    let ifindex = rd_u32(p, 40).ok_or_else(short)?;
    let rqueue = rd_u32(p, 56).ok_or_else(short)?;
    let wqueue = rd_u32(p, 60).ok_or_else(short)?;
    let mut v6only = false;
    for a in attrs(&p[INET_DIAG_MSG_LEN..]) {
        let (t, v) = a?;
        if t == INET_DIAG_SKV6ONLY {
            v6only = v.first().is_some_and(|b| *b != 0);
        }
    }
    Ok(Sock {
        family,
        state,
        local,
        port,
        ifindex,
        rqueue,
        wqueue,
        v6only,
    })
}

/// A listening socket (or several sharing one local address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    pub local: IpAddr,
    pub port: u16,
    pub ifindex: u32,
    pub v6only: bool,
    pub rqueue: u64,
    pub wqueue: u64,
}

/// Writes a local address as `ss -ltn` does (without a trailing field).
pub fn write_local(out: &mut String, l: &Listener) {
    match l.local {
        IpAddr::V4(a) => {
            let _ = write!(out, "{a}");
        }
        IpAddr::V6(a) if a.is_unspecified() && !l.v6only => out.push('*'),
        IpAddr::V6(a) => {
            let _ = write!(out, "[{a}]");
        }
    }
    if l.ifindex != 0 {
        out.push('%');
        let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: buffer of IF_NAMESIZE bytes, as if_indextoname requires.
        let r = unsafe { libc::if_indextoname(l.ifindex, name.as_mut_ptr()) };
        if r.is_null() {
            let _ = write!(out, "{}", l.ifindex);
        } else {
            for &c in name.iter().take_while(|c| **c != 0) {
                out.push(c as u8 as char);
            }
        }
    }
    let _ = write!(out, ":{}", l.port);
}

/// One walk's aggregate; buffers kept between walks.
#[derive(Debug, Default)]
pub struct TcpAggregate {
    pub entries: u32,
    pub truncated: bool,
    /// Sockets by kernel state number (index into [`STATES`]).
    pub states: [u32; STATES.len()],
    listeners: Vec<Listener>,
}

impl TcpAggregate {
    /// Accounts one socket.
    pub fn add(&mut self, s: &Sock) {
        self.entries += 1;
        let st = if s.state == TCP_NEW_SYN_RECV {
            3
        } else {
            s.state as usize
        };
        if let Some(c) = self.states.get_mut(st) {
            *c += 1;
        } else {
            self.states[0] += 1;
        }
        if s.state == TCP_LISTEN {
            let v6only = s.v6only && s.family as i32 == libc::AF_INET6;
            match self.listeners.iter_mut().find(|l| {
                l.local == s.local
                    && l.port == s.port
                    && l.ifindex == s.ifindex
                    && l.v6only == v6only
            }) {
                Some(l) => {
                    l.rqueue += s.rqueue as u64;
                    l.wqueue += s.wqueue as u64;
                }
                None => self.listeners.push(Listener {
                    local: s.local,
                    port: s.port,
                    ifindex: s.ifindex,
                    v6only,
                    rqueue: s.rqueue as u64,
                    wqueue: s.wqueue as u64,
                }),
            }
        }
    }

    /// Sockets in state `name` (one of [`STATES`]).
    pub fn state(&self, name: &str) -> u32 {
        STATES
            .iter()
            .position(|s| *s == name)
            .map_or(0, |i| self.states[i])
    }

    /// Listening sockets seen by the last walk.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Emits the columns listed in the module documentation.
    pub fn emit(&mut self, name_buf: &mut String, emit: &mut dyn FnMut(&str, u64)) {
        emit("tcp.dump.entries", self.entries as u64);
        emit("tcp.dump.truncated", self.truncated as u64);
        for (i, &c) in self.states.iter().enumerate() {
            if c > 0 {
                name_buf.clear();
                name_buf.push_str("tcp.state.");
                name_buf.push_str(STATES[i]);
                emit(name_buf, c as u64);
            }
        }
        if self.listeners.len() > MAX_LISTENERS {
            self.listeners
                .sort_unstable_by(|a, b| b.rqueue.cmp(&a.rqueue).then(a.port.cmp(&b.port)));
            emit(
                "tcp.listen.omitted",
                (self.listeners.len() - MAX_LISTENERS) as u64,
            );
        }
        for l in self.listeners.iter().take(MAX_LISTENERS) {
            name_buf.clear();
            name_buf.push_str("tcp.listen.");
            write_local(name_buf, l);
            let base = name_buf.len();
            name_buf.push_str(".recvq");
            emit(name_buf, l.rqueue);
            name_buf.truncate(base);
            name_buf.push_str(".sendq");
            emit(name_buf, l.wqueue);
        }
    }
}

impl DumpKind for TcpAggregate {
    const PROTOCOL: libc::c_int = libc::NETLINK_SOCK_DIAG;
    const WHAT: &'static str = "sock_diag dump";

    fn request(&self, part: usize, seq: u32, out: &mut Vec<u8>) -> bool {
        let family = match part {
            0 => libc::AF_INET,
            1 => libc::AF_INET6,
            _ => return false,
        };
        // inet_diag_req_v2: family, protocol, ext, pad, states, then a
        // zeroed inet_diag_sockid (48 bytes): no filter.
        let mut body = [0u8; 56];
        body[0] = family as u8;
        body[1] = libc::IPPROTO_TCP as u8;
        body[4..8].copy_from_slice(&ALL_STATES.to_ne_bytes());
        super::request(SOCK_DIAG_BY_FAMILY, seq, &body, out);
        true
    }

    fn reset(&mut self) {
        self.entries = 0;
        self.truncated = false;
        self.states = [0; STATES.len()];
        self.listeners.clear();
    }

    fn on_message(&mut self, typ: u16, payload: &[u8]) -> Result<(), NlError> {
        if typ != SOCK_DIAG_BY_FAMILY {
            return Ok(());
        }
        let s = parse_sock(payload)?;
        self.add(&s);
        Ok(())
    }

    fn entries(&self) -> u32 {
        self.entries
    }

    fn set_truncated(&mut self) {
        self.truncated = true;
    }
}
