//! User-space addresses of one process as `function+0xOFF (file)`: its
//! mappings from /proc/PID/maps, each file's ELF symbols (symtab, else
//! dynsym) read once through /proc/PID/root (the file as that process sees
//! it, in its own mount namespace). For the stacks a tracer records of a
//! process; addresses it cannot place stay hexadecimal. Nothing here runs
//! on a hot path: a stack is symbolized once and kept.

use std::collections::HashMap;
use std::path::PathBuf;

/// One line of /proc/PID/maps with a file behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub path: String,
}

/// The file-backed lines of a /proc/PID/maps text.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (range, _perms, offset) = (f.next()?, f.next()?, f.next()?);
            let (_dev, _inode) = (f.next()?, f.next()?);
            let path = f.collect::<Vec<_>>().join(" ");
            if !path.starts_with('/') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some(Mapping { start: u64::from_str_radix(a, 16).ok()?, end: u64::from_str_radix(b, 16).ok()?, offset: u64::from_str_radix(offset, 16).ok()?, path })
        })
        .collect()
}

/// A file's symbols by address and its loadable segments.
#[derive(Debug, Default)]
pub struct Symbols {
    /// (address, size, name), sorted by address.
    syms: Vec<(u64, u64, String)>,
    /// (file offset, file size, virtual address) of each PT_LOAD.
    loads: Vec<(u64, u64, u64)>,
}

impl Symbols {
    pub fn from_elf(data: &[u8]) -> Option<Symbols> {
        use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
        let file = object::File::parse(data).ok()?;
        let mut syms: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        syms.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        syms.dedup_by(|a, b| a.0 == b.0);
        let loads = file.segments().map(|s| (s.file_range().0, s.file_range().1, s.address())).collect();
        Some(Symbols { syms, loads })
    }

    /// The function holding file offset `off`, with the offset into it.
    pub fn at_offset(&self, off: u64) -> Option<(&str, u64)> {
        let &(fo, _, va) = self.loads.iter().find(|(fo, fs, _)| off >= *fo && off < fo + fs)?;
        let vaddr = off - fo + va;
        let i = self.syms.partition_point(|s| s.0 <= vaddr).checked_sub(1)?;
        let (addr, size, name) = &self.syms[i];
        (*size == 0 || vaddr < addr + size).then_some((name.as_str(), vaddr - addr))
    }
}

/// Rust's legacy mangling (`_ZN` length-prefixed parts `E`) made readable,
/// without the trailing hash; other names as they are.
pub fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN") else { return name.to_string() };
    let mut parts = Vec::new();
    while let Some(c) = rest.chars().next() {
        if c == 'E' {
            break;
        }
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        let Ok(n) = rest[..digits].parse::<usize>() else { return name.to_string() };
        let Some(part) = rest.get(digits..digits + n) else { return name.to_string() };
        parts.push(part);
        rest = &rest[digits + n..];
    }
    if parts.last().is_some_and(|p| p.len() == 17 && p.starts_with('h') && p[1..].chars().all(|c| c.is_ascii_hexdigit())) {
        parts.pop();
    }
    let joined = parts.join("::");
    joined.replace("$LT$", "<").replace("$GT$", ">").replace("$u20$", " ").replace("$RF$", "&").replace("..", "::")
}

/// Symbolizes addresses of process `pid`.
pub struct Symbolizer {
    pid: u32,
    maps: Vec<Mapping>,
    files: HashMap<String, Option<Symbols>>,
}

impl Symbolizer {
    /// Reads the process's mappings now; None when it is gone.
    pub fn new(pid: u32) -> Option<Symbolizer> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        Some(Symbolizer { pid, maps: parse_maps(&text), files: HashMap::new() })
    }

    fn file(&mut self, path: &str) -> Option<&Symbols> {
        let pid = self.pid;
        self.files
            .entry(path.to_string())
            .or_insert_with(|| {
                let p = PathBuf::from(format!("/proc/{pid}/root{path}"));
                std::fs::read(p).ok().and_then(|d| Symbols::from_elf(&d))
            })
            .as_ref()
    }

    /// `function+0xOFF (file name)`, `file name+0xOFF` without a symbol, or
    /// the address in hex outside every mapping.
    pub fn symbolize(&mut self, addr: u64) -> String {
        let Some(m) = self.maps.iter().find(|m| addr >= m.start && addr < m.end).cloned() else { return format!("{addr:#x}") };
        let off = addr - m.start + m.offset;
        let base = m.path.rsplit('/').next().unwrap_or(&m.path).to_string();
        match self.file(&m.path).and_then(|s| s.at_offset(off)) {
            Some((name, within)) => format!("{}+{within:#x} ({base})", demangle(name)),
            None => format!("{base}+{off:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_with_files_are_kept() {
        let m = parse_maps(
            "55d0a0000000-55d0a0001000 r--p 00000000 fe:00 123 /usr/bin/prog\n\
             7f0000000000-7f0000021000 r-xp 00028000 fe:00 456 /usr/lib/libc.so.6\n\
             7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n\
             7f1000000000-7f1000001000 rw-p 00000000 00:00 0\n\
             7f2000000000-7f2000001000 r--p 00000000 fe:00 789 /tmp/a file (deleted)\n",
        );
        assert_eq!(m.len(), 3);
        assert_eq!(m[1], Mapping { start: 0x7f0000000000, end: 0x7f0000021000, offset: 0x28000, path: "/usr/lib/libc.so.6".into() });
        assert_eq!(m[2].path, "/tmp/a file (deleted)");
    }

    #[test]
    fn rust_names_lose_their_hash_and_others_stay() {
        assert_eq!(demangle("_ZN15tracer_workload9leak_site17h0123456789abcdefE"), "tracer_workload::leak_site");
        assert_eq!(demangle("_ZN4core3ptr42drop_in_place$LT$alloc..string..String$GT$17h0123456789abcdefE"), "core::ptr::drop_in_place<alloc::string::String>");
        assert_eq!(demangle("malloc"), "malloc");
        assert_eq!(demangle("_ZN3bad"), "bad", "cut short: what was read");
    }

    #[test]
    fn this_test_s_own_function_is_found_by_its_address() {
        #[inline(never)]
        fn marker_function_for_usym() -> u64 {
            std::hint::black_box(7)
        }
        let addr = marker_function_for_usym as *const () as u64;
        let mut s = Symbolizer::new(std::process::id()).expect("own maps");
        let name = s.symbolize(addr + 1);
        assert!(name.contains("marker_function_for_usym+0x1"), "{name}");
        assert_eq!(s.symbolize(8), "0x8", "outside every mapping");
    }
}
