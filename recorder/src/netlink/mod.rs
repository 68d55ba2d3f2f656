//! Netlink dumps for the `kernel` stream: the conntrack table through
//! ctnetlink ([`conntrack`]) and TCP sockets through sock_diag
//! ([`sockdiag`]), aggregated into a few named counters per sample.
//!
//! Written by hand on `libc` (socket, bind, sendto, recv), as `exits.rs`
//! does for taskstats: each dump is one request and a loop of `recv` into
//! one reused buffer, parsed in place with bounds checks everywhere. No
//! message, however truncated or hostile, makes a parser panic; it gives a
//! [`NlError`].
//!
//! Cost is bounded two ways (see [`Cadence`]): a dump stops after
//! [`MAX_ENTRIES`] entries (the aggregate is then flagged truncated and the
//! socket is closed, which ends the dump in the kernel), and a dump that took
//! `d` of CPU time (user + system of the recording thread) is not repeated
//! before `BUDGET_FACTOR × d` has passed, so the walks cost at most ~1% of
//! one CPU however big the table is. Between walks the
//! last aggregate is emitted again with its age.

pub mod conntrack;
pub mod sockdiag;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

// linux/netlink.h
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLA_HDRLEN: usize = 4;
const NLA_TYPE_MASK: u16 = !(0x8000 | 0x4000); // NLA_F_NESTED | NLA_F_NET_BYTEORDER
pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_DUMP: u16 = 0x300; // NLM_F_ROOT | NLM_F_MATCH

/// Entries (conntrack entries or sockets) walked at most per dump.
pub const MAX_ENTRIES: u32 = 200_000;

/// A dump that cost `d` of CPU time is not repeated before `BUDGET_FACTOR × d`.
pub const BUDGET_FACTOR: u32 = 100;

/// Receive buffer: the kernel fills dump replies up to 32 KiB (more with a
/// bigger buffer on some kernels); 128 KiB is never truncated.
const RECV_BUF: usize = 128 * 1024;

/// What went wrong in a netlink dump or while parsing its reply.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel answered with an error (a negative errno in NLMSG_ERROR).
    #[error("{what}: kernel said: {source}")]
    Kernel {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// A message or attribute whose lengths do not add up.
    #[error("malformed netlink reply: {0}")]
    Malformed(&'static str),
}

impl NlError {
    /// Permission denied (EPERM/EACCES), from the kernel or the socket.
    pub fn is_permission(&self) -> bool {
        let e = match self {
            NlError::Io { source, .. } | NlError::Kernel { source, .. } => source,
            NlError::Malformed(_) => return false,
        };
        matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
    }
}

pub(crate) fn rd<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
pub(crate) fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    rd(b, at).map(u16::from_ne_bytes)
}
pub(crate) fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    rd(b, at).map(u32::from_ne_bytes)
}
fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// One netlink message header and payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    pub typ: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// Iterates the messages of one `recv`; a length that does not fit is an
/// error (and ends the iteration).
pub(crate) fn messages(mut b: &[u8]) -> impl Iterator<Item = Result<Msg<'_>, NlError>> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let (Some(len), Some(typ), Some(seq)) = (rd_u32(b, 0), rd_u16(b, 4), rd_u32(b, 8)) else {
            b = &[];
            return Some(Err(NlError::Malformed("short message header")));
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            b = &[];
            return Some(Err(NlError::Malformed("message length out of bounds")));
        }
        let payload = &b[NLMSG_HDRLEN..len];
        b = &b[align4(len).min(b.len())..];
        Some(Ok(Msg { typ, seq, payload }))
    })
}

/// Iterates `(type, payload)` of the attributes in `b` (type without the
/// nested/byte-order flags); a bad length is an error.
pub(crate) fn attrs(mut b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), NlError>> {
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let (Some(len), Some(typ)) = (rd_u16(b, 0), rd_u16(b, 2)) else {
            b = &[];
            return Some(Err(NlError::Malformed("short attribute header")));
        };
        let len = len as usize;
        if len < NLA_HDRLEN || len > b.len() {
            b = &[];
            return Some(Err(NlError::Malformed("attribute length out of bounds")));
        }
        let payload = &b[NLA_HDRLEN..len];
        b = &b[align4(len).min(b.len())..];
        Some(Ok((typ & NLA_TYPE_MASK, payload)))
    })
}

/// The errno of an NLMSG_ERROR payload (0 is an ACK).
pub(crate) fn error_code(payload: &[u8]) -> Result<i32, NlError> {
    rd(payload, 0)
        .map(i32::from_ne_bytes)
        .ok_or(NlError::Malformed("short NLMSG_ERROR"))
}

/// Builds a dump request: header, then `body`.
pub(crate) fn request(typ: u16, seq: u32, body: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let len = (NLMSG_HDRLEN + body.len()) as u32;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&typ.to_ne_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
}

/// A netlink socket with its reused receive buffer.
pub(crate) struct NlSocket {
    fd: OwnedFd,
    pub buf: Vec<u8>,
}

fn last_err(what: &'static str) -> NlError {
    NlError::Io {
        what,
        source: io::Error::last_os_error(),
    }
}

impl NlSocket {
    /// socket(AF_NETLINK, SOCK_RAW, protocol) + bind, with a receive timeout
    /// so that a silent kernel can never stall the sampling loop.
    pub fn open(protocol: libc::c_int) -> Result<NlSocket, NlError> {
        // SAFETY: plain socket(2).
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(last_err("netlink socket"));
        }
        // SAFETY: fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: zeroed sockaddr_nl is valid; nl_pid 0 lets the kernel pick.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: valid sockaddr_nl and its size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(last_err("netlink bind"));
        }
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: timeval option value of the right size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(NlSocket {
            fd,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Sends one request to the kernel.
    pub fn send(&self, msg: &[u8]) -> Result<(), NlError> {
        // SAFETY: zeroed sockaddr_nl (nl_pid 0 = the kernel) is valid.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: msg is a valid buffer of its length; sa is a sockaddr_nl.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(last_err("netlink send"));
        }
        Ok(())
    }

    /// Receives one datagram into `self.buf`; returns its length.
    pub fn recv(&mut self) -> Result<usize, NlError> {
        loop {
            // SAFETY: buf is valid for its length.
            let r = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NlError::Io {
                    what: "netlink recv",
                    source: e,
                });
            }
            let n = r as usize;
            if n > self.buf.len() {
                return Err(NlError::Malformed("reply larger than the receive buffer"));
            }
            return Ok(n);
        }
    }
}

/// Which dump a [`Dumper`] runs: the request and what to do with each reply
/// message. Implemented by the conntrack and sock_diag aggregates.
pub trait DumpKind {
    /// Netlink protocol (NETLINK_NETFILTER, NETLINK_SOCK_DIAG).
    const PROTOCOL: libc::c_int;
    /// For error messages.
    const WHAT: &'static str;
    /// The requests to send, one dump after another (sock_diag dumps IPv4
    /// then IPv6). `seq` is the request's sequence number.
    fn request(&self, part: usize, seq: u32, out: &mut Vec<u8>) -> bool;
    /// Start a new aggregate.
    fn reset(&mut self);
    /// Account for one reply message of the data type.
    fn on_message(&mut self, typ: u16, payload: &[u8]) -> Result<(), NlError>;
    /// Entries accounted so far in this dump.
    fn entries(&self) -> u32;
    /// Mark the aggregate as cut short at the cap.
    fn set_truncated(&mut self);
}

/// Parses one `recv`'s worth of a dump reply (or several concatenated, as
/// [`capture`] saves them): calls `on_message` for each data message of
/// sequence `seq` (any sequence for `None`). `Ok(true)` when NLMSG_DONE was seen,
/// `Ok(false)` when more is to come or the cap was reached (check
/// [`DumpKind::entries`]).
pub fn parse_reply<K: DumpKind>(
    kind: &mut K,
    seq: Option<u32>,
    bytes: &[u8],
    cap: u32,
) -> Result<bool, NlError> {
    for m in messages(bytes) {
        let m = m?;
        if seq.is_some_and(|s| s != m.seq) {
            continue; // a stale reply of an earlier, abandoned dump
        }
        match m.typ {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = error_code(m.payload)?;
                if code == 0 {
                    continue;
                }
                return Err(NlError::Kernel {
                    what: K::WHAT,
                    source: io::Error::from_raw_os_error(code.saturating_neg()),
                });
            }
            NLMSG_NOOP => continue,
            NLMSG_OVERRUN => return Err(NlError::Malformed("NLMSG_OVERRUN")),
            _ => {
                if kind.entries() >= cap {
                    return Ok(false);
                }
                kind.on_message(m.typ, m.payload)?
            }
        }
    }
    Ok(false)
}

/// Runs dumps of one kind on a kept-open socket, with the entry cap.
pub struct Dumper<K: DumpKind> {
    pub kind: K,
    sock: Option<NlSocket>,
    req: Vec<u8>,
    seq: u32,
    pub cap: u32,
}

impl<K: DumpKind> Dumper<K> {
    pub fn new(kind: K) -> Dumper<K> {
        Dumper {
            kind,
            sock: None,
            req: Vec::with_capacity(128),
            seq: 0,
            cap: MAX_ENTRIES,
        }
    }

    /// One full dump into `self.kind`. On reaching the cap the socket is
    /// dropped (closing it ends the dump in the kernel) and the aggregate is
    /// flagged truncated.
    pub fn dump(&mut self) -> Result<(), NlError> {
        self.dump_into(None)
    }

    /// [`Dumper::dump`], also appending every datagram received to `raw`
    /// (tests keep real replies this way).
    pub fn dump_into(&mut self, mut raw: Option<&mut Vec<u8>>) -> Result<(), NlError> {
        self.kind.reset();
        let mut sock = match self.sock.take() {
            Some(s) => s,
            None => NlSocket::open(K::PROTOCOL)?,
        };
        let mut part = 0;
        loop {
            self.seq = self.seq.wrapping_add(1);
            if !self.kind.request(part, self.seq, &mut self.req) {
                break;
            }
            sock.send(&self.req)?;
            loop {
                let n = sock.recv()?;
                if let Some(r) = raw.as_deref_mut() {
                    r.extend_from_slice(&sock.buf[..n]);
                }
                let done = parse_reply(&mut self.kind, Some(self.seq), &sock.buf[..n], self.cap)?;
                if done {
                    break;
                }
                if self.kind.entries() >= self.cap {
                    self.kind.set_truncated();
                    return Ok(()); // socket dropped: the kernel ends the dump
                }
            }
            part += 1;
        }
        self.sock = Some(sock);
        Ok(())
    }
}

/// Runs one dump of `kind` and returns every datagram of the reply,
/// concatenated (a valid stream of netlink messages).
pub fn capture<K: DumpKind>(kind: K) -> Result<Vec<u8>, NlError> {
    let mut d = Dumper::new(kind);
    let mut raw = Vec::new();
    d.dump_into(Some(&mut raw))?;
    Ok(raw)
}

/// Aggregates a captured reply (see [`capture`]: one or more dumps, each
/// ending with NLMSG_DONE) as a live dump would.
pub fn aggregate<K: DumpKind>(kind: &mut K, mut bytes: &[u8]) -> Result<(), NlError> {
    kind.reset();
    let mut done = false;
    while !bytes.is_empty() {
        let len = rd_u32(bytes, 0).ok_or(NlError::Malformed("short message header"))? as usize;
        if len < NLMSG_HDRLEN || len > bytes.len() {
            return Err(NlError::Malformed("message length out of bounds"));
        }
        done = parse_reply(kind, None, &bytes[..len], MAX_ENTRIES)?;
        bytes = &bytes[align4(len).min(bytes.len())..];
    }
    if !done {
        return Err(NlError::Malformed("reply ends before NLMSG_DONE"));
    }
    Ok(())
}

/// CPU time of the calling thread (user + system: the kernel fills dump
/// replies in our `recv`), for the walk budget. Wall time would count the
/// time other processes ran on a busy machine.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec pointer; the clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// When to walk a table again: at most once per sample, and after a walk
/// that cost `d` of CPU, not before `BUDGET_FACTOR × d` has passed.
#[derive(Debug, Default)]
pub struct Cadence {
    next: Option<Instant>,
    /// When the last aggregate was taken.
    pub last: Option<Instant>,
}

impl Cadence {
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|n| now >= n)
    }
    pub fn done(&mut self, started: Instant, cpu: Duration) {
        self.last = Some(started);
        self.next = Some(started + cpu * BUDGET_FACTOR);
    }
    /// Milliseconds since the last aggregate was taken.
    pub fn age_ms(&self, now: Instant) -> u64 {
        self.last
            .map(|l| now.saturating_duration_since(l).as_millis() as u64)
            .unwrap_or(0)
    }
}

/// One table walked on its cadence, with what its last walk cost.
struct Walk<K: DumpKind> {
    d: Dumper<K>,
    cad: Cadence,
    /// CPU time the last walk took, µs (emitted as `*.dump.us`).
    us: u64,
    ok: bool,
    /// A failure was already reported (once per source).
    said: bool,
}

impl<K: DumpKind> Walk<K> {
    fn new(d: Dumper<K>) -> Walk<K> {
        Walk {
            d,
            cad: Cadence::default(),
            us: 0,
            ok: false,
            said: false,
        }
    }

    /// Walk when due; true when there is a result (new or carried over) to emit.
    fn run(&mut self, now: Instant, what: &str, warn: &mut dyn FnMut(String)) -> bool {
        if self.cad.due(now) {
            let (t, c) = (Instant::now(), thread_cpu());
            match self.d.dump() {
                Ok(()) => {
                    let cpu = thread_cpu().saturating_sub(c);
                    self.cad.done(t, cpu);
                    self.us = cpu.as_micros() as u64;
                    self.ok = true;
                }
                Err(e) => {
                    self.cad.done(t, Duration::from_secs(1));
                    self.ok = false;
                    if !self.said {
                        self.said = true;
                        warn(format!("kernel: {what} walk failed: {e}"));
                    }
                }
            }
        }
        self.ok
    }
}

/// Both dumps, as the `kernel` stream's collector uses them.
pub struct NetCollector {
    ct: Option<Walk<conntrack::CtAggregate>>,
    diag: Option<Walk<sockdiag::TcpAggregate>>,
    name_buf: String,
}

impl NetCollector {
    /// Opens what this host allows: ctnetlink only when conntrack is loaded
    /// (`conntrack_loaded`: /proc/sys/net/netfilter/nf_conntrack_count
    /// exists; asking ctnetlink would otherwise load the module). Returns
    /// the collector and one line per source not recorded.
    pub fn open(conntrack_loaded: bool) -> (NetCollector, Vec<String>) {
        let mut skipped = Vec::new();
        let mut me = NetCollector {
            ct: None,
            diag: None,
            name_buf: String::with_capacity(96),
        };
        if conntrack_loaded {
            let mut d = Dumper::new(conntrack::CtAggregate::default());
            match d.dump() {
                Ok(()) => {
                    me.ct = Some(Walk::new(d));
                }
                Err(e) => skipped.push(format!(
                    "kernel: conntrack table (ctnetlink) not recorded ({}{e})",
                    if e.is_permission() {
                        "needs CAP_NET_ADMIN: "
                    } else {
                        ""
                    }
                )),
            }
        } else {
            skipped.push(
                "kernel: conntrack table (ctnetlink) not recorded (conntrack module not loaded)"
                    .into(),
            );
        }
        let mut d = Dumper::new(sockdiag::TcpAggregate::default());
        match d.dump() {
            Ok(()) => me.diag = Some(Walk::new(d)),
            Err(e) => skipped.push(format!(
                "kernel: TCP sockets (sock_diag) not recorded ({e})"
            )),
        }
        (me, skipped)
    }

    /// Walks what is due and emits the (possibly carried-over) aggregates.
    pub fn collect(&mut self, emit: &mut dyn FnMut(&str, u64), warn: &mut dyn FnMut(String)) {
        let now = Instant::now();
        if let Some(w) = &mut self.ct {
            if w.run(now, "conntrack table", warn) {
                w.d.kind.emit(&mut self.name_buf, emit);
                emit("conntrack.dump.us", w.us);
                emit("conntrack.dump.age_ms", w.cad.age_ms(now));
            }
        }
        if let Some(w) = &mut self.diag {
            if w.run(now, "TCP socket", warn) {
                w.d.kind.emit(&mut self.name_buf, emit);
                emit("tcp.dump.us", w.us);
                emit("tcp.dump.age_ms", w.cad.age_ms(now));
            }
        }
    }
}
