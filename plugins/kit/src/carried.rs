//! Figures that only grow although the kernel's map entries come and go:
//! a key evicted from an LRU map, or every key when the maps are made anew
//! (the plugin detached and attached again), would otherwise take its counts
//! with it, and a counter would go down.

use std::collections::HashMap;

/// Carries what keys counted across their disappearance: `now` is raw +
/// carry. With `keep_gone`, keys gone from the map keep their figures (bounded
/// by the keys the kernel map can hold: disks, not processes); without, only
/// keys still present carry what an earlier entry of theirs counted.
#[derive(Debug, Default)]
pub struct Carried<K, V> {
    /// The figures as last read from the kernel.
    pub raw: HashMap<K, V>,
    carry: HashMap<K, V>,
}

impl<K: std::hash::Hash + Eq + Copy, V: Clone + Default> Carried<K, V> {
    /// A fresh reading. `went_down` says a key's figures are of a new entry.
    pub fn update(&mut self, fresh: HashMap<K, V>, went_down: impl Fn(&V, &V) -> bool, plus: impl Fn(&V, &V) -> V, keep_gone: bool) {
        for (k, old) in self.raw.drain() {
            let gone = match fresh.get(&k) {
                Some(new) => went_down(new, &old),
                None => true,
            };
            if gone && (keep_gone || fresh.contains_key(&k)) {
                let c = self.carry.entry(k).or_default();
                *c = plus(c, &old);
            }
        }
        if !keep_gone {
            self.carry.retain(|k, _| fresh.contains_key(k));
        }
        self.raw = fresh;
    }
    pub fn now(&self, plus: impl Fn(&V, &V) -> V) -> HashMap<K, V> {
        let mut m = self.carry.clone();
        for (k, v) in &self.raw {
            let e = m.entry(*k).or_default();
            *e = plus(e, v);
        }
        m
    }
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_a_new_map_and_gone_keys_stay_when_asked() {
        let plus = |a: &u64, b: &u64| a + b;
        let down = |n: &u64, o: &u64| n < o;
        let mut c: Carried<u32, u64> = Carried::default();
        c.update(HashMap::from([(1, 10), (2, 5)]), down, plus, true);
        c.update(HashMap::from([(1, 3)]), down, plus, true);
        assert_eq!(c.now(plus), HashMap::from([(1, 13), (2, 5)]), "1 started again at 3; 2 is gone but kept");
        let mut c: Carried<u32, u64> = Carried::default();
        c.update(HashMap::from([(1, 10), (2, 5)]), down, plus, false);
        c.update(HashMap::from([(1, 3)]), down, plus, false);
        assert_eq!(c.now(plus), HashMap::from([(1, 13)]), "without keep_gone, 2 goes");
    }
}
