//! Bad plugins get a one-line reason; the host and the other plugins carry on.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn args<'a>(cfg: &'a str, dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--config", cfg, "--plugins-dir", dir];
    v.extend_from_slice(extra);
    v
}

fn line_about<'a>(text: &'a str, file: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(file))
        .unwrap_or_else(|| panic!("nothing said about {file}:\n{text}"))
}

#[test]
fn non_plugins_and_incompatible_plugins_are_refused_one_line_each_and_open_runs() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin(), incompatible_plugin()]);
    std::fs::copy("/usr/lib/x86_64-linux-gnu/libz.so.1", dir.path().join("libnotaplugin.so"))
        .or_else(|_| std::fs::copy("/lib/x86_64-linux-gnu/libz.so.1", dir.path().join("libnotaplugin.so")))
        .expect("copying a shared library that is not a plugin (libz, from zlib1g)");
    std::fs::write(dir.path().join("libgarbage.so"), b"not even ELF").unwrap();
    for f in ["libnotaplugin.so", "libgarbage.so"] {
        std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());

    let (code, out, err) = run_host(&args(c, d, &["--list-plugins"]), &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(line_about(&out, "libnotaplugin.so").contains("not a tracer plugin"), "{out}");
    assert!(line_about(&out, "libgarbage.so").contains("not a loadable shared library"), "{out}");
    let inc = line_about(&out, "libtracer_fixture_incompatible.so");
    assert!(inc.contains("built against an incompatible plugin API: type PluginInfo"), "{inc}");
    assert!(out.contains("probe opens: tracepoint"), "open still listed:\n{out}");
    // What the plugin declares is listed: its settings and its metrics.
    assert!(out.lines().any(|l| l.trim_start().starts_with("setting failed_only (bool")), "{out}");
    assert!(out.contains("    metric open_opens_total (counter, 1) {syscall,result}: "), "{out}");

    let (code, out, err) = run_host(&args(c, d, &["--plugin", "open", "--headless", "--format", "json", "--duration", "0.5"]), &[]);
    assert_eq!(code, Some(0), "{err}");
    for f in ["libnotaplugin.so", "libgarbage.so", "libtracer_fixture_incompatible.so"] {
        assert_eq!(err.lines().filter(|l| l.contains(f)).count(), 1, "one line about {f}:\n{err}");
    }
    assert!(out.contains("\"panel\":\"summary\""), "open ran:\n{out}");
}

#[test]
fn a_panic_in_the_plugin_constructor_is_reported_and_others_run() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin(), misbehaving_plugin()]);
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    let (code, out, err) = run_host(
        &args(c, d, &["--plugin", "open", "--headless", "--duration", "0.3"]),
        &[("TRACER_FIXTURE_MODE", "panic_new")],
    );
    assert_eq!(code, Some(0), "{err}");
    let l = line_about(&err, "libtracer_fixture_misbehaving.so");
    assert!(l.contains("plugin panicked in new: fixture panics in new as asked"), "{l}");
    assert!(out.contains("== open.summary"), "{out}");
}

#[test]
fn a_panic_while_handling_records_stops_only_that_plugin() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin(), misbehaving_plugin()]);
    // Only this test process's opens reach the misbehaving plugin, so it panics
    // exactly when the test says.
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("t.toml");
    std::fs::write(
        &cfg,
        format!("plugins_dir = \"unused\"\n[plugins.misbehaving]\npid = {}\n", std::process::id()),
    )
    .unwrap();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    let mut host = Host::spawn(
        &args(c, d, &["--plugin", "open", "--plugin", "misbehaving", "--headless", "--format", "json"]),
        &[("TRACER_FIXTURE_MODE", "panic_record")],
    );
    host.wait_for_stderr("open running");
    host.wait_for_stderr("misbehaving running");
    // open has 6-8 programs attached, misbehaving 2 (same program names).
    let before = links_of_programs("open_tp_").len();
    assert!(before >= 8, "{before} links");
    // Opens from this process reach the misbehaving plugin, which panics.
    for _ in 0..5 {
        let _ = std::fs::read("/etc/hostname");
    }
    host.wait_for_stderr("plugin panicked in on_record");
    std::thread::sleep(Duration::from_millis(300));
    let after = links_of_programs("open_tp_").len();
    assert_eq!(after, before - 2, "the faulty plugin's two links are detached, open's stay");
    let _ = std::fs::read("/etc/hostname");
    std::thread::sleep(Duration::from_millis(400));
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.contains("\"plugin\":\"open\"") && l.contains("/etc/hostname")), "open kept tracing");
    assert!(err.contains("misbehaving: stopped: plugin panicked in on_record"), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn a_verifier_rejection_quotes_the_end_of_the_verifier_log() {
    let _g = serial();
    let dir = plugin_dir(&[misbehaving_plugin()]);
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    let (code, _out, err) = run_host(
        &args(c, d, &["--plugin", "misbehaving", "--headless", "--duration", "0.3"]),
        &[("TRACER_FIXTURE_MODE", "verifier")],
    );
    assert_eq!(code, Some(1), "nothing could run: {err}");
    assert!(err.contains("the BPF verifier rejected program rejected_tp; end of its log:"), "{err}");
    assert!(err.contains("R0 invalid mem access 'map_value_or_null'"), "{err}");
}

#[test]
fn a_corrupt_bpf_object_is_reported() {
    let _g = serial();
    let dir = plugin_dir(&[misbehaving_plugin()]);
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    let (_, out, _) = run_host(&args(c, d, &["--list-plugins"]), &[("TRACER_FIXTURE_MODE", "corrupt_object")]);
    assert!(out.contains("cannot run here: the plugin's BPF object is not a valid BPF ELF object"), "{out}");
}

#[test]
fn writable_plugin_places_and_duplicate_names_are_refused() {
    let _g = serial();
    let cfg = default_config();
    let c = cfg.to_str().unwrap();

    let dir = plugin_dir(&[open_plugin()]);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run_host(&args(c, dir.path().to_str().unwrap(), &["--list-plugins"]), &[]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is writable by group or others (mode 777): chmod go-w it"), "{err}");

    let dir = plugin_dir(&[open_plugin()]);
    let copy = dir.path().join("libtracer_open_again.so");
    std::fs::copy(open_plugin(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o646)).unwrap();
    let (_, out, _) = run_host(&args(c, dir.path().to_str().unwrap(), &["--list-plugins"]), &[]);
    assert!(line_about(&out, "libtracer_open_again.so").contains("writable by group or others"), "{out}");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, out, _) = run_host(&args(c, dir.path().to_str().unwrap(), &["--list-plugins"]), &[]);
    assert!(line_about(&out, "libtracer_open_again.so").contains("a plugin named \"open\" is already loaded"), "{out}");
}

#[test]
fn bad_config_names_file_and_key_and_attaches_nothing() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "plugins_dir = \"x\"\n[ui]\nrefresh_hz = \"often\"\n").unwrap();
    let (code, out, err) = run_host(&["--config", bad.to_str().unwrap(), "--headless"], &[]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    let first = err.lines().next().unwrap();
    assert!(first.contains(bad.to_str().unwrap()) && first.contains("refresh_hz"), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());

    // A plugin setting the plugin refuses: the file and `plugins.NAME` are named.
    let dir = plugin_dir(&[open_plugin()]);
    std::fs::write(&bad, "plugins_dir = \"x\"\nenabled = [\"open\"]\n[plugins.open]\npidd = 3\n").unwrap();
    let (code, _, err) = run_host(&args(bad.to_str().unwrap(), dir.path().to_str().unwrap(), &["--headless"]), &[]);
    assert_eq!(code, Some(1));
    let first = err.lines().next().unwrap();
    assert!(first.contains(&format!("{}: key `plugins.open.pidd`: open has no setting \"pidd\"; did you mean pid?", bad.display())), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());

    // A layout naming a panel the plugin does not have: refused before attaching.
    std::fs::write(
        &bad,
        "plugins_dir = \"x\"\nenabled = [\"open\"]\n[[ui.tabs]]\nname = \"t\"\n[[ui.tabs.rows]]\npanels = [\"open.recnt\"]\n",
    )
    .unwrap();
    let (code, _, err) = run_host(&args(bad.to_str().unwrap(), dir.path().to_str().unwrap(), &["--headless"]), &[]);
    assert_eq!(code, Some(1), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains(&format!("{}: key `ui.tabs[0].rows[0].panels`: plugin open has no panel \"recnt\"", bad.display())), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn a_panic_in_any_entry_point_is_contained() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin(), misbehaving_plugin()]);
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    let both = ["--plugin", "open", "--plugin", "misbehaving", "--headless", "--format", "json", "--duration", "0.5"];
    // The host carries on with open; a plugin asked for that could not start
    // makes a headless run exit 1 at its end, for scripts to see.
    for (mode, expect, exit) in [
        ("panic_describe", "describe failed: plugin panicked in describe: fixture panics in describe as asked", 1),
        ("panic_configure", "plugin panicked in configure: fixture panics in configure as asked", 1),
        ("panic_panel", "plugin panicked in panel: fixture panics in panel as asked", 0),
    ] {
        let (code, out, err) = run_host(&args(c, d, &both), &[("TRACER_FIXTURE_MODE", mode)]);
        assert_eq!(code, Some(exit), "{mode}: {err}");
        assert!(err.contains(expect), "{mode}: {err}");
        assert!(out.contains("\"plugin\":\"open\",\"panel\":\"summary\""), "{mode}: open ran: {out}");
        assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new(), "{mode}");
    }
}
