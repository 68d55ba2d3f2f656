//! tracefs: find or mount it, and own the `instances/lpo` instance (so the
//! global buffer and other ftrace users are untouched). The instance is
//! removed on drop; one left by a crashed recorder is removed and created
//! afresh by the next.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const INSTANCE: &str = "lpo";

/// Where tracefs is, mounting it on /sys/kernel/tracing if needed.
pub fn find_or_mount() -> Result<PathBuf, String> {
    let std = Path::new("/sys/kernel/tracing");
    if std.join("instances").is_dir() {
        return Ok(std.into());
    }
    let debug = Path::new("/sys/kernel/debug/tracing");
    if debug.join("instances").is_dir() {
        return Ok(debug.into());
    }
    if !std.is_dir() {
        return Err(
            "no tracefs (/sys/kernel/tracing does not exist: kernel without CONFIG_FTRACE?)".into(),
        );
    }
    let (src, dst, ty) = (
        CString::new("nodev").unwrap_or_default(),
        CString::new("/sys/kernel/tracing").unwrap_or_default(),
        CString::new("tracefs").unwrap_or_default(),
    );
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(src.as_ptr(), dst.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("tracefs is not mounted and mounting it on /sys/kernel/tracing failed ({e}); needs root"));
    }
    if std.join("instances").is_dir() {
        Ok(std.into())
    } else {
        Err("tracefs mounted but has no instances directory".into())
    }
}

/// Read a tracefs file whole. Some (`events/header_page`) return only what
/// fits the first read() and then end-of-file, so read with a large buffer.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0;
    loop {
        if n == buf.len() {
            if buf.len() >= 16 << 20 {
                break;
            }
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    buf.truncate(n);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn write(path: &Path, s: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    f.write_all(s.as_bytes())
}

/// The `instances/lpo` directory, removed on drop.
pub struct Instance {
    pub root: PathBuf,
    pub dir: PathBuf,
    removed: bool,
}

impl Instance {
    /// Create `instances/lpo` under tracefs `root`; an instance left by a
    /// crashed recorder is removed first (`Ok((_, true))`).
    pub fn create(root: &Path) -> Result<(Instance, bool), String> {
        let dir = root.join("instances").join(INSTANCE);
        let mut recovered = false;
        if dir.exists() {
            // Removal fails (EBUSY) while a live process holds its files:
            // then it is another recorder's and is left alone.
            match std::fs::remove_dir(&dir) {
                Ok(()) => recovered = true,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(format!(
                        "{} is in use (another lpo recorder running?)",
                        dir.display()
                    ))
                }
                Err(e) => return Err(format!("cannot remove the stale {}: {e}", dir.display())),
            }
        }
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok((
            Instance {
                root: root.into(),
                dir,
                removed: false,
            },
            recovered,
        ))
    }

    pub fn set(&self, file: &str, v: &str) -> Result<(), String> {
        write(&self.dir.join(file), v).map_err(|e| format!("{}/{file}: {e}", self.dir.display()))
    }

    pub fn read(&self, file: &str) -> Result<String, String> {
        read_file(&self.dir.join(file)).map_err(|e| format!("{}/{file}: {e}", self.dir.display()))
    }

    /// CPUs with a per_cpu directory.
    pub fn cpus(&self) -> Vec<u32> {
        let mut v: Vec<u32> = std::fs::read_dir(self.dir.join("per_cpu"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    pub fn open_raw(&self, cpu: u32) -> std::io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.dir.join(format!("per_cpu/cpu{cpu}/trace_pipe_raw")))
    }

    pub fn open_stats(&self, cpu: u32) -> std::io::Result<File> {
        File::open(self.dir.join(format!("per_cpu/cpu{cpu}/stats")))
    }

    /// Stop tracing and remove the instance (files opened in it must be
    /// closed first). Idempotent.
    pub fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        let _ = self.set("tracing_on", "0");
        let _ = self.set("events/enable", "0");
        self.removed = true;
        std::fs::remove_dir(&self.dir)
            .map_err(|e| format!("cannot remove {}: {e}", self.dir.display()))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// `overrun` and `dropped events` from a per_cpu `stats` file.
pub fn parse_stats(text: &str) -> (u64, u64) {
    let mut o = (0, 0);
    for l in text.lines() {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim().parse().unwrap_or(0);
            match k.trim() {
                "overrun" => o.0 = v,
                "dropped events" => o.1 = v,
                _ => {}
            }
        }
    }
    o
}
