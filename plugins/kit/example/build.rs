// Compiles bpf/forks.bpf.c and generates the Rust twins of bpf/forks.h.
fn main() {
    tracer_plugin_kit::build::compile_bpf(&["forks"]);
}
