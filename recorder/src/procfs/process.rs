//! Per-process `/proc/PID/*` files → plain structs.
//!
//! Each parser resets `*out` to its `Default` first, so fields the kernel
//! does not print (older kernels, kernel threads) are 0. Nothing allocates
//! except the `reason` of a returned [`ParseError`].
//!
//! Unsigned fields that the kernel prints signed (`cutime`, `cstime`,
//! `processor`… in `stat`) or that a broken source printed negative
//! (`cancelled_write_bytes: -1024` in one `io` fixture) are saturated into
//! range (negative → 0). A non-number, a number beyond `u64`/`i64`, or a
//! missing mandatory field is an error.

use super::{
    fields, lines, parse_i64, parse_u32, parse_u64, parse_u64_clamped, split_colon, trim,
    ParseError,
};

const PID_STAT: &str = "/proc/PID/stat";
const PID_STATUS: &str = "/proc/PID/status";
const PID_IO: &str = "/proc/PID/io";
const PID_SCHEDSTAT: &str = "/proc/PID/schedstat";

/// `/proc/PID/stat` (and `/proc/PID/task/TID/stat`). Times are USER_HZ
/// ticks; `rss_pages` is in pages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PidStat {
    pub pid: u32,
    pub state: u8,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    pub tty_nr: u32,
    pub minflt: u64,
    pub majflt: u64,
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    pub priority: i64,
    pub nice: i64,
    pub num_threads: u64,
    pub starttime: u64,
    pub vsize: u64,
    pub rss_pages: u64,
    pub processor: u32,
    pub rt_priority: u32,
    pub policy: u32,
    pub delayacct_blkio_ticks: u64,
    pub guest_time: u64,
    pub exit_code: i64,
}

/// 1-based index (as in proc(5)) of the last field every kernel prints
/// (`rss`); later fields are optional and default to 0.
const STAT_MIN_FIELD: usize = 24;

/// Parses `/proc/PID/stat` into `out` and returns `comm` (the bytes between
/// the first `(` and the last `)`, which may contain spaces, parentheses
/// and even newlines), borrowed from `text`.
///
/// Only the first line after the `)` is read. At least the fields up to
/// `rss` (field 24 in proc(5)) must be present; later ones default to 0.
/// Every field must be an integer within `i64`/`u64` range, else `Err`.
/// The kernel prints many of these fields signed (`%d`, `%lld`), so an
/// integer that does not fit its unsigned field is saturated (negative → 0,
/// too big for `u32` → `u32::MAX`) rather than rejected; real kernels never
/// print such values, but prometheus' `26232/stat` fixture does. `pid`
/// itself must be a valid `u32`.
pub fn parse_pid_stat<'a>(text: &'a [u8], out: &mut PidStat) -> Result<&'a [u8], ParseError> {
    *out = PidStat::default();
    let head = &text[..text.len().min(64)];
    let err = |reason: &str| ParseError::new(PID_STAT, reason, head);
    let open = text
        .iter()
        .position(|&b| b == b'(')
        .ok_or_else(|| err("no '('"))?;
    let close = text
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&c| c > open)
        .ok_or_else(|| err("no ')' after '('"))?;
    out.pid = parse_u32(trim(&text[..open])).ok_or_else(|| err("bad pid"))?;
    let comm = &text[open + 1..close];
    let rest = &text[close + 1..];
    let rest = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];

    let mut last = 2; // index of the last field seen (2 = comm)
    for (i, tok) in fields(rest).enumerate() {
        let idx = i + 3;
        last = idx;
        let u32f = || sat_u32(tok).ok_or_else(|| err("bad number"));
        let u64f = || parse_u64_clamped(tok).ok_or_else(|| err("bad number"));
        let i64f = || parse_i64(tok).ok_or_else(|| err("bad number"));
        match idx {
            3 => match tok {
                [s] => out.state = *s,
                _ => return Err(err("bad state")),
            },
            4 => out.ppid = u32f()?,
            5 => out.pgrp = u32f()?,
            6 => out.session = u32f()?,
            7 => out.tty_nr = u32f()?,
            10 => out.minflt = u64f()?,
            12 => out.majflt = u64f()?,
            14 => out.utime = u64f()?,
            15 => out.stime = u64f()?,
            16 => out.cutime = u64f()?,
            17 => out.cstime = u64f()?,
            18 => out.priority = i64f()?,
            19 => out.nice = i64f()?,
            20 => out.num_threads = u64f()?,
            22 => out.starttime = u64f()?,
            23 => out.vsize = u64f()?,
            24 => out.rss_pages = u64f()?,
            39 => out.processor = u32f()?,
            40 => out.rt_priority = u32f()?,
            41 => out.policy = u32f()?,
            42 => out.delayacct_blkio_ticks = u64f()?,
            43 => out.guest_time = u64f()?,
            52 => out.exit_code = i64f()?,
            // Fields we do not keep must still be integers (signed or u64).
            _ => {
                if parse_u64(tok).is_none() && parse_i64(tok).is_none() {
                    return Err(err("bad number"));
                }
            }
        }
    }
    if last < STAT_MIN_FIELD {
        return Err(err("too few fields"));
    }
    Ok(comm)
}

/// Unsigned field the kernel may print signed: saturating conversion.
#[inline]
fn sat_u32(tok: &[u8]) -> Option<u32> {
    parse_u64_clamped(tok).map(|v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// Selected lines of `/proc/PID/status`. Sizes are kB.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PidStatus {
    /// Real, effective, saved, filesystem.
    pub uid: [u32; 4],
    /// Real, effective, saved, filesystem.
    pub gid: [u32; 4],
    pub voluntary_ctxt_switches: u64,
    pub nonvoluntary_ctxt_switches: u64,
    pub vm_rss_kb: u64,
    pub rss_anon_kb: u64,
    pub rss_file_kb: u64,
    pub rss_shmem_kb: u64,
    pub vm_swap_kb: u64,
    pub vm_size_kb: u64,
    pub threads: u64,
    pub tgid: u32,
}

/// Parses `/proc/PID/status`. `Tgid`, `Uid` and `Gid` are mandatory; the
/// other kept lines are absent for kernel threads or on old kernels and
/// then stay 0. Every non-blank line must be `Key: value`.
pub fn parse_pid_status(text: &[u8], out: &mut PidStatus) -> Result<(), ParseError> {
    *out = PidStatus::default();
    let (mut saw_tgid, mut saw_uid, mut saw_gid) = (false, false, false);
    for line in lines(text) {
        if fields(line).next().is_none() {
            continue;
        }
        let err = |reason: &str| ParseError::new(PID_STATUS, reason, line);
        let (key, value) = split_colon(line).ok_or_else(|| err("line without ':'"))?;
        let kb = || -> Result<u64, ParseError> {
            let mut f = fields(value);
            match (f.next(), f.next(), f.next()) {
                (Some(n), None | Some(b"kB"), None) => parse_u64(n),
                _ => None,
            }
            .ok_or_else(|| err("expected `<number> [kB]`"))
        };
        match key {
            b"Tgid" => {
                out.tgid = parse_u32(value).ok_or_else(|| err("bad number"))?;
                saw_tgid = true;
            }
            b"Uid" | b"Gid" => {
                let mut ids = [0u32; 4];
                let mut f = fields(value);
                for id in &mut ids {
                    *id = f
                        .next()
                        .and_then(parse_u32)
                        .ok_or_else(|| err("expected 4 ids"))?;
                }
                if f.next().is_some() {
                    return Err(err("expected 4 ids"));
                }
                if key == b"Uid" {
                    out.uid = ids;
                    saw_uid = true;
                } else {
                    out.gid = ids;
                    saw_gid = true;
                }
            }
            b"VmRSS" => out.vm_rss_kb = kb()?,
            b"RssAnon" => out.rss_anon_kb = kb()?,
            b"RssFile" => out.rss_file_kb = kb()?,
            b"RssShmem" => out.rss_shmem_kb = kb()?,
            b"VmSwap" => out.vm_swap_kb = kb()?,
            b"VmSize" => out.vm_size_kb = kb()?,
            b"Threads" => out.threads = kb()?,
            b"voluntary_ctxt_switches" => out.voluntary_ctxt_switches = kb()?,
            b"nonvoluntary_ctxt_switches" => out.nonvoluntary_ctxt_switches = kb()?,
            _ => {}
        }
    }
    if !(saw_tgid && saw_uid && saw_gid) {
        return Err(ParseError::new(
            PID_STATUS,
            "missing Tgid, Uid or Gid line",
            b"",
        ));
    }
    Ok(())
}

/// `/proc/PID/io`, all in bytes except the syscall counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PidIo {
    pub rchar: u64,
    pub wchar: u64,
    pub syscr: u64,
    pub syscw: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
}

/// Parses `/proc/PID/io`. All seven lines are mandatory (the kernel always
/// prints them together); unknown lines are ignored; a negative value is
/// stored as 0.
pub fn parse_pid_io(text: &[u8], out: &mut PidIo) -> Result<(), ParseError> {
    *out = PidIo::default();
    let mut seen = 0u8;
    for line in lines(text) {
        if fields(line).next().is_none() {
            continue;
        }
        let err = |reason: &str| ParseError::new(PID_IO, reason, line);
        let (key, value) = split_colon(line).ok_or_else(|| err("line without ':'"))?;
        let (bit, slot) = match key {
            b"rchar" => (0, &mut out.rchar),
            b"wchar" => (1, &mut out.wchar),
            b"syscr" => (2, &mut out.syscr),
            b"syscw" => (3, &mut out.syscw),
            b"read_bytes" => (4, &mut out.read_bytes),
            b"write_bytes" => (5, &mut out.write_bytes),
            b"cancelled_write_bytes" => (6, &mut out.cancelled_write_bytes),
            _ => continue,
        };
        *slot = parse_u64_clamped(value).ok_or_else(|| err("bad number"))?;
        seen |= 1 << bit;
    }
    if seen != 0x7f {
        return Err(ParseError::new(PID_IO, "missing lines", b""));
    }
    Ok(())
}

/// `/proc/PID/schedstat`: time on CPU (ns), time waiting on a runqueue (ns),
/// number of timeslices run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PidSchedstat {
    pub run_ns: u64,
    pub wait_ns: u64,
    pub timeslices: u64,
}

/// Parses `/proc/PID/schedstat` (`411605849 93680043 79`). The first line
/// must hold at least three numbers; further numbers are ignored.
pub fn parse_pid_schedstat(text: &[u8], out: &mut PidSchedstat) -> Result<(), ParseError> {
    *out = PidSchedstat::default();
    let line = lines(text).next().unwrap_or(b"");
    let err = || {
        ParseError::new(
            PID_SCHEDSTAT,
            "expected `<run_ns> <wait_ns> <timeslices>`",
            line,
        )
    };
    let mut n = 0;
    for tok in fields(line) {
        let v = parse_u64(tok).ok_or_else(err)?;
        match n {
            0 => out.run_ns = v,
            1 => out.wait_ns = v,
            2 => out.timeslices = v,
            _ => {}
        }
        n += 1;
    }
    if n < 3 {
        return Err(err());
    }
    Ok(())
}

/// NUL-separated argv → iterator of arguments (empty for kernel threads);
/// trailing NUL optional.
///
/// All trailing NULs are dropped: a process that rewrote its argv (e.g.
/// Android's `com.github.uiautomator\0\0\0…`) pads with NULs, which cannot be
/// told apart from trailing empty arguments. Empty arguments in the middle
/// are kept.
pub fn cmdline_args(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let end = text.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    CmdlineArgs {
        rest: (end > 0).then(|| &text[..end]),
    }
}

struct CmdlineArgs<'a> {
    /// `None` once exhausted.
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for CmdlineArgs<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == 0) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}
