//! Connection tables: 500 TCP connections inside a test network namespace
//! with conntrack active show in the `conntrack` view by state and by
//! source, in `ss -s` and `ss -tan`, and the listener with its backlog and
//! accept queue in `ss -ltn`; each compared with the real `conntrack -C` and
//! `ss` run alongside. Without CAP_NET_ADMIN the conntrack walk is skipped
//! with one line and the rest is recorded.

use crate::harness::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const CONNS: usize = 500;
const BACKLOG: usize = 600;
const UNACCEPTED: usize = 10;

/// Server and client in one process, inside the namespace: a listener on
/// 127.0.0.1:8080 with backlog 600, 500 connections from 10.77.0.2 of
/// which all but 10 are accepted; prints `ready` and holds everything.
const PY: &str = r#"
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
n, backlog, unaccepted = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 8080)); ls.listen(backlog)
keep = []
for i in range(n):
    c = socket.socket(); c.bind(("10.77.0.2", 0)); c.connect(("127.0.0.1", 8080)); keep.append(c)
for i in range(n - unaccepted):
    s, _ = ls.accept(); keep.append(s)
print("ready", flush=True)
time.sleep(60)
"#;

struct Netns(String);
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(c: &str) -> bool {
    Command::new("sh")
        .args(["-c", c])
        .status()
        .is_ok_and(|s| s.success())
}

fn in_ns(ns: &str, cmd: &str) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn replay_json(r: &std::path::Path, at: &str, view: &[&str]) -> serde_json::Value {
    let mut args = vec!["replay", "--json", "-f", r.to_str().unwrap(), "--at", at];
    args.extend_from_slice(view);
    let o = run(&args).ok(&format!("replay {view:?}"));
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{view:?}: {e}: {}", o.stdout))
}

#[test]
fn connections_in_a_namespace_show_in_conntrack_and_ss() {
    let _serial = serial();
    if !is_root() || !have("ip") {
        eprintln!("skipped: needs root and iproute2 (network namespaces)");
        return;
    }
    if !have("nft") || !have("python3") {
        assert!(
            std::env::var_os("CI").is_none(),
            "nft and python3 are installed by .ci/run"
        );
        eprintln!("skipped: needs nft (nftables) and python3");
        return;
    }
    let ns = format!("lpoct{}", std::process::id());
    let _ns = Netns(ns.clone());
    // Conntrack is per namespace and only tracks once a rule uses it.
    assert!(sh(&format!(
        "ip netns add {ns} && ip -n {ns} link set lo up && ip -n {ns} addr add 10.77.0.2/32 dev lo && \
         ip netns exec {ns} nft add table inet lpo && \
         ip netns exec {ns} nft add chain inet lpo in '{{ type filter hook input priority 0; }}' && \
         ip netns exec {ns} nft add rule inet lpo in ct state established,related,new accept"
    )));
    let d = tmpdir();
    let script = d.path().join("conns.py");
    std::fs::write(&script, PY).unwrap();
    let mut py = spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns, "python3"])
            .arg(&script)
            .args([
                CONNS.to_string(),
                BACKLOG.to_string(),
                UNACCEPTED.to_string(),
            ])
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(py.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "connection script failed");

    let r = ring_in(&d);
    let log = std::fs::File::create(r.with_extension("log")).unwrap();
    let mut rec = spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns, lpo_bin(), "record", "-f"])
            .arg(&r)
            .args(["--size", "32MiB", "--interval", "500ms", "--no-processes"])
            .stdout(Stdio::null())
            .stderr(log),
    );
    assert!(
        wait_samples(&r, 3, Duration::from_secs(15)) >= 3,
        "{}",
        recorder_log(&r)
    );
    // The real tools, alongside.
    let ss_tan = in_ns(&ns, "ss -tan");
    let real_estab = ss_tan.lines().filter(|l| l.starts_with("ESTAB")).count();
    let real_ct = have("conntrack")
        .then(|| in_ns(&ns, "conntrack -C").trim().parse::<u64>().ok())
        .flatten();
    let ss_ltn = in_ns(&ns, "ss -ltn");
    rec.signal(libc::SIGINT);
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
    drop(py);
    let log = recorder_log(&r);
    assert!(!log.contains("skipped: kernel: conntrack"), "{log}");
    assert!(!log.contains("skipped: kernel: TCP"), "{log}");
    let last = info_json(&r)["last_ns"].as_i64().unwrap();
    let at = format!("@{}", last as f64 / 1e9);

    // conntrack: ~500 ESTABLISHED tcp entries, all from 10.77.0.2:8080's clients.
    let v = replay_json(&r, &at, &["conntrack"]);
    let c = &v.as_array().unwrap().last().expect("a conntrack report")["walk"];
    let rep = &v.as_array().unwrap().last().unwrap();
    eprintln!(
        "conntrack: count {} (conntrack -C {real_ct:?}), walked {}, tcp {} ESTABLISHED {}, top source {}",
        rep["count"], c["entries"], rep["protocols"]["tcp"], rep["tcp_states"]["ESTABLISHED"], rep["top_sources"][0]
    );
    let est = rep["tcp_states"]["ESTABLISHED"].as_u64().unwrap();
    assert!((CONNS as u64..=CONNS as u64 + 5).contains(&est), "{rep}");
    assert!(rep["protocols"]["tcp"].as_u64().unwrap() >= CONNS as u64);
    assert_eq!(rep["top_sources"][0]["address"], "10.77.0.2", "{rep}");
    assert_eq!(rep["top_sources"][0]["count"], CONNS as u64, "{rep}");
    assert_eq!(rep["top_dports"][0]["port"], 8080, "{rep}");
    assert_eq!(rep["table_full"], false);
    if let Some(n) = real_ct {
        let count = rep["count"].as_u64().unwrap();
        assert!(count.abs_diff(n) <= 5, "count {count}, conntrack -C {n}");
    }
    let text = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--at",
        &at,
        "conntrack",
    ])
    .ok("conntrack text")
    .stdout;
    assert!(text.contains(&format!("{CONNS:>7} 10.77.0.2\n")), "{text}");
    assert!(text.contains("ESTABLISHED"), "{text}");

    // ss -s (sockstat + CurrEstab) and ss -tan (sock_diag): both ends of
    // each connection are in this namespace.
    let s = replay_json(&r, &at, &["ss", "-s"]);
    let s = s.as_array().unwrap().last().unwrap();
    let estab = s["TCP"]["estab"].as_u64().unwrap();
    let t = replay_json(&r, &at, &["ss", "-tan"]);
    let t = t.as_array().unwrap().last().unwrap();
    let diag_estab = t["states"]["ESTAB"].as_u64().unwrap();
    eprintln!("ss -s estab {estab}, ss -tan ESTAB {diag_estab}, real ss -tan ESTAB {real_estab}");
    assert!(diag_estab >= 2 * CONNS as u64, "{t}");
    assert!(diag_estab.abs_diff(real_estab as u64) <= 5);
    assert!(estab.abs_diff(real_estab as u64) <= 5);
    assert_eq!(t["states"]["LISTEN"], 1);

    // ss -ltn: the listener with its accept queue and backlog, same line as ss.
    let l = run(&[
        "replay",
        "-f",
        r.to_str().unwrap(),
        "--at",
        &at,
        "ss",
        "-ltn",
    ])
    .ok("ss -ltn")
    .stdout;
    eprintln!("replayed:\n{l}real:\n{ss_ltn}");
    let row = l
        .lines()
        .find(|x| x.contains("127.0.0.1:8080"))
        .expect("listener row");
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        f[..3],
        ["LISTEN", &UNACCEPTED.to_string(), &BACKLOG.to_string()]
    );
    assert_eq!(l.trim_end(), ss_ltn.trim_end(), "same as the real ss -ltn");
}

#[test]
fn without_cap_net_admin_conntrack_walk_is_skipped_with_one_line() {
    let _serial = serial();
    if !is_root() || !have("setpriv") {
        eprintln!("skipped: needs root (to drop to nobody with setpriv)");
        return;
    }
    let d = tmpdir();
    sh(&format!("chmod 777 {}", d.path().display()));
    let r = ring_in(&d);
    let o = run_cmd(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(lpo_bin())
            .args(["record", "-f"])
            .arg(&r)
            .args([
                "--size",
                "16MiB",
                "--interval",
                "200ms",
                "--duration",
                "1s",
                "--no-processes",
            ])
            .env_remove("LPO_RING"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    o.assert_no_panic("record as nobody");
    let lines: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.contains("conntrack table (ctnetlink) not recorded"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", o.stderr);
    assert!(lines[0].contains("CAP_NET_ADMIN"), "{}", lines[0]);
    // TCP sockets need no privilege: still recorded.
    let at = format!(
        "@{}",
        info_json(&r)["last_ns"].as_i64().unwrap() as f64 / 1e9
    );
    let t = replay_json(&r, &at, &["ss", "-tan"]);
    assert!(t.as_array().unwrap().last().unwrap()["total"]
        .as_u64()
        .is_some());
    // And the conntrack view still shows the counters it could read.
    let c = replay_json(&r, &at, &["conntrack"]);
    let c = c.as_array().unwrap().last().unwrap();
    assert!(c["walk"].is_null(), "{c}");
    assert!(c["max"].as_u64().is_some(), "{c}");
}
