//! The TIME grammar of `lpo replay`: parsing `--at/--from/--to` style times,
//! durations and sizes, and formatting instants in the recorded host's zone.
//!
//! Self-contained: depends only on `chrono`, `chrono-tz` and `thiserror`.
//!
//! Accepted time forms (see [`parse_time`]):
//!
//! | form                         | meaning                                             |
//! |------------------------------|-----------------------------------------------------|
//! | `14:22`, `14:22:05`, `14:22:05.250` | latest occurrence inside the recording (in `tz`) |
//! | `2026-11-27`                 | midnight of that day in `tz`                         |
//! | `2026-11-27 14:22[:05[.250]]`, `2026-11-27T14:22:05` | that wall-clock time in `tz` |
//! | RFC 3339 (`…Z`, `…+09:00`)   | that instant                                         |
//! | `-5m`, `-90s`, `-1h30m`      | `now` minus the duration                             |
//! | `5m ago`, `1h 30m ago`       | same                                                 |
//! | `now`                        | `ctx.now_ns`                                         |
//! | `@1732717325`, `@1732717325.5` | seconds since the Unix epoch                       |

use std::time::Duration;

use chrono::offset::LocalResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone};
use chrono_tz::Tz;

/// What relative and clock-only times are resolved against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeContext {
    /// "Now" for relative forms (`-5m`, `5m ago`, `now`), unix ns.
    pub now_ns: i64,
    /// The recorded host's zone, or UTC with `--utc`.
    pub tz: Tz,
    /// First sample of the recording, unix ns.
    pub first_ns: i64,
    /// Last sample of the recording, unix ns.
    pub last_ns: i64,
}

const TIME_FORMS: &str =
    "expected HH:MM[:SS], YYYY-MM-DD HH:MM[:SS], RFC 3339, -5m, \"5m ago\" or @UNIX";
const DURATION_FORMS: &str = "expected e.g. 200ms, 1.5s, 10m, 2h, 1d or 1h30m";
const SIZE_FORMS: &str = "expected e.g. 4096, 512KiB, 64MiB, 1G (=GiB) or 10MB (=10^7)";

/// Longest input accepted; anything longer is rejected before parsing.
const MAX_INPUT: usize = 100;

/// Errors from [`parse_time`], [`parse_duration`] and [`parse_size`].
///
/// Every message is a single line and quotes the offending input (truncated
/// and escaped, so control characters or huge inputs cannot break the line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not any known time form.
    #[error("bad time {input}: {TIME_FORMS}")]
    Unrecognized { input: String },
    /// A known form with a bad field, e.g. minute 61.
    #[error("bad time {input}: {reason}")]
    Invalid { input: String, reason: String },
    /// A wall-clock time skipped by a DST change.
    #[error(
        "bad time {input}: {local} does not exist in {tz} (skipped by a DST change); pick a time outside the gap or give an offset"
    )]
    Nonexistent {
        input: String,
        local: String,
        tz: String,
    },
    /// Valid syntax, but outside what i64 nanoseconds since 1970 can hold.
    #[error("bad time {input}: out of range (must lie between years 1677 and 2262)")]
    OutOfRange { input: String },
    #[error("bad duration {input}: {reason}; {DURATION_FORMS}")]
    BadDuration { input: String, reason: String },
    #[error("bad size {input}: {reason}; {SIZE_FORMS}")]
    BadSize { input: String, reason: String },
}

/// Quote an input for an error message: escaped (one line) and truncated.
fn quote(s: &str) -> String {
    const SHOW: usize = 40;
    if s.chars().count() > SHOW {
        let head: String = s.chars().take(SHOW).collect();
        format!("{:?}… ({} bytes)", head, s.len())
    } else {
        format!("{s:?}")
    }
}

fn invalid(input: &str, reason: impl Into<String>) -> TimeError {
    TimeError::Invalid {
        input: quote(input),
        reason: reason.into(),
    }
}

fn unrecognized(input: &str) -> TimeError {
    TimeError::Unrecognized {
        input: quote(input),
    }
}

fn out_of_range(input: &str) -> TimeError {
    TimeError::OutOfRange {
        input: quote(input),
    }
}

// ---------------------------------------------------------------------------
// parse_time
// ---------------------------------------------------------------------------

/// Parse a TIME argument into unix nanoseconds.
///
/// * Relative forms (`-5m`, `5m ago`, `now`) are relative to `ctx.now_ns`.
/// * A bare clock time (`14:22`) means its **latest occurrence not after
///   `ctx.last_ns`**, looking at the date of `last_ns` in `ctx.tz` and then the
///   day before. In a DST fold both instants are candidates (so the later one
///   wins when both are in range). The result may lie before `first_ns`: the
///   caller reports out-of-range. If the clock time falls in a DST gap on the
///   date it would resolve to, that is an error naming the time.
/// * A full local date-time in a DST fold resolves to the **earlier** instant
///   (as `date -d` does); give an offset (RFC 3339) to pick the other one. In a
///   DST gap it is an error.
pub fn parse_time(s: &str, ctx: &TimeContext) -> Result<i64, TimeError> {
    if s.len() > MAX_INPUT {
        return Err(invalid(
            s,
            format!("too long (more than {MAX_INPUT} bytes)"),
        ));
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(unrecognized(s));
    }
    let lower = t.to_ascii_lowercase();

    if lower == "now" {
        return Ok(ctx.now_ns);
    }
    if let Some(rest) = t.strip_prefix('@') {
        return parse_unix(rest, s);
    }
    if let Some(rest) = t.strip_prefix('-') {
        return relative(rest, s, ctx);
    }
    if let Some(rest) = lower.strip_suffix("ago") {
        let rest = rest.trim_end();
        if rest.is_empty() {
            return Err(invalid(
                s,
                "missing duration before \"ago\" (e.g. \"5m ago\")",
            ));
        }
        return relative(rest, s, ctx);
    }

    let b = t.as_bytes();
    // A date starts with four digits and a dash.
    if b.len() >= 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return parse_date_time(t, s, ctx);
    }
    if b.first().is_some_and(u8::is_ascii_digit) && t.contains(':') {
        let clock = parse_clock(t, s)?;
        return resolve_clock(clock, s, ctx);
    }
    // A bare duration ("5m") is a common slip for "-5m": say so.
    if b.first().is_some_and(u8::is_ascii_digit) && parse_duration(t).is_ok() {
        return Err(invalid(
            s,
            format!("a duration alone is not a time; did you mean \"-{t}\" or \"{t} ago\"?"),
        ));
    }
    Err(unrecognized(s))
}

fn relative(dur: &str, input: &str, ctx: &TimeContext) -> Result<i64, TimeError> {
    let d = parse_duration(dur).map_err(|e| match e {
        TimeError::BadDuration { reason, .. } => {
            invalid(input, format!("{reason}; {DURATION_FORMS}"))
        }
        other => other,
    })?;
    let ns = i64::try_from(d.as_nanos()).map_err(|_| out_of_range(input))?;
    ctx.now_ns
        .checked_sub(ns)
        .ok_or_else(|| out_of_range(input))
}

/// `@SECONDS[.FRACTION]`, optionally negative.
fn parse_unix(rest: &str, input: &str) -> Result<i64, TimeError> {
    let (neg, body) = match rest.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, rest),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits_ok = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    if int_part.is_empty() || !digits_ok(int_part) {
        return Err(invalid(
            input,
            "expected @ followed by seconds since 1970, e.g. @1732717325 or @1732717325.5",
        ));
    }
    let mut frac_ns: i64 = 0;
    if let Some(f) = frac_part {
        if f.is_empty() || !digits_ok(f) {
            return Err(invalid(input, "bad fraction after the decimal point"));
        }
        // Only nanosecond precision is kept.
        for (i, c) in f.bytes().take(9).enumerate() {
            frac_ns += i64::from(c - b'0') * 10_i64.pow(8 - i as u32);
        }
    }
    let secs: i64 = int_part.parse().map_err(|_| out_of_range(input))?;
    let ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(|| out_of_range(input))?;
    Ok(if neg { -ns } else { ns })
}

/// A parsed wall-clock time of day.
#[derive(Debug, Clone, Copy)]
struct Clock {
    h: u32,
    m: u32,
    s: u32,
    nano: u32,
}

impl Clock {
    fn naive(self) -> NaiveTime {
        // Fields are range-checked in parse_clock.
        NaiveTime::from_hms_nano_opt(self.h, self.m, self.s, self.nano).unwrap_or(NaiveTime::MIN)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// `H:MM`, `HH:MM`, `HH:MM:SS`, `HH:MM:SS.fff` (1-9 fraction digits).
fn parse_clock(t: &str, input: &str) -> Result<Clock, TimeError> {
    let (main, frac) = match t.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (t, None),
    };
    let parts: Vec<&str> = main.split(':').collect();
    let shape_ok = (parts.len() == 2 || parts.len() == 3)
        && all_digits(parts[0])
        && parts[0].len() <= 2
        && parts[1..].iter().all(|p| all_digits(p) && p.len() == 2);
    if !shape_ok || (frac.is_some() && parts.len() != 3) {
        return Err(unrecognized(input));
    }
    let num = |p: &str| p.parse::<u32>().unwrap_or(u32::MAX);
    let (h, m) = (num(parts[0]), num(parts[1]));
    let s = parts.get(2).map_or(0, |p| num(p));
    if h > 23 {
        return Err(invalid(input, format!("hour {h} is out of range 00-23")));
    }
    if m > 59 {
        return Err(invalid(input, format!("minute {m} is out of range 00-59")));
    }
    if s > 59 {
        return Err(invalid(input, format!("second {s} is out of range 00-59")));
    }
    let mut nano = 0u32;
    if let Some(f) = frac {
        if !all_digits(f) || f.len() > 9 {
            return Err(invalid(input, "fraction of a second must be 1 to 9 digits"));
        }
        for (i, c) in f.bytes().enumerate() {
            nano += u32::from(c - b'0') * 10_u32.pow(8 - i as u32);
        }
    }
    Ok(Clock { h, m, s, nano })
}

/// `YYYY-MM-DD`
fn parse_date(d: &str, input: &str) -> Result<NaiveDate, TimeError> {
    let parts: Vec<&str> = d.split('-').collect();
    if parts.len() != 3
        || parts[0].len() != 4
        || parts[1].len() != 2
        || parts[2].len() != 2
        || !parts.iter().all(|p| all_digits(p))
    {
        return Err(unrecognized(input));
    }
    let y: i32 = parts[0].parse().unwrap_or(0);
    let mo: u32 = parts[1].parse().unwrap_or(0);
    let da: u32 = parts[2].parse().unwrap_or(0);
    if !(1..=12).contains(&mo) {
        return Err(invalid(input, format!("month {mo} is out of range 01-12")));
    }
    NaiveDate::from_ymd_opt(y, mo, da)
        .ok_or_else(|| invalid(input, format!("{d} is not a valid date")))
}

/// Split a trailing UTC offset off a time string: `Z`, `+09:00`, `-0500`, `+09`.
/// Returns (time part, offset seconds east of UTC).
fn split_offset<'a>(t: &'a str, input: &str) -> Result<(&'a str, Option<i32>), TimeError> {
    if let Some(rest) = t.strip_suffix(['Z', 'z']) {
        return Ok((rest, Some(0)));
    }
    let Some(pos) = t.rfind(['+', '-']) else {
        return Ok((t, None));
    };
    let (time, off) = t.split_at(pos);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let body = &off[1..];
    let (hh, mm) = match body.len() {
        2 if all_digits(body) => (body, "00"),
        4 if all_digits(body) => body.split_at(2),
        5 if body.as_bytes()[2] == b':' => (&body[..2], &body[3..]),
        _ => return Err(invalid(input, "bad UTC offset (use Z, +HH:MM or -HH:MM)")),
    };
    if !all_digits(hh) || !all_digits(mm) {
        return Err(invalid(input, "bad UTC offset (use Z, +HH:MM or -HH:MM)"));
    }
    let (h, m): (i32, i32) = (hh.parse().unwrap_or(99), mm.parse().unwrap_or(99));
    if h > 23 || m > 59 {
        return Err(invalid(input, format!("UTC offset {off} is out of range")));
    }
    Ok((time, Some(sign * (h * 3600 + m * 60))))
}

fn parse_date_time(t: &str, input: &str, ctx: &TimeContext) -> Result<i64, TimeError> {
    // Date alone: midnight local.
    let (date_s, rest) = match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], Some(t[i + 1..].trim_start())),
        None => (t, None),
    };
    let date = parse_date(date_s, input)?;
    let Some(rest) = rest else {
        return local_to_ns(date.and_time(NaiveTime::MIN), input, &ctx.tz);
    };
    let (time_s, offset) = split_offset(rest.trim_end(), input)?;
    let clock = parse_clock(time_s.trim_end(), input)?;
    let ndt = date.and_time(clock.naive());
    match offset {
        Some(off_secs) => {
            let utc_secs = ndt
                .and_utc()
                .timestamp()
                .checked_sub(i64::from(off_secs))
                .ok_or_else(|| out_of_range(input))?;
            utc_secs
                .checked_mul(1_000_000_000)
                .and_then(|v| v.checked_add(i64::from(clock.nano)))
                .ok_or_else(|| out_of_range(input))
        }
        None => local_to_ns(ndt, input, &ctx.tz),
    }
}

fn to_ns<T: TimeZone>(dt: &DateTime<T>, input: &str) -> Result<i64, TimeError> {
    dt.timestamp_nanos_opt().ok_or_else(|| out_of_range(input))
}

/// All instants at which the local wall clock of `tz` shows `ndt`
/// (0 in a gap, 2 in a fold), in ascending order.
fn local_candidates(ndt: NaiveDateTime, tz: &Tz) -> Vec<DateTime<Tz>> {
    match tz.from_local_datetime(&ndt) {
        LocalResult::Single(a) => vec![a],
        LocalResult::Ambiguous(a, b) => {
            if a <= b {
                vec![a, b]
            } else {
                vec![b, a]
            }
        }
        LocalResult::None => Vec::new(),
    }
}

/// A full local date-time: the earlier instant in a fold, an error in a gap.
fn local_to_ns(ndt: NaiveDateTime, input: &str, tz: &Tz) -> Result<i64, TimeError> {
    match local_candidates(ndt, tz).first() {
        Some(dt) => to_ns(dt, input),
        None => Err(TimeError::Nonexistent {
            input: quote(input),
            local: ndt.format("%Y-%m-%d %H:%M:%S").to_string(),
            tz: tz.name().to_string(),
        }),
    }
}

/// Latest occurrence of `clock` not after `ctx.last_ns` (see [`parse_time`]).
fn resolve_clock(clock: Clock, input: &str, ctx: &TimeContext) -> Result<i64, TimeError> {
    let tz = ctx.tz;
    let last_local = DateTime::from_timestamp_nanos(ctx.last_ns).with_timezone(&tz);
    let mut date = last_local.date_naive();
    // Every instant of local date D-1 precedes local midnight of D, which is
    // <= last_ns; so two dates always suffice (three for safety).
    for _ in 0..3 {
        let ndt = date.and_time(clock.naive());
        let cands = local_candidates(ndt, &tz);
        if cands.is_empty() {
            return Err(TimeError::Nonexistent {
                input: quote(input),
                local: ndt.format("%Y-%m-%d %H:%M:%S").to_string(),
                tz: tz.name().to_string(),
            });
        }
        let mut best: Option<i64> = None;
        for c in &cands {
            let ns = to_ns(c, input)?;
            if ns <= ctx.last_ns {
                best = Some(best.map_or(ns, |b: i64| b.max(ns)));
            }
        }
        if let Some(ns) = best {
            return Ok(ns);
        }
        date = date.pred_opt().ok_or_else(|| out_of_range(input))?;
    }
    Err(out_of_range(input))
}

// ---------------------------------------------------------------------------
// parse_duration
// ---------------------------------------------------------------------------

fn unit_ns(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" | "nsec" | "nsecs" => 1,
        "us" | "µs" | "μs" | "usec" | "usecs" => 1_000,
        "ms" | "msec" | "msecs" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000_000_000,
        "d" | "day" | "days" => 86_400_000_000_000,
        "w" | "week" | "weeks" => 604_800_000_000_000,
        _ => return None,
    })
}

fn bad_duration(input: &str, reason: impl Into<String>) -> TimeError {
    TimeError::BadDuration {
        input: quote(input),
        reason: reason.into(),
    }
}

/// Parse a duration: one or more `NUMBER UNIT` pairs, e.g. `200ms`, `1.5s`,
/// `500us`, `10m`, `2h`, `1d`, `1h30m`, `1h 30m`. Units: ns, us (µs), ms,
/// s, m (min), h, d, w, plus their long names. A unit is required.
/// Fractions are exact (decimal) and truncated to whole nanoseconds.
pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    if s.len() > MAX_INPUT {
        return Err(bad_duration(
            s,
            format!("too long (more than {MAX_INPUT} bytes)"),
        ));
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(bad_duration(s, "empty"));
    }
    let lower = t.to_lowercase();
    let mut rest = lower.as_str();
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // number
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() {
            let bad: String = rest.chars().take(10).collect();
            return Err(bad_duration(s, format!("expected a number at {bad:?}")));
        }
        rest = rest[num_len..].trim_start();
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        if unit.is_empty() {
            return Err(bad_duration(s, format!("missing unit after {num}")));
        }
        let Some(per) = unit_ns(unit) else {
            let shown: String = unit.chars().take(10).collect();
            return Err(bad_duration(
                s,
                format!("unknown unit {shown:?} (use ns, us, ms, s, m, h, d or w)"),
            ));
        };
        let (ip, fp) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if (ip.is_empty() && fp.is_empty())
            || fp.contains('.')
            || !ip.bytes().all(|c| c.is_ascii_digit())
        {
            return Err(bad_duration(s, format!("bad number {num:?}")));
        }
        if ip.len() > 25 || fp.len() > 25 {
            return Err(bad_duration(s, "number too large"));
        }
        let int: u128 = if ip.is_empty() {
            0
        } else {
            ip.parse().unwrap_or(u128::MAX)
        };
        let mut value = int
            .checked_mul(per)
            .ok_or_else(|| bad_duration(s, "too large"))?;
        if !fp.is_empty() {
            let frac: u128 = fp.parse().unwrap_or(0);
            let scale = 10u128.pow(fp.len() as u32);
            value = value
                .checked_add(
                    frac.checked_mul(per)
                        .ok_or_else(|| bad_duration(s, "too large"))?
                        / scale,
                )
                .ok_or_else(|| bad_duration(s, "too large"))?;
        }
        total = total
            .checked_add(value)
            .ok_or_else(|| bad_duration(s, "too large"))?;
    }
    let ns = u64::try_from(total).map_err(|_| bad_duration(s, "too large (over 584 years)"))?;
    Ok(Duration::from_nanos(ns))
}

// ---------------------------------------------------------------------------
// parse_size
// ---------------------------------------------------------------------------

fn bad_size(input: &str, reason: impl Into<String>) -> TimeError {
    TimeError::BadSize {
        input: quote(input),
        reason: reason.into(),
    }
}

/// Parse a byte size. Binary units: `K`, `M`, `G`, `T`, `P` (alone or with
/// `iB`, e.g. `512KiB`, `1G` = 1 GiB). Decimal units: `KB`, `MB`, `GB`, `TB`,
/// `PB` (`10MB` = 10^7). `B` or no unit: bytes. Case-insensitive, optional
/// space, optional decimal fraction (`1.5GiB`, result truncated to bytes).
pub fn parse_size(s: &str) -> Result<u64, TimeError> {
    if s.len() > MAX_INPUT {
        return Err(bad_size(
            s,
            format!("too long (more than {MAX_INPUT} bytes)"),
        ));
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(bad_size(s, "empty"));
    }
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..num_len], t[num_len..].trim());
    let (ip, fp) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if num.is_empty() || (ip.is_empty() && fp.is_empty()) || fp.contains('.') {
        return Err(bad_size(s, "expected a number"));
    }
    if ip.len() > 25 || fp.len() > 25 {
        return Err(bad_size(s, "number too large"));
    }
    let mult: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "ki" => 1 << 10,
        "m" | "mib" | "mi" => 1 << 20,
        "g" | "gib" | "gi" => 1 << 30,
        "t" | "tib" | "ti" => 1 << 40,
        "p" | "pib" | "pi" => 1 << 50,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "pb" => 1_000_000_000_000_000,
        _ => {
            let shown: String = unit.chars().take(10).collect();
            return Err(bad_size(
                s,
                format!("unknown unit {shown:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"),
            ));
        }
    };
    let int: u128 = if ip.is_empty() {
        0
    } else {
        ip.parse().unwrap_or(u128::MAX)
    };
    let mut bytes = int
        .checked_mul(mult)
        .ok_or_else(|| bad_size(s, "too large"))?;
    if !fp.is_empty() {
        let frac: u128 = fp.parse().unwrap_or(0);
        let scale = 10u128.pow(fp.len() as u32);
        bytes = bytes
            .checked_add(
                frac.checked_mul(mult)
                    .ok_or_else(|| bad_size(s, "too large"))?
                    / scale,
            )
            .ok_or_else(|| bad_size(s, "too large"))?;
    }
    u64::try_from(bytes).map_err(|_| bad_size(s, "too large (over 16 EiB)"))
}

// ---------------------------------------------------------------------------
// formatting
// ---------------------------------------------------------------------------

/// `2026-11-27 14:22:05` in `tz` (seconds truncated toward the past).
pub fn format_local(ns: i64, tz: &Tz) -> String {
    DateTime::from_timestamp_nanos(ns)
        .with_timezone(tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// RFC 3339 with the zone's offset at that instant, seconds precision
/// (truncated): `2026-11-27T23:22:05+09:00`; a zero offset prints as `Z`.
pub fn format_rfc3339(ns: i64, tz: &Tz) -> String {
    // chrono keeps the sub-second part non-negative, so `Secs` floors.
    DateTime::from_timestamp_nanos(ns)
        .with_timezone(tz)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Unix ns of a UTC wall time.
    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
            .and_utc()
            .timestamp()
            * S
    }

    fn ctx(tz: Tz, first: i64, last: i64) -> TimeContext {
        TimeContext {
            now_ns: last + 3600 * S,
            tz,
            first_ns: first,
            last_ns: last,
        }
    }

    /// A Tokyo recording 2026-11-27 09:00..15:00 JST (= 00:00..06:00 UTC).
    fn tokyo() -> TimeContext {
        ctx(
            chrono_tz::Asia::Tokyo,
            utc(2026, 11, 27, 0, 0, 0),
            utc(2026, 11, 27, 6, 0, 0),
        )
    }

    fn msg(r: Result<i64, TimeError>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn clock_forms_tokyo() {
        let c = tokyo();
        assert_eq!(
            parse_time("14:22", &c).unwrap(),
            utc(2026, 11, 27, 5, 22, 0)
        );
        assert_eq!(
            parse_time("14:22:05", &c).unwrap(),
            utc(2026, 11, 27, 5, 22, 5)
        );
        assert_eq!(
            parse_time("14:22:05.250", &c).unwrap(),
            utc(2026, 11, 27, 5, 22, 5) + 250_000_000
        );
        assert_eq!(
            parse_time("14:22:05.000000001", &c).unwrap(),
            utc(2026, 11, 27, 5, 22, 5) + 1
        );
        assert_eq!(parse_time("9:05", &c).unwrap(), utc(2026, 11, 27, 0, 5, 0));
        assert_eq!(
            parse_time("  14:22  ", &c).unwrap(),
            utc(2026, 11, 27, 5, 22, 0)
        );
        // 16:00 JST today is after last_ns (15:00): latest occurrence is yesterday,
        // which is before the recording: returned anyway, caller reports.
        let y = parse_time("16:00", &c).unwrap();
        assert_eq!(y, utc(2026, 11, 26, 7, 0, 0));
        assert!(y < c.first_ns);
        // Exactly last_ns is inside.
        assert_eq!(parse_time("15:00", &c).unwrap(), c.last_ns);
    }

    #[test]
    fn date_time_forms() {
        let c = tokyo();
        let want = utc(2026, 11, 27, 5, 22, 5);
        assert_eq!(parse_time("2026-11-27 14:22:05", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27T14:22:05", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27t14:22:05", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27  14:22:05", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27 14:22", &c).unwrap(), want - 5 * S);
        assert_eq!(
            parse_time("2026-11-27 14:22:05.5", &c).unwrap(),
            want + 500_000_000
        );
        assert_eq!(
            parse_time("2026-11-27", &c).unwrap(),
            utc(2026, 11, 26, 15, 0, 0)
        );
        // RFC 3339: offset wins over ctx.tz.
        assert_eq!(parse_time("2026-11-27T05:22:05Z", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27T05:22:05z", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27T14:22:05+09:00", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27T00:22:05-05:00", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27 00:22:05-0500", &c).unwrap(), want);
        assert_eq!(parse_time("2026-11-27T14:22:05+09", &c).unwrap(), want);
        assert_eq!(
            parse_time("2026-11-27T05:22:05.123Z", &c).unwrap(),
            want + 123_000_000
        );
    }

    #[test]
    fn relative_and_unix_forms() {
        let c = tokyo();
        let now = c.now_ns;
        assert_eq!(parse_time("now", &c).unwrap(), now);
        assert_eq!(parse_time("NOW", &c).unwrap(), now);
        assert_eq!(parse_time("-5m", &c).unwrap(), now - 300 * S);
        assert_eq!(parse_time("-90s", &c).unwrap(), now - 90 * S);
        assert_eq!(parse_time("-1h30m", &c).unwrap(), now - 5400 * S);
        assert_eq!(parse_time("-1.5s", &c).unwrap(), now - 1_500_000_000);
        assert_eq!(parse_time("5m ago", &c).unwrap(), now - 300 * S);
        assert_eq!(parse_time("5 min ago", &c).unwrap(), now - 300 * S);
        assert_eq!(parse_time("1h 30m ago", &c).unwrap(), now - 5400 * S);
        assert_eq!(parse_time("2 hours ago", &c).unwrap(), now - 7200 * S);
        assert_eq!(parse_time("5m  AGO", &c).unwrap(), now - 300 * S);
        assert_eq!(parse_time("@1732717325", &c).unwrap(), 1_732_717_325 * S);
        assert_eq!(
            parse_time("@1732717325.5", &c).unwrap(),
            1_732_717_325 * S + 500_000_000
        );
        assert_eq!(
            parse_time("@1732717325.123456789999", &c).unwrap(),
            1_732_717_325 * S + 123_456_789
        );
        assert_eq!(parse_time("@0", &c).unwrap(), 0);
        assert_eq!(parse_time("@-1.5", &c).unwrap(), -1_500_000_000);
    }

    #[test]
    fn new_york_dst_fold() {
        // 2026-11-01 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) both exist.
        let ny = chrono_tz::America::New_York;
        let c = ctx(ny, utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 1, 12, 0, 0));
        assert_eq!(parse_time("01:30", &c).unwrap(), utc(2026, 11, 1, 6, 30, 0));
        // Recording ends between the two occurrences: the earlier is the latest in range.
        let c2 = ctx(ny, utc(2026, 11, 1, 0, 0, 0), utc(2026, 11, 1, 6, 0, 0));
        assert_eq!(
            parse_time("01:30", &c2).unwrap(),
            utc(2026, 11, 1, 5, 30, 0)
        );
        // Full local date-time in a fold: the earlier instant.
        assert_eq!(
            parse_time("2026-11-01 01:30", &c).unwrap(),
            utc(2026, 11, 1, 5, 30, 0)
        );
        // Offsets disambiguate.
        assert_eq!(
            parse_time("2026-11-01T01:30:00-05:00", &c).unwrap(),
            utc(2026, 11, 1, 6, 30, 0)
        );
        assert_eq!(
            format_rfc3339(utc(2026, 11, 1, 5, 30, 0), &ny),
            "2026-11-01T01:30:00-04:00"
        );
        assert_eq!(
            format_rfc3339(utc(2026, 11, 1, 6, 30, 0), &ny),
            "2026-11-01T01:30:00-05:00"
        );
    }

    #[test]
    fn new_york_dst_gap() {
        // 2026-03-08 02:00-03:00 local does not exist.
        let ny = chrono_tz::America::New_York;
        let c = ctx(ny, utc(2026, 3, 8, 5, 0, 0), utc(2026, 3, 8, 15, 0, 0));
        let m = msg(parse_time("02:30", &c));
        assert_eq!(
            m,
            "bad time \"02:30\": 2026-03-08 02:30:00 does not exist in America/New_York \
             (skipped by a DST change); pick a time outside the gap or give an offset"
        );
        let m = msg(parse_time("2026-03-08 02:30", &c));
        assert!(
            m.contains("2026-03-08 02:30:00 does not exist in America/New_York"),
            "{m}"
        );
        // Around the gap is fine: 01:59 EST = 06:59Z, 03:00 EDT = 07:00Z.
        assert_eq!(parse_time("01:59", &c).unwrap(), utc(2026, 3, 8, 6, 59, 0));
        assert_eq!(parse_time("03:00", &c).unwrap(), utc(2026, 3, 8, 7, 0, 0));
        // The same clock time on a normal day resolves normally.
        let c2 = ctx(ny, utc(2026, 3, 9, 5, 0, 0), utc(2026, 3, 9, 15, 0, 0));
        assert_eq!(parse_time("02:30", &c2).unwrap(), utc(2026, 3, 9, 6, 30, 0));
    }

    #[test]
    fn recording_spanning_midnight() {
        // Tokyo, 2026-11-27 23:00 .. 2026-11-28 01:00 JST.
        let tz = chrono_tz::Asia::Tokyo;
        let c = ctx(tz, utc(2026, 11, 27, 14, 0, 0), utc(2026, 11, 27, 16, 0, 0));
        // 23:59 is on the 27th (the 28th's 23:59 is after the end).
        assert_eq!(
            parse_time("23:59", &c).unwrap(),
            utc(2026, 11, 27, 14, 59, 0)
        );
        // 00:01 is on the 28th.
        assert_eq!(
            parse_time("00:01", &c).unwrap(),
            utc(2026, 11, 27, 15, 1, 0)
        );
        for t in ["23:59", "00:01"] {
            let ns = parse_time(t, &c).unwrap();
            assert!(ns >= c.first_ns && ns <= c.last_ns, "{t}");
        }
        // 12:00 would be the 28th's noon (after end) -> the 27th's noon, before start.
        let noon = parse_time("12:00", &c).unwrap();
        assert_eq!(noon, utc(2026, 11, 27, 3, 0, 0));
        assert!(noon < c.first_ns);
    }

    #[test]
    fn utc_context() {
        let c = ctx(
            chrono_tz::UTC,
            utc(2026, 11, 27, 0, 0, 0),
            utc(2026, 11, 27, 23, 0, 0),
        );
        assert_eq!(
            parse_time("14:22:05", &c).unwrap(),
            utc(2026, 11, 27, 14, 22, 5)
        );
        assert_eq!(
            parse_time("2026-11-27 14:22:05", &c).unwrap(),
            utc(2026, 11, 27, 14, 22, 5)
        );
    }

    #[test]
    fn bad_times_have_one_line_messages() {
        let c = tokyo();
        assert_eq!(
            msg(parse_time("14:61", &c)),
            "bad time \"14:61\": minute 61 is out of range 00-59"
        );
        assert_eq!(
            msg(parse_time("25:00", &c)),
            "bad time \"25:00\": hour 25 is out of range 00-23"
        );
        assert_eq!(
            msg(parse_time("14:22:60", &c)),
            "bad time \"14:22:60\": second 60 is out of range 00-59"
        );
        assert_eq!(
            msg(parse_time("abc", &c)),
            "bad time \"abc\": expected HH:MM[:SS], YYYY-MM-DD HH:MM[:SS], RFC 3339, -5m, \"5m ago\" or @UNIX"
        );
        assert_eq!(
            msg(parse_time("", &c)),
            "bad time \"\": expected HH:MM[:SS], YYYY-MM-DD HH:MM[:SS], RFC 3339, -5m, \"5m ago\" or @UNIX"
        );
        assert!(msg(parse_time("   ", &c)).starts_with("bad time \"   \": expected"));
        assert_eq!(
            msg(parse_time("@", &c)),
            "bad time \"@\": expected @ followed by seconds since 1970, e.g. @1732717325 or @1732717325.5"
        );
        assert_eq!(
            msg(parse_time("-5x", &c)),
            "bad time \"-5x\": unknown unit \"x\" (use ns, us, ms, s, m, h, d or w); expected e.g. 200ms, 1.5s, 10m, 2h, 1d or 1h30m"
        );
        assert_eq!(
            msg(parse_time("@99999999999999999999", &c)),
            "bad time \"@99999999999999999999\": out of range (must lie between years 1677 and 2262)"
        );
        assert!(msg(parse_time("@9999999999", &c)).contains("out of range"));
        assert!(msg(parse_time("-200000d", &c)).contains("out of range"));
        assert!(msg(parse_time("-999999d", &c)).contains("too large"));
        assert!(msg(parse_time("9999-12-31 00:00", &c)).contains("out of range"));
        assert!(msg(parse_time("-99999999999999999999999999h", &c)).contains("bad time"));
        assert_eq!(
            msg(parse_time("2026-13-01 00:00", &c)),
            "bad time \"2026-13-01 00:00\": month 13 is out of range 01-12"
        );
        assert_eq!(
            msg(parse_time("2026-02-30 00:00", &c)),
            "bad time \"2026-02-30 00:00\": 2026-02-30 is not a valid date"
        );
        assert!(msg(parse_time("5m", &c)).contains("did you mean \"-5m\" or \"5m ago\""));
        assert!(msg(parse_time("ago", &c)).contains("missing duration"));
        assert!(msg(parse_time("2026-11-27T14:22:05+25:00", &c)).contains("offset"));

        let long = "9".repeat(5000);
        let m = msg(parse_time(&long, &c));
        assert!(m.len() < 200, "{m}");
        assert!(m.contains("too long"), "{m}");
        let weird = "1\n2:00\u{7}";
        let m = msg(parse_time(weird, &c));
        assert!(!m.contains('\n'), "{m}");
        assert!(m.contains("\\n"), "{m}");

        for bad in [
            "1:2",
            "123:00",
            "14:2",
            "14:22:5",
            "14:22:05.",
            "14:22:05.1234567890",
            "14:22.5",
            ":",
            "::",
            "14::22",
            "-",
            "--5m",
            "-m",
            "-5",
            "-.s",
            "@.",
            "@1.",
            "@1.x",
            "@--1",
            "@1e9",
            "2026-11-27X14:22",
            "2026-11-2714:22",
            "2026-1-27 14:22",
            "20261127",
            "2026-11-27 14:22 +9",
            "2026-11-27 14:22+0900x",
            "14:22Z",
            "now now",
            "tomorrow",
            "\u{1F600}",
            "1.5h ago ago",
            "Ω:00",
            "14:22:05.٣",
            "2026-11-27 ٣:00",
        ] {
            let r = parse_time(bad, &c);
            let e = r.expect_err(bad).to_string();
            assert!(e.starts_with("bad "), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let c = tokyo();
        let pieces = [
            "1", "9", ":", ".", "-", "@", " ", "T", "Z", "+", "ago", "m", "µ", "ö", "2026-",
        ];
        // All strings of up to 4 pieces (~54k inputs).
        let mut stack: Vec<(String, u32)> = vec![(String::new(), 0)];
        while let Some((s, depth)) = stack.pop() {
            let _ = parse_time(&s, &c);
            let _ = parse_duration(&s);
            let _ = parse_size(&s);
            if depth < 4 {
                for p in pieces {
                    stack.push((format!("{s}{p}"), depth + 1));
                }
            }
        }
        // Extreme contexts.
        for (first, last) in [
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MAX),
            (i64::MIN, i64::MIN),
            (0, 0),
        ] {
            let c = TimeContext {
                now_ns: last,
                tz: chrono_tz::Asia::Tokyo,
                first_ns: first,
                last_ns: last,
            };
            for t in [
                "00:00",
                "23:59:59.999999999",
                "-1s",
                "now",
                "@1",
                "2026-11-27 00:00",
                "-999999d",
            ] {
                let _ = parse_time(t, &c);
            }
        }
        let _ = format_local(i64::MIN, &chrono_tz::Asia::Tokyo);
        let _ = format_rfc3339(i64::MAX, &chrono_tz::America::New_York);
        let _ = format_rfc3339(i64::MIN, &chrono_tz::America::New_York);
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("200ms").unwrap(), ms(200));
        assert_eq!(parse_duration("1s").unwrap(), ms(1000));
        assert_eq!(parse_duration("10m").unwrap(), ms(600_000));
        assert_eq!(parse_duration("2h").unwrap(), ms(7_200_000));
        assert_eq!(parse_duration("1d").unwrap(), ms(86_400_000));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_duration(".5s").unwrap(), ms(500));
        assert_eq!(parse_duration("500us").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_duration("500µs").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_duration("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse_duration("1h30m").unwrap(), ms(5_400_000));
        assert_eq!(parse_duration("1h 30m 15s").unwrap(), ms(5_415_000));
        assert_eq!(parse_duration("1 minute").unwrap(), ms(60_000));
        assert_eq!(parse_duration("1W").unwrap(), ms(604_800_000));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0.0000000001s").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("5").unwrap_err().to_string(),
            "bad duration \"5\": missing unit after 5; expected e.g. 200ms, 1.5s, 10m, 2h, 1d or 1h30m"
        );
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "bad duration \"5x\": unknown unit \"x\" (use ns, us, ms, s, m, h, d or w); expected e.g. 200ms, 1.5s, 10m, 2h, 1d or 1h30m"
        );
        for bad in [
            "",
            "s",
            "1..5s",
            "1.2.3s",
            "-1s",
            "1s-",
            "99999999999999999999999999d",
            "600000d",
            "1e3s",
            ".",
        ] {
            let e = parse_duration(bad).expect_err(bad).to_string();
            assert!(e.starts_with("bad duration "), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("10 MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("100B").unwrap(), 100);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert!(parse_size("16EiB")
            .unwrap_err()
            .to_string()
            .starts_with("bad size"));
        assert_eq!(
            parse_size("16384P").unwrap_err().to_string(),
            "bad size \"16384P\": too large (over 16 EiB); expected e.g. 4096, 512KiB, 64MiB, 1G (=GiB) or 10MB (=10^7)"
        );
        for bad in [
            "",
            "MiB",
            "-1",
            "1 2",
            "1xB",
            "1..2M",
            "99999999999999999999999999999",
        ] {
            let e = parse_size(bad).expect_err(bad).to_string();
            assert!(e.starts_with("bad size "), "{bad}: {e}");
        }
    }

    #[test]
    fn formatting() {
        let t = utc(2026, 11, 27, 5, 22, 5) + 999_000_000;
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(format_local(t, &tokyo), "2026-11-27 14:22:05");
        assert_eq!(format_local(t, &chrono_tz::UTC), "2026-11-27 05:22:05");
        assert_eq!(format_rfc3339(t, &tokyo), "2026-11-27T14:22:05+09:00");
        assert_eq!(format_rfc3339(t, &chrono_tz::UTC), "2026-11-27T05:22:05Z");
        assert_eq!(
            format_rfc3339(t, &chrono_tz::America::New_York),
            "2026-11-27T00:22:05-05:00"
        );
        // Negative instants floor toward the past.
        assert_eq!(format_local(-1, &chrono_tz::UTC), "1969-12-31 23:59:59");
        assert_eq!(format_rfc3339(-1, &chrono_tz::UTC), "1969-12-31T23:59:59Z");
        // Round trip.
        let c = ctx(tokyo, t - 3600 * S, t + 3600 * S);
        assert_eq!(
            parse_time(&format_rfc3339(t, &tokyo), &c).unwrap(),
            t - 999_000_000
        );
        assert_eq!(
            parse_time(&format_local(t, &tokyo), &c).unwrap(),
            t - 999_000_000
        );
    }
}
