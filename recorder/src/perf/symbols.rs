//! Symbolization at record time: kernel addresses through /proc/kallsyms,
//! user addresses through the ELF symbol tables (.symtab, .dynsym, or a
//! separate debug file found by build-id under /usr/lib/debug) of the
//! mapped files. Files are cached by (device, inode), at most
//! [`MAX_CACHED_FILES`] files and [`MAX_CACHED_SYMBOLS`] symbols in all; the
//! least recently used go first.

use object::{Object, ObjectSegment, ObjectSymbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MAX_CACHED_FILES: usize = 256;
/// 20 bytes each: at most 20 MiB of symbol tables.
pub const MAX_CACHED_SYMBOLS: usize = 1_000_000;
/// Files larger than this are not parsed (symbols then show as unknown).
const MAX_ELF_BYTES: u64 = 1 << 30;

/// One kernel symbol: 16 bytes. Names live in one arena.
#[derive(Debug, Clone, Copy)]
struct KSym {
    addr: u64,
    name: u32,
    len: u16,
    /// 0: the kernel image, else index + 1 into `modules`.
    module: u16,
}

/// /proc/kallsyms, text symbols only, sorted by address: a compact table
/// (16 bytes per symbol plus its name once in an arena), parsed line by
/// line without holding the file's text.
#[derive(Debug, Default)]
pub struct KernelSyms {
    syms: Vec<KSym>,
    names: String,
    /// `[module]` names.
    modules: Vec<Box<str>>,
}

impl KernelSyms {
    /// Read `kallsyms` (text symbols only). All-zero addresses (kptr_restrict,
    /// no privilege) give an empty table.
    pub fn load(path: &Path) -> KernelSyms {
        use std::io::BufRead;
        let mut k = KernelSyms::default();
        let Ok(f) = std::fs::File::open(path) else {
            return k;
        };
        let mut r = std::io::BufReader::with_capacity(64 << 10, f);
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            k.add_line(&line);
            line.clear();
        }
        k.finish();
        k
    }

    pub fn parse(text: &str) -> KernelSyms {
        let mut k = KernelSyms::default();
        for line in text.lines() {
            k.add_line(line);
        }
        k.finish();
        k
    }

    fn add_line(&mut self, line: &str) {
        let mut it = line.split_ascii_whitespace();
        let (Some(a), Some(t), Some(name)) = (it.next(), it.next(), it.next()) else {
            return;
        };
        // Function symbols only; `__pfx_` symbols name the padding before
        // each function (kernels built with call-depth tracking), never code
        // that a sample lands in.
        if !matches!(t, "t" | "T" | "w" | "W") || name.starts_with("__pfx_") {
            return;
        }
        let Ok(addr) = u64::from_str_radix(a, 16) else {
            return;
        };
        if addr == 0 || name.len() > u16::MAX as usize {
            return;
        }
        if self.names.len() + name.len() > u32::MAX as usize {
            return;
        }
        let module = match it.next() {
            Some(m) => {
                let m = m.trim_start_matches('[').trim_end_matches(']');
                // Module symbols come grouped: usually the last one.
                match self.modules.iter().rposition(|x| &x[1..x.len() - 1] == m) {
                    Some(i) => i + 1,
                    None if self.modules.len() < u16::MAX as usize => {
                        self.modules.push(format!("[{m}]").into());
                        self.modules.len()
                    }
                    None => return,
                }
            }
            None => 0,
        };
        let off = self.names.len() as u32;
        self.names.push_str(name);
        self.syms.push(KSym {
            addr,
            name: off,
            len: name.len() as u16,
            module: module as u16,
        });
    }

    fn finish(&mut self) {
        self.syms.sort_by_key(|s| s.addr);
        self.syms.dedup_by_key(|s| s.addr);
        self.syms.shrink_to_fit();
        self.names.shrink_to_fit();
        self.modules.shrink_to_fit();
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// (symbol, offset, dso) of a kernel address.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64, &str)> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let s = *self.syms.get(i.checked_sub(1)?)?;
        let off = addr - s.addr;
        // Far from any symbol (past the end of the text): unknown.
        if off > 1 << 24 {
            return None;
        }
        let name = self
            .names
            .get(s.name as usize..s.name as usize + s.len as usize)?;
        let dso = match s.module {
            0 => "[kernel.kallsyms]",
            m => self.modules.get(m as usize - 1).map(|m| &**m)?,
        };
        Some((name, off, dso))
    }
}

/// One ELF symbol: 20 bytes; its name stays in the mapped file.
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct ESym {
    start: u64,
    /// 0: unknown (the symbol runs to the next one); saturated.
    size: u32,
    /// Offset of the name in its file.
    name: u32,
    /// Name length; bit 31: the name is in the debug file.
    len: u32,
}

const IN_DEBUG: u32 = 1 << 31;

/// Symbols of one ELF file and how file offsets map to its addresses. The
/// names stay in the mapped file (page cache), not copied.
pub struct ElfSyms {
    /// Sorted by start.
    syms: Vec<ESym>,
    maps: Vec<memmap2::Mmap>,
    /// PT_LOAD segments: (file offset, file size, virtual address).
    loads: Vec<(u64, u64, u64)>,
}

impl ElfSyms {
    /// Symbol (demangled) and offset of the byte at `file_off` in the file.
    pub fn lookup(&self, file_off: u64) -> Option<(String, u64)> {
        let &(off, _, vaddr) = self
            .loads
            .iter()
            .find(|(o, sz, _)| file_off >= *o && file_off - *o < *sz)?;
        let addr = file_off - off + vaddr;
        let i = self.syms.partition_point(|s| s.start <= addr);
        let s = *self.syms.get(i.checked_sub(1)?)?;
        let (start, size, noff) = (s.start, s.size, s.name);
        if size != 0 && addr >= start.saturating_add(u64::from(size)) {
            return None;
        }
        let (m, nlen) = (usize::from(s.len & IN_DEBUG != 0), s.len & !IN_DEBUG);
        let bytes = self
            .maps
            .get(m)?
            .get(noff as usize..noff as usize + nlen as usize)?;
        let name = String::from_utf8_lossy(bytes);
        let name = match rustc_demangle::try_demangle(&name) {
            Ok(d) => format!("{d:#}"),
            Err(_) => name.into_owned(),
        };
        Some((name, addr - start))
    }

    /// Parse a mapped ELF file; `debug` is an optional separate debug file
    /// whose symbols serve a stripped file.
    pub fn parse(data: memmap2::Mmap, debug: Option<memmap2::Mmap>) -> Option<ElfSyms> {
        let mut e = ElfSyms {
            syms: Vec::new(),
            maps: Vec::new(),
            loads: Vec::new(),
        };
        let has_symtab;
        {
            let f = object::File::parse(&data[..]).ok()?;
            for s in f.segments() {
                let (off, size) = s.file_range();
                if size > 0 {
                    e.loads.push((off, size, s.address()));
                }
            }
            has_symtab = f.symbol_table().is_some();
            add_symbols(&f, &data[..], 0, &mut e.syms);
        }
        e.maps.push(data);
        if !has_symtab {
            if let Some(d) = debug {
                if let Ok(f) = object::File::parse(&d[..]) {
                    add_symbols(&f, &d[..], 1, &mut e.syms);
                }
                e.maps.push(d);
            }
        }
        e.syms.sort_by_key(|s| (s.start, std::cmp::Reverse(s.size)));
        e.syms.dedup_by_key(|s| s.start);
        e.syms.shrink_to_fit();
        // The pages read while indexing need not stay resident: lookups
        // fault back the few they touch from the page cache.
        for m in &e.maps {
            // SAFETY: advice on our own read-only file mapping; DONTNEED on a
            // private unmodified file mapping only drops resident pages.
            unsafe {
                libc::madvise(
                    m.as_ptr() as *mut libc::c_void,
                    m.len(),
                    libc::MADV_DONTNEED,
                )
            };
        }
        Some(e)
    }

    pub fn build_id(data: &[u8]) -> Option<Vec<u8>> {
        object::File::parse(data)
            .ok()?
            .build_id()
            .ok()?
            .map(|b| b.to_vec())
    }

    fn count(&self) -> usize {
        self.syms.len()
    }
}

fn add_symbols(f: &object::File, base: &[u8], map: u8, out: &mut Vec<ESym>) {
    let lo = base.as_ptr() as usize;
    for s in f.symbols().chain(f.dynamic_symbols()) {
        if s.kind() != object::SymbolKind::Text || s.is_undefined() || s.address() == 0 {
            continue;
        }
        let Ok(n) = s.name_bytes() else { continue };
        let at = (n.as_ptr() as usize).wrapping_sub(lo);
        if n.is_empty()
            || at > u32::MAX as usize
            || at + n.len() > base.len()
            || n.len() >= IN_DEBUG as usize
        {
            continue;
        }
        out.push(ESym {
            start: s.address(),
            size: s.size().min(u64::from(u32::MAX)) as u32,
            name: at as u32,
            len: n.len() as u32 | if map == 1 { IN_DEBUG } else { 0 },
        });
    }
}

/// Map a regular file read-only. Binaries and libraries are replaced by
/// rename, not rewritten in place (a running executable cannot be written),
/// so the mapping stays valid; only the pages we touch are read.
fn map_file(p: &Path) -> Option<memmap2::Mmap> {
    let f = std::fs::File::open(p).ok()?;
    let md = f.metadata().ok()?;
    if !md.is_file() || md.len() < 64 || md.len() > MAX_ELF_BYTES {
        return None;
    }
    // SAFETY: a read-only private mapping of a regular file; see above.
    unsafe { memmap2::Mmap::map(&f) }.ok()
}

type CacheEntry = (Option<Arc<ElfSyms>>, u64);

/// Cached ELF symbol tables, keyed by (device, inode).
#[derive(Default)]
pub struct ElfCache {
    /// (device, inode) → (symbols, or None if unreadable; last use).
    files: HashMap<(u64, u64), CacheEntry>,
    symbols: usize,
    clock: u64,
    /// Where separate debug files live (`/usr/lib/debug`).
    pub debug_root: PathBuf,
}

impl ElfCache {
    pub fn new() -> ElfCache {
        ElfCache {
            debug_root: "/usr/lib/debug".into(),
            ..Default::default()
        }
    }

    /// The symbols of the file (dev, ino), opening it from the first path
    /// of `paths` that reads (a failure is cached too).
    pub fn get(&mut self, key: (u64, u64), paths: &[PathBuf]) -> Option<Arc<ElfSyms>> {
        self.clock += 1;
        if let Some(e) = self.files.get_mut(&key) {
            e.1 = self.clock;
            return e.0.clone();
        }
        let loaded = paths.iter().find_map(|p| self.load(p)).map(Arc::new);
        let n = loaded.as_ref().map(|e| e.count()).unwrap_or(0);
        while !self.files.is_empty()
            && (self.files.len() >= MAX_CACHED_FILES || self.symbols + n > MAX_CACHED_SYMBOLS)
        {
            let Some((&old, _)) = self.files.iter().min_by_key(|e| e.1 .1) else {
                break;
            };
            if let Some((Some(e), _)) = self.files.remove(&old) {
                self.symbols -= e.count();
            }
        }
        self.symbols += n;
        self.files.insert(key, (loaded.clone(), self.clock));
        loaded
    }

    fn load(&self, p: &Path) -> Option<ElfSyms> {
        let data = map_file(p)?;
        let debug = ElfSyms::build_id(&data)
            .filter(|b| b.len() >= 2)
            .and_then(|b| {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                map_file(
                    &self
                        .debug_root
                        .join(".build-id")
                        .join(&hex[..2])
                        .join(format!("{}.debug", &hex[2..])),
                )
            });
        ElfSyms::parse(data, debug)
    }

    pub fn cached_files(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lookup() {
        let k = KernelSyms::parse(
            "ffffffff81000000 T _stext\nffffffff81000100 t foo\nffffffff81000000 D data\n\
             ffffffffc0200000 t mod_fn\t[nf_conntrack]\n0000000000000000 T zero\nbad line\n\
             ffffffff810000f0 T __pfx_foo\nffffffffc0200100 t mod_fn2\t[nf_conntrack]\n",
        );
        assert_eq!(
            k.lookup(0xffffffff81000104),
            Some(("foo", 4, "[kernel.kallsyms]"))
        );
        assert_eq!(
            k.lookup(0xffffffff81000010),
            Some(("_stext", 0x10, "[kernel.kallsyms]"))
        );
        assert_eq!(
            k.lookup(0xffffffffc0200008),
            Some(("mod_fn", 8, "[nf_conntrack]"))
        );
        assert_eq!(
            k.lookup(0xffffffffc0200104),
            Some(("mod_fn2", 4, "[nf_conntrack]"))
        );
        // __pfx_ padding symbols are left out: the padding counts as the
        // end of the previous function.
        assert_eq!(
            k.lookup(0xffffffff810000f4),
            Some(("_stext", 0xf4, "[kernel.kallsyms]"))
        );
        assert_eq!(k.len(), 4);
        assert_eq!(k.lookup(0x1000), None);
        assert!(KernelSyms::parse("0000000000000000 T x\n").is_empty());
    }

    #[test]
    fn own_binary_symbols() {
        // The test binary itself is an ELF file with symbols.
        let e = ElfSyms::parse(map_file(Path::new("/proc/self/exe")).unwrap(), None).unwrap();
        assert!(e.count() > 100);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, vec![b'x'; 100]).unwrap();
        assert!(ElfSyms::parse(map_file(&p).unwrap(), None).is_none());
        // Garbage never panics.
        let exe = std::fs::read("/proc/self/exe").unwrap();
        let mut junk = exe[..65536.min(exe.len())].to_vec();
        for i in (16..junk.len()).step_by(7) {
            junk[i] ^= 0x5a;
        }
        std::fs::write(&p, &junk).unwrap();
        let _ = ElfSyms::parse(map_file(&p).unwrap(), None);
    }
}
