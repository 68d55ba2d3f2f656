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
    buf: Vec<u8>,
    name_buf: String,
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
            buf: vec![0; 64 * 1024],
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
    }
}

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
