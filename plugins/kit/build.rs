//! Generate the Rust twins of bpf/include/tracer.h's structs (`proc_filter`)
//! from the BTF of a small object that includes it, as plugins do for their
//! own headers (the same build step, `src/build.rs`).
#[path = "src/btf_types.rs"]
#[allow(dead_code)]
mod btf_types;
#[path = "src/build.rs"]
#[allow(dead_code)]
mod build;

fn main() {
    let manifest = std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    // Writes OUT_DIR/kit_types_types.rs, which src/lib.rs includes.
    build::compile_one(&manifest, "kit_types", &build::include_dir().join("tracer.h"), &[], "crate");
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed=src/btf_types.rs");
    println!("cargo:rerun-if-changed=src/build.rs");
    println!("cargo:rerun-if-changed={}", build::include_dir().display());
}
