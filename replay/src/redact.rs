//! Redaction for `lpo export --redact`: command-line arguments, user names,
//! the host name and IP addresses, removed from the decoded values before
//! they are written to the capture (so they are gone from the file, not
//! hidden by views).
//!
//! Pseudonyms are consistent within one export: the same address always
//! becomes the same token. Tokens have the length of what they replace, so
//! they can be substituted inside any stream's payload (kernel log text,
//! ftrace and perf strings) without re-encoding it.

use lpo_format::table::{Attrs, Event, TableSchema};
use lpo_format::HostHeader;
use std::collections::HashMap;

/// What `--redact` may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redaction {
    Cmdline,
    Users,
    Hostnames,
    Addresses,
}

impl Redaction {
    /// Parse `all` or a comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<Redaction>, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "all" => v.extend([
                    Redaction::Cmdline,
                    Redaction::Users,
                    Redaction::Hostnames,
                    Redaction::Addresses,
                ]),
                "cmdline" | "cmdlines" | "args" => v.push(Redaction::Cmdline),
                "users" | "user" => v.push(Redaction::Users),
                "hostnames" | "hostname" | "host" => v.push(Redaction::Hostnames),
                "addresses" | "address" | "ip" | "ips" => v.push(Redaction::Addresses),
                other => {
                    return Err(format!(
                        "--redact: unknown {other:?} (all, cmdline, users, hostnames, addresses)"
                    ))
                }
            }
        }
        v.dedup();
        Ok(v)
    }
}

/// Applies the chosen redactions and counts what it did.
pub struct Redactor {
    cmdline: bool,
    users: bool,
    addresses: bool,
    redact_host: bool,
    /// (original, same-length token), longest first.
    hosts: Vec<(Vec<u8>, Vec<u8>)>,
    host: HostHeader,
    addrs: HashMap<String, String>,
    n_cmdlines: u64,
    n_host_hits: u64,
    n_addr_hits: u64,
    n_users: u64,
}

fn same_len_token(prefix: &str, n: usize, len: usize) -> String {
    let mut t = format!("{prefix}{n}");
    if t.len() > len {
        t = "x".repeat(len);
    }
    while t.len() < len {
        t.push('x');
    }
    t
}

fn is_public_looking(a: &std::net::IpAddr) -> bool {
    !(a.is_loopback() || a.is_unspecified())
}

impl Redactor {
    pub fn new(what: &[Redaction], host: &HostHeader) -> Redactor {
        let mut hosts = Vec::new();
        // Names this short ("vm", "db1") are also substrings of ordinary
        // words: only the header's copy is replaced.
        if what.contains(&Redaction::Hostnames) && host.hostname.len() >= 4 {
            let full = host.hostname.clone();
            hosts.push((
                full.as_bytes().to_vec(),
                same_len_token("host", 1, full.len()).into_bytes(),
            ));
            if let Some((short, _)) = full.split_once('.') {
                if short.len() >= 3 {
                    hosts.push((
                        short.as_bytes().to_vec(),
                        same_len_token("host", 1, short.len()).into_bytes(),
                    ));
                }
            }
        }
        Redactor {
            cmdline: what.contains(&Redaction::Cmdline),
            redact_host: what.contains(&Redaction::Hostnames),
            users: what.contains(&Redaction::Users),
            addresses: what.contains(&Redaction::Addresses),
            hosts,
            host: host.clone(),
            addrs: HashMap::new(),
            n_cmdlines: 0,
            n_host_hits: 0,
            n_addr_hits: 0,
            n_users: 0,
        }
    }

    /// Counts restart when an export is retried.
    pub fn reset_counts(&mut self) {
        self.n_cmdlines = 0;
        self.n_host_hits = 0;
        self.n_addr_hits = 0;
        self.n_users = 0;
    }

    /// The host header to write into the capture.
    pub fn host(&mut self) -> HostHeader {
        let mut h = self.host.clone();
        if let Some((_, tok)) = self.hosts.first() {
            h.hostname = String::from_utf8_lossy(tok).into_owned();
        } else if self.redact_host {
            h.hostname = "host1".into();
        }
        if self.users {
            // System accounts (uid < 1000: root, daemon, www-data…) say what
            // a process is, not who; people's names are replaced.
            for u in h
                .users
                .iter_mut()
                .filter(|u| (1000..65534).contains(&u.uid))
            {
                u.name = format!("user{}", u.uid);
                self.n_users += 1;
            }
        }
        h
    }

    /// One line per kind of redaction, for the export summary.
    pub fn summary(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.redact_host && self.hosts.is_empty() {
            v.push(
                "hostname: replaced by host1 in the header (too short to search for elsewhere)"
                    .into(),
            );
        }
        if let Some((_, tok)) = self.hosts.first() {
            v.push(format!(
                "hostname: replaced by {} in the header and {} other places",
                String::from_utf8_lossy(tok),
                self.n_host_hits
            ));
        }
        if self.cmdline {
            v.push(format!(
                "cmdline: arguments removed from {} command lines (the program path is kept)",
                self.n_cmdlines
            ));
        }
        if self.users {
            v.push(format!(
                "users: {} user names (uid >= 1000) replaced by user<uid>",
                self.n_users
            ));
        }
        if self.addresses {
            v.push(format!(
                "addresses: {} distinct IP addresses replaced by tokens ({} places; loopback kept)",
                self.addrs.len(),
                self.n_addr_hits
            ));
        }
        v
    }

    fn addr_token(&mut self, a: &str) -> String {
        let n = self.addrs.len() + 1;
        self.addrs
            .entry(a.to_string())
            .or_insert_with(|| same_len_token("ip", n, a.len()))
            .clone()
    }

    /// Replace addresses and host names in a byte string, keeping its length.
    pub fn bytes(&mut self, b: &[u8]) -> Vec<u8> {
        let mut out = b.to_vec();
        for (orig, tok) in &self.hosts {
            let mut i = 0;
            while i + orig.len() <= out.len() {
                if &out[i..i + orig.len()] == orig.as_slice() {
                    out[i..i + orig.len()].copy_from_slice(tok);
                    self.n_host_hits += 1;
                    i += orig.len();
                } else {
                    i += 1;
                }
            }
        }
        if self.addresses {
            for (start, end) in find_addresses(&out) {
                let a = String::from_utf8_lossy(&out[start..end]).into_owned();
                let tok = self.addr_token(&a);
                out[start..end].copy_from_slice(tok.as_bytes());
                self.n_addr_hits += 1;
            }
        }
        out
    }

    fn text(&mut self, s: &str) -> String {
        if self.hosts.is_empty() && !self.addresses {
            return s.to_string();
        }
        String::from_utf8_lossy(&self.bytes(s.as_bytes())).into_owned()
    }

    /// A kv column name (e.g. `ct.src.10.1.2.3`).
    pub fn kv_name(&mut self, n: &str) -> String {
        self.text(n)
    }

    /// An entity's attributes (process comm, cmdline, exe).
    pub fn attrs(&mut self, schema: &TableSchema, a: &Attrs) -> Attrs {
        let mut out = a.clone();
        for (i, s) in out.strs.iter_mut().enumerate() {
            let field = schema.attr_strs.get(i).map(String::as_str).unwrap_or("");
            if self.cmdline && field == "cmdline" {
                let argv0 = s.split(' ').next().unwrap_or("");
                if argv0.len() != s.len() {
                    self.n_cmdlines += 1;
                }
                *s = argv0.to_string();
            }
            *s = self.text(s);
        }
        out
    }

    /// An event's strings.
    pub fn event(&mut self, _schema: &TableSchema, e: &Event) -> Event {
        let mut out = e.clone();
        for s in out.strs.iter_mut() {
            *s = self.text(s);
        }
        out
    }
}

/// Byte ranges of IPv4 and IPv6 addresses in `b` (loopback and unspecified
/// addresses are left alone).
pub fn find_addresses(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // IPv4: runs of digits and dots, trimmed of dots, that are a dotted quad.
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() || b[i] == b'.' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
                j += 1;
            }
            let (mut s, mut e) = (i, j);
            while s < e && b[s] == b'.' {
                s += 1;
            }
            while e > s && b[e - 1] == b'.' {
                e -= 1;
            }
            if let Ok(t) = std::str::from_utf8(&b[s..e]) {
                if t.split('.').count() == 4 {
                    if let Ok(a) = t.parse::<std::net::Ipv4Addr>() {
                        if is_public_looking(&a.into()) {
                            out.push((s, e));
                        }
                    }
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    // IPv6: runs of hex digits and colons with at least two colons.
    let hex = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let mut i = 0;
    while i < b.len() {
        if hex(b[i]) {
            let mut j = i;
            while j < b.len() && hex(b[j]) {
                j += 1;
            }
            let run = &b[i..j];
            if run.iter().filter(|&&c| c == b':').count() >= 2 {
                if let Ok(t) = std::str::from_utf8(run) {
                    if let Ok(a) = t.parse::<std::net::Ipv6Addr>() {
                        if is_public_looking(&a.into()) && !out.iter().any(|&(s, e)| s < j && i < e)
                        {
                            out.push((i, j));
                        }
                    }
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_in_names_and_text() {
        let t = b"ct.src.10.200.3.4 peer 192.168.1.10:443 fe80::1 ::1 127.0.0.1 v1.2.3 1.2.3.4.5 16:12:26";
        let found: Vec<String> = find_addresses(t)
            .into_iter()
            .map(|(s, e)| String::from_utf8_lossy(&t[s..e]).into_owned())
            .collect();
        assert_eq!(found, ["10.200.3.4", "192.168.1.10", "fe80::1"]);
    }

    #[test]
    fn pseudonyms_are_consistent_and_keep_length() {
        let host = HostHeader {
            hostname: "db-prod-7.example.com".into(),
            users: vec![
                lpo_format::UserName {
                    uid: 0,
                    name: "root".into(),
                },
                lpo_format::UserName {
                    uid: 1001,
                    name: "alice".into(),
                },
            ],
            ..Default::default()
        };
        let mut r = Redactor::new(&Redaction::parse_list("all").unwrap(), &host);
        let a = r.bytes(b"link to 10.200.3.4 from db-prod-7 ok");
        let b = r.kv_name("ct.src.10.200.3.4");
        assert_eq!(a.len(), b"link to 10.200.3.4 from db-prod-7 ok".len());
        let a = String::from_utf8(a).unwrap();
        assert!(!a.contains("10.200.3.4") && !a.contains("db-prod-7"), "{a}");
        assert!(b.starts_with("ct.src.ip1"), "{b}");
        assert!(a.contains(&b["ct.src.".len()..]), "same token: {a} / {b}");
        let h = r.host();
        assert!(!h.hostname.contains("db-prod"));
        assert_eq!(h.users[0].name, "root");
        assert_eq!(h.users[1].name, "user1001");
        let schema = lpo_format::schema::process::table_schema();
        let at = r.attrs(
            &schema,
            &Attrs {
                ints: vec![],
                strs: vec![
                    "sleep".into(),
                    "/bin/sleep 100 --password=hunter2".into(),
                    "/bin/sleep".into(),
                ],
            },
        );
        assert_eq!(at.strs[1], "/bin/sleep");
        assert_eq!(r.summary().len(), 4);
        assert!(Redaction::parse_list("cmdline,bogus").is_err());
    }
}
