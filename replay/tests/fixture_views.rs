//! Views fed from a real /proc snapshot: the prometheus-procfs fixture
//! (`stat`, `meminfo`, `loadavg`, `pressure/*`), copied to tests/data/ (the
//! long run of trailing zeros on the `intr` line was dropped; the total,
//! which is all that is used, is unchanged).

use lpo_replay::views::system::*;

const S: i64 = 1_000_000_000;
/// stat.btime of the fixture: 2014-12-10 03:47:56 UTC.
const BTIME: i64 = 1_418_183_276;
/// 3 days 2:04:30 after boot: 2014-12-13 05:52:26 UTC.
const WALL: i64 = BTIME + 3 * 86_400 + 2 * 3600 + 4 * 60 + 30;

use lpo_format::schema::system::CPU_FIELDS;

/// `"0.10"` -> 10
fn centi(v: &str) -> u64 {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    let b = format!("{b:0<2}");
    a.parse::<u64>().unwrap() * 100 + b[..2].parse::<u64>().unwrap()
}

/// Load the fixture into a sample, by hand, with the column names of the contract.
fn fixture(wall_s: i64) -> MapSample {
    let mut s = MapSample::new(wall_s * S, (wall_s - BTIME) * S);
    for line in include_str!("data/stat").lines() {
        let mut it = line.split_whitespace();
        let Some(key) = it.next() else { continue };
        let nums: Vec<u64> = it.map(|v| v.parse().unwrap()).collect();
        if key.starts_with("cpu") {
            for (f, v) in CPU_FIELDS.iter().zip(&nums) {
                s.set(&format!("{key}.{f}"), *v);
            }
        } else if matches!(
            key,
            "intr" | "ctxt" | "btime" | "processes" | "procs_running" | "procs_blocked"
        ) {
            s.set(&format!("stat.{key}"), nums[0]);
        }
    }
    for line in include_str!("data/meminfo").lines() {
        let (k, v) = line.split_once(':').unwrap();
        s.set(
            &format!("mem.{k}"),
            v.split_whitespace().next().unwrap().parse().unwrap(),
        );
    }
    let la: Vec<&str> = include_str!("data/loadavg").split_whitespace().collect();
    s.set("load.avg1", centi(la[0]));
    s.set("load.avg5", centi(la[1]));
    s.set("load.avg15", centi(la[2]));
    let (runnable, threads) = la[3].split_once('/').unwrap();
    s.set("load.runnable", runnable.parse().unwrap());
    s.set("load.threads", threads.parse().unwrap());
    s.set("load.last_pid", la[4].parse().unwrap());
    for (res, text) in [
        ("cpu", include_str!("data/pressure_cpu")),
        ("memory", include_str!("data/pressure_memory")),
        ("io", include_str!("data/pressure_io")),
    ] {
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let Some(kind) = it.next() else { continue };
            for kv in it {
                let (k, v) = kv.split_once('=').unwrap();
                let v = if k == "total" {
                    v.parse().unwrap()
                } else {
                    centi(v)
                };
                s.set(&format!("psi.{res}.{kind}.{k}"), v);
            }
        }
    }
    s
}

fn host() -> Host {
    Host {
        hostname: "fixture".into(),
        kernel: "3.16.0-4-amd64".into(),
        arch: "x86_64".into(),
        ncpu: 8,
        clk_tck: 100,
        page_size: 4096,
        tz: chrono_tz::UTC,
    }
}

/// The fixture one second later, with hand-picked deltas on cpu and cpu0.
fn one_second_later() -> MapSample {
    let mut s = fixture(WALL + 1);
    for (f, d) in [
        ("user", 40),
        ("system", 20),
        ("idle", 720),
        ("iowait", 16),
        ("softirq", 4),
    ] {
        for prefix in ["cpu", "cpu0"] {
            let k = format!("{prefix}.{f}");
            let v = s.get(&k).unwrap();
            s.set(&k, v + d);
        }
    }
    for (k, d) in [
        ("stat.intr", 1000),
        ("stat.ctxt", 2000),
        ("stat.processes", 5),
    ] {
        let v = s.get(k).unwrap();
        s.set(k, v + d);
    }
    s
}

#[test]
fn fixture_loads_as_expected() {
    let s = fixture(WALL);
    assert_eq!(s.get("cpu.user"), Some(301_854));
    assert_eq!(s.get("cpu7.guest_nice"), Some(0));
    assert_eq!(s.get("stat.intr"), Some(73_777_505));
    assert_eq!(s.get("stat.ctxt"), Some(38_014_093));
    assert_eq!(s.get("stat.btime"), Some(BTIME as u64));
    assert_eq!(s.get("mem.MemAvailable"), None);
    assert_eq!(s.get("load.avg15"), Some(5));
    assert_eq!(s.get("psi.io.full.avg300"), Some(495));
    assert_eq!(s.get("psi.cpu.full.total"), None);
}

#[test]
fn free_from_fixture() {
    // No MemAvailable in this (old-kernel) meminfo: used = total - free - buff/cache
    // = 15666184 - 440324 - (1020128 + 12007640 + 1738124).
    let row = free_row(&fixture(WALL));
    assert_eq!(
        free_format(&row, FreeUnit::Kibi),
        "               total        used        free      shared  buff/cache   available\n\
         Mem:        15666184      459968      440324        1308    14765892      440324\n\
         Swap:              0           0           0\n"
    );
    assert_eq!(
        free_format(&row, FreeUnit::Mebi),
        "               total        used        free      shared  buff/cache   available\n\
         Mem:           15299         449         430           1       14419         430\n\
         Swap:              0           0           0\n"
    );
    assert_eq!(
        free_format(&row, FreeUnit::Human),
        "               total        used        free      shared  buff/cache   available\n\
         Mem:            14Gi       449Mi       430Mi       1.3Mi        14Gi       430Mi\n\
         Swap:             0B          0B          0B\n"
    );
}

#[test]
fn uptime_from_fixture() {
    // No uptime.up recorded: derived from stat.btime.
    assert_eq!(
        uptime_format(&uptime_row(&fixture(WALL)), &host()),
        " 05:52:26 up 3 days,  2:04,  load average: 0.02, 0.04, 0.05\n\
         PSI cpu some avg10=0.10 avg60=2.00 avg300=3.85 total=15\n\
         PSI memory some avg10=0.10 avg60=2.00 avg300=3.85 total=15\n\
         PSI memory full avg10=0.20 avg60=3.00 avg300=4.95 total=25\n\
         PSI io some avg10=0.10 avg60=2.00 avg300=3.85 total=15\n\
         PSI io full avg10=0.20 avg60=3.00 avg300=4.95 total=25\n"
    );
}

#[test]
fn vmstat_from_fixture() {
    let h = host();
    let text = vmstat_series(&[fixture(WALL), one_second_later()], &h);
    // Div = 40 + 24 + 720 + 16 = 800: us 5.5 -> 5, sy 3.5 -> 3, id 90.5 -> 90, wa 2.5 -> 2
    assert_eq!(
        text,
        [
            "procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu----- -----timestamp-----\n",
            " r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st                 UTC\n",
            " 2  1      0 440324 1020128 13745764    0    0     0     0 1000 2000  5  3 90  2  0 2014-12-13 05:52:27\n",
        ]
        .concat()
    );
    // A reboot right before the fixture: its counters are since boot.
    let old_boot = MapSample::new((WALL - 10) * S, 999_999 * S).with("stat.btime", 1_000_000_000);
    let row = vmstat_row(&old_boot, &fixture(WALL), &h);
    assert!(row.reset);
    assert_eq!(
        vmstat_format_row(&row, &h),
        " 2  1      0 440324 1020128 13745764    0    0     0     0    0    0  3  1 96  0  0 2014-12-13 05:52:26\n"
    );
}

#[test]
fn mpstat_from_fixture() {
    let h = host();
    let samples = [fixture(WALL), one_second_later()];
    let head =
        "  CPU    %usr   %nice    %sys %iowait    %irq   %soft  %steal  %guest  %gnice   %idle\n";
    assert_eq!(
        mpstat_series(&samples, &h, &CpuSelection::parse("0,1").unwrap()),
        [
            "Linux 3.16.0-4-amd64 (fixture) \t12/13/2014 \t_x86_64_\t(8 CPU)\n",
            "\n05:52:26   ", head,
            "05:52:27       0    5.00    0.00    2.50    2.00    0.00    0.50    0.00    0.00    0.00   90.00\n",
            "05:52:27       1    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00  100.00\n",
            "\nAverage:   ", head,
            "Average:       0    5.00    0.00    2.50    2.00    0.00    0.50    0.00    0.00    0.00   90.00\n",
            "Average:       1    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00    0.00  100.00\n",
        ]
        .concat()
    );
    // Since boot (reboot before the fixture), `all` only:
    let old_boot = MapSample::new((WALL - 10) * S, 999_999 * S).with("stat.btime", 1_000_000_000);
    let b = mpstat_block(&old_boot, &fixture(WALL), &h, &CpuSelection::Summary);
    assert_eq!(
        mpstat_format_block(&b, &h),
        [
            "\n05:52:16   ", head,
            "05:52:26     all    3.21    0.01    1.19    0.04    0.00    0.04    0.00    0.00    0.00   95.51\n",
        ]
        .concat()
    );
    let j = mpstat_series_json(&samples, &h, &CpuSelection::All);
    assert_eq!(j["intervals"][0]["cpus"].as_array().unwrap().len(), 9);
    assert_eq!(j["average"][1]["CPU"], "0");
    assert_eq!(j["average"][1]["%idle"], 90.0);
}
