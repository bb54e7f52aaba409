//! Every kernel map of every tracer is bounded, and the ones keyed by things
//! that come and go (processes, threads, sockets) cannot fill up for good: they
//! evict (LRU hashes, whose evictions the plugins count and show), or die with
//! their task (task storage). A plain hash map would keep the entry of a thread
//! killed mid-syscall or a connection that never closes until it was full, and
//! then refuse everything new. Read from the objects the plugins really ship.

use libbpf_rs::{MapType, ObjectBuilder};
mod common;
use common::target;
use tracer_core::session::Session;


#[test]
fn every_map_of_every_tracer_is_bounded_and_evicts_or_dies_with_its_task() {
    // Every plugin `cargo xtask build` staged: a new tracer is checked without
    // being named here.
    let staged = target().join("debug/plugins");
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&staged).unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask test`", staged.display())) {
        let f = e.unwrap().path();
        if f.extension().is_some_and(|x| x == "so") {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
            n += 1;
        }
    }
    assert!(n >= 4, "the four tracers at least are staged in {}", staged.display());
    let session = Session::load(dir.path()).unwrap();
    assert_eq!(session.slots.len(), n, "{:?}", session.load_failures);
    let mut seen = Vec::new();
    for slot in &session.slots {
        let mut builder = ObjectBuilder::default();
        let open = builder.open_memory(&slot.desc.bpf_object).unwrap();
        for m in open.maps() {
            let name = m.name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue; // .rodata, .bss: globals, not tables
            }
            let t = m.map_type();
            let ok = match t {
                MapType::Array | MapType::PercpuArray => m.max_entries() > 0,
                MapType::LruHash | MapType::LruPercpuHash => (1..=65536).contains(&m.max_entries()),
                MapType::RingBuf => m.max_entries() <= 16 << 20,
                MapType::TaskStorage => true,
                // Stack ids, bounded: full, it refuses new stacks (each such
                // refusal counted by the plugin), never more memory.
                MapType::StackTrace => (1..=65536).contains(&m.max_entries()),
                _ => false,
            };
            assert!(ok, "{}: map {name} ({t:?}, max_entries {}) may grow without eviction", slot.name(), m.max_entries());
            seen.push((slot.name().to_string(), t));
        }
    }
    // The property is about these kinds; make sure they are really looked at.
    assert!(seen.iter().any(|(_, t)| *t == MapType::LruHash), "{seen:?}");
    assert!(seen.iter().any(|(p, t)| p == "syscall_latency" && *t == MapType::TaskStorage), "{seen:?}");
}
