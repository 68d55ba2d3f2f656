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
        for s in b.samples {
            if s.key >= from && s.key <= to && out.last().is_none_or(|l| l.key < s.key) {
                out.push(SysSample {
                    cols: cols.clone(),
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
    let Some(i) = r.stream("system") else {
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
    let Some(i) = r.stream("system") else {
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
