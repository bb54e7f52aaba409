//! For plugins' build scripts: compile `bpf/NAME.bpf.c` of the calling crate with
//! the shared headers into `OUT_DIR/NAME.bpf.o`, to embed with `include_bytes!`,
//! and generate `OUT_DIR/NAME_types.rs`: the Rust twins of the structs, enums and
//! constants of `bpf/NAME.h` (see `btf_types`), to `include!` in a `types` module.
//! The kit's own build script uses `compile_one` too, for `tracer.h`.

use libbpf_cargo::SkeletonBuilder;
use std::{env, path::Path, path::PathBuf};

/// Compile each of `names` (`bpf/<name>.bpf.c`, relative to the crate) into
/// `OUT_DIR/<name>.bpf.o` and generate `OUT_DIR/<name>_types.rs` from
/// `bpf/<name>.h` (an empty module if there is no header). Panics with the
/// compiler's message on failure: this runs in build.rs.
pub fn compile_bpf(names: &[&str]) {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    for name in names {
        // A plugin's types name the kit's `proc_filter` instead of a copy.
        compile_one(
            &manifest,
            name,
            &manifest.join(format!("bpf/{name}.h")),
            &[("proc_filter", "tracer_plugin_kit::types::proc_filter"), ("uid_filter", "tracer_plugin_kit::types::uid_filter")],
            "tracer_plugin_kit",
        );
    }
    println!("cargo:rerun-if-changed={}", manifest.join("bpf").display());
    println!("cargo:rerun-if-changed={}", include_dir().display());
}

/// The shared headers: `bpf/include` of the repository the kit is in.
pub fn include_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf/include")
}

/// Compile `manifest/bpf/<name>.bpf.c` into `OUT_DIR/<name>.bpf.o` and write
/// the twins of `header`'s types to `OUT_DIR/<name>_types.rs` (see
/// `btf_types::generate` for `externs` and `kit`).
pub fn compile_one(manifest: &Path, name: &str, header: &Path, externs: &[(&str, &str)], kit: &str) {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap().as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!("unsupported target arch {other}"),
    };
    let src = manifest.join(format!("bpf/{name}.bpf.c"));
    let obj = out.join(format!("{name}.bpf.o"));
    SkeletonBuilder::new()
        .source(&src)
        .obj(&obj)
        .clang_args([
            format!("-I{}", include_dir().display()),
            format!("-I{}", manifest.join("bpf").display()),
            format!("-D__TARGET_ARCH_{arch}"),
            "-Wall".to_string(),
        ])
        .build()
        .unwrap_or_else(|e| panic!("compiling {}: {e:#}", src.display()));
    let names = match std::fs::read_to_string(header) {
        Ok(text) => crate::btf_types::header_names(&text),
        Err(_) => Default::default(),
    };
    let types = crate::btf_types::generate(&obj, &names, externs, kit).unwrap_or_else(|e| panic!("{}: {e}", header.display()));
    std::fs::write(out.join(format!("{name}_types.rs")), types).unwrap();
}
