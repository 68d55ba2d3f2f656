//! Facts about this host for the ring's header.

use lpo_format::{HostHeader, SCHEMA_VERSION};
use std::path::Path;

fn read_trim(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn uname() -> (String, String, String, String) {
    // SAFETY: utsname is plain data; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.nodename), s(&u.release), s(&u.version), s(&u.machine))
}

/// The IANA name of the local time zone: $TZ, /etc/timezone, or the
/// /etc/localtime symlink target; empty when unknown.
pub fn local_timezone() -> String {
    if let Ok(tz) = std::env::var("TZ") {
        let tz = tz.trim_start_matches(':');
        if !tz.is_empty() && !tz.starts_with('/') {
            return tz.to_string();
        }
    }
    let t = read_trim(Path::new("/etc/timezone"));
    if !t.is_empty() {
        return t;
    }
    if let Ok(target) = std::fs::read_link("/etc/localtime") {
        let s = target.to_string_lossy();
        if let Some(i) = s.find("zoneinfo/") {
            return s[i + 9..].to_string();
        }
    }
    "UTC".into()
}

fn utc_offset_s() -> i32 {
    // SAFETY: time/localtime_r with valid pointers.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff as i32
        }
    }
}

/// Build the header for a recording that starts now.
pub fn host_header(
    proc_root: &Path,
    started_ns: i64,
    interval_ns: u64,
    flush_ns: u64,
) -> HostHeader {
    let (hostname, release, version, arch) = uname();
    // SAFETY: sysconf is always safe to call.
    let (ncpu, clk_tck, page) = unsafe {
        (
            libc::sysconf(libc::_SC_NPROCESSORS_CONF).max(1) as u32,
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as u32,
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as u32,
        )
    };
    HostHeader {
        hostname,
        kernel_release: release,
        kernel_version: version,
        arch,
        boot_id: read_trim(&proc_root.join("sys/kernel/random/boot_id")),
        ncpu,
        clk_tck,
        page_size: page,
        timezone: local_timezone(),
        utc_offset_s: utc_offset_s(),
        recorder_version: env!("CARGO_PKG_VERSION").to_string(),
        recorder_pid: std::process::id(),
        schema_version: SCHEMA_VERSION,
        started_ns,
        interval_ns,
        flush_ns,
        users: Vec::new(),
        skipped: Vec::new(),
    }
}
