//! Everything host-side that is not UI: plugin discovery and loading, the BPF
//! lifecycle, the shared ring-buffer poller, map reads, counters and config.

pub mod bpf_runtime;
pub mod bpf_stats;
pub mod kernel_features;
pub mod libbpf_log;
pub mod loader;
pub mod map_batch;
pub mod perf_event;
pub mod safety;
pub mod plugin_watch;
pub mod poller;
pub mod session;
pub mod format;
pub mod output;
pub mod text;
