//! The per-process collector: one row per live process (and optionally per
//! thread) every sweep, at a cost of roughly one `pread` per idle process.
//!
//! # How a sweep works
//!
//! * `/proc` is listed with `getdents64` on a directory fd kept open across
//!   sweeps (rewound with `lseek`), parsing numeric names in place: no heap
//!   allocation per entry. The listing is skipped when the last-pid field of
//!   `/proc/loadavg` (read *before* listing) has not moved since the
//!   previous listing: no pid allocated means no new process or thread, and
//!   vanished ones show up as `ESRCH` on their kept fds. This is only
//!   trusted when `{root}/self` is our own pid (loadavg reports the reader's
//!   pid namespace), and a listing is done every 64 sweeps anyway.
//! * For every process we keep `/proc/PID/{schedstat,stat,status,io}` open
//!   (4 fds; the `RLIMIT_NOFILE` soft limit is raised to the hard limit in
//!   [`ProcessCollector::open`]) and re-read them with `pread` at offset 0
//!   into reusable buffers; the `procfs` parsers do not allocate.
//! * `schedstat` is read first. Only when its `run_ns` moved (the task ran)
//!   or the process is new are `stat`, `status` and `io` re-read
//!   ([`SweepStats::full_reads`], [`ProcRow::refreshed`]). Otherwise the
//!   previous values are reused ([`SweepStats::skipped_unchanged`]).
//! * Periodic refresh, for memory reclaimed or swapped out from processes
//!   that never run: every `full_refresh_every` sweeps, staggered (each life
//!   gets a phase at birth, so an even share is refreshed each sweep), `stat`
//!   is re-read and, only if it changed (any such change moves `rss`),
//!   `status` too. `io` is not: only the task's own activity moves it. (The
//!   brief asked for stat+status+io; status is the costliest file, ~3× stat,
//!   and re-reading it and io for nothing dominated the sweep.) Tasks
//!   without an mm (kernel threads, zombies: vsize 0) are not refreshed. In
//!   threads mode a refresh does not re-list the task directory (the thread
//!   set cannot change while no thread runs); thread rows get the process's
//!   fresh memory values (threads share the mm).
//! * `/proc/PID/schedstat` describes the thread-group *leader* only. A
//!   multi-threaded process whose leader sleeps while workers run would look
//!   idle, so for processes with more than one thread `stat` (which sums the
//!   whole group) is re-read every sweep and compared with the last read; a
//!   change triggers the `status`/`io` re-read. With
//!   [`ProcOptions::threads`] every thread's own `schedstat` is read and
//!   "any thread ran" is used instead.
//! * Staleness accepted on purpose: a task that did not run cannot change its
//!   CPU times, faults, context switches or I/O counters, and every state
//!   change (sleep → stop, → zombie, exec, …) happens in the task's own
//!   context, i.e. it runs. What can go stale: (1) a task woken but still
//!   waiting on a runqueue keeps its old state letter (`S` instead of `R`)
//!   until it actually runs; (2) memory that is reclaimed or swapped out
//!   from a sleeping process (`rss_*`, `swap_kb`, `rss_pages` of an idle
//!   single-threaded process) is updated only by the periodic refresh;
//!   (3) sub-tick activity of a non-leader thread (threads mode off) shows
//!   up in `vol_cs`/`invol_cs` only at the next refresh.
//! * A process life is `(pid, starttime)`. The kept fds are bound to the
//!   kernel's `struct pid`, so once a process is reaped they fail with
//!   `ESRCH` even if the number is reused: the entry is dropped (counted in
//!   `gone`) and the pid is opened afresh as a new life. Whenever `stat` is
//!   re-read its `starttime` is also compared, which catches reuse on plain
//!   files (test fixtures).
//! * `cmdline` and `exe` are read once per life, and again when `comm`
//!   changes (an exec). Both can block: `cmdline` reads the target's memory
//!   (`access_remote_vm` takes its `mmap_lock`), which hangs while another
//!   thread of that process holds the lock in D state (e.g. a page fault on a
//!   dead NFS server); on old kernels `exe` also took `mmap_sem`. So they are
//!   read by a helper thread, batched once per sweep: the sweep waits at most
//!   [`META_BUDGET`] (plus a little per read, see [`META_BUDGET_MAX`]) in
//!   total, and a request that has been running for [`META_STUCK_AFTER`]
//!   while the helper sleeps in the kernel (its `/proc/self/task/TID/stat`
//!   state is not `R`, twice in a row) or for [`META_STUCK_HARD`] in any case
//!   is declared stuck: that process is marked slow
//!   (its row keeps an empty/previous cmdline; counted in
//!   [`SweepStats::slow`]) and retried later with exponential backoff, the
//!   stuck helper is abandoned (it exits if the read ever returns) and a
//!   fresh one takes over the queue. At most [`META_MAX_WORKERS`] helpers
//!   exist, so a box full of stuck processes cannot make us leak threads.
//! * `stat`, `schedstat` and `status` take no `mmap_lock` (RSS and VM sizes
//!   are per-mm counters read locklessly), so they are read inline. `io`
//!   takes the target's `exec_update_lock` for reading (killable; since 5.7,
//!   before that `cred_guard_mutex`), held for writing only briefly inside
//!   `execve` after the other threads are gone; that is accepted. (On
//!   kernels before 5.7 an `io` read could wait behind an exec stuck in
//!   `de_thread`.)
//! * Unreadable or vanished files never fail the sweep: a process whose
//!   `stat` cannot be read is skipped; missing `status`/`io` (permissions,
//!   zombies, old kernels) keep the previous values (`io_ok` tells whether
//!   `io` was readable). Zombies are reported (state `Z`), kernel threads too
//!   (empty `cmdline`).
//! * If the fd budget (soft limit minus a reserve, shared by all collectors
//!   in the process) is used up, files are opened, read and closed each time
//!   instead of being kept.

use crate::procfs::process::{
    cmdline_args, parse_pid_io, parse_pid_schedstat, parse_pid_stat, parse_pid_status, PidIo,
    PidSchedstat, PidStat, PidStatus,
};
use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A sweep waits for cmdline/exe reads at most this long, plus
/// [`META_BUDGET_PER_READ`] per queued read, at most [`META_BUDGET_MAX`];
/// reads still queued then are answered in a later sweep.
pub const META_BUDGET: Duration = Duration::from_millis(50);
pub const META_BUDGET_PER_READ: Duration = Duration::from_micros(200);
pub const META_BUDGET_MAX: Duration = Duration::from_millis(250);
/// A cmdline/exe read running this long while the helper thread is not
/// runnable (asleep in the kernel, `D` or `S`, at two checks in a row) is
/// declared stuck. A read that is merely slow because the CPU is busy (the
/// helper is `R`) is not.
pub const META_STUCK_AFTER: Duration = Duration::from_millis(20);
/// A read running this long is declared stuck whatever the helper's state.
pub const META_STUCK_HARD: Duration = Duration::from_secs(1);
/// Helper threads alive at most (the current one plus abandoned stuck ones).
pub const META_MAX_WORKERS: usize = 4;
/// Sweeps before a slow process's cmdline is retried (doubles each time).
const SLOW_RETRY_FIRST: u64 = 30;
const SLOW_RETRY_MAX: u64 = 3600;
/// `cmdline` is read up to this many bytes (longer ones are truncated).
const CMDLINE_MAX: usize = 32 * 1024;

/// Collector options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcOptions {
    /// Also report every thread (`/proc/PID/task/TID`).
    pub threads: bool,
    /// Every this many sweeps (staggered), re-read `stat` (and `status` if
    /// it changed) of processes that did not run, to catch reclaimed or
    /// swapped-out memory; 0 and 1 mean every sweep.
    pub full_refresh_every: u32,
}

impl Default for ProcOptions {
    fn default() -> Self {
        ProcOptions {
            threads: false,
            full_refresh_every: 10,
        }
    }
}

/// One process (or thread) in one sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcRow {
    /// Process id, or thread id for thread rows.
    pub pid: u32,
    /// Thread group id; equals `pid` for process rows.
    pub tgid: u32,
    /// Clock ticks after boot (stat field 22); `(pid, starttime)` identifies
    /// a process life.
    pub starttime: u64,
    /// `true` for rows from `/proc/PID/task/TID` (threads mode); the main
    /// thread's row then has `pid == tgid` like its process row.
    pub is_thread: bool,
    /// The task ran (or is new), so `stat`, `status` and `io` were re-read in
    /// this sweep; `false`: values carried over from earlier sweeps (except
    /// memory fields, updated by the periodic refresh).
    pub refreshed: bool,
    // Attributes that rarely change.
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Real uid.
    pub uid: u32,
    pub euid: u32,
    pub comm: Arc<str>,
    /// Arguments joined by ' '; empty for kernel threads (and until read).
    pub cmdline: Arc<str>,
    /// Target of the `exe` link; empty if unreadable.
    pub exe: Arc<str>,
    // Values per sample.
    pub state: u8,
    pub priority: i64,
    pub nice: i64,
    pub num_threads: u64,
    pub vsize: u64,
    pub rss_pages: u64,
    pub minflt: u64,
    pub majflt: u64,
    pub utime: u64,
    pub stime: u64,
    pub processor: u32,
    pub delayacct_blkio_ticks: u64,
    pub vol_cs: u64,
    pub invol_cs: u64,
    pub rss_anon_kb: u64,
    pub rss_file_kb: u64,
    pub rss_shmem_kb: u64,
    pub swap_kb: u64,
    pub rchar: u64,
    pub wchar: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
    pub run_ns: u64,
    pub wait_ns: u64,
    pub timeslices: u64,
    /// `/proc/PID/io` was readable (else the io fields are the last values
    /// read, or 0).
    pub io_ok: bool,
}

/// What one sweep did. Except `processes`/`threads`, counts cover process
/// and thread rows alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Process rows emitted.
    pub processes: usize,
    /// Thread rows emitted.
    pub threads: usize,
    /// Rows whose stat+status+io were re-read (the task ran, or is new).
    pub full_reads: usize,
    /// Rows whose values were reused (the task did not run; a periodic
    /// refresh may still have re-read stat).
    pub skipped_unchanged: usize,
    /// New lives seen (first sweep: everything).
    pub new: usize,
    /// Lives that ended since the last sweep.
    pub gone: usize,
    /// Processes whose cmdline/exe could not be read in time (stuck or
    /// deferred); retried later.
    pub slow: usize,
    /// Wall time of the sweep.
    pub elapsed_ns: u64,
}

// ---------------------------------------------------------------------------
// File descriptors kept open, counted against a process-wide budget.

static KEPT_FDS: AtomicUsize = AtomicUsize::new(0);
static FD_BUDGET: AtomicUsize = AtomicUsize::new(0);

struct Kept(File);

impl Kept {
    /// Keeps `f` if the budget allows, else hands it back.
    fn try_keep(f: File) -> Result<Kept, File> {
        let budget = FD_BUDGET.load(Ordering::Relaxed);
        if KEPT_FDS.fetch_add(1, Ordering::Relaxed) < budget {
            Ok(Kept(f))
        } else {
            KEPT_FDS.fetch_sub(1, Ordering::Relaxed);
            Err(f)
        }
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        KEPT_FDS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Raises the `RLIMIT_NOFILE` soft limit to the hard limit and sets the
/// budget of kept fds (soft limit minus a reserve for the rest of the
/// program). Returns the soft limit.
fn raise_nofile_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 1024;
    }
    if rl.rlim_cur < rl.rlim_max {
        let mut want = rl;
        want.rlim_cur = if rl.rlim_max == libc::RLIM_INFINITY {
            std::fs::read_to_string("/proc/sys/fs/nr_open")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(1 << 20)
        } else {
            rl.rlim_max
        };
        // SAFETY: valid pointer to an rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            rl = want;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    let soft = rl.rlim_cur as u64;
    let reserve = (soft / 8).max(64);
    let budget = soft.saturating_sub(reserve) as usize;
    FD_BUDGET.fetch_max(budget, Ordering::Relaxed);
    soft
}

/// State of one of the four kept files of an entry.
enum Slot {
    /// Not opened yet (or not kept: fd budget exhausted).
    Closed,
    Open(Kept),
    /// Opening failed for this life (missing, permission); retried only on
    /// periodic refresh.
    Missing,
}

const SCHED: usize = 0;
const STAT: usize = 1;
const STATUS: usize = 2;
const IO: usize = 3;
const FILE_NAMES: [&[u8]; 4] = [b"schedstat", b"stat", b"status", b"io"];

struct ReadErr {
    /// ESRCH/ENOENT: the task is gone.
    gone: bool,
    /// The failing file had been open (and readable) before.
    was_open: bool,
}

fn is_gone(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ESRCH) | Some(libc::ENOENT))
}

/// `pread` the whole file from offset 0 into `buf` (grown as needed).
/// A read shorter than the space offered ends it: procfs and regular files
/// return everything available, which saves the extra `read` returning 0.
fn pread_all(f: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.is_empty() {
        buf.resize(4096, 0);
    }
    let mut n = 0;
    loop {
        if n == buf.len() {
            if n >= 1 << 20 {
                return Ok(n); // no /proc/PID file we read is that big
            }
            buf.resize(n * 2, 0);
        }
        match f.read_at(&mut buf[n..], n as u64) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                n += k;
                if n < buf.len() {
                    return Ok(n);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn open_cstr(path: &[u8], flags: libc::c_int) -> io::Result<OwnedFd> {
    debug_assert_eq!(path.last(), Some(&0));
    // SAFETY: `path` is NUL-terminated (built by `Scratch::path`).
    let fd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            flags | libc::O_CLOEXEC | libc::O_NOCTTY,
        )
    };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fresh fd we own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn push_u32(v: &mut Vec<u8>, mut n: u32) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    v.extend_from_slice(&tmp[i..]);
}

fn parse_pid_name(name: &[u8]) -> Option<u32> {
    if name.first() == Some(&b'0') {
        return None;
    }
    crate::procfs::parse_u64(name).and_then(|v| u32::try_from(v).ok())
}

/// Lists the numeric entries of directory `fd` (rewound first) into `out`.
fn list_numeric(fd: RawFd, buf: &mut Vec<u8>, out: &mut Vec<u32>) -> io::Result<()> {
    out.clear();
    if buf.len() < 4096 {
        buf.resize(32 * 1024, 0);
    }
    // SAFETY: plain syscall on an fd we own.
    if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let n = (n as usize).min(buf.len());
        if n == 0 {
            return Ok(());
        }
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen;
        //                         u8 d_type; char d_name[]; }
        let mut off = 0;
        while off + 19 <= n {
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen < 19 || off + reclen > n {
                break;
            }
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Some(id) = parse_pid_name(name) {
                out.push(id);
            }
            off += reclen;
        }
    }
}

/// Multiplicative hasher for pid keys (SipHash is needlessly slow here).
#[derive(Default)]
struct PidHasher(u64);

impl Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type PidMap<V> = HashMap<u32, V, BuildHasherDefault<PidHasher>>;

// ---------------------------------------------------------------------------
// Per-life state.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meta {
    /// cmdline/exe must be (re-)read.
    Needed,
    /// A read is queued at the helper.
    Pending,
    Known,
    /// The read got stuck; retry at sweep `retry_gen`.
    Slow {
        retry_gen: u64,
    },
}

struct Entry {
    /// Seen with a readable `stat` at least once (not a new life).
    known: bool,
    starttime: u64,
    files: [Slot; 4],
    /// The last `stat` parsed (to see whether a multi-threaded process ran).
    last_stat: PidStat,
    /// `schedstat` gave a value last time.
    sched_valid: bool,
    comm_raw: Vec<u8>,
    phase: u32,
    /// Sweep generation in which the pid was last listed.
    seen: u64,
    meta: Meta,
    slow_backoff: u64,
    row: ProcRow,
    /// Threads mode: the threads, sorted by tid.
    threads: Vec<Entry>,
}

impl Entry {
    fn new(pid: u32, tgid: u32, is_thread: bool, phase: u32, empty: &Arc<str>) -> Entry {
        Entry {
            known: false,
            starttime: 0,
            files: [Slot::Closed, Slot::Closed, Slot::Closed, Slot::Closed],
            last_stat: PidStat::default(),
            sched_valid: false,
            comm_raw: Vec::new(),
            phase,
            seen: 0,
            meta: if is_thread { Meta::Known } else { Meta::Needed },
            slow_backoff: SLOW_RETRY_FIRST,
            row: ProcRow {
                pid,
                tgid,
                starttime: 0,
                is_thread,
                refreshed: false,
                ppid: 0,
                pgrp: 0,
                session: 0,
                uid: 0,
                euid: 0,
                comm: empty.clone(),
                cmdline: empty.clone(),
                exe: empty.clone(),
                state: 0,
                priority: 0,
                nice: 0,
                num_threads: 0,
                vsize: 0,
                rss_pages: 0,
                minflt: 0,
                majflt: 0,
                utime: 0,
                stime: 0,
                processor: 0,
                delayacct_blkio_ticks: 0,
                vol_cs: 0,
                invol_cs: 0,
                rss_anon_kb: 0,
                rss_file_kb: 0,
                rss_shmem_kb: 0,
                swap_kb: 0,
                rchar: 0,
                wchar: 0,
                read_bytes: 0,
                write_bytes: 0,
                cancelled_write_bytes: 0,
                run_ns: 0,
                wait_ns: 0,
                timeslices: 0,
                io_ok: false,
            },
            threads: Vec::new(),
        }
    }

    /// Rows (process + threads) this entry stands for.
    fn lives(&self) -> usize {
        usize::from(self.known) + self.threads.iter().filter(|t| t.known).count()
    }
}

enum Outcome {
    Alive,
    /// Unreadable or vanished: drop this life.
    Dead,
    /// `stat` shows another starttime: the pid now belongs to a new life.
    Reborn,
}

/// Buffers and settings shared by all entries during a sweep.
struct Scratch {
    root: Vec<u8>,
    root_ok: bool,
    path: Vec<u8>,
    bufs: [Vec<u8>; 4],
    dents: Vec<u8>,
    tids: Vec<u32>,
    spare_threads: Vec<Entry>,
    thread_rows: Vec<ProcRow>,
    empty: Arc<str>,
    gen: u64,
    every: u64,
    threads_mode: bool,
    next_phase: u32,
    stats: SweepStats,
}

impl Scratch {
    /// `{root}/{tgid}[/task/{tid}][/{name}]\0`
    fn path(&mut self, tgid: u32, tid: Option<u32>, name: &[u8]) -> &[u8] {
        self.path.clear();
        self.path.extend_from_slice(&self.root);
        self.path.push(b'/');
        push_u32(&mut self.path, tgid);
        if let Some(t) = tid {
            self.path.extend_from_slice(b"/task/");
            push_u32(&mut self.path, t);
        }
        if !name.is_empty() {
            self.path.push(b'/');
            self.path.extend_from_slice(name);
        }
        self.path.push(0);
        &self.path
    }

    fn phase(&mut self) -> u32 {
        let p = self.next_phase;
        self.next_phase = self.next_phase.wrapping_add(1);
        (p as u64 % self.every) as u32
    }

    /// Reads file `which` of a task into `self.bufs[which]`.
    fn read(
        &mut self,
        slot: &mut Slot,
        which: usize,
        tgid: u32,
        tid: Option<u32>,
        retry_missing: bool,
    ) -> Result<usize, ReadErr> {
        match slot {
            Slot::Open(k) => pread_all(&k.0, &mut self.bufs[which]).map_err(|e| ReadErr {
                gone: is_gone(&e),
                was_open: true,
            }),
            Slot::Missing if !retry_missing => Err(ReadErr {
                gone: false,
                was_open: false,
            }),
            _ => {
                let path_ok = self.root_ok;
                let opened = if path_ok {
                    open_cstr(self.path(tgid, tid, FILE_NAMES[which]), libc::O_RDONLY)
                } else {
                    Err(io::Error::from_raw_os_error(libc::EINVAL))
                };
                match opened {
                    Err(e) => {
                        let exhausted =
                            matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                        *slot = if exhausted {
                            Slot::Closed
                        } else {
                            Slot::Missing
                        };
                        Err(ReadErr {
                            gone: is_gone(&e),
                            was_open: false,
                        })
                    }
                    Ok(fd) => {
                        let f = File::from(fd);
                        let r = pread_all(&f, &mut self.bufs[which]);
                        if r.is_ok() {
                            *slot = match Kept::try_keep(f) {
                                Ok(k) => Slot::Open(k),
                                Err(_closed) => Slot::Closed,
                            };
                        }
                        r.map_err(|e| ReadErr {
                            gone: is_gone(&e),
                            was_open: false,
                        })
                    }
                }
            }
        }
    }
}

fn apply_stat(row: &mut ProcRow, st: &PidStat) {
    row.starttime = st.starttime;
    row.ppid = st.ppid;
    row.pgrp = st.pgrp;
    row.session = st.session;
    row.state = st.state;
    row.priority = st.priority;
    row.nice = st.nice;
    row.num_threads = st.num_threads;
    row.vsize = st.vsize;
    row.rss_pages = st.rss_pages;
    row.minflt = st.minflt;
    row.majflt = st.majflt;
    row.utime = st.utime;
    row.stime = st.stime;
    row.processor = st.processor;
    row.delayacct_blkio_ticks = st.delayacct_blkio_ticks;
}

/// Memory fields (whole-mm values, the same in every thread's files).
fn copy_mem(dst: &mut ProcRow, src: &ProcRow) {
    dst.vsize = src.vsize;
    dst.rss_pages = src.rss_pages;
    dst.rss_anon_kb = src.rss_anon_kb;
    dst.rss_file_kb = src.rss_file_kb;
    dst.rss_shmem_kb = src.rss_shmem_kb;
    dst.swap_kb = src.swap_kb;
}

fn apply_status(row: &mut ProcRow, st: &PidStatus) {
    row.uid = st.uid[0];
    row.euid = st.uid[1];
    row.vol_cs = st.voluntary_ctxt_switches;
    row.invol_cs = st.nonvoluntary_ctxt_switches;
    row.rss_anon_kb = st.rss_anon_kb;
    row.rss_file_kb = st.rss_file_kb;
    row.rss_shmem_kb = st.rss_shmem_kb;
    row.swap_kb = st.vm_swap_kb;
}

fn apply_io(row: &mut ProcRow, io: &PidIo) {
    row.rchar = io.rchar;
    row.wchar = io.wchar;
    row.read_bytes = io.read_bytes;
    row.write_bytes = io.write_bytes;
    row.cancelled_write_bytes = io.cancelled_write_bytes;
}

/// Reads and parses `stat` of a task. `Err` means the life is over (or the
/// file is unusable).
fn read_stat(
    sc: &mut Scratch,
    e: &mut Entry,
    tgid: u32,
    tid: Option<u32>,
    out: &mut PidStat,
) -> Result<Vec<u8>, ()> {
    let n = sc
        .read(&mut e.files[STAT], STAT, tgid, tid, true)
        .map_err(|_| ())?;
    let comm = parse_pid_stat(&sc.bufs[STAT][..n], out).map_err(|_| ())?;
    // Return comm only when it differs (the common case allocates nothing).
    if comm == e.comm_raw.as_slice() {
        Ok(Vec::new())
    } else {
        Ok(comm.to_vec())
    }
}

/// Updates one entry (process or thread) and pushes its row(s).
fn sweep_entry(
    sc: &mut Scratch,
    e: &mut Entry,
    tgid: u32,
    tid: Option<u32>,
    out: &mut Vec<ProcRow>,
) -> Outcome {
    let is_new = !e.known;
    let is_thread = tid.is_some();
    let mut ran = is_new;

    // 1. schedstat: did the task run since the last sweep?
    match sc.read(&mut e.files[SCHED], SCHED, tgid, tid, is_new) {
        Ok(n) => {
            let mut s = PidSchedstat::default();
            if parse_pid_schedstat(&sc.bufs[SCHED][..n], &mut s).is_ok() {
                if !e.sched_valid || s.run_ns != e.row.run_ns {
                    ran = true;
                }
                e.row.run_ns = s.run_ns;
                e.row.wait_ns = s.wait_ns;
                e.row.timeslices = s.timeslices;
                e.sched_valid = true;
            } else {
                e.sched_valid = false;
                ran = true;
            }
        }
        Err(err) => {
            if err.was_open && err.gone {
                return Outcome::Dead;
            }
            e.sched_valid = false;
            ran = true; // cannot tell: read everything
        }
    }
    // Kernel threads and zombies (no mm: vsize 0) have no memory to lose.
    let refresh_due = (sc.gen + e.phase as u64).is_multiple_of(sc.every) && e.last_stat.vsize != 0;

    // 2. threads (process entries in threads mode); rows go to a side buffer
    // so that the process row comes first.
    let mut trows = Vec::new();
    if !is_thread && sc.threads_mode {
        trows = std::mem::take(&mut sc.thread_rows);
        trows.clear();
        // (A periodic refresh does not need a new listing: the thread set
        // cannot change while no thread runs.)
        if sweep_threads(sc, e, tgid, is_new || ran, &mut trows) {
            ran = true;
        }
    }

    // 3. multi-threaded process, threads mode off: the leader's schedstat
    // says nothing about the other threads, so look at the group's stat.
    let mut st = PidStat::default();
    let mut have_stat = None;
    if !ran && !refresh_due && !is_thread && !sc.threads_mode && e.row.num_threads > 1 {
        match read_stat(sc, e, tgid, tid, &mut st) {
            Ok(comm) => {
                if st != e.last_stat || !comm.is_empty() {
                    ran = true;
                }
                have_stat = Some(comm);
            }
            Err(()) => return Outcome::Dead,
        }
    }

    // 4. stat (ran, new, periodic refresh), then status and io as needed.
    // A periodic refresh of a task that did not run only looks for memory
    // that was reclaimed or swapped out behind its back: every such change
    // moves `rss` in stat, so status (the costliest file) is re-read only
    // when stat changed, and io (which only its own activity moves) not.
    if ran || refresh_due || have_stat.is_some() {
        let comm = match have_stat.take() {
            Some(c) => c,
            None => match read_stat(sc, e, tgid, tid, &mut st) {
                Ok(c) => c,
                Err(()) => return Outcome::Dead,
            },
        };
        if !is_new && st.starttime != e.starttime {
            return Outcome::Reborn;
        }
        let stat_changed = is_new || st != e.last_stat || !comm.is_empty();
        e.starttime = st.starttime;
        apply_stat(&mut e.row, &st);
        e.last_stat = st;
        if !comm.is_empty() || is_new {
            e.row.comm = Arc::from(String::from_utf8_lossy(&comm).as_ref());
            e.comm_raw = comm;
            if !is_new && !is_thread {
                e.meta = Meta::Needed; // exec: cmdline and exe changed
            }
        }
        let retry = is_new || refresh_due;
        if ran || stat_changed {
            if let Ok(n) = sc.read(&mut e.files[STATUS], STATUS, tgid, tid, retry) {
                let mut s = PidStatus::default();
                if parse_pid_status(&sc.bufs[STATUS][..n], &mut s).is_ok() {
                    apply_status(&mut e.row, &s);
                }
            }
        }
        if ran {
            e.row.io_ok = false;
            if let Ok(n) = sc.read(&mut e.files[IO], IO, tgid, tid, retry) {
                let mut s = PidIo::default();
                if parse_pid_io(&sc.bufs[IO][..n], &mut s).is_ok() {
                    apply_io(&mut e.row, &s);
                    e.row.io_ok = true;
                }
            }
        }
    }
    if !ran && refresh_due && !is_thread && sc.threads_mode {
        // Threads share the process's mm: give them its fresh memory values.
        for t in e.threads.iter_mut() {
            copy_mem(&mut t.row, &e.row);
        }
        for r in trows.iter_mut() {
            copy_mem(r, &e.row);
        }
    }
    let refreshed = ran;
    if ran {
        sc.stats.full_reads += 1;
    } else {
        sc.stats.skipped_unchanged += 1;
    }
    e.row.refreshed = refreshed;
    if is_new {
        sc.stats.new += 1;
    }
    e.known = true;
    if is_thread {
        sc.stats.threads += 1;
    } else {
        sc.stats.processes += 1;
    }
    out.push(e.row.clone());
    if !is_thread && sc.threads_mode {
        out.append(&mut trows);
        sc.thread_rows = trows;
    }
    Outcome::Alive
}

/// Threads mode: updates `pe.threads` and pushes their rows. Returns whether
/// any thread ran, appeared or vanished.
fn sweep_threads(
    sc: &mut Scratch,
    pe: &mut Entry,
    tgid: u32,
    force: bool,
    out: &mut Vec<ProcRow>,
) -> bool {
    // Cheap path: no known thread ran, so none was created or exited either
    // (clone and exit both run the task): skip listing the task directory.
    if !force && !pe.threads.is_empty() {
        let mut changed = false;
        for t in pe.threads.iter_mut() {
            let tid = t.row.pid;
            if tid == tgid && t.sched_valid {
                // the main thread: its schedstat is the process's, which was
                // just read and did not move (else `force`)
                continue;
            }
            match sc.read(&mut t.files[SCHED], SCHED, tgid, Some(tid), false) {
                Ok(n) => {
                    let mut s = PidSchedstat::default();
                    if !t.sched_valid
                        || parse_pid_schedstat(&sc.bufs[SCHED][..n], &mut s).is_err()
                        || s.run_ns != t.row.run_ns
                    {
                        changed = true;
                        break;
                    }
                }
                Err(_) => {
                    changed = true;
                    break;
                }
            }
        }
        if !changed {
            for t in pe.threads.iter_mut() {
                t.row.refreshed = false;
                sc.stats.skipped_unchanged += 1;
                sc.stats.threads += 1;
                out.push(t.row.clone());
            }
            return false;
        }
    }

    // Full walk of /proc/PID/task.
    let mut tids = std::mem::take(&mut sc.tids);
    tids.clear();
    let listed = match open_cstr(
        sc.path(tgid, None, b"task"),
        libc::O_RDONLY | libc::O_DIRECTORY,
    ) {
        Ok(fd) => list_numeric(fd.as_raw_fd(), &mut sc.dents, &mut tids).is_ok(),
        Err(_) => false,
    };
    if !listed {
        tids.clear();
    }
    tids.sort_unstable();
    tids.dedup();

    let mut any = false;
    let mut old = std::mem::take(&mut pe.threads);
    let mut new = std::mem::take(&mut sc.spare_threads);
    new.clear();
    {
        let mut it = old.drain(..).peekable();
        for &tid in &tids {
            while it.peek().is_some_and(|o| o.row.pid < tid) {
                let o = it.next().expect("peeked");
                sc.stats.gone += usize::from(o.known);
                any = true;
            }
            let mut t = match it.peek() {
                Some(o) if o.row.pid == tid => it.next().expect("peeked"),
                _ => {
                    any = true;
                    new_thread(sc, pe, tid, tgid)
                }
            };
            let was_known = t.known;
            let ran_before = t.row.run_ns;
            match sweep_entry(sc, &mut t, tgid, Some(tid), out) {
                Outcome::Alive => {
                    if !was_known || t.row.run_ns != ran_before || !t.sched_valid {
                        any = true;
                    }
                    new.push(t);
                }
                Outcome::Dead | Outcome::Reborn => {
                    any = true;
                    sc.stats.gone += usize::from(was_known);
                    if was_known {
                        let mut t = new_thread(sc, pe, tid, tgid);
                        if let Outcome::Alive = sweep_entry(sc, &mut t, tgid, Some(tid), out) {
                            new.push(t);
                        }
                    }
                }
            }
        }
        for o in it {
            sc.stats.gone += usize::from(o.known);
            any = true;
        }
    }
    pe.threads = new;
    sc.spare_threads = old;
    sc.tids = tids;
    any
}

fn new_thread(sc: &mut Scratch, pe: &Entry, tid: u32, tgid: u32) -> Entry {
    let mut t = Entry::new(tid, tgid, true, pe.phase, &sc.empty);
    t.row.cmdline = pe.row.cmdline.clone();
    t.row.exe = pe.row.exe.clone();
    t
}

// ---------------------------------------------------------------------------
// cmdline/exe reads on a helper thread, with a bounded wait.

#[derive(Debug, Clone, Copy)]
struct MetaJob {
    seq: u64,
    pid: u32,
    starttime: u64,
    /// Sweep that queued it and the range of its rows in that sweep's `out`.
    gen: u64,
    out_start: usize,
    out_end: usize,
}

/// `(cmdline, exe)`; `None`: the process is gone (or another life has the
/// pid).
type MetaAnswer = Option<(Arc<str>, Arc<str>)>;

enum MetaOutcome {
    Done(MetaAnswer),
    /// Timed out, or no helper is available.
    Slow,
}

struct Busy {
    seq: AtomicU64,
    since_ns: AtomicU64,
    /// The helper's thread id (0 until it started).
    tid: AtomicU64,
}

/// Whether thread `tid` of this process is asleep in the kernel (not `R`).
/// Read from the real /proc whatever root the collector reads: it is about
/// our own thread. Unreadable ⇒ `false` (the hard limit still applies).
fn thread_blocked(tid: u64) -> bool {
    if tid == 0 {
        return false;
    }
    let Ok(text) = std::fs::read(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    let mut st = PidStat::default();
    parse_pid_stat(&text, &mut st).is_ok() && st.state != b'R'
}

struct Worker {
    tx: mpsc::Sender<(u64, u32, u64)>,
    rx: mpsc::Receiver<(u64, MetaAnswer)>,
    busy: Arc<Busy>,
}

struct MetaReader {
    root: Arc<PathBuf>,
    worker: Option<Worker>,
    /// Jobs sent to the current worker, oldest first (it answers in order).
    inflight: VecDeque<MetaJob>,
    next_seq: u64,
    live: Arc<AtomicUsize>,
    base: Instant,
    /// Consecutive checks that found the helper asleep on job `blocked_seq`.
    blocked_seq: u64,
    blocked_checks: u32,
}

impl MetaReader {
    fn new(root: &Path) -> MetaReader {
        MetaReader {
            root: Arc::new(root.to_path_buf()),
            worker: None,
            inflight: VecDeque::new(),
            next_seq: 1,
            live: Arc::new(AtomicUsize::new(0)),
            base: Instant::now(),
            blocked_seq: 0,
            blocked_checks: 0,
        }
    }

    fn spawn(&mut self) -> Option<Worker> {
        if self.live.load(Ordering::Acquire) >= META_MAX_WORKERS {
            return None;
        }
        let (tx, req_rx) = mpsc::channel::<(u64, u32, u64)>();
        let (resp_tx, rx) = mpsc::channel();
        let busy = Arc::new(Busy {
            seq: AtomicU64::new(0),
            since_ns: AtomicU64::new(0),
            tid: AtomicU64::new(0),
        });
        let (root, b, live, base) = (
            self.root.clone(),
            busy.clone(),
            self.live.clone(),
            self.base,
        );
        live.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name("lpo-proc-meta".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                struct Alive(Arc<AtomicUsize>);
                impl Drop for Alive {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                let _alive = Alive(live);
                // SAFETY: plain gettid(2).
                b.tid
                    .store(unsafe { libc::gettid() } as u64, Ordering::Release);
                let mut buf = Vec::new();
                for (seq, pid, starttime) in req_rx {
                    b.since_ns
                        .store(base.elapsed().as_nanos() as u64, Ordering::Release);
                    b.seq.store(seq, Ordering::Release);
                    let r = read_meta(&root, pid, starttime, &mut buf);
                    b.seq.store(0, Ordering::Release);
                    if resp_tx.send((seq, r)).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => Some(Worker { tx, rx, busy }),
            Err(_) => {
                self.live.fetch_sub(1, Ordering::AcqRel);
                None
            }
        }
    }

    /// Sends `job` to the current helper (spawning one if needed).
    fn submit(&mut self, job: MetaJob, results: &mut Vec<(MetaJob, MetaOutcome)>) {
        if self.worker.is_none() {
            self.worker = self.spawn();
        }
        match &self.worker {
            Some(w) if w.tx.send((job.seq, job.pid, job.starttime)).is_ok() => {
                self.inflight.push_back(job)
            }
            _ => results.push((job, MetaOutcome::Slow)),
        }
    }

    /// The front job hangs: give up on it and on its helper; hand the rest
    /// of the queue to a fresh helper.
    fn abandon(&mut self, results: &mut Vec<(MetaJob, MetaOutcome)>) {
        self.worker = None; // dropping the channels lets it exit once unblocked
        let mut rest = std::mem::take(&mut self.inflight);
        if let Some(stuck) = rest.pop_front() {
            results.push((stuck, MetaOutcome::Slow));
        }
        for job in rest.drain(..) {
            self.submit(job, results);
        }
    }

    /// Collects answers for up to `budget` (plus a little per job
    /// `submitted` in this sweep). Jobs not answered in time stay queued
    /// unless their helper hangs.
    fn run(
        &mut self,
        submitted: usize,
        budget: Duration,
        results: &mut Vec<(MetaJob, MetaOutcome)>,
    ) {
        let budget = if budget.is_zero() {
            budget
        } else {
            (budget + META_BUDGET_PER_READ * submitted.min(10_000) as u32).min(META_BUDGET_MAX)
        };
        let deadline = Instant::now() + budget;
        while let Some(&front) = self.inflight.front() {
            let Some(w) = &self.worker else {
                // cannot happen (inflight implies a worker); be safe
                let rest: Vec<_> = self.inflight.drain(..).collect();
                results.extend(rest.into_iter().map(|j| (j, MetaOutcome::Slow)));
                break;
            };
            let now = Instant::now();
            let wait = deadline
                .saturating_duration_since(now)
                .min(META_STUCK_AFTER / 4);
            let got = if wait.is_zero() {
                w.rx.try_recv().map_err(|e| match e {
                    mpsc::TryRecvError::Empty => mpsc::RecvTimeoutError::Timeout,
                    mpsc::TryRecvError::Disconnected => mpsc::RecvTimeoutError::Disconnected,
                })
            } else {
                w.rx.recv_timeout(wait)
            };
            match got {
                Ok((seq, r)) => {
                    // Answers come in order; anything older was lost.
                    while let Some(j) = self.inflight.pop_front() {
                        if j.seq == seq {
                            results.push((j, MetaOutcome::Done(r)));
                            break;
                        }
                        results.push((j, MetaOutcome::Slow));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let busy_seq = w.busy.seq.load(Ordering::Acquire);
                    let since = w.busy.since_ns.load(Ordering::Acquire);
                    let age = (self.base.elapsed().as_nanos() as u64).saturating_sub(since);
                    let mut stuck = false;
                    if busy_seq == front.seq {
                        if age >= META_STUCK_HARD.as_nanos() as u64 {
                            stuck = true;
                        } else if age >= META_STUCK_AFTER.as_nanos() as u64 {
                            if self.blocked_seq != busy_seq {
                                self.blocked_seq = busy_seq;
                                self.blocked_checks = 0;
                            }
                            if thread_blocked(w.busy.tid.load(Ordering::Acquire)) {
                                self.blocked_checks += 1;
                                stuck = self.blocked_checks >= 2;
                            } else {
                                self.blocked_checks = 0;
                            }
                        }
                    }
                    if stuck {
                        self.abandon(results);
                    } else if Instant::now() >= deadline {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => self.abandon(results),
            }
        }
    }
}

/// Reads `cmdline` and `exe` of `pid` if its starttime is still
/// `starttime`. Runs on the helper thread; may block.
fn read_meta(root: &Path, pid: u32, starttime: u64, buf: &mut Vec<u8>) -> MetaAnswer {
    let mut p = root.as_os_str().as_bytes().to_vec();
    p.push(b'/');
    push_u32(&mut p, pid);
    p.push(0);
    if p[..p.len() - 1].contains(&0) {
        return None;
    }
    let dir = open_cstr(&p, libc::O_RDONLY | libc::O_DIRECTORY).ok()?;
    let openat = |name: &CStr| -> Option<File> {
        // SAFETY: valid dir fd and NUL-terminated name.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY,
            )
        };
        // SAFETY: fresh fd we own.
        (fd >= 0).then(|| unsafe { File::from_raw_fd(fd) })
    };
    // The dir fd pins this life: check it is still the one we want.
    let stat = openat(c"stat")?;
    if buf.len() < CMDLINE_MAX {
        buf.resize(CMDLINE_MAX, 0); // once per helper thread
    }
    let n = pread_all(&stat, buf).ok()?;
    let mut st = PidStat::default();
    parse_pid_stat(&buf[..n], &mut st).ok()?;
    if st.starttime != starttime {
        return None;
    }
    let mut cmdline = String::new();
    if let Some(f) = openat(c"cmdline") {
        let mut n = 0;
        while n < CMDLINE_MAX {
            match f.read_at(&mut buf[n..CMDLINE_MAX], n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        for (i, arg) in cmdline_args(&buf[..n]).enumerate() {
            if i > 0 {
                cmdline.push(' ');
            }
            cmdline.push_str(&String::from_utf8_lossy(arg));
        }
    }
    // SAFETY: valid dir fd, NUL-terminated name, buffer of buf.len() bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c"exe".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let exe = if n > 0 {
        String::from_utf8_lossy(&buf[..n as usize]).into_owned()
    } else {
        String::new()
    };
    Some((Arc::from(cmdline), Arc::from(exe)))
}

// ---------------------------------------------------------------------------

/// Reads every process (and thread) under a proc root, cheaply.
pub struct ProcessCollector {
    root: PathBuf,
    root_fd: Option<OwnedFd>,
    /// `{root}/loadavg`, when `{root}` is the procfs of our pid namespace.
    loadavg: Option<File>,
    /// Its last-pid field at the previous listing.
    last_pid: Option<u64>,
    procs: PidMap<Entry>,
    sc: Scratch,
    pids: Vec<u32>,
    meta: MetaReader,
    /// Jobs submitted during the current sweep.
    submitted: usize,
    results: Vec<(MetaJob, MetaOutcome)>,
}

impl ProcessCollector {
    /// Prepares a collector for `proc_root` (normally `/proc`). Never fails:
    /// an unreadable root gives empty sweeps. Raises the `RLIMIT_NOFILE`
    /// soft limit to the hard limit (4 fds are kept per process and thread).
    pub fn open(proc_root: &Path, opts: ProcOptions) -> ProcessCollector {
        raise_nofile_limit();
        let mut root = proc_root.as_os_str().as_bytes().to_vec();
        while root.len() > 1 && root.last() == Some(&b'/') {
            root.pop();
        }
        let root_ok = !root.contains(&0);
        let mut sc = Scratch {
            root,
            root_ok,
            path: Vec::with_capacity(256),
            bufs: [vec![0; 4096], vec![0; 4096], vec![0; 4096], vec![0; 4096]],
            dents: Vec::new(),
            tids: Vec::new(),
            spare_threads: Vec::new(),
            thread_rows: Vec::new(),
            empty: Arc::from(""),
            gen: 0,
            every: opts.full_refresh_every.max(1) as u64,
            threads_mode: opts.threads,
            next_phase: 0,
            stats: SweepStats::default(),
        };
        let root_fd = sc.root_ok.then(|| open_root(&mut sc)).flatten();
        // Listing can be skipped while no pid was allocated; loadavg's last
        // pid is that of the *reader's* pid namespace, so only trust it when
        // the root shows us as `self` with our own pid.
        let own_ns = std::fs::read_link(proc_root.join("self"))
            .ok()
            .and_then(|p| p.to_str()?.parse::<u32>().ok())
            == Some(std::process::id());
        let loadavg = if own_ns {
            File::open(proc_root.join("loadavg")).ok()
        } else {
            None
        };
        ProcessCollector {
            root: proc_root.to_path_buf(),
            root_fd,
            loadavg,
            last_pid: None,
            procs: PidMap::default(),
            sc,
            pids: Vec::new(),
            meta: MetaReader::new(proc_root),
            submitted: 0,
            results: Vec::new(),
        }
    }

    /// The proc root this collector reads.
    pub fn proc_root(&self) -> &Path {
        &self.root
    }

    /// One sweep. Clears `out` and fills it with one row per live process
    /// (each followed by its thread rows in threads mode).
    pub fn collect(&mut self, out: &mut Vec<ProcRow>) -> SweepStats {
        let t0 = Instant::now();
        out.clear();
        let sc = &mut self.sc;
        sc.gen += 1;
        sc.stats = SweepStats::default();
        let gen = sc.gen;

        // Answers that came in after the previous sweep stopped waiting.
        // (Processes made slow here are counted when their pid is swept.)
        self.meta.run(0, Duration::ZERO, &mut self.results);
        self.submitted = 0;
        self.apply_meta(out);

        // 1. list /proc, unless no pid was allocated since the last listing
        // (then no process can have appeared; vanished ones fail with ESRCH).
        // The cursor is read before listing, so a fork racing with the
        // listing moves it and the next sweep lists again.
        let cursor = self.loadavg.as_ref().and_then(|f| {
            let n = pread_all(f, &mut self.sc.bufs[STAT]).ok()?;
            last_pid_of_loadavg(&self.sc.bufs[STAT][..n])
        });
        let list = cursor.is_none() || cursor != self.last_pid || gen % LIST_ANYWAY_EVERY == 1;
        self.last_pid = cursor;
        if self.root_fd.is_none() && self.sc.root_ok {
            self.root_fd = open_root(&mut self.sc);
        }
        self.pids.clear();
        if list {
            if let Some(fd) = &self.root_fd {
                if list_numeric(fd.as_raw_fd(), &mut self.sc.dents, &mut self.pids).is_err() {
                    self.pids.clear();
                    self.last_pid = None;
                }
            }
        } else {
            self.pids.extend(self.procs.keys());
        }

        // 2. every pid
        for i in 0..self.pids.len() {
            let pid = self.pids[i];
            self.sweep_pid(pid, out);
        }

        // 3. gone
        let sc = &mut self.sc;
        self.procs.retain(|_, e| {
            if e.seen == gen {
                true
            } else {
                sc.stats.gone += e.lives();
                false
            }
        });

        // 4. cmdline/exe of new and exec'd processes
        // (They were submitted as found, so the helper worked in parallel.)
        if !self.meta.inflight.is_empty() || !self.results.is_empty() {
            self.meta
                .run(self.submitted, META_BUDGET, &mut self.results);
            self.sc.stats.slow += self.apply_meta(out);
        }
        // Still unanswered (deferred to a later sweep).
        for j in &self.meta.inflight {
            if self
                .procs
                .get(&j.pid)
                .is_some_and(|e| e.starttime == j.starttime)
            {
                self.sc.stats.slow += 1;
            }
        }

        self.sc.stats.elapsed_ns = t0.elapsed().as_nanos() as u64;
        self.sc.stats
    }

    fn sweep_pid(&mut self, pid: u32, out: &mut Vec<ProcRow>) {
        let sc = &mut self.sc;
        let gen = sc.gen;
        let e = match self.procs.get_mut(&pid) {
            Some(e) => e,
            None => {
                let phase = sc.phase();
                self.procs
                    .entry(pid)
                    .or_insert_with(|| Entry::new(pid, pid, false, phase, &sc.empty))
            }
        };
        e.seen = gen;
        let mut start = out.len();
        match sweep_entry(sc, e, pid, None, out) {
            Outcome::Alive => {}
            Outcome::Dead | Outcome::Reborn => {
                out.truncate(start);
                let was = e.lives();
                sc.stats.gone += was;
                let known = e.known;
                let phase = if known { sc.phase() } else { e.phase };
                *e = Entry::new(pid, pid, false, phase, &sc.empty);
                e.seen = gen;
                start = out.len();
                let alive = known && matches!(sweep_entry(sc, e, pid, None, out), Outcome::Alive);
                if !alive {
                    out.truncate(start);
                    self.procs.remove(&pid);
                    return;
                }
            }
        }
        // cmdline/exe
        match e.meta {
            Meta::Needed => {}
            Meta::Slow { retry_gen } if gen >= retry_gen => {}
            Meta::Slow { .. } => {
                sc.stats.slow += 1;
                return;
            }
            Meta::Pending | Meta::Known => return,
        }
        e.meta = Meta::Pending;
        let seq = self.meta.next_seq;
        self.meta.next_seq += 1;
        self.submitted += 1;
        let job = MetaJob {
            seq,
            pid,
            starttime: e.starttime,
            gen,
            out_start: start,
            out_end: out.len(),
        };
        self.meta.submit(job, &mut self.results);
    }

    /// Applies helper answers; returns how many processes became slow.
    fn apply_meta(&mut self, out: &mut [ProcRow]) -> usize {
        let gen = self.sc.gen;
        let mut slow = 0;
        for (job, outcome) in self.results.drain(..) {
            let Some(e) = self.procs.get_mut(&job.pid) else {
                continue;
            };
            if e.starttime != job.starttime || e.meta != Meta::Pending {
                continue;
            }
            match outcome {
                MetaOutcome::Done(r) => {
                    e.meta = Meta::Known;
                    e.slow_backoff = SLOW_RETRY_FIRST;
                    let Some((cmdline, exe)) = r else { continue };
                    e.row.cmdline = cmdline;
                    e.row.exe = exe;
                    for t in &mut e.threads {
                        t.row.cmdline = e.row.cmdline.clone();
                        t.row.exe = e.row.exe.clone();
                    }
                    // Patch rows already emitted in this sweep.
                    let range = if job.gen == gen && job.out_end <= out.len() {
                        job.out_start..job.out_end
                    } else {
                        0..out.len() // a late answer: rare, scan
                    };
                    for r in &mut out[range] {
                        if r.tgid == job.pid && (r.is_thread || r.starttime == job.starttime) {
                            r.cmdline = e.row.cmdline.clone();
                            r.exe = e.row.exe.clone();
                        }
                    }
                }
                MetaOutcome::Slow => {
                    e.meta = Meta::Slow {
                        retry_gen: gen + e.slow_backoff,
                    };
                    e.slow_backoff = (e.slow_backoff * 2).min(SLOW_RETRY_MAX);
                    slow += 1;
                }
            }
        }
        slow
    }
}

/// Sweeps between listings of /proc even when loadavg says no pid was
/// allocated (a safety net).
const LIST_ANYWAY_EVERY: u64 = 64;

/// The last field of `/proc/loadavg` ("0.00 0.01 0.05 1/123 4567"): the
/// last pid allocated in the reader's pid namespace.
fn last_pid_of_loadavg(text: &[u8]) -> Option<u64> {
    let t = crate::procfs::trim(text.strip_suffix(b"\n").unwrap_or(text));
    let start = t.iter().rposition(|&b| b == b' ').map_or(0, |i| i + 1);
    crate::procfs::parse_u64(&t[start..])
}

fn open_root(sc: &mut Scratch) -> Option<OwnedFd> {
    let mut p = sc.root.clone();
    p.push(0);
    open_cstr(&p, libc::O_RDONLY | libc::O_DIRECTORY).ok()
}
