//! The system stream collector: /proc/stat, loadavg, meminfo, vmstat,
//! pressure/* and uptime, read from files kept open and re-read with pread.

use crate::procfs::{system as p, ParseError};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

type Parser = fn(&[u8], &mut String, &mut dyn FnMut(&str, u64)) -> Result<(), ParseError>;

struct Source {
    file: File,
    what: &'static str,
    parse: Parser,
}

/// One sample's columns, stored without per-sample allocation.
#[derive(Default)]
pub struct Columns {
    names: String,
    cols: Vec<(u32, u32, u64)>, // (start, end) into names, value
}

impl Columns {
    pub fn clear(&mut self) {
        self.names.clear();
        self.cols.clear();
    }
    pub fn push(&mut self, name: &str, v: u64) {
        let s = self.names.len() as u32;
        self.names.push_str(name);
        self.cols.push((s, self.names.len() as u32, v));
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.cols
            .iter()
            .map(|&(s, e, v)| (&self.names[s as usize..e as usize], v))
    }
    pub fn len(&self) -> usize {
        self.cols.len()
    }
    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }
    pub fn get(&self, name: &str) -> Option<u64> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

pub struct SystemCollector {
    sources: Vec<Source>,
    /// Single-number files read as one column each (e.g. nf_conntrack_count).
    scalars: Vec<(File, String)>,
    /// /sys/class/net, for link speeds (kernel stream only).
    net_class: Option<std::path::PathBuf>,
    /// Cached `net.<iface>.speed_mbps` columns and samples until a re-read:
    /// link speeds rarely change, so sysfs is not listed every sample.
    speeds: Vec<(String, u64)>,
    speeds_age: u32,
    buf: Vec<u8>,
    name_buf: String,
    /// Netlink table walks (conntrack, TCP sockets); kernel stream only,
    /// and only on the real /proc (netlink cannot be redirected).
    net: Option<crate::netlink::NetCollector>,
    /// Sources that could not be opened, one line each (said once at start).
    pub skipped: Vec<String>,
    /// Read or parse failures since start (each said once).
    errors_said: std::collections::HashSet<&'static str>,
}

fn pressure_parser(res: &'static str) -> Parser {
    match res {
        "cpu" => |t, n, e| p::parse_pressure("cpu", t, n, e),
        "memory" => |t, n, e| p::parse_pressure("memory", t, n, e),
        "io" => |t, n, e| p::parse_pressure("io", t, n, e),
        _ => |t, n, e| p::parse_pressure("irq", t, n, e),
    }
}

impl SystemCollector {
    /// Open the sources under `proc_root` (normally /proc).
    pub fn open(proc_root: &Path) -> SystemCollector {
        let mut sources = Vec::new();
        let mut skipped = Vec::new();
        let mut psi_missing = Vec::new();
        let table: [(&'static str, Parser, bool); 5] = [
            ("stat", p::parse_stat, true),
            ("loadavg", p::parse_loadavg, true),
            ("meminfo", p::parse_meminfo, true),
            ("vmstat", p::parse_vmstat, true),
            ("uptime", p::parse_uptime, true),
        ];
        for (what, parse, _) in table {
            match File::open(proc_root.join(what)) {
                Ok(file) => sources.push(Source { file, what, parse }),
                Err(e) => skipped.push(format!("system: /proc/{what} not recorded ({e})")),
            }
        }
        for res in ["cpu", "memory", "io", "irq"] {
            let what: &'static str = match res {
                "cpu" => "pressure/cpu",
                "memory" => "pressure/memory",
                "io" => "pressure/io",
                _ => "pressure/irq",
            };
            match File::open(proc_root.join(what)) {
                // Reading can fail with EOPNOTSUPP when PSI is compiled in but disabled.
                Ok(file) if file.read_at(&mut [0u8; 64], 0).is_ok() => sources.push(Source {
                    file,
                    what,
                    parse: pressure_parser(res),
                }),
                _ => psi_missing.push(res),
            }
        }
        if psi_missing.len() == 4 {
            skipped.push("system: pressure stall information (/proc/pressure) not recorded: not available on this kernel".into());
        } else if !psi_missing.is_empty() && psi_missing != ["irq"] {
            skipped.push(format!(
                "system: /proc/pressure/{{{}}} not recorded: not available",
                psi_missing.join(",")
            ));
        }
        SystemCollector {
            sources,
            scalars: Vec::new(),
            net_class: None,
            speeds: Vec::new(),
            speeds_age: 0,
            net: None,
            buf: vec![0; 64 * 1024],
            name_buf: String::with_capacity(64),
            skipped,
            errors_said: Default::default(),
        }
    }

    /// The `kernel` stream: disks, interfaces, protocol counters, sockets,
    /// softnet, interrupts, softirqs, slabs and conntrack statistics. A
    /// source missing on this host is skipped with one line.
    pub fn open_kernel(proc_root: &Path) -> SystemCollector {
        use crate::procfs::netdisk as n;
        let table: [(&'static str, Parser); 12] = [
            ("diskstats", n::parse_diskstats),
            ("net/dev", n::parse_net_dev),
            ("net/snmp", n::parse_snmp),
            ("net/netstat", n::parse_netstat),
            ("net/snmp6", n::parse_snmp6),
            ("net/sockstat", n::parse_sockstat),
            ("net/sockstat6", n::parse_sockstat6),
            ("net/softnet_stat", n::parse_softnet_stat),
            ("interrupts", n::parse_interrupts),
            ("softirqs", n::parse_softirqs),
            ("slabinfo", n::parse_slabinfo),
            ("net/stat/nf_conntrack", n::parse_nf_conntrack),
        ];
        let mut sources = Vec::new();
        let mut skipped = Vec::new();
        for (what, parse) in table {
            let why = match File::open(proc_root.join(what)) {
                Ok(file) => match file.read_at(&mut [0u8; 64], 0) {
                    Ok(_) => {
                        sources.push(Source { file, what, parse });
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match what {
                    "net/stat/nf_conntrack" => "conntrack module not loaded".into(),
                    _ => "not present on this kernel".into(),
                },
                Err(e) => e.to_string(),
            };
            skipped.push(format!("kernel: /proc/{what} not recorded ({why})"));
        }
        let mut scalars = Vec::new();
        let conntrack_loaded = proc_root
            .join("sys/net/netfilter/nf_conntrack_count")
            .exists();
        for (f, col) in [
            ("count", "conntrack.count"),
            ("max", "conntrack.max"),
            ("buckets", "conntrack.buckets"),
        ] {
            if let Ok(file) =
                File::open(proc_root.join(format!("sys/net/netfilter/nf_conntrack_{f}")))
            {
                scalars.push((file, col.to_string()));
            }
        }
        // Link speeds live in sysfs, next to /proc on a real system.
        let net_class = (proc_root == Path::new("/proc"))
            .then(|| std::path::PathBuf::from("/sys/class/net"))
            .filter(|p| p.is_dir());
        let net = (proc_root == Path::new("/proc")).then(|| {
            let (net, why) = crate::netlink::NetCollector::open(conntrack_loaded);
            skipped.extend(why);
            net
        });
        SystemCollector {
            sources,
            scalars,
            net_class,
            speeds: Vec::new(),
            speeds_age: 0,
            net,
            buf: vec![0; 256 * 1024],
            name_buf: String::with_capacity(64),
            skipped,
            errors_said: Default::default(),
        }
    }

    /// Read every source into `out`. Failures of one source are reported
    /// once through `warn` and do not stop the others.
    pub fn collect(&mut self, out: &mut Columns, warn: &mut dyn FnMut(String)) {
        out.clear();
        for src in &self.sources {
            let n = match read_all(&src.file, &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    if self.errors_said.insert(src.what) {
                        warn(format!("system: reading /proc/{} failed: {e}", src.what));
                    }
                    continue;
                }
            };
            let mut emit = |name: &str, v: u64| out.push(name, v);
            if let Err(e) = (src.parse)(&self.buf[..n], &mut self.name_buf, &mut emit) {
                if self.errors_said.insert(src.what) {
                    warn(format!("system: {e}"));
                }
            }
        }
        for (f, col) in &self.scalars {
            if let Ok(n) = f.read_at(&mut self.buf[..64], 0) {
                if let Some(v) = crate::procfs::parse_u64(self.buf[..n].trim_ascii()) {
                    out.push(col, v);
                }
            }
        }
        if let Some(net) = &mut self.net {
            let mut emit = |name: &str, v: u64| out.push(name, v);
            net.collect(&mut emit, warn);
        }
        if let Some(dir) = &self.net_class {
            // Interfaces come and go and speeds renegotiate, but rarely:
            // re-read sysfs every SPEED_REFRESH samples.
            if self.speeds_age == 0 {
                self.speeds.clear();
                for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                    let name = e.file_name();
                    let Some(name) = name.to_str() else { continue };
                    let speed = std::fs::read_to_string(e.path().join("speed"))
                        .ok()
                        .and_then(|t| t.trim().parse::<i64>().ok());
                    if let Some(v) = speed.filter(|v| *v > 0) {
                        self.speeds
                            .push((format!("net.{name}.speed_mbps"), v as u64));
                    }
                }
            }
            self.speeds_age = (self.speeds_age + 1) % SPEED_REFRESH;
            for (col, v) in &self.speeds {
                out.push(col, *v);
            }
        }
    }
}

/// Samples between two reads of the link speeds in sysfs.
const SPEED_REFRESH: u32 = 30;

/// pread the whole file from offset 0, growing `buf` as needed.
pub fn read_all(f: &File, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let r = f.read_at(&mut buf[n..], n as u64)?;
        if r == 0 {
            return Ok(n);
        }
        n += r;
    }
}
