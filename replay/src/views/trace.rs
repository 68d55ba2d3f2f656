//! `trace`: the raw events of a window, one line each, like `trace-cmd
//! report` (fields printed generically as `name=value` from the recorded
//! format), with `--event` and `--pid` filters.

use crate::ftrace::{Ev, Trace};
use crate::time::format_local;
use serde_json::{json, Value};
use std::fmt::Write;

#[derive(Debug, Clone, Default)]
pub struct TraceOpts {
    /// Event names (`sched_switch`, `sched:sched_switch`, `block:*`).
    pub events: Option<Vec<String>>,
    /// Events of these pids: common_pid, or a pid field of the event.
    pub pids: Option<Vec<i64>>,
    pub cpus: Option<Vec<u32>>,
}

impl TraceOpts {
    pub fn parse(args: &[&String]) -> Result<TraceOpts, String> {
        let mut o = TraceOpts::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut val = |what: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().map(|s| s.to_string()))
                    .ok_or_else(|| format!("trace: {flag} needs {what}"))
            };
            match flag {
                "--event" | "-e" => o
                    .events
                    .get_or_insert_with(Vec::new)
                    .extend(val("an event name")?.split(',').map(String::from)),
                "--pid" | "-P" | "-p" => {
                    let v = val("a PID list")?;
                    let p: Result<Vec<i64>, _> = v.split(',').map(|x| x.parse()).collect();
                    o.pids
                        .get_or_insert_with(Vec::new)
                        .extend(p.map_err(|_| format!("trace: --pid {v:?}: expected PID[,PID...]"))?);
                }
                "--cpu" => {
                    let v = val("a CPU list")?;
                    let p: Result<Vec<u32>, _> = v.split(',').map(|x| x.parse()).collect();
                    o.cpus = Some(p.map_err(|_| format!("trace: --cpu {v:?}: expected N[,N...]"))?);
                }
                a => {
                    return Err(format!(
                        "trace: unknown argument {a:?} (known: --event NAME[,NAME], --pid PID[,PID], --cpu N[,N])"
                    ))
                }
            }
        }
        Ok(o)
    }
}

const PID_FIELDS: &[&str] = &[
    "pid",
    "prev_pid",
    "next_pid",
    "child_pid",
    "parent_pid",
    "old_pid",
];

fn keep(t: &Trace, o: &TraceOpts, fmts: &Option<Vec<u32>>, e: &Ev) -> bool {
    if fmts.as_ref().is_some_and(|f| !f.contains(&e.fmt)) {
        return false;
    }
    if o.cpus.as_ref().is_some_and(|c| !c.contains(&e.cpu)) {
        return false;
    }
    if let Some(p) = &o.pids {
        let hit = p.contains(&(e.pid as i64))
            || PID_FIELDS
                .iter()
                .any(|f| t.int(e, f).is_some_and(|v| p.contains(&v)));
        if !hit {
            return false;
        }
    }
    true
}

fn selection(t: &Trace, o: &TraceOpts) -> Result<Option<Vec<u32>>, String> {
    let Some(names) = &o.events else {
        return Ok(None);
    };
    let mut ids = Vec::new();
    for n in names {
        let v = t.fmt_ids(n);
        if v.is_empty() && !t.formats.is_empty() {
            let known: Vec<String> = t
                .formats
                .iter()
                .map(|f| format!("{}:{}", f.system, f.name))
                .collect();
            return Err(format!(
                "trace: no event {n:?} recorded in that window (recorded: {})",
                known.join(", ")
            ));
        }
        ids.extend(v);
    }
    Ok(Some(ids))
}

pub fn trace_text(t: &Trace, o: &TraceOpts, tz: &chrono_tz::Tz) -> Result<String, String> {
    let fmts = selection(t, o)?;
    let comms = super::sched::comms(t);
    let mut out = String::new();
    let ncpu = t.events.iter().map(|e| e.cpu).max().unwrap_or(0) + 1;
    let _ = writeln!(out, "cpus={ncpu}");
    let mut loss = t.loss.iter().peekable();
    for e in t.events.iter().filter(|e| keep(t, o, &fmts, e)) {
        while let Some((w, l)) = loss.next_if(|(w, _)| *w <= e.wall) {
            let _ = writeln!(
                out,
                "CPU:{} [LOST {} EVENTS] (missed {}, overrun {}, dropped {}) by {}",
                l.cpu,
                l.missed.max(l.overrun) + l.dropped,
                l.missed,
                l.overrun,
                l.dropped,
                format_local(*w, tz)
            );
        }
        let comm = comms.get(&e.pid).map(|s| s.as_str()).unwrap_or("<...>");
        let f = t.format(e);
        let when = chrono::DateTime::from_timestamp_nanos(e.wall)
            .with_timezone(tz)
            .format("%H:%M:%S%.6f");
        let _ = writeln!(
            out,
            "{:>16}-{:<7} [{:03}] {} {:>6}.{:06}: {}: {}",
            comm,
            e.pid,
            e.cpu,
            when,
            e.ts / 1_000_000_000,
            (e.ts % 1_000_000_000) / 1000,
            f.name,
            t.fields_text(e)
        );
    }
    Ok(out)
}

pub fn trace_json(t: &Trace, o: &TraceOpts, tz: &chrono_tz::Tz) -> Result<Value, String> {
    let fmts = selection(t, o)?;
    let comms = super::sched::comms(t);
    let rows: Vec<Value> = t
        .events
        .iter()
        .filter(|e| keep(t, o, &fmts, e))
        .map(|e| {
            let f = t.format(e);
            let mut fields = serde_json::Map::new();
            for (i, fd) in f.fields.iter().enumerate() {
                let v = t.vals[e.vals as usize + i];
                fields.insert(
                    fd.name.clone(),
                    match fd.kind {
                        lpo_format::ftrace::FieldKind::Unsigned => json!(v as u64),
                        lpo_format::ftrace::FieldKind::Signed => json!(v),
                        _ => json!(t.strings[v as usize]),
                    },
                );
            }
            json!({
                "time": crate::time::format_rfc3339(e.wall, tz), "wall_ns": e.wall, "boot_ns": e.ts,
                "cpu": e.cpu, "pid": e.pid, "comm": comms.get(&e.pid), "flags": e.flags,
                "preempt_count": e.preempt, "system": f.system, "event": f.name, "fields": fields,
            })
        })
        .collect();
    Ok(json!({
        "events": rows,
        "lost": t.loss.iter().map(|(w, l)| json!({"wall_ns": w, "cpu": l.cpu, "missed": l.missed, "overrun": l.overrun, "dropped": l.dropped})).collect::<Vec<_>>(),
    }))
}
