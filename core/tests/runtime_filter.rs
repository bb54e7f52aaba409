//! As root, with the real open plugin: kernel-side filters change while the
//! plugin runs, and take effect for the next event.

mod common;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tracer_core::session::{PluginSlot, Session};
use tracer_plugin_api::{FieldValue, Value};

fn staged_plugins() -> PathBuf {
    let dir = common::target().join("debug/plugins");
    assert!(dir.join("libtracer_open.so").exists(), "{} has no open plugin: run `cargo xtask test`", dir.display());
    dir
}

/// Run `cat` on both paths; return the (path, ret) records of that child.
fn opens_seen(session: &mut Session, present: &Path, missing: &Path) -> Vec<(String, i64)> {
    let mut c = Command::new("cat").arg(present).arg(missing).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = c.id() as u64;
    c.wait().unwrap();
    let wanted = [present.to_str().unwrap(), missing.to_str().unwrap()];
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    while std::time::Instant::now() < deadline {
        let mut sink = |_slot: &PluginSlot, _ring: u32, v: &[FieldValue]| {
            // fields: ts pid tid uid euid comm syscall ret flags mode dirfd path_truncated path_hex path
            let get = |i: usize| v[i].as_enum().cloned().unwrap();
            if let (Value::U64(p), Value::I64(ret), Value::Str(path)) = (get(1), get(7), get(13)) {
                if p == pid && wanted.contains(&path.as_str()) {
                    seen.push((path.to_string(), ret));
                }
            }
        };
        session.pump(Some(&mut sink)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    seen
}

#[test]
fn failed_only_and_comm_filters_apply_while_running() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "loads BPF: must run as root");
    let mut session = Session::load(&staged_plugins()).unwrap();
    let idx = session.slot_index("open").unwrap();
    session.start(idx, "{}").unwrap();
    let work = tempfile::tempdir().unwrap();
    let present = work.path().join("present");
    std::fs::write(&present, "x").unwrap();
    let missing = work.path().join("missing");

    let all = opens_seen(&mut session, &present, &missing);
    assert_eq!(all.len(), 2, "unfiltered: both opens, got {all:?}");

    session.set_settings(idx, r#"{"failed_only": true}"#).unwrap();
    let failed = opens_seen(&mut session, &present, &missing);
    assert_eq!(failed, vec![(missing.to_str().unwrap().to_string(), -2)]);

    session.set_settings(idx, r#"{"comm": "no-such-comm"}"#).unwrap();
    assert_eq!(opens_seen(&mut session, &present, &missing), vec![]);

    session.set_settings(idx, r#"{"comm": "cat"}"#).unwrap();
    assert_eq!(opens_seen(&mut session, &present, &missing).len(), 2);

    let e = session.set_settings(idx, r#"{"pidd": 1}"#).unwrap_err();
    assert!(e.contains("unknown field `pidd`"), "{e}");
    session.shutdown();
}
