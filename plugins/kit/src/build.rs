//! For plugins' build scripts: compile `bpf/NAME.bpf.c` of the calling crate with
//! the shared headers into `OUT_DIR/NAME.bpf.o`, to embed with `include_bytes!`,
//! and generate `OUT_DIR/NAME_types.rs`: the Rust twins of the structs, enums and
//! constants of `bpf/NAME.h` (see `btf_types`), to `include!` in a `types` module.

use libbpf_cargo::SkeletonBuilder;
use std::{env, path::PathBuf};

/// Compile each of `names` (`bpf/<name>.bpf.c`, relative to the crate) into
/// `OUT_DIR/<name>.bpf.o` and generate `OUT_DIR/<name>_types.rs` from
/// `bpf/<name>.h` (an empty module if there is no header). Panics with the compiler's message on failure: this
/// runs in build.rs.
pub fn compile_bpf(names: &[&str]) {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf/include");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap().as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!("unsupported target arch {other}"),
    };
    for name in names {
        let src = manifest.join(format!("bpf/{name}.bpf.c"));
        SkeletonBuilder::new()
            .source(&src)
            .obj(out.join(format!("{name}.bpf.o")))
            .clang_args([
                format!("-I{}", include.display()),
                format!("-I{}", manifest.join("bpf").display()),
                format!("-D__TARGET_ARCH_{arch}"),
                "-Wall".to_string(),
            ])
            .build()
            .unwrap_or_else(|e| panic!("compiling {}: {e:#}", src.display()));
        let header = manifest.join(format!("bpf/{name}.h"));
        let names = match std::fs::read_to_string(&header) {
            Ok(text) => crate::btf_types::header_names(&text),
            Err(_) => Default::default(),
        };
        let types = crate::btf_types::generate(&out.join(format!("{name}.bpf.o")), &names, &[("proc_filter", "tracer_plugin_kit::types::proc_filter")], "tracer_plugin_kit")
            .unwrap_or_else(|e| panic!("{}: {e}", header.display()));
        std::fs::write(out.join(format!("{name}_types.rs")), types).unwrap();
    }
    println!("cargo:rerun-if-changed={}", manifest.join("bpf").display());
    println!("cargo:rerun-if-changed={}", include.display());
}
