//! The host header: who recorded the file, stored as a validated rkyv archive.

use crate::error::{Error, Result};
use rkyv::{rancor, Archive, Deserialize, Serialize};

/// Schema version of the stream contents (column names and codecs), distinct
/// from the byte layout's format version. Bumped when a stream's meaning changes.
pub const SCHEMA_VERSION: u32 = 1;

/// A uid → name pair, so replay elsewhere shows user names.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct UserName {
    pub uid: u32,
    pub name: String,
}

/// Facts about the recorded host and recorder, written at each recorder start.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct HostHeader {
    pub hostname: String,
    pub kernel_release: String,
    pub kernel_version: String,
    pub arch: String,
    /// /proc/sys/kernel/random/boot_id of the current recording session.
    pub boot_id: String,
    pub ncpu: u32,
    pub clk_tck: u32,
    pub page_size: u32,
    /// IANA zone name (e.g. "Europe/Paris"), empty if unknown.
    pub timezone: String,
    /// UTC offset in seconds at the time the header was written.
    pub utc_offset_s: i32,
    pub recorder_version: String,
    pub recorder_pid: u32,
    pub schema_version: u32,
    pub started_ns: i64,
    pub interval_ns: u64,
    pub flush_ns: u64,
    pub users: Vec<UserName>,
    /// One line per source the recorder could not record, and why.
    pub skipped: Vec<String>,
}

impl HostHeader {
    pub fn to_bytes(&self) -> Vec<u8> {
        rkyv::to_bytes::<rancor::Error>(self)
            .expect("serializing a HostHeader cannot fail")
            .to_vec()
    }

    /// Validate (bytecheck) and deserialize untrusted bytes.
    pub fn from_bytes(b: &[u8], at: u64) -> Result<HostHeader> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(b.len());
        aligned.extend_from_slice(b);
        rkyv::from_bytes::<HostHeader, rancor::Error>(&aligned)
            .map_err(|e| Error::corrupt(at, format!("host header failed validation: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip_and_reject_garbage() {
        let h = HostHeader {
            hostname: "web-1".into(),
            ncpu: 2,
            users: vec![UserName {
                uid: 0,
                name: "root".into(),
            }],
            ..Default::default()
        };
        let b = h.to_bytes();
        assert_eq!(HostHeader::from_bytes(&b, 0).unwrap(), h);
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0xff;
            let _ = HostHeader::from_bytes(&m, 0); // must not panic
        }
        assert!(HostHeader::from_bytes(&b[..b.len() / 2], 0).is_err());
        assert!(HostHeader::from_bytes(&[], 0).is_err());
    }
}
