//! `dmesg`: the kernel log recorded from /dev/kmsg (the `kmsg` stream), as
//! `dmesg -T` prints it, and the "kernel events near TIME" section of the
//! summary.
//!
//! A record's wall time is its kernel timestamp (µs of the printk clock
//! since boot) plus the boot time implied by the sample that stored it:
//! `wall − mono` of that sample (mono is CLOCK_BOOTTIME). This is what
//! `dmesg -T` computes, with the same caveat: time spent suspended is not
//! in the printk clock, so lines after a resume print early by that much.

use crate::time::format_rfc3339;
use chrono::DateTime;
use chrono_tz::Tz;
use lpo_format::kmsg::{self, KmsgRecord};
use lpo_format::RingReader;
use serde_json::{json, Value};

const SEC: i64 = 1_000_000_000;
/// Default window for `--at TIME`: from this long before TIME...
pub const AT_BEFORE_NS: i64 = 300 * SEC;
/// ...to this long after it.
pub const AT_AFTER_NS: i64 = 5 * SEC;
/// The summary lists notable lines this close to TIME.
pub const SUMMARY_HALF_WINDOW_NS: i64 = 60 * SEC;
/// And at most this many of them (the closest to TIME).
pub const SUMMARY_MAX_LINES: usize = 20;

pub const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];
const FACILITIES: [&str; 12] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp",
];

/// Text that marks a line as notable whatever its level.
pub const NOTABLE: &[&str] = &[
    "Out of memory",
    "oom-kill",
    "Killed process",
    "nf_conntrack: table full",
    "blocked for more than",
    "I/O error",
    "soft lockup",
    "segfault",
];

/// One recorded kernel log line with its wall time.
#[derive(Debug, Clone)]
pub struct KmsgLine {
    /// Unix ns: the sample's boot time plus the kernel timestamp.
    pub wall_ns: i64,
    pub rec: KmsgRecord,
}

/// `dmesg` options.
#[derive(Debug, Clone, Default)]
pub struct DmesgOpts {
    /// `-r`: `<prio>[seconds.micros] message`, like `dmesg -r`.
    pub raw: bool,
    /// `-x`: a `facility:level : ` prefix, like `dmesg -x`.
    pub decode: bool,
    /// `--level`: bit N set = level N shown (None: all).
    pub levels: Option<u8>,
}

fn level_of(name: &str) -> Option<u8> {
    LEVELS
        .iter()
        .position(|l| *l == name)
        .or_else(|| match name {
            "panic" => Some(0),
            "error" => Some(3),
            "warning" => Some(4),
            _ => name.parse::<usize>().ok().filter(|&n| n < 8),
        })
        .map(|n| n as u8)
}

/// Parse a `--level` list: `err,warn`; `warn+` is warn and more severe,
/// `+info` info and less severe (as util-linux dmesg).
pub fn parse_levels(list: &str) -> Result<u8, String> {
    let mut mask = 0u8;
    for item in list.split(',').filter(|s| !s.is_empty()) {
        let (name, plus) = if let Some(n) = item.strip_suffix('+') {
            (n, 1)
        } else if let Some(n) = item.strip_prefix('+') {
            (n, 2)
        } else {
            (item, 0)
        };
        let l = level_of(name).ok_or_else(|| {
            format!(
                "dmesg: --level {item:?}: levels are {} (or 0-7, with + for a range)",
                LEVELS.join(", ")
            )
        })?;
        mask |= match plus {
            1 => ((1u16 << (l + 1)) - 1) as u8,
            2 => !((1u8 << l) - 1),
            _ => 1 << l,
        };
    }
    if mask == 0 {
        return Err("dmesg: --level needs a list, e.g. err,warn".into());
    }
    Ok(mask)
}

/// Parse the view's arguments.
pub fn parse_args<'a>(mut it: impl Iterator<Item = &'a String>) -> Result<DmesgOpts, String> {
    let mut o = DmesgOpts::default();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-r" | "--raw" => o.raw = true,
            "-x" | "--decode" => o.decode = true,
            "-T" | "--ctime" | "-L" | "--color=never" => {}
            "-l" | "--level" => {
                let v = it
                    .next()
                    .ok_or("dmesg: --level needs a list, e.g. err,warn")?;
                o.levels = Some(o.levels.unwrap_or(0) | parse_levels(v)?);
            }
            a if a.starts_with("--level=") => {
                o.levels = Some(o.levels.unwrap_or(0) | parse_levels(&a[8..])?);
            }
            a => {
                return Err(format!(
                    "dmesg: unknown argument {a:?} (known: -r, -x, --level LIST, -T)"
                ))
            }
        }
    }
    Ok(o)
}

/// Kernel log lines with wall times in [from, to], read from the samples
/// whose keys lie in [k_from, k_to]; `lost` counts records the kernel
/// overwrote before the recorder read them, in those samples. None when the
/// recording has no kmsg stream.
pub fn load(
    r: &RingReader,
    (k_from, k_to): (i64, i64),
    (from, to): (i64, i64),
    bad: &mut Vec<String>,
) -> Option<(Vec<KmsgLine>, u64)> {
    let i = r.stream("kmsg")?;
    let mut out = Vec::new();
    let mut lost = 0;
    for b in r.batches(i, k_from, k_to, &mut |e| bad.push(e.to_string())) {
        let Some(b) = b.into_log() else { continue };
        for s in b
            .samples
            .iter()
            .filter(|s| s.key >= k_from && s.key <= k_to)
        {
            let p = match kmsg::decode(&s.payload) {
                Ok(p) => p,
                Err(e) => {
                    bad.push(e.to_string());
                    continue;
                }
            };
            lost += p.lost;
            let boot = s.wall.saturating_sub(s.mono);
            for rec in p.records {
                let us = i64::try_from(rec.usec).unwrap_or(i64::MAX / 1000);
                let wall_ns = boot.saturating_add(us.saturating_mul(1000));
                if (from..=to).contains(&wall_ns) {
                    out.push(KmsgLine { wall_ns, rec });
                }
            }
        }
    }
    Some((out, lost))
}

/// Load the window [from, to] (wall ns): samples are looked up by key from
/// the key of `from` (less 2 s) to the key of `to` plus the drain lag (a
/// record is stored by the first drain after it was logged).
pub fn load_window(
    r: &RingReader,
    (from, to): (i64, i64),
    interval_ns: i64,
    key_of: &mut dyn FnMut(i64) -> i64,
    bad: &mut Vec<String>,
) -> Option<(Vec<KmsgLine>, u64)> {
    let lag = interval_ns.saturating_mul(4).max(30 * SEC);
    let k_from = key_of(from).saturating_sub(2 * SEC);
    let k_to = key_of(to).saturating_add(lag);
    load(r, (k_from, k_to), (from, to), bad)
}

/// `lpo replay … dmesg`: the lines of [from, to] (for `--at`, `at`
/// is `to` and the window is the 5 minutes before it to 5 s after). Err is
/// a "nothing recorded" message.
#[allow(clippy::too_many_arguments)]
pub fn view(
    r: &RingReader,
    o: &DmesgOpts,
    at: bool,
    (from, to): (i64, i64),
    interval_ns: i64,
    tz: &Tz,
    json: bool,
    key_of: &mut dyn FnMut(i64) -> i64,
    warn: &mut dyn FnMut(String),
) -> Result<String, String> {
    let (from, to) = if at {
        (to - AT_BEFORE_NS, to + AT_AFTER_NS)
    } else {
        (from, to)
    };
    let mut bad = Vec::new();
    let loaded = load_window(r, (from, to), interval_ns, key_of, &mut bad);
    for b in &bad {
        warn(format!("warning: skipped a damaged block: {b}"));
    }
    let (lines, lost) = loaded.ok_or_else(|| {
        "dmesg: this recording has no kernel log (recorded by an lpo without the kmsg stream)"
            .to_string()
    })?;
    if lost > 0 {
        warn(format!(
            "note: {lost} kernel log records were overwritten by the kernel before lpo read them"
        ));
    }
    if lines.is_empty() {
        warn(format!(
            "note: no kernel log lines recorded between {} and {}",
            crate::time::format_local(from, tz),
            crate::time::format_local(to, tz)
        ));
    }
    Ok(if json {
        let mut s = serde_json::to_string_pretty(&render_json(&lines, o, tz)).unwrap_or_default();
        s.push('\n');
        s
    } else {
        render_text(&lines, o, tz)
    })
}

/// The message as dmesg prints it: control bytes as `\xNN`.
pub fn text(msg: &[u8]) -> String {
    let s = String::from_utf8_lossy(msg);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `Fri Nov 27 16:12:26 2026`, as `dmesg -T`.
pub fn ctime(ns: i64, tz: &Tz) -> String {
    DateTime::from_timestamp_nanos(ns)
        .with_timezone(tz)
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

fn level_name(r: &KmsgRecord) -> &'static str {
    LEVELS[r.level() as usize]
}

fn facility_name(r: &KmsgRecord) -> String {
    FACILITIES
        .get(r.facility() as usize)
        .map(|s| s.to_string())
        .unwrap_or_else(|| {
            if (16..24).contains(&r.facility()) {
                format!("local{}", r.facility() - 16)
            } else {
                r.facility().to_string()
            }
        })
}

fn shown<'a>(lines: &'a [KmsgLine], o: &'a DmesgOpts) -> impl Iterator<Item = &'a KmsgLine> {
    lines
        .iter()
        .filter(move |l| o.levels.is_none_or(|m| m & (1 << l.rec.level()) != 0))
}

/// One line of text output.
fn line(l: &KmsgLine, o: &DmesgOpts, tz: &Tz) -> String {
    let msg = text(&l.rec.msg);
    let prefix = if o.decode {
        format!("{:<6}:{:<6}: ", facility_name(&l.rec), level_name(&l.rec))
    } else {
        String::new()
    };
    if o.raw {
        let (s, us) = (l.rec.usec / 1_000_000, l.rec.usec % 1_000_000);
        format!("{prefix}<{}>[{s:>5}.{us:06}] {msg}", l.rec.prio)
    } else {
        format!("{prefix}[{}] {msg}", ctime(l.wall_ns, tz))
    }
}

/// The `dmesg` view.
pub fn render_text(lines: &[KmsgLine], o: &DmesgOpts, tz: &Tz) -> String {
    let mut out = String::new();
    for l in shown(lines, o) {
        out.push_str(&line(l, o, tz));
        out.push('\n');
    }
    out
}

fn line_json(l: &KmsgLine, tz: &Tz) -> Value {
    json!({
        "time": format_rfc3339(l.wall_ns, tz),
        "wall_ns": l.wall_ns,
        "ktime_us": l.rec.usec,
        "seq": l.rec.seq,
        "facility": facility_name(&l.rec),
        "level": level_name(&l.rec),
        "message": text(&l.rec.msg),
        "dict": l.rec.dict.iter().map(|d| text(d)).collect::<Vec<_>>(),
    })
}

pub fn render_json(lines: &[KmsgLine], o: &DmesgOpts, tz: &Tz) -> Value {
    Value::Array(shown(lines, o).map(|l| line_json(l, tz)).collect())
}

/// Is this line worth the summary's attention?
pub fn is_notable(r: &KmsgRecord) -> bool {
    if r.level() <= 4 {
        return true;
    }
    let t = String::from_utf8_lossy(&r.msg);
    NOTABLE.iter().any(|p| t.contains(p))
}

/// The notable lines within ±60 s of `at`, at most SUMMARY_MAX_LINES (the
/// closest to `at`), in time order; and how many were left out.
pub fn notable_near(lines: &[KmsgLine], at: i64) -> (Vec<&KmsgLine>, usize) {
    let mut v: Vec<&KmsgLine> = lines
        .iter()
        .filter(|l| (l.wall_ns - at).abs() <= SUMMARY_HALF_WINDOW_NS && is_notable(&l.rec))
        .collect();
    let n = v.len();
    if n > SUMMARY_MAX_LINES {
        v.sort_by_key(|l| (l.wall_ns - at).abs());
        v.truncate(SUMMARY_MAX_LINES);
        v.sort_by_key(|l| (l.wall_ns, l.rec.seq));
    }
    (v, n.saturating_sub(SUMMARY_MAX_LINES))
}

/// The summary's section.
pub fn summary_text(lines: &[KmsgLine], at: i64, tz: &Tz) -> String {
    let (v, more) = notable_near(lines, at);
    let mut out = format!("\nKernel events near {} (±60 s)\n", ctime(at, tz));
    if v.is_empty() {
        out.push_str("none\n");
    }
    for l in v {
        out.push_str(&format!(
            "[{}] {:<6} {}\n",
            ctime(l.wall_ns, tz),
            level_name(&l.rec),
            text(&l.rec.msg)
        ));
    }
    if more > 0 {
        out.push_str(&format!(
            "… and {more} more (lpo replay --at TIME dmesg --level warn+)\n"
        ));
    }
    out
}

pub fn summary_json(lines: &[KmsgLine], at: i64, tz: &Tz) -> Value {
    Value::Array(
        notable_near(lines, at)
            .0
            .into_iter()
            .map(|l| line_json(l, tz))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(wall_s: i64, prio: u32, msg: &str) -> KmsgLine {
        KmsgLine {
            wall_ns: wall_s * SEC,
            rec: KmsgRecord {
                prio,
                seq: wall_s as u64,
                usec: 5_140_900,
                msg: msg.as_bytes().to_vec(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn levels() {
        assert_eq!(parse_levels("err,warn").unwrap(), 0b11000);
        assert_eq!(parse_levels("warn+").unwrap(), 0b11111);
        assert_eq!(parse_levels("+info").unwrap(), 0b1100_0000);
        assert_eq!(parse_levels("3").unwrap(), 0b1000);
        assert!(parse_levels("loud").is_err());
        assert!(parse_levels("").is_err());
    }

    #[test]
    fn formats_like_dmesg() {
        let tz = chrono_tz::UTC;
        // 2026-11-27 16:12:26 UTC
        let lines = [
            l(1_795_795_946, 3, "disk: I/O error\x1b"),
            l(1_795_795_947, 6, "ok"),
        ];
        let o = DmesgOpts::default();
        assert_eq!(
            render_text(&lines, &o, &tz),
            "[Fri Nov 27 16:12:26 2026] disk: I/O error\\x1b\n[Fri Nov 27 16:12:27 2026] ok\n"
        );
        let o = DmesgOpts {
            raw: true,
            levels: Some(parse_levels("err").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            render_text(&lines, &o, &tz),
            "<3>[    5.140900] disk: I/O error\\x1b\n"
        );
        let o = DmesgOpts {
            decode: true,
            ..Default::default()
        };
        assert!(render_text(&lines, &o, &tz).starts_with("kern  :err   : [Fri Nov 27"));
        let j = render_json(&lines, &DmesgOpts::default(), &tz);
        assert_eq!(j[0]["level"], "err");
        assert_eq!(j[1]["time"], "2026-11-27T16:12:27Z");
    }

    #[test]
    fn notable_lines_near_time() {
        let at = 1_000;
        let lines = [
            l(900, 3, "too early"),
            l(950, 6, "Out of memory: Killed process 42 (big)"),
            l(960, 6, "eth0: link up"),
            l(990, 4, "a warning"),
            l(
                1_050,
                6,
                "INFO: task x:1 blocked for more than 120 seconds.",
            ),
            l(1_070, 3, "too late"),
        ];
        let (v, more) = notable_near(&lines, at * SEC);
        let msgs: Vec<_> = v.iter().map(|l| text(&l.rec.msg)).collect();
        assert_eq!(
            msgs,
            [
                "Out of memory: Killed process 42 (big)",
                "a warning",
                "INFO: task x:1 blocked for more than 120 seconds."
            ]
        );
        assert_eq!(more, 0);
        let many: Vec<_> = (0..30).map(|i| l(at + i, 3, "x")).collect();
        let (v, more) = notable_near(&many, at * SEC);
        assert_eq!((v.len(), more), (SUMMARY_MAX_LINES, 10));
        assert_eq!(v[0].wall_ns, at * SEC);
    }
}
