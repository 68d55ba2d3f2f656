//! Saves a real netlink dump reply for the parser tests, or times dumps.
//!
//! `cargo run -p lpo-recorder --example nl_capture -- ct|tcp [FILE]`: dump
//! the conntrack table (ctnetlink) or the TCP sockets (sock_diag) once,
//! write the raw reply to FILE and print the aggregate;
//! `… -- time ct|tcp [N]`: time N dumps (default 5) and print each.
use lpo_recorder::netlink::{self, conntrack::CtAggregate, sockdiag::TcpAggregate, Dumper};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    match a.as_slice() {
        ["time", what, rest @ ..] => {
            let n: usize = rest.first().and_then(|v| v.parse().ok()).unwrap_or(5);
            for _ in 0..n {
                let t = Instant::now();
                let c0 = cpu_ms();
                let (entries, trunc) = match *what {
                    "ct" => {
                        let mut d = Dumper::new(CtAggregate::default());
                        d.dump().expect("dump");
                        (d.kind.entries, d.kind.truncated)
                    }
                    _ => {
                        let mut d = Dumper::new(TcpAggregate::default());
                        d.dump().expect("dump");
                        (d.kind.entries, d.kind.truncated)
                    }
                };
                println!(
                    "{what}: {entries} entries{} in {:.1} ms wall, {:.1} ms CPU (user+sys)",
                    if trunc { " (truncated)" } else { "" },
                    t.elapsed().as_secs_f64() * 1e3,
                    cpu_ms() - c0
                );
            }
        }
        [what, rest @ ..] => {
            let raw = match *what {
                "ct" => netlink::capture(CtAggregate::default()),
                _ => netlink::capture(TcpAggregate::default()),
            }
            .expect("dump");
            if let Some(f) = rest.first() {
                std::fs::write(f, &raw).expect("write");
            }
            let mut buf = String::new();
            let mut print = |k: &str, v: u64| println!("{k} {v}");
            if *what == "ct" {
                let mut agg = CtAggregate::default();
                netlink::aggregate(&mut agg, &raw).expect("parse");
                agg.emit(&mut buf, &mut print);
            } else {
                let mut agg = TcpAggregate::default();
                netlink::aggregate(&mut agg, &raw).expect("parse");
                agg.emit(&mut buf, &mut print);
            }
            eprintln!("{} bytes", raw.len());
        }
        _ => eprintln!("usage: nl_capture ct|tcp [FILE] | time ct|tcp [N]"),
    }
}

/// User + system CPU time of this process so far, ms (kernel time of the
/// dump is spent in our syscalls, so it is included).
fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 * 1e3 + tv.tv_usec as f64 / 1e3;
    t(ru.ru_utime) + t(ru.ru_stime)
}
