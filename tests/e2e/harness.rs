//! A small harness: run the real `lpo` binary, start and stop recorders,
//! read `lpo info --json`, and keep every process we start on a leash.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every e2e test holds this lock: they measure CPU shares and rates, so
/// they must not compete with each other for the machine's cores.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn lpo_bin() -> &'static str {
    env!("CARGO_BIN_EXE_lpo")
}

pub fn lpo() -> Command {
    let mut c = Command::new(lpo_bin());
    c.env_remove("LPO_RING").env("RUST_BACKTRACE", "1");
    c
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Assert the user-facing failure contract: non-zero, one line, no panic.
    pub fn assert_clean_failure(&self, what: &str) {
        assert_ne!(
            self.code, 0,
            "{what}: expected failure, got success: {self:?}"
        );
        assert!(
            self.code != 70 && self.code != 101,
            "{what}: crashed: {self:?}"
        );
        let lines: Vec<_> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: expected one line on stderr, got {:?}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("lpo: ") || lines[0].starts_with("error:"),
            "{what}: {:?}",
            lines[0]
        );
        self.assert_no_panic(what);
    }
    pub fn assert_no_panic(&self, what: &str) {
        for bad in [
            "panicked",
            "RUST_BACKTRACE",
            "stack backtrace",
            "internal error",
        ] {
            assert!(
                !self.stderr.contains(bad),
                "{what}: {bad} in stderr: {}",
                self.stderr
            );
        }
    }
    pub fn ok(self, what: &str) -> Out {
        assert_eq!(self.code, 0, "{what} failed: {}", self.stderr);
        self
    }
}

pub fn run(args: &[&str]) -> Out {
    run_cmd(lpo().args(args))
}

pub fn run_cmd(c: &mut Command) -> Out {
    let o = c.stdin(Stdio::null()).output().expect("run lpo");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A child process, in a process group of its own, killed (SIGKILL, the
/// whole group: helpers it forked too) and reaped on drop.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        // SAFETY: the group id is the pid of a child we spawned with
        // process_group(0) and have not reaped, so it names only our processes.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    pub fn signal(&self, sig: i32) {
        // SAFETY: a pid we own and have not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }
    /// Wait for exit up to `t`; the exit code, or None on timeout.
    pub fn wait_timeout(&mut self, t: Duration) -> Option<i32> {
        let end = Instant::now() + t;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s.code().unwrap_or(
                    128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

pub fn spawn(c: &mut Command) -> Guard {
    use std::os::unix::process::CommandExt;
    Guard(
        c.stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn"),
    )
}

/// Start `lpo record` on `ring` with extra args; stderr goes to `ring`.log.
pub fn start_recorder(ring: &Path, extra: &[&str]) -> Guard {
    let log = std::fs::File::create(ring.with_extension("log")).unwrap();
    spawn(
        lpo()
            .arg("record")
            .arg("-f")
            .arg(ring)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log),
    )
}

pub fn recorder_log(ring: &Path) -> String {
    std::fs::read_to_string(ring.with_extension("log")).unwrap_or_default()
}

pub fn info_json(ring: &Path) -> serde_json::Value {
    let o = run(&["info", "--json", "-f", ring.to_str().unwrap()]).ok("info");
    serde_json::from_str(&o.stdout).expect("info --json parses")
}

pub fn samples(ring: &Path, stream: &str) -> u64 {
    if !ring.exists() {
        return 0;
    }
    let o = run(&["info", "--json", "-f", ring.to_str().unwrap()]);
    if o.code != 0 {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stream)
        .map(|s| s["samples"].as_u64().unwrap())
        .unwrap_or(0)
}

pub fn wait_samples(ring: &Path, n: u64, timeout: Duration) -> u64 {
    let end = Instant::now() + timeout;
    loop {
        let s = samples(ring, "system");
        if s >= n || Instant::now() > end {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn tmpdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lpo-e2e")
        .tempdir()
        .unwrap()
}

pub fn ring_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("test.ring")
}

/// Tiny deterministic PRNG for the fault tests.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
