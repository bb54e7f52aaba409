//! Finding and loading plugin `.so` files.
//!
//! Each file is checked (see [`crate::safety`]) and loaded on its own; a failure
//! becomes a one-line [`LoadFailure`] and never stops the others.

use crate::safety;
use abi_stable::library::{lib_header_from_path, LibraryError};
use std::path::{Path, PathBuf};
use tracer_plugin_api::{PluginDescriptor, TracerBox, TracerModuleRef};

/// A plugin whose library loaded and whose constructor and `describe` succeeded.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub tracer: TracerBox,
    pub desc: PluginDescriptor,
}

impl LoadedPlugin {
    pub fn name(&self) -> &str {
        self.desc.info.name.as_str()
    }
}

#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    /// One line: what is wrong and, where known, what to do.
    pub reason: String,
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Every `*.so` in `dir`, sorted by name so load order is stable.
pub fn find_plugin_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("plugins directory {}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "so"))
        .collect();
    v.sort();
    Ok(v)
}

/// The first meaningful line of abi_stable's (often very long) report.
fn short_library_error(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => {
            // libloading's text repeats the path; keep dlerror's reason.
            let s = err.to_string();
            if let Some(h) = crate::kernel_features::fd_exhaustion_hint(&s) {
                return h;
            }
            let reason = s.rsplit(": ").next().unwrap_or(&s).trim().to_string();
            format!("not a loadable shared library ({reason})")
        }
        LibraryError::GetSymbolError { .. } => {
            "not a tracer plugin (no abi_stable root module symbol)".to_string()
        }
        LibraryError::AbiInstability(report) => {
            format!("built against an incompatible plugin API: {}", summarize_abi_report(&report.to_string()))
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "built against plugin API {actual_version}, this host needs a version compatible with {expected_version}"
        ),
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            "built with an incompatible abi_stable version".to_string()
        }
        other => other.to_string().lines().next().unwrap_or("").to_string(),
    }
}

/// abi_stable's layout report runs to hundreds of lines. Keep what a person
/// needs: each distinct `Error:` with its expected/found values, and the
/// innermost type on the path to the mismatch.
fn summarize_abi_report(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut errors: Vec<String> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(e) = l.strip_prefix("Error:") {
            let mut e = e.trim().to_string();
            if lines.get(i + 1) == Some(&"Expected:") && lines.get(i + 3) == Some(&"Found:") {
                e = format!("{e} (expected {}, found {})", lines[i + 2], lines.get(i + 4).unwrap_or(&"?"));
            }
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    let innermost = lines
        .iter()
        .rposition(|l| l.contains("error(s)inside:"))
        .and_then(|s| {
            lines[s..]
                .iter()
                .take_while(|l| !l.starts_with("Layout of expected type"))
                .filter_map(|l| l.strip_prefix("type:"))
                .last()
        });
    match (errors.is_empty(), innermost) {
        (true, _) => lines.iter().find(|l| !l.is_empty()).unwrap_or(&"layout mismatch").to_string(),
        // The last error is the innermost one; the others are its enclosing types.
        (false, Some(t)) => format!("type {t}: {}", errors.last().unwrap()),
        (false, None) => errors.last().unwrap().clone(),
    }
}

/// Where the program header table of an ELF file ends, from its 64-byte ELF
/// header (None: not an ELF header). Offsets are little-endian (x86_64).
fn ph_table_end(head: &[u8]) -> Option<u64> {
    if head.len() < 64 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]) as u64;
    // Saturating: an absurd offset then lies past any file's end.
    Some(u64::from_le_bytes(head[32..40].try_into().unwrap()).saturating_add(u16_at(54) * u16_at(56)))
}

/// How much of a plugin file the dynamic loader reads: the program header
/// table and every segment with bytes in the file (what lies past them is
/// section headers and debug info, which loading does not use). `head` holds
/// the file's first bytes (the ELF header and program headers at least);
/// `file_len` is its size. A cut file, whose segments run past its end, is
/// refused here: mapped, it would fault (SIGBUS) on first touch.
fn elf_load_extent(head: &[u8], file_len: u64) -> Result<u64, String> {
    let u64_at = |o: usize| head.get(o..o + 8).map(|x| u64::from_le_bytes(x.try_into().unwrap()));
    let Some(table_end) = ph_table_end(head) else {
        return Err(format!("not a loadable shared library (not an ELF file, {file_len} bytes)"));
    };
    if head[4] != 2 || head[5] != 1 {
        return Err("not a loadable shared library (not a 64-bit little-endian ELF file)".into());
    }
    let short = |what: &str| format!("not a loadable shared library (truncated: {what} runs past the end of the {file_len}-byte file)");
    if table_end > file_len {
        return Err(short("the program header table"));
    }
    let (phoff, phentsize, phnum) = (u64_at(32).unwrap(), u16::from_le_bytes([head[54], head[55]]) as u64, u16::from_le_bytes([head[56], head[57]]) as u64);
    let mut extent = table_end;
    for i in 0..phnum {
        let ph = (phoff + i * phentsize) as usize;
        let (Some(p_type), Some(off), Some(filesz)) = (head.get(ph..ph + 4), u64_at(ph + 8), u64_at(ph + 32)) else {
            return Err(short("a program header"));
        };
        // PT_NULL has no bytes; every other kind (LOAD, DYNAMIC, NOTE, ...) does.
        if p_type != [0, 0, 0, 0] {
            let end = off.checked_add(filesz).filter(|e| *e <= file_len).ok_or_else(|| short(&format!("segment {i}")))?;
            extent = extent.max(end);
        }
    }
    Ok(extent)
}

/// The loadable part of the plugin file in a sealed memfd: the loader maps
/// this private copy, so a later write to (or truncation of) the plugin file
/// cannot change code the host runs. Only what loading uses is copied, by the
/// kernel (copy_file_range), never through a buffer of the file's size; the
/// copy's ELF header no longer names section headers, which it does not hold.
/// Returns the memfd and its /proc path.
fn sealed_copy(path: &Path) -> Result<(std::fs::File, PathBuf), String> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::fs::FileExt;
    let io = |what: &str, e: std::io::Error| {
        let e = e.to_string();
        crate::kernel_features::fd_exhaustion_hint(&e).unwrap_or_else(|| format!("{what}: {e}"))
    };
    let mut file = std::fs::File::open(path).map_err(|e| io("reading the plugin", e))?;
    let file_len = file.metadata().map_err(|e| io("reading the plugin", e))?.len();
    let mut head = vec![0u8; 64];
    let n = file.read_at(&mut head, 0).map_err(|e| io("reading the plugin", e))?;
    head.truncate(n);
    if let Some(table) = ph_table_end(&head) {
        // Room for the program header table (small: tens of entries).
        if table <= file_len.min(1 << 20) {
            head.resize(table.max(64) as usize, 0);
            let n = file.read_at(&mut head, 0).map_err(|e| io("reading the plugin", e))?;
            head.truncate(n);
        }
    }
    let extent = elf_load_extent(&head, file_len)?;

    let name = std::ffi::CString::new(format!("tracer-plugin:{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()))
        .map_err(|_| "plugin file name holds a NUL byte".to_string())?;
    // SAFETY: valid C string; the returned fd is owned by the File below.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io("copying the plugin into memory", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let mut copy = unsafe { std::fs::File::from_raw_fd(fd) };
    file.rewind().map_err(|e| io("reading the plugin", e))?;
    let copied = std::io::copy(&mut (&mut file).take(extent), &mut copy).map_err(|e| io("copying the plugin into memory", e))?;
    if copied != extent {
        return Err(format!("not a loadable shared library (truncated while being read: {copied} of {extent} bytes)"));
    }
    // e_shoff, e_shnum, e_shstrndx: no section headers in the copy.
    copy.write_all_at(&[0u8; 8], 40).and_then(|_| copy.write_all_at(&[0u8; 2], 60)).and_then(|_| copy.write_all_at(&[0u8; 2], 62))
        .map_err(|e| io("copying the plugin into memory", e))?;
    copy.flush().map_err(|e| io("copying the plugin into memory", e))?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our own fd.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(format!("sealing the plugin's copy: {}", std::io::Error::last_os_error()));
    }
    let p = PathBuf::from(format!("/proc/self/fd/{}", copy.as_raw_fd()));
    Ok((copy, p))
}

/// Load one plugin file that passed the safety checks: checked, and mapped
/// from a sealed private copy of what loading uses.
pub fn load_library(path: &Path) -> Result<LoadedPlugin, String> {
    let (copy, copy_path) = sealed_copy(path)?;
    // Kept open for the life of the process, whatever happens next (libraries
    // are never unloaded): the dynamic loader knows a library by the path it
    // was opened under, and a reused fd number would make the next plugin's
    // path look loaded already.
    std::mem::forget(copy);
    let header = lib_header_from_path(&copy_path).map_err(|e| short_library_error(&e))?;
    let module = header
        .init_root_module::<TracerModuleRef>()
        .map_err(|e| short_library_error(&e))?;
    let tracer = module.new()().into_result().map_err(|e| format!("plugin constructor failed: {e}"))?;
    let desc = tracer.describe().into_result().map_err(|e| format!("describe failed: {e}"))?;
    if desc.info.name.is_empty() {
        return Err("plugin has an empty name".into());
    }
    Ok(LoadedPlugin { path: path.to_path_buf(), tracer, desc })
}

/// Check and load every plugin in `dir`. Plugins with a name seen before are
/// refused: the first (by file name) wins.
pub fn load_dir(dir: &Path) -> Result<(Vec<LoadedPlugin>, Vec<LoadFailure>), String> {
    let dir = safety::check_dir(dir)?;
    let mut ok: Vec<LoadedPlugin> = Vec::new();
    let mut failed = Vec::new();
    for path in find_plugin_files(&dir)? {
        let loaded = safety::check_file(&dir, &path).and_then(|real| load_library(&real));
        match loaded {
            Ok(p) => {
                if let Some(first) = ok.iter().find(|q| q.name() == p.name()) {
                    failed.push(LoadFailure {
                        reason: format!(
                            "a plugin named {:?} is already loaded from {}",
                            p.name(),
                            first.path.display()
                        ),
                        path,
                    });
                } else {
                    ok.push(p);
                }
            }
            Err(reason) => failed.push(LoadFailure { path, reason }),
        }
    }
    Ok((ok, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_elf_is_refused_before_mapping() {
        let me = std::fs::read("/proc/self/exe").unwrap();
        let len = me.len() as u64;
        let extent = elf_load_extent(&me, len).unwrap();
        assert!(extent > 4096 && extent <= len, "{extent} of {len}");
        let e = elf_load_extent(&me, extent - 1).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(elf_load_extent(b"garbage", 7).unwrap_err().contains("not an ELF"));
    }
}
