//! The terminal UI in a real terminal (tmux): it shows the open tracer's panels,
//! a filter typed with `f` reaches the kernel, and `q` or SIGTERM restore the
//! terminal and leave no link attached.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(cmd: &str) -> Tmux {
        Tmux::start_sized(cmd, 120, 40)
    }
    fn start_sized(cmd: &str, w: u16, h: u16) -> Tmux {
        let session = format!("tracer-test-{}", std::process::id());
        let st = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", &w.to_string(), "-y", &h.to_string(), cmd])
            .status()
            .expect("tmux is needed for this test (cargo xtask setup installs it)");
        assert!(st.success());
        Tmux { session }
    }
    fn capture(&self) -> String {
        let o = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    fn alternate_screen_on(&self) -> bool {
        let o = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.session, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim() == "1"
    }
    fn keys(&self, keys: &[&str]) {
        Command::new("tmux").args(["send-keys", "-t", &self.session]).args(keys).status().unwrap();
    }
    fn literal(&self, text: &str) {
        Command::new("tmux").args(["send-keys", "-t", &self.session, "-l", text]).status().unwrap();
    }
    /// A mouse event as an xterm SGR sequence (what terminals send once the
    /// program turns mouse reporting on); `x`, `y` from 0.
    fn mouse(&self, button: u8, x: usize, y: usize, press: bool) {
        let seq = format!("\x1b[<{button};{};{}{}", x + 1, y + 1, if press { 'M' } else { 'm' });
        let hex: Vec<String> = seq.bytes().map(|b| format!("{b:02x}")).collect();
        Command::new("tmux").args(["send-keys", "-t", &self.session, "-H"]).args(&hex).status().unwrap();
    }
    fn click(&self, x: usize, y: usize) {
        self.mouse(0, x, y, true);
        self.mouse(0, x, y, false);
    }
    fn wheel_down(&self, x: usize, y: usize) {
        self.mouse(65, x, y, true);
    }
    /// Waits until `text` is gone from the screen (a cleared search, a closed
    /// overlay): the next key must not arrive in the same read as the last.
    fn wait_gone(&self, text: &str) {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if !screen.contains(text) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "screen kept showing {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if screen.contains(text) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "screen never showed {text:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

fn host_cmd(dir: &std::path::Path) -> String {
    format!(
        "{} --config {} --plugins-dir {}; echo EXITED rc=$?; sleep 60",
        host_bin().display(),
        default_config().display(),
        dir.display()
    )
}

#[test]
fn panels_show_keys_work_and_q_restores_the_terminal() {
    let _g = serial();
    assert_root();
    let all: Vec<_> = ["open", "syscall_latency", "sched", "tcp"].iter().map(|p| staged_plugin(p)).collect();
    let dir = plugin_dir(&all);
    let t = Tmux::start(&host_cmd(dir.path()));
    t.wait_for("open · Recent opens");
    let screen = t.wait_for("[tracepoint]");
    // The default config's first tab: one panel of each tracer.
    for title in ["syscall_latency · Syscalls by total time", "sched · Processes (last interval)", "tcp · Closed connections"] {
        assert!(screen.contains(title), "{screen}");
    }
    for status in ["syscall_latency", "sched", "tcp"] {
        assert!(screen.contains(&format!(" {status} ")), "status line names {status}:\n{screen}");
    }
    assert!(t.alternate_screen_on());

    t.keys(&["?"]);
    t.wait_for("show or hide this help");
    t.keys(&["?"]);

    // A kernel filter set from the UI: only `cat` from now on. (tmux itself
    // opens files all the time; the filter also keeps it off the screen.)
    t.keys(&["f"]);
    t.literal("comm=cat");
    t.keys(&["Enter"]);
    t.wait_for("open: filter set: comm=cat");
    t.keys(&["r"]);
    let work = tempfile::tempdir().unwrap();
    let other = work.path().join("tui-not-cat");
    let _ = std::fs::read(&other);
    let by_cat = work.path().join("tui-by-cat");
    let _ = Command::new("cat").arg(&by_cat).stderr(std::process::Stdio::null()).status();
    // Zoomed, the focused panel (open's recent opens) shows whole paths.
    t.keys(&["1", "z"]);
    let screen = t.wait_for(by_cat.to_str().unwrap());
    assert!(screen.contains("ENOENT"), "{screen}");
    assert!(!screen.contains(other.to_str().unwrap()), "filtered out in the kernel:\n{screen}");
    assert!(!screen.contains("sched · "), "zoom shows one panel:\n{screen}");
    t.keys(&["z"]);
    t.wait_for("sched · Processes");

    // Tabs: the tcp tab has the live connections.
    t.keys(&["]", "]", "]", "]"]);
    t.wait_for("tcp · Live connections");

    assert!(!links_of_programs("open_tp_").is_empty());
    assert!(!links_of_programs("sched_").is_empty());
    t.keys(&["q"]);
    let screen = t.wait_for("EXITED rc=0");
    assert!(!t.alternate_screen_on(), "terminal left in the alternate screen:\n{screen}");
    for prefix in ["open_tp_", "sc_", "sched_", "tcp_"] {
        assert_eq!(links_of_programs(prefix), Vec::<u32>::new(), "{prefix}* left attached");
    }
}

#[test]
fn panels_switch_off_and_on_and_a_dropped_in_plugin_appears() {
    let _g = serial();
    assert_root();
    // tcp is not there at start: it is dropped in while the host runs.
    let start: Vec<_> = ["open", "syscall_latency", "sched"].iter().map(|p| staged_plugin(p)).collect();
    let dir = plugin_dir(&start);
    let t = Tmux::start(&host_cmd(dir.path()));
    t.wait_for("sched · Processes (last interval)");
    let screen = t.wait_for("no loaded plugin offers panel tcp.closed");
    // Not in the status line (the tab bar names the config's tcp tab anyway).
    assert!(!screen.lines().next().unwrap_or("").contains(" tcp "), "{screen}");

    // Installed the recommended way: copied beside, then renamed into place.
    let tmp = dir.path().join(".libtracer_tcp.so.part");
    std::fs::copy(staged_plugin("tcp"), &tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, dir.path().join("libtracer_tcp.so")).unwrap();
    t.wait_for("tcp · Closed connections");
    assert!(!links_of_programs("tcp_").is_empty(), "the new plugin is attached");

    // A file that is no plugin is reported in the status line and ignored.
    let junk = dir.path().join(".libjunk.so.part");
    std::fs::write(&junk, b"not a plugin").unwrap();
    std::fs::rename(&junk, dir.path().join("libjunk.so")).unwrap();
    t.wait_for("libjunk.so: not a loadable shared library");

    // The picker lists every panel; switching off all of sched's detaches it.
    t.keys(&["c"]);
    let screen = t.wait_for("Space toggles");
    let lines: Vec<&str> = screen.lines().collect();
    let first = lines.iter().position(|l| l.contains("open.recent")).expect("picker lists open.recent");
    let sched: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("] sched."))
        .map(|(i, _)| i - first)
        .collect();
    assert!(!sched.is_empty(), "{screen}");
    let mut at = 0;
    for &i in &sched {
        for _ in at..i {
            t.keys(&["j"]);
        }
        at = i;
        t.keys(&["Space"]);
    }
    t.wait_for("sched: all panels off, programs detached");
    assert_eq!(links_of_programs("sched_"), Vec::<u32>::new(), "sched's programs detached");
    t.keys(&["Space"]);
    t.wait_for("sched: attached again");
    assert!(!links_of_programs("sched_").is_empty());
    t.keys(&["Escape"]);

    // Removing a plugin file switches its plugin off.
    std::fs::remove_file(dir.path().join("libtracer_tcp.so")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !links_of_programs("tcp_").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(links_of_programs("tcp_"), Vec::<u32>::new(), "tcp switched off when its file went");

    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    assert!(!t.alternate_screen_on());
    for prefix in ["open_tp_", "sc_", "sched_", "tcp_"] {
        assert_eq!(links_of_programs(prefix), Vec::<u32>::new(), "{prefix}* left attached");
    }
}

/// The TUI with only the open tracer, once it shows its attach mode; returns
/// the plugins directory (kept alive), the terminal and the screen.
fn open_tui() -> (tempfile::TempDir, Tmux, String) {
    let dir = plugin_dir(&[open_plugin()]);
    let t = Tmux::start(&host_cmd(dir.path()));
    let screen = t.wait_for("[tracepoint]");
    (dir, t, screen)
}

/// The newest tracer-host is the test's own (tests in this binary run one at a time).
fn newest_host_pid() -> i32 {
    let out = Command::new("pgrep").args(["-n", "-x", "tracer-host"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().next().expect("host pid").trim().parse().unwrap()
}

#[test]
fn sigterm_in_the_tui_restores_the_terminal() {
    let _g = serial();
    assert_root();
    let (_dir, t, _) = open_tui();
    let pid = newest_host_pid();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    t.wait_for("EXITED rc=0");
    assert!(!t.alternate_screen_on());
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

/// Run the TUI with `env` and `args` until it dies of itself, then report how
/// the terminal was left: the shell prints the exit code and whether the tty is
/// still in raw mode (-icanon).
fn crash_run(env: &str, args: &str, files: &[std::path::PathBuf]) -> (Tmux, String) {
    let dir = plugin_dir(files);
    let cmd = format!(
        "env RUST_BACKTRACE=0 {env} {} --config {} --plugins-dir {} {args}; echo EXITED rc=$?; \
         if stty -a | grep -q -- ' -icanon'; then echo TTY RAW; else echo TTY COOKED; fi; sleep 60",
        host_bin().display(),
        default_config().display(),
        dir.path().display()
    );
    let t = Tmux::start(&cmd);
    let start = Instant::now();
    loop {
        // Opens by anyone reach the fixture; make sure there are some.
        let _ = std::fs::read("/etc/hostname");
        let screen = t.capture();
        if screen.contains("TTY ") {
            return (t, screen);
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the host did not end:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_restored_and_detached(t: &Tmux, screen: &str, rc: i32) {
    assert!(screen.contains(&format!("EXITED rc={rc}")), "{screen}");
    assert!(screen.contains("TTY COOKED"), "raw mode left on:\n{screen}");
    assert!(!t.alternate_screen_on(), "terminal left in the alternate screen:\n{screen}");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new(), "links left attached");
}

#[test]
fn a_panic_in_the_host_restores_the_terminal_and_detaches() {
    let _g = serial();
    assert_root();
    // Debug builds panic at the first refresh when asked (TRACER_HOST_FAULT).
    let (t, screen) = crash_run("TRACER_HOST_FAULT=panic", "--plugin open", &[open_plugin()]);
    assert!(screen.contains("host fault injected"), "the panic message is readable:\n{screen}");
    assert_restored_and_detached(&t, &screen, 101);
}

#[test]
fn a_plugin_that_aborts_or_faults_leaves_the_terminal_restored_and_nothing_attached() {
    let _g = serial();
    assert_root();
    // No unwinding here: abort() and a null-pointer write end the process at
    // once; the fatal-signal handlers restore the terminal, the kernel
    // detaches the links as the fds close.
    for (mode, rc) in [("abort_record", 128 + libc::SIGABRT), ("segv_record", 128 + libc::SIGSEGV)] {
        let (t, screen) =
            crash_run(&format!("TRACER_FIXTURE_MODE={mode}"), "--plugin misbehaving", &[misbehaving_plugin()]);
        assert_restored_and_detached(&t, &screen, rc);
        drop(t);
    }
}

#[test]
fn events_lost_in_a_stall_show_in_the_status_line() {
    let _g = serial();
    assert_root();
    let (_dir, t, screen) = open_tui();
    assert!(screen.contains("drop 0 "), "{screen}");
    let pid = newest_host_pid();
    // A stalled host (SIGSTOP) and a burst far larger than the 4 MiB ring.
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("stall");
    std::fs::write(&path, b"x").unwrap();
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let st = Command::new(workload_bin())
        .args(["open", path.to_str().unwrap(), "100000"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(st.success());
    let start = Instant::now();
    let dropped = loop {
        let screen = t.capture();
        let n = screen
            .split("/s drop ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n.filter(|&n| n > 0) {
            break n;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no drops shown:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(dropped < 100_000, "{dropped}");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(15), "{what} did not happen within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Install a plugin the recommended way: copied beside, renamed into place.
fn install(dir: &std::path::Path, plugin: &std::path::Path) {
    let name = plugin.file_name().unwrap().to_str().unwrap();
    let tmp = dir.join(format!(".{name}.part"));
    std::fs::copy(plugin, &tmp).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn hot_plug_follows_a_symlinked_directory_and_one_made_anew() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    let links = tempfile::tempdir().unwrap();
    let via = links.path().join("plugins-link");
    std::os::unix::fs::symlink(dir.path(), &via).unwrap();
    let t = Tmux::start(&host_cmd(&via));
    t.wait_for("[tracepoint]");

    install(dir.path(), &staged_plugin("tcp"));
    wait_until("tcp attached", || !links_of_programs("tcp_").is_empty());
    std::thread::sleep(Duration::from_millis(1000));
    let screen = t.capture();
    assert!(!screen.contains("already loaded"), "a rename is one install, not two:\n{screen}");

    // Removed, as seen through the symlink: switched off.
    std::fs::remove_file(dir.path().join("libtracer_tcp.so")).unwrap();
    wait_until("tcp detached after its file went", || links_of_programs("tcp_").is_empty());
    let screen = t.wait_for(" tcp removed");
    assert!(!screen.contains("FAILED"), "a plugin removed on purpose has not failed:
{screen}");

    // The directory goes, and comes back with a plugin in it.
    let real = dir.path().to_path_buf();
    std::fs::remove_dir_all(&real).unwrap();
    t.wait_for("was removed");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    install(&real, &staged_plugin("sched"));
    wait_until("sched attached from the new directory", || !links_of_programs("sched_").is_empty());
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    for prefix in ["open_tp_", "sched_", "tcp_"] {
        assert_eq!(links_of_programs(prefix), Vec::<u32>::new(), "{prefix}* left attached");
    }
}

#[test]
fn the_picker_starts_a_plugin_that_was_not_enabled_at_start() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin(), staged_plugin("tcp")]);
    let t = Tmux::start(&format!(
        "{} --config {} --plugins-dir {} --plugin open; echo EXITED rc=$?; sleep 60",
        host_bin().display(),
        default_config().display(),
        dir.path().display()
    ));
    t.wait_for("[tracepoint]");
    assert!(links_of_programs("tcp_").is_empty());
    t.keys(&["c"]);
    let screen = t.wait_for("Space toggles");
    let lines: Vec<&str> = screen.lines().collect();
    let first = lines.iter().position(|l| l.contains("open.recent")).expect("picker lists open.recent");
    let tcp = lines.iter().position(|l| l.contains("] tcp.closed")).unwrap_or_else(|| panic!("{screen}"));
    assert!(lines[tcp].contains("[ ]"), "a panel of a plugin not running shows as off: {}", lines[tcp]);
    for _ in first..tcp {
        t.keys(&["j"]);
    }
    t.keys(&["Space"]);
    t.wait_for("tcp: started");
    assert!(!links_of_programs("tcp_").is_empty(), "tcp attached from the picker");
    t.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    assert_eq!(links_of_programs("tcp_"), Vec::<u32>::new());
}

#[test]
fn raw_stderr_output_never_reaches_the_screen() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    let t = Tmux::start(&format!("TRACER_FIXTURE_MODE=stderr_new {}", host_cmd(dir.path())));
    t.wait_for("[tracepoint]");
    // A plugin whose constructor writes to stderr, dropped in while the UI runs.
    install(dir.path(), &misbehaving_plugin());
    t.wait_for(" misbehaving ");
    std::thread::sleep(Duration::from_millis(500));
    let screen = t.capture();
    // Only ever as a log line, escaped (the status line may show it).
    for l in screen.lines().filter(|l| l.contains("FIXTURE-STDERR")) {
        assert!(l.contains("FIXTURE-STDERR\\x1b[7m"), "raw stderr drawn on the screen (or its control acted on):\n{screen}");
    }
    t.keys(&["q"]);
    let after = t.wait_for("EXITED rc=0");
    assert!(after.contains("FIXTURE-STDERR\\x1b[7m"), "the captured line is printed, escaped, after the UI ends:\n{after}");
}

#[test]
fn in_a_pid_namespace_the_host_leaves_its_own_opens_out() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    // The UI reads /proc/self/stat at every refresh: opens of its own.
    let t = Tmux::start(&format!("unshare --pid --fork --mount-proc {}", host_cmd(dir.path())));
    t.wait_for("[tracepoint]");
    std::thread::sleep(Duration::from_millis(2500));
    let screen = t.capture();
    assert!(screen.contains("Recent opens"), "{screen}");
    assert!(!screen.contains("tracer-host"), "the host's own opens are shown:\n{screen}");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    assert_eq!(links_of_programs("open_tp_"), Vec::<u32>::new());
}

/// Puts a sysctl back when dropped.
struct Sysctl(&'static str, String);
impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::write(self.0, &self.1);
    }
}

#[test]
fn a_plugin_added_after_inotify_lost_events_is_still_loaded() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    // A 16-event queue for inotify instances made now (the host's); put back
    // as soon as the host has its watch.
    let knob = "/proc/sys/fs/inotify/max_queued_events";
    let guard = Sysctl(knob, std::fs::read_to_string(knob).unwrap());
    std::fs::write(knob, "16").unwrap();
    let t = Tmux::start(&host_cmd(dir.path()));
    t.wait_for("[tracepoint]");
    drop(guard);
    // The host stopped while 2,000 files appear and the plugin is renamed in:
    // the queue overflows and the rename's own event is lost.
    let pid = newest_host_pid();
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    for i in 0..2000 {
        std::fs::write(dir.path().join(format!("f{i}.txt")), "").unwrap();
    }
    install(dir.path(), &staged_plugin("tcp"));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    wait_until("tcp loaded after the overflow", || !links_of_programs("tcp_").is_empty());
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    assert_eq!(links_of_programs("tcp_"), Vec::<u32>::new());
}

/// The README's plugin tutorial, for real: the example plugin
/// (plugins/kit/example) copied outside the repository, built there with
/// only tracer-plugin-api and the kit as dependencies, and dropped into a
/// running host, where its panel shows the fork this test makes.
#[test]
fn a_plugin_built_outside_the_repository_drops_into_a_running_host() {
    let _g = serial();
    assert_root();
    let repo = repo();
    let src = tempfile::tempdir().unwrap();
    let crate_dir = src.path().join("forks");
    let status = Command::new("cp").arg("-r").arg(repo.join("plugins/kit/example")).arg(&crate_dir).status().unwrap();
    assert!(status.success());
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let manifest = manifest
        .replace("path = \"../../../plugin-api\"", &format!("path = {:?}", repo.join("plugin-api")))
        .replace("path = \"..\"", &format!("path = {:?}", repo.join("plugins/kit")));
    assert!(manifest.contains("[workspace]") && !manifest.contains("abi_stable"), "its own crate, no abi_stable of its own");
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    // The same versions as the repository's (and no network needed).
    std::fs::copy(repo.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    // A target dir of its own (the one the ABI fixture uses): the repository's
    // is locked by the cargo running this test.
    let target = repo.join("target/fixtures");
    let out = Command::new(env!("CARGO"))
        .args(["build", "--offline", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(out.status.success(), "building the out-of-tree plugin failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let built = target.join("debug/libtracer_forks.so");

    let dir = plugin_dir(&[staged_plugin("syscall_latency")]);
    let t = Tmux::start(&host_cmd(dir.path()));
    t.wait_for("syscall_latency");
    install(dir.path(), &built);
    // A new plugin's panels get a tab of their own, after the shipped ones:
    // `[` from the first goes there.
    let shipped = std::fs::read_to_string(default_config()).unwrap().matches("[[ui.tabs]]").count();
    // Its digit: 1-9, 0 for the tenth tab, none past it.
    let label = match shipped + 1 {
        n @ 1..=9 => format!("{n} forks"),
        10 => "0 forks".to_string(),
        _ => "│forks".to_string(),
    };
    t.wait_for(&label);
    t.keys(&["["]);
    t.wait_for("forks · Recent forks");
    assert!(!links_of_programs("forks_").is_empty(), "the new plugin is attached");
    let child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id().to_string();
    let parent = std::process::id().to_string();
    let start = Instant::now();
    loop {
        let screen = t.capture();
        if screen.lines().any(|l| l.split_whitespace().any(|w| w == pid) && l.split_whitespace().any(|w| w == parent)) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the fork of {pid} by {parent} never showed:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    assert_eq!(links_of_programs("forks_"), Vec::<u32>::new());
}

#[test]
fn with_no_arguments_the_built_in_config_runs_every_tracer() {
    let _g = serial();
    assert_root();
    // No --config, no --plugins-dir: the plugins staged beside the binary.
    // 80x24, where pids used to be cut.
    let t = Tmux::start_sized(&format!("{}; echo EXITED rc=$?; sleep 60", host_bin().display()), 80, 24);
    for p in ALL_TRACERS {
        t.wait_for(&format!(" {p} "));
    }
    let screen = t.wait_for("1 overview");
    // Each running plugin has a status chunk "NAME RATE/s drop N".
    assert_eq!(screen.matches("/s drop ").count(), ALL_TRACERS.len(), "{screen}");
    assert!(screen.contains("open · Recent opens") && !screen.contains("FAILED"), "{screen}");
    // A process opening a file over and over: its pid is in the recent opens,
    // whole (with spaces or a border on both sides).
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut w = Command::new(workload_bin()).args(["--comm", "cutcheck", "open", file.path().to_str().unwrap(), "100000000"]).spawn().unwrap();
    let pid = w.id().to_string();
    let screen = t.wait_for(" cutcheck");
    let _ = w.kill();
    let _ = w.wait();
    let whole = screen.lines().any(|l| l.split(|c: char| c == ' ' || c == '│').any(|tok| tok == pid));
    assert!(whole, "pid {pid} shown whole at 80x24:\n{screen}");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

/// The `pid` of the process filter in every BPF map named `map`, as bpftool
/// reads it with the map's BTF (None: no such map).
fn filter_pids(map: &str) -> Vec<u64> {
    let o = Command::new("bpftool").args(["-j", "map", "dump", "name", map]).output().expect("bpftool (cargo xtask setup installs it)");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    fn find(v: &serde_json::Value, out: &mut Vec<u64>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(p) = m.get("pid").and_then(|p| p.as_u64()) {
                    out.push(p);
                }
                m.values().for_each(|x| find(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| find(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    find(&v, &mut out);
    out
}

#[test]
fn enter_on_a_process_pivots_every_tracer_in_the_kernel_and_esc_restores() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&["open", "syscall_latency", "sched", "tcp"].map(staged_plugin));
    let t = Tmux::start_sized(&format!("{} --plugins-dir {}; echo EXITED rc=$?; sleep 60", host_bin().display(), dir.path().display()), 200, 60);
    t.wait_for("[tracepoint]");
    let mut spin = Command::new(workload_bin()).args(["--comm", "pivotme", "spin", "30"]).spawn().unwrap();
    let pid = spin.id() as u64;
    // The sched tab: its process table (the second row of panels), found by
    // searching for the name; the pivot is one key from there.
    t.keys(&["4"]);
    t.wait_for("sched · Processes");
    t.keys(&["Tab", "Tab", "Tab"]);
    t.keys(&["/"]);
    t.literal("pivotme");
    t.keys(&["Enter"]);
    t.wait_for("/pivotme");
    // Its row (the spinner names itself after exec: the first refresh may
    // still call it tracer-workload), then the selection.
    t.wait_for(" pivotme ");
    t.keys(&["Down"]);
    t.wait_for("1/1");
    t.keys(&["Enter"]);
    t.wait_for(&format!("▶ pid {pid} pivotme"));
    // The footer is drawn after the tab line: waited for on its own (a
    // capture can fall in the middle of a redraw).
    t.wait_for("4 filtered");
    for map in ["open_filter", "sc_filter", "sched_filter", "tcp_filter"] {
        assert_eq!(filter_pids(map), vec![pid], "{map} holds the pivot's pid");
    }
    // Esc: the search first, then the pivot; every filter as it was. Two
    // ESC bytes read together are one Esc to crossterm (it takes ESC ESC as
    // an escaped Esc), so the second is sent once the first has been seen.
    t.keys(&["Escape"]);
    t.wait_gone("/pivotme");
    t.keys(&["Escape"]);
    t.wait_for("undone");
    for map in ["open_filter", "sc_filter", "sched_filter", "tcp_filter"] {
        assert_eq!(filter_pids(map), vec![0], "{map} is back to no pid filter");
    }
    let _ = spin.kill();
    let _ = spin.wait();
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

/// Line and column (in cells) of the first `text` on the screen.
fn locate(screen: &str, text: &str) -> Option<(usize, usize)> {
    screen.lines().enumerate().find_map(|(y, l)| l.find(text).map(|i| (l[..i].chars().count(), y)))
}

/// `k/N` on the bottom border of the panel drawn between lines `top` and
/// the first border line below it, at the columns from `x`.
fn selection_on_border(screen: &str, below: usize, x: usize) -> Option<(usize, usize)> {
    let line = screen.lines().skip(below).find(|l| l.chars().nth(x) == Some('└'))?;
    let tail: String = line.chars().skip(x).collect();
    let end = tail.find('┘').unwrap_or(tail.len());
    let words: Vec<&str> = tail[..end].split(|c: char| c == '─' || c == ' ').filter(|w| !w.is_empty()).collect();
    words.iter().find_map(|w| {
        let (k, n) = w.split_once('/')?;
        Some((k.parse().ok()?, n.parse().ok()?))
    })
}

#[test]
fn clicks_pick_tabs_and_rows_and_the_wheel_scrolls() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&["open", "sched"].map(staged_plugin));
    let t = Tmux::start_sized(&format!("{} --plugins-dir {}; echo EXITED rc=$?; sleep 60", host_bin().display(), dir.path().display()), 120, 40);
    let screen = t.wait_for("[tracepoint]");
    let mut spin = Command::new(workload_bin()).args(["--comm", "clickme", "spin", "30"]).spawn().unwrap();
    let pid = spin.id();
    // A click on the tab title: its panels appear.
    let (x, y) = locate(&screen, "4 sched").unwrap_or_else(|| panic!("no sched tab:\n{screen}"));
    t.click(x + 2, y);
    t.wait_for("sched · Processes (totals)");
    let screen = t.wait_for("clickme");
    let (top_x, top_y) = locate(&screen, "┌sched · Processes (totals)").unwrap();
    let row_y = |screen: &str| screen.lines().enumerate().skip(top_y).find(|(_, l)| l.contains("clickme")).map(|(y, _)| y).unwrap_or_else(|| panic!("{screen}"));
    // The wheel over the totals focuses it and moves its selection three
    // rows at a time (from none: the third row).
    t.wheel_down(top_x + 3, row_y(&screen));
    let start = Instant::now();
    loop {
        let screen = t.capture();
        match selection_on_border(&screen, top_y, top_x) {
            Some((k, n)) if k == 3.min(n) => break,
            other => assert!(start.elapsed() < Duration::from_secs(10), "selection {other:?}, want 3:\n{screen}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A click on the spinner's row selects it: Enter pivots on it.
    let screen = t.capture();
    t.click(top_x + 3, row_y(&screen));
    t.keys(&["Enter"]);
    t.wait_for(&format!("▶ pid {pid} clickme"));
    t.keys(&["Escape"]);
    t.wait_for("undone");
    let _ = spin.kill();
    let _ = spin.wait();
    t.keys(&["q"]);
    let screen = t.wait_for("EXITED rc=0");
    // Mouse reporting is off again: the shell's screen, no stray sequences.
    assert!(!screen.contains("[<"), "{screen}");
}

#[test]
fn g_groups_rows_by_process_name_and_back() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&["sched"].map(staged_plugin));
    let t = Tmux::start_sized(&format!("{} --plugins-dir {}; echo EXITED rc=$?; sleep 60", host_bin().display(), dir.path().display()), 160, 50);
    t.wait_for("[tp_btf]");
    t.keys(&["4"]);
    t.wait_for("Processes (totals)");
    // Three processes of one made-up name: three rows per pid.
    let mut spins: Vec<_> = (0..3).map(|_| Command::new(workload_bin()).args(["--comm", "grouptrio", "spin", "20"]).spawn().unwrap()).collect();
    let in_totals = |screen: &str| -> Vec<String> {
        let top = screen.lines().position(|l| l.contains("Processes (totals)")).unwrap_or_else(|| panic!("{screen}"));
        screen.lines().skip(top + 1).take_while(|l| !l.starts_with('└')).filter(|l| l.contains("grouptrio")).map(str::to_string).collect()
    };
    let start = Instant::now();
    while in_totals(&t.capture()).len() < 3 {
        assert!(start.elapsed() < Duration::from_secs(15), "{}", t.capture());
        std::thread::sleep(Duration::from_millis(100));
    }
    t.keys(&["g"]);
    // Polled: a capture may catch the terminal halfway through a redraw.
    let start = Instant::now();
    let (screen, rows) = loop {
        let screen = t.capture();
        let rows = in_totals(&screen);
        if screen.contains("by name") && rows.len() == 1 {
            break (screen, rows);
        }
        assert!(start.elapsed() < Duration::from_secs(10), "one row for the name, not {rows:?}:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // PIDS is the first column: the three processes.
    assert_eq!(rows[0].trim_start_matches('│').split_whitespace().next(), Some("3"), "{screen}");
    assert!(screen.contains("PIDS"), "{screen}");
    t.keys(&["g"]);
    t.wait_for("rows per pid");
    let start = Instant::now();
    while in_totals(&t.capture()).len() != 3 {
        assert!(start.elapsed() < Duration::from_secs(10), "per pid again:\n{}", t.capture());
        std::thread::sleep(Duration::from_millis(100));
    }
    for s in &mut spins {
        let _ = s.kill();
        let _ = s.wait();
    }
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

/// Run-queue wait so far of `pid`, from the kernel's own accounting
/// (`/proc/PID/schedstat`: on-CPU ns, run-queue wait ns, slices).
fn schedstat_wait_ns(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    s.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn one_key_shows_the_process_that_waits_longest_in_the_run_queue_and_its_histogram() {
    let _g = serial();
    assert_root();
    // Two spinners on CPU 0: one at nice 0, one at nice 19, which gets a few
    // per cent of the CPU and waits the rest of the time.
    let spin = |comm: &str, nice: &str| {
        Command::new("taskset").args(["-c", "0", "nice", "-n", nice]).arg(workload_bin()).args(["--comm", comm, "spin", "30"]).spawn().unwrap()
    };
    let mut favored = spin("favored", "0");
    let mut starved = spin("starved", "19");
    // The start screen of `sudo tracer-host` (no arguments), then one key.
    let t = Tmux::start_sized(&format!("{}; echo EXITED rc=$?; sleep 60", host_bin().display()), 160, 50);
    t.wait_for("1 overview");
    t.keys(&["4"]);
    let screen = t.wait_for(&format!("(pid {} starved)", starved.id()));
    assert!(screen.contains("Run-queue latency of one process"), "{screen}");
    // The kernel's own accounting agrees on who waited longer. (How much
    // longer depends on what else shares CPU 0: the host starting, tmux; a
    // CI run saw 3.3 times, an idle machine 20 times.)
    let (w_starved, w_favored) = (schedstat_wait_ns(starved.id()), schedstat_wait_ns(favored.id()));
    assert!(w_starved > w_favored, "schedstat: starved waited {w_starved} ns, favored {w_favored} ns");
    for c in [&mut favored, &mut starved] {
        let _ = c.kill();
        let _ = c.wait();
    }
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

/// The text inside the box whose top-left corner and title start `title`.
fn panel_text(screen: &str, title: &str) -> String {
    let Some((x, y)) = locate(screen, title) else { return String::new() };
    let mut out = String::new();
    for l in screen.lines().skip(y + 1) {
        let cells: Vec<char> = l.chars().skip(x).collect();
        if cells.first() != Some(&'│') {
            break;
        }
        let end = cells.iter().skip(1).position(|c| *c == '│').map(|i| i + 1).unwrap_or(cells.len());
        out.extend(&cells[1..end]);
        out.push('\n');
    }
    out
}

/// Requests to `port` in a loop until `stop` (curl, a new process each time).
fn curl_loop(port: u16, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut ok = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let st = Command::new("curl").args(["-sf", "-o", "/dev/null", &format!("http://127.0.0.1:{port}/")]).status().unwrap();
            ok += st.success() as u64;
        }
        ok
    })
}

#[test]
fn three_keys_show_the_slowest_syscalls_of_a_python_http_server() {
    let _g = serial();
    assert_root();
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("index.html"), "made up for this test\n").unwrap();
    let port = 18767u16;
    // Debian's python3 (a pyenv shim would run it under another pid).
    let server = Command::new("/usr/bin/python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server_pid = server.id();
    // Killed however the test ends: a server left behind would hold the port.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = KillOnDrop(server);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Tall enough that the syscalls panels show accept4 (ten tracers' status
    // lines take five rows at this width; at 50 rows accept4 fell below the
    // panel's last row).
    let t = Tmux::start_sized(&format!("{}; echo EXITED rc=$?; sleep 60", host_bin().display()), 160, 72);
    t.wait_for("1 overview");
    let client = curl_loop(port, stop.clone());
    // Key 1: the syscalls tab; its first panel, processes by syscall count,
    // is focused. The server under load comes to the top.
    t.keys(&["3"]);
    let start = Instant::now();
    loop {
        let screen = t.capture();
        let top = screen.lines().skip_while(|l| !l.contains("syscall_latency · Processes")).nth(2).unwrap_or("").to_string();
        let cells: Vec<&str> = top.split(|c: char| c == ' ' || c == '│').filter(|c| !c.is_empty()).collect();
        if cells.len() > 1 && cells[0] == server_pid.to_string() && cells[1] == "python3" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the server never came to the top:\n{screen}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Keys 2 and 3: select the top row, pivot on it.
    t.keys(&["Down"]);
    t.wait_for("1/");
    t.keys(&["Enter"]);
    t.wait_for(&format!("▶ pid {server_pid} python3"));
    // Every tracer counts only the server now, in the kernel.
    for map in ["open_filter", "sc_filter", "sched_filter", "tcp_filter"] {
        assert_eq!(filter_pids(map), vec![server_pid as u64], "{map}");
    }
    // The tab's syscalls by total time are the server's own: it accepts the
    // connections (strace would show accept4 on the listening socket).
    let start = Instant::now();
    let screen = loop {
        let screen = t.capture();
        if panel_text(&screen, "┌syscall_latency · Syscalls by total time").contains("accept4") {
            break screen;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no accept4 in the server's syscalls:\n{screen}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!screen.contains("execve "), "curl's execs are not the server's:\n{screen}");
    // The processes panel holds the server alone: nothing another process did
    // before the pivot (since the last refresh) is counted as after it.
    let procs = panel_text(&screen, "┌syscall_latency · Processes");
    let pids: Vec<&str> = procs.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(pids, [server_pid.to_string()], "{screen}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(client.join().unwrap() > 0, "curl got answers");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

#[test]
fn every_key_of_the_table_does_what_the_help_says() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&["open", "sched"].map(staged_plugin));
    let t = Tmux::start_sized(&format!("{} --plugins-dir {}; echo EXITED rc=$?; sleep 60", host_bin().display(), dir.path().display()), 140, 45);
    t.wait_for("[tracepoint]");
    // q in an overlay closes it; the host goes on.
    t.keys(&["h"]);
    t.wait_for("keys (Esc or q closes");
    t.keys(&["q"]);
    t.wait_gone("keys (Esc or q closes");
    t.keys(&["l"]);
    t.wait_for("log (Esc or q closes");
    t.keys(&["Escape"]);
    t.wait_gone("log (Esc or q closes");
    // The sched tab's totals: < and > move the sort column, s reverses.
    t.keys(&["4", "Tab", "Tab", "Tab", "Tab"]);
    t.keys(&[">"]);
    t.wait_for("PID▼");
    t.keys(&[">"]);
    t.wait_for("COMM▼");
    t.keys(&["s"]);
    t.wait_for("COMM▲");
    t.keys(&["<"]);
    t.wait_for("PID▼");
    // Readline in prompts: Ctrl-W drops a word, Ctrl-U the line.
    t.keys(&["/"]);
    t.literal("first second");
    t.keys(&["C-w"]);
    t.literal("kept");
    t.wait_for("search> first kept");
    t.keys(&["C-u"]);
    t.wait_gone("search> first");
    t.literal("zz-no-such-row");
    t.keys(&["Enter"]);
    t.wait_for("/zz-no-such-row");
    // Esc steps back one thing at a time: the search, then the zoom.
    t.keys(&["z"]);
    t.wait_gone("sched · Run-queue latency─");
    t.keys(&["Escape"]);
    t.wait_gone("/zz-no-such-row");
    assert!(!t.capture().contains("sched · Run-queue latency─"), "still zoomed after the first Esc");
    t.keys(&["Escape"]);
    t.wait_for("sched · Run-queue latency─");
    // Pause freezes the data and says so; + and - change the refresh rate.
    t.keys(&["p"]);
    t.wait_for("PAUSED");
    t.keys(&["p"]);
    t.wait_gone("PAUSED");
    t.keys(&["+"]);
    t.wait_for("refresh 10 Hz");
    t.keys(&["-"]);
    t.wait_for("refresh 4 Hz");
    // r resets the focused plugin, R every plugin.
    t.keys(&["r"]);
    t.wait_for("sched: counters reset");
    t.keys(&["R"]);
    t.wait_for("every plugin's counters reset");
    // d writes the tab's panels as JSON and says where.
    t.keys(&["d"]);
    let screen = t.wait_for("panels written to ");
    let path = screen.lines().find_map(|l| l.split("panels written to ").nth(1)).unwrap().split_whitespace().next().unwrap().to_string();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(doc["tab"], "sched");
    assert!(doc["panels"].as_array().unwrap().iter().any(|p| p["panel"] == "totals" && p["rows"].is_array()), "{doc}");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

#[test]
fn a_tiny_terminal_is_told_so_and_a_resize_brings_the_panels() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&["open"].map(staged_plugin));
    let t = Tmux::start_sized(&format!("{} --plugins-dir {}; echo EXITED rc=$?; sleep 60", host_bin().display(), dir.path().display()), 40, 12);
    t.wait_for("terminal too small");
    let screen = t.wait_for("60x15");
    assert!(screen.replace('\n', " ").contains("need at least 60x15"), "{screen}");
    assert!(!screen.contains('┌'), "no empty boxes:\n{screen}");
    let st = Command::new("tmux").args(["resize-window", "-t", &t.session, "-x", "100", "-y", "30"]).status().unwrap();
    assert!(st.success());
    t.wait_for("open · Recent opens");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
}

/// The OTLP push on the status line: a receiver that is not there shows as
/// retrying and, with a queue of one batch, as dropped batches; once something
/// answers on the port, batches are sent and the retrying goes. The receiver
/// here is a bare HTTP 200 (what the collector says is tested in otlp.rs).
#[test]
fn the_otlp_push_shows_in_the_status_line() {
    let _g = serial();
    assert_root();
    let dir = plugin_dir(&[open_plugin()]);
    let port = 19486;
    let cmd = format!(
        "TRACER_OTLP__INTERVAL_SECS=1 TRACER_OTLP__QUEUE=1 {} --config {} --plugins-dir {} --otlp-endpoint http://127.0.0.1:{port}; echo EXITED rc=$?; sleep 60",
        host_bin().display(),
        default_config().display(),
        dir.path().display()
    );
    let t = Tmux::start_sized(&cmd, 200, 40);
    t.wait_for("retrying");
    let screen = t.wait_for(" dropped ");
    assert!(screen.contains("otlp sent 0 dropped "), "{screen}");
    // Now something takes the batches: HTTP 200 to every request.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut c, _)) => {
                    c.set_nonblocking(false).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut buf = vec![0u8; 1 << 20];
                    let mut got = Vec::new();
                    // Headers, then as many body bytes as Content-Length says.
                    loop {
                        let n = c.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got);
                        if let Some(h) = text.find("\r\n\r\n") {
                            let len = text[..h]
                                .lines()
                                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                                .unwrap_or(0);
                            if got.len() >= h + 4 + len {
                                break;
                            }
                        }
                    }
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    // Backoff is at most 30 s; the retry after the listener came up sends.
    let start = Instant::now();
    let screen = loop {
        let screen = t.capture();
        let sent = screen.split("otlp sent ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse::<u64>().ok());
        if sent.unwrap_or(0) > 0 && !screen.contains("retrying") {
            break screen;
        }
        assert!(start.elapsed() < Duration::from_secs(45), "the push never recovered:\n{screen}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(screen.contains(" dropped "), "what was dropped stays shown:\n{screen}");
    t.keys(&["q"]);
    t.wait_for("EXITED rc=0");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    server.join().unwrap();
}
