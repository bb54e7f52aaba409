//! StrictModes for plugins: a root process that loads code from a place others can
//! write hands root to whoever can write there. A plugins directory and every
//! plugin file must be owned by root (or by the user running the host) and not
//! writable by group or others, and a plugin must not be a link leading out of
//! the directory.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn check_mode(what: &str, path: &Path, meta: &fs::Metadata) -> Result<(), String> {
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "{what} {} is owned by uid {}, not root: refusing to load code from it",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{what} {} is writable by group or others (mode {:o}): chmod go-w it",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Check the plugins directory itself.
pub fn check_dir(dir: &Path) -> Result<PathBuf, String> {
    let real = fs::canonicalize(dir)
        .map_err(|e| format!("plugins directory {}: {e}", dir.display()))?;
    let meta = fs::metadata(&real).map_err(|e| format!("plugins directory {}: {e}", real.display()))?;
    if !meta.is_dir() {
        return Err(format!("plugins directory {} is not a directory", dir.display()));
    }
    check_mode("plugins directory", &real, &meta)?;
    Ok(real)
}

/// Check one plugin file found in `dir` (already checked, canonical). Returns the
/// path to load.
pub fn check_file(dir: &Path, file: &Path) -> Result<PathBuf, String> {
    let real = fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if real.parent() != Some(dir) {
        return Err(format!(
            "{} leads to {}, outside the plugins directory: refusing it",
            file.display(),
            real.display()
        ));
    }
    let meta = fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    check_mode("plugin", &real, &meta)?;
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn writable_dir_or_file_is_refused() {
        let d = tempfile::tempdir().unwrap();
        chmod(d.path(), 0o755);
        let dir = check_dir(d.path()).unwrap();
        let f = dir.join("libx.so");
        fs::write(&f, b"x").unwrap();
        chmod(&f, 0o644);
        assert!(check_file(&dir, &f).is_ok());
        chmod(&f, 0o666);
        let e = check_file(&dir, &f).unwrap_err();
        assert!(e.contains("writable by group or others"), "{e}");
        chmod(d.path(), 0o777);
        let e = check_dir(d.path()).unwrap_err();
        assert!(e.contains("chmod go-w"), "{e}");
    }

    #[test]
    fn symlink_out_of_the_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        chmod(d.path(), 0o755);
        let target = outside.path().join("libevil.so");
        fs::write(&target, b"x").unwrap();
        chmod(&target, 0o644);
        let dir = check_dir(d.path()).unwrap();
        let link = dir.join("libevil.so");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = check_file(&dir, &link).unwrap_err();
        assert!(e.contains("outside the plugins directory"), "{e}");
    }
}
