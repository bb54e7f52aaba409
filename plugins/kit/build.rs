//! Generate the Rust twins of bpf/include/tracer.h's structs (`proc_filter`)
//! from the BTF of a small object that includes it, as plugins do for their
//! own headers.
#[path = "src/btf_types.rs"]
#[allow(dead_code)]
mod btf_types;

use std::{env, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let include = manifest.join("../../bpf/include");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap().as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!("unsupported target arch {other}"),
    };
    let obj = out.join("kit_types.bpf.o");
    libbpf_cargo::SkeletonBuilder::new()
        .source(manifest.join("bpf/kit_types.bpf.c"))
        .obj(&obj)
        .clang_args([format!("-I{}", include.display()), format!("-D__TARGET_ARCH_{arch}")])
        .build()
        .unwrap_or_else(|e| panic!("compiling kit_types.bpf.c: {e:#}"));
    let header = std::fs::read_to_string(include.join("tracer.h")).unwrap();
    let names = btf_types::header_names(&header);
    let src = btf_types::generate(&obj, &names, &[], "crate").unwrap_or_else(|e| panic!("tracer.h: {e}"));
    std::fs::write(out.join("tracer_types.rs"), src).unwrap();
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed=src/btf_types.rs");
    println!("cargo:rerun-if-changed={}", include.display());
}
