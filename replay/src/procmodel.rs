//! Samples of the process stream as replay sees them: snapshots of rows
//! (one per process, or thread) and exit events, from table blocks.

use crate::views::process::{ExitEvent, ProcRow, ProcSnapshot};
use lpo_format::schema::process::{ATTR_INTS as A, ATTR_STRS as S, EVENT_INTS as E, VALUES as V};
use lpo_format::table::TableBatch;
use lpo_format::{BlockRead, RingReader};

/// Field positions of one batch's schema, looked up by name once.
struct Cols {
    v: Vec<Option<usize>>,
    a: Vec<Option<usize>>,
    s: Vec<Option<usize>>,
}

impl Cols {
    fn of(b: &TableBatch) -> Cols {
        let pos = |names: &[String], n: &str| names.iter().position(|x| x == n);
        Cols {
            v: V.iter().map(|n| pos(&b.schema.values, n)).collect(),
            a: A.iter().map(|n| pos(&b.schema.attr_ints, n)).collect(),
            s: S.iter().map(|n| pos(&b.schema.attr_strs, n)).collect(),
        }
    }
}

fn row(b: &TableBatch, c: &Cols, e: &lpo_format::table::EntityOut, s: u32) -> ProcRow {
    let v = |k: usize| c.v[k].and_then(|f| e.value(f, s)).unwrap_or(0);
    let a = |k: usize| {
        c.a[k]
            .and_then(|f| e.attrs.ints.get(f).copied())
            .unwrap_or(0)
    };
    let st = |k: usize| {
        c.s[k]
            .and_then(|f| e.attrs.strs.get(f).cloned())
            .unwrap_or_default()
    };
    let _ = b;
    ProcRow {
        pid: a(0) as u32,
        tgid: a(1) as u32,
        starttime: a(2),
        ppid: a(3) as u32,
        pgrp: a(4) as u32,
        session: a(5) as u32,
        uid: a(6) as u32,
        euid: a(7) as u32,
        is_thread: a(8) != 0,
        comm: st(0),
        cmdline: st(1),
        exe: st(2),
        state: v(0) as u8,
        priority: v(1) as i64,
        nice: v(2) as i64,
        num_threads: v(3),
        vsize: v(4),
        rss_pages: v(5),
        minflt: v(6),
        majflt: v(7),
        utime: v(8),
        stime: v(9),
        processor: v(10) as u32,
        blkio_ticks: v(11),
        vol_cs: v(12),
        invol_cs: v(13),
        rss_anon_kb: v(14),
        rss_file_kb: v(15),
        rss_shmem_kb: v(16),
        swap_kb: v(17),
        rchar: v(18),
        wchar: v(19),
        read_bytes: v(20),
        write_bytes: v(21),
        cancelled_write_bytes: v(22),
        run_ns: v(23),
        wait_ns: v(24),
        timeslices: v(25),
        io_ok: v(26) != 0,
    }
}

/// A decoded process sample with its key.
pub struct Snap {
    pub key: i64,
    pub snap: ProcSnapshot,
}

fn snapshot(b: &TableBatch, c: &Cols, s: u32) -> Snap {
    let (key, wall, mono) = b.times[s as usize];
    Snap {
        key,
        snap: ProcSnapshot {
            wall_ns: wall,
            mono_ns: mono,
            rows: b.rows_at(s).map(|e| row(b, c, e, s)).collect(),
        },
    }
}

fn events(b: &TableBatch, from: i64, to: i64, out: &mut Vec<ExitEvent>) {
    let pos: Vec<Option<usize>> = E
        .iter()
        .map(|n| b.schema.event_ints.iter().position(|x| x == n))
        .collect();
    let comm = b.schema.event_strs.iter().position(|x| x == "comm");
    for (s, ev) in &b.events {
        let t = b.times[*s as usize];
        if t.0 < from || t.0 > to {
            continue;
        }
        let g = |k: usize| pos[k].and_then(|f| ev.ints.get(f).copied()).unwrap_or(0);
        let start_ns = g(4) as i64;
        let elapsed_ns = (g(5) as i64).saturating_mul(1000);
        out.push(ExitEvent {
            pid: g(0) as u32,
            tgid: g(1) as u32,
            ppid: g(2) as u32,
            uid: g(3) as u32,
            comm: comm
                .and_then(|f| ev.strs.get(f).cloned())
                .unwrap_or_default(),
            start_ns,
            end_ns: start_ns.saturating_add(elapsed_ns),
            exit_code: g(6) as u32,
            utime_us: g(7),
            stime_us: g(8),
            read_bytes: g(9),
            write_bytes: g(10),
            whole_process: g(11) != 0,
        });
    }
}

fn batches(r: &RingReader, from: i64, to: i64, bad: &mut Vec<String>) -> Vec<TableBatch> {
    let Some(i) = r.stream("process") else {
        return Vec::new();
    };
    r.batches(i, from, to, &mut |e| bad.push(e.to_string()))
        .into_iter()
        .filter_map(|b| b.into_table())
        .collect()
}

/// Process snapshots with keys in [from, to] (plus the one before `from`,
/// for rates), and the exits reported in that window.
pub fn load_window(
    r: &RingReader,
    from: i64,
    to: i64,
    bad: &mut Vec<String>,
) -> (Vec<Snap>, Vec<ExitEvent>) {
    let mut snaps: Vec<Snap> = Vec::new();
    let mut exits = Vec::new();
    let mut prev: Option<Snap> = None;
    if let Some(p) = load_at(r, from.saturating_sub(1), bad).pop() {
        prev = Some(p);
    }
    for b in batches(r, from, to, bad) {
        let c = Cols::of(&b);
        for s in 0..b.times.len() as u32 {
            let k = b.times[s as usize].0;
            if k >= from && k <= to && snaps.last().is_none_or(|l| l.key < k) {
                snaps.push(snapshot(&b, &c, s));
            }
        }
        events(&b, from, to, &mut exits);
    }
    if let Some(p) = prev {
        if snaps.first().is_none_or(|f| f.key > p.key) {
            snaps.insert(0, p);
        }
    }
    (snaps, exits)
}

/// The newest process snapshot with key ≤ `k`, and the one before it.
pub fn load_at(r: &RingReader, k: i64, bad: &mut Vec<String>) -> Vec<Snap> {
    let Some(i) = r.stream("process") else {
        return Vec::new();
    };
    // Decode as little as answers: the staged tail only when `k` is past the
    // newest sealed block, and the block before only when the one holding
    // `k` has fewer than two samples at or before it. (A process block
    // holds up to 120 samples of every process: decoding is the cost.)
    let (tail, next) = (r.seqs(i).start, r.seqs(i).end);
    let newest = (tail..next).rev().find_map(|s| r.entry(i, s));
    let upto = |bs: &[TableBatch]| {
        bs.iter()
            .flat_map(|b| &b.times)
            .filter(|t| t.0 <= k)
            .count()
    };
    // Of each block, only its last two samples at or before `k` are decoded.
    let mut pick = |t: &[(i64, i64, i64)]| -> Vec<u32> {
        let mut v: Vec<u32> = (0..t.len() as u32)
            .filter(|&s| t[s as usize].0 <= k)
            .collect();
        let n = v.len();
        v.drain(..n.saturating_sub(2));
        v
    };
    let mut bs: Vec<TableBatch> = Vec::new();
    if newest.is_none_or(|e| k > e.last_key) {
        match r.staged_picked(i, &mut pick) {
            Ok(b) => bs.extend(b.into_table()),
            Err(e) => bad.push(e.to_string()),
        }
    }
    if upto(&bs) < 2 {
        if let Some(seq) = r.find_block(i, k) {
            let mut s = seq;
            loop {
                match r.read_block_picked(i, s, &mut pick) {
                    Ok(BlockRead::Ok(b)) => bs.splice(0..0, b.into_table()).for_each(drop),
                    Ok(BlockRead::Gone) => {}
                    Err(e) if s == seq => bad.push(e.to_string()),
                    Err(_) => {}
                }
                if upto(&bs) >= 2 || s == tail || s + 1 < seq {
                    break;
                }
                s -= 1;
            }
        }
    }
    // The last two samples with key ≤ k, decoded (only those two).
    let mut idx: Vec<(usize, u32, i64)> = Vec::new();
    for (bi, b) in bs.iter().enumerate() {
        for (s, t) in b.times.iter().enumerate() {
            if t.0 <= k && idx.last().is_none_or(|l| l.2 < t.0) {
                idx.push((bi, s as u32, t.0));
            }
        }
    }
    let n = idx.len();
    idx[n.saturating_sub(2)..]
        .iter()
        .map(|&(bi, s, _)| snapshot(&bs[bi], &Cols::of(&bs[bi]), s))
        .collect()
}
