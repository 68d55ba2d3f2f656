//! The recording loop: sample every interval, flush every flush interval,
//! seal and exit 0 on SIGINT/SIGTERM.

use crate::clock::{boottime_ns, wall_ns, Timeline};
use crate::system::{Columns, SystemCollector};
use lpo_format::{RingWriter, StreamSpec};
use std::path::PathBuf;
use std::time::Duration;

/// How to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    pub ring: PathBuf,
    pub size: u64,
    pub interval: Duration,
    pub flush: Duration,
    /// Root of the proc filesystem to read (tests point it at captured text).
    pub proc_root: PathBuf,
    /// Stop after this many samples (None: until signalled).
    pub samples: Option<u64>,
    /// Stop after this long (None: until signalled).
    pub duration: Option<Duration>,
    /// Test hook: after N samples, shift the wall clock by S seconds
    /// (simulates an NTP or operator step). From `LPO_TEST_CLOCK_STEP=N:S`.
    pub clock_step: Option<(u64, i64)>,
    /// Record every process (the `process` stream).
    pub processes: bool,
    /// Also record threads (/proc/PID/task/*).
    pub threads: bool,
    /// Turn on kernel.task_delayacct so iodelay is collected.
    pub delayacct: bool,
    /// Record the `kernel` stream (disks, network, interrupts, slabs).
    pub kernel: bool,
    /// Record the `perf` stream (CPU profile with call stacks) at this
    /// frequency in Hz; None: off.
    pub perf_freq: Option<u64>,
    /// Record the `ftrace` stream (default events plus `events`).
    pub ftrace: bool,
    /// Extra trace events, `group:name[:filter]`.
    pub events: Vec<crate::ftrace::EventSpec>,
}

impl RecordOptions {
    pub fn new(ring: PathBuf) -> RecordOptions {
        RecordOptions {
            ring,
            size: 1 << 30,
            interval: Duration::from_secs(1),
            flush: Duration::from_secs(10),
            proc_root: "/proc".into(),
            samples: None,
            duration: None,
            clock_step: None,
            processes: true,
            threads: false,
            delayacct: false,
            kernel: true,
            perf_freq: Some(49),
            ftrace: true,
            events: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Format(#[from] lpo_format::Error),
    #[error("cannot start the event loop: {0}")]
    Runtime(std::io::Error),
}

/// What a recording did, for the caller to report.
#[derive(Debug, Default)]
pub struct RecordSummary {
    pub samples: u64,
    pub created: bool,
}

/// The streams this recorder writes, with their share of the ring.
pub fn stream_specs() -> Vec<StreamSpec> {
    vec![
        StreamSpec::kv("system", 1),
        StreamSpec::table("process", 6, crate::proc_stream::schema()),
        StreamSpec::kv("kernel", 2),
        StreamSpec::log(crate::kmsg::STREAM, 1),
        StreamSpec::log("perf", 3),
        StreamSpec::log("ftrace", 3),
    ]
}

/// Record until signalled (or until `samples`/`duration` is reached).
/// `say` receives the one-line notices the user should see once.
pub fn record(
    opts: &RecordOptions,
    say: &mut dyn FnMut(String),
) -> Result<RecordSummary, RecordError> {
    let started = wall_ns();
    let mut host = crate::host::host_header(
        &opts.proc_root,
        started,
        opts.interval.as_nanos() as u64,
        opts.flush.as_nanos() as u64,
    );
    let mut sys = SystemCollector::open(&opts.proc_root);
    let mut kern = SystemCollector::open_kernel(&opts.proc_root);
    host.skipped = sys.skipped.clone();
    host.skipped.extend(kern.skipped.iter().cloned());
    let delayacct_path = opts.proc_root.join("sys/kernel/task_delayacct");
    if opts.delayacct {
        if let Err(e) = std::fs::write(&delayacct_path, "1") {
            host.skipped.push(format!(
                "process: could not turn on kernel.task_delayacct ({e}): iodelay not collected"
            ));
        }
    }
    let mut procs = opts.processes.then(|| {
        crate::process::ProcessCollector::open(
            &opts.proc_root,
            crate::process::ProcOptions {
                threads: opts.threads,
                ..Default::default()
            },
        )
    });
    let exits = if opts.processes {
        match crate::exits::ExitListener::start(host.ncpu as usize) {
            Ok(l) => Some(l),
            Err(e) => {
                host.skipped.push(format!("process: {e}"));
                None
            }
        }
    } else {
        None
    };
    let mut kmsg = crate::kmsg::Kmsg::open(std::path::Path::new("/dev/kmsg"))
        .map_err(|e| host.skipped.push(format!("kmsg: {e}")))
        .ok();
    let mut perf = opts.perf_freq.and_then(|f| {
        match crate::perf::PerfCollector::open(f, opts.proc_root.clone()) {
            Ok(p) => {
                if !p.kernel_symbols() {
                    host.skipped
                        .push("perf: kernel symbols (kallsyms unreadable: kptr_restrict)".into());
                }
                Some(p)
            }
            Err(e) => {
                host.skipped.push(format!("perf: {e}"));
                None
            }
        }
    });
    // Opened before the ring so its skip reasons go into the host header;
    // its notes are said once the ring is open (a failure stays one line).
    let mut ftrace = None;
    let mut ftrace_notes = Vec::new();
    if opts.ftrace {
        let mut notes = Vec::new();
        match crate::ftrace::FtraceCollector::open(true, &opts.events, &mut |l| notes.push(l)) {
            Ok(f) => ftrace = Some(f),
            Err(e) => host.skipped.push(format!("ftrace: {e}")),
        }
        for n in notes {
            match n.strip_prefix("skipped: ") {
                Some(s) => host.skipped.push(s.to_string()),
                None => ftrace_notes.push(n),
            }
        }
    }
    host.users = crate::proc_stream::read_users(std::path::Path::new("/etc"));
    while host.to_bytes().len() > 30_000 && !host.users.is_empty() {
        host.users.truncate(host.users.len() / 2);
    }
    if let Some(dir) = opts.ring.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| lpo_format::Error::Io {
            path: dir.into(),
            source: e,
        })?;
    }
    let (mut w, rep) = RingWriter::open_or_create(&opts.ring, opts.size, &stream_specs(), &host)?;
    say(format!(
        "note: recording to {} every {:?} (flush every {:?}){}",
        opts.ring.display(),
        opts.interval,
        opts.flush,
        if rep.created { ", new ring" } else { "" }
    ));
    for n in ftrace_notes {
        say(n);
    }
    for s in &host.skipped {
        say(format!("skipped: {s}"));
    }
    for s in &rep.missing_streams {
        say(format!("skipped: stream {s}: this ring has no region for it (move the ring away to create a new one)"));
    }
    if let Some(sz) = rep.existing_size {
        say(format!(
            "note: {} already exists with {} bytes; keeping its size",
            opts.ring.display(),
            sz
        ));
    }
    if rep.recovered_samples > 0 {
        say(format!(
            "recovered {} samples staged before an unclean stop",
            rep.recovered_samples
        ));
    }
    let sys_stream = w.stream("system");
    let kern_stream = if opts.kernel {
        w.stream("kernel")
    } else {
        None
    };
    let kmsg_stream = kmsg
        .as_mut()
        .and_then(|k| k.attach(&w, &opts.ring, &host.boot_id));
    let perf_stream = if perf.is_some() {
        w.stream("perf")
    } else {
        None
    };
    let mut perf_failed = false;
    let mut kcols = Columns::default();
    let mut kern_failed = false;
    let proc_stream = if procs.is_some() {
        w.stream("process")
    } else {
        None
    };
    let ftrace_stream = if ftrace.is_some() {
        w.stream("ftrace")
    } else {
        None
    };
    if ftrace_stream.is_none() {
        if let Some(f) = ftrace.take() {
            let _ = f.close();
        }
    }
    let mut ftrace_failed = false;
    let mut rows = Vec::new();
    let mut row_buf = crate::proc_stream::Rows::new();
    let mut exit_buf = Vec::new();
    let mut events = Vec::new();
    let mut delayacct = std::fs::File::open(&delayacct_path).ok();
    let mut timeline = Timeline::new(w.last_key());
    let mut cols = Columns::default();
    let mut summary = RecordSummary {
        samples: 0,
        created: rep.created,
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RecordError::Runtime)?;
    let result: Result<(), RecordError> = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigint = signal(SignalKind::interrupt()).map_err(RecordError::Runtime)?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(RecordError::Runtime)?;
        let mut tick = tokio::time::interval(opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut flush =
            tokio::time::interval_at(tokio::time::Instant::now() + opts.flush, opts.flush);
        // Trace pages are read more often than samples are taken, so the
        // kernel's per-CPU buffers never need to hold a whole interval.
        let mut ftrace_read = tokio::time::interval(opts.interval.min(Duration::from_millis(250)));
        ftrace_read.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
        let sleep_until = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(sleep_until);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let mut wall = wall_ns();
                    if let Some((after, step)) = opts.clock_step {
                        if summary.samples >= after {
                            wall += step * 1_000_000_000;
                        }
                    }
                    let mono = boottime_ns();
                    let key = timeline.key(wall, mono);
                    if let Some(s) = sys_stream {
                        sys.collect(&mut cols, &mut *say);
                        if let Some(f) = delayacct.as_mut() {
                            let mut b = [0u8; 4];
                            if let Ok(n) = std::os::unix::fs::FileExt::read_at(f, &mut b, 0) {
                                cols.push("sys.task_delayacct", u64::from(n > 0 && b[0] == b'1'));
                            }
                        }
                        w.append_kv(s, key, wall, mono, cols.iter())?;
                    }
                    if let Some(s) = kern_stream {
                        kern.collect(&mut kcols, &mut *say);
                        // A kernel sample that cannot be stored is dropped, said once; the
                        // other streams keep recording.
                        if let Err(e) = w.append_kv(s, key, wall, mono, kcols.iter()) {
                            if !kern_failed {
                                say(format!("warning: kernel stream sample dropped: {e}"));
                                kern_failed = true;
                            }
                        }
                    }
                    if let (Some(s), Some(k)) = (kmsg_stream, kmsg.as_mut()) {
                        k.store(&mut w, s, (key, wall, mono), &mut *say);
                    }
                    if let (Some(p), Some(c)) = (proc_stream, procs.as_mut()) {
                        c.collect(&mut rows);
                        events.clear();
                        if let Some(l) = &exits {
                            exit_buf.clear();
                            l.drain(&mut exit_buf);
                            events.extend(exit_buf.iter().filter(|e| e.is_thread_group || e.group_dead || opts.threads).map(crate::proc_stream::event));
                        }
                        row_buf.fill(&rows);
                        if let Err(e) = row_buf.with(&rows, |ins| w.append_table(p, key, wall, mono, ins, &events)) {
                            say(format!("warning: process sample dropped: {e}"));
                        }
                    }
                    if let (Some(i), Some(p)) = (perf_stream, perf.as_mut()) {
                        p.drain();
                        if let Err(e) = p.append(&mut w, i, key, wall, mono) {
                            if !perf_failed {
                                say(format!("warning: perf samples dropped: {e}"));
                                perf_failed = true;
                            }
                        }
                    }
                    if let (Some(s), Some(f)) = (ftrace_stream, ftrace.as_mut()) {
                        f.read();
                        f.prepare();
                        if let Err(e) = w.append_log(s, key, wall, mono, &mut |fresh, buf| f.encode(fresh, buf)) {
                            if !ftrace_failed {
                                say(format!("warning: ftrace sample dropped: {e}"));
                                ftrace_failed = true;
                            }
                        }
                        f.clear();
                    }
                    summary.samples += 1;
                    if opts.samples.is_some_and(|n| summary.samples >= n) {
                        break;
                    }
                }
                _ = ftrace_read.tick(), if ftrace_stream.is_some() => {
                    if let Some(f) = ftrace.as_mut() {
                        f.read();
                    }
                }
                _ = flush.tick() => w.flush()?,
                _ = sigint.recv() => break,
                _ = sigterm.recv() => break,
                _ = &mut sleep_until => break,
            }
        }
        Ok(())
    });
    // The perf samples taken since the last tick.
    if let (Some(i), Some(p)) = (perf_stream, perf.as_mut()) {
        let (wall, mono) = (wall_ns(), boottime_ns());
        let key = timeline.key(wall, mono);
        p.drain();
        let _ = p.append(&mut w, i, key, wall, mono);
    }
    // Seal what is staged and msync, even when the loop failed.
    let closed = w.close();
    if let Some(f) = ftrace {
        let (n, lost, raw) = (f.events, f.lost, f.raw_bytes);
        if let Err(e) = f.close() {
            say(format!("warning: ftrace: {e}"));
        }
        say(format!(
            "note: ftrace: {n} events recorded, {lost} lost ({raw} bytes of trace records read)"
        ));
    }
    result?;
    closed?;
    Ok(summary)
}
