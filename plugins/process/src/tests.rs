//! Decoding and aggregation on synthetic records (the kernel side is tested
//! against waitpid and /proc in host/tests/process.rs).

use super::*;
use tracer_plugin_api::Value;

fn exec(pid: u32, ret: i64, args: &[&str]) -> Vec<u8> {
    let mut e = exec_event { pid, ppid: 1, ret, argc: args.len() as u16, ..Default::default() };
    e.comm[..4].copy_from_slice(b"true");
    e.filename[..9].copy_from_slice(b"/bin/true");
    let mut off = 0;
    for a in args {
        e.args[off..off + a.len()].copy_from_slice(a.as_bytes());
        off += a.len() + 1;
    }
    e.args_len = off as u32;
    // Sent only up to the arguments in use, as the BPF program does.
    tracer_plugin_kit::bytes_of(&e)[..std::mem::offset_of!(exec_event, args) + off].to_vec()
}

fn exit(pid: u32, status: u32, lifetime_ns: u64) -> Vec<u8> {
    tracer_plugin_kit::bytes_of(&exit_event { pid, exit_status: status, lifetime_ns, ..Default::default() }).to_vec()
}

#[test]
fn shared_structs_match_the_btf_of_the_embedded_object() {
    tracer_plugin_kit::test_support::assert_layouts_match(BPF_OBJECT, &types::layouts());
}

#[test]
fn declared_settings_are_the_parsed_ones() {
    tracer_plugin_kit::test_support::assert_settings_declared(&descriptor().settings, |j| ProcSettings::parse(j).map(|_| ()));
}

#[test]
fn statuses_read_as_waitpid_would() {
    assert_eq!(status_text(7 << 8), "exit 7");
    assert_eq!(status_text(9), "SIGKILL");
    assert_eq!(status_text(11 | 0x80), "SIGSEGV (core dumped)");
    assert_eq!(status_text(40), "signal 40");
}

#[test]
fn records_become_fields_panels_and_metrics() {
    let mut p = Process::default();
    let mut out = RVec::new();
    p.on_record(0, &exec(10, 0, &["/bin/true", "a b", "c"]), Some(&mut out)).unwrap();
    assert_eq!(out.len(), descriptor().rings[0].fields.len());
    assert_eq!(out[7], Value::str("/bin/true a b c"));
    p.on_record(0, &exec(11, -2, &[]), None).unwrap();
    p.on_record(1, &exit(10, 7 << 8, 5_000), None).unwrap();
    p.on_record(1, &exit(12, 9, 5_000_000_000), None).unwrap();
    let Panel::Table(t) = p.panel("short_lived").unwrap() else { panic!() };
    assert_eq!(t.rows.len(), 1, "only the process that lived < 1 s");
    let Panel::Table(t) = p.panel("by_status").unwrap() else { panic!() };
    assert_eq!(t.rows.len(), 2);
    let m = p.metrics();
    tracer_plugin_kit::test_support::assert_metrics_declared(&descriptor().metrics, &m);
    assert!(m.iter().any(|s| s.name.as_str() == "execs_total" && s.labels[0].as_str() == "failed" && s.value == 1.0));
    assert!(m.iter().any(|s| s.name.as_str() == "exits_total" && s.labels[0].as_str() == "SIGKILL" && s.value == 1.0));
    assert!(p.on_record(1, &[0u8; 10], None).is_err());
    assert!(p.panel("nope").is_err());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes from either ring: a record or an error, never a panic.
        #[test]
        fn arbitrary_records_never_panic(ring in 0u32..2, b in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let mut p = Process::default();
            let mut out = RVec::new();
            let _ = p.on_record(ring, &b, Some(&mut out));
            for id in ["execs", "exits", "short_lived", "by_status", "summary"] {
                p.panel(id).unwrap();
            }
        }
    }
}

#[test]
fn the_tracer_is_at_most_150_lines_of_code() {
    // The SDK's promise (issue 12): code lines, blank lines and comments left out.
    let src = include_str!("lib.rs");
    let code = src.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//")).count();
    assert!(code <= 150, "plugins/process/src/lib.rs has {code} lines of code");
}
