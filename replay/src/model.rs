//! Samples of the system stream as replay sees them: named raw counters
//! plus their times, loaded from a ring between two keys.

use lpo_format::kv::KvBatch;
use lpo_format::{HostHeader, RingReader};
use std::collections::HashMap;
use std::sync::Arc;

/// One recorded sample of named counters.
#[derive(Debug, Clone)]
pub struct SysSample {
    cols: Arc<HashMap<String, usize>>,
    /// Column names in recorded (file) order.
    names: Arc<Vec<String>>,
    values: Vec<Option<u64>>,
    pub key: i64,
    pub wall: i64,
    pub mono: i64,
    pub boot_id: [u8; 16],
}

impl SysSample {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.cols
            .get(name)
            .and_then(|&i| self.values.get(i).copied().flatten())
    }
    /// Every present (name, value), for dumps.
    /// This sample with `other`'s columns added (two streams sampled in the
    /// same tick, e.g. `kernel` joined to `system`). `cache` keeps the
    /// merged column tables, shared by every sample of the same two blocks.
    pub fn merged(
        &self,
        other: &SysSample,
        cache: &mut HashMap<(usize, usize), (Arc<HashMap<String, usize>>, Arc<Vec<String>>)>,
    ) -> SysSample {
        let k = (
            Arc::as_ptr(&self.names) as usize,
            Arc::as_ptr(&other.names) as usize,
        );
        let (cols, names) = cache
            .entry(k)
            .or_insert_with(|| {
                let mut names: Vec<String> = self.names.to_vec();
                let mut cols = (*self.cols).clone();
                for n in other.names.iter() {
                    if !cols.contains_key(n) {
                        cols.insert(n.clone(), names.len());
                        names.push(n.clone());
                    }
                }
                (Arc::new(cols), Arc::new(names))
            })
            .clone();
        let mut values = self.values.clone();
        values.resize(self.names.len(), None);
        for n in &names[self.names.len()..] {
            values.push(other.get(n));
        }
        SysSample {
            cols,
            names,
            values,
            ..self.clone()
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.cols.iter().filter_map(|(n, &i)| {
            self.values
                .get(i)
                .copied()
                .flatten()
                .map(|v| (n.as_str(), v))
        })
    }
}

impl crate::views::netdisk::Columns for SysSample {
    fn column_names(&self) -> Vec<String> {
        self.names
            .iter()
            .enumerate()
            .filter(|(i, _)| self.values.get(*i).is_some_and(|v| v.is_some()))
            .map(|(_, n)| n.clone())
            .collect()
    }
}

impl crate::views::Sample for SysSample {
    fn get(&self, name: &str) -> Option<u64> {
        SysSample::get(self, name)
    }
    fn wall_ns(&self) -> i64 {
        self.wall
    }
    fn mono_ns(&self) -> i64 {
        self.mono
    }
}

fn flatten(batches: Vec<KvBatch>, from: i64, to: i64, out: &mut Vec<SysSample>) {
    // Blocks are in key order; a stale duplicate (same key) is dropped.
    for b in batches {
        let cols: Arc<HashMap<String, usize>> = Arc::new(
            b.names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i))
                .collect(),
        );
        let names = Arc::new(b.names);
        for s in b.samples {
            if s.key >= from && s.key <= to && out.last().is_none_or(|l| l.key < s.key) {
                out.push(SysSample {
                    cols: cols.clone(),
                    names: names.clone(),
                    values: s.values,
                    key: s.key,
                    wall: s.wall,
                    mono: s.mono,
                    boot_id: b.boot_id,
                });
            }
        }
    }
}

/// The newest sample with key ≤ `k`, and the one before it (for rates).
/// `k` may lie after the last block (the ring was stopped) or in a gap.
pub fn load_at(r: &RingReader, k: i64, bad: &mut Vec<String>) -> Vec<SysSample> {
    load_at_in(r, "system", k, bad)
}

/// `load_at` for any kv stream.
pub fn load_at_in(r: &RingReader, stream: &str, k: i64, bad: &mut Vec<String>) -> Vec<SysSample> {
    let Some(i) = r.stream(stream) else {
        return Vec::new();
    };
    let mut batches: Vec<KvBatch> = Vec::new();
    if let Some(seq) = r.find_block(i, k) {
        for s in seq.saturating_sub(1)..=seq {
            match r.read_block(i, s) {
                Ok(lpo_format::BlockRead::Ok(b)) => batches.extend(b.into_kv()),
                Ok(lpo_format::BlockRead::Gone) => {}
                Err(e) if s == seq => bad.push(e.to_string()),
                Err(_) => {}
            }
        }
    }
    match r.staged(i) {
        Ok(b) => batches.extend(b.into_kv()),
        Err(e) => bad.push(e.to_string()),
    }
    let mut out = Vec::new();
    flatten(batches, i64::MIN, k, &mut out);
    let n = out.len();
    out.split_off(n.saturating_sub(2))
}

/// Load system samples with keys in [from, to]. Corrupt blocks are counted
/// in `bad` with their reasons, and skipped.
pub fn load_system(r: &RingReader, from: i64, to: i64, bad: &mut Vec<String>) -> Vec<SysSample> {
    load_kv(r, "system", from, to, bad)
}

/// Samples of kv stream `stream` with keys in [from, to].
pub fn load_kv(
    r: &RingReader,
    stream: &str,
    from: i64,
    to: i64,
    bad: &mut Vec<String>,
) -> Vec<SysSample> {
    let Some(i) = r.stream(stream) else {
        return Vec::new();
    };
    let batches = r
        .batches(i, from, to, &mut |e| bad.push(e.to_string()))
        .into_iter()
        .filter_map(|b| b.into_kv())
        .collect();
    let mut out = Vec::new();
    flatten(batches, from, to, &mut out);
    out
}

/// The view-facing description of the recorded host.
pub fn host_of(h: &HostHeader, tz: chrono_tz::Tz) -> crate::views::Host {
    crate::views::Host {
        hostname: h.hostname.clone(),
        kernel: h.kernel_release.clone(),
        arch: h.arch.clone(),
        ncpu: h.ncpu,
        clk_tck: h.clk_tck,
        page_size: h.page_size,
        tz,
    }
}
