//! Synthetic but realistic system-stream samples, for tests and benchmarks
//! that fill rings without a live /proc (e.g. the 1 GiB seek benchmark).

/// Generates samples shaped like a 2-CPU host's system stream: /proc/stat per
/// CPU, meminfo, vmstat and PSI columns with plausible, slowly moving values.
pub struct SynthSystem {
    pub ncpu: usize,
    t: u64,
    rng: u64,
    names: Vec<String>,
    values: Vec<u64>,
}

use crate::schema::system::CPU_FIELDS;

impl SynthSystem {
    pub fn new(ncpu: usize, seed: u64) -> SynthSystem {
        let mut names = Vec::new();
        for cpu in std::iter::once("cpu".to_string()).chain((0..ncpu).map(|c| format!("cpu{c}"))) {
            for f in CPU_FIELDS {
                names.push(format!("{cpu}.{f}"));
            }
        }
        for n in [
            "stat.ctxt",
            "stat.intr",
            "stat.btime",
            "stat.processes",
            "stat.procs_running",
            "stat.procs_blocked",
            "stat.softirq",
        ] {
            names.push(n.into());
        }
        for n in [
            "load.avg1",
            "load.avg5",
            "load.avg15",
            "load.runnable",
            "load.threads",
            "load.last_pid",
        ] {
            names.push(n.into());
        }
        for i in 0..55 {
            names.push(format!("mem.Field{i}"));
        }
        for i in 0..180 {
            names.push(format!("vm.counter_{i}"));
        }
        for r in ["cpu", "memory", "io"] {
            for k in ["some", "full"] {
                for f in ["avg10", "avg60", "avg300", "total"] {
                    names.push(format!("psi.{r}.{k}.{f}"));
                }
            }
        }
        names.push("uptime.up".into());
        names.push("uptime.idle".into());
        let values = (0..names.len() as u64)
            .map(|i| i * 1_000_003 % 9_999_991)
            .collect();
        SynthSystem {
            ncpu,
            t: 0,
            rng: seed | 1,
            names,
            values,
        }
    }

    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Advance one interval and return the sample's (name, value) pairs.
    pub fn next_sample(&mut self) -> Vec<(&str, u64)> {
        self.t += 1;
        let ncpu_cols = (self.ncpu + 1) * CPU_FIELDS.len();
        for i in 0..self.values.len() {
            let r = self.rand();
            let bump = if i < ncpu_cols {
                // ticks: ~100 per CPU per second split across fields
                match i % CPU_FIELDS.len() {
                    0 => r % 30,
                    2 => r % 10,
                    3 => 60 + r % 30,
                    4 => r % 3,
                    _ => u64::from(r.is_multiple_of(50)),
                }
            } else if self.names[i].starts_with("vm.") {
                // most vmstat counters sit still; some move
                if i % 5 == 0 {
                    r % 2000
                } else if i % 3 == 0 {
                    u64::from(r.is_multiple_of(10))
                } else {
                    0
                }
            } else if self.names[i].starts_with("mem.") {
                // gauges wander
                self.values[i] = self.values[i].wrapping_add(r % 64).wrapping_sub(32);
                0
            } else {
                r % 1000
            };
            self.values[i] = self.values[i].wrapping_add(bump);
        }
        self.names
            .iter()
            .map(|n| n.as_str())
            .zip(self.values.iter().copied())
            .collect()
    }
}
