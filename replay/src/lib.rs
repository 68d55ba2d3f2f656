//! # lpo-replay: time lookup and views over a recording
//!
//! Opens a ring or capture with [`lpo_format::RingReader`], turns the user's
//! TIME into a position on the recording timeline (O(log n) through the
//! ring's index), loads the few blocks around it and renders views that keep
//! the column names and layouts of procps and sysstat.
//!
//! * [`time`]: the TIME, duration and size grammar.
//! * [`model`]: samples of named raw counters; rates are derived here, at
//!   read time, never stored.
//! * [`views`]: vmstat, mpstat, free, uptime renderers.
//! * [`replay()`] and [`info()`]: the `lpo replay` and `lpo info` commands.
//! * [`dump()`]: `lpo dump`, time series per stream as CSV, NDJSON or Parquet.
//!
//! ```no_run
//! use lpo_replay::{replay, ReplayArgs};
//! let args = ReplayArgs { file: "/var/lib/lpo/lpo.ring".into(), at: Some("14:22".into()),
//!     view: vec!["vmstat".into()], ..Default::default() };
//! replay(&args, &mut std::io::stdout(), &mut |w| eprintln!("{w}")).unwrap();
//! ```

pub mod dump;
pub mod export;
pub mod ftrace;
pub mod info;
pub mod model;
pub mod perfetto;
pub mod procmodel;
pub mod redact;
pub mod time;
pub mod views;

mod run;
pub use dump::{dump, DumpArgs};
pub use info::info;
pub use run::{replay, ReplayArgs};

use lpo_format::HostHeader;

/// Errors of replay and info. `exit_code` gives the process exit status.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Format(#[from] lpo_format::Error),
    #[error(transparent)]
    Time(#[from] time::TimeError),
    /// A bad command line (unknown view, bad option).
    #[error("{0}")]
    Usage(String),
    /// Valid request, nothing recorded there.
    #[error("{0}")]
    NoData(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl ReplayError {
    /// 2 for a bad command line (including a bad TIME), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            ReplayError::Usage(_) | ReplayError::Time(_) => 2,
            _ => 1,
        }
    }
}

/// The recorded host's time zone: its IANA name, else its UTC offset as an
/// Etc/GMT zone when whole hours, else UTC.
pub fn host_tz(h: &HostHeader) -> chrono_tz::Tz {
    if let Ok(tz) = h.timezone.parse::<chrono_tz::Tz>() {
        return tz;
    }
    if h.utc_offset_s % 3600 == 0 && h.utc_offset_s != 0 {
        // Etc/GMT+5 is UTC-5 (POSIX sign convention).
        let name = format!("Etc/GMT{:+}", -h.utc_offset_s / 3600);
        if let Ok(tz) = name.parse() {
            return tz;
        }
    }
    chrono_tz::UTC
}
