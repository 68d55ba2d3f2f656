//! tracefs parsers on files captured from a real kernel (6.18, x86-64):
//! `events/header_page`, the default events' `format` files and four pages
//! of `per_cpu/cpu0/trace_pipe_raw` with sched_switch, sched_wakeup,
//! sched_process_fork and sched_process_exec records (226 events, as the
//! cpu's `stats` said after the read).

use lpo_format::ftrace::{BlockDecoder, BlockEncoder, Drain, FieldKind};
use lpo_recorder::ftrace::decode::*;
use std::path::PathBuf;

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/ftrace")
        .join(name);
    std::fs::read_to_string(&p).unwrap()
}

fn fmt(name: &str, group: &str) -> Format {
    parse_format(&data(&format!("{name}.format")), group).unwrap()
}

#[test]
fn header_page_of_a_real_kernel() {
    let l = parse_header_page(&data("header_page")).unwrap();
    assert_eq!(l.ts_off, 0);
    assert_eq!((l.commit_off, l.commit_size), (8, 8));
    assert_eq!((l.data_off, l.page_size()), (16, 4096));
}

#[test]
fn formats_of_the_default_events() {
    let sw = fmt("sched_switch", "sched");
    assert_eq!(sw.desc.id, 372);
    assert_eq!(sw.type_at, (0, 2));
    assert_eq!(
        (sw.flags_at, sw.preempt_at, sw.pid_at),
        (Some(2), Some(3), Some(4))
    );
    let names: Vec<_> = sw.desc.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "prev_comm",
            "prev_pid",
            "prev_prio",
            "prev_state",
            "next_comm",
            "next_pid",
            "next_prio"
        ]
    );
    assert_eq!(sw.desc.fields[0].kind, FieldKind::Str);
    assert_eq!(sw.desc.fields[0].ctype, "char[16]");
    assert_eq!(sw.desc.fields[3].kind, FieldKind::Signed);
    assert_eq!(sw.layout[3].offset, 32);
    let fork = fmt("sched_process_fork", "sched");
    assert_eq!(fork.layout[0].loc, Loc::DataLoc);
    assert_eq!(fork.desc.fields[0].kind, FieldKind::Str);
    let issue = fmt("block_rq_issue", "block");
    let k: Vec<_> = issue
        .desc
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert_eq!(k[0], ("dev", FieldKind::Unsigned));
    assert_eq!(k[1], ("sector", FieldKind::Unsigned));
    assert_eq!(k[5], ("rwbs", FieldKind::Str));
    assert_eq!(k[7], ("cmd", FieldKind::Str));
    for (n, g) in [
        ("sched_wakeup", "sched"),
        ("sched_wakeup_new", "sched"),
        ("sched_process_exec", "sched"),
        ("sched_process_exit", "sched"),
        ("block_rq_complete", "block"),
        ("mark_victim", "oom"),
    ] {
        let f = fmt(n, g);
        assert_eq!(f.desc.name, n);
        assert!(!f.desc.fields.is_empty());
    }
    // Damaged format files are errors, not panics.
    let t = data("sched_switch.format");
    for cut in (0..t.len()).step_by(7) {
        let _ = parse_format(&t[..cut], "sched");
    }
    assert!(parse_format(&t.replace("ID:", "XX:"), "sched").is_err());
}

#[test]
fn pages_from_trace_pipe_raw_decode_and_survive_the_codec() {
    let l = parse_header_page(&data("header_page")).unwrap();
    let raw =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ftrace/cpu0.raw"))
            .unwrap();
    let fmts = [
        fmt("sched_switch", "sched"),
        fmt("sched_wakeup", "sched"),
        fmt("sched_process_fork", "sched"),
        fmt("sched_process_exec", "sched"),
    ];
    let mut d = Drain::default();
    let mut unknown = 0;
    let mut last = 0;
    for page in raw.chunks(l.page_size()) {
        parse_page(page, &l, &mut |ts, rec| {
            assert!(ts >= last, "timestamps go forward within a CPU");
            last = ts;
            let t = record_type(fmts[0].type_at, rec).unwrap();
            match fmts.iter().position(|f| f.desc.id == t) {
                Some(i) => fmts[i].decode(rec, ts, 0, i as u32, &mut d),
                None => unknown += 1,
            }
        })
        .unwrap();
    }
    assert_eq!(unknown, 0);
    assert_eq!(d.events.len(), 226);
    let switches = d.events.iter().filter(|e| e.fmt == 0).count();
    assert!(switches > 50, "{switches} switches");
    assert!(d.events.iter().any(|e| e.fmt == 3), "an exec");
    // Every switch's prev_pid is its common_pid; comms are printable.
    for e in d.events.iter().filter(|e| e.fmt == 0) {
        assert_eq!(d.vals[e.vals as usize + 1], e.pid as i64);
        let comm = &d.strings[d.vals[e.vals as usize] as usize];
        assert!(
            !comm.is_empty() && comm.iter().all(|c| c.is_ascii_graphic() || *c == b' '),
            "{comm:?}"
        );
    }
    // Through the stream codec and back.
    let descs: Vec<_> = fmts.iter().map(|f| f.desc.clone()).collect();
    let mut out = Vec::new();
    BlockEncoder::default().encode(true, &descs, &d, &mut out);
    let mut dec = BlockDecoder::new();
    let got = dec.decode(&out).unwrap();
    assert_eq!(got.events.len(), 226);
    let exec = got
        .events
        .iter()
        .find(|e| dec.formats[e.fmt as usize].name == "sched_process_exec")
        .unwrap();
    let fname = dec.string(got.vals[exec.vals as usize]);
    assert!(fname.starts_with('/'), "{fname}");
    eprintln!("{} bytes for 226 events uncompressed", out.len());
}
