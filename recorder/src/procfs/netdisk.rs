//! Disk, network, interrupt and slab `/proc` files → named `u64` columns.
//!
//! Same conventions as `procfs/system.rs`: every parser takes the raw file
//! bytes, a caller-owned scratch `String` used to build column names
//! (cleared and reused; the only allocation, and none once it has grown to
//! the longest name) and a callback `emit(name, value)` called once per
//! column, in file order. The `&str` passed to `emit` is only valid during
//! the call. Values are the raw cumulative counters (or gauges) as the
//! kernel prints them; rates are computed at replay from two samples.
//!
//! # Column names (contract)
//!
//! `<dev>`, `<iface>`, `<irq>`, `<cache>` are the kernel's names, kept as
//! written (any UTF-8 without whitespace or control characters, at most
//! [`MAX_NAME_LEN`] bytes; a line whose name does not qualify is skipped,
//! the rest of the file still parses). They may contain `.` (e.g. VLAN
//! interfaces `eth0.100`), so consumers must split a column name on its
//! **last** `.` to get the field: no field name below contains a `.`.
//!
//! | file | columns | unit |
//! | --- | --- | --- |
//! | `/proc/diskstats` | `disk.<dev>.major`, `disk.<dev>.minor`, then `disk.<dev>.<f>`, f ∈ `reads reads_merged sectors_read read_ms writes writes_merged sectors_written write_ms in_flight io_ms weighted_ms` (all kernels), `discards discards_merged sectors_discarded discard_ms` (4.18+, 18-field lines), `flushes flush_ms` (5.5+, 20-field lines) | counts, 512-byte sectors, ms; `in_flight` is a gauge |
//! | `/proc/net/dev` | `net.<iface>.<f>`, f ∈ `rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast tx_bytes tx_packets tx_errs tx_drop tx_fifo tx_colls tx_carrier tx_compressed` | bytes, packets |
//! | `/proc/net/snmp` | `snmp.<Proto>.<Field>` (`snmp.Tcp.ActiveOpens`, `snmp.Udp.RcvbufErrors`, `snmp.IcmpMsg.InType3`) | as written; `Tcp.CurrEstab` is a gauge |
//! | `/proc/net/netstat` | `netstat.<Proto>.<Field>` (`netstat.TcpExt.ListenOverflows`, `netstat.IpExt.InOctets`) | as written |
//! | `/proc/net/snmp6` | `snmp6.<Name>` (`snmp6.Udp6RcvbufErrors`) | as written |
//! | `/proc/net/dev_snmp6/<iface>` | `dev_snmp6.<iface>.<Name>` (incl. `ifIndex`) | as written |
//! | `/proc/net/sockstat`, `/proc/net/sockstat6` | `sockstat.<PROTO>.<key>` (`sockstat.sockets.used`, `sockstat.TCP.inuse`, `sockstat.TCP.mem`, `sockstat.FRAG.memory`, `sockstat.TCP6.inuse`) | gauges; `mem` in pages, `FRAG memory` in bytes |
//! | `/proc/net/softnet_stat` | `softnet.cpu<N>.processed`, `.dropped`, `.time_squeeze`; `.received_rps` (≥ 10 columns), `.flow_limit_count` (≥ 11), `.backlog_len` (≥ 13, a gauge) | counts |
//! | `/proc/interrupts` | `irq.<irq>.cpu<N>` (`irq.0.cpu1`, `irq.NMI.cpu0`, `irq.IPI0.cpu3`), N from the `CPU<N>` header; `irq.<irq>.total` (first number) for the global rows `ERR`, `MIS`, arm64 `Err`, and any row with fewer numbers than CPU columns | counts |
//! | `/proc/softirqs` | `softirq.<NAME>.cpu<N>` (`softirq.NET_RX.cpu0`) | counts |
//! | `/proc/slabinfo` (2.x) | `slab.<cache>.<f>`, f ∈ `active_objs num_objs objsize objperslab pagesperslab active_slabs num_slabs` | objects, bytes, pages, slabs (gauges) |
//! | `/proc/net/stat/nf_conntrack` | `conntrack.stat.<field>` for every header field (`entries searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error expect_new expect_create expect_delete search_restart`; 5.x+ kernels say `clashres` and `chainlength` for `searched` and `delete_list`), summed over the per-CPU rows | counts (`entries`, the global gauge every row repeats, from the first row) |
//!
//! CPU numbers: `softnet_stat` rows are numbered by position unless the
//! line has 13+ columns, whose 13th is the CPU id (kernels skip offline
//! CPUs, so position and id differ); `interrupts`
//! and `softirqs` columns by their `CPU<N>` header.
//!
//! Negative numbers: only `Tcp: MaxConn` (-1, "no limit") is ever negative
//! in these files. A negative value in `snmp`, `netstat` or `sockstat` is
//! **skipped** (no column), never stored as two's complement. Elsewhere a
//! sign is an error.
//!
//! # Errors
//!
//! A file that does not look like the file it is parsed as gives
//! `Err(ParseError)`: empty text (even a 0-byte `diskstats`), a truncated
//! line (wrong field count), a non-number or a number over `u64::MAX`, bad
//! hex, a header/value pair whose protocols or lengths differ, a
//! `softnet_stat` line with fewer than 9 columns or CPU ids that do not
//! increase, a `slabinfo` that is not version 2.x, and so on. A line (or a
//! header/value pair) is checked whole before any of its columns are
//! emitted, but columns of earlier lines may already have been emitted when
//! an error is returned: callers should drop the whole sample of that file
//! on `Err`. No input makes a parser panic.

use std::fmt::Write as _;

use super::{fields, lines, parse_u64, trim, Fields, ParseError};

const DISKSTATS: &str = "/proc/diskstats";
const NET_DEV: &str = "/proc/net/dev";
const SNMP: &str = "/proc/net/snmp";
const NETSTAT: &str = "/proc/net/netstat";
const SNMP6: &str = "/proc/net/snmp6";
const DEV_SNMP6: &str = "/proc/net/dev_snmp6";
const SOCKSTAT: &str = "/proc/net/sockstat";
const SOCKSTAT6: &str = "/proc/net/sockstat6";
const SOFTNET: &str = "/proc/net/softnet_stat";
const INTERRUPTS: &str = "/proc/interrupts";
const SOFTIRQS: &str = "/proc/softirqs";
const SLABINFO: &str = "/proc/slabinfo";
const CONNTRACK: &str = "/proc/net/stat/nf_conntrack";

/// Longest device, interface, IRQ, cache, protocol or field name accepted
/// inside a column name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// `/proc/diskstats` fields after `major minor name`, in kernel order.
pub const DISK_FIELDS: [&str; 17] = [
    "reads",
    "reads_merged",
    "sectors_read",
    "read_ms",
    "writes",
    "writes_merged",
    "sectors_written",
    "write_ms",
    "in_flight",
    "io_ms",
    "weighted_ms",
    "discards",
    "discards_merged",
    "sectors_discarded",
    "discard_ms",
    "flushes",
    "flush_ms",
];

/// `/proc/net/dev` fields after `<iface>:`, in kernel order (shared with replay).
pub use lpo_format::schema::kernel::NET_DEV_FIELDS;

/// `/proc/net/softnet_stat` columns that are emitted, by column index
/// (columns 3..=8 are always 0, the 13th is the CPU id).
const SOFTNET_FIELDS: [(usize, &str); 6] = [
    (0, "processed"),
    (1, "dropped"),
    (2, "time_squeeze"),
    (9, "received_rps"),
    (10, "flow_limit_count"),
    (11, "backlog_len"),
];

/// Fewer columns than this is not a softnet_stat line (kernels since 2.6
/// print at least 9; the deliberately broken fixture has 4).
const SOFTNET_MIN_COLUMNS: usize = 9;

/// `/proc/slabinfo` numbers emitted, in line order.
const SLAB_FIELDS: [&str; 7] = [
    "active_objs",
    "num_objs",
    "objsize",
    "objperslab",
    "pagesperslab",
    "active_slabs",
    "num_slabs",
];

// ---------------------------------------------------------------------------
// byte helpers: the parent module's line and field splitters
// ---------------------------------------------------------------------------

fn is_blank_line(line: &[u8]) -> bool {
    line.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r')
}

/// A kernel object name (device, interface, IRQ, cache) usable inside a
/// column name: 1..=64 bytes of UTF-8 without whitespace or control
/// characters. `None` means "skip this line".
fn object_name(s: &[u8]) -> Option<&str> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(s)
}

/// A kernel identifier (protocol, counter or header field name): ASCII
/// letters, digits, `_` and `-`, 1..=64 bytes, no `.`. Anything else means
/// the file is not what it should be.
fn ident<'a>(file: &'static str, s: &'a [u8], line: &[u8]) -> Result<&'a str, ParseError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ParseError::new(file, "bad name", line));
    }
    // All ASCII, so this cannot fail.
    std::str::from_utf8(s).map_err(|_| ParseError::new(file, "bad name", line))
}

/// Lower- or upper-case hex digits, at least one, no prefix; `None` on
/// anything else or on overflow.
fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        v = v.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// A signed value of a header/value file: `Some(Some(v))` for a counter,
/// `Some(None)` for a well-formed negative number (skipped), `None` for
/// garbage.
fn signed_value(s: &[u8]) -> Option<Option<u64>> {
    match s.split_first() {
        Some((b'-', digits)) => {
            let m = parse_u64(digits)?;
            (m <= i64::MAX as u64 + 1).then_some(None)
        }
        _ => parse_u64(s).map(Some),
    }
}

/// `name_buf = prefix + a + "."`, returns the length to truncate back to.
fn start_name(name_buf: &mut String, prefix: &str, a: &str) -> usize {
    name_buf.clear();
    name_buf.push_str(prefix);
    name_buf.push_str(a);
    name_buf.push('.');
    name_buf.len()
}

fn push_cpu(name_buf: &mut String, prefix: &str, cpu: u64) -> usize {
    name_buf.clear();
    name_buf.push_str(prefix);
    name_buf.push_str("cpu");
    // Integer formatting into a String uses a stack buffer: no allocation
    // beyond the String's own growth.
    let _ = write!(name_buf, "{cpu}");
    name_buf.push('.');
    name_buf.len()
}

// ---------------------------------------------------------------------------
// /proc/diskstats
// ---------------------------------------------------------------------------

/// Parses `/proc/diskstats` (14-, 18- or 20-field lines, mixed freely).
pub fn parse_diskstats(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut any = false;
    for line in lines(text) {
        let mut f = fields(line);
        let Some(major) = f.next() else { continue };
        let (Some(minor), Some(dev)) = (f.next(), f.next()) else {
            return Err(ParseError::new(DISKSTATS, "truncated line", line));
        };
        let (Some(major), Some(minor)) = (parse_u64(major), parse_u64(minor)) else {
            return Err(ParseError::new(DISKSTATS, "bad major/minor", line));
        };
        let mut vals = [0u64; DISK_FIELDS.len()];
        let mut n = 0usize;
        for v in f {
            let v =
                parse_u64(v).ok_or_else(|| ParseError::new(DISKSTATS, "non-number field", line))?;
            if let Some(slot) = vals.get_mut(n) {
                *slot = v;
            }
            n += 1;
        }
        // 11 (all kernels), 15 (4.18+: discards) or 17+ (5.5+: flushes).
        let count = match n {
            11 => 11,
            15 => 15,
            n if n >= 17 => 17,
            _ => {
                return Err(ParseError::new(
                    DISKSTATS,
                    "expected 11, 15 or 17+ counters",
                    line,
                ))
            }
        };
        any = true;
        let Some(dev) = object_name(dev) else {
            continue;
        };
        let base = start_name(name_buf, "disk.", dev);
        name_buf.push_str("major");
        emit(name_buf, major);
        name_buf.truncate(base);
        name_buf.push_str("minor");
        emit(name_buf, minor);
        for (name, &v) in DISK_FIELDS.iter().zip(&vals[..count]) {
            name_buf.truncate(base);
            name_buf.push_str(name);
            emit(name_buf, v);
        }
    }
    if !any {
        return Err(ParseError::new(DISKSTATS, "empty", b""));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// /proc/net/dev
// ---------------------------------------------------------------------------

/// Parses `/proc/net/dev` (two header lines, then `iface: 16 numbers`).
pub fn parse_net_dev(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut it = lines(text).filter(|l| !is_blank_line(l));
    // `Inter-|   Receive …` and ` face |bytes …`: positional, so that an
    // interface name containing '|' is still data.
    for _ in 0..2 {
        match it.next() {
            Some(h) if h.contains(&b'|') => {}
            Some(h) => return Err(ParseError::new(NET_DEV, "missing header lines", h)),
            None => return Err(ParseError::new(NET_DEV, "empty or header only", b"")),
        }
    }
    let mut ifaces = 0;
    for line in it {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| ParseError::new(NET_DEV, "line without ':'", line))?;
        let mut vals = [0u64; NET_DEV_FIELDS.len()];
        let mut n = 0usize;
        for v in fields(&line[colon + 1..]) {
            let v =
                parse_u64(v).ok_or_else(|| ParseError::new(NET_DEV, "non-number field", line))?;
            if let Some(slot) = vals.get_mut(n) {
                *slot = v;
            }
            n += 1;
        }
        if n != NET_DEV_FIELDS.len() {
            return Err(ParseError::new(NET_DEV, "expected 16 counters", line));
        }
        ifaces += 1;
        let Some(iface) = object_name(trim(&line[..colon])) else {
            continue;
        };
        let base = start_name(name_buf, "net.", iface);
        for (name, &v) in NET_DEV_FIELDS.iter().zip(&vals) {
            name_buf.truncate(base);
            name_buf.push_str(name);
            emit(name_buf, v);
        }
    }
    if ifaces == 0 {
        return Err(ParseError::new(NET_DEV, "no interface", b""));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// /proc/net/snmp, /proc/net/netstat: `Proto: names` / `Proto: values` pairs
// ---------------------------------------------------------------------------

/// `Proto: rest` → (`Proto`, rest).
fn split_proto<'a>(file: &'static str, line: &'a [u8]) -> Result<(&'a str, &'a [u8]), ParseError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| ParseError::new(file, "line without ':'", line))?;
    let proto = ident(file, trim(&line[..colon]), line)?;
    Ok((proto, &line[colon + 1..]))
}

fn parse_pairs(
    file: &'static str,
    prefix: &str,
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut it = lines(text).filter(|l| !is_blank_line(l));
    let mut any = false;
    while let Some(head) = it.next() {
        let Some(vals) = it.next() else {
            return Err(ParseError::new(file, "header line without values", head));
        };
        let (hp, hrest) = split_proto(file, head)?;
        let (vp, vrest) = split_proto(file, vals)?;
        if hp != vp {
            return Err(ParseError::new(file, "header and values differ", vals));
        }
        // Check the whole pair before emitting anything.
        let (mut hn, mut vn) = (fields(hrest), fields(vrest));
        loop {
            match (hn.next(), vn.next()) {
                (None, None) => break,
                (Some(h), Some(v)) => {
                    ident(file, h, head)?;
                    signed_value(v).ok_or_else(|| ParseError::new(file, "non-number", vals))?;
                }
                _ => return Err(ParseError::new(file, "header/value count mismatch", vals)),
            }
        }
        let base = start_name(name_buf, prefix, hp);
        for (h, v) in fields(hrest).zip(fields(vrest)) {
            if let Some(Some(v)) = signed_value(v) {
                name_buf.truncate(base);
                name_buf.push_str(ident(file, h, head)?);
                emit(name_buf, v);
            }
        }
        any = true;
    }
    if !any {
        return Err(ParseError::new(file, "empty", b""));
    }
    Ok(())
}

/// Parses `/proc/net/snmp` into `snmp.<Proto>.<Field>`.
pub fn parse_snmp(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_pairs(SNMP, "snmp.", text, name_buf, emit)
}

/// Parses `/proc/net/netstat` into `netstat.<Proto>.<Field>`.
pub fn parse_netstat(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_pairs(NETSTAT, "netstat.", text, name_buf, emit)
}

// ---------------------------------------------------------------------------
// /proc/net/snmp6, /proc/net/dev_snmp6/<iface>: `Name value` lines
// ---------------------------------------------------------------------------

/// `Name value` lines, emitted as `name_buf[..base] + Name`.
fn parse_name_value(
    file: &'static str,
    base: usize,
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut any = false;
    for line in lines(text) {
        let mut f = fields(line);
        let (k, v) = match (f.next(), f.next(), f.next()) {
            (None, ..) => continue,
            (Some(k), Some(v), None) => (k, v),
            _ => return Err(ParseError::new(file, "expected `<name> <number>`", line)),
        };
        let k = ident(file, k, line)?;
        let v = parse_u64(v).ok_or_else(|| ParseError::new(file, "non-number", line))?;
        name_buf.truncate(base);
        name_buf.push_str(k);
        emit(name_buf, v);
        any = true;
    }
    if !any {
        return Err(ParseError::new(file, "empty", b""));
    }
    Ok(())
}

/// Parses `/proc/net/snmp6` into `snmp6.<Name>`.
pub fn parse_snmp6(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    name_buf.clear();
    name_buf.push_str("snmp6.");
    let base = name_buf.len();
    parse_name_value(SNMP6, base, text, name_buf, emit)
}

/// Parses `/proc/net/dev_snmp6/<iface>` into `dev_snmp6.<iface>.<Name>`.
/// An `iface` that is not a valid name (see the module docs) is an error.
pub fn parse_dev_snmp6(
    iface: &str,
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let Some(iface) = object_name(iface.as_bytes()) else {
        return Err(ParseError::new(
            DEV_SNMP6,
            "bad interface name",
            iface.as_bytes(),
        ));
    };
    let base = start_name(name_buf, "dev_snmp6.", iface);
    parse_name_value(DEV_SNMP6, base, text, name_buf, emit)
}

// ---------------------------------------------------------------------------
// /proc/net/sockstat, sockstat6: `PROTO: key value key value …`
// ---------------------------------------------------------------------------

fn parse_sockstat_file(
    file: &'static str,
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut any = false;
    for line in lines(text) {
        if is_blank_line(line) {
            continue;
        }
        let (proto, rest) = split_proto(file, line)?;
        // Check the line: key/value pairs, at least one.
        let mut f = fields(rest);
        let mut pairs = 0;
        loop {
            match (f.next(), f.next()) {
                (None, _) => break,
                (Some(k), Some(v)) => {
                    ident(file, k, line)?;
                    signed_value(v).ok_or_else(|| ParseError::new(file, "non-number", line))?;
                    pairs += 1;
                }
                (Some(_), None) => return Err(ParseError::new(file, "key without value", line)),
            }
        }
        if pairs == 0 {
            return Err(ParseError::new(file, "no key/value pair", line));
        }
        let base = start_name(name_buf, "sockstat.", proto);
        let mut f = fields(rest);
        while let (Some(k), Some(v)) = (f.next(), f.next()) {
            if let Some(Some(v)) = signed_value(v) {
                name_buf.truncate(base);
                name_buf.push_str(ident(file, k, line)?);
                emit(name_buf, v);
            }
        }
        any = true;
    }
    if !any {
        return Err(ParseError::new(file, "empty", b""));
    }
    Ok(())
}

/// Parses `/proc/net/sockstat` into `sockstat.<PROTO>.<key>`.
pub fn parse_sockstat(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_sockstat_file(SOCKSTAT, text, name_buf, emit)
}

/// Parses `/proc/net/sockstat6` (same format; its protocols are already
/// suffixed: `sockstat.TCP6.inuse`).
pub fn parse_sockstat6(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_sockstat_file(SOCKSTAT6, text, name_buf, emit)
}

// ---------------------------------------------------------------------------
// /proc/net/softnet_stat: hex columns, one line per online CPU
// ---------------------------------------------------------------------------

/// Parses `/proc/net/softnet_stat` into `softnet.cpu<N>.<field>`.
pub fn parse_softnet_stat(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut row: u64 = 0;
    let mut last_cpu: Option<u64> = None;
    for line in lines(text) {
        if is_blank_line(line) {
            continue;
        }
        let mut vals = [0u64; 13];
        let mut n = 0usize;
        for v in fields(line) {
            let v = parse_hex(v).ok_or_else(|| ParseError::new(SOFTNET, "bad hex", line))?;
            if let Some(slot) = vals.get_mut(n) {
                *slot = v;
            }
            n += 1;
        }
        if n < SOFTNET_MIN_COLUMNS {
            return Err(ParseError::new(SOFTNET, "fewer than 9 columns", line));
        }
        let cpu = if n >= 13 { vals[12] } else { row };
        if cpu > u64::from(u32::MAX) || last_cpu.is_some_and(|l| cpu <= l) {
            return Err(ParseError::new(SOFTNET, "CPU ids do not increase", line));
        }
        last_cpu = Some(cpu);
        row += 1;
        let base = push_cpu(name_buf, "softnet.", cpu);
        for &(col, name) in &SOFTNET_FIELDS {
            // backlog_len comes with the cpu id column (13+ columns).
            let present = if col == 11 { n >= 13 } else { col < n };
            if present {
                name_buf.truncate(base);
                name_buf.push_str(name);
                emit(name_buf, vals[col]);
            }
        }
    }
    if row == 0 {
        return Err(ParseError::new(SOFTNET, "empty", b""));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// /proc/interrupts, /proc/softirqs
// ---------------------------------------------------------------------------

/// Rows printed with one global number whatever the number of CPUs.
fn is_global_irq_row(name: &str) -> bool {
    matches!(name, "ERR" | "MIS" | "Err")
}

/// Counts of one row: the numeric fields after `name:` up to `ncpu` of
/// them (the description that follows may contain numbers). `Err` for a
/// number over `u64::MAX`.
fn irq_counts<'a>(
    file: &'static str,
    rest: &'a [u8],
    ncpu: usize,
    line: &[u8],
) -> Result<(usize, Fields<'a>), ParseError> {
    let mut k = 0;
    for v in fields(rest).take(ncpu) {
        if v.iter().all(u8::is_ascii_digit) {
            parse_u64(v).ok_or_else(|| ParseError::new(file, "number too large", line))?;
            k += 1;
        } else {
            break;
        }
    }
    Ok((k, fields(rest)))
}

fn parse_irq_table(
    file: &'static str,
    prefix: &str,
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut it = lines(text).filter(|l| !is_blank_line(l));
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(file, "empty", b""))?;
    let mut ncpu = 0usize;
    for h in fields(header) {
        match h.strip_prefix(b"CPU") {
            Some(d) if parse_u64(d).is_some_and(|c| c <= u64::from(u32::MAX)) => ncpu += 1,
            _ => return Err(ParseError::new(file, "bad CPU header", header)),
        }
    }
    if ncpu == 0 {
        return Err(ParseError::new(file, "no CPU in header", header));
    }
    let mut rows = 0;
    for line in it {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| ParseError::new(file, "line without ':'", line))?;
        let rest = &line[colon + 1..];
        let (k, mut counts) = irq_counts(file, rest, ncpu, line)?;
        if k == 0 {
            return Err(ParseError::new(file, "row without counts", line));
        }
        rows += 1;
        let Some(name) = object_name(trim(&line[..colon])) else {
            continue;
        };
        if k < ncpu || is_global_irq_row(name) {
            let base = start_name(name_buf, prefix, name);
            name_buf.truncate(base);
            name_buf.push_str("total");
            emit(name_buf, counts.next().and_then(parse_u64).unwrap_or(0));
            continue;
        }
        let base = start_name(name_buf, prefix, name);
        for (h, v) in fields(header).zip(counts) {
            name_buf.truncate(base);
            name_buf.push_str("cpu");
            // Both were checked above.
            name_buf.push_str(std::str::from_utf8(&h[3..]).unwrap_or("?"));
            emit(name_buf, parse_u64(v).unwrap_or(0));
        }
    }
    if rows == 0 {
        return Err(ParseError::new(file, "no rows", b""));
    }
    Ok(())
}

/// Parses `/proc/interrupts` into `irq.<irq>.cpu<N>` (and `irq.<irq>.total`
/// for `ERR`/`MIS`/`Err`).
pub fn parse_interrupts(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_irq_table(INTERRUPTS, "irq.", text, name_buf, emit)
}

/// Parses `/proc/softirqs` into `softirq.<NAME>.cpu<N>`.
pub fn parse_softirqs(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_irq_table(SOFTIRQS, "softirq.", text, name_buf, emit)
}

// ---------------------------------------------------------------------------
// /proc/slabinfo
// ---------------------------------------------------------------------------

/// Parses `/proc/slabinfo` version 2.x into `slab.<cache>.<field>`.
pub fn parse_slabinfo(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut it = lines(text).filter(|l| !is_blank_line(l));
    let version = it
        .next()
        .ok_or_else(|| ParseError::new(SLABINFO, "empty", b""))?;
    // `slabinfo - version: 2.1`, or `… 2.1 (statistics)` with CONFIG_DEBUG_SLAB.
    let minor = trim(version)
        .strip_prefix(b"slabinfo - version: 2.")
        .and_then(|rest| fields(rest).next());
    if minor.is_none_or(|m| parse_u64(m).is_none()) {
        return Err(ParseError::new(
            SLABINFO,
            "not slabinfo version 2.x",
            version,
        ));
    }
    for line in it {
        if line.first() == Some(&b'#') {
            continue;
        }
        let bad = || {
            ParseError::new(
                SLABINFO,
                "expected `name 5×n : tunables 3×n : slabdata 3×n`",
                line,
            )
        };
        let mut f = fields(line);
        let name = f.next().ok_or_else(bad)?;
        // name, 5 numbers, ':', "tunables", 3 numbers, ':', "slabdata", 3
        // numbers; anything after (statistics) is ignored.
        let mut nums = [0u64; 11];
        let mut i = 0usize;
        for (pos, tok) in (&mut f).take(15).enumerate() {
            let expect: Option<&[u8]> = match pos {
                5 | 10 => Some(b":"),
                6 => Some(b"tunables"),
                11 => Some(b"slabdata"),
                _ => None,
            };
            match expect {
                Some(word) if tok == word => {}
                Some(_) => return Err(bad()),
                None => {
                    nums[i] = parse_u64(tok).ok_or_else(bad)?;
                    i += 1;
                }
            }
        }
        if i != nums.len() {
            return Err(bad());
        }
        let Some(name) = object_name(name) else {
            continue;
        };
        // active_objs num_objs objsize objperslab pagesperslab | limit
        // batchcount sharedfactor | active_slabs num_slabs sharedavail
        let vals = [
            nums[0], nums[1], nums[2], nums[3], nums[4], nums[8], nums[9],
        ];
        let base = start_name(name_buf, "slab.", name);
        for (field, v) in SLAB_FIELDS.iter().zip(vals) {
            name_buf.truncate(base);
            name_buf.push_str(field);
            emit(name_buf, v);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// /proc/net/stat/nf_conntrack
// ---------------------------------------------------------------------------

/// Most fields a `/proc/net/stat/nf_conntrack` header may have (kernels
/// print 17).
pub const CONNTRACK_MAX_FIELDS: usize = 48;

/// Parses `/proc/net/stat/nf_conntrack` (a header of field names, then one
/// hex row per possible CPU) into `conntrack.stat.<field>`: each counter
/// summed over the CPUs (wrapping, as the kernel's per-CPU `unsigned int`s
/// would), except `entries`, the global table size every row repeats,
/// which is taken from the first row.
pub fn parse_nf_conntrack(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut it = lines(text).filter(|l| !is_blank_line(l));
    let header = it
        .next()
        .ok_or_else(|| ParseError::new(CONNTRACK, "empty", b""))?;
    let mut nfields = 0usize;
    for h in fields(header) {
        ident(CONNTRACK, h, header)?;
        nfields += 1;
    }
    if nfields == 0 {
        return Err(ParseError::new(CONNTRACK, "empty header", header));
    }
    if nfields > CONNTRACK_MAX_FIELDS {
        return Err(ParseError::new(CONNTRACK, "too many fields", header));
    }
    let mut sums = [0u64; CONNTRACK_MAX_FIELDS];
    let mut rows: u64 = 0;
    for line in it {
        let mut n = 0usize;
        for v in fields(line) {
            parse_hex(v).ok_or_else(|| ParseError::new(CONNTRACK, "bad hex", line))?;
            n += 1;
        }
        if n != nfields {
            return Err(ParseError::new(
                CONNTRACK,
                "row length differs from header",
                line,
            ));
        }
        for ((h, v), sum) in fields(header).zip(fields(line)).zip(sums.iter_mut()) {
            let v = parse_hex(v).unwrap_or(0);
            if h == b"entries" {
                if rows == 0 {
                    *sum = v;
                }
            } else {
                *sum = sum.wrapping_add(v);
            }
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(ParseError::new(CONNTRACK, "no rows", b""));
    }
    for (h, sum) in fields(header).zip(sums) {
        name_buf.clear();
        name_buf.push_str("conntrack.stat.");
        name_buf.push_str(ident(CONNTRACK, h, header)?);
        emit(name_buf, sum);
    }
    Ok(())
}
