//! Any bytes as a ring or capture: open, verify, read every block and the
//! staged tail, and replay the summary and `top` in the middle. Must never
//! panic, hang or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    let p = f.path().to_path_buf();
    let Ok(r) = lpo_format::RingReader::open(&p) else {
        return;
    };
    let _ = r.verify_file_crc();
    for i in 0..r.superblock().streams.len() {
        let _ = r.info(i);
        let _ = r.batches(i, i64::MIN, i64::MAX, &mut |_| {});
    }
    let mut sink = Vec::new();
    let _ = lpo_replay::info(&p, true, &mut sink);
    if let Some(i) = r.stream("system") {
        if let Some((fw, lw, _, _)) = r.info_range(i) {
            let mid = format!("@{}", (fw / 2 + lw / 2) / 1_000_000_000);
            for view in [vec![], vec!["top".to_string()]] {
                let args = lpo_replay::ReplayArgs {
                    file: p.clone(),
                    at: Some(mid.clone()),
                    view,
                    ..Default::default()
                };
                let _ = lpo_replay::replay(&args, &mut sink, &mut |_| {});
            }
        }
    }
});
