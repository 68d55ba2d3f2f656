//! The `perf` stream: always-on CPU profiling.
//!
//! One sampling event per online CPU for every process (hardware cycles
//! where the CPU has a PMU, else the cpu-clock software event), at
//! `--perf-freq` Hz, with kernel and user call chains (frame pointers:
//! code built without them yields only its leaf frame and whatever its
//! stack happens to hold). Each drain reads every CPU's ring, follows the
//! side-band records (MMAP2, COMM, FORK, EXIT, LOST) to know which file a
//! user address belongs to, symbolizes every frame right away (processes
//! exit, binaries get replaced) and stores names into the capture, encoded
//! by [`lpo_format::perf`].

pub mod ring;
pub mod symbols;

use lpo_format::perf::{Encoder, Frame, Sample};
use perf_event_open_sys::bindings as b;
use ring::{CpuRing, EventKind};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use symbols::{ElfCache, KernelSyms};

#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("{0}")]
    Open(String),
}

/// An executable mapping of a process.
#[derive(Debug, Clone)]
struct Map {
    start: u64,
    end: u64,
    pgoff: u64,
    dev: u64,
    ino: u64,
    path: Arc<str>,
}

/// What one drain read, before resolution.
enum Ev {
    Sample {
        pid: u32,
        tid: u32,
        cpu: u32,
        period: u64,
        ips: (usize, usize),
    },
    Mmap {
        pid: u32,
        map: Map,
    },
    Comm {
        pid: u32,
        tid: u32,
        comm: String,
        exec: bool,
    },
    Fork {
        pid: u32,
        ppid: u32,
    },
    Exit {
        pid: u32,
        tid: u32,
    },
}

/// Bound on remembered threads and processes (entries go at EXIT; this
/// catches missed EXITs).
const MAX_TASKS: usize = 1 << 16;

pub struct PerfCollector {
    kind: EventKind,
    rings: Vec<CpuRing>,
    proc_root: PathBuf,
    kernel: KernelSyms,
    elf: ElfCache,
    /// tid → (pid, comm)
    threads: HashMap<u32, (u32, String)>,
    /// pid → executable mappings, sorted by start.
    maps: HashMap<u32, Vec<Map>>,
    enc: Encoder,
    evs: Vec<(u64, Ev)>,
    ips: Vec<u64>,
    samples: Vec<Sample>,
    lost: u64,
    /// Samples lost since recording started.
    pub lost_total: u64,
    /// Samples stored since recording started.
    pub samples_total: u64,
}

const CTX_KERNEL: u64 = b::PERF_CONTEXT_KERNEL;
const CTX_USER: u64 = b::PERF_CONTEXT_USER;
const CTX_MAX: u64 = b::PERF_CONTEXT_MAX;

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(d.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(d.get(at..at + 8)?.try_into().ok()?))
}
fn cstr(d: &[u8]) -> String {
    let end = d.iter().position(|&c| c == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

impl PerfCollector {
    /// Open the events. Fails (with the reason) without privilege
    /// (perf_event_paranoid) or without perf_event support.
    pub fn open(freq: u64, proc_root: PathBuf) -> Result<PerfCollector, PerfError> {
        let (kind, rings) = ring::open_all(freq.max(1)).map_err(PerfError::Open)?;
        Ok(PerfCollector {
            kind,
            rings,
            kernel: KernelSyms::load(&proc_root.join("kallsyms")),
            proc_root,
            elf: ElfCache::new(),
            threads: HashMap::new(),
            maps: HashMap::new(),
            enc: Encoder::new(),
            evs: Vec::new(),
            ips: Vec::new(),
            samples: Vec::new(),
            lost: 0,
            lost_total: 0,
            samples_total: 0,
        })
    }

    pub fn event(&self) -> &'static str {
        self.kind.name()
    }

    /// True when kernel addresses can be named (kallsyms readable).
    pub fn kernel_symbols(&self) -> bool {
        !self.kernel.is_empty()
    }

    /// Read every CPU's ring and resolve what was sampled since the last drain.
    pub fn drain(&mut self) -> &[Sample] {
        self.evs.clear();
        self.ips.clear();
        self.samples.clear();
        let (evs, ips, lost) = (&mut self.evs, &mut self.ips, &mut self.lost);
        for r in &mut self.rings {
            r.drain(&mut |ty, misc, d| parse_record(ty, misc, d, evs, ips, lost));
        }
        // Rings are per CPU; merge them in time order (stable: a CPU's
        // records keep their order at equal times).
        self.evs.sort_by_key(|e| e.0);
        let evs = std::mem::take(&mut self.evs);
        for (time, ev) in &evs {
            match ev {
                Ev::Sample {
                    pid,
                    tid,
                    cpu,
                    period,
                    ips,
                    ..
                } => {
                    let s = self.resolve(*time, *pid, *tid, *cpu, *period, *ips);
                    self.samples.push(s);
                }
                Ev::Mmap { pid, map } => {
                    self.ensure_maps(*pid);
                    if let Some(v) = self.maps.get_mut(pid) {
                        v.retain(|m| m.end <= map.start || m.start >= map.end);
                        let i = v.partition_point(|m| m.start < map.start);
                        v.insert(i, map.clone());
                    }
                }
                Ev::Comm {
                    pid,
                    tid,
                    comm,
                    exec,
                } => {
                    if *exec {
                        // The new image's mappings follow as MMAP2 records.
                        self.maps.insert(*pid, Vec::new());
                    }
                    self.bound();
                    self.threads.insert(*tid, (*pid, comm.clone()));
                }
                Ev::Fork { pid, ppid } => {
                    if pid != ppid {
                        if let Some(m) = self.maps.get(ppid).cloned() {
                            self.bound();
                            self.maps.insert(*pid, m);
                        }
                    }
                }
                Ev::Exit { pid, tid } => {
                    self.threads.remove(tid);
                    if pid == tid {
                        self.maps.remove(pid);
                    }
                }
            }
        }
        self.evs = evs;
        &self.samples
    }

    fn bound(&mut self) {
        if self.threads.len() > MAX_TASKS {
            self.threads.clear();
        }
        if self.maps.len() > MAX_TASKS {
            self.maps.clear();
        }
    }

    /// Store what the last [`PerfCollector::drain`] resolved as one log
    /// sample of stream `i`.
    pub fn append(
        &mut self,
        w: &mut lpo_format::RingWriter,
        i: usize,
        key: i64,
        wall: i64,
        mono: i64,
    ) -> Result<(), lpo_format::Error> {
        let (enc, samples, lost, event) =
            (&mut self.enc, &self.samples, self.lost, self.kind.name());
        let r = w.append_log(i, key, wall, mono, &mut |fresh, buf| {
            enc.encode(fresh, mono, event, lost, samples, buf)
        });
        match r {
            Ok(()) => {
                self.enc.commit();
                self.lost_total = self.lost_total.saturating_add(self.lost);
                self.samples_total += self.samples.len() as u64;
                self.lost = 0;
                Ok(())
            }
            Err(e) => {
                self.enc.rollback();
                Err(e)
            }
        }
    }

    fn comm(&mut self, pid: u32, tid: u32) -> String {
        if let Some((_, c)) = self.threads.get(&tid) {
            return c.clone();
        }
        let c = if tid == 0 {
            "swapper".to_string()
        } else {
            std::fs::read_to_string(self.proc_root.join(format!("{pid}/task/{tid}/comm")))
                .map(|s| s.trim_end_matches('\n').to_string())
                .unwrap_or_else(|_| format!(":{tid}"))
        };
        self.bound();
        self.threads.insert(tid, (pid, c.clone()));
        c
    }

    /// Load a process's mappings from /proc/PID/maps the first time it is needed.
    fn ensure_maps(&mut self, pid: u32) {
        if pid == 0 || self.maps.contains_key(&pid) {
            return;
        }
        let text =
            std::fs::read_to_string(self.proc_root.join(format!("{pid}/maps"))).unwrap_or_default();
        let mut v: Vec<Map> = text.lines().filter_map(parse_maps_line).collect();
        v.sort_by_key(|m| m.start);
        self.bound();
        self.maps.insert(pid, v);
    }

    fn resolve(
        &mut self,
        time: u64,
        pid: u32,
        tid: u32,
        cpu: u32,
        period: u64,
        ips: (usize, usize),
    ) -> Sample {
        let comm = self.comm(pid, tid);
        let mut stack = Vec::with_capacity(ips.1 - ips.0);
        let mut kernel_ctx = None;
        for k in ips.0..ips.1 {
            let ip = self.ips[k];
            if ip >= CTX_MAX {
                kernel_ctx = match ip {
                    CTX_KERNEL => Some(true),
                    CTX_USER => Some(false),
                    _ => None, // guest contexts: not recorded
                };
                continue;
            }
            let kernel = kernel_ctx.unwrap_or(ip >= 1 << 63);
            if kernel {
                stack.push(self.kernel_frame(ip));
                continue;
            }
            let f = self.user_frame(pid, ip);
            let unmapped = f.dso == "[unknown]";
            stack.push(f);
            if unmapped {
                // A return address in no executable mapping: the frame-pointer
                // walk has left the stack (code built without frame
                // pointers), and what follows is whatever memory it points
                // at. Keep this frame as the mark of the cut, drop the rest.
                break;
            }
        }
        Sample {
            time_ns: time as i64,
            pid,
            tid,
            comm,
            cpu,
            period,
            stack,
        }
    }

    fn kernel_frame(&self, ip: u64) -> Frame {
        match self.kernel.lookup(ip) {
            Some((name, off, dso)) => Frame {
                addr: ip,
                sym: Some((name.to_string(), off)),
                dso: dso.to_string(),
                kernel: true,
            },
            None => Frame {
                addr: ip,
                sym: None,
                dso: "[kernel.kallsyms]".into(),
                kernel: true,
            },
        }
    }

    fn user_frame(&mut self, pid: u32, ip: u64) -> Frame {
        self.ensure_maps(pid);
        let map = self.maps.get(&pid).and_then(|v| {
            let i = v.partition_point(|m| m.start <= ip);
            v.get(i.checked_sub(1)?).filter(|m| ip < m.end).cloned()
        });
        let Some(m) = map else {
            return Frame {
                addr: ip,
                sym: None,
                dso: "[unknown]".into(),
                kernel: false,
            };
        };
        let off = ip - m.start + m.pgoff;
        let sym = if m.path.starts_with('[') {
            None // [vdso], [vsyscall]: no file to read
        } else {
            let p = m.path.trim_end_matches(" (deleted)");
            let paths = [
                self.proc_root
                    .join(format!("{pid}/map_files/{:x}-{:x}", m.start, m.end)),
                self.proc_root.join(format!("{pid}/root{p}")),
                PathBuf::from(p),
            ];
            let key = if m.ino != 0 {
                (m.dev, m.ino)
            } else {
                (u64::MAX, fxhash(p.as_bytes()))
            };
            self.elf.get(key, &paths).and_then(|e| e.lookup(off))
        };
        Frame {
            addr: off,
            sym,
            dso: m.path.to_string(),
            kernel: false,
        }
    }
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x100000001b3)
    })
}

/// One line of /proc/PID/maps, if it is an executable file mapping.
fn parse_maps_line(l: &str) -> Option<Map> {
    let mut it = l.split_ascii_whitespace();
    let range = it.next()?;
    let perms = it.next()?;
    let off = it.next()?;
    let dev = it.next()?;
    let ino = it.next()?;
    // The path is the rest after five fields and their padding (it may hold spaces).
    let mut rest = l;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
    }
    let path = rest.trim_start();
    if !perms.contains('x') || path.is_empty() {
        return None;
    }
    let (a, z) = range.split_once('-')?;
    let (maj, min) = dev.split_once(':')?;
    Some(Map {
        start: u64::from_str_radix(a, 16).ok()?,
        end: u64::from_str_radix(z, 16).ok()?,
        pgoff: u64::from_str_radix(off, 16).ok()?,
        dev: (u64::from_str_radix(maj, 16).ok()? << 32) | u64::from_str_radix(min, 16).ok()?,
        ino: ino.parse().ok()?,
        path: Arc::from(path),
    })
}

/// Trailer of non-sample records with sample_id_all and our sample_type:
/// pid, tid, time, cpu, reserved (24 bytes).
fn trailer_time(d: &[u8]) -> u64 {
    d.len()
        .checked_sub(16)
        .and_then(|at| u64_at(d, at))
        .unwrap_or(0)
}

fn parse_record(
    ty: u32,
    misc: u16,
    d: &[u8],
    evs: &mut Vec<(u64, Ev)>,
    ips: &mut Vec<u64>,
    lost: &mut u64,
) {
    match ty {
        b::PERF_RECORD_SAMPLE => {
            // ip, pid, tid, time, cpu, res, period, nr, ips[nr]
            let (Some(pid), Some(tid), Some(time), Some(cpu), Some(period), Some(nr)) = (
                u32_at(d, 8),
                u32_at(d, 12),
                u64_at(d, 16),
                u32_at(d, 24),
                u64_at(d, 32),
                u64_at(d, 40),
            ) else {
                return;
            };
            let nr = (nr as usize).min(d.len().saturating_sub(48) / 8);
            let start = ips.len();
            for k in 0..nr {
                if let Some(ip) = u64_at(d, 48 + 8 * k) {
                    ips.push(ip);
                }
            }
            if nr == 0 {
                // No call chain: keep the sampled IP.
                if let Some(ip) = u64_at(d, 0) {
                    ips.push(ip);
                }
            }
            evs.push((
                time,
                Ev::Sample {
                    pid,
                    tid,
                    cpu,
                    period,
                    ips: (start, ips.len()),
                },
            ));
        }
        b::PERF_RECORD_MMAP2 => {
            // pid, tid, addr, len, pgoff, maj, min, ino, ino_gen, prot (56), flags, filename (64)
            let (Some(pid), Some(addr), Some(len), Some(pgoff), Some(prot)) = (
                u32_at(d, 0),
                u64_at(d, 8),
                u64_at(d, 16),
                u64_at(d, 24),
                u32_at(d, 56),
            ) else {
                return;
            };
            if prot & libc::PROT_EXEC as u32 == 0 {
                return;
            }
            let (dev, ino) = if misc as u32 & b::PERF_RECORD_MISC_MMAP_BUILD_ID != 0 {
                (0, 0)
            } else {
                let maj = u32_at(d, 32).unwrap_or(0) as u64;
                let min = u32_at(d, 36).unwrap_or(0) as u64;
                ((maj << 32) | min, u64_at(d, 40).unwrap_or(0))
            };
            let name = d.get(64..d.len().saturating_sub(24)).unwrap_or(&[]);
            evs.push((
                trailer_time(d),
                Ev::Mmap {
                    pid,
                    map: Map {
                        start: addr,
                        end: addr.saturating_add(len),
                        pgoff,
                        dev,
                        ino,
                        path: Arc::from(cstr(name)),
                    },
                },
            ));
        }
        b::PERF_RECORD_COMM => {
            let (Some(pid), Some(tid)) = (u32_at(d, 0), u32_at(d, 4)) else {
                return;
            };
            let name = d.get(8..d.len().saturating_sub(24)).unwrap_or(&[]);
            evs.push((
                trailer_time(d),
                Ev::Comm {
                    pid,
                    tid,
                    comm: cstr(name),
                    exec: misc as u32 & b::PERF_RECORD_MISC_COMM_EXEC != 0,
                },
            ));
        }
        b::PERF_RECORD_FORK | b::PERF_RECORD_EXIT => {
            let (Some(pid), Some(ppid), Some(tid), Some(time)) =
                (u32_at(d, 0), u32_at(d, 4), u32_at(d, 8), u64_at(d, 16))
            else {
                return;
            };
            let ev = if ty == b::PERF_RECORD_FORK {
                Ev::Fork { pid, ppid }
            } else {
                Ev::Exit { pid, tid }
            };
            evs.push((time, ev));
        }
        b::PERF_RECORD_LOST => *lost = lost.saturating_add(u64_at(d, 8).unwrap_or(0)),
        b::PERF_RECORD_LOST_SAMPLES => *lost = lost.saturating_add(u64_at(d, 0).unwrap_or(0)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let m = parse_maps_line(
            "7f1c2a028000-7f1c2a1a0000 r-xp 00028000 fd:01 1054 /usr/lib/x86_64-linux-gnu/libc.so.6",
        )
        .unwrap();
        assert_eq!(
            (m.start, m.pgoff, m.dev, m.ino),
            (0x7f1c2a028000, 0x28000, (0xfd << 32) | 1, 1054)
        );
        assert_eq!(&*m.path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        let m = parse_maps_line(
            "1000-2000 r-xp 00000000 08:01 77                         /tmp/a b (deleted)",
        )
        .unwrap();
        assert_eq!(&*m.path, "/tmp/a b (deleted)");
        assert!(parse_maps_line("1000-2000 rw-p 00000000 08:01 77 /tmp/x").is_none());
        assert!(parse_maps_line("1000-2000 r-xp 00000000 00:00 0 ").is_none());
        assert!(parse_maps_line("garbage").is_none());
    }

    #[test]
    fn records_never_panic_on_short_input() {
        let (mut evs, mut ips, mut lost) = (Vec::new(), Vec::new(), 0);
        for ty in 0..20 {
            for n in 0..120 {
                let d = vec![0xffu8; n];
                parse_record(ty, 0xffff, &d, &mut evs, &mut ips, &mut lost);
            }
        }
    }
}
