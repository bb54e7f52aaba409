//! Every way the host can be stopped leaves no BPF link behind.

mod common;
use common::*;

fn start(dir: &std::path::Path) -> Host {
    let h = start_open_headless(dir, "json");
    assert!(!links_of_programs("open_tp_").is_empty(), "nothing attached while running");
    h
}

#[test]
fn sigint_sigterm_sighup_detach_everything() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP")] {
        let h = start(dir.path());
        h.signal(sig);
        let (code, _out, err) = h.finish();
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(err.contains(&format!("stopped by {name}; all programs detached")), "{err}");
        assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new(), "links left after {name}");
    }
}

#[test]
fn sigkill_leaves_nothing_attached_because_links_are_not_pinned() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let h = start(dir.path());
    h.signal(libc::SIGKILL);
    let (code, _, _) = h.finish();
    assert_eq!(code, None, "killed by a signal");
    // The kernel releases the links when the last fd closes, as the process dies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !links_of_programs("open_tp_").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn duration_ends_the_run_cleanly() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let cfg = default_config();
    let (code, out, err) = run_host(
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--plugins-dir",
            dir.path().to_str().unwrap(),
            "--plugin",
            "open",
            "--headless",
            "--format",
            "json",
            "--duration",
            "0.5",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.lines().any(|l| l.contains("\"panel\":\"summary\"")), "{out}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}
