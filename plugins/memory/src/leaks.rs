//! What the followed process holds: its allocations not freed yet (the
//! kernel's memory_allocs map) grouped by the user stack that made them,
//! with count, bytes and the age of the oldest, oldest first (what has
//! been held longest is where a leak shows). Stacks are
//! symbolized once, while the process lives (see the kit's `usym`).

use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, MapSnapshot, Table, Value};
use tracer_plugin_kit::table::{column, flex, key, sum, table};
use tracer_plugin_kit::usym::Symbolizer;
use tracer_plugin_kit::{key_u32, read};

const TOP_ROWS: usize = 100;
/// Frames shown of each stack, innermost first (malloc's caller).
const FRAMES: usize = 4;

/// Outstanding allocations of one stack.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Site {
    pub stack_id: i32,
    pub count: u64,
    pub bytes: u64,
    pub oldest_ns: u64,
}

#[derive(Default)]
pub struct Leaks {
    pub pid: Option<u32>,
    sites: Vec<Site>,
    /// Each stack's raw addresses, from memory_stacks.
    stacks: HashMap<i32, Vec<u64>>,
    /// Each stack as text, once made.
    names: HashMap<i32, String>,
    now_ns: u64,
}

/// The allocations of `entries` (address -> memory_alloc) by stack.
pub fn by_stack(allocs: impl IntoIterator<Item = memory_alloc>) -> Vec<Site> {
    let mut m: HashMap<i32, Site> = HashMap::new();
    for a in allocs {
        let s = m.entry(a.stack_id).or_insert(Site { stack_id: a.stack_id, oldest_ns: u64::MAX, ..Default::default() });
        s.count += 1;
        s.bytes = s.bytes.saturating_add(a.size);
        s.oldest_ns = s.oldest_ns.min(a.ts_ns);
    }
    let mut v: Vec<Site> = m.into_values().collect();
    v.sort_by(|a, b| a.oldest_ns.cmp(&b.oldest_ns).then(b.bytes.cmp(&a.bytes)).then(a.stack_id.cmp(&b.stack_id)));
    v
}

impl Leaks {
    pub fn on_map(&mut self, snap: &MapSnapshot, now_ns: u64) {
        match snap.name.as_str() {
            "memory_allocs" => {
                self.sites = by_stack(snap.entries.iter().filter_map(|e| read::<memory_alloc>(&e.value)));
                self.now_ns = now_ns;
            }
            "memory_stacks" => {
                for e in snap.entries.iter() {
                    let Some(id) = key_u32(&e.key, 0) else { continue };
                    let frames: Vec<u64> = e.value.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap())).take_while(|a| *a != 0).collect();
                    self.stacks.insert(id as i32, frames);
                }
                self.name_new_stacks();
            }
            _ => {}
        }
    }

    /// Symbolize the stacks not named yet, while the process is there.
    fn name_new_stacks(&mut self) {
        let Some(pid) = self.pid else { return };
        let new: Vec<i32> = self.sites.iter().map(|s| s.stack_id).filter(|id| !self.names.contains_key(id) && self.stacks.contains_key(id)).collect();
        if new.is_empty() {
            return;
        }
        let Some(mut sym) = Symbolizer::new(pid) else { return };
        for id in new {
            let text = self.stacks[&id].iter().take(FRAMES).map(|a| sym.symbolize(*a)).collect::<Vec<_>>().join(" ← ");
            self.names.insert(id, text);
        }
    }

    fn stack_text(&self, id: i32) -> String {
        if id < 0 {
            return "(stack not kept)".into();
        }
        self.names.get(&id).cloned().unwrap_or_else(|| self.stacks.get(&id).map(|f| f.iter().take(FRAMES).map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(" ← ")).unwrap_or_else(|| format!("stack {id}")))
    }

    pub fn table(&self) -> Table {
        struct Row {
            site: Site,
            age_ns: u64,
            stack: String,
        }
        let rows: Vec<Row> = self.sites.iter().take(TOP_ROWS).map(|s| Row { site: s.clone(), age_ns: self.now_ns.saturating_sub(s.oldest_ns), stack: self.stack_text(s.stack_id) }).collect();
        let cols = [
            sum(column::<Row>("blocks", FieldKind::U64, "", |r| Value::u64(r.site.count))),
            sum(column("bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.site.bytes))),
            column("oldest", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.age_ns)),
            flex(40, key(column("stack", FieldKind::STR, "", |r| Value::str(&r.stack)))),
        ];
        table(&cols, &rows)
    }

    /// Blocks and bytes held, over every stack.
    pub fn totals(&self) -> (u64, u64) {
        self.sites.iter().fold((0, 0), |(c, b), s| (c + s.count, b.saturating_add(s.bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_group_by_stack_oldest_first() {
        let a = |size, ts_ns, stack_id| memory_alloc { size, ts_ns, stack_id, ..Default::default() };
        let v = by_stack([a(100, 50, 1), a(300, 20, 2), a(200, 10, 1), a(5, 99, -1)]);
        assert_eq!(v[0], Site { stack_id: 1, count: 2, bytes: 300, oldest_ns: 10 }, "its oldest block is the oldest");
        assert_eq!(v[1], Site { stack_id: 2, count: 1, bytes: 300, oldest_ns: 20 });
        assert_eq!(v[2].stack_id, -1);
    }
}
