//! The kernel log: records read from /dev/kmsg, stored in the `kmsg` stream
//! (log codec, payload in [`lpo_format::kmsg`]).
//!
//! /dev/kmsg is opened once, non-blocking; every `read` returns one record
//! (`prio,seq,usec,flags;message\n` then ` KEY=value\n` continuation lines),
//! EAGAIN when there is nothing more, EPIPE when the kernel overwrote
//! records before we read them (then the next read returns the oldest one
//! left; the gap in sequence numbers is counted as lost). A fresh open
//! starts at the oldest record still in the kernel's buffer, so the first
//! drain stores the backlog since boot; after a restart into an existing
//! ring, records up to the last sequence number stored in this boot are
//! skipped.

use lpo_format::kmsg::{self, KmsgRecord, FLAG_CONT, FLAG_CUT, MAX_DICT, MAX_DICT_LEN, MAX_MSG};
use lpo_format::{RingReader, RingWriter};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The stream's name in the ring.
pub const STREAM: &str = "kmsg";
/// Most records stored per drain; the rest wait for the next tick (the
/// kernel keeps them).
pub const MAX_RECORDS_PER_DRAIN: usize = 4096;
/// Most message bytes stored per drain (also capped at a quarter of the
/// stream's staging area, so one sample always fits).
pub const MAX_BYTES_PER_DRAIN: usize = 256 << 10;

/// Parse one /dev/kmsg record. Errors name what is wrong with the header;
/// continuation lines that do not start with a space are ignored.
pub fn parse_record(raw: &[u8]) -> Result<KmsgRecord, &'static str> {
    let semi = raw
        .iter()
        .position(|&b| b == b';')
        .ok_or("no ';' after the header")?;
    let mut fields = raw[..semi].split(|&b| b == b',');
    let mut num = |what: &'static str| -> Result<u64, &'static str> {
        let f = fields.next().ok_or(what)?;
        if f.is_empty() || f.len() > 20 || !f.iter().all(u8::is_ascii_digit) {
            return Err(what);
        }
        std::str::from_utf8(f)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(what)
    };
    let prio = u32::try_from(num("bad priority")?).map_err(|_| "bad priority")?;
    let seq = num("bad sequence number")?;
    let usec = num("bad timestamp")?;
    let flags = match fields.next() {
        Some(f) if f.first() == Some(&b'c') => FLAG_CONT,
        Some(_) => 0,
        None => return Err("no flags field"),
    };
    let body = &raw[semi + 1..];
    let mut lines = body.split(|&b| b == b'\n');
    let mut r = KmsgRecord {
        prio,
        seq,
        usec,
        flags,
        msg: Vec::new(),
        dict: Vec::new(),
    };
    if unescape(lines.next().unwrap_or_default(), &mut r.msg, MAX_MSG) {
        r.flags |= FLAG_CUT;
    }
    for l in lines {
        let Some(kv) = l.strip_prefix(b" ") else {
            continue;
        };
        if r.dict.len() == MAX_DICT {
            r.flags |= FLAG_CUT;
            break;
        }
        let mut d = Vec::new();
        if unescape(kv, &mut d, MAX_DICT_LEN) {
            r.flags |= FLAG_CUT;
        }
        r.dict.push(d);
    }
    Ok(r)
}

/// Undo the kernel's `\xNN` escaping into `out`, at most `max` bytes;
/// true if the text was cut.
fn unescape(s: &[u8], out: &mut Vec<u8>, max: usize) -> bool {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < s.len() {
        if out.len() == max {
            return true;
        }
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'x') {
            if let (Some(h), Some(l)) = (
                s.get(i + 2).copied().and_then(hex),
                s.get(i + 3).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    false
}

/// The last kernel sequence number stored in `ring`'s kmsg stream, if it
/// was stored in the boot `boot_id` (after a reboot sequence numbers start
/// again, so nothing is skipped).
pub fn last_stored_seq(ring: &Path, boot_id: [u8; 16]) -> Option<u64> {
    let r = RingReader::open(ring).ok()?;
    let i = r.stream(STREAM)?;
    let last = |b: lpo_format::log::LogBatch| -> Option<Option<u64>> {
        b.samples.iter().rev().find_map(|s| {
            let p = kmsg::decode(&s.payload).ok()?;
            let seq = p.records.last()?.seq;
            Some((b.boot_id == boot_id).then_some(seq))
        })
    };
    if let Some(found) = r.staged(i).ok().and_then(|b| b.into_log()).and_then(last) {
        return found;
    }
    for seq in r.seqs(i).rev() {
        if let Ok(lpo_format::BlockRead::Ok(b)) = r.read_block(i, seq) {
            if let Some(found) = b.into_log().and_then(last) {
                return found;
            }
        }
    }
    None
}

/// /dev/kmsg, opened non-blocking, and the records of the current drain.
pub struct Kmsg {
    file: File,
    buf: Vec<u8>,
    /// Records with seq ≤ this were stored by an earlier run in this boot.
    skip_through: Option<u64>,
    last_seq: Option<u64>,
    max_bytes: usize,
    /// Records read since the last store.
    pub records: Vec<KmsgRecord>,
    bytes: usize,
    /// Records overwritten by the kernel before they were read, since the last store.
    pub lost: u64,
    failed: bool,
}

impl Kmsg {
    /// Open the kernel log (normally `/dev/kmsg`). The error is a sentence
    /// for "skipped: kmsg: …".
    pub fn open(path: &Path) -> Result<Kmsg, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                let why = if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                    " (needs root or CAP_SYSLOG, or kernel.dmesg_restrict=0)"
                } else {
                    ""
                };
                format!(
                    "cannot read {}: {e}{why}; the kernel log is not recorded",
                    path.display()
                )
            })?;
        Ok(Kmsg {
            file,
            buf: vec![0; 16 << 10],
            skip_through: None,
            last_seq: None,
            max_bytes: MAX_BYTES_PER_DRAIN,
            records: Vec::new(),
            bytes: 0,
            lost: 0,
            failed: false,
        })
    }

    /// Skip records up to `seq` (already stored); a later gap counts as lost.
    pub fn resume_after(&mut self, seq: Option<u64>) {
        self.skip_through = seq;
        self.last_seq = seq;
    }

    /// Attach to the writer's kmsg stream: resume after what the ring
    /// holds from this boot, and size the drains to the staging area.
    pub fn attach(&mut self, w: &RingWriter, ring: &Path, boot_id: &str) -> Option<usize> {
        let s = w.stream(STREAM)?;
        if let Some(e) = w.superblock().streams.iter().find(|e| e.name == STREAM) {
            self.max_bytes = MAX_BYTES_PER_DRAIN.min(e.staging_len as usize / 4);
        }
        self.resume_after(last_stored_seq(ring, lpo_format::boot_id_bytes(boot_id)));
        Some(s)
    }

    /// Read what the kernel has (up to the per-drain caps) into `records`.
    pub fn drain(&mut self) {
        while self.records.len() < MAX_RECORDS_PER_DRAIN && self.bytes < self.max_bytes {
            let n = match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => match e.raw_os_error() {
                    // Overwritten records: the next read returns the oldest left.
                    Some(libc::EPIPE) | Some(libc::EINTR) => continue,
                    _ => break, // EAGAIN: nothing more now
                },
            };
            let Ok(r) = parse_record(&self.buf[..n]) else {
                continue;
            };
            if self.skip_through.is_some_and(|s| r.seq <= s) {
                continue;
            }
            if let Some(l) = self.last_seq {
                if r.seq > l {
                    self.lost += r.seq - l - 1;
                }
            }
            self.last_seq = Some(r.seq);
            self.skip_through = None;
            self.bytes += r.msg.len() + r.dict.iter().map(|d| d.len()).sum::<usize>() + 8;
            self.records.push(r);
        }
    }

    /// Drain and append one sample with the new records (none: nothing is
    /// appended). A sample that cannot be stored is dropped, said once.
    pub fn store(
        &mut self,
        w: &mut RingWriter,
        stream: usize,
        (key, wall, mono): (i64, i64, i64),
        say: &mut dyn FnMut(String),
    ) {
        self.drain();
        if self.records.is_empty() && self.lost == 0 {
            return;
        }
        let (lost, recs) = (self.lost, &self.records);
        let res = w.append_log(stream, key, wall, mono, &mut |_fresh, buf| {
            kmsg::encode(lost, recs, buf)
        });
        if let Err(e) = res {
            if !self.failed {
                say(format!("warning: kernel log sample dropped: {e}"));
                self.failed = true;
            }
        }
        self.records.clear();
        self.bytes = 0;
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kmsg_records() {
        let r = parse_record(b"6,339,5140900,-;NET: Registered protocol family 10\n").unwrap();
        assert_eq!((r.prio, r.level(), r.facility()), (6, 6, 0));
        assert_eq!((r.seq, r.usec, r.flags), (339, 5_140_900, 0));
        assert_eq!(r.msg, b"NET: Registered protocol family 10");
        assert!(r.dict.is_empty());

        // Continuation lines, a facility, the 'c' flag and extra header fields.
        let r = parse_record(
            b"27,1234,99,c,caller=T12;e1000e 0000:00:19.0: eth0: link up\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n",
        )
        .unwrap();
        assert_eq!((r.facility(), r.level(), r.flags), (3, 3, FLAG_CONT));
        assert_eq!(r.msg, b"e1000e 0000:00:19.0: eth0: link up");
        assert_eq!(
            r.dict,
            vec![
                b"SUBSYSTEM=pci".to_vec(),
                b"DEVICE=+pci:0000:00:19.0".to_vec()
            ]
        );

        // Escaped bytes (the kernel writes non-printable bytes and '\' as \xNN).
        let r =
            parse_record(b"4,1,2,-;tab\\x09and\\x5cback\\x0aslash \\xZZ \\x4\n X=a\\x3db").unwrap();
        assert_eq!(r.msg, b"tab\tand\\back\nslash \\xZZ \\x4");
        assert_eq!(r.dict, vec![b"X=a=b".to_vec()]);

        // No trailing newline, empty message, a continuation line without the space.
        let r = parse_record(b"0,0,0,-;").unwrap();
        assert!(r.msg.is_empty());
        let r = parse_record(b"3,5,6,-;msg\nnot a dict line\n").unwrap();
        assert!(r.dict.is_empty());

        // Over-long text is cut and flagged.
        let mut long = b"3,5,6,-;".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_MSG + 5));
        let r = parse_record(&long).unwrap();
        assert_eq!((r.msg.len(), r.flags), (MAX_MSG, FLAG_CUT));
    }

    #[test]
    fn rejects_bad_records() {
        for bad in [
            &b""[..],
            b"no header at all\n",
            b"6,339,5140900,-\n",
            b"6,339;too few fields\n",
            b"6,339,5140900;no flags\n",
            b"x,339,5140900,-;bad prio\n",
            b"6,-1,5140900,-;bad seq\n",
            b"6,1,5.3,-;bad usec\n",
            b"6,,5,-;empty seq\n",
            b"99999999999,1,5,-;prio too big\n",
            b"6,1,999999999999999999999999,-;usec overflows\n",
        ] {
            assert!(
                parse_record(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn stored_records_round_trip_through_the_payload() {
        let recs: Vec<_> = [
            &b"6,10,100,-;first\n"[..],
            b"3,11,200,-;lpo-test: I/O error marker\n SUBSYSTEM=block\n",
        ]
        .iter()
        .map(|r| parse_record(r).unwrap())
        .collect();
        let mut buf = Vec::new();
        kmsg::encode(2, &recs, &mut buf);
        let p = kmsg::decode(&buf).unwrap();
        assert_eq!((p.lost, p.records), (2, recs));
    }
}
