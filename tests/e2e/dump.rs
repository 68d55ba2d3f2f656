//! `lpo dump`: CSV, NDJSON and Parquet time series from a real recording;
//! the Parquet files are read back by an independent reader (DuckDB's
//! Python package) and must hold the same values as the CSV dump.

use crate::harness::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// python3 with the `duckdb` package, installed with pip if missing.
fn duckdb_python() -> bool {
    let has = || {
        Command::new("python3")
            .args(["-c", "import duckdb"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has() {
        return true;
    }
    for extra in [&[][..], &["--break-system-packages"]] {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "duckdb"])
            .args(extra)
            .output();
        if has() {
            return true;
        }
    }
    false
}

/// Run a Python script with `args`; its stdout, or a panic with its stderr.
fn python(dir: &Path, script: &str, args: &[&str]) -> String {
    let p = dir.join("check.py");
    std::fs::write(&p, script).unwrap();
    let o = Command::new("python3").arg(&p).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "python check failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into()
}

/// Compare a Parquet file (read by DuckDB) with a CSV dump of the same
/// rows: same column names in order, same row count, same values (floats
/// exactly: the CSV holds Rust's shortest round-trip form), timestamps as
/// TIMESTAMP WITH TIME ZONE equal to unix_ns and to the CSV's RFC 3339.
const COMPARE: &str = r#"
import csv, sys, duckdb, datetime
pq, csvf = sys.argv[1], sys.argv[2]
con = duckdb.connect()
desc = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{pq}')").fetchall()
names = [d[0] for d in desc]
types = {d[0]: d[1] for d in desc}
con.execute("SET TimeZone = 'UTC'")
# DuckDB 1.x reads TIMESTAMP(NANOS, UTC) as TIMESTAMPTZ (µs), 2.x as TIMESTAMPTZ_NS.
is_time = lambda t: 'TIME ZONE' in t or 'TIMESTAMPTZ' in t
times = [n for n in names if is_time(types[n])]
repl = ', '.join(f'epoch_ns(CAST("{n}" AS TIMESTAMP_NS)) AS "{n}"' for n in times)
rows = con.execute(f"""SELECT * REPLACE ({repl}) FROM read_parquet('{pq}')""").fetchall()
exact_ns = 'NS' in types['timestamp']
with open(csvf, newline='') as f:
    r = list(csv.reader(f))
head, body = r[0], r[1:]
assert names == head, (names, head)
assert len(rows) == len(body) and len(rows) > 0, (len(rows), len(body))
assert 'timestamp' in times, types['timestamp']
assert types['unix_ns'] == 'BIGINT' and types['host'] == 'VARCHAR', types
epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
for pr, cr in zip(rows, body):
    for n, pv, cv in zip(names, pr, cr):
        t = types[n]
        if n == 'timestamp':
            ns = int(cr[head.index('unix_ns')])
            assert pv == (ns if exact_ns else ns // 1000 * 1000), (pv, ns)
            s = (epoch + datetime.timedelta(microseconds=pv // 1000)).strftime('%Y-%m-%dT%H:%M:%S.%f')
            assert cv.startswith(s) and cv.endswith('Z'), (cv, s)
        elif pv is not None and n in times:
            s = (epoch + datetime.timedelta(microseconds=pv // 1000)).strftime('%Y-%m-%dT%H:%M:%S.%f')
            assert cv.startswith(s) and cv.endswith('Z'), (n, cv, s)
        elif pv is None:
            assert cv == '', (n, cv)
        elif t == 'BIGINT':
            assert pv == int(cv), (n, pv, cv)
        elif t == 'DOUBLE':
            assert pv == float(cv), (n, pv, cv)
        elif t == 'VARCHAR':
            assert pv == cv, (n, pv, cv)
        else:
            raise AssertionError(f'unexpected type {t} of {n}')
print(len(rows), ','.join(f'{n}:{types[n]}' for n in names))
"#;

fn csv_rows(s: &str) -> (Vec<String>, Vec<Vec<String>>) {
    // Our CSV never quotes in these columns except cmdline; a tiny reader
    // that honours quotes is enough here.
    let mut rows = Vec::new();
    for line in s.lines() {
        let mut f = Vec::new();
        let (mut cur, mut q) = (String::new(), false);
        let mut it = line.chars().peekable();
        while let Some(c) = it.next() {
            match (c, q) {
                ('"', true) if it.peek() == Some(&'"') => {
                    cur.push('"');
                    it.next();
                }
                ('"', _) => q = !q,
                (',', false) => f.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        f.push(cur);
        rows.push(f);
    }
    let head = rows.remove(0);
    (head, rows)
}

#[test]
fn dump_streams_as_csv_json_and_parquet() {
    let _serial = serial();
    let d = tmpdir();
    let r = ring_in(&d);
    let f = r.to_str().unwrap();
    // A marker process with a distinctive argv, alive for the whole recording.
    let marker = spawn(Command::new("sleep").arg("4242.0417"));
    let mut rec = start_recorder(&r, &["--size", "16MiB", "--interval", "200ms"]);
    wait_samples(&r, 10, Duration::from_secs(20));
    rec.signal(libc::SIGINT);
    assert_eq!(rec.wait_timeout(Duration::from_secs(10)), Some(0));
    let nsys = samples(&r, "system") as usize;
    let nproc = samples(&r, "process") as usize;
    let info = info_json(&r);
    let host = info["host"]["hostname"].as_str().unwrap().to_string();
    let ncpu = info["host"]["ncpu"].as_u64().unwrap() as usize;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();

    // system, CSV: one row per interval (every sample but the first).
    let o = run(&["dump", "-f", f, "system"]).ok("dump system");
    let (head, rows) = csv_rows(&o.stdout);
    assert_eq!(rows.len(), nsys - 1, "{}", o.stdout);
    for c in [
        "timestamp",
        "unix_ns",
        "host",
        "boot_id",
        "interval_s",
        "cpu_usr_pct",
        "cpu_idle_pct",
        "cs_per_s",
        "intr_per_s",
        "load1",
        "mem_total_kb",
        "mem_available_kb",
        "stat.ctxt",
    ] {
        assert!(head.iter().any(|h| h == c), "no column {c}: {head:?}");
    }
    let col = |n: &str| head.iter().position(|h| h == n).unwrap();
    for row in &rows {
        assert_eq!(row.len(), head.len());
        assert_eq!(row[col("host")], host);
        assert_eq!(row[col("boot_id")], boot.trim());
        let dt: f64 = row[col("interval_s")].parse().unwrap();
        assert!((0.1..1.0).contains(&dt), "interval {dt}");
        let idle: f64 = row[col("cpu_idle_pct")].parse().unwrap();
        assert!((0.0..=100.0).contains(&idle));
        assert!(row[col("mem_total_kb")].parse::<u64>().unwrap() > 0);
        assert!(row[col("timestamp")].ends_with('Z'));
    }
    let csv_path = d.path().join("system.csv");
    std::fs::write(&csv_path, &o.stdout).unwrap();

    // NDJSON: the same rows and values.
    let o = run(&["dump", "-f", f, "system", "-O", "json"]).ok("dump json");
    let js: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(js.len(), rows.len());
    for (j, row) in js.iter().zip(&rows) {
        assert_eq!(
            j["unix_ns"].as_i64().unwrap().to_string(),
            row[col("unix_ns")]
        );
        // serde_json's default float parser may be 1 ulp off (no float_roundtrip).
        let (a, b) = (
            j["cs_per_s"].as_f64().unwrap(),
            row[col("cs_per_s")].parse::<f64>().unwrap(),
        );
        assert!((a - b).abs() <= b.abs() * 1e-12, "{a} {b}");
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys, head.iter().collect::<Vec<_>>());
    }

    // --fields: these columns in this order, raw recorded counters too.
    let o = run(&[
        "dump",
        "-f",
        f,
        "system",
        "--fields",
        "unix_ns,host,cs_per_s,mem.MemTotal",
    ])
    .ok("fields");
    let (h2, r2) = csv_rows(&o.stdout);
    assert_eq!(h2, ["unix_ns", "host", "cs_per_s", "mem.MemTotal"]);
    assert_eq!(r2.len(), rows.len());
    assert_eq!(r2[0][3], rows[0][col("mem_total_kb")]);

    // Per-CPU, disk, interface and conntrack series.
    let o = run(&["dump", "-f", f, "cpu"]).ok("dump cpu");
    let (ch, cr) = csv_rows(&o.stdout);
    assert_eq!(cr.len(), (nsys - 1) * ncpu, "{}", o.stdout);
    assert!(ch.contains(&"cpu".to_string()) && ch.contains(&"usr_pct".to_string()));
    let o = run(&["dump", "-f", f, "iface"]).ok("dump iface");
    let (ih, ir) = csv_rows(&o.stdout);
    let ic = ih.iter().position(|h| h == "iface").unwrap();
    assert!(ir.iter().any(|r| r[ic] == "lo"), "{}", o.stdout);
    assert!(ih.contains(&"rxkb_per_s".to_string()) && ih.contains(&"rxdrop_per_s".to_string()));
    let o = run(&["dump", "-f", f, "disk"]).ok("dump disk");
    assert!(o
        .stdout
        .starts_with("timestamp,unix_ns,host,boot_id,interval_s"));
    run(&["dump", "-f", f, "conntrack"]).ok("dump conntrack");

    // process: the marker, with its pid and argv, in every interval.
    let o = run(&["dump", "-f", f, "process", "-O", "json"]).ok("dump process");
    let mine: Vec<serde_json::Value> = o
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|j| j["pid"] == marker.pid())
        .collect();
    assert_eq!(mine.len(), nproc - 1, "marker rows");
    for j in &mine {
        assert_eq!(j["comm"], "sleep");
        assert_eq!(j["cmdline"], "sleep 4242.0417");
        assert_eq!(j["ppid"], std::process::id());
        assert_eq!(j["state"], "S");
        assert!(j["rss_kb"].as_i64().unwrap() > 0);
        assert_eq!(j["host"], host.as_str());
    }

    // Errors: one line, exit 2.
    for (args, says) in [
        (&["dump", "-f", f, "nosuch"][..], "system, cpu, process"),
        (
            &["dump", "-f", f, "system", "--fields", "unix_ns,nope"],
            "nope",
        ),
        (&["dump", "-f", f, "system", "-O", "xml"], "xml"),
        (&["dump", "-f", f, "system", "-O", "parquet"], "-o"),
        (
            &["dump", "-f", f, "system", "--from", "yesterday-ish"],
            "yesterday-ish",
        ),
    ] {
        let o = run(args);
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        o.assert_clean_failure(&format!("{args:?}"));
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
    }

    // Parquet, read by DuckDB: the same values as the CSV.
    let pq = d.path().join("system.parquet");
    let o = run(&[
        "dump",
        "-f",
        f,
        "system",
        "-O",
        "parquet",
        "-o",
        pq.to_str().unwrap(),
    ]);
    o.ok("dump parquet");
    if !duckdb_python() {
        eprintln!("skipped: no duckdb/pyarrow");
        return;
    }
    let out = python(
        d.path(),
        COMPARE,
        &[pq.to_str().unwrap(), csv_path.to_str().unwrap()],
    );
    assert!(out.starts_with(&format!("{} ", rows.len())), "{out}");
    assert!(
        out.contains("cs_per_s:DOUBLE") && out.contains("mem_total_kb:BIGINT"),
        "{out}"
    );

    // The process dump too, with the marker found by pid in DuckDB.
    let pcsv = d.path().join("process.csv");
    let ppq = d.path().join("process.parquet");
    let o = run(&["dump", "-f", f, "process", "-o", pcsv.to_str().unwrap()]).ok("process csv");
    assert!(o.stdout.is_empty());
    run(&[
        "dump",
        "-f",
        f,
        "process",
        "-O",
        "parquet",
        "-o",
        ppq.to_str().unwrap(),
    ])
    .ok("process parquet");
    python(
        d.path(),
        COMPARE,
        &[ppq.to_str().unwrap(), pcsv.to_str().unwrap()],
    );
    let o = python(
        d.path(),
        "import duckdb, sys\n\
         print(duckdb.connect().execute(f\"SELECT count(*), min(comm), min(cmdline) FROM read_parquet('{sys.argv[1]}') WHERE pid = {sys.argv[2]}\").fetchone())\n",
        &[ppq.to_str().unwrap(), &marker.pid().to_string()],
    );
    assert_eq!(
        o.trim(),
        format!("({}, 'sleep', 'sleep 4242.0417')", nproc - 1)
    );
}
