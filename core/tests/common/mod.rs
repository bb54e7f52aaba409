//! What the core's integration tests share.

use std::path::{Path, PathBuf};

/// The workspace's target directory, where `cargo xtask test` stages plugins.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}
