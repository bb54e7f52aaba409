//! The BPF lifecycle of one plugin: open its object from bytes, choose one attach
//! alternative per probe by trying them on the running kernel, load, write the
//! config map, attach. Dropping a [`BpfRuntime`] detaches every link and closes
//! every program and map (links are never pinned, so even SIGKILL leaves nothing).

use crate::kernel_features::{self, AttachKind};
use crate::libbpf_log;
use libbpf_rs::{ErrorKind, Link, MapCore, MapFlags, Object, ObjectBuilder};
use std::os::fd::{AsFd, AsRawFd};
use std::collections::HashMap;
use tracer_plugin_api::{AttachAlternative, PluginDescriptor, ProgramRef};

/// What was chosen for one probe, and why the better alternatives were not.
#[derive(Debug, Clone)]
pub struct ProbeChoice {
    pub probe: String,
    /// e.g. `tracepoint`; the kind of the alternative's first program.
    pub mode: String,
    pub programs: Vec<String>,
    /// Optional programs of the alternative that run.
    pub optional_on: Vec<String>,
    /// Optional programs left out (they did not load or attach here), with
    /// the reason.
    pub skipped: Vec<(String, String)>,
    /// Better alternatives that failed here: (mode, reason).
    pub rejected: Vec<(String, String)>,
}

/// A plugin's loaded and attached BPF object.
pub struct BpfRuntime {
    // Field order matters: links drop (detach) before the object closes.
    links: Vec<Link>,
    object: Object,
    pub choices: Vec<ProbeChoice>,
}

impl BpfRuntime {
    pub fn object(&self) -> &Object {
        &self.object
    }

    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// Optional programs left out on this kernel, with the reason.
    pub fn optional_off(&self) -> impl Iterator<Item = &(String, String)> {
        self.choices.iter().flat_map(|c| c.skipped.iter())
    }

    /// Summed (run time ns, run count) of the loaded programs; non-zero only
    /// while BPF statistics are enabled.
    pub fn run_stats(&self) -> (u64, u64) {
        self.object
            .progs()
            .filter(|p| p.autoload())
            .filter_map(|p| crate::bpf_stats::prog_run_stats(&p.as_fd()))
            .fold((0, 0), |(a, b), (ns, n)| (a + ns, b + n))
    }

    fn map(&self, name: &str) -> Result<libbpf_rs::Map<'_>, String> {
        self.object
            .maps()
            .find(|m| m.name() == name)
            .ok_or_else(|| format!("the BPF object has no map named {name:?}"))
    }

    /// Write key 0 of the plugin's config map; takes effect for the next event.
    pub fn write_config(&self, map: &str, bytes: &[u8]) -> Result<(), String> {
        write_config(&self.object, map, bytes)
    }

    /// Sum slot `index` of a per-CPU `u64` array over all CPUs.
    pub fn read_percpu_u64(&self, map: &str, index: u32) -> Result<u64, String> {
        let m = self.map(map)?;
        let vals = m
            .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| format!("reading {map}[{index}]: {e}"))?
            .unwrap_or_default();
        Ok(vals
            .iter()
            .filter_map(|v| v.get(..8).map(|b| u64::from_ne_bytes(b.try_into().unwrap())))
            .sum())
    }

    /// Every entry of map `name`, per-CPU values back to back: in batches
    /// where the kernel supports them, else key by key.
    pub fn read_map(&self, name: &str) -> Result<(u32, Vec<(Vec<u8>, Vec<u8>)>), String> {
        let m = self.map(name)?;
        let percpu = m.map_type().is_percpu();
        if let Ok(r) = crate::map_batch::read_all(
            m.as_fd().as_raw_fd(),
            m.key_size() as usize,
            m.value_size() as usize,
            percpu,
            m.max_entries() as usize,
        ) {
            return Ok(r);
        }
        let mut out = Vec::new();
        let mut per_key = 1u32;
        for key in m.keys() {
            if percpu {
                if let Some(vals) = m.lookup_percpu(&key, MapFlags::ANY).map_err(|e| e.to_string())? {
                    per_key = vals.len() as u32;
                    out.push((key, vals.concat()));
                }
            } else if let Some(v) = m.lookup(&key, MapFlags::ANY).map_err(|e| e.to_string())? {
                out.push((key, v));
            }
        }
        Ok((per_key, out))
    }
}

fn write_config(object: &Object, map: &str, bytes: &[u8]) -> Result<(), String> {
    let m = object
        .maps()
        .find(|m| m.name() == map)
        .ok_or_else(|| format!("the BPF object has no config map named {map:?}"))?;
    if m.value_size() as usize != bytes.len() {
        return Err(format!(
            "config map {map} holds {} bytes but the plugin produced {}",
            m.value_size(),
            bytes.len()
        ));
    }
    m.update(&0u32.to_ne_bytes(), bytes, MapFlags::ANY)
        .map_err(|e| format!("writing config map {map}: {e}"))
}

/// Why the plugin's BPF object could not be opened.
fn object_error(e: &libbpf_rs::Error) -> String {
    kernel_features::fd_exhaustion_hint(&e.to_string()).unwrap_or_else(|| format!("the plugin's BPF object is not a valid BPF ELF object: {e}"))
}

/// The program a failed load names in libbpf's log (`prog 'name': ...`).
fn failed_program(log: &[String]) -> Option<String> {
    log.iter().rev().find_map(|l| l.split("prog '").nth(1).and_then(|r| r.split('\'').next())).map(str::to_string)
}

/// Why an alternative could not be loaded or attached: typed, so the caller
/// decides by kind (the spirit of aya's `ProgramError::LoadError { io_error,
/// verifier_log }`); `Display` gives the one-line-first message users see.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttemptError {
    /// The bytes are no BPF object, or the process is out of file descriptors.
    #[error("{0}")]
    Object(String),
    /// A kernel type or field the program reads is not in this kernel's BTF.
    #[error("program {program} reads a kernel field this kernel does not have ({detail})")]
    CoreRelocation { program: String, detail: String },
    /// The program's hook (a tp_btf tracepoint, an fentry function) is not
    /// in this kernel's BTF: the kernel does not have it.
    #[error("this kernel has no hook {hook} (program {program})")]
    NoSuchHook { program: String, hook: String },
    /// The verifier refused the program; the end of its log.
    #[error("the BPF verifier rejected program {program}; end of its log:{}", indented(log_tail))]
    Verifier { program: String, log_tail: Vec<String> },
    /// This kernel refuses fentry/fexit programs at load (EPERM).
    #[error("fentry/fexit programs are not permitted on this kernel (EPERM at load)")]
    FentryNotPermitted,
    #[error("loading program {program} was refused (EPERM): run as root with CAP_BPF and CAP_PERFMON")]
    PermissionDenied { program: String },
    /// Anything else at load: the error and libbpf's last word.
    #[error("loading the BPF object failed ({io_error}); {libbpf}")]
    Load { io_error: String, libbpf: String },
    /// Writing the config map, or attaching a program.
    #[error("{0}")]
    Attach(String),
}

fn indented(lines: &[String]) -> String {
    lines.iter().map(|l| format!("\n    {l}")).collect()
}

impl From<String> for AttemptError {
    fn from(s: String) -> Self {
        AttemptError::Attach(s)
    }
}

/// What a failed load means, from libbpf's error and log.
fn load_error(err: &libbpf_rs::Error, kinds: &[AttachKind], log: &[String]) -> AttemptError {
    if let Some(h) = kernel_features::fd_exhaustion_hint(&format!("{err} {}", log.join(" "))) {
        return AttemptError::Object(h);
    }
    let program = failed_program(log).unwrap_or_else(|| "?".into());
    if let Some(relo) = log.iter().find_map(|l| l.split("failed to resolve CO-RE relocation ").nth(1)) {
        let detail = relo.trim().trim_start_matches("<byte_off> ").split(" (").next().unwrap_or("").to_string();
        return AttemptError::CoreRelocation { program, detail };
    }
    // libbpf: "prog 'p': failed to find kernel BTF type ID of 'block_io_start': -3"
    if let Some(hook) = log.iter().find_map(|l| l.split("failed to find kernel BTF type ID of '").nth(1)?.split('\'').next().map(str::to_string)) {
        return AttemptError::NoSuchHook { program, hook };
    }
    if let Some(tail) = libbpf_log::verifier_tail(log, 12) {
        if !tail.is_empty() {
            return AttemptError::Verifier { program, log_tail: tail };
        }
    }
    if err.kind() == ErrorKind::PermissionDenied && kinds.contains(&AttachKind::Fentry) {
        return AttemptError::FentryNotPermitted;
    }
    if err.kind() == ErrorKind::PermissionDenied {
        return AttemptError::PermissionDenied { program };
    }
    let last = log.iter().rev().find(|l| l.contains("libbpf:")).cloned().unwrap_or_default();
    AttemptError::Load { io_error: err.to_string(), libbpf: last.trim().to_string() }
}

/// Attach `prog` to the hook its plugin named: `category/name` for a classic
/// tracepoint, the tracepoint name for a raw one, `PATH:FUNCTION[:PID]` for
/// a uprobe (a uretprobe by its section), in every process that maps PATH
/// or only in PID.
/// The outer error: the target itself is unusable; the inner: the kernel's answer.
fn attach_to(prog: &libbpf_rs::ProgramMut<'_>, kind: AttachKind, section: &str, target: &str) -> Result<libbpf_rs::Result<Link>, String> {
    let name = prog.name().to_string_lossy().into_owned();
    match kind {
        AttachKind::Uprobe => {
            let (path, func, pid) = uprobe_target(target).ok_or_else(|| format!("{name}: uprobe target {target:?} is not PATH:FUNCTION[:PID]"))?;
            let opts = libbpf_rs::UprobeOpts { retprobe: section.starts_with("uretprobe"), func_name: Some(func.to_string()), ..Default::default() };
            Ok(prog.attach_uprobe_with_opts(pid, path, 0, opts))
        }
        AttachKind::Tracepoint => {
            let (cat, tp) = target.split_once('/').ok_or_else(|| format!("{name}: tracepoint target {target:?} is not category/name"))?;
            Ok(prog.attach_tracepoint(libbpf_rs::TracepointCategory::Custom(cat.to_string()), tp))
        }
        AttachKind::RawTracepoint => Ok(prog.attach_raw_tracepoint(target)),
        other => Err(format!("{name}: a target is only for tracepoint and raw_tp programs, not {}", other.label())),
    }
}

/// (path, function, pid or -1) of a uprobe target `PATH:FUNCTION[:PID]`.
pub fn uprobe_target(t: &str) -> Option<(&str, &str, i32)> {
    let (rest, pid) = match t.rsplit_once(':') {
        Some((rest, p)) if p.parse::<i32>().is_ok_and(|p| p > 0) => (rest, p.parse().ok()?),
        _ => (t, -1),
    };
    let (path, func) = rest.rsplit_once(':')?;
    (!path.is_empty() && !func.is_empty()).then_some((path, func, pid))
}

fn describe_attach_error(err: &libbpf_rs::Error, prog: &str, section: &str) -> String {
    if let Some(h) = kernel_features::fd_exhaustion_hint(&err.to_string()) {
        format!("{prog}: {h}")
    } else if err.kind() == ErrorKind::NotFound {
        format!("{prog}: {section} does not exist on this kernel")
    } else {
        format!("{prog}: attaching {section} failed: {err}")
    }
}

struct Trial {
    links: Vec<Link>,
    object: Object,
    skipped: Vec<(String, String)>,
}

/// Everything needed to try an alternative: the object bytes and program sections.
struct Attempter<'a> {
    desc: &'a PluginDescriptor,
    sections: HashMap<String, String>,
    /// Programs whose hook the plugin names (`ProgramRef::target`).
    targets: HashMap<String, String>,
    config: Option<(&'a str, &'a [u8])>,
}

impl Attempter<'_> {
    fn kind_of(&self, prog: &str) -> AttachKind {
        self.sections
            .get(prog)
            .map(|s| AttachKind::from_section(s))
            .unwrap_or(AttachKind::Other)
    }

    /// Load the object with exactly `selected` programs on, write the config, then
    /// attach them. Optional programs may fail to load (a hook or a field this
    /// kernel lacks: the object is loaded again without them) or to attach.
    fn attempt(&self, selected: &[(String, bool)]) -> Result<Trial, AttemptError> {
        let mut skipped: Vec<(String, String)> = Vec::new();
        let kinds: Vec<AttachKind> = selected.iter().map(|(n, _)| self.kind_of(n)).collect();
        let object = loop {
            libbpf_log::clear();
            let mark = libbpf_log::mark();
            let mut builder = ObjectBuilder::default();
            let mut open = builder
                .open_memory(&self.desc.bpf_object)
                .map_err(|e| AttemptError::Object(object_error(&e)))?;
            let wanted = |name: &str| selected.iter().any(|(n, _)| n == name) && !skipped.iter().any(|(n, _)| n == name);
            for mut p in open.progs_mut() {
                let name = p.name().to_string_lossy().into_owned();
                p.set_autoload(wanted(&name));
            }
            match open.load() {
                Ok(object) => break object,
                Err(e) => {
                    let log = libbpf_log::since(mark);
                    let why = load_error(&e, &kinds, &log);
                    // An optional program that this kernel cannot load is left
                    // out; anything else fails the attempt.
                    match failed_program(&log).filter(|p| selected.iter().any(|(n, opt)| n == p && *opt) && wanted(p)) {
                        Some(p) => skipped.push((p, format!("not loaded here: {}", why.to_string().lines().next().unwrap_or("")))),
                        None => return Err(why),
                    }
                }
            }
        };
        if let Some((map, bytes)) = self.config {
            // Before attach: no event may pass unfiltered.
            write_config(&object, map, bytes)?;
        }
        let mut links = Vec::new();
        let loaded: Vec<&(String, bool)> = selected.iter().filter(|(n, _)| !skipped.iter().any(|(s, _)| s == n)).collect();
        for (name, optional) in loaded {
            let prog = object
                .progs_mut()
                .find(|p| p.name().to_string_lossy() == name.as_str())
                .ok_or_else(|| format!("the BPF object has no program named {name:?}"))?;
            let target = self.targets.get(name.as_str()).filter(|t| !t.is_empty());
            let hook = target.cloned().unwrap_or_else(|| self.sections[name].clone());
            let attached = match target {
                // One event per CPU: a link each.
                Some(t) if self.kind_of(name) == AttachKind::PerfEvent => crate::perf_event::attach(&prog, t).map_err(|e| format!("{name}: {e}")),
                None => prog.attach().map(|l| vec![l]).map_err(|e| describe_attach_error(&e, name, &hook)),
                Some(t) => attach_to(&prog, self.kind_of(name), &self.sections[name], t).and_then(|r| r.map(|l| vec![l]).map_err(|e| describe_attach_error(&e, name, &hook))),
            };
            match attached {
                Ok(l) => links.extend(l),
                Err(why) => {
                    if *optional {
                        skipped.push((name.clone(), why));
                    } else {
                        return Err(why.into());
                    }
                }
            }
        }
        Ok(Trial { links, object, skipped })
    }
}

fn alternative_mode(att: &Attempter<'_>, alt: &AttachAlternative) -> AttachKind {
    alt.programs.first().map(|p| att.kind_of(p.name.as_str())).unwrap_or(AttachKind::Other)
}

/// Choose, load and attach. `config` is (config map name, bytes for key 0);
/// `forced`, an attach mode (`kprobe`, `tracepoint`, ...) every probe must use.
pub fn start(desc: &PluginDescriptor, config: Option<(&str, &[u8])>, forced: Option<&str>) -> Result<BpfRuntime, String> {
    let mut builder = ObjectBuilder::default();
    let open = builder
        .open_memory(&desc.bpf_object)
        .map_err(|e| object_error(&e))?;
    let sections: HashMap<String, String> = open
        .progs()
        .map(|p| (p.name().to_string_lossy().into_owned(), p.section().to_string_lossy().into_owned()))
        .collect();
    drop(open);
    for probe in desc.probes.iter() {
        for alt in probe.alternatives.iter() {
            for p in alt.programs.iter() {
                if !sections.contains_key(p.name.as_str()) {
                    return Err(format!(
                        "probe {}: the BPF object has no program named {:?}",
                        probe.name, p.name
                    ));
                }
            }
        }
    }
    let targets = desc
        .probes
        .iter()
        .flat_map(|p| p.alternatives.iter())
        .flat_map(|a| a.programs.iter())
        .filter(|p| !p.target.is_empty())
        .map(|p| (p.name.to_string(), p.target.to_string()))
        .collect();
    let att = Attempter { desc, sections, targets, config };

    let mut chosen: Vec<(String, bool)> = Vec::new();
    let mut choices = Vec::new();
    let mut current: Option<Trial> = None;
    for probe in desc.probes.iter() {
        let mut rejected = Vec::new();
        let mut found = false;
        if let Some(mode) = forced {
            let offered: Vec<&str> = probe.alternatives.iter().map(|a| alternative_mode(&att, a).label()).collect();
            if !offered.contains(&mode) {
                return Err(format!("attach = {mode:?}: probe {} has no {mode} alternative (it has: {})", probe.name, offered.join(", ")));
            }
        }
        for alt in probe.alternatives.iter() {
            let kind = alternative_mode(&att, alt);
            if forced.is_some_and(|m| m != kind.label()) {
                continue;
            }
            if let Err(why) = kernel_features::precheck(kind) {
                rejected.push((kind.label().to_string(), why));
                continue;
            }
            // Optional classic tracepoints in another kind of alternative need
            // tracefs too; without it they are left out like any missing hook.
            if kind != AttachKind::Tracepoint && alt.programs.iter().any(|p| att.kind_of(p.name.as_str()) == AttachKind::Tracepoint) {
                let _ = kernel_features::precheck(AttachKind::Tracepoint);
            }
            let mut selected = chosen.clone();
            selected.extend(alt.programs.iter().map(|p| (p.name.to_string(), p.optional)));
            // The previous trial stays the current state until this one succeeds.
            let previous = current.take();
            match att.attempt(&selected) {
                Ok(trial) => {
                    drop(previous);
                    let running: Vec<&ProgramRef> =
                        alt.programs.iter().filter(|p| !trial.skipped.iter().any(|(s, _)| s == p.name.as_str())).collect();
                    let programs = running.iter().map(|p| p.name.to_string()).collect();
                    let optional_on = running.iter().filter(|p| p.optional).map(|p| p.name.to_string()).collect();
                    choices.push(ProbeChoice {
                        probe: probe.name.to_string(),
                        mode: kind.label().to_string(),
                        programs,
                        optional_on,
                        skipped: trial.skipped.clone(),
                        rejected: std::mem::take(&mut rejected),
                    });
                    chosen = selected;
                    current = Some(trial);
                    found = true;
                    break;
                }
                Err(err) => {
                    let why = err.to_string();
                    if err == AttemptError::FentryNotPermitted {
                        kernel_features::mark_unusable(kind, &why);
                    }
                    rejected.push((kind.label().to_string(), why));
                    current = previous;
                }
            }
        }
        if !found {
            if let (Some(mode), [(_, why)]) = (forced, rejected.as_slice()) {
                return Err(format!("attach = {mode:?} does not work on this kernel: probe {}: {}", probe.name, why.lines().next().unwrap_or("")));
            }
            // One alternative: its own error is the headline. Several: list them.
            if let [(mode, why)] = rejected.as_slice() {
                return Err(format!("probe {} ({mode}): {why}", probe.name));
            }
            let mut msg = format!("probe {}: no attach alternative works on this kernel", probe.name);
            for (mode, why) in &rejected {
                msg.push_str(&format!("\n    {mode}: {why}"));
            }
            return Err(msg);
        }
    }
    let trial = current.ok_or_else(|| "the plugin declares no probes".to_string())?;
    Ok(BpfRuntime { links: trial.links, object: trial.object, choices })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uprobe_targets_name_a_path_a_function_and_maybe_a_pid() {
        use super::uprobe_target;
        assert_eq!(uprobe_target("/lib/libc.so.6:malloc:42"), Some(("/lib/libc.so.6", "malloc", 42)));
        assert_eq!(uprobe_target("/lib/libc.so.6:malloc"), Some(("/lib/libc.so.6", "malloc", -1)));
        assert_eq!(uprobe_target("/proc/42/root/lib/libc.so.6:free:42"), Some(("/proc/42/root/lib/libc.so.6", "free", 42)));
        assert_eq!(uprobe_target("malloc"), None);
        assert_eq!(uprobe_target(":malloc:42"), None);
    }

    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn load_failures_are_typed_by_what_happened() {
        let eperm = libbpf_rs::Error::from_raw_os_error(libc::EPERM);
        let einval = libbpf_rs::Error::from_raw_os_error(libc::EINVAL);
        // fentry refused at load: a kind the caller acts on (marks fentry unusable).
        assert_eq!(load_error(&eperm, &[AttachKind::Fentry], &log(&["libbpf: prog 'x': failed to load"])), AttemptError::FentryNotPermitted);
        assert!(matches!(load_error(&eperm, &[AttachKind::Tracepoint], &log(&["libbpf: prog 'p': load"])), AttemptError::PermissionDenied { program } if program == "p"));
        let relo = log(&["libbpf: prog 'q': relo #3: failed to resolve CO-RE relocation <byte_off> [280] struct a.b (0:1 @ offset 8)"]);
        let e = load_error(&einval, &[AttachKind::TpBtf], &relo);
        assert_eq!(e, AttemptError::CoreRelocation { program: "q".into(), detail: "[280] struct a.b".into() });
        assert_eq!(e.to_string(), "program q reads a kernel field this kernel does not have ([280] struct a.b)");
        let esrch = libbpf_rs::Error::from_raw_os_error(libc::ESRCH);
        let missing = load_error(&esrch, &[AttachKind::TpBtf], &log(&["libbpf: prog 'block_io_start_btf': failed to find kernel BTF type ID of 'block_io_start': -3"]));
        assert_eq!(missing.to_string(), "this kernel has no hook block_io_start (program block_io_start_btf)");
        let other = load_error(&einval, &[AttachKind::TpBtf], &log(&["libbpf: something else"]));
        assert!(matches!(other, AttemptError::Load { .. }) && other.to_string().starts_with("loading the BPF object failed"), "{other}");
    }
}
