//! The parsers must not touch the heap on the success path (the caller's
//! name buffer is pre-sized here). Own test binary: it installs a counting
//! global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs_during(f: impl FnOnce()) -> usize {
    ALLOCS.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get)
}

macro_rules! fixture {
    ($rel:literal) => {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/procfs/",
            $rel
        ))
        .unwrap()
    };
}

#[test]
fn parsers_do_not_allocate() {
    use lpo_recorder::procfs::{process::*, system::*};
    let stat = fixture!("prometheus-procfs/stat");
    let loadavg = fixture!("node-exporter/loadavg");
    let meminfo = fixture!("prometheus-procfs/meminfo");
    let vmstat = fixture!("node-exporter/vmstat");
    let psi = fixture!("node-exporter/pressure/io");
    let pstat = fixture!("prometheus-procfs/584/stat");
    let status = fixture!("prometheus-procfs/26231/status");
    let io = fixture!("prometheus-procfs/26231/io");
    let sched = fixture!("prometheus-procfs/26231/schedstat");
    let cmdline = fixture!("prometheus-procfs/26231/cmdline");
    let mut buf = String::with_capacity(128);
    let (mut n, mut sum) = (0usize, 0u64);
    let mut ps = PidStat::default();
    let mut st = PidStatus::default();
    let mut pio = PidIo::default();
    let mut sch = PidSchedstat::default();
    let a = allocs_during(|| {
        for _ in 0..3 {
            let mut emit = |_: &str, v: u64| {
                n += 1;
                sum = sum.wrapping_add(v);
            };
            parse_stat(&stat, &mut buf, &mut emit).unwrap();
            parse_loadavg(&loadavg, &mut buf, &mut emit).unwrap();
            parse_meminfo(&meminfo, &mut buf, &mut emit).unwrap();
            parse_vmstat(&vmstat, &mut buf, &mut emit).unwrap();
            parse_pressure("io", &psi, &mut buf, &mut emit).unwrap();
            parse_uptime(b"350735.47 234388.90\n", &mut buf, &mut emit).unwrap();
            parse_pid_stat(&pstat, &mut ps).unwrap();
            parse_pid_status(&status, &mut st).unwrap();
            parse_pid_io(&io, &mut pio).unwrap();
            parse_pid_schedstat(&sched, &mut sch).unwrap();
            n += cmdline_args(&cmdline).count();
        }
    });
    assert_eq!(a, 0, "heap allocations during parsing");
    assert_eq!(n, 3 * (97 + 6 + 45 + 120 + 8 + 2 + 3));
    assert!(sum > 0);
    // Sanity check of the counter itself.
    assert_eq!(
        allocs_during(|| drop(std::hint::black_box(vec![1u8; 10]))),
        1
    );
}
