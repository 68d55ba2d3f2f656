//! One perf_event per CPU and its mmap'd ring buffer.
//!
//! The kernel writes records at `data_head`; we read from `data_tail` up to
//! `data_head` (loaded with acquire ordering, so the record bytes it covers
//! are visible) and then publish the new `data_tail` with release ordering,
//! so the kernel never overwrites bytes we are still reading. A record that
//! wraps around the end of the data area is copied into a scratch buffer.

use perf_event_open_sys as sys;
use perf_event_open_sys::bindings as b;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// Pages of ring data per CPU (plus one metadata page): 512 KiB, about
/// 30 s of 49 Hz samples with deep stacks, so a 1 s drain never loses.
pub const DATA_PAGES: usize = 128;

pub const SAMPLE_TYPE: u64 = b::PERF_SAMPLE_IP as u64
    | b::PERF_SAMPLE_TID as u64
    | b::PERF_SAMPLE_TIME as u64
    | b::PERF_SAMPLE_CPU as u64
    | b::PERF_SAMPLE_PERIOD as u64
    | b::PERF_SAMPLE_CALLCHAIN as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Cycles,
    CpuClock,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Cycles => "cycles",
            EventKind::CpuClock => "cpu-clock",
        }
    }
}

fn attr(kind: EventKind, freq: u64, side_band: bool) -> b::perf_event_attr {
    let mut a = b::perf_event_attr {
        size: std::mem::size_of::<b::perf_event_attr>() as u32,
        ..Default::default()
    };
    match kind {
        EventKind::Cycles => {
            a.type_ = b::PERF_TYPE_HARDWARE;
            a.config = b::PERF_COUNT_HW_CPU_CYCLES as u64;
        }
        EventKind::CpuClock => {
            a.type_ = b::PERF_TYPE_SOFTWARE;
            a.config = b::PERF_COUNT_SW_CPU_CLOCK as u64;
        }
    }
    a.__bindgen_anon_1.sample_freq = freq;
    a.set_freq(1);
    a.sample_type = SAMPLE_TYPE;
    a.set_use_clockid(1);
    a.clockid = libc::CLOCK_BOOTTIME;
    a.set_sample_id_all(1);
    a.set_exclude_guest(1);
    if side_band {
        a.set_mmap(1);
        a.set_mmap2(1);
        a.set_comm(1);
        a.set_comm_exec(1);
        a.set_task(1);
    }
    // We drain on a timer: ask to be woken only when the ring is 3/4 full.
    a.set_watermark(1);
    a.__bindgen_anon_2.wakeup_watermark = (DATA_PAGES * page_size() * 3 / 4) as u32;
    a
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// An open sampling event on one CPU with its mapped ring.
pub struct CpuRing {
    _fd: OwnedFd,
    base: *mut u8,
    map_len: usize,
    data_off: usize,
    data_size: usize,
    scratch: Vec<u8>,
}

// SAFETY: the mapping is owned by this value and only used through &mut self.
unsafe impl Send for CpuRing {}

impl Drop for CpuRing {
    fn drop(&mut self) {
        // SAFETY: base/map_len are exactly what mmap returned.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.map_len) };
    }
}

impl CpuRing {
    /// Open `kind` on `cpu` for every process, and map its ring.
    pub fn open(kind: EventKind, cpu: u32, freq: u64) -> std::io::Result<CpuRing> {
        let mut a = attr(kind, freq, true);
        // SAFETY: a valid attr; pid -1 with a cpu is "every task on that CPU".
        let fd = unsafe {
            sys::perf_event_open(
                &mut a,
                -1,
                cpu as i32,
                -1,
                sys::bindings::PERF_FLAG_FD_CLOEXEC as _,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ps = page_size();
        let map_len = (DATA_PAGES + 1) * ps;
        // SAFETY: mapping a perf fd as documented in perf_event_open(2).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let mut r = CpuRing {
            _fd: fd,
            base: base as *mut u8,
            map_len,
            data_off: ps,
            data_size: DATA_PAGES * ps,
            scratch: Vec::new(),
        };
        // Kernels since 4.1 say where the data area is.
        let (off, size) = (r.meta_u64(DATA_OFFSET), r.meta_u64(DATA_SIZE));
        if off != 0 && size != 0 && off as usize + size as usize <= map_len {
            r.data_off = off as usize;
            r.data_size = size as usize;
        }
        Ok(r)
    }

    fn atomic(&self, off: usize) -> &AtomicU64 {
        // SAFETY: off is one of the 8-aligned u64 fields of the metadata
        // page, inside the mapping, which lives as long as self.
        unsafe { &*(self.base.add(off) as *const AtomicU64) }
    }

    fn meta_u64(&self, off: usize) -> u64 {
        self.atomic(off).load(Ordering::Relaxed)
    }

    /// Call `f` with every complete record now in the ring, then release
    /// the space to the kernel. Records are (header type, misc, bytes after
    /// the 8-byte header).
    pub fn drain(&mut self, f: &mut dyn FnMut(u32, u16, &[u8])) {
        let head = self.atomic(DATA_HEAD).load(Ordering::Acquire);
        let mut tail = self.atomic(DATA_TAIL).load(Ordering::Relaxed);
        let size = self.data_size as u64;
        // SAFETY: the data area [data_off, data_off + data_size) is inside the mapping.
        let data =
            unsafe { std::slice::from_raw_parts(self.base.add(self.data_off), self.data_size) };
        if head.wrapping_sub(tail) > size {
            // Cannot happen with a well-behaved kernel; resynchronise.
            tail = head;
        }
        while head.wrapping_sub(tail) >= 8 {
            let at = (tail % size) as usize;
            let mut hdr = [0u8; 8];
            copy_wrapped(data, at, &mut hdr);
            let ty = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let misc = u16::from_ne_bytes([hdr[4], hdr[5]]);
            let len = u16::from_ne_bytes([hdr[6], hdr[7]]) as u64;
            if len < 8 || head.wrapping_sub(tail) < len {
                // A torn or bogus header: drop what is left.
                tail = head;
                break;
            }
            let body_at = (at + 8) % self.data_size;
            let blen = (len - 8) as usize;
            if body_at + blen <= self.data_size {
                f(ty, misc, &data[body_at..body_at + blen]);
            } else {
                self.scratch.resize(blen, 0);
                copy_wrapped(data, body_at, &mut self.scratch);
                f(ty, misc, &self.scratch);
            }
            tail = tail.wrapping_add(len);
        }
        self.atomic(DATA_TAIL).store(tail, Ordering::Release);
    }
}

fn copy_wrapped(data: &[u8], at: usize, out: &mut [u8]) {
    let first = out.len().min(data.len() - at);
    out[..first].copy_from_slice(&data[at..at + first]);
    let rest = out.len() - first;
    out[first..].copy_from_slice(&data[..rest]);
}

const DATA_HEAD: usize = std::mem::offset_of!(b::perf_event_mmap_page, data_head);
const DATA_TAIL: usize = std::mem::offset_of!(b::perf_event_mmap_page, data_tail);
const DATA_OFFSET: usize = std::mem::offset_of!(b::perf_event_mmap_page, data_offset);
const DATA_SIZE: usize = std::mem::offset_of!(b::perf_event_mmap_page, data_size);

/// Open one event per online CPU: hardware cycles where the CPU has them,
/// else the cpu-clock software event.
pub fn open_all(freq: u64) -> Result<(EventKind, Vec<CpuRing>), String> {
    let cpus = online_cpus();
    if cpus.is_empty() {
        return Err("no online CPU found in /sys/devices/system/cpu/online".into());
    }
    let mut last_err = String::new();
    for kind in [EventKind::Cycles, EventKind::CpuClock] {
        let mut rings = Vec::new();
        for &c in &cpus {
            match CpuRing::open(kind, c, freq) {
                Ok(r) => rings.push(r),
                Err(e) => {
                    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                        " (CPU profiles of every process need root, CAP_PERFMON or kernel.perf_event_paranoid <= -1)"
                    } else {
                        ""
                    };
                    last_err = format!("perf_event_open({}, cpu {c}): {e}{hint}", kind.name());
                    rings.clear();
                    break;
                }
            }
        }
        if !rings.is_empty() {
            return Ok((kind, rings));
        }
    }
    Err(last_err)
}

/// CPUs listed in /sys/devices/system/cpu/online ("0-3,6").
pub fn online_cpus() -> Vec<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    parse_cpu_list(s.trim())
}

pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            if a <= b && b - a < 65536 {
                out.extend(a..=b);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6"), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpu_list("0"), vec![0]);
        assert_eq!(parse_cpu_list("x,2-1,"), Vec::<u32>::new());
    }
    #[test]
    fn wrapped_copy() {
        let d = [1u8, 2, 3, 4, 5];
        let mut o = [0u8; 4];
        copy_wrapped(&d, 3, &mut o);
        assert_eq!(o, [4, 5, 1, 2]);
    }
}
