//! `cargo xtask <command>`: the project's build, run and test entry points.
//!
//!   setup            install missing system packages (apt), mount tracefs
//!   build [--release]  build BPF objects, plugins and host; stage plugins into
//!                    target/<profile>/plugins
//!   run [-- ARGS]    build (release) and start the host (built-in configs/default.toml)
//!   test             setup, build, build the test fixtures, run every test,
//!                    then the checks on other kernels under qemu (guest.rs)
//!   guest            only the checks on other kernels (after a build)
//!   soak [--minutes N]  (root) the long run: all tracers under steady load,
//!                    host RSS growth and drops checked (see soak.rs)
//!   bench [--reps N] [--scale F] [--only TRACER|http|export]  (root) release build, then per-tracer cost
//!                    against no tracing and empty programs (see bench.rs); `--only export`:
//!                    the Prometheus endpoint's and OTLP push's cost (bench_export.rs)

mod bench;
mod bench_export;
mod bench_http;
mod guest;
mod soak;

use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// apt package that provides each needed tool or header.
const PACKAGES: &[(&str, &str)] = &[
    ("clang", "/usr/bin/clang"),
    ("llvm", "/usr/bin/llvm-strip"),
    ("libelf-dev", "/usr/include/libelf.h"),
    ("zlib1g-dev", "/usr/include/zlib.h"),
    ("pkg-config", "/usr/bin/pkg-config"),
    ("make", "/usr/bin/make"),
    ("bpftool", "/usr/sbin/bpftool"),
    ("tmux", "/usr/bin/tmux"),
    // Real programs the UI tests trace (an http.server under a curl loop).
    ("curl", "/usr/bin/curl"),
    ("python3", "/usr/bin/python3"),
    // The http tracer's tests and bench row: a real server and load generator.
    ("nginx", "/usr/sbin/nginx"),
    ("wrk", "/usr/bin/wrk"),
    // The daemon tests: the report's schema checked by jsonschema, the
    // DaemonSet read by a YAML parser, the systemd unit by systemd-analyze,
    // an unprivileged user with capabilities made by setpriv.
    ("python3-jsonschema", "/usr/lib/python3/dist-packages/jsonschema/__init__.py"),
    ("python3-yaml", "/usr/lib/python3/dist-packages/yaml/__init__.py"),
    ("systemd", "/usr/bin/systemd-analyze"),
    ("util-linux", "/usr/bin/setpriv"),
    // pip, for the rotel collector from PyPI (the OTLP tests).
    ("python3-pip", "/usr/lib/python3/dist-packages/pip/__init__.py"),
    // The metrics endpoint's tests: promtool and a real Prometheus server.
    ("prometheus", "/usr/bin/prometheus"),
    // The guest kernels' checks (guest.rs).
    ("qemu-system-x86", "/usr/bin/qemu-system-x86_64"),
    ("busybox-static", "/bin/busybox"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let st = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

fn setup() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().filter(|(_, p)| !Path::new(p).exists()).map(|(n, _)| *n).collect();
    if !missing.is_empty() {
        if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
            bail!("missing system packages: {} (install them, e.g. apt-get install {})", missing.join(" "), missing.join(" "));
        }
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    if !Path::new("/sys/kernel/tracing/events").is_dir() && is_root() {
        // Classic tracepoints need tracefs; the host mounts it too, but tests
        // and bpftool expect it.
        let _ = Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status();
    }
    Ok(())
}

/// The OTLP tests' receiver: the rotel collector, from its PyPI package
/// (which carries the `rotel-agent` binary), installed under target/tools.
pub const ROTEL: &str = "rotel==0.0.1a15";

fn ensure_rotel() -> Result<()> {
    let dir = target_dir().join("tools/rotel");
    if dir.join("rotel/rotel-agent").exists() {
        return Ok(());
    }
    let mut pip = Command::new("python3");
    pip.args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]).arg(&dir).arg(ROTEL);
    if run(&mut pip).is_err() {
        // The python3 first on PATH may have no pip; Debian's has (setup
        // installs python3-pip), and wants this flag even with --target.
        run(Command::new("/usr/bin/python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--break-system-packages", "--target"])
            .arg(&dir)
            .arg(ROTEL))
        .context("installing the rotel collector from PyPI (for the OTLP tests)")?;
    }
    Ok(())
}

/// `[lib] name` of each crate under plugins/.
fn plugin_lib_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(root().join("plugins"))? {
        let manifest = e?.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else { continue };
        let mut in_lib = false;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                in_lib = l == "[lib]";
            } else if in_lib && l.starts_with("name") {
                if let Some(n) = l.split('"').nth(1) {
                    names.push(n.to_string());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// Copy the plugins into target/<profile>/plugins, root-owned and not writable
/// by group or others (the host refuses anything else). Staged by rename so a
/// running host never sees a half-written file.
fn stage(profile: &str) -> Result<PathBuf> {
    let out = target_dir().join(profile);
    let dir = out.join("plugins");
    fs::create_dir_all(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    for name in plugin_lib_names()? {
        let file = format!("lib{name}.so");
        let tmp = dir.join(format!(".{file}.tmp"));
        fs::copy(out.join(&file), &tmp).with_context(|| format!("staging {file}"))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))?;
        fs::rename(&tmp, dir.join(&file))?;
        eprintln!("xtask: staged {}", dir.join(&file).display());
    }
    Ok(dir)
}

fn build(release: bool) -> Result<PathBuf> {
    setup()?;
    let mut c = cargo();
    c.args(["build", "--workspace"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    stage(if release { "release" } else { "debug" })
}

/// The fixture built against an ABI-broken plugin API, in its own target dir so
/// the feature never reaches the real plugins.
fn build_fixtures() -> Result<()> {
    let fixtures = target_dir().join("fixtures");
    run(cargo().args(["build", "--manifest-path", "fixtures/incompatible-plugin/Cargo.toml", "--target-dir"]).arg(&fixtures))?;
    Ok(())
}

/// Run `cargo test`, echoing its output; returns (passed, failed, ignored)
/// over every test binary, and whether cargo succeeded.
fn cargo_test_counts(cmd: &mut Command) -> Result<((u64, u64, u64), bool)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: {cmd:?}");
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn()?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(word))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            };
            passed += num("passed");
            failed += num("failed");
            ignored += num("ignored");
        }
    }
    let st = child.wait()?;
    Ok(((passed, failed, ignored), st.success()))
}

/// Every test: cargo's, then the guest kernels' checks. Ends with one line
/// that adds up all of them (cargo's own last lines are its last binary's).
fn test_all(cmd: &mut Command) -> Result<()> {
    let ((mut passed, mut failed, ignored), cargo_ok) = cargo_test_counts(cmd)?;
    let guest = guest::run_all(&target_dir());
    match &guest {
        Ok((p, f)) => {
            passed += p;
            failed += f;
        }
        Err(e) => {
            println!("guest checks could not run: {e:#}");
            failed += 1;
        }
    }
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !cargo_ok {
        bail!("cargo test failed");
    }
    if failed > 0 {
        bail!("{failed} guest check(s) failed");
    }
    Ok(())
}

/// The value after `--name` on the command line, if given.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = |from: usize| args.iter().skip(from).skip_while(|a| *a == "--").cloned().collect::<Vec<_>>();
    match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("build") => build(args.iter().any(|a| a == "--release")).map(|_| ()),
        Some("run") => {
            build(true)?;
            let host = target_dir().join("release/tracer-host");
            // The built-in config; the plugins were staged beside the binary.
            let st = Command::new(host)
                .current_dir(root())
                .args(rest(1))
                .status()?;
            std::process::exit(st.code().unwrap_or(1));
        }
        Some("test") => {
            build(false)?;
            build_fixtures()?;
            ensure_rotel()?;
            // Tests that load BPF share the kernel: one test thread per binary
            // keeps "no link left" checks about our own links only.
            let mut c = cargo();
            c.args(["test", "--workspace", "--lib", "--bins", "--tests", "--no-fail-fast", "--", "--test-threads=1"]).args(rest(1));
            test_all(&mut c)
        }
        Some("guest") => {
            build(false)?;
            let (p, f) = guest::run_all(&target_dir())?;
            println!("guest checks: {p} passed, {f} failed");
            if f > 0 {
                bail!("{f} guest check(s) failed");
            }
            Ok(())
        }
        Some("soak") => {
            build(true)?;
            soak::soak(&target_dir(), option(&args, "--minutes").and_then(|v| v.parse().ok()).unwrap_or(10.0))
        }
        Some("bench") => {
            build(true)?;
            let num = |name: &str, default: f64| option(&args, name).and_then(|v| v.parse().ok()).unwrap_or(default);
            if option(&args, "--only").is_none_or(|o| o == "export") {
                ensure_rotel()?;
            }
            bench::bench(&target_dir(), num("--reps", 5.0) as usize, num("--scale", 1.0), option(&args, "--only"))
        }
        _ => {
            eprintln!("usage: cargo xtask setup | build [--release] | run [-- ARGS] | test [-- ARGS] | guest | bench [--reps N] [--scale F] [--only TRACER|http|export] | soak [--minutes N]");
            std::process::exit(2);
        }
    }
}
