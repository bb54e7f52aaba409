//! Hostile input and faults around the host: names and paths that carry
//! terminal controls, plugin files that are cut or rewritten, a stdout nobody
//! reads, a stderr that cannot be written, numbers that cannot be waited for,
//! typos, a low descriptor limit. Each gets a clear answer; none stops the host
//! in a way that leaves anything attached.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// tracer-host running only the open plugin from `dir`, headless, then `extra`.
fn open_host(dir: &tempfile::TempDir, extra: &[&str]) -> Command {
    let mut c = Command::new(host_bin());
    c.args(["--config", default_config().to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--plugin", "open"])
        .arg("--headless")
        .args(extra);
    c
}

fn config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let p = dir.path().join("test.toml");
    fs::write(&p, text).unwrap();
    p
}

/// A thread named `comm` opens `path` (bytes, not necessarily UTF-8).
fn open_as(comm: &[u8], path: &[u8]) {
    let comm = comm.to_vec();
    let path = std::ffi::CString::new(path.to_vec()).unwrap();
    std::thread::spawn(move || {
        let c = std::ffi::CString::new(comm).unwrap();
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0);
            libc::open(path.as_ptr(), libc::O_RDONLY);
        }
    })
    .join()
    .unwrap();
}

#[test]
fn terminal_controls_in_names_and_paths_are_shown_escaped() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    // ESC, OSC 52 (clipboard write), BEL, CR LF, right-to-left override, and
    // bytes that are no UTF-8.
    let path = b"/tmp/trc-\x1b]52;c;ZXZpbA==\x07-\r\n-\xe2\x80\xae-\xff\xfe-esc";
    let comm = b"tc\x1b[?1049l";
    for format in ["text", "json"] {
        let host = start_open_headless(dir.path(), format);
        open_as(comm, path);
        std::thread::sleep(Duration::from_millis(400));
        host.signal(libc::SIGTERM);
        let (code, out, err) = host.finish();
        assert_eq!(code, Some(0), "{err}");
        assert!(!out.bytes().any(|b| b == 0x1b || b == 0x07 || b == b'\r'), "{format}: raw control bytes reach the terminal");
        assert!(!out.contains('\u{202e}'), "{format}: raw bidi control");
        if format == "text" {
            let line = out.lines().find(|l| l.contains("trc-\\x1b]52")).unwrap_or_else(|| panic!("no record line:\n{out}"));
            assert!(line.contains("\\x0d\\x0a") && line.contains("\\u202e") && line.contains("tc\\x1b[?1049l"), "{line}");
        } else {
            let rec: serde_json::Value = out
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|v| v["path"].as_str().is_some_and(|p| p.starts_with("/tmp/trc-")))
                .unwrap_or_else(|| panic!("no record:\n{out}"));
            // Lossless: the exact bytes come back from path_hex.
            let hex = rec["path_hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            assert_eq!(bytes, path.to_vec());
            assert_eq!(rec["comm"], "tc\u{1b}[?1049l", "JSON keeps the text, escaped by JSON");
        }
    }
}

#[test]
fn a_cut_plugin_file_is_refused_and_one_rewritten_in_place_does_not_stop_the_host() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let full = fs::read(open_plugin()).unwrap();
    let cut = dir.path().join("libcut.so");
    // Inside its loadable segments (the code alone is megabytes).
    fs::write(&cut, &full[..100_000]).unwrap();
    fs::set_permissions(&cut, fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    let (code, out, err) = run_host(&["--config", c, "--plugins-dir", d, "--list-plugins"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let line = out.lines().find(|l| l.contains("libcut.so")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("truncated"), "{line}");
    fs::remove_file(&cut).unwrap();

    // Overwritten in place (same inode, as `cp` does) while loaded.
    let host = start_open_headless(dir.path(), "json");
    let loaded = dir.path().join("libtracer_open.so");
    let mut f = fs::OpenOptions::new().write(true).truncate(true).open(&loaded).unwrap();
    std::io::Write::write_all(&mut f, &full[..4096]).unwrap();
    drop(f);
    open_as(b"trc-after", b"/tmp/trc-after-rewrite");
    std::thread::sleep(Duration::from_millis(400));
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "the host runs on from its own copy: {err}");
    assert!(out.contains("/tmp/trc-after-rewrite"), "records still decoded");
    assert!(err.contains("open: ") && err.contains("records"), "the final report: {err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn a_stdout_nobody_reads_does_not_stop_signals_or_detaching() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    // A pipe whose read end stays open and is never read.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_end, write_end) = (fds[0], fds[1]);
    let mut host = open_host(&dir, &["--format", "json", "--duration", "3"])
        .stdin(Stdio::null())
        .stdout(unsafe { <Stdio as std::os::fd::FromRawFd>::from_raw_fd(write_end) })
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // 200,000 opens: far more than a pipe (64 KiB) and the host's queue hold.
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("x");
    fs::write(&f, "x").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let st = Command::new(workload_bin()).args(["open", f.to_str().unwrap(), "200000"]).stdout(Stdio::null()).status().unwrap();
    assert!(st.success());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = host.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the host did not stop at --duration with stdout blocked");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(host.stderr.as_mut().unwrap(), &mut err).unwrap();
    unsafe { libc::close(read_end) };
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("output backlog"), "the records not written are counted and said:\n{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

#[test]
fn a_stderr_that_cannot_be_written_is_no_reason_to_fail() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    let st = open_host(&dir, &["--format", "json", "--duration", "0.5"])
        .stdout(Stdio::null())
        .stderr(fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(0), "{st}");
}

#[test]
fn durations_and_rates_that_cannot_be_waited_for_are_refused_up_front() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let cfg = default_config();
    let (c, d) = (cfg.to_str().unwrap(), dir.path().to_str().unwrap());
    for bad in ["-1", "nan", "inf", "1e300", "0"] {
        let flag = format!("--duration={bad}");
        let (code, _, err) = run_host(&["--config", c, "--plugins-dir", d, "--plugin", "open", "--headless", &flag], &[]);
        assert_eq!(code, Some(2), "{bad}: {err}");
        assert!(err.contains("--duration") && !err.contains("panicked"), "{bad}: {err}");
    }
    let cdir = tempfile::tempdir().unwrap();
    for hz in ["1e-308", "1e-12"] {
        let bad = config(&cdir, &format!("plugins_dir = \"{d}\"\nenabled = [\"open\"]\n[ui]\nrefresh_hz = {hz}\n"));
        let (code, _, err) = run_host(&["--config", bad.to_str().unwrap(), "--headless", "--duration", "0.3"], &[]);
        assert_eq!(code, Some(1), "{hz}: {err}");
        assert!(err.contains("key `ui.refresh_hz`") && err.contains("out of range"), "{hz}: {err}");
    }
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

/// Run the open plugin named `times` times in `enabled`; returns the id of its
/// attached entry program and stderr.
fn attached_open_id(dir: &std::path::Path, times: usize) -> (u32, String) {
    let cdir = tempfile::tempdir().unwrap();
    let names = vec!["\"open\""; times].join(", ");
    let cfg = config(&cdir, &format!("plugins_dir = \"{}\"\nenabled = [{names}]\n", dir.display()));
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--headless"], &[]);
    host.wait_for_stderr("open running");
    let id = libbpf_rs::query::ProgInfoIter::default()
        .filter(|p| p.name.to_string_lossy() == "open_tp_enter_o")
        .map(|p| p.id)
        .max()
        .expect("open attached");
    host.signal(libc::SIGTERM);
    let (code, _, err) = host.finish();
    assert_eq!(code, Some(0), "{err}");
    (id, err)
}

#[test]
fn a_plugin_named_many_times_is_loaded_once() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    // Program ids are handed out in increasing order: the ids a run takes
    // before its program attaches count what it loaded (libbpf's feature
    // probes included). Named once, then named 20 times: the same.
    let (first, _) = attached_open_id(dir.path(), 1);
    let (once, _) = attached_open_id(dir.path(), 1);
    let (twenty, err) = attached_open_id(dir.path(), 20);
    let per_run = once - first;
    assert!(twenty - once <= per_run + 4, "named 20 times: {} program ids, named once: {per_run}", twenty - once);
    assert_eq!(err.matches("open running").count(), 1, "{err}");
    assert_eq!(err.matches("open: ").count(), 1, "one report line: {err}");
}

#[test]
fn a_typo_in_a_plugin_table_or_a_missing_plugin_is_said_and_fails_a_headless_run() {
    let _g = serial();
    let dir = plugin_dir(&[open_plugin()]);
    let d = dir.path().display();
    let cdir = tempfile::tempdir().unwrap();
    let cfg = config(&cdir, &format!("plugins_dir = \"{d}\"\nenabled = [\"open\"]\n[plugins.opne]\nfailed_only = true\n"));
    let (code, _, err) = run_host(&["--config", cfg.to_str().unwrap(), "--headless", "--duration", "0.3"], &[]);
    assert_eq!(code, Some(1), "{err}");
    let first = err.lines().find(|l| l.contains("error")).unwrap_or("");
    assert!(first.contains("key `plugins.opne`") && first.contains("did you mean `plugins.open`"), "{err}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new(), "nothing attached");

    let cfg = config(&cdir, &format!("plugins_dir = \"{d}\"\nenabled = [\"open\"]\n"));
    let (code, out, err) =
        run_host(&["--config", cfg.to_str().unwrap(), "--plugin", "open", "--plugin", "nosuch", "--headless", "--format", "json", "--duration", "0.3"], &[]);
    assert_eq!(code, Some(1), "a plugin asked for that did not run: {err}");
    assert!(err.contains("no plugin named \"nosuch\""), "{err}");
    assert!(out.contains("\"plugin\":\"open\",\"panel\":\"summary\""), "open ran: {out}");
}

#[test]
fn a_low_open_files_limit_is_raised() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    let mut cmd = open_host(&dir, &["--duration", "0.3"]);
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 24, rlim_max: 4096 };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("open running (tracepoint)"), "{err}");
}
