//! Kernel allocations held, by call site (memleak without -p): what the
//! kernel's memory_ksites map sums, sites named from /proc/kallsyms.

use crate::types::*;
use tracer_plugin_api::{FieldKind, MapSnapshot, Table, Value};
use tracer_plugin_kit::ksym::Kallsyms;
use tracer_plugin_kit::read;
use tracer_plugin_kit::table::{column, extra, flex, key, sum, table};

const TOP_ROWS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub site: String,
    pub cache: bool,
    pub count: u64,
    pub bytes: u64,
    pub since_ns: u64,
}

#[derive(Default)]
pub struct KernelSites {
    held: Vec<Held>,
    kallsyms: Option<Kallsyms>,
    now_ns: u64,
}

impl KernelSites {
    pub fn on_map(&mut self, snap: &MapSnapshot, now_ns: u64) {
        let entries: Vec<(memory_ksite_key, memory_ksite)> = snap.entries.iter().filter_map(|e| Some((read(&e.key)?, read(&e.value)?))).collect();
        if entries.is_empty() {
            self.held.clear();
            return;
        }
        let ks = self.kallsyms.get_or_insert_with(Kallsyms::load);
        self.held = held(&entries, ks);
        self.now_ns = now_ns;
    }

    pub fn table(&self) -> Table {
        struct Row<'a> {
            h: &'a Held,
            age_ns: u64,
        }
        let rows: Vec<Row> = self.held.iter().take(TOP_ROWS).map(|h| Row { h, age_ns: self.now_ns.saturating_sub(h.since_ns) }).collect();
        let cols = [
            sum(column::<Row>("blocks", FieldKind::U64, "", |r| Value::u64(r.h.count))),
            sum(column("bytes", FieldKind::BYTES, "bytes", |r| Value::u64(r.h.bytes))),
            column("holding for", FieldKind::DURATION_NS, "ns", |r| Value::u64(r.age_ns)),
            extra(column("allocator", FieldKind::STR, "", |r| Value::str(if r.h.cache { "kmem_cache" } else { "kmalloc" }))),
            flex(30, key(column("site", FieldKind::STR, "", |r| Value::str(&r.h.site)))),
        ];
        table(&cols, &rows)
    }

    /// Blocks and bytes held over every site.
    pub fn totals(&self) -> (u64, u64) {
        self.held.iter().fold((0, 0), |(c, b), h| (c + h.count, b.saturating_add(h.bytes)))
    }
}

/// The sites holding something, named, largest first.
pub fn held(entries: &[(memory_ksite_key, memory_ksite)], ks: &Kallsyms) -> Vec<Held> {
    let mut v: Vec<Held> = entries
        .iter()
        .filter(|(_, s)| s.count > 0)
        .map(|(k, s)| Held { site: ks.name(k.call_site), cache: k.cache != 0, count: s.count as u64, bytes: s.bytes.max(0) as u64, since_ns: s.since_ns })
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
        let v = held(&[(k(0xffffffff81200010, 0), s(600, 600 * 192)), (k(0xffffffff81300008, 1), s(0, 0)), (k(0xffffffff81200030, 0), s(600, 600 * 1024))], &ks);
        assert_eq!(v.len(), 2, "a site back at zero holds nothing");
        assert_eq!((v[0].site.as_str(), v[0].count, v[0].bytes), ("alloc_pipe_info+0x30", 600, 600 * 1024));
        assert_eq!(v[1].site, "alloc_pipe_info+0x10");
    }
}
