//! Per-process figures summed by process name, for counters labelled `comm`.
//!
//! The kernel's per-process maps lose entries (a process exits and its entry
//! is deleted or evicted; a map is made anew on re-attach) and a process can
//! change its name (exec). A counter summed over the live entries would then
//! go down, which Prometheus reads as a restart. Here every name keeps what
//! its processes counted while they had it: a process that leaves the map, or
//! whose figures start again from zero, or that takes another name, leaves
//! what it had counted to the name it had. So each name's totals only grow.
//!
//! Names are hostile and unbounded (any process can call itself anything):
//! at most `cap` names are kept; what others counted goes to `other`.

use std::collections::HashMap;

/// The name figures of names past the cap are kept under.
pub const OTHER: &str = "other";

#[derive(Debug, Clone)]
struct Live<const K: usize> {
    comm: String,
    /// The figures as last read.
    last: [u64; K],
    /// What of `last` is already someone's: counted for the name the process
    /// had before, or before the entry started again.
    base: [u64; K],
}

#[derive(Debug, Clone)]
pub struct CommTotals<const K: usize, P = u32> {
    live: HashMap<P, Live<K>>,
    departed: HashMap<String, [u64; K]>,
    cap: usize,
}

fn add<const K: usize>(into: &mut [u64; K], a: &[u64; K], minus: &[u64; K]) {
    for i in 0..K {
        into[i] = into[i].saturating_add(a[i].saturating_sub(minus[i]));
    }
}

/// The names kept by default: enough for every name on a busy machine, small
/// enough (about 100 bytes a name) to bound the memory.
pub const DEFAULT_CAP: usize = 4096;

impl<const K: usize, P: std::hash::Hash + Eq> Default for CommTotals<K, P> {
    fn default() -> Self {
        CommTotals::new(DEFAULT_CAP)
    }
}

/// `P` keys the map's entries: a pid, or (pid, file) for figures kept per
/// process and file.
impl<const K: usize, P: std::hash::Hash + Eq> CommTotals<K, P> {
    /// At most `cap` names (then `other`).
    pub fn new(cap: usize) -> Self {
        CommTotals { live: HashMap::new(), departed: HashMap::new(), cap: cap.max(1) }
    }

    fn bank(&mut self, comm: &str, last: &[u64; K], base: &[u64; K]) {
        let key = if self.departed.contains_key(comm) || self.departed.len() < self.cap { comm } else { OTHER };
        let slot = self.departed.entry(key.to_string()).or_insert([0; K]);
        add(slot, last, base);
    }

    /// The per-process figures as read now (pid, its name, figures since the
    /// entry was made). Every call is one complete reading of the map.
    pub fn update(&mut self, now: impl IntoIterator<Item = (P, String, [u64; K])>) {
        let mut fresh: HashMap<P, Live<K>> = HashMap::new();
        for (pid, comm, figures) in now {
            let l = match self.live.remove(&pid) {
                // A new entry for this pid (its figures went down): the old
                // one's figures are banked.
                Some(old) if (0..K).any(|i| figures[i] < old.last[i]) => {
                    self.bank(&old.comm, &old.last, &old.base);
                    Live { comm, last: figures, base: [0; K] }
                }
                // Renamed: what it counted until the last reading stays with
                // the old name; the new one counts from there.
                Some(old) if old.comm != comm => {
                    self.bank(&old.comm, &old.last, &old.base);
                    Live { comm, last: figures, base: old.last }
                }
                Some(old) => Live { last: figures, ..old },
                None => Live { comm, last: figures, base: [0; K] },
            };
            fresh.insert(pid, l);
        }
        // Gone from the map: their last figures stay with their name.
        for (_, l) in std::mem::replace(&mut self.live, fresh) {
            self.bank(&l.comm, &l.last, &l.base);
        }
    }

    /// Every name's totals (departed and live), in no particular order.
    pub fn totals(&self) -> Vec<(String, [u64; K])> {
        let mut by: HashMap<&str, [u64; K]> = self.departed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        for l in self.live.values() {
            let key = if by.contains_key(l.comm.as_str()) || by.len() < self.cap { l.comm.as_str() } else { OTHER };
            add(by.entry(key).or_insert([0; K]), &l.last, &l.base);
        }
        by.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(t: &CommTotals<1>, name: &str) -> u64 {
        t.totals().into_iter().find(|(n, _)| n == name).map(|(_, v)| v[0]).unwrap_or(0)
    }

    #[test]
    fn names_keep_what_exited_restarted_and_renamed_processes_counted() {
        let mut t = CommTotals::<1>::new(10);
        t.update([(1, "a".into(), [5]), (2, "a".into(), [3]), (3, "b".into(), [1])]);
        assert_eq!((get(&t, "a"), get(&t, "b")), (8, 1));
        // pid 2 exits, pid 1 goes on, pid 3 execs and becomes c.
        t.update([(1, "a".into(), [7]), (3, "c".into(), [4])]);
        assert_eq!((get(&t, "a"), get(&t, "b"), get(&t, "c")), (10, 1, 3));
        // pid 1's entry is made anew (evicted, re-attached): 2 since.
        t.update([(1, "a".into(), [2]), (3, "c".into(), [4])]);
        assert_eq!(get(&t, "a"), 12, "7 before the new entry, 2 since");
        t.update([]);
        assert_eq!((get(&t, "a"), get(&t, "b"), get(&t, "c")), (12, 1, 3), "all gone, nothing lost");
    }

    #[test]
    fn names_past_the_cap_go_to_other() {
        let mut t = CommTotals::<1>::new(2);
        t.update((0..5).map(|i| (i, format!("n{i}"), [1])));
        t.update([]);
        let all = t.totals();
        assert!(all.len() <= 3, "{all:?}");
        assert_eq!(all.iter().map(|(_, v)| v[0]).sum::<u64>(), 5, "{all:?}");
        assert_eq!(get(&t, OTHER), 3);
    }
}
