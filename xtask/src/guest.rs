//! The tracers on other kernels than the one the tests run on: each kernel of
//! [`KERNELS`] (a distribution's own package, fetched with apt and cached
//! under `target/guest/`) boots under `qemu-system-x86_64` in software
//! emulation with an initramfs holding busybox, the just-built host, plugins,
//! workload and `tracer-guest-checks`, which runs every tracer through every
//! attach alternative the kernel allows and prints one `GUEST-CHECK` line per
//! check on the serial console. Another kernel is one more line in the table.

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Kernel {
    /// Short name, used for the cache directory and in the results.
    pub name: &'static str,
    /// The apt package whose dependency is the kernel image (a metapackage
    /// such as `linux-image-amd64` follows the distribution's updates).
    pub package: &'static str,
    /// Attach alternatives to force, per tracer (comma-separated), where this
    /// kernel allows them.
    pub open: &'static str,
    pub syscall_latency: &'static str,
    pub sched: &'static str,
    pub tcp: &'static str,
    pub process: &'static str,
    pub block: &'static str,
    pub fileio: &'static str,
    pub pagecache: &'static str,
}

/// The kernels the tests boot. Debian 12's stock kernel (6.1 LTS): kprobes and
/// fentry allowed, BTF on.
pub const KERNELS: &[Kernel] = &[Kernel {
    name: "debian12",
    package: "linux-image-amd64",
    open: "fentry,kprobe,tracepoint",
    syscall_latency: "tp_btf,raw_tp,tracepoint",
    sched: "tp_btf,raw_tp,tracepoint",
    tcp: "tp_btf,tracepoint",
    process: "tracepoint,tp_btf",
    block: "tp_btf,raw_tp",
    fileio: "tracepoint,raw_tp",
    pagecache: "tp_btf,raw_tp",
}];

/// A whole guest run may take this long (boot ~12 s, then the checks).
const GUEST_TIMEOUT: Duration = Duration::from_secs(420);

fn output(cmd: &mut Command) -> Result<String> {
    let o = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !o.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The concrete image package a metapackage depends on.
fn image_package(meta: &str) -> Result<String> {
    let find = || -> Result<Option<String>> {
        let deps = output(Command::new("apt-cache").args(["depends", "--no-recommends", "--no-suggests", meta]))?;
        Ok(deps.lines().find_map(|l| l.trim().strip_prefix("Depends: ").filter(|d| d.starts_with("linux-image-")).map(str::to_string)))
    };
    if let Some(p) = find().unwrap_or(None) {
        return Ok(p);
    }
    // An apt cache never updated knows no packages yet.
    output(Command::new("apt-get").args(["update", "-qq"]))?;
    find()?.with_context(|| format!("apt knows no kernel image that {meta} depends on"))
}

/// The kernel's vmlinuz, downloaded and unpacked once.
fn kernel_image(k: &Kernel, cache: &Path) -> Result<PathBuf> {
    let dir = cache.join(k.name);
    let vmlinuz = dir.join("vmlinuz");
    // Cached by an older xtask without the modules: fetched again.
    if vmlinuz.exists() && dir.join("modules").exists() {
        return Ok(vmlinuz);
    }
    fs::create_dir_all(&dir)?;
    let pkg = image_package(k.package)?;
    eprintln!("xtask: guest {}: downloading {pkg}", k.name);
    let dl = dir.join("download");
    let _ = fs::remove_dir_all(&dl);
    fs::create_dir_all(&dl)?;
    output(Command::new("apt-get").args(["download", "-qq", &pkg]).current_dir(&dl))?;
    let deb = fs::read_dir(&dl)?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "deb")).context("apt-get download left no .deb")?;
    let unpack = dl.join("x");
    fs::create_dir_all(&unpack)?;
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './boot/vmlinuz-*'", deb.display(), unpack.display()))
        .status()?;
    if !st.success() {
        bail!("unpacking {} failed", deb.display());
    }
    let image = fs::read_dir(unpack.join("boot"))?.filter_map(|e| e.ok()).map(|e| e.path()).next().context("no vmlinuz in the package")?;
    fs::copy(&image, &vmlinuz)?;
    // The modules the checks need that distributions build as modules: loop
    // (the block tracer's disk). Absent when built in; a check without its
    // device fails and says so.
    let modules = dir.join("modules");
    fs::create_dir_all(&modules)?;
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './lib/modules/*/kernel/drivers/block/loop.ko' 2>/dev/null", deb.display(), unpack.display()))
        .status();
    if let Ok(releases) = fs::read_dir(unpack.join("lib/modules")) {
        for r in releases.filter_map(|e| e.ok()) {
            let ko = r.path().join("kernel/drivers/block/loop.ko");
            if ko.exists() {
                fs::copy(&ko, modules.join("loop.ko"))?;
            }
        }
    }
    fs::write(dir.join("package"), &pkg)?;
    fs::remove_dir_all(&dl)?;
    Ok(vmlinuz)
}

/// A `newc` cpio archive, as the kernel unpacks an initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let fields = [self.ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }
    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040755, &[]);
    }
    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100000 | mode, data);
    }
    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.out
    }
}

/// A binary without its debug info (the guest's RAM holds the initramfs).
fn stripped(path: &Path, tmp: &Path) -> Result<Vec<u8>> {
    let out = tmp.join(path.file_name().unwrap());
    let st = Command::new("llvm-strip").arg("--strip-debug").arg("-o").arg(&out).arg(path).status()?;
    if !st.success() {
        bail!("llvm-strip {} failed", path.display());
    }
    Ok(fs::read(&out)?)
}

/// The shared libraries `bin` needs (from ldd), with the dynamic loader.
fn libraries(bin: &Path) -> Result<Vec<PathBuf>> {
    let text = output(Command::new("ldd").arg(bin))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let p = l.split("=> ").nth(1).unwrap_or(l).split(" (").next()?.trim();
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect())
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs tmpfs /tmp
/bin/busybox --install -s /bin
ip link set lo up
for m in /tracer/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done
/tracer/tracer-guest-checks /tracer
poweroff -f
"#;

/// The guest's initramfs: busybox, the binaries and plugins with their
/// libraries, and the kernel's own modules from `modules` (its .ko files).
fn initramfs(target: &Path, out: &Path, modules: &Path) -> Result<()> {
    let debug = target.join("debug");
    let tmp = out.with_extension("tmp");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let mut c = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp", "tracer", "tracer/plugins", "tracer/modules", "lib", "lib64", "usr", "usr/lib", "lib/x86_64-linux-gnu"] {
        c.dir(d);
    }
    c.file("init", 0o755, INIT.as_bytes());
    c.file("bin/busybox", 0o755, &fs::read("/bin/busybox").context("busybox (busybox-static) is needed for the guest")?);
    let bins = ["tracer-host", "tracer-workload", "tracer-guest-checks"];
    let mut libs: Vec<PathBuf> = Vec::new();
    for b in bins {
        let path = debug.join(b);
        c.file(&format!("tracer/{b}"), 0o755, &stripped(&path, &tmp)?);
        for l in libraries(&path)? {
            if !libs.contains(&l) {
                libs.push(l);
            }
        }
    }
    for e in fs::read_dir(debug.join("plugins"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "so") {
            c.file(&format!("tracer/plugins/{}", p.file_name().unwrap().to_string_lossy()), 0o644, &stripped(&p, &tmp)?);
        }
    }
    for e in fs::read_dir(modules).into_iter().flatten().filter_map(|e| e.ok()) {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "ko") {
            c.file(&format!("tracer/modules/{}", p.file_name().unwrap().to_string_lossy()), 0o644, &fs::read(&p)?);
        }
    }
    for l in libs {
        let name = l.to_string_lossy().trim_start_matches('/').to_string();
        c.file(&name, 0o755, &fs::read(&l).with_context(|| format!("reading {}", l.display()))?);
    }
    fs::write(out, c.finish())?;
    fs::remove_dir_all(&tmp)?;
    Ok(())
}

/// Results of one guest: (passed, failed).
fn run_kernel(k: &Kernel, vmlinuz: &Path, initrd: &Path) -> Result<(u64, u64)> {
    let append = format!(
        "console=ttyS0 panic=-1 quiet GUEST_OPEN_MODES={} GUEST_SYSCALL_MODES={} GUEST_SCHED_MODES={} GUEST_TCP_MODES={} GUEST_PROCESS_MODES={} GUEST_BLOCK_MODES={} GUEST_FILEIO_MODES={} GUEST_PAGECACHE_MODES={}",
        k.open, k.syscall_latency, k.sched, k.tcp, k.process, k.block, k.fileio, k.pagecache
    );
    let start = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2", "-nographic", "-no-reboot", "-kernel"])
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting qemu-system-x86_64 (package qemu-system-x86)")?;
    let pid = qemu.id();
    // A guest that hangs is stopped: the run is a failure, not a wait.
    let watchdog = std::thread::spawn(move || {
        let t0 = Instant::now();
        while t0.elapsed() < GUEST_TIMEOUT {
            std::thread::sleep(Duration::from_millis(500));
            if unsafe { libc::kill(pid as i32, 0) } != 0 {
                return;
            }
        }
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let (mut passed, mut failed, mut done) = (0u64, 0u64, false);
    let mut tail: Vec<String> = Vec::new();
    for line in BufReader::new(qemu.stdout.take().unwrap()).lines().map_while(Result::ok) {
        let line = line.trim_end_matches('\r').to_string();
        if let Some(rest) = line.strip_prefix("GUEST-CHECK ") {
            println!("guest {}: {rest}", k.name);
            if rest.split(' ').nth(1) == Some("PASS") {
                passed += 1;
            } else {
                failed += 1;
            }
        } else if let Some(rest) = line.strip_prefix("GUEST-INFO ") {
            println!("guest {}: {rest}", k.name);
        } else if line.starts_with("GUEST-DONE") {
            done = true;
        } else {
            tail.push(line);
            if tail.len() > 40 {
                tail.remove(0);
            }
        }
    }
    let _ = qemu.wait();
    let _ = watchdog.join();
    println!("guest {}: {passed} checks passed, {failed} failed in {:.0} s", k.name, start.elapsed().as_secs_f64());
    if !done {
        println!("guest {}: did not finish; last console lines:\n{}", k.name, tail.join("\n"));
        failed += 1;
    }
    Ok((passed, failed))
}

/// Every kernel of the table: (checks passed, checks failed).
pub fn run_all(target: &Path) -> Result<(u64, u64)> {
    let cache = target.join("guest");
    fs::create_dir_all(&cache)?;
    let (mut passed, mut failed) = (0, 0);
    for k in KERNELS {
        let vmlinuz = kernel_image(k, &cache)?;
        // Per kernel: its modules go in.
        let initrd = cache.join(k.name).join("initramfs.cpio");
        initramfs(target, &initrd, &cache.join(k.name).join("modules"))?;
        let (p, f) = run_kernel(k, &vmlinuz, &initrd)?;
        passed += p;
        failed += f;
    }
    Ok((passed, failed))
}
