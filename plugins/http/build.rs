//! Compile the plugin's BPF program; the object is embedded in the plugin.
fn main() {
    tracer_plugin_kit::build::compile_bpf(&["http"]);
}
