//! Kernel allocations held, by call site (memleak without -p; pages too):
//! what the
//! kernel's memory_ksites map sums, sites named from /proc/kallsyms, with
//! the age of each site's oldest block from the followed allocations
//! (memory_kallocs, read before memory_ksites).

use crate::types::*;
use std::collections::HashMap;
use tracer_plugin_api::{FieldKind, MapSnapshot, Table, Value};
use tracer_plugin_kit::ksym::Kallsyms;
use tracer_plugin_kit::read;
use tracer_plugin_kit::table::{column, extra, flex, key, sum, table};

const TOP_ROWS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub site: String,
    /// enum memory_allocator
    pub allocator: u32,
    pub count: u64,
    pub bytes: u64,
    pub since_ns: u64,
    /// When its oldest block still followed was made; 0: none followed.
    pub oldest_ns: u64,
}

#[derive(Default)]
pub struct KernelSites {
    held: Vec<Held>,
    /// Each site's oldest followed block, from the last memory_kallocs.
    oldest: HashMap<(u64, u32), u64>,
    kallsyms: Option<Kallsyms>,
    now_ns: u64,
}

impl KernelSites {
    pub fn on_map(&mut self, snap: &MapSnapshot, now_ns: u64) {
        if snap.name.as_str() == "memory_kallocs" {
            self.oldest = oldest_by_site(snap.entries.iter().filter_map(|e| read::<memory_kalloc>(&e.value)));
            return;
        }
        let entries: Vec<(memory_ksite_key, memory_ksite)> = snap.entries.iter().filter_map(|e| Some((read(&e.key)?, read(&e.value)?))).collect();
        if entries.is_empty() {
            self.held.clear();
            return;
        }
        let ks = self.kallsyms.get_or_insert_with(Kallsyms::load);
        self.held = held(&entries, ks, &self.oldest);
        self.now_ns = now_ns;
    }

    pub fn table(&self) -> Table {
        struct Row<'a> {
            h: &'a Held,
            age_ns: u64,
            oldest_ns: Option<u64>,
        }
        let now = self.now_ns;
        let rows: Vec<Row> = self
            .held
            .iter()
            .take(TOP_ROWS)
            .map(|h| Row { h, age_ns: now.saturating_sub(h.since_ns), oldest_ns: (h.oldest_ns > 0).then(|| now.saturating_sub(h.oldest_ns)) })
            .collect();
        let cols = [
            sum(column::<Row>("blocks", FieldKind::U64, "", |r| Value::u64(r.h.count))),
            sum(column("bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.h.bytes))),
            column("oldest", FieldKind::DURATION_NS, "ns", |r| r.oldest_ns.map(Value::u64).unwrap_or_else(Value::missing)),
            extra(column("holding for", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.age_ns))),
            extra(column("allocator", FieldKind::STR, "", |r| Value::str(allocator_name(r.h.allocator)))),
            flex(30, key(column("site", FieldKind::STR, "", |r| Value::str(&r.h.site)))),
        ];
        table(&cols, &rows)
    }

    /// Blocks and bytes held over every site.
    pub fn totals(&self) -> (u64, u64) {
        self.held.iter().fold((0, 0), |(c, b), h| (c + h.count, b.saturating_add(h.bytes)))
    }
}

pub fn allocator_name(a: u32) -> &'static str {
    match a {
        MEMORY_KMALLOC => "kmalloc",
        MEMORY_KMEM_CACHE => "kmem_cache",
        MEMORY_PAGES => "pages",
        _ => "?",
    }
}

/// Each (call site, allocator)'s oldest followed block.
pub fn oldest_by_site(allocs: impl IntoIterator<Item = memory_kalloc>) -> HashMap<(u64, u32), u64> {
    let mut m: HashMap<(u64, u32), u64> = HashMap::new();
    for a in allocs {
        let o = m.entry((a.call_site, a.cache)).or_insert(u64::MAX);
        *o = (*o).min(a.ts_ns);
    }
    m
}

/// The sites holding something, named, largest first.
pub fn held(entries: &[(memory_ksite_key, memory_ksite)], ks: &Kallsyms, oldest: &HashMap<(u64, u32), u64>) -> Vec<Held> {
    let mut v: Vec<Held> = entries
        .iter()
        .filter(|(_, s)| s.count > 0)
        .map(|(k, s)| Held {
            // Site 0: a page allocation whose stack held no frame outside
            // the allocator.
            site: if k.call_site == 0 { "(caller not in the stack)".into() } else { ks.name(k.call_site) },
            allocator: k.cache,
            count: s.count as u64,
            bytes: s.bytes.max(0) as u64,
            since_ns: s.since_ns,
            oldest_ns: oldest.get(&(k.call_site, k.cache)).copied().unwrap_or(0),
        })
        .collect();
    v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.site.cmp(&b.site)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_holding_something_are_named_largest_first() {
        let ks = Kallsyms::parse("ffffffff81200000 t alloc_pipe_info\nffffffff81300000 T seq_open\n");
        let k = |call_site, cache| memory_ksite_key { call_site, cache, ..Default::default() };
        let s = |count, bytes| memory_ksite { count, bytes, since_ns: 5 };
        let a = |call_site, ts_ns| memory_kalloc { call_site, ts_ns, ..Default::default() };
        let oldest = oldest_by_site([a(0xffffffff81200030, 90), a(0xffffffff81200030, 40), a(0xffffffff81200010, 70)]);
        let v = held(&[(k(0xffffffff81200010, 0), s(600, 600 * 192)), (k(0xffffffff81300008, 1), s(0, 0)), (k(0xffffffff81200030, 0), s(600, 600 * 1024))], &ks, &oldest);
        assert_eq!(v.len(), 2, "a site back at zero holds nothing");
        assert_eq!((v[0].site.as_str(), v[0].count, v[0].bytes, v[0].oldest_ns), ("alloc_pipe_info+0x30", 600, 600 * 1024, 40));
        assert_eq!((v[1].site.as_str(), v[1].oldest_ns), ("alloc_pipe_info+0x10", 70));
    }
}
