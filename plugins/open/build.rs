//! Compile the open tracer's BPF program; the object is embedded in the plugin.
use libbpf_cargo::SkeletonBuilder;
use std::{env, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let include = manifest.join("../../bpf/include");
    let src = manifest.join("bpf/opensnoop.bpf.c");
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap()).join("opensnoop.bpf.o");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap().as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!("unsupported target arch {other}"),
    };
    SkeletonBuilder::new()
        .source(&src)
        .obj(&out)
        .clang_args([
            format!("-I{}", include.display()),
            format!("-D__TARGET_ARCH_{arch}"),
            "-Wall".to_string(),
        ])
        .build()
        .expect("compiling opensnoop.bpf.c");
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-changed={}", include.display());
}
