//! Allocation-free parsers for Linux `/proc` text files.
//!
//! * [`system`]: `/proc/stat`, `loadavg`, `meminfo`, `vmstat`, `pressure/*`,
//!   `uptime`; each emits named `u64` columns through a callback.
//! * [`process`]: `/proc/PID/stat`, `status`, `io`, `schedstat`, `cmdline`;
//!   each fills a plain struct.
//!
//! All parsers work on the raw bytes of the file, never panic on any input
//! (truncated, hostile or random bytes) and never allocate on the success
//! path; the only heap use is the caller-owned name buffer of the system
//! parsers and the `reason` string of a [`ParseError`].
//!
//! Sibling modules refer to the helpers here through `super::`, so this file
//! can become `mod.rs` of a `procfs` module unchanged.

pub mod netdisk;
pub mod process;
pub mod system;

#[cfg(test)]
mod tests;

/// A file did not look like the `/proc` file it was parsed as.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}: {reason}")]
pub struct ParseError {
    /// Which file was being parsed, e.g. `"/proc/stat"`.
    pub file: &'static str,
    /// What was wrong with it.
    pub reason: String,
}

impl ParseError {
    #[cold]
    #[inline(never)]
    pub(crate) fn new(file: &'static str, reason: &str, line: &[u8]) -> Self {
        // Show at most 64 bytes of the offending text, lossily.
        let shown = &line[..line.len().min(64)];
        let reason = if line.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason}: {:?}", String::from_utf8_lossy(shown))
        };
        ParseError { file, reason }
    }
}

/// Parses an unsigned decimal integer: ASCII digits only (no sign, no
/// whitespace), at least one digit. `None` on anything else or on overflow.
#[inline]
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if s.len() <= 19 {
        // 19 digits cannot overflow u64 (max 1.8e19), so no checks needed.
        let mut v: u64 = 0;
        for &b in s {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v * 10 + d as u64;
        }
        Some(v)
    } else {
        let mut v: u64 = 0;
        for &b in s {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            v = v.checked_mul(10)?.checked_add(d as u64)?;
        }
        Some(v)
    }
}

/// Parses a signed decimal integer (`-` allowed, no `+`), with overflow check.
#[inline]
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        Some((b'-', digits)) => {
            let m = parse_u64(digits)?;
            if m <= i64::MAX as u64 {
                Some(-(m as i64))
            } else if m == i64::MAX as u64 + 1 {
                Some(i64::MIN)
            } else {
                None
            }
        }
        _ => i64::try_from(parse_u64(s)?).ok(),
    }
}

/// Parses an integer the kernel may print signed but that we store as an
/// unsigned counter: a negative value (never produced for a real counter)
/// becomes 0; a malformed or out-of-range one is `None`.
#[inline]
pub(crate) fn parse_u64_clamped(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'-') {
        parse_i64(s).map(|_| 0)
    } else {
        parse_u64(s)
    }
}

/// Parses `u32` (digits only).
#[inline]
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    u32::try_from(parse_u64(s)?).ok()
}

/// Parses a fixed-point decimal with at most two fraction digits into
/// hundredths, exactly and without floats: `"3.85"` → 385, `"2"` → 200,
/// `"0.5"` → 50. `None` for zero or more than two fraction digits after a
/// `.`, a missing integer part, non-digits or overflow.
#[inline]
pub(crate) fn parse_centi(s: &[u8]) -> Option<u64> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], Some(&s[dot + 1..])),
        None => (s, None),
    };
    let whole = parse_u64(int)?.checked_mul(100)?;
    let frac = match frac {
        None => 0,
        Some(f) if f.len() == 1 => parse_u64(f)? * 10,
        Some(f) if f.len() == 2 => parse_u64(f)?,
        Some(_) => return None, // "1." or more than two fraction digits
    };
    whole.checked_add(frac)
}

/// Iterator over `\n`-terminated lines; the last line may lack `\n`.
/// A trailing `\r` is not stripped (the kernel never writes one).
#[derive(Clone)]
pub(crate) struct Lines<'a> {
    rest: &'a [u8],
}

#[inline]
pub(crate) fn lines(text: &[u8]) -> Lines<'_> {
    Lines { rest: text }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = &self.rest[..i];
                self.rest = &self.rest[i + 1..];
                Some(line)
            }
            None => {
                let line = self.rest;
                self.rest = &[];
                Some(line)
            }
        }
    }
}

/// Iterator over fields separated by runs of spaces or tabs (empty fields
/// are skipped). Used within a single line.
#[derive(Clone)]
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
}

#[inline]
pub(crate) fn fields(line: &[u8]) -> Fields<'_> {
    Fields { rest: line }
}

#[inline]
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|&b| !is_blank(b))?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|&b| is_blank(b)).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// Trims leading and trailing spaces and tabs.
#[inline]
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_blank(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_blank(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Splits `key: value` at the first `:`; the value is trimmed.
#[inline]
pub(crate) fn split_colon(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = line.iter().position(|&b| b == b':')?;
    Some((&line[..i], trim(&line[i + 1..])))
}
