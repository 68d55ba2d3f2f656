//! Parsers of tracefs' binary interface, on bytes and text only (tested on
//! captured files in `tests/data/ftrace`): `events/header_page` (the layout
//! of a ring-buffer page), `events/<group>/<event>/format` (the layout of an
//! event record), and the pages read from `per_cpu/cpuN/trace_pipe_raw`.
//!
//! Pages are a header (timestamp, commit) followed by records, each with a
//! 32-bit header: `type_len:5, time_delta:27` (little end first), then:
//! type_len 1..=28: `type_len × 4` bytes of data; 0: a 32-bit length
//! (including itself) then the data; 29 padding (length in the next word;
//! time_delta 0: the rest of the page is empty); 30 time extend (the next
//! word holds bits 27..59 of the delta); 31 absolute time stamp.

use lpo_format::ftrace::{Drain, EventFormat, FieldDesc, FieldKind, RawEvent};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("header_page: {0}")]
    HeaderPage(String),
    #[error("event format: {0}")]
    Format(String),
    #[error("trace page: {0}")]
    Page(&'static str),
}

/// Where things are in a ring-buffer page (`events/header_page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLayout {
    pub ts_off: usize,
    pub commit_off: usize,
    pub commit_size: usize,
    pub data_off: usize,
    pub data_size: usize,
}

impl PageLayout {
    /// Bytes in one page (sub-buffer) as `trace_pipe_raw` returns it.
    pub fn page_size(&self) -> usize {
        self.data_off + self.data_size
    }
}

/// One `field:` line: (type and name, offset, size, signed).
fn field_lines(text: &str) -> impl Iterator<Item = Option<(&str, usize, usize, bool)>> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("field:"))
        .map(|l| {
            let mut decl = None;
            let (mut off, mut size, mut signed) = (None, None, false);
            for part in l.split(';') {
                let part = part.trim();
                if let Some(d) = part.strip_prefix("field:") {
                    decl = Some(d.trim());
                } else if let Some(v) = part.strip_prefix("offset:") {
                    off = v.trim().parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.trim().parse().ok();
                } else if let Some(v) = part.strip_prefix("signed:") {
                    signed = v.trim() == "1";
                }
            }
            Some((decl?, off?, size?, signed))
        })
}

pub fn parse_header_page(text: &str) -> Result<PageLayout, ParseError> {
    let (mut ts, mut commit, mut data) = (None, None, None);
    for f in field_lines(text) {
        let (decl, off, size, _) =
            f.ok_or_else(|| ParseError::HeaderPage("unreadable field line".into()))?;
        let name = decl.rsplit([' ', '\t']).next().unwrap_or("");
        match name {
            "timestamp" => ts = Some((off, size)),
            "commit" => commit = Some((off, size)),
            "data" => data = Some((off, size)),
            _ => {}
        }
    }
    let miss = |w: &str| ParseError::HeaderPage(format!("no {w} field"));
    let ts = ts.ok_or_else(|| miss("timestamp"))?;
    let commit = commit.ok_or_else(|| miss("commit"))?;
    let data = data.ok_or_else(|| miss("data"))?;
    if ts.1 != 8 || !(commit.1 == 4 || commit.1 == 8) || data.1 == 0 || data.1 > 1 << 24 {
        return Err(ParseError::HeaderPage(format!(
            "unexpected sizes: timestamp {}, commit {}, data {}",
            ts.1, commit.1, data.1
        )));
    }
    if ts.0 + 8 > data.0 || commit.0 + commit.1 > data.0 {
        return Err(ParseError::HeaderPage("fields overlap the data".into()));
    }
    Ok(PageLayout {
        ts_off: ts.0,
        commit_off: commit.0,
        commit_size: commit.1,
        data_off: data.0,
        data_size: data.1,
    })
}

/// How to read one field out of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// Fixed: `size` bytes at `offset`.
    Fixed,
    /// `__data_loc`: a u32 (len << 16 | offset from the record start).
    DataLoc,
    /// `__rel_loc`: a u32 (len << 16 | offset from the end of the field).
    RelLoc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    pub offset: usize,
    pub size: usize,
    pub loc: Loc,
    pub kind: FieldKind,
}

/// An event's record layout, from its `format` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub desc: EventFormat,
    pub layout: Vec<FieldLayout>,
    pub type_at: (usize, usize),
    pub flags_at: Option<usize>,
    pub preempt_at: Option<usize>,
    pub pid_at: Option<usize>,
}

/// Parse `events/<system>/<name>/format`.
pub fn parse_format(text: &str, system: &str) -> Result<Format, ParseError> {
    let err = |m: String| ParseError::Format(m);
    let mut name = None;
    let mut id = None;
    for l in text.lines() {
        if let Some(v) = l.strip_prefix("name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("ID:") {
            id = v.trim().parse::<u32>().ok();
        }
    }
    let name = name.ok_or_else(|| err("no name line".into()))?;
    let id = id.ok_or_else(|| err(format!("{name}: no ID line")))?;
    let mut f = Format {
        desc: EventFormat {
            id,
            system: system.to_string(),
            name: name.clone(),
            fields: Vec::new(),
        },
        layout: Vec::new(),
        type_at: (0, 2),
        flags_at: None,
        preempt_at: None,
        pid_at: None,
    };
    let mut have_type = false;
    for line in field_lines(text) {
        let (decl, offset, size, signed) =
            line.ok_or_else(|| err(format!("{name}: unreadable field line")))?;
        if offset > 1 << 16 || size > 1 << 16 {
            return Err(err(format!("{name}: field too large")));
        }
        let decl = decl.trim();
        let cut = decl
            .rfind([' ', '\t', '*'])
            .ok_or_else(|| err(format!("{name}: field {decl:?} has no type")))?;
        let (ty, fname) = (decl[..=cut].trim(), decl[cut + 1..].trim());
        let (fname, array) = match fname.find('[') {
            Some(i) => (&fname[..i], Some(&fname[i..])),
            None => (fname, None),
        };
        match fname {
            "common_type" => {
                f.type_at = (offset, size);
                have_type = true;
                continue;
            }
            "common_flags" if size == 1 => {
                f.flags_at = Some(offset);
                continue;
            }
            "common_preempt_count" if size == 1 => {
                f.preempt_at = Some(offset);
                continue;
            }
            "common_pid" if size == 4 => {
                f.pid_at = Some(offset);
                continue;
            }
            _ => {}
        }
        let is_char = ty.ends_with("char") || ty.contains("char[]");
        let (loc, kind, ctype) = if ty.starts_with("__data_loc") || ty.starts_with("__rel_loc") {
            let loc = if ty.starts_with("__data_loc") {
                Loc::DataLoc
            } else {
                Loc::RelLoc
            };
            if size != 4 {
                return Err(err(format!("{name}.{fname}: dynamic field of size {size}")));
            }
            let kind = if is_char {
                FieldKind::Str
            } else {
                FieldKind::Bytes
            };
            (loc, kind, ty.to_string())
        } else if let Some(a) = array {
            let kind = if is_char {
                FieldKind::Str
            } else {
                FieldKind::Bytes
            };
            (Loc::Fixed, kind, format!("{ty}{a}"))
        } else if matches!(size, 1 | 2 | 4 | 8) {
            let kind = if signed {
                FieldKind::Signed
            } else {
                FieldKind::Unsigned
            };
            (Loc::Fixed, kind, ty.to_string())
        } else {
            (Loc::Fixed, FieldKind::Bytes, ty.to_string())
        };
        f.desc.fields.push(FieldDesc {
            name: fname.to_string(),
            ctype,
            kind,
            size: size as u32,
        });
        f.layout.push(FieldLayout {
            offset,
            size,
            loc,
            kind,
        });
    }
    if !have_type || !matches!(f.type_at.1, 1 | 2 | 4) {
        return Err(err(format!("{name}: no usable common_type field")));
    }
    Ok(f)
}

fn uint(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    if cfg!(target_endian = "little") {
        a[..n].copy_from_slice(&b[..n]);
        u64::from_le_bytes(a)
    } else {
        a[8 - n..].copy_from_slice(&b[..n]);
        u64::from_be_bytes(a)
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?).map(|s| uint(s) as u32)
}

/// The common_type of a record, or None if it is too short.
pub fn record_type(f: (usize, usize), rec: &[u8]) -> Option<u32> {
    rec.get(f.0..f.0.checked_add(f.1)?).map(|b| uint(b) as u32)
}

impl Format {
    /// Decode record `rec` into `d` (one value per field), as event slot `slot`.
    /// A field that lies outside the record reads as 0 or empty.
    pub fn decode(&self, rec: &[u8], ts: u64, cpu: u32, slot: u32, d: &mut Drain) {
        let at = |o: Option<usize>| o.and_then(|o| rec.get(o).copied()).unwrap_or(0);
        let pid = self
            .pid_at
            .and_then(|o| u32_at(rec, o))
            .map(|v| v as i32)
            .unwrap_or(-1);
        let vals = d.vals.len() as u32;
        for fl in &self.layout {
            let bytes: &[u8] = match fl.loc {
                Loc::Fixed => rec
                    .get(fl.offset..fl.offset.saturating_add(fl.size))
                    .unwrap_or(&[]),
                Loc::DataLoc | Loc::RelLoc => {
                    let v = u32_at(rec, fl.offset).unwrap_or(0);
                    let (mut off, len) = ((v & 0xffff) as usize, (v >> 16) as usize);
                    if fl.loc == Loc::RelLoc {
                        off += fl.offset + 4;
                    }
                    rec.get(off..off.saturating_add(len)).unwrap_or(&[])
                }
            };
            let v = match fl.kind {
                FieldKind::Unsigned => uint(bytes) as i64,
                FieldKind::Signed => {
                    let u = uint(bytes);
                    let bits = (bytes.len().min(8) * 8) as u32;
                    if bits == 0 || bits == 64 {
                        u as i64
                    } else {
                        ((u << (64 - bits)) as i64) >> (64 - bits)
                    }
                }
                FieldKind::Str => {
                    let s = bytes.split(|&c| c == 0).next().unwrap_or(&[]);
                    d.intern(s) as i64
                }
                FieldKind::Bytes => d.intern(bytes) as i64,
            };
            d.vals.push(v);
        }
        d.events.push(RawEvent {
            ts,
            cpu,
            fmt: slot,
            pid,
            flags: at(self.flags_at),
            preempt: at(self.preempt_at),
            vals,
        });
    }
}

/// What a page said besides its records.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// The page's missed-events flag was set.
    pub missed_flag: bool,
    /// Events missed before this page, when the kernel stored the count.
    pub missed: u64,
    pub records: u64,
    /// Bytes of records in the page (its commit length).
    pub data_len: usize,
}

const RB_MISSED_EVENTS: u64 = 1 << 31;
const RB_MISSED_STORED: u64 = 1 << 30;
const TS_SHIFT: u32 = 27;
const TS_MSB: u64 = 0xf << 59;

/// Walk the records of one page, calling `rec(ts, data)` for each data
/// record (`data` may include trailing padding up to 4-byte alignment).
pub fn parse_page(
    page: &[u8],
    l: &PageLayout,
    rec: &mut dyn FnMut(u64, &[u8]),
) -> Result<PageInfo, ParseError> {
    let ts_b = page
        .get(l.ts_off..l.ts_off + 8)
        .ok_or(ParseError::Page("short page"))?;
    let mut ts = uint(ts_b);
    let commit = uint(
        page.get(l.commit_off..l.commit_off + l.commit_size)
            .ok_or(ParseError::Page("short page"))?,
    );
    let len = (commit & !(RB_MISSED_EVENTS | RB_MISSED_STORED)) as usize;
    let end = l
        .data_off
        .checked_add(len)
        .ok_or(ParseError::Page("commit"))?;
    if len > l.data_size || end > page.len() {
        return Err(ParseError::Page("commit beyond the page"));
    }
    let mut info = PageInfo {
        missed_flag: commit & RB_MISSED_EVENTS != 0,
        data_len: len,
        ..Default::default()
    };
    if commit & RB_MISSED_STORED != 0 {
        if let Some(b) = page.get(end..end + l.commit_size) {
            info.missed = uint(b);
        }
    }
    let mut p = l.data_off;
    while p + 4 <= end {
        let h = u32_at(page, p).ok_or(ParseError::Page("record header"))?;
        let type_len = h & 0x1f;
        let delta = (h >> 5) as u64;
        let body = p + 4;
        match type_len {
            29 => {
                // Padding: time_delta 0 means the rest of the page is unused.
                if delta == 0 {
                    break;
                }
                // A discarded record: the word after the header is its data length.
                let n = u32_at(page, body).ok_or(ParseError::Page("padding"))? as usize;
                ts = ts.wrapping_add(delta);
                p = body.checked_add(n).ok_or(ParseError::Page("padding"))?;
            }
            30 => {
                let ext = u32_at(page, body).ok_or(ParseError::Page("time extend"))? as u64;
                ts = ts.wrapping_add((ext << TS_SHIFT) + delta);
                p = body + 4;
            }
            31 => {
                let ext = u32_at(page, body).ok_or(ParseError::Page("time stamp"))? as u64;
                let abs = (ext << TS_SHIFT) | delta;
                // The stamp keeps 59 bits; the top ones come from the page.
                ts = abs | (ts & TS_MSB);
                p = body + 4;
            }
            0 => {
                let n = u32_at(page, body).ok_or(ParseError::Page("record length"))? as usize;
                if n < 4 {
                    return Err(ParseError::Page("record length"));
                }
                ts = ts.wrapping_add(delta);
                let data = page
                    .get(body + 4..(body + n).min(end))
                    .ok_or(ParseError::Page("record beyond commit"))?;
                rec(ts, data);
                info.records += 1;
                p = body + n;
            }
            n => {
                ts = ts.wrapping_add(delta);
                let size = n as usize * 4;
                let data = page
                    .get(body..(body + size).min(end))
                    .ok_or(ParseError::Page("record beyond commit"))?;
                rec(ts, data);
                info.records += 1;
                p = body + size;
            }
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_page_layouts() {
        let x86 = "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;\n";
        let l = parse_header_page(x86).unwrap();
        assert_eq!(
            (l.commit_off, l.commit_size, l.data_off, l.page_size()),
            (8, 8, 16, 4096)
        );
        let arm32 = x86
            .replace("size:8;\tsigned:1", "size:4;\tsigned:1")
            .replace("offset:16;\tsize:4080", "offset:12;\tsize:4084");
        assert_eq!(parse_header_page(&arm32).unwrap().data_off, 12);
        assert!(parse_header_page("").is_err());
        assert!(parse_header_page(&x86.replace("size:4080", "size:0")).is_err());
    }

    #[test]
    fn page_records_and_time_encodings() {
        let l = PageLayout {
            ts_off: 0,
            commit_off: 8,
            commit_size: 8,
            data_off: 16,
            data_size: 112,
        };
        let mut p = vec![0u8; 128];
        p[0..8].copy_from_slice(&1000u64.to_ne_bytes());
        let mut w = 16;
        let mut put = |p: &mut Vec<u8>, v: u32| {
            p[w..w + 4].copy_from_slice(&v.to_ne_bytes());
            w += 4;
        };
        put(&mut p, 2 | (5 << 5)); // 8-byte record, delta 5
        put(&mut p, 0xaaaa);
        put(&mut p, 0xbbbb);
        put(&mut p, 30 | (1 << 5)); // time extend: +(2<<27)+1
        put(&mut p, 2);
        put(&mut p, 3 << 5); // long record, 12 bytes incl. length
        put(&mut p, 12);
        put(&mut p, 0xcccc);
        put(&mut p, 0xdddd);
        put(&mut p, 29 | (1 << 5)); // discarded record of 8 bytes
        put(&mut p, 8);
        put(&mut p, 0);
        put(&mut p, 31 | (7 << 5)); // absolute stamp 7 | (1 << 27)
        put(&mut p, 1);
        put(&mut p, 1); // 4-byte record, delta 0
        put(&mut p, 0xeeee);
        let len = w - 16;
        p[8..16].copy_from_slice(&((len as u64) | RB_MISSED_EVENTS).to_ne_bytes());
        let mut got = Vec::new();
        let info = parse_page(&p, &l, &mut |ts, d| got.push((ts, d.to_vec()))).unwrap();
        assert!(info.missed_flag);
        assert_eq!(info.records, 3);
        assert_eq!(got[0].0, 1005);
        assert_eq!(got[0].1.len(), 8);
        assert_eq!(got[1].0, 1005 + (2 << 27) + 1 + 3);
        assert_eq!(got[1].1.len(), 8);
        assert_eq!(got[2].0, 7 | (1 << 27));
        // Truncated and hostile pages fail or stop, never panic.
        for cut in 0..p.len() {
            let _ = parse_page(&p[..cut], &l, &mut |_, _| {});
        }
        let mut bad = p.clone();
        bad[8..16].copy_from_slice(&5000u64.to_ne_bytes());
        assert!(parse_page(&bad, &l, &mut |_, _| {}).is_err());
        let mut x = 99u64;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut q = p.clone();
            q[16 + (x % 112) as usize] ^= (x >> 30) as u8;
            let _ = parse_page(&q, &l, &mut |_, _| {});
        }
    }
}
