//! Real plugin libraries across the abi_stable boundary (no BPF loaded): the
//! descriptor arrives intact, and a panic inside a plugin entry point comes
//! back as an error, after which the plugin refuses further calls.

mod common;
use common::target;
use tracer_core::session::Session;


#[test]
fn descriptors_cross_intact_and_panics_become_errors() {
    let fixture = target().join("debug/libtracer_fixture_misbehaving.so");
    let open = target().join("debug/plugins/libtracer_open.so");
    for f in [&fixture, &open] {
        assert!(f.exists(), "{} missing: run `cargo xtask test`", f.display());
    }
    let dir = tempfile::tempdir().unwrap();
    for f in [&fixture, &open] {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    // SAFETY: the only test in this binary; no other thread reads the environment.
    unsafe { std::env::set_var("TRACER_FIXTURE_MODE", "panic_panel") };
    let session = Session::load(dir.path()).unwrap();
    assert!(session.load_failures.is_empty(), "{:?}", session.load_failures);

    let open = &session.slots[session.slot_index("open").unwrap()];
    assert_eq!(open.desc.info.version.as_str(), "0.1.0");
    assert_eq!(open.desc.rings[0].map.as_str(), "open_events");
    assert_eq!(open.fields(0).len(), 14);
    assert_eq!(open.desc.bpf_object[..4], *b"\x7fELF");
    assert!(open.panel("top_files").is_ok());
    assert!(open.panel("nope").unwrap_err().contains("no panel named"));

    let bad = &session.slots[session.slot_index("misbehaving").unwrap()];
    let e = bad.panel("count").unwrap_err();
    assert!(e.starts_with("plugin panicked in panel: fixture panics in panel as asked"), "{e}");
    let e = bad.panel("count").unwrap_err();
    assert!(e.starts_with("plugin disabled after an earlier panic"), "{e}");
}
