//! Pieces shared by the writer and the reader: header slots and head fields.

use crate::error::{Error, Result};
use crate::host::HostHeader;
use crate::layout::*;
use std::sync::atomic::{AtomicU64, Ordering};

/// Load a u64 head field with Acquire ordering from a mapped file.
///
/// # Safety-relevant invariant
/// `base` points at a mapping of at least `off + 8` bytes, and `off` is
/// 8-aligned (head pages are page-aligned; fields are at multiples of 8).
pub(crate) fn load(map: &[u8], off: u64) -> u64 {
    let off = off as usize;
    assert!(off.is_multiple_of(8) && off + 8 <= map.len());
    // SAFETY: in bounds and aligned (checked above); the mapping outlives the
    // reference, and u64 loads from shared file pages are what AtomicU64 models.
    let a = unsafe { &*(map.as_ptr().add(off) as *const AtomicU64) };
    a.load(Ordering::Acquire)
}

pub(crate) fn store(map: &mut [u8], off: u64, v: u64) {
    let off = off as usize;
    assert!(off.is_multiple_of(8) && off + 8 <= map.len());
    // SAFETY: as in `load`; we hold the only mutable mapping in this process.
    let a = unsafe { &*(map.as_mut_ptr().add(off) as *const AtomicU64) };
    a.store(v, Ordering::Release)
}

pub(crate) fn head_off(stream: usize) -> u64 {
    HEADS_OFF + stream as u64 * HEAD_LEN
}

/// Head fields of one stream, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadState {
    pub next_seq: u64,
    pub tail_seq: u64,
    pub write_vpos: u64,
    pub staging_len: u64,
    pub staging_gen: u64,
}

pub(crate) fn read_head(map: &[u8], stream: usize) -> HeadState {
    let h = head_off(stream);
    HeadState {
        next_seq: load(map, h + head::NEXT_SEQ as u64),
        tail_seq: load(map, h + head::TAIL_SEQ as u64),
        write_vpos: load(map, h + head::WRITE_VPOS as u64),
        staging_len: load(map, h + head::STAGING_LEN as u64),
        staging_gen: load(map, h + head::STAGING_GEN as u64),
    }
}

/// Read the newest valid host header slot. Returns (generation, header).
pub(crate) fn read_host(map: &[u8]) -> Result<(u64, HostHeader)> {
    let mut best: Option<(u64, HostHeader)> = None;
    let mut last_err = None;
    for slot in 0..2u64 {
        let o = (HEADER_SLOT_OFF + slot * HEADER_SLOT_LEN) as usize;
        let s = &map[o..o + HEADER_SLOT_LEN as usize];
        let gen = le_u64(s, 0);
        let len = le_u32(s, 8) as usize;
        let crc = le_u32(s, 12);
        if gen == 0 || len == 0 || len > s.len() - 16 {
            continue;
        }
        let body = &s[16..16 + len];
        if crc32c::crc32c(body) != crc {
            last_err = Some(Error::corrupt(
                o as u64,
                "host header slot checksum mismatch",
            ));
            continue;
        }
        match HostHeader::from_bytes(body, o as u64 + 16) {
            Ok(h) if best.as_ref().is_none_or(|(g, _)| gen > *g) => best = Some((gen, h)),
            Ok(_) => {}
            Err(e) => last_err = Some(e),
        }
    }
    best.ok_or_else(|| {
        last_err.unwrap_or_else(|| Error::corrupt(HEADER_SLOT_OFF, "no host header written"))
    })
}

/// Encode a host header into the slot bytes for generation `gen`.
pub(crate) fn encode_host_slot(h: &HostHeader, gen: u64) -> Result<Vec<u8>> {
    let body = h.to_bytes();
    if body.len() > HEADER_SLOT_LEN as usize - 16 {
        return Err(Error::Invalid(format!(
            "host header too large ({} bytes)",
            body.len()
        )));
    }
    let mut s = Vec::with_capacity(16 + body.len());
    s.extend_from_slice(&gen.to_le_bytes());
    s.extend_from_slice(&(body.len() as u32).to_le_bytes());
    s.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    s.extend_from_slice(&body);
    Ok(s)
}

/// Split the committed part of a staging area into records, stopping at the
/// first bad one. Returns the records and the byte length of the good prefix.
pub(crate) fn staged_records(st: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut p = 0usize;
    while p + 8 <= st.len() {
        let len = le_u32(st, p) as usize;
        let crc = le_u32(st, p + 4);
        if len == 0 || len > st.len() - p - 8 {
            break;
        }
        let body = &st[p + 8..p + 8 + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        out.push(body);
        p += 8 + len;
    }
    (out, p)
}
