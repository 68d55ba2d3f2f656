//! `lpo replay`: resolve the time, load the samples around it, render a view.

use crate::model::{host_of, load_at, load_system, SysSample};
use crate::time::{format_local, parse_time, TimeContext};
use crate::{host_tz, ReplayError};
use lpo_format::RingReader;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `lpo replay`.
#[derive(Debug, Clone, Default)]
pub struct ReplayArgs {
    pub file: PathBuf,
    pub at: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub json: bool,
    /// Read and print times in UTC instead of the recorded host's zone.
    pub utc: bool,
    /// The view and its arguments, e.g. ["mpstat", "-P", "ALL"]. Empty: summary.
    pub view: Vec<String>,
    /// "Now" for relative times; None: the current time.
    pub now_ns: Option<i64>,
}

const SEC: i64 = 1_000_000_000;

/// Where the recording is, in wall time and keys.
pub(crate) struct Span {
    pub first_wall: i64,
    pub last_wall: i64,
    pub first_key: i64,
    pub last_key: i64,
}

pub(crate) fn span(r: &RingReader) -> Option<Span> {
    let i = r.stream("system")?;
    let si = r.info_range(i)?;
    Some(Span {
        first_wall: si.0,
        last_wall: si.1,
        first_key: si.2,
        last_key: si.3,
    })
}

/// What every time-windowed command opens with: the file, its host header,
/// the zone TIME is read in, the recorded span, and the context TIME
/// expressions are resolved against.
pub(crate) struct Opened {
    pub r: RingReader,
    pub host: lpo_format::HostHeader,
    pub tz: chrono_tz::Tz,
    pub sp: Span,
    pub ctx: TimeContext,
}

pub(crate) fn open_for_time(
    file: &std::path::Path,
    utc: bool,
    now_ns: Option<i64>,
) -> Result<Opened, ReplayError> {
    let r = RingReader::open(file)?;
    let host = r.host().clone();
    let tz = if utc { chrono_tz::UTC } else { host_tz(&host) };
    let sp = span(&r)
        .ok_or_else(|| ReplayError::NoData(format!("{}: nothing recorded yet", file.display())))?;
    let ctx = TimeContext {
        now_ns: now_or_clock(now_ns),
        tz,
        first_ns: sp.first_wall,
        last_ns: sp.last_wall,
    };
    Ok(Opened {
        r,
        host,
        tz,
        sp,
        ctx,
    })
}

/// `now` for relative times: the given one (tests), else the system clock.
pub(crate) fn now_or_clock(now_ns: Option<i64>) -> i64 {
    now_ns.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    })
}

/// Key of the newest sample at or before wall time `t`.
///
/// The key equals the wall clock unless the clock was stepped back while
/// recording. So: look `t` up as a key (O(log n)); if the sample found there
/// was recorded with key == wall, that is the answer. Otherwise a clock step
/// is involved: walk the index from the newest block back (no block is
/// decompressed unless its wall range holds `t`) for the latest block whose
/// recorded wall times cover `t`.
pub(crate) fn wall_to_key(r: &RingReader, t: i64, bad: &mut Vec<String>) -> i64 {
    let near = load_at(r, t, bad);
    if near.last().is_none_or(|s| s.key == s.wall)
        && r.stream("system").is_some_and(|i| no_step_after(r, i, t))
    {
        return t;
    }
    let Some(i) = r.stream("system") else {
        return t;
    };
    let pick =
        |b: lpo_format::kv::KvBatch| b.samples.iter().rev().find(|s| s.wall <= t).map(|s| s.key);
    if let Ok(b) = r.staged(i) {
        if let Some(b) = b.into_kv() {
            let covers =
                b.samples.iter().any(|s| s.wall <= t) && b.samples.iter().any(|s| s.wall >= t);
            if covers {
                if let Some(k) = pick(b) {
                    return k;
                }
            }
        }
    }
    for seq in r.seqs(i).rev() {
        let Some(e) = r.entry(i, seq) else { continue };
        if e.first_wall <= t && t <= e.last_wall {
            if let Ok(lpo_format::BlockRead::Ok(b)) = r.read_block(i, seq) {
                if let Some(k) = b.into_kv().and_then(pick) {
                    return k;
                }
            }
        }
    }
    t
}

/// True when no block or staged sample after key `t` was recorded with a
/// wall clock behind its key (no backward step to account for).
fn no_step_after(r: &RingReader, i: usize, t: i64) -> bool {
    let (tail, next) = (r.seqs(i).start, r.seqs(i).end);
    let newest = (tail..next).rev().find_map(|s| r.entry(i, s));
    let blocks_ok = newest.is_none_or(|e| e.last_key - e.last_wall == 0 || e.last_key < t);
    let staged_ok = r
        .staged(i)
        .ok()
        .and_then(|b| b.into_kv())
        .is_none_or(|b| b.samples.iter().all(|s| s.key == s.wall));
    blocks_ok && staged_ok
}

/// Samples with keys in [from, to], plus the one before `from` (for rates).
pub(crate) fn window(
    r: &RingReader,
    from: i64,
    to: i64,
    sp: &Span,
    bad: &mut Vec<String>,
) -> Vec<SysSample> {
    let mut v = load_system(r, from, to, bad);
    let first = v.first().map(|s| s.key).unwrap_or(from);
    if first > sp.first_key {
        // The predecessor may sit in an earlier block: search back for it.
        let mut back = 60 * SEC;
        loop {
            let lo = first.saturating_sub(back).max(sp.first_key);
            let prev = load_system(r, lo, first - 1, bad);
            if let Some(p) = prev.last() {
                v.insert(0, p.clone());
                break;
            }
            if lo <= sp.first_key {
                break;
            }
            back = back.saturating_mul(16);
        }
    }
    v
}

pub fn replay(
    args: &ReplayArgs,
    out: &mut dyn Write,
    warn: &mut dyn FnMut(String),
) -> Result<(), ReplayError> {
    let view = args.view.first().map(|s| s.as_str()).unwrap_or("summary");
    let view_args = if args.view.is_empty() {
        &[][..]
    } else {
        &args.view[1..]
    };
    let mut json = args.json;
    let va = crate::views::parse_view(view, view_args, &mut json).map_err(ReplayError::Usage)?;
    let crate::run::Opened {
        r,
        host,
        tz,
        sp,
        ctx,
    } = crate::run::open_for_time(&args.file, args.utc, args.now_ns)?;
    let range_msg = || {
        format!(
            "the recording covers {} to {} ({})",
            format_local(sp.first_wall, &tz),
            format_local(sp.last_wall, &tz),
            tz.name()
        )
    };
    let slack = (host.interval_ns as i64).max(SEC) * 2;
    let mut bad = Vec::new();
    let (from_t, to_t) = match (&args.at, &args.from, &args.to) {
        (Some(at), None, None) => {
            let t = parse_time(at, &ctx)?;
            (t, t)
        }
        (None, Some(f), Some(t)) => {
            let (f, t) = (parse_time(f, &ctx)?, parse_time(t, &ctx)?);
            if f > t {
                return Err(ReplayError::Usage(format!(
                    "--from {} is after --to {}",
                    format_local(f, &tz),
                    format_local(t, &tz)
                )));
            }
            (f, t)
        }
        (None, Some(_), None) | (None, None, Some(_)) => {
            return Err(ReplayError::Usage("--from and --to go together".into()))
        }
        (None, None, None) => {
            return Err(ReplayError::Usage(
                "say when: --at TIME, or --from TIME --to TIME".into(),
            ))
        }
        _ => {
            return Err(ReplayError::Usage(
                "--at cannot be combined with --from/--to".into(),
            ))
        }
    };
    if let crate::views::ViewArgs::Dmesg(o) = &va {
        let key_of = &mut |t| wall_to_key(&r, t, &mut Vec::new());
        let (at, iv) = (args.at.is_some(), host.interval_ns as i64);
        let text =
            crate::views::dmesg::view(&r, o, at, (from_t, to_t), iv, &tz, json, key_of, warn)
                .map_err(ReplayError::NoData)?;
        out.write_all(text.as_bytes())?;
        return Ok(());
    }
    if to_t < sp.first_wall - slack || from_t > sp.last_wall + slack {
        let when = if from_t == to_t {
            format_local(from_t, &tz)
        } else {
            format!(
                "{} to {}",
                format_local(from_t, &tz),
                format_local(to_t, &tz)
            )
        };
        return Err(ReplayError::NoData(format!(
            "no data at {when}: {}",
            range_msg()
        )));
    }
    // A time a little before the first sample (within the slack) means the first sample.
    let k_to = wall_to_key(&r, to_t, &mut bad).max(sp.first_key);
    let k_from = if args.at.is_some() {
        k_to
    } else {
        wall_to_key(&r, from_t, &mut bad)
    };
    let samples = if args.at.is_some() {
        let mut v = load_at(&r, k_to, &mut bad);
        if v.len() == 1 && v[0].key > sp.first_key {
            // The predecessor is in an earlier block.
            v = window(&r, v[0].key, v[0].key, &sp, &mut bad);
        }
        if v.len() == 1 {
            // TIME is the first sample: show the first recorded interval instead.
            let next = load_system(&r, v[0].key + 1, sp.last_key, &mut bad);
            if let Some(n) = next.first() {
                warn(format!(
                    "note: {} is the first sample; showing the interval ending {}",
                    format_local(v[0].wall, &tz),
                    format_local(n.wall, &tz)
                ));
                v.push(n.clone());
            }
        }
        let n = v.len();
        v.split_off(n.saturating_sub(2))
    } else {
        window(&r, k_from, k_to, &sp, &mut bad)
    };
    // Process data: the two snapshots at TIME, or every snapshot of the window
    // (exits: the window ending at TIME), and the exits reported there.
    let (mut procs, mut exits) = (Vec::new(), Vec::new());
    if va.needs_processes() {
        let back = va.at_window_ns();
        if args.at.is_some() && back == 0 {
            let at_key = samples.last().map(|s| s.key).unwrap_or(k_to);
            procs = crate::procmodel::load_at(&r, at_key, &mut bad);
        } else {
            let from = if args.at.is_some() {
                k_to - back
            } else {
                k_from
            };
            let (p, e) = crate::procmodel::load_window(&r, from, k_to, &mut bad);
            procs = p;
            exits = e;
        }
    }
    // Kernel views: join the `kernel` stream's samples (same ticks, same keys).
    let samples = if va.needs_kernel() {
        match (samples.first(), samples.last()) {
            (Some(f), Some(l)) => {
                let kern = crate::model::load_kv(&r, "kernel", f.key, l.key, &mut bad);
                if kern.is_empty() {
                    return Err(ReplayError::NoData(format!("{view}: this recording has no kernel stream samples at that time (recorded by an lpo without it?)")));
                }
                let mut cache = std::collections::HashMap::new();
                samples
                    .iter()
                    .filter_map(|s| {
                        kern.iter()
                            .find(|k| k.key == s.key)
                            .map(|k| s.merged(k, &mut cache))
                    })
                    .collect()
            }
            _ => samples,
        }
    } else {
        samples
    };
    // The summary lists kernel log events within ±60 s of TIME.
    let kmsg = matches!(va, crate::views::ViewArgs::Summary)
        .then(|| {
            let w = crate::views::dmesg::SUMMARY_HALF_WINDOW_NS;
            let key_of = &mut |t| wall_to_key(&r, t, &mut Vec::new());
            let iv = host.interval_ns as i64;
            crate::views::dmesg::load_window(&r, (to_t - w, to_t + w), iv, key_of, &mut bad)
        })
        .flatten()
        .map(|l| l.0);
    for b in &bad {
        warn(format!("warning: skipped a damaged block: {b}"));
    }
    if samples.len() < 2 {
        return Err(ReplayError::NoData(format!(
            "not enough samples around that time to compute rates: {}",
            range_msg()
        )));
    }
    let h = host_of(&host, tz);
    let snaps: Vec<_> = procs.into_iter().map(|s| s.snap).collect();
    exits.sort_by_key(|e| e.end_ns);
    let from_ns = if args.at.is_some() {
        to_t - va.at_window_ns()
    } else {
        from_t
    };
    // CPU profiles: the perf samples of the window (for --at, the 60 s ending at TIME).
    let perf = if va.needs_perf() {
        let (pf, kf) = if args.at.is_some() {
            let back = va.perf_window_ns();
            (to_t - back, k_to - back)
        } else {
            (from_t, k_from)
        };
        let p = crate::views::perf::load(&r, kf, k_to, pf, to_t, &mut bad);
        for b in bad.drain(..) {
            warn(format!("warning: skipped damaged perf samples: {b}"));
        }
        let perf_view = !matches!(va, crate::views::ViewArgs::Summary);
        if !p.recorded && perf_view {
            return Err(ReplayError::NoData(format!(
                "{view}: this recording has no perf stream (recorded with --no-perf, or by an lpo without it)"
            )));
        }
        if p.samples.is_empty() && perf_view {
            return Err(ReplayError::NoData(format!(
                "{view}: no perf samples between {} and {}: {}",
                format_local(pf, &tz),
                format_local(to_t, &tz),
                range_msg()
            )));
        }
        Some(p)
    } else {
        None
    };
    // Kernel trace events of the window (sched, biolatency, trace; exits adds them).
    let nbad = bad.len();
    let trace = va.needs_ftrace().then(|| {
        let mut t = crate::ftrace::load(&r, from_ns, to_t, host.interval_ns as i64, &mut bad);
        t.disks = crate::ftrace::disk_names(&r, from_ns, to_t);
        t
    });
    for b in &bad[nbad..] {
        warn(format!("warning: skipped damaged trace events: {b}"));
    }
    let data = crate::views::Data {
        perf: perf.as_ref(),
        host: &h,
        header: &host,
        sys: &samples,
        procs: &snaps,
        exits: &exits,
        kmsg: kmsg.as_deref(),
        from_ns,
        to_ns: to_t,
        ftrace: trace.as_ref(),
    };
    let text = crate::views::render(view, view_args, &data, json).map_err(ReplayError::Usage)?;
    out.write_all(text.as_bytes())?;
    Ok(())
}
