//! As root, with the real plugins in a Session: what the kernel keeps between
//! events (calls in flight, maxima, per-process tables, loss counters) stays
//! true across filter changes, resets, detach and attach, evictions and time.
//! The truths: the workloads' own system calls (made up here), /proc/PID/stat.

mod common;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tracer_core::session::Session;
use tracer_plugin_api::{Panel, Value};

fn staged(name: &str) -> PathBuf {
    let dir = common::target().join("debug/plugins");
    assert!(dir.join(format!("libtracer_{name}.so")).exists(), "{} has no {name} plugin: run `cargo xtask test`", dir.display());
    dir
}

fn root() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "loads BPF: must run as root");
}

fn session_with(name: &str, settings: &str) -> (Session, usize) {
    root();
    let mut s = Session::load(&staged(name)).unwrap();
    let idx = s.slot_index(name).unwrap();
    s.start(idx, settings).unwrap();
    (s, idx)
}

/// Rows of table panel `id` as values, with the column names.
fn table(s: &Session, idx: usize, id: &str) -> (Vec<String>, Vec<Vec<Value>>) {
    let p = s.slots[idx].panel(id).unwrap();
    match p.as_enum() {
        Ok(Panel::Table(t)) => (
            t.columns.iter().map(|c| c.name.to_string()).collect(),
            t.rows.iter().map(|r| r.iter().map(|v| v.as_enum().cloned().unwrap()).collect()).collect(),
        ),
        other => panic!("{id} is no table: {other:?}"),
    }
}

fn cell<'a>(cols: &[String], row: &'a [Value], name: &str) -> &'a Value {
    &row[cols.iter().position(|c| c == name).unwrap_or_else(|| panic!("no column {name} in {cols:?}"))]
}

fn histogram_total(s: &Session, idx: usize, id: &str) -> u64 {
    match s.slots[idx].panel(id).unwrap().as_enum() {
        Ok(Panel::Log2Histogram(h)) => h.buckets.iter().sum(),
        other => panic!("{id} is no histogram: {other:?}"),
    }
}

/// `sleep SECS` under a made-up name (comm), waited for.
fn sleeper(comm: &str, secs: &str) -> std::process::Child {
    let exe = std::env::temp_dir().join(comm);
    let _ = std::fs::remove_file(&exe);
    std::os::unix::fs::symlink("/bin/sleep", &exe).unwrap();
    Command::new(&exe).arg(secs).spawn().unwrap()
}

fn max_of(s: &Session, idx: usize, syscall: &str) -> Option<u64> {
    let (cols, rows) = table(s, idx, "top_count");
    rows.iter().find(|r| *cell(&cols, r, "syscall") == Value::Str(syscall.into())).map(|r| match cell(&cols, r, "max") {
        Value::U64(n) => *n,
        v => panic!("max is {v:?}"),
    })
}

#[test]
fn the_longest_call_starts_again_after_a_reset() {
    let comm = "trc-maxreset";
    let (mut s, idx) = session_with("syscall_latency", &format!(r#"{{"comm": "{comm}"}}"#));
    sleeper(comm, "0.4").wait().unwrap();
    s.refresh();
    let before = max_of(&s, idx, "clock_nanosleep").expect("the sleep was counted");
    assert!(before >= 400_000_000, "the 0.4 s sleep is the maximum: {before}");
    s.reset();
    sleeper(comm, "0.01").wait().unwrap();
    s.refresh();
    let after = max_of(&s, idx, "clock_nanosleep").expect("the short sleep was counted");
    // 10 ms asked; a loaded machine may oversleep, but not by 390 ms.
    assert!((10_000_000..200_000_000).contains(&after), "max after the reset is the short sleep: {after} ns");
    s.shutdown();
}

#[test]
fn a_new_filter_does_not_count_calls_already_in_flight() {
    let (mut s, idx) = session_with("syscall_latency", "{}");
    let mut child = sleeper("trc-inflight", "0.5");
    // Well inside its nanosleep when the filter changes to it.
    std::thread::sleep(Duration::from_millis(200));
    s.set_settings(idx, &format!(r#"{{"pid": {}}}"#, child.id())).unwrap();
    s.reset(); // only what happens from here on
    child.wait().unwrap();
    s.refresh();
    // strace of `sleep 0.5` after its start: clock_nanosleep (begun before
    // the filter), then close/exit_group. The sleep must not be counted.
    assert_eq!(max_of(&s, idx, "clock_nanosleep"), None, "{:?}", table(&s, idx, "top_count").1);
    s.shutdown();
}

/// utime + stime of a process in ns, from /proc/PID/stat (clock ticks).
fn proc_cpu_ns(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    ticks * 1_000_000_000 / hz
}

/// A child killed when dropped: a failing test leaves no CPU hog behind.
struct Hog(std::process::Child);

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A single-threaded CPU hog under a made-up name, on CPU 0 if `pinned`.
fn cpu_hog(comm: &str, pinned: bool) -> Hog {
    let exe = std::env::temp_dir().join(comm);
    let _ = std::fs::remove_file(&exe);
    std::os::unix::fs::symlink("/bin/sh", &exe).unwrap();
    let mut c = if pinned { Command::new("taskset") } else { Command::new(&exe) };
    if pinned {
        c.args(["-c", "0"]).arg(&exe);
    }
    Hog(c.args(["-c", "while :; do :; done"]).spawn().unwrap())
}

/// The processes panel's CPU % and name of `pid`, refreshed every 250 ms for
/// `rounds` rounds (`between(i)` runs before refresh i), then the share of a
/// CPU /proc/PID/stat gives it over the whole time, and the hog killed.
fn cpu_samples(s: &mut Session, idx: usize, hog: Hog, rounds: usize, mut between: impl FnMut(usize)) -> (Vec<f64>, Vec<Value>, f64) {
    let pid = hog.0.id();
    let (mut samples, mut names) = (Vec::new(), Vec::new());
    let start = Instant::now();
    s.refresh();
    for i in 0..rounds {
        std::thread::sleep(Duration::from_millis(250));
        between(i);
        s.refresh();
        let (cols, rows) = table(s, idx, "processes");
        if let Some(r) = rows.iter().find(|r| *cell(&cols, r, "pid") == Value::U64(pid as u64)) {
            let Value::F64(pct) = *cell(&cols, r, "cpu") else { panic!("cpu % is a number: {:?}", cell(&cols, r, "cpu")) };
            samples.push(pct);
            names.push(cell(&cols, r, "comm").clone());
        }
    }
    let kernel_pct = 100.0 * proc_cpu_ns(pid) as f64 / start.elapsed().as_nanos() as f64;
    drop(hog);
    (samples, names, kernel_pct)
}

/// One thread can use at most one CPU. Tolerance 3 points: figures are taken
/// at the read of the running slices; the process map is read just after (a
/// few ms with thousands of processes), and a slice that starts or ends
/// within that read moves its few ms to the next interval. (A slice that
/// ends there counts once: the process map says when each CPU last ended
/// one.) The mean must be near what /proc/PID/stat accounted over the whole
/// run: within 25 points, as the first and last intervals are partial.
fn assert_one_cpu_at_most(samples: &[f64], kernel_pct: f64) {
    for p in samples {
        assert!(*p <= 103.0, "a single thread at {p}% of a CPU: {samples:?}");
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    assert!(mean > 30.0 && (mean - kernel_pct).abs() < 25.0, "mean {mean:.1}% vs /proc {kernel_pct:.1}%: {samples:?}");
}

#[test]
fn cpu_percent_of_a_single_thread_stays_within_one_cpu_and_its_name_stays() {
    let (mut s, idx) = session_with("sched", "{}");
    let work = tempfile::tempdir().unwrap();
    let churn = common::target().join("debug/tracer-workload");
    let hog = cpu_hog("trc-cpuhog", false);
    let (samples, names, kernel_pct) = cpu_samples(&mut s, idx, hog, 24, |i| {
        if i == 8 {
            // 5,000 short-lived processes: more than the kernel's name table holds.
            let st = Command::new(&churn).args(["churn", work.path().to_str().unwrap(), "5000"]).stdout(Stdio::null()).status().unwrap();
            assert!(st.success());
        }
    });
    s.shutdown();
    assert!(samples.len() >= 12, "the hog was seen in most intervals: {samples:?}");
    assert_one_cpu_at_most(&samples, kernel_pct);
    for n in &names {
        assert_eq!(*n, Value::Str("trc-cpuhog".into()), "a running process keeps its name through churn: {names:?}");
    }
}

#[test]
fn a_thread_id_used_again_starts_with_nothing_of_the_exited_thread() {
    let (mut s, idx) = session_with("sched", "{}");
    // A thread that ran about a second and exited, its per-thread state still
    // in the kernel's map; then a hog given the same id (the kernel hands out
    // ns_last_pid + 1 next, unless another fork takes it first: tried again).
    let exe = std::env::temp_dir().join("trc-firstlife");
    let _ = std::fs::remove_file(&exe);
    std::os::unix::fs::symlink("/bin/sh", &exe).unwrap();
    // Both the hog and a companion on CPU 0: they take turns, so the hog is
    // switched out every few ms (a hog alone on a CPU may never be, and its
    // first switch-out is where the exited thread's total would be taken).
    let companion = cpu_hog("trc-companion", true);
    let mut hog = None;
    for _ in 0..20 {
        let mut first = Command::new(&exe).args(["-c", "i=0; while [ $i -lt 800000 ]; do i=$((i+1)); done"]).spawn().unwrap();
        let pid = first.id();
        assert!(first.wait().unwrap().success());
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).unwrap();
        let h = cpu_hog("trc-secondlife", true);
        if h.0.id() == pid {
            hog = Some(h);
            break;
        }
    }
    let hog = hog.expect("a hog given the id of the thread before it (20 tries)");
    let (samples, _, kernel_pct) = cpu_samples(&mut s, idx, hog, 8, |_| {});
    drop(companion);
    s.shutdown();
    assert!(samples.len() >= 6, "the hog was seen in most intervals: {samples:?}");
    assert_one_cpu_at_most(&samples, kernel_pct);
}

#[test]
fn scheduler_histograms_go_on_after_detach_and_attach() {
    let (mut s, idx) = session_with("sched", "{}");
    // Two threads handing a byte back and forth: wakeups, waits and switches.
    let pingpong = || {
        let st = Command::new(common::target().join("debug/tracer-workload")).args(["pingpong", "2000"]).stdout(Stdio::null()).status().unwrap();
        assert!(st.success());
    };
    pingpong();
    s.refresh();
    s.reset(); // figures since here
    pingpong();
    s.refresh();
    let first = histogram_total(&s, idx, "runq");
    assert!(first > 0, "the ping-pong's waits are counted");
    s.stop(idx, None);
    s.start(idx, "{}").unwrap();
    pingpong();
    s.refresh();
    let again = histogram_total(&s, idx, "runq");
    assert!(again > first, "cumulative figures go on after a re-attach: {first} then {again}");
    s.shutdown();
}

#[test]
fn losses_are_kept_across_detach_and_attach() {
    let (mut s, idx) = session_with("open", r#"{"include_self": true}"#);
    // Nothing is read while 100,000 opens (~10 MB of records) go into the
    // 4 MiB ring: most are lost, and counted.
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("x");
    std::fs::write(&path, "x").unwrap();
    let st = Command::new(common::target().join("debug/tracer-workload"))
        .args(["open", path.to_str().unwrap(), "100000"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    s.refresh();
    let lost = s.slots[idx].stats.drops;
    assert!(lost > 20_000, "the ring overflowed: {lost} lost");
    s.stop(idx, None);
    s.start(idx, r#"{"include_self": true}"#).unwrap();
    s.refresh();
    assert!(s.slots[idx].stats.drops >= lost, "drops after re-attach: {} (were {lost})", s.slots[idx].stats.drops);
    assert!(s.slots[idx].stats.counter_error.is_none());
    s.shutdown();
}

/// Records of the open plugin with these fields: (tid, ret, path, path_truncated).
fn open_records(s: &mut Session) -> Vec<(u64, i64, Option<String>, u64)> {
    open_records_with(s, &[]).into_iter().map(|(r, _)| r).collect()
}

/// The same, and the values of `more` fields.
#[allow(clippy::type_complexity)]
fn open_records_with(s: &mut Session, more: &[&str]) -> Vec<((u64, i64, Option<String>, u64), Vec<Value>)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        let mut sink = |slot: &tracer_core::session::PluginSlot, ring: u32, v: &[tracer_plugin_api::FieldValue]| {
            let names: Vec<&str> = slot.fields(ring).iter().map(|f| f.name.as_str()).collect();
            let get = |n: &str| v[names.iter().position(|x| *x == n).unwrap()].as_enum().cloned().unwrap();
            let (Value::U64(tid), Value::I64(ret), Value::U64(cut)) = (get("tid"), get("ret"), get("path_truncated")) else { panic!() };
            let path = match get("path") {
                Value::Str(p) => Some(p.to_string()),
                _ => None,
            };
            out.push(((tid, ret, path, cut), more.iter().map(|n| get(n)).collect()));
        };
        s.pump(Some(&mut sink)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

fn gettid() -> u64 {
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// A thread opens a FIFO for reading: the open blocks until a writer comes,
/// long after the kernel copied the name. Meanwhile the name's buffer is
/// rewritten (or unmapped). The record must name what the kernel opened.
#[test]
fn an_open_records_the_name_the_kernel_opened() {
    let (mut s, _) = session_with("open", r#"{"include_self": true}"#);
    let work = tempfile::tempdir().unwrap();
    let fifo = work.path().join("trc-fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for unmap in [false, true] {
        // The name in a page of its own, so it can be unmapped.
        let page = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
        assert_ne!(page, libc::MAP_FAILED);
        let bytes = c.as_bytes_with_nul();
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), page as *mut u8, bytes.len()) };
        let addr = page as usize;
        let reader = std::thread::spawn(move || {
            let fd = unsafe { libc::open(addr as *const libc::c_char, libc::O_RDONLY) };
            unsafe { libc::close(fd) };
            (gettid(), fd)
        });
        std::thread::sleep(Duration::from_millis(200)); // the reader blocks in open
        if unmap {
            unsafe { libc::munmap(page, 4096) };
        } else {
            let spoof = b"/etc/shadow_SPOOFED\0";
            unsafe { std::ptr::copy_nonoverlapping(spoof.as_ptr(), page as *mut u8, spoof.len()) };
        }
        let w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let (tid, fd) = reader.join().unwrap();
        drop(w);
        assert!(fd >= 0, "the FIFO opened");
        let recs = open_records(&mut s);
        let mine: Vec<_> = recs.iter().filter(|r| r.0 == tid).collect();
        assert_eq!(mine.len(), 1, "one open by the reader thread: {recs:?}");
        assert_eq!(mine[0].2.as_deref(), Some(fifo.to_str().unwrap()), "unmapped={unmap}: {mine:?}");
        if !unmap {
            unsafe { libc::munmap(page, 4096) };
        }
    }
    s.shutdown();
}

#[test]
fn a_long_name_is_marked_cut_and_an_unreadable_one_said() {
    let (mut s, _) = session_with("open", r#"{"include_self": true}"#);
    let long = format!("/tmp/trc-{}", "n".repeat(700));
    let c = std::ffi::CString::new(long.clone()).unwrap();
    let t = std::thread::spawn(move || {
        unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
        // A name at an address that is not mapped: EFAULT.
        unsafe { libc::open(8 as *const libc::c_char, libc::O_RDONLY) };
        gettid()
    });
    let tid = t.join().unwrap();
    let recs = open_records(&mut s);
    let mine: Vec<_> = recs.iter().filter(|r| r.0 == tid).collect();
    assert_eq!(mine.len(), 2, "{recs:?}");
    let (_, ret, path, cut) = mine[0];
    assert_eq!((*ret, *cut), (-36, 1), "ENAMETOOLONG, marked cut: {mine:?}");
    let p = path.as_deref().unwrap();
    assert!(p.len() == 511 && long.starts_with(p), "the longest prefix that fits: {} bytes", p.len());
    assert_eq!((mine[1].1, mine[1].2.as_deref(), mine[1].3), (-14, None, 0), "EFAULT, no name: {mine:?}");
    s.shutdown();
}

/// A thread whose effective uid is not its real one opens a root-only file,
/// and a name relative to a directory fd.
#[test]
fn an_open_names_the_effective_uid_and_the_directory_of_a_relative_name() {
    let (mut s, _) = session_with("open", r#"{"include_self": true}"#);
    let work = tempfile::tempdir().unwrap();
    let secret = work.path().join("trc-secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let c = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
    let dir = std::ffi::CString::new(work.path().to_str().unwrap()).unwrap();
    let t = std::thread::spawn(move || {
        // This thread only (the raw syscall, not glibc's all-threads seteuid).
        assert_eq!(unsafe { libc::syscall(libc::SYS_setresuid, -1i32 as u32, 65534u32, -1i32 as u32) }, 0);
        let denied = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY) };
        assert_eq!((denied, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EACCES)));
        assert_eq!(unsafe { libc::syscall(libc::SYS_setresuid, -1i32 as u32, 0u32, -1i32 as u32) }, 0);
        let dfd = unsafe { libc::open(dir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
        let rel = std::ffi::CString::new("trc-secret").unwrap();
        let fd = unsafe { libc::openat(dfd, rel.as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 0);
        unsafe { libc::close(fd) };
        unsafe { libc::close(dfd) };
        (gettid(), dfd)
    });
    let (tid, dfd) = t.join().unwrap();
    let recs = open_records_with(&mut s, &["uid", "euid", "dirfd"]);
    let mine: Vec<_> = recs.iter().filter(|r| r.0 .0 == tid).collect();
    assert_eq!(mine.len(), 3, "{recs:?}");
    assert_eq!((mine[0].0 .1, &mine[0].1[..]), (-13, &[Value::U64(0), Value::U64(65534), Value::Missing][..]), "EACCES as euid 65534: {mine:?}");
    assert_eq!(mine[2].0 .2.as_deref(), Some("trc-secret"));
    assert_eq!(mine[2].1[2], Value::I64(dfd as i64), "relative to the directory fd: {mine:?}");
    s.shutdown();
}
