//! Views: what procps and sysstat would have printed, from recorded raw
//! counters. `system` holds the vmstat, mpstat, free and uptime renderers;
//! this module checks view arguments and dispatches.

pub mod system;

pub use system::{Host, Sample};

use crate::model::SysSample;
use crate::time::format_rfc3339;
use serde_json::Value;

/// Every view `lpo replay` knows.
pub const VIEWS: &[&str] = &["summary", "vmstat", "mpstat", "free", "uptime"];

/// Parsed view arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewArgs {
    Summary,
    Vmstat,
    Mpstat(system::CpuSelection),
    Free(system::FreeUnit),
    Uptime,
}

fn unknown_arg(view: &str, a: &str, known: &str) -> String {
    format!("{view}: unknown argument {a:?} (known: {known})")
}

/// Parse `VIEW [ARGS]`. A `--json` among the view's arguments sets `json`.
pub fn parse_view(view: &str, args: &[String], json: &mut bool) -> Result<ViewArgs, String> {
    let mut it = args.iter().filter(|a| {
        if a.as_str() == "--json" {
            *json = true;
            false
        } else {
            true
        }
    });
    // Interval and count operands (`vmstat 1 5`) are accepted and ignored:
    // replay prints what was recorded.
    let is_num = |a: &str| a.parse::<f64>().is_ok();
    match view {
        "summary" => match it.next() {
            None => Ok(ViewArgs::Summary),
            Some(a) => Err(unknown_arg(view, a, "none")),
        },
        "vmstat" => {
            for a in it {
                if !(is_num(a)
                    || matches!(
                        a.as_str(),
                        "-t" | "-n" | "-w" | "--timestamp" | "--one-header" | "--wide"
                    ))
                {
                    return Err(unknown_arg(view, a, "-t, -n, -w"));
                }
            }
            Ok(ViewArgs::Vmstat)
        }
        "mpstat" => {
            let mut sel = system::CpuSelection::parse("ALL").map_err(|e| format!("mpstat: {e}"))?;
            let mut saw_p = false;
            let mut it = it.peekable();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-P" => {
                        let v = it.next().ok_or("mpstat: -P needs ALL, ON or a CPU list")?;
                        sel = system::CpuSelection::parse(v)
                            .map_err(|e| format!("mpstat: -P {v}: {e}"))?;
                        saw_p = true;
                    }
                    "-u" => {}
                    a if is_num(a) => {}
                    a => return Err(unknown_arg(view, a, "-P ALL|ON|LIST, -u")),
                }
            }
            let _ = saw_p;
            Ok(ViewArgs::Mpstat(sel))
        }
        "free" => {
            let mut unit = system::FreeUnit::Kibi;
            for a in it {
                unit = match a.as_str() {
                    "-b" | "--bytes" => system::FreeUnit::Bytes,
                    "-k" | "--kibi" => system::FreeUnit::Kibi,
                    "-m" | "--mebi" => system::FreeUnit::Mebi,
                    "-g" | "--gibi" => system::FreeUnit::Gibi,
                    "-h" | "--human" => system::FreeUnit::Human,
                    a if is_num(a) => unit,
                    a => return Err(unknown_arg(view, a, "-b, -k, -m, -g, -h")),
                };
            }
            Ok(ViewArgs::Free(unit))
        }
        "uptime" => match it.next() {
            None => Ok(ViewArgs::Uptime),
            Some(a) => Err(unknown_arg(view, a, "none")),
        },
        _ => Err(format!(
            "unknown view {view:?}; views: {}",
            VIEWS.join(", ")
        )),
    }
}

/// Validate a view and its arguments before any file is opened.
pub fn check_view(view: &str, args: &[String], json: &mut bool) -> Result<(), String> {
    parse_view(view, args, json).map(|_| ())
}

/// Add `time` (RFC 3339 in the host's zone) and `wall_ns` to JSON rows,
/// `rows[i]` describing `samples[i]`.
fn stamp(v: Value, samples: &[&SysSample], host: &Host) -> Value {
    match v {
        Value::Array(rows) => Value::Array(
            rows.into_iter()
                .zip(samples)
                .map(|(r, s)| match r {
                    Value::Object(mut m) => {
                        m.insert(
                            "time".into(),
                            Value::String(format_rfc3339(s.wall, &host.tz)),
                        );
                        m.insert("wall_ns".into(), Value::from(s.wall));
                        Value::Object(m)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

/// Render a view over `samples`: the first sample only provides the
/// counters the first interval's rates start from.
pub fn render(
    view: &str,
    args: &[String],
    host: &Host,
    samples: &[SysSample],
    json: bool,
) -> Result<String, String> {
    let mut j = json;
    let va = parse_view(view, args, &mut j)?;
    let shown: Vec<&SysSample> = samples.iter().skip(1).collect();
    let out = match (&va, j) {
        (ViewArgs::Vmstat, false) => system::vmstat_series(samples, host),
        (ViewArgs::Vmstat, true) => json_text(stamp(
            system::vmstat_series_json(samples, host),
            &shown,
            host,
        )),
        (ViewArgs::Mpstat(sel), false) => system::mpstat_series(samples, host, sel),
        (ViewArgs::Mpstat(sel), true) => json_text(system::mpstat_series_json(samples, host, sel)),
        (ViewArgs::Free(unit), false) => system::free_series(&shown, *unit),
        (ViewArgs::Free(_), true) => {
            json_text(stamp(system::free_series_json(&shown, host), &shown, host))
        }
        (ViewArgs::Uptime, false) => system::uptime_series(&shown, host),
        (ViewArgs::Uptime, true) => json_text(stamp(
            system::uptime_series_json(&shown, host),
            &shown,
            host,
        )),
        (ViewArgs::Summary, false) => summary_text(samples, host),
        (ViewArgs::Summary, true) => json_text(summary_json(samples, host)),
    };
    Ok(out)
}

fn json_text(v: Value) -> String {
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// The default view: one screen like atop's head: uptime and PSI, CPU,
/// memory, for the interval ending at the last sample.
fn summary_text(samples: &[SysSample], host: &Host) -> String {
    let n = samples.len();
    let (prev, cur) = (&samples[n - 2], &samples[n - 1]);
    let mut out = system::uptime_format(&system::uptime_row(cur), host);
    out.push('\n');
    let block = system::mpstat_block(
        prev,
        cur,
        host,
        &system::CpuSelection::parse("ALL").unwrap(),
    );
    out.push_str(&system::mpstat_format_block(&block, host));
    out.push('\n');
    out.push_str(&system::free_format(
        &system::free_row(cur),
        system::FreeUnit::Mebi,
    ));
    out.push('\n');
    out.push_str(&system::vmstat_series(&samples[n - 2..], host));
    out
}

fn summary_json(samples: &[SysSample], host: &Host) -> Value {
    let n = samples.len();
    let (prev, cur) = (&samples[n - 2], &samples[n - 1]);
    let block = system::mpstat_block(
        prev,
        cur,
        host,
        &system::CpuSelection::parse("ALL").unwrap(),
    );
    serde_json::json!({
        "time": format_rfc3339(cur.wall, &host.tz),
        "uptime": system::uptime_json(&system::uptime_row(cur), host),
        "mpstat": system::mpstat_json(&block, host),
        "free": system::free_json(&system::free_row(cur), host),
        "vmstat": system::vmstat_json(&system::vmstat_row(prev, cur, host), host),
    })
}
