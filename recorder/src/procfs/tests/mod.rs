//! Tests on the fixtures in `tests/data/procfs/` (see its NOTICE.md) and on
//! hostile input. They live inside the crate so they move with the module.

mod coverage;
mod hostile;
mod process_files;
mod system_files;

pub(super) use super::process::*;
pub(super) use super::system::*;
pub(super) use super::{parse_centi, parse_i64, parse_u64, ParseError};

/// Reads a fixture below `tests/data/procfs/`.
macro_rules! fixture {
    ($rel:literal) => {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/procfs/",
            $rel
        ))
        .expect(concat!("fixture ", $rel))
    };
}
pub(super) use fixture;

/// Root of the fixture tree, for walking it.
pub(super) const FIXTURE_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/procfs");

/// A system parser, as a plain function pointer.
pub(super) type SysParser =
    fn(&[u8], &mut String, &mut dyn FnMut(&str, u64)) -> Result<(), ParseError>;

/// Runs a system parser and collects its columns.
pub(super) fn collect(p: SysParser, text: &[u8]) -> Result<Vec<(String, u64)>, ParseError> {
    let mut buf = String::new();
    let mut out = Vec::new();
    p(text, &mut buf, &mut |k, v| out.push((k.to_owned(), v)))?;
    Ok(out)
}

/// Value of the column `name`; panics if absent or emitted twice.
pub(super) fn col(cols: &[(String, u64)], name: &str) -> u64 {
    let mut it = cols.iter().filter(|(k, _)| k == name);
    let v = it
        .next()
        .unwrap_or_else(|| panic!("column {name} missing"))
        .1;
    assert!(it.next().is_none(), "column {name} emitted twice");
    v
}

pub(super) fn has(cols: &[(String, u64)], name: &str) -> bool {
    cols.iter().any(|(k, _)| k == name)
}

pub(super) fn pressure_cpu(
    t: &[u8],
    b: &mut String,
    e: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_pressure("cpu", t, b, e)
}
pub(super) fn pressure_memory(
    t: &[u8],
    b: &mut String,
    e: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_pressure("memory", t, b, e)
}
pub(super) fn pressure_io(
    t: &[u8],
    b: &mut String,
    e: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_pressure("io", t, b, e)
}
pub(super) fn pressure_irq(
    t: &[u8],
    b: &mut String,
    e: &mut dyn FnMut(&str, u64),
) -> Result<(), ParseError> {
    parse_pressure("irq", t, b, e)
}

/// Every parser of the crate behind one signature, for the hostile-input
/// loops: `Ok(())` or the error; never a panic.
pub(super) type AnyParser = Box<dyn Fn(&[u8]) -> Result<(), ParseError>>;

pub(super) fn all_parsers() -> Vec<(&'static str, AnyParser)> {
    fn sys(p: SysParser) -> AnyParser {
        Box::new(move |t| {
            let mut buf = String::new();
            let mut n = 0u64;
            p(t, &mut buf, &mut |k, v| {
                assert!(!k.is_empty());
                n = n.wrapping_add(v);
            })
        })
    }
    vec![
        ("stat", sys(parse_stat)),
        ("loadavg", sys(parse_loadavg)),
        ("meminfo", sys(parse_meminfo)),
        ("vmstat", sys(parse_vmstat)),
        ("pressure", sys(pressure_cpu)),
        ("uptime", sys(parse_uptime)),
        (
            "pid_stat",
            Box::new(|t| parse_pid_stat(t, &mut PidStat::default()).map(|_| ())),
        ),
        (
            "pid_status",
            Box::new(|t| parse_pid_status(t, &mut PidStatus::default())),
        ),
        (
            "pid_io",
            Box::new(|t| parse_pid_io(t, &mut PidIo::default())),
        ),
        (
            "pid_schedstat",
            Box::new(|t| parse_pid_schedstat(t, &mut PidSchedstat::default())),
        ),
        (
            "cmdline",
            Box::new(|t| {
                let n: usize = cmdline_args(t).map(<[u8]>::len).sum();
                assert!(n <= t.len());
                Ok(())
            }),
        ),
    ]
}
