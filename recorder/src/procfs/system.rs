//! System-wide `/proc` files → named `u64` columns.
//!
//! Every parser takes the raw file bytes, a caller-owned scratch `String`
//! used to build column names (cleared and reused; no other allocation), and
//! a callback `emit(name, value)` called once per column, in file order.
//! The `&str` passed to `emit` is only valid during the call.
//!
//! # Column names (contract)
//!
//! | file | columns | unit |
//! | --- | --- | --- |
//! | `/proc/stat` | `cpu.<f>` (aggregate line), `cpu<N>.<f>` (per CPU), f ∈ `user nice system idle iowait irq softirq steal guest guest_nice` | raw USER_HZ ticks; fields an old kernel does not print are not emitted; extra fields are ignored |
//! | | `stat.ctxt`, `stat.btime`, `stat.processes`, `stat.procs_running`, `stat.procs_blocked` | as written |
//! | | `stat.intr`, `stat.softirq` | the first number of the line (the total) |
//! | `/proc/loadavg` | `load.avg1`, `load.avg5`, `load.avg15` | load × 100, exact from the 2-decimal text |
//! | | `load.runnable`, `load.threads`, `load.last_pid` | as written (`runnable/threads`) |
//! | `/proc/meminfo` | `mem.<Key>`, the key exactly as written (`mem.MemTotal`, `mem.Active(anon)`, `mem.HugePages_Total`) | the number as written: kB for `kB` lines, a count otherwise |
//! | `/proc/vmstat` | `vm.<name>` | as written |
//! | `/proc/pressure/<res>` | `psi.<res>.<some\|full>.avg10`, `.avg60`, `.avg300` | percent × 100, exact |
//! | | `psi.<res>.<some\|full>.total` | µs |
//! | `/proc/uptime` | `uptime.up`, `uptime.idle` | centiseconds |
//!
//! Unknown lines of `/proc/stat` and unknown `key=value` pairs of a pressure
//! line are ignored. Blank lines are skipped everywhere.
//!
//! # Errors
//!
//! A file that does not look like the file it is parsed as gives
//! `Err(ParseError)`: empty text, a `/proc/stat` without the aggregate `cpu`
//! line or with a non-number on a parsed line, a `meminfo` line without `:`
//! or without `MemTotal`, an unknown pressure line kind, a number over
//! `u64::MAX`, and so on. A single line is checked whole before any of its
//! columns are emitted, but columns of earlier lines may already have been
//! emitted when an error is returned: callers should drop the whole sample
//! on `Err`.

use super::{fields, lines, parse_centi, parse_u32, parse_u64, split_colon, ParseError};

const STAT: &str = "/proc/stat";
const LOADAVG: &str = "/proc/loadavg";
const MEMINFO: &str = "/proc/meminfo";
const VMSTAT: &str = "/proc/vmstat";
const PRESSURE: &str = "/proc/pressure";
const UPTIME: &str = "/proc/uptime";

/// Names of the `/proc/stat` cpu-line fields, in kernel order.
pub use lpo_format::schema::system::CPU_FIELDS;

/// Fields every kernel prints on a cpu line (user nice system idle).
const CPU_MIN_FIELDS: usize = 4;

#[inline]
fn utf8<'a>(file: &'static str, s: &'a [u8], line: &[u8]) -> Result<&'a str, ParseError> {
    std::str::from_utf8(s).map_err(|_| ParseError::new(file, "name is not UTF-8", line))
}

/// Parses `/proc/stat`. See the module docs for the column names.
pub fn parse_stat(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut saw_cpu = false;
    for line in lines(text) {
        let mut f = fields(line);
        let Some(key) = f.next() else { continue };
        if let Some(cpu) = key.strip_prefix(b"cpu") {
            name_buf.clear();
            if cpu.is_empty() {
                saw_cpu = true;
                name_buf.push_str("cpu.");
            } else {
                if parse_u32(cpu).is_none() {
                    return Err(ParseError::new(STAT, "bad cpu line name", line));
                }
                name_buf.push_str("cpu");
                name_buf.push_str(utf8(STAT, cpu, line)?);
                name_buf.push('.');
            }
            let mut vals = [0u64; CPU_FIELDS.len()];
            let mut n = 0;
            for v in f {
                let v = parse_u64(v)
                    .ok_or_else(|| ParseError::new(STAT, "non-number on cpu line", line))?;
                if n < vals.len() {
                    vals[n] = v;
                }
                n += 1;
            }
            if n < CPU_MIN_FIELDS {
                return Err(ParseError::new(STAT, "too few fields on cpu line", line));
            }
            let base = name_buf.len();
            for (name, &v) in CPU_FIELDS.iter().zip(&vals[..n.min(vals.len())]) {
                name_buf.truncate(base);
                name_buf.push_str(name);
                emit(name_buf, v);
            }
            continue;
        }
        let col = match key {
            b"ctxt" => "stat.ctxt",
            b"intr" => "stat.intr",
            b"btime" => "stat.btime",
            b"processes" => "stat.processes",
            b"procs_running" => "stat.procs_running",
            b"procs_blocked" => "stat.procs_blocked",
            b"softirq" => "stat.softirq",
            _ => continue,
        };
        // First number only: for intr/softirq it is the total, the rest of
        // the (possibly very long) line is not looked at.
        let v = f
            .next()
            .and_then(parse_u64)
            .ok_or_else(|| ParseError::new(STAT, "missing or non-number value", line))?;
        emit(col, v);
    }
    if !saw_cpu {
        return Err(ParseError::new(STAT, "no aggregate cpu line", b""));
    }
    Ok(())
}

/// Parses `/proc/loadavg` (`0.21 0.37 0.39 1/719 19737`).
pub fn parse_loadavg(
    text: &[u8],
    _name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let line = lines(text).next().unwrap_or(b"");
    let bad = || {
        ParseError::new(
            LOADAVG,
            "expected `a1 a5 a15 runnable/threads last_pid`",
            line,
        )
    };
    let mut f = fields(line);
    let (Some(a1), Some(a5), Some(a15), Some(rt), Some(last), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err(bad());
    };
    let slash = rt.iter().position(|&b| b == b'/').ok_or_else(bad)?;
    let vals = [
        parse_centi(a1),
        parse_centi(a5),
        parse_centi(a15),
        parse_u64(&rt[..slash]),
        parse_u64(&rt[slash + 1..]),
        parse_u64(last),
    ];
    const NAMES: [&str; 6] = [
        "load.avg1",
        "load.avg5",
        "load.avg15",
        "load.runnable",
        "load.threads",
        "load.last_pid",
    ];
    if vals.iter().any(Option::is_none) {
        return Err(bad());
    }
    for (name, v) in NAMES.iter().zip(vals) {
        emit(name, v.unwrap_or(0));
    }
    Ok(())
}

/// Parses `/proc/meminfo` (`Key:   value [kB]` lines).
pub fn parse_meminfo(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut saw_total = false;
    for line in lines(text) {
        if fields(line).next().is_none() {
            continue;
        }
        let (key, value) =
            split_colon(line).ok_or_else(|| ParseError::new(MEMINFO, "line without ':'", line))?;
        if key.is_empty() || key.iter().any(|&b| b.is_ascii_whitespace()) {
            return Err(ParseError::new(MEMINFO, "bad key", line));
        }
        let mut f = fields(value);
        let v = match (f.next(), f.next(), f.next()) {
            (Some(n), None | Some(b"kB"), None) => parse_u64(n),
            _ => None,
        }
        .ok_or_else(|| ParseError::new(MEMINFO, "expected `<number> [kB]`", line))?;
        saw_total |= key == b"MemTotal";
        name_buf.clear();
        name_buf.push_str("mem.");
        name_buf.push_str(utf8(MEMINFO, key, line)?);
        emit(name_buf, v);
    }
    if !saw_total {
        return Err(ParseError::new(MEMINFO, "no MemTotal line", b""));
    }
    Ok(())
}

/// Parses `/proc/vmstat` (`name value` lines).
pub fn parse_vmstat(
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let mut any = false;
    for line in lines(text) {
        let mut f = fields(line);
        let (key, v) = match (f.next(), f.next(), f.next()) {
            (None, ..) => continue,
            (Some(k), Some(v), None) => (k, parse_u64(v)),
            _ => (&b""[..], None),
        };
        let v = v.ok_or_else(|| ParseError::new(VMSTAT, "expected `<name> <number>`", line))?;
        name_buf.clear();
        name_buf.push_str("vm.");
        name_buf.push_str(utf8(VMSTAT, key, line)?);
        emit(name_buf, v);
        any = true;
    }
    if !any {
        return Err(ParseError::new(VMSTAT, "empty", b""));
    }
    Ok(())
}

/// Parses `/proc/pressure/<resource>` (`resource` is `cpu`, `memory`, `io`
/// or `irq`; it is only used in the column names).
pub fn parse_pressure(
    resource: &str,
    text: &[u8],
    name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    const KEYS: [&str; 4] = ["avg10", "avg60", "avg300", "total"];
    let mut any = false;
    for line in lines(text) {
        let mut f = fields(line);
        let kind = match f.next() {
            None => continue,
            Some(b"some") => "some",
            Some(b"full") => "full",
            Some(_) => {
                return Err(ParseError::new(
                    PRESSURE,
                    "line is not `some` or `full`",
                    line,
                ));
            }
        };
        let mut vals: [Option<u64>; 4] = [None; 4];
        for kv in f {
            let eq = kv
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| ParseError::new(PRESSURE, "field without '='", line))?;
            let (k, v) = (&kv[..eq], &kv[eq + 1..]);
            let (slot, v) = match k {
                b"avg10" => (0, parse_centi(v)),
                b"avg60" => (1, parse_centi(v)),
                b"avg300" => (2, parse_centi(v)),
                b"total" => (3, parse_u64(v)),
                _ => continue,
            };
            vals[slot] =
                Some(v.ok_or_else(|| ParseError::new(PRESSURE, "non-number value", line))?);
        }
        if vals.iter().any(Option::is_none) {
            return Err(ParseError::new(
                PRESSURE,
                "missing avg10/avg60/avg300/total",
                line,
            ));
        }
        name_buf.clear();
        name_buf.push_str("psi.");
        name_buf.push_str(resource);
        name_buf.push('.');
        name_buf.push_str(kind);
        name_buf.push('.');
        let base = name_buf.len();
        for (k, v) in KEYS.iter().zip(vals) {
            name_buf.truncate(base);
            name_buf.push_str(k);
            emit(name_buf, v.unwrap_or(0));
        }
        any = true;
    }
    if !any {
        return Err(ParseError::new(PRESSURE, "empty", b""));
    }
    Ok(())
}

/// Parses `/proc/uptime` (`350735.47 234388.90`) into centiseconds.
pub fn parse_uptime(
    text: &[u8],
    _name_buf: &mut String,
    emit: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    let line = lines(text).next().unwrap_or(b"");
    let mut f = fields(line);
    let (Some(up), Some(idle), None) = (f.next(), f.next(), f.next()) else {
        return Err(ParseError::new(UPTIME, "expected `<up> <idle>`", line));
    };
    let (Some(up), Some(idle)) = (parse_centi(up), parse_centi(idle)) else {
        return Err(ParseError::new(UPTIME, "non-number value", line));
    };
    emit("uptime.up", up);
    emit("uptime.idle", idle);
    Ok(())
}
