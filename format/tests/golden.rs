//! Golden files pin the on-disk bytes described in spec/FORMAT.md.
//! Regenerate (only with a spec change and a version bump!) with
//! `LPO_BLESS=1 cargo test -p lpo-format --test golden`.

use lpo_format::kv;
use lpo_format::layout::*;
use lpo_format::{HostHeader, RingReader, RingWriter, StreamSpec, UserName};
use std::path::PathBuf;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn check(name: &str, bytes: &[u8]) {
    let p = golden(name);
    if std::env::var_os("LPO_BLESS").is_some() {
        std::fs::write(&p, bytes).unwrap();
    }
    let want = std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with LPO_BLESS=1)", p.display()));
    assert!(want == bytes, "{name} differs from the golden file: the on-disk format changed; update spec/FORMAT.md, bump the version, and bless");
}

fn host() -> HostHeader {
    HostHeader {
        hostname: "golden".into(),
        kernel_release: "6.1.0".into(),
        kernel_version: "#1 SMP".into(),
        arch: "x86_64".into(),
        boot_id: "00112233-4455-6677-8899-aabbccddeeff".into(),
        ncpu: 2,
        clk_tck: 100,
        page_size: 4096,
        timezone: "Europe/Paris".into(),
        utc_offset_s: 3600,
        recorder_version: "0.1.0".into(),
        recorder_pid: 42,
        schema_version: 1,
        started_ns: 1_700_000_000_000_000_000,
        interval_ns: 1_000_000_000,
        flush_ns: 10_000_000_000,
        users: vec![UserName {
            uid: 0,
            name: "root".into(),
        }],
        skipped: vec!["system: pressure stall information not recorded".into()],
    }
}

#[test]
fn bytes_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.ring");
    let (mut w, _) =
        RingWriter::open_or_create(&path, 1 << 20, &[StreamSpec::kv("system", 1)], &host())
            .unwrap();
    let s = w.stream("system").unwrap();
    let t0 = 1_700_000_000_000_000_000i64;
    for i in 0..5i64 {
        let t = t0 + i * 1_000_000_000;
        let mut cols = vec![
            ("stat.ctxt", 1000 + 37 * i as u64),
            ("mem.MemFree", 500 - i as u64),
        ];
        if i >= 2 {
            cols.push(("psi.cpu.some.total", 7 * i as u64));
        }
        w.append_kv(s, t, t + 3, 5_000_000_000 + i * 1_000_000_000, cols)
            .unwrap();
    }
    let staged = std::fs::read(&path).unwrap();
    let r = RingReader::open(&path).unwrap();
    let e = r.superblock().streams[0].clone();
    let st = r.head(0);
    check("superblock.bin", &staged[..SUPERBLOCK_LEN as usize]);
    check(
        "staging.bin",
        &staged[e.staging_off as usize..(e.staging_off + st.staging_len) as usize],
    );
    check("host_header.rkyv", &host().to_bytes());
    w.close().unwrap();
    let sealed = std::fs::read(&path).unwrap();
    let ent = r.entry(0, 0).unwrap();
    let at = (e.data_off + ent.vpos % e.data_len) as usize;
    let block = &sealed[at..at + ent.total_len as usize];
    check(
        "block_header.bin",
        &block[..BLOCK_HEADER_LEN as usize][..52],
    ); // up to payload length (zstd output may vary by version)
    let bh = BlockHeader::decode(block, 0).unwrap();
    let raw =
        zstd::bulk::decompress(&block[BLOCK_HEADER_LEN as usize..], bh.raw_len as usize).unwrap();
    check("block_raw.bin", &raw);
    let io = (e.index_off) as usize;
    check("index_entry.bin", &sealed[io..io + 48]);
    // And the pinned raw payload decodes to what was written.
    let b = kv::decode_block(
        &std::fs::read(golden("block_raw.bin")).unwrap(),
        5,
        bh.boot_id,
        0,
    )
    .unwrap();
    let m = b.column_map();
    assert_eq!(b.samples[4].values[m["stat.ctxt"]], Some(1000 + 37 * 4));
    assert_eq!(b.samples[1].values[m["psi.cpu.some.total"]], None);
    assert_eq!(b.samples[4].wall, t0 + 4_000_000_000 + 3);
    assert_eq!(bh.boot_id[0], 0x00);
    assert_eq!(bh.boot_id[15], 0xff);
}

#[test]
fn log_codec_bytes_are_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.ring");
    let (mut w, _) =
        RingWriter::open_or_create(&path, 1 << 20, &[StreamSpec::log("kmsg", 1)], &host()).unwrap();
    let s = w.stream("kmsg").unwrap();
    let t0 = 1_700_000_000_000_000_000i64;
    let mut fresh_seen = Vec::new();
    for i in 0..4i64 {
        let t = t0 + i * 250_000_000;
        w.append_log(s, t, t + 3, 5_000_000_000 + i, &mut |fresh, buf| {
            fresh_seen.push(fresh);
            buf.extend_from_slice(format!("line {i}").as_bytes());
        })
        .unwrap();
    }
    assert_eq!(fresh_seen, [true, false, false, false]);
    let staged = std::fs::read(&path).unwrap();
    let r = RingReader::open(&path).unwrap();
    let e = r.superblock().streams[0].clone();
    let st = r.head(0);
    check(
        "log_staging.bin",
        &staged[e.staging_off as usize..(e.staging_off + st.staging_len) as usize],
    );
    w.close().unwrap();
    let sealed = std::fs::read(&path).unwrap();
    let ent = r.entry(0, 0).unwrap();
    let at = (e.data_off + ent.vpos % e.data_len) as usize;
    let block = &sealed[at..at + ent.total_len as usize];
    let bh = BlockHeader::decode(block, 0).unwrap();
    assert_eq!(bh.codec, CODEC_LOG);
    let raw =
        zstd::bulk::decompress(&block[BLOCK_HEADER_LEN as usize..], bh.raw_len as usize).unwrap();
    check("log_raw.bin", &raw);
    let b = lpo_format::log::decode_block(
        &std::fs::read(golden("log_raw.bin")).unwrap(),
        4,
        bh.boot_id,
        0,
    )
    .unwrap();
    assert_eq!(b.samples[3].payload, b"line 3");
    assert_eq!(b.samples[2].wall, t0 + 500_000_000 + 3);
}
