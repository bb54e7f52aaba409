//! Probes chosen by a plugin's settings: the fixture's `hook` setting adds a
//! program attached to the tracepoint it names (`ProgramRef::target`). The
//! host attaches it there, attaches anew when the setting changes, and refuses
//! a hook the kernel lacks in one line. Truth: our own syscall counts.

mod common;
use common::target;
use tracer_core::session::Session;

fn hits(s: &mut Session, idx: usize) -> u64 {
    s.refresh();
    s.slots[idx].stats.counters.iter().find(|(n, _)| n == "hook hits").map(|(_, v)| *v).expect("a hook hits counter")
}

#[test]
fn a_setting_picks_the_hook_and_a_new_one_moves_it() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test loads BPF programs: run it as root (cargo xtask test)");
    let fixture = target().join("debug/libtracer_fixture_misbehaving.so");
    assert!(fixture.exists(), "{} missing: run `cargo xtask test`", fixture.display());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&fixture, dir.path().join(fixture.file_name().unwrap())).unwrap();
    let mut s = Session::load(dir.path()).unwrap();
    let idx = s.slot_index("misbehaving").unwrap();
    let me = std::process::id();

    s.start(idx, &format!(r#"{{"pid": {me}, "hook": "syscalls/sys_enter_getppid"}}"#)).unwrap();
    let hook = s.slots[idx].runtime().unwrap().choices.iter().find(|c| c.probe == "hook").cloned().expect("the configured probe is attached");
    assert_eq!((hook.mode.as_str(), hook.programs.as_slice()), ("tracepoint", ["any_tp".to_string()].as_slice()));
    let before = hits(&mut s, idx);
    for _ in 0..1000 {
        unsafe { libc::getppid() };
    }
    let after = hits(&mut s, idx);
    // Every process's getppid counts: ours are 1000 of them.
    assert!(after - before >= 1000, "{before} -> {after}");

    // Another hook: attached anew there; getppid no longer counts.
    s.set_settings(idx, &format!(r#"{{"pid": {me}, "hook": "syscalls/sys_enter_getpid"}}"#)).unwrap();
    let before = hits(&mut s, idx);
    for _ in 0..500 {
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    for _ in 0..700 {
        unsafe { libc::getppid() };
    }
    let after = hits(&mut s, idx);
    let d = after - before;
    // 500 ours; the margin is other processes' getpid calls meanwhile.
    assert!((500..700).contains(&d), "getpid hits {d} ({before} -> {after})");

    // A hook this kernel does not have: one line naming it.
    s.stop(idx, None);
    let e = s.start(idx, r#"{"hook": "syscalls/sys_enter_no_such_call"}"#).unwrap_err().to_string();
    assert!(e.lines().next().unwrap().contains("any_tp: syscalls/sys_enter_no_such_call does not exist on this kernel"), "{e}");
    s.shutdown();
}
