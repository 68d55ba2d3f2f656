//! Every copied fixture file is parsed by the parser that covers it, with
//! the expected outcome; and every file in `tests/data/procfs/` is listed.

use super::*;

/// (path below tests/data/procfs, parser, parses Ok?)
pub(super) const FIXTURES: &[(&str, &str, bool)] = &[
    ("prometheus-procfs/stat", "stat", true),
    ("node-exporter/stat", "stat", true),
    ("prometheus-procfs/loadavg", "loadavg", true),
    ("node-exporter/loadavg", "loadavg", true),
    ("node-exporter/top-level-loadavg", "loadavg", false), // 0 bytes
    ("prometheus-procfs/meminfo", "meminfo", true),
    ("node-exporter/meminfo", "meminfo", true),
    ("node-exporter/top-level-meminfo", "meminfo", false), // 0 bytes
    ("node-exporter/vmstat", "vmstat", true),
    ("prometheus-procfs/pressure/cpu", "pressure", true),
    ("prometheus-procfs/pressure/io", "pressure", true),
    ("prometheus-procfs/pressure/memory", "pressure", true),
    ("node-exporter/pressure/cpu", "pressure", true),
    ("node-exporter/pressure/io", "pressure", true),
    ("node-exporter/pressure/irq", "pressure", true),
    ("node-exporter/pressure/memory", "pressure", true),
    ("prometheus-procfs/27079/stat", "pid_stat", true),
    ("prometheus-procfs/27079/task/27079/stat", "pid_stat", true),
    ("prometheus-procfs/27079/task/27080/stat", "pid_stat", true),
    ("prometheus-procfs/27079/task/27081/stat", "pid_stat", true),
    ("prometheus-procfs/27079/task/27082/stat", "pid_stat", true),
    ("prometheus-procfs/27079/task/27083/stat", "pid_stat", true),
    ("prometheus-procfs/26231/stat", "pid_stat", true),
    ("prometheus-procfs/26232/stat", "pid_stat", true),
    ("prometheus-procfs/584/stat", "pid_stat", true),
    ("node-exporter/1/stat", "pid_stat", true),
    ("node-exporter/10/stat", "pid_stat", true),
    ("node-exporter/11/stat", "pid_stat", true),
    ("node-exporter/11/.missing_stat", "pid_stat", false), // 0 bytes
    ("prometheus-procfs/26231/status", "pid_status", true),
    ("prometheus-procfs/26235/status", "pid_status", true),
    ("prometheus-procfs/26231/io", "pid_io", true),
    ("prometheus-procfs/26231/schedstat", "pid_schedstat", true),
    ("prometheus-procfs/26233/schedstat", "pid_schedstat", false), // ASCII-art cow
    ("prometheus-procfs/26231/cmdline", "cmdline", true),
    ("prometheus-procfs/26232/cmdline", "cmdline", true),
    ("prometheus-procfs/26233/cmdline", "cmdline", true),
];

pub(super) fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURE_ROOT}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs the parser named `parser` on a fixture (pressure takes its
/// resource from the file name).
pub(super) fn run(rel: &str, parser: &str, text: &[u8]) -> Result<(), ParseError> {
    if parser == "pressure" {
        let res = rel.rsplit('/').next().unwrap();
        let mut buf = String::new();
        return parse_pressure(res, text, &mut buf, &mut |k, _| {
            assert!(k.starts_with(&format!("psi.{res}.")))
        });
    }
    let parsers = all_parsers();
    let (_, p) = parsers.iter().find(|(n, _)| *n == parser).unwrap();
    p(text)
}

#[test]
fn every_fixture_parses_as_expected() {
    for &(rel, parser, ok) in FIXTURES {
        let r = run(rel, parser, &read(rel));
        assert_eq!(r.is_ok(), ok, "{rel} with {parser}: {r:?}");
    }
}

#[test]
fn every_copied_file_is_covered() {
    // tests/data/procfs is shared with the other collectors' tests: every
    // file these parsers claim must be there (and is parsed by `FIXTURES`).
    for f in FIXTURES.iter() {
        assert!(
            std::path::Path::new(FIXTURE_ROOT).join(f.0).is_file(),
            "{} missing",
            f.0
        );
    }
}

#[test]
fn errors_name_the_file() {
    let e = run("x", "pid_schedstat", b"moo\n").unwrap_err();
    assert_eq!(e.file, "/proc/PID/schedstat");
    assert!(e.to_string().starts_with("/proc/PID/schedstat: "), "{e}");
    assert!(e.to_string().contains("moo"), "{e}");
}
