//! Error types of the format crate.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing a ring or capture.
///
/// `Corrupted` (bad bytes inside an otherwise readable file) is kept apart
/// from `Io` (the operating system refused) so callers can skip a bad block
/// and keep going, but stop on an I/O failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt data at offset {offset}: {reason}")]
    Corrupted { offset: u64, reason: String },
    #[error("{path}: not an lpo ring or capture (bad magic)")]
    NotARing { path: PathBuf },
    #[error("{path}: format version {found_major}.{found_minor} is newer than this lpo reads ({supported_major}.x); upgrade lpo")]
    NewerVersion {
        path: PathBuf,
        found_major: u16,
        found_minor: u16,
        supported_major: u16,
    },
    #[error("{path}: ring size {size} is too small (minimum {min} bytes)")]
    TooSmall { path: PathBuf, size: u64, min: u64 },
    #[error("{path}: not enough disk space for a {size}-byte ring ({available} bytes available)")]
    NoSpace {
        path: PathBuf,
        size: u64,
        available: u64,
    },
    #[error("{path}: already being recorded by another lpo process{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("no stream named {0:?} in this file")]
    NoStream(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn corrupt(offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupted {
            offset,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
