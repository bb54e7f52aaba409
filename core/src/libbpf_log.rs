//! libbpf prints to stderr by default, which would tear the TUI and mix with
//! headless output. Route every message to `tracing` and keep the recent ones so a
//! load failure can quote the verifier log.

use libbpf_rs::PrintLevel;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Lines kept: enough for the tail of a verifier log.
const KEEP: usize = 4096;

static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

fn on_print(level: PrintLevel, msg: String) {
    let msg = msg.trim_end().to_string();
    match level {
        PrintLevel::Warn => tracing::warn!(target: "libbpf", "{msg}"),
        PrintLevel::Info => tracing::info!(target: "libbpf", "{msg}"),
        PrintLevel::Debug => tracing::debug!(target: "libbpf", "{msg}"),
    }
    let mut q = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    for line in msg.lines() {
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(line.to_string());
    }
}

/// Install the router. Idempotent.
pub fn install() {
    libbpf_rs::set_print(Some((PrintLevel::Info, on_print)));
}

/// A position in the log; pass it to [`since`] to get what was printed after it.
pub fn mark() -> usize {
    RECENT.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// Lines printed since `mark` (approximate if the buffer wrapped).
pub fn since(mark: usize) -> Vec<String> {
    let q = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    q.iter().skip(mark.min(q.len())).cloned().collect()
}

/// Forget old lines so marks stay meaningful across many loads.
pub fn clear() {
    RECENT.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The verifier's own lines from a libbpf load failure: what stands between
/// `-- BEGIN PROG LOAD LOG --` and `-- END PROG LOAD LOG --`, last `tail` lines.
pub fn verifier_tail(lines: &[String], tail: usize) -> Option<Vec<String>> {
    let begin = lines.iter().rposition(|l| l.contains("-- BEGIN PROG LOAD LOG --"))?;
    let end = lines[begin..]
        .iter()
        .position(|l| l.contains("-- END PROG LOAD LOG --"))
        .map(|e| begin + e)
        .unwrap_or(lines.len());
    let body: Vec<String> = lines[begin + 1..end]
        .iter()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time"))
        .collect();
    let from = body.len().saturating_sub(tail);
    Some(body[from..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_tail_takes_the_end_of_the_log() {
        let lines: Vec<String> = [
            "libbpf: prog 'x': BPF program load failed: Permission denied",
            "libbpf: prog 'x': -- BEGIN PROG LOAD LOG --",
            "0: R1=ctx() R10=fp0",
            "; int x(void *ctx) @ a.bpf.c:3",
            "1: (79) r0 = *(u64 *)(r1 +512)",
            "invalid bpf_context access off=512 size=8",
            "processed 2 insns (limit 1000000) max_states_per_insn 0",
            "-- END PROG LOAD LOG --",
            "libbpf: failed to load object",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let t = verifier_tail(&lines, 2).unwrap();
        assert_eq!(t, vec!["1: (79) r0 = *(u64 *)(r1 +512)", "invalid bpf_context access off=512 size=8"]);
        assert!(verifier_tail(&lines[..1], 2).is_none());
    }
}
