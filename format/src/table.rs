//! The `table` codec: per-entity rows (processes, threads) plus events
//! (process exits), for streams where each sample is a set of rows.
//!
//! An *entity* is one process life with one set of attributes (pid, start
//! time, ppid, uid, comm, cmdline, …): attributes are stored once per entity
//! per block, never per sample. Values (CPU ticks, RSS, I/O bytes, …) are
//! stored per entity as a run over the samples it was present in: the first
//! value raw, then zigzag deltas, so an idle process costs one zero byte per
//! field per sample before zstd, and almost nothing after.
//!
//! The writer keeps a [`TableBuilder`] that grows the block's columnar
//! encoding sample by sample (memory ~ bytes of the encoded block), and
//! stages a compact per-sample record (only new entities, gone entities and
//! changed values) so a crash loses nothing already taken. Reading staging
//! replays those records into a builder, so both paths share one decoder.
//! See spec/FORMAT.md, "table codec".

use crate::error::{Error, Result};
use crate::varint::{put_i64, put_u64, unzigzag, zigzag, Cursor};
use std::collections::HashMap;

pub const REC_SCHEMA: u8 = 1;
pub const REC_SAMPLE: u8 = 2;
/// Caps on untrusted input.
pub const MAX_FIELDS: usize = 256;
pub const MAX_ENTITIES: usize = 1 << 22;
pub const MAX_STR: usize = 64 * 1024;
pub const MAX_CELLS: usize = 48 << 20;

/// Field names of a table stream; fixed for a staging generation and a block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSchema {
    /// Per-sample values of each row.
    pub values: Vec<String>,
    /// Integer attributes of an entity (stored once per entity).
    pub attr_ints: Vec<String>,
    /// String attributes of an entity.
    pub attr_strs: Vec<String>,
    /// Integer fields of an event.
    pub event_ints: Vec<String>,
    /// String fields of an event.
    pub event_strs: Vec<String>,
}

/// Attributes of one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub ints: Vec<u64>,
    pub strs: Vec<String>,
}

/// One event (e.g. a process exit) attached to a sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub ints: Vec<u64>,
    pub strs: Vec<String>,
}

/// One row of a sample, as the collector hands it to the writer.
pub struct RowIn<'a> {
    /// Caller-unique id of this entity (one process life with one set of
    /// attributes): a new `ekey` makes a new entity.
    pub ekey: u64,
    pub attrs: &'a dyn Fn() -> Attrs,
    pub values: &'a [u64],
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = &s.as_bytes()[..s.len().min(MAX_STR)];
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn get_str(c: &mut Cursor, at: u64) -> Result<String> {
    let l = c
        .len(MAX_STR)
        .ok_or_else(|| Error::corrupt(at, "table: bad string length"))?;
    let b = c
        .bytes(l)
        .ok_or_else(|| Error::corrupt(at, "table: string truncated"))?;
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn skip_str(c: &mut Cursor, at: u64) -> Result<()> {
    let l = c
        .len(MAX_STR)
        .ok_or_else(|| Error::corrupt(at, "table: bad string length"))?;
    c.bytes(l)
        .ok_or_else(|| Error::corrupt(at, "table: string truncated"))?;
    Ok(())
}

fn put_names(out: &mut Vec<u8>, names: &[String]) {
    put_u64(out, names.len() as u64);
    for n in names {
        put_str(out, n);
    }
}

fn get_names(c: &mut Cursor, at: u64) -> Result<Vec<String>> {
    let n = c
        .len(MAX_FIELDS)
        .ok_or_else(|| Error::corrupt(at, "table: bad field count"))?;
    (0..n).map(|_| get_str(c, at)).collect()
}

impl TableSchema {
    fn encode(&self, out: &mut Vec<u8>) {
        for l in [
            &self.values,
            &self.attr_ints,
            &self.attr_strs,
            &self.event_ints,
            &self.event_strs,
        ] {
            put_names(out, l);
        }
    }
    fn decode(c: &mut Cursor, at: u64) -> Result<TableSchema> {
        Ok(TableSchema {
            values: get_names(c, at)?,
            attr_ints: get_names(c, at)?,
            attr_strs: get_names(c, at)?,
            event_ints: get_names(c, at)?,
            event_strs: get_names(c, at)?,
        })
    }
}

struct EntityB {
    ekey: u64,
    attrs: Attrs,
    first: u32,
    last: u32,
    prev: Vec<u64>,
    cols: Vec<Vec<u8>>,
}

/// Builds one block's columnar payload incrementally, sample by sample.
pub struct TableBuilder {
    pub schema: TableSchema,
    n_samples: u32,
    times: Vec<(i64, i64, i64)>,
    ents: Vec<EntityB>,
    by_key: HashMap<u64, u32>,
    alive: Vec<u32>,
    events: Vec<(u32, Event)>,
    approx_bytes: usize,
}

impl TableBuilder {
    pub fn new(schema: TableSchema) -> TableBuilder {
        TableBuilder {
            schema,
            n_samples: 0,
            times: Vec::new(),
            ents: Vec::new(),
            by_key: HashMap::new(),
            alive: Vec::new(),
            events: Vec::new(),
            approx_bytes: 0,
        }
    }
    pub fn n_samples(&self) -> u32 {
        self.n_samples
    }
    pub fn first_key(&self) -> Option<i64> {
        self.times.first().map(|t| t.0)
    }
    pub fn times(&self) -> &[(i64, i64, i64)] {
        &self.times
    }
    /// Rough size of the block payload so far (before zstd).
    pub fn approx_bytes(&self) -> usize {
        self.approx_bytes
    }

    /// Add a sample; returns the staging record body describing it.
    pub fn push(
        &mut self,
        key: i64,
        wall: i64,
        mono: i64,
        rows: &[RowIn],
        events: &[Event],
    ) -> Vec<u8> {
        let s = self.n_samples;
        let nf = self.schema.values.len();
        let mut rec = vec![REC_SAMPLE];
        put_i64(&mut rec, key);
        put_i64(&mut rec, wall);
        put_i64(&mut rec, mono);
        let mut new_ents: Vec<u32> = Vec::new();
        let mut seen: Vec<u32> = Vec::with_capacity(rows.len());
        let mut changed: Vec<u8> = Vec::new();
        let mut n_changed = 0u64;
        let mut prev_id = 0u32;
        let mut ids: Vec<(u32, usize)> = Vec::with_capacity(rows.len());
        for (ri, r) in rows.iter().enumerate() {
            let id = match self.by_key.get(&r.ekey) {
                Some(&id) if self.ents[id as usize].last + 1 == s => id,
                _ => {
                    let id = self.ents.len() as u32;
                    let mut a = (r.attrs)();
                    a.ints.resize(self.schema.attr_ints.len(), 0);
                    a.strs.resize(self.schema.attr_strs.len(), String::new());
                    self.ents.push(EntityB {
                        ekey: r.ekey,
                        attrs: a,
                        first: s,
                        last: s.wrapping_sub(1),
                        prev: vec![0; nf],
                        cols: vec![Vec::new(); nf],
                    });
                    self.by_key.insert(r.ekey, id);
                    new_ents.push(id);
                    id
                }
            };
            ids.push((id, ri));
        }
        ids.sort_unstable();
        for &(id, ri) in &ids {
            if seen.last() == Some(&id) {
                continue; // duplicate ekey in one sample: first wins
            }
            seen.push(id);
            let e = &mut self.ents[id as usize];
            let is_new = e.first == s;
            let vals = rows[ri].values;
            let mut mask: u64 = 0;
            for f in 0..nf {
                let v = vals.get(f).copied().unwrap_or(0);
                let before = e.cols[f].len();
                if is_new {
                    put_u64(&mut e.cols[f], v);
                } else {
                    put_u64(&mut e.cols[f], zigzag(v.wrapping_sub(e.prev[f]) as i64));
                }
                self.approx_bytes += e.cols[f].len() - before;
                if is_new || v != e.prev[f] {
                    mask |= 1 << f.min(63);
                }
                e.prev[f] = v;
            }
            e.last = s;
            if mask != 0 && !is_new {
                n_changed += 1;
                put_u64(&mut changed, (id - prev_id) as u64);
                prev_id = id;
                put_u64(&mut changed, mask);
                for f in 0..nf {
                    if mask & (1 << f.min(63)) != 0 {
                        put_u64(&mut changed, e.prev[f]);
                    }
                }
            }
        }
        // New entities: attributes and all values.
        put_u64(&mut rec, new_ents.len() as u64);
        for &id in &new_ents {
            let e = &self.ents[id as usize];
            for v in &e.attrs.ints {
                put_u64(&mut rec, *v);
            }
            for st in &e.attrs.strs {
                put_str(&mut rec, st);
                self.approx_bytes += st.len();
            }
            for v in &e.prev {
                put_u64(&mut rec, *v);
            }
        }
        // Gone: alive before, not seen now (both sorted).
        let mut gone = Vec::new();
        let mut j = 0;
        for &a in &self.alive {
            while j < seen.len() && seen[j] < a {
                j += 1;
            }
            if j >= seen.len() || seen[j] != a {
                gone.push(a);
            }
        }
        put_u64(&mut rec, gone.len() as u64);
        let mut p = 0u32;
        for g in gone {
            put_u64(&mut rec, (g - p) as u64);
            p = g;
        }
        put_u64(&mut rec, n_changed);
        rec.extend_from_slice(&changed);
        put_u64(&mut rec, events.len() as u64);
        for ev in events {
            self.write_event(&mut rec, ev);
            self.events.push((s, ev.clone()));
        }
        self.alive = seen
            .into_iter()
            .filter(|id| !new_ents.contains(id))
            .collect();
        self.alive.extend(new_ents.iter().copied());
        self.alive.sort_unstable();
        self.times.push((key, wall, mono));
        self.n_samples += 1;
        rec
    }

    fn write_event(&mut self, out: &mut Vec<u8>, ev: &Event) {
        for f in 0..self.schema.event_ints.len() {
            put_u64(out, ev.ints.get(f).copied().unwrap_or(0));
        }
        for f in 0..self.schema.event_strs.len() {
            let s = ev.strs.get(f).map(|s| s.as_str()).unwrap_or("");
            put_str(out, s);
            self.approx_bytes += s.len();
        }
    }

    /// Replay a staged SAMPLE record (the inverse of `push`).
    pub fn replay(&mut self, rec: &[u8], at: u64) -> Result<()> {
        let bad = |w: &str| Error::corrupt(at, format!("table staging: {w}"));
        let mut c = Cursor::new(rec);
        if c.u8() != Some(REC_SAMPLE) {
            return Err(bad("not a sample record"));
        }
        let key = c.i64().ok_or_else(|| bad("truncated"))?;
        let wall = c.i64().ok_or_else(|| bad("truncated"))?;
        let mono = c.i64().ok_or_else(|| bad("truncated"))?;
        let nf = self.schema.values.len();
        // Current values of every alive entity, then apply the record.
        let mut cur: Vec<(u32, Vec<u64>)> = self
            .alive
            .iter()
            .map(|&id| (id, self.ents[id as usize].prev.clone()))
            .collect();
        let n_new = c.len(MAX_ENTITIES).ok_or_else(|| bad("new count"))?;
        let base = self.ents.len() as u32;
        let mut new_rows = Vec::with_capacity(n_new.min(4096));
        for k in 0..n_new {
            let mut a = Attrs::default();
            for _ in 0..self.schema.attr_ints.len() {
                a.ints.push(c.u64().ok_or_else(|| bad("attrs"))?);
            }
            for _ in 0..self.schema.attr_strs.len() {
                a.strs.push(get_str(&mut c, at)?);
            }
            let mut v = Vec::with_capacity(nf);
            for _ in 0..nf {
                v.push(c.u64().ok_or_else(|| bad("values"))?);
            }
            new_rows.push((base + k as u32, a, v));
        }
        let n_gone = c.len(MAX_ENTITIES).ok_or_else(|| bad("gone count"))?;
        let mut gone = Vec::with_capacity(n_gone.min(4096));
        let mut p = 0u64;
        for _ in 0..n_gone {
            p = p
                .checked_add(c.u64().ok_or_else(|| bad("gone"))?)
                .ok_or_else(|| bad("gone id"))?;
            gone.push(p as u32);
        }
        cur.retain(|(id, _)| gone.binary_search(id).is_err());
        let n_ch = c.len(MAX_ENTITIES).ok_or_else(|| bad("changed count"))?;
        let mut p = 0u64;
        for _ in 0..n_ch {
            p = p
                .checked_add(c.u64().ok_or_else(|| bad("changed"))?)
                .ok_or_else(|| bad("changed id"))?;
            let mask = c.u64().ok_or_else(|| bad("mask"))?;
            let row = cur
                .binary_search_by_key(&(p as u32), |r| r.0)
                .map_err(|_| bad("change to an entity that is not alive"))?;
            for f in 0..nf {
                if mask & (1 << f.min(63)) != 0 {
                    cur[row].1[f] = c.u64().ok_or_else(|| bad("changed value"))?;
                }
            }
        }
        let n_ev = c.len(MAX_ENTITIES).ok_or_else(|| bad("event count"))?;
        let mut events = Vec::with_capacity(n_ev.min(4096));
        for _ in 0..n_ev {
            let mut ev = Event::default();
            for _ in 0..self.schema.event_ints.len() {
                ev.ints.push(c.u64().ok_or_else(|| bad("event"))?);
            }
            for _ in 0..self.schema.event_strs.len() {
                ev.strs.push(get_str(&mut c, at)?);
            }
            events.push(ev);
        }
        if c.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        // Re-push through the normal path: entity keys are the local ids.
        let mut attrs_of: HashMap<u64, Attrs> = HashMap::new();
        let mut rows_owned: Vec<(u64, Vec<u64>)> = Vec::new();
        for (id, v) in cur {
            rows_owned.push((self.key_of(id), v));
        }
        for (id, a, v) in new_rows {
            let k = REPLAY_KEY_BASE + id as u64;
            attrs_of.insert(k, a);
            rows_owned.push((k, v));
        }
        let empty = Attrs::default();
        let fns: Vec<Box<dyn Fn() -> Attrs>> = rows_owned
            .iter()
            .map(|(k, _)| {
                let a = attrs_of.get(k).cloned().unwrap_or_else(|| empty.clone());
                Box::new(move || a.clone()) as Box<dyn Fn() -> Attrs>
            })
            .collect();
        let rows: Vec<RowIn> = rows_owned
            .iter()
            .zip(&fns)
            .map(|((k, v), f)| RowIn {
                ekey: *k,
                attrs: f.as_ref(),
                values: v,
            })
            .collect();
        self.push(key, wall, mono, &rows, &events);
        Ok(())
    }

    fn key_of(&self, id: u32) -> u64 {
        self.ents[id as usize].ekey
    }

    /// The SCHEMA record that opens a staging generation.
    pub fn schema_record(&self, boot_id: &[u8; 16]) -> Vec<u8> {
        let mut r = vec![REC_SCHEMA];
        r.extend_from_slice(boot_id);
        self.schema.encode(&mut r);
        r
    }

    /// The block payload (before zstd).
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.approx_bytes + 1024);
        put_u64(&mut out, self.n_samples as u64);
        self.schema.encode(&mut out);
        // times
        let mut pk = (0i64, 0i64);
        let mut pm = (0i64, 0i64);
        for (i, t) in self.times.iter().enumerate() {
            if i == 0 {
                put_i64(&mut out, t.0);
            } else {
                let d = t.0.wrapping_sub(pk.0);
                put_i64(&mut out, d.wrapping_sub(pk.1));
                pk.1 = d;
            }
            pk.0 = t.0;
        }
        for (i, t) in self.times.iter().enumerate() {
            if i == 0 {
                put_i64(&mut out, t.2);
            } else {
                let d = t.2.wrapping_sub(pm.0);
                put_i64(&mut out, d.wrapping_sub(pm.1));
                pm.1 = d;
            }
            pm.0 = t.2;
        }
        for t in &self.times {
            put_i64(&mut out, t.1.wrapping_sub(t.0));
        }
        // entities: runs and attributes, column by column
        put_u64(&mut out, self.ents.len() as u64);
        let mut prev_first = 0u32;
        for e in &self.ents {
            put_u64(&mut out, (e.first - prev_first) as u64);
            prev_first = e.first;
            put_u64(&mut out, (e.last - e.first) as u64);
        }
        for a in 0..self.schema.attr_ints.len() {
            let mut prev = 0u64;
            for e in &self.ents {
                let v = e.attrs.ints[a];
                put_u64(&mut out, zigzag(v.wrapping_sub(prev) as i64));
                prev = v;
            }
        }
        for a in 0..self.schema.attr_strs.len() {
            for e in &self.ents {
                put_str(&mut out, &e.attrs.strs[a]);
            }
        }
        for f in 0..self.schema.values.len() {
            for e in &self.ents {
                out.extend_from_slice(&e.cols[f]);
            }
        }
        put_u64(&mut out, self.events.len() as u64);
        let mut ps = 0u32;
        for (s, ev) in &self.events {
            put_u64(&mut out, (s - ps) as u64);
            ps = *s;
            for f in 0..self.schema.event_ints.len() {
                put_u64(&mut out, ev.ints.get(f).copied().unwrap_or(0));
            }
            for f in 0..self.schema.event_strs.len() {
                put_str(&mut out, ev.strs.get(f).map(|s| s.as_str()).unwrap_or(""));
            }
        }
        out
    }
}

const REPLAY_KEY_BASE: u64 = 1 << 63;

/// A decoded table block (or staged tail).
#[derive(Debug, Clone, Default)]
pub struct TableBatch {
    pub boot_id: [u8; 16],
    pub schema: TableSchema,
    /// (key, wall, mono) per sample.
    pub times: Vec<(i64, i64, i64)>,
    pub entities: Vec<EntityOut>,
    /// (sample index, event).
    pub events: Vec<(u32, Event)>,
}

#[derive(Debug, Clone, Default)]
pub struct EntityOut {
    pub attrs: Attrs,
    pub first: u32,
    pub last: u32,
    /// values[field][sample - first]
    pub values: Vec<Vec<u64>>,
}

impl EntityOut {
    /// Values of field `f` at sample `s`, if the entity was present.
    pub fn value(&self, f: usize, s: u32) -> Option<u64> {
        if s < self.first || s > self.last {
            return None;
        }
        self.values.get(f)?.get((s - self.first) as usize).copied()
    }
}

impl TableBatch {
    /// Entities present at sample `s`.
    pub fn rows_at(&self, s: u32) -> impl Iterator<Item = &EntityOut> {
        self.entities
            .iter()
            .filter(move |e| e.first <= s && s <= e.last)
    }
    pub fn value_index(&self, name: &str) -> Option<usize> {
        self.schema.values.iter().position(|n| n == name)
    }
}

/// Decode a table block payload of `n_samples` samples.
pub fn decode_block(raw: &[u8], n_samples: u32, boot_id: [u8; 16], at: u64) -> Result<TableBatch> {
    decode_block_picked(raw, n_samples, boot_id, at, &mut |t| {
        (0..t.len() as u32).collect()
    })
}

/// Chooses the samples of a block to decode, given the block's (key, wall,
/// mono) times; returns sample indices (any order, duplicates ignored).
pub type Pick<'a> = dyn FnMut(&[(i64, i64, i64)]) -> Vec<u32> + 'a;

/// Decode only the samples `pick` chooses: the batch holds those samples
/// (re-indexed in order), the entities present at one of them, and the
/// events attached to them. Values at other samples are walked over without
/// being stored, so reading one moment of a block costs one pass over its
/// bytes and memory for one sample, not for the whole block.
pub fn decode_block_picked(
    raw: &[u8],
    n_samples: u32,
    boot_id: [u8; 16],
    at: u64,
    pick: &mut Pick<'_>,
) -> Result<TableBatch> {
    let bad = |w: &str| Error::corrupt(at, format!("table block: {w}"));
    let mut c = Cursor::new(raw);
    let n = c.len(raw.len()).ok_or_else(|| bad("sample count"))?;
    if n != n_samples as usize {
        return Err(bad("sample count differs from header"));
    }
    let schema = TableSchema::decode(&mut c, at)?;
    let mut times = vec![(0i64, 0i64, 0i64); n];
    for which in [0usize, 2] {
        let (mut prev, mut pd) = (0i64, 0i64);
        for (i, t) in times.iter_mut().enumerate() {
            let x = c.i64().ok_or_else(|| bad("times"))?;
            let v = if i == 0 {
                x
            } else {
                pd = pd.wrapping_add(x);
                prev.wrapping_add(pd)
            };
            prev = v;
            if which == 0 {
                t.0 = v
            } else {
                t.2 = v
            }
        }
    }
    for t in times.iter_mut() {
        t.1 = t.0.wrapping_add(c.i64().ok_or_else(|| bad("times"))?);
    }
    // want[s]: the new index of sample s, or NONE.
    const NONE: u32 = u32::MAX;
    let mut want = vec![NONE; n];
    for s in pick(&times) {
        if let Some(w) = want.get_mut(s as usize) {
            *w = 0;
        }
    }
    let mut kept = 0u32;
    for w in want.iter_mut() {
        if *w != NONE {
            *w = kept;
            kept += 1;
        }
    }
    let all = kept as usize == n;
    // first_after[s]: the new index of the first picked sample >= s.
    let mut first_after = vec![kept; n + 1];
    for s in (0..n).rev() {
        first_after[s] = if want[s] != NONE {
            want[s]
        } else {
            first_after[s + 1]
        };
    }
    // last_le[s]: 1 + the last picked sample <= s (0: none).
    let mut last_le = vec![0u32; n];
    for s in 0..n {
        last_le[s] = if want[s] != NONE {
            s as u32 + 1
        } else if s > 0 {
            last_le[s - 1]
        } else {
            0
        };
    }
    let ne = c
        .len(MAX_ENTITIES.min(c.remaining()))
        .ok_or_else(|| bad("entity count"))?;
    let nf = schema.values.len();
    // (first, last) in the block, the picked range (new first, count), and
    // how many of its values reach the last picked sample.
    let mut runs: Vec<(u32, u32, u32, u32, u32)> = Vec::with_capacity(ne);
    let mut first = 0u64;
    let mut cells = 0usize;
    for _ in 0..ne {
        first += c.u64().ok_or_else(|| bad("entity run"))?;
        let len = c.u64().ok_or_else(|| bad("entity run"))?;
        if first >= n as u64 || first + len >= n as u64 {
            return Err(bad("entity run outside the block"));
        }
        cells = cells.saturating_add((len as usize + 1) * nf);
        if cells > MAX_CELLS {
            return Err(bad("too many values"));
        }
        let (f, l) = (first as u32, (first + len) as u32);
        let nf0 = first_after[f as usize];
        let nl = first_after[l as usize + 1];
        let upto = last_le[l as usize].saturating_sub(f);
        runs.push((f, l, nf0, nl - nf0, upto));
    }
    let mut ents: Vec<EntityOut> = runs
        .iter()
        .filter(|r| r.3 > 0)
        .map(|r| EntityOut {
            attrs: Attrs {
                ints: Vec::with_capacity(schema.attr_ints.len()),
                strs: Vec::with_capacity(schema.attr_strs.len()),
            },
            first: r.2,
            last: r.2 + r.3 - 1,
            values: Vec::with_capacity(nf),
        })
        .collect();
    for _ in 0..schema.attr_ints.len() {
        let mut prev = 0u64;
        let mut out = ents.iter_mut();
        for r in &runs {
            prev = prev.wrapping_add(unzigzag(c.u64().ok_or_else(|| bad("attrs"))?) as u64);
            if r.3 > 0 {
                out.next().unwrap().attrs.ints.push(prev);
            }
        }
    }
    for _ in 0..schema.attr_strs.len() {
        let mut out = ents.iter_mut();
        for r in &runs {
            if r.3 > 0 {
                out.next().unwrap().attrs.strs.push(get_str(&mut c, at)?);
            } else {
                skip_str(&mut c, at)?;
            }
        }
    }
    for _ in 0..nf {
        let mut out = ents.iter_mut();
        for r in &runs {
            let cnt = (r.1 - r.0 + 1) as usize;
            if r.3 == 0 {
                c.skip_varints(cnt).ok_or_else(|| bad("values"))?;
                continue;
            }
            let e = out.next().unwrap();
            let mut col = Vec::with_capacity(r.3 as usize);
            let mut prev = 0u64;
            // Values up to the last picked sample are summed; the rest skipped.
            let upto = r.4 as usize;
            for i in 0..upto {
                let x = c.u64().ok_or_else(|| bad("values"))?;
                prev = if i == 0 {
                    x
                } else {
                    prev.wrapping_add(unzigzag(x) as u64)
                };
                if all || want[r.0 as usize + i] != NONE {
                    col.push(prev);
                }
            }
            c.skip_varints(cnt - upto).ok_or_else(|| bad("values"))?;
            e.values.push(col);
        }
    }
    let nev = c
        .len(MAX_ENTITIES.min(c.remaining()))
        .ok_or_else(|| bad("event count"))?;
    let mut events = Vec::with_capacity(if all { nev } else { 0 });
    let mut s = 0u64;
    for _ in 0..nev {
        s += c.u64().ok_or_else(|| bad("event sample"))?;
        if s >= n as u64 {
            return Err(bad("event outside the block"));
        }
        let keep = want[s as usize] != NONE;
        let mut ev = Event::default();
        for _ in 0..schema.event_ints.len() {
            let v = c.u64().ok_or_else(|| bad("event"))?;
            if keep {
                ev.ints.push(v);
            }
        }
        for _ in 0..schema.event_strs.len() {
            if keep {
                ev.strs.push(get_str(&mut c, at)?);
            } else {
                skip_str(&mut c, at)?;
            }
        }
        if keep {
            events.push((want[s as usize], ev));
        }
    }
    if c.remaining() != 0 {
        return Err(bad("trailing bytes"));
    }
    let times = if all {
        times
    } else {
        times
            .iter()
            .zip(&want)
            .filter(|(_, w)| **w != NONE)
            .map(|(t, _)| *t)
            .collect()
    };
    Ok(TableBatch {
        boot_id,
        schema,
        times,
        entities: ents,
        events,
    })
}

/// Decode a staging generation (SCHEMA record, then SAMPLE records) into a
/// builder holding those samples.
pub fn builder_from_staged<'a>(
    records: impl IntoIterator<Item = &'a [u8]>,
    at: u64,
) -> Result<Option<(TableBuilder, [u8; 16])>> {
    let mut it = records.into_iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    let mut c = Cursor::new(first);
    if c.u8() != Some(REC_SCHEMA) {
        return Err(Error::corrupt(
            at,
            "table staging does not start with a schema",
        ));
    }
    let mut boot = [0u8; 16];
    boot.copy_from_slice(
        c.bytes(16)
            .ok_or_else(|| Error::corrupt(at, "table staging schema truncated"))?,
    );
    let schema = TableSchema::decode(&mut c, at)?;
    let mut b = TableBuilder::new(schema);
    for rec in it {
        b.replay(rec, at)?;
    }
    Ok(Some((b, boot)))
}

/// Staged samples as a batch (decoded through the block path).
pub fn decode_staged<'a>(
    records: impl IntoIterator<Item = &'a [u8]>,
    at: u64,
) -> Result<TableBatch> {
    decode_staged_picked(records, at, &mut |t| (0..t.len() as u32).collect())
}

/// [`decode_staged`] keeping only the samples `pick` chooses.
pub fn decode_staged_picked<'a>(
    records: impl IntoIterator<Item = &'a [u8]>,
    at: u64,
    pick: &mut Pick<'_>,
) -> Result<TableBatch> {
    match builder_from_staged(records, at)? {
        None => Ok(TableBatch::default()),
        Some((b, boot)) if b.n_samples() > 0 => {
            decode_block_picked(&b.finish(), b.n_samples(), boot, at, pick)
        }
        Some((b, boot)) => Ok(TableBatch {
            boot_id: boot,
            schema: b.schema,
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> TableSchema {
        TableSchema {
            values: vec!["utime".into(), "rss".into()],
            attr_ints: vec!["pid".into(), "start".into()],
            attr_strs: vec!["comm".into()],
            event_ints: vec!["pid".into(), "code".into()],
            event_strs: vec!["comm".into()],
        }
    }

    #[test]
    fn push_finish_decode_and_replay_agree() {
        let mut b = TableBuilder::new(schema());
        let mut recs = vec![b.schema_record(&[3; 16])];
        for s in 0..20u64 {
            let mut rows_data: Vec<(u64, Vec<u64>)> =
                vec![(1, vec![s * 3, 100]), (2, vec![7, 200 + s % 2])];
            if (5..12).contains(&s) {
                rows_data.push((3, vec![s, 50]));
            }
            let fns: Vec<Box<dyn Fn() -> Attrs>> = rows_data
                .iter()
                .map(|(k, _)| {
                    let k = *k;
                    Box::new(move || Attrs {
                        ints: vec![k * 10, 99],
                        strs: vec![format!("p{k}")],
                    }) as Box<dyn Fn() -> Attrs>
                })
                .collect();
            let rows: Vec<RowIn> = rows_data
                .iter()
                .zip(&fns)
                .map(|((k, v), f)| RowIn {
                    ekey: *k,
                    attrs: f.as_ref(),
                    values: v,
                })
                .collect();
            let evs = if s == 8 {
                vec![Event {
                    ints: vec![555, 3 << 8],
                    strs: vec!["short".into()],
                }]
            } else {
                vec![]
            };
            recs.push(b.push(s as i64 * 1000, s as i64 * 1000 + 1, s as i64, &rows, &evs));
        }
        let raw = b.finish();
        let d = decode_block(&raw, 20, [3; 16], 0).unwrap();
        assert_eq!(d.entities.len(), 3);
        let p3 = d.entities.iter().find(|e| e.attrs.strs[0] == "p3").unwrap();
        assert_eq!((p3.first, p3.last), (5, 11));
        assert_eq!(p3.value(0, 7), Some(7));
        let p1 = &d.entities[0];
        assert_eq!(p1.value(0, 19), Some(57));
        assert_eq!(
            d.events,
            vec![(
                8,
                Event {
                    ints: vec![555, 3 << 8],
                    strs: vec!["short".into()]
                }
            )]
        );
        assert_eq!(d.times[3], (3000, 3001, 3));
        // Staging replay yields the same decoded batch.
        let s = decode_staged(recs.iter().map(|r| r.as_slice()), 0).unwrap();
        assert_eq!(s.times, d.times);
        assert_eq!(s.entities.len(), 3);
        for (a, b) in s.entities.iter().zip(&d.entities) {
            assert_eq!(
                (&a.attrs, a.first, a.last, &a.values),
                (&b.attrs, b.first, b.last, &b.values)
            );
        }
        assert_eq!(s.events, d.events);
        // Picking samples gives what the whole decode holds at those samples.
        for pick in [
            vec![19u32],
            vec![4, 5],
            vec![11, 12],
            vec![0, 8, 19],
            vec![],
            vec![7, 3, 7],
        ] {
            let p = decode_block_picked(&raw, 20, [3; 16], 0, &mut |t| {
                assert_eq!(t.len(), 20);
                pick.clone()
            })
            .unwrap();
            let mut want = pick.clone();
            want.sort();
            want.dedup();
            assert_eq!(
                p.times,
                want.iter()
                    .map(|&s| d.times[s as usize])
                    .collect::<Vec<_>>()
            );
            for (ni, &s) in want.iter().enumerate() {
                let full: Vec<_> = d
                    .rows_at(s)
                    .map(|e| (&e.attrs, e.value(0, s), e.value(1, s)))
                    .collect();
                let got: Vec<_> = p
                    .rows_at(ni as u32)
                    .map(|e| (&e.attrs, e.value(0, ni as u32), e.value(1, ni as u32)))
                    .collect();
                assert_eq!(got, full, "sample {s} of {pick:?}");
                let ev: Vec<_> = d.events.iter().filter(|e| e.0 == s).map(|e| &e.1).collect();
                let pev: Vec<_> = p
                    .events
                    .iter()
                    .filter(|e| e.0 == ni as u32)
                    .map(|e| &e.1)
                    .collect();
                assert_eq!(pev, ev);
            }
            assert_eq!(
                p.events.len(),
                d.events.iter().filter(|e| want.contains(&e.0)).count()
            );
            assert!(p.entities.iter().all(|e| want
                .iter()
                .enumerate()
                .any(|(ni, _)| e.first <= ni as u32 && ni as u32 <= e.last)));
        }
        let sp =
            decode_staged_picked(recs.iter().map(|r| r.as_slice()), 0, &mut |_| vec![8]).unwrap();
        assert_eq!(
            (sp.times.len(), sp.entities.len(), sp.events.len()),
            (1, 3, 1)
        );
        // Hostile payloads never panic.
        for cut in 0..raw.len() {
            let _ = decode_block(&raw[..cut], 20, [0; 16], 0);
        }
        let mut x = 7u32;
        for _ in 0..3000 {
            let mut m = raw.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = x as usize % m.len();
            m[i] ^= (x >> 8) as u8 | 1;
            let _ = decode_block(&m, 20, [0; 16], 0);
            let _ = decode_block_picked(&m, 20, [0; 16], 0, &mut |_| vec![x % 21, 3]);
            let mut r2 = recs.clone();
            let k = 1 + (x as usize >> 3) % (r2.len() - 1);
            let j = (x as usize >> 9) % r2[k].len();
            r2[k][j] ^= 0x41;
            let _ = decode_staged(r2.iter().map(|r| r.as_slice()), 0);
        }
    }
}
