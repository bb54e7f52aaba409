//! Page allocations' call sites: mm_page_alloc names no caller, so the BPF
//! program takes the first frame of the kernel stack outside the page
//! allocator's own functions. This module says which functions those are
//! and finds their address ranges in kallsyms for the filter.

use crate::types::MEMORY_PAGE_SKIP_MAX;
use tracer_plugin_kit::ksym::Kallsyms;

/// The page allocator's entry points, wrappers and tracepoint glue, by
/// base name (without `_noprof`, and without a compiler suffix such as
/// `.constprop.0`): names of 6.1 and of 6.18 both. A frame in one of them
/// is the allocator, not who asked for the page.
const ALLOCATOR: &[&str] = &[
    "perf_trace_mm_page_alloc",
    "trace_event_raw_event_mm_page_alloc",
    "__traceiter_mm_page_alloc",
    "__alloc_pages",
    "__alloc_frozen_pages",
    "alloc_pages",
    "alloc_frozen_pages",
    "alloc_pages_mpol",
    "alloc_frozen_pages_mpol",
    "__alloc_pages_slowpath",
    "__alloc_pages_direct_compact",
    "__alloc_pages_direct_reclaim",
    "__alloc_pages_may_oom",
    "get_page_from_freelist",
    "__folio_alloc",
    "folio_alloc",
    "folio_alloc_mpol",
    "vma_alloc_folio",
    "__get_free_pages",
    "get_free_pages",
    "get_zeroed_page",
    "alloc_pages_exact",
    "alloc_pages_exact_nid",
    "alloc_page_interleave",
    "alloc_pages_preferred_many",
    "alloc_pages_nolock",
    "alloc_pages_node",
    "__alloc_pages_node",
    "filemap_alloc_folio",
];

/// Whether kallsyms name `name` is one of the allocator's functions.
pub fn is_page_allocator(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name);
    let base = base.strip_suffix("_noprof").unwrap_or(base);
    ALLOCATOR.contains(&base)
}

/// The allocator's address ranges, for `struct memory_filter`.
pub fn skip_ranges(ks: &Kallsyms) -> Result<Vec<(u64, u64)>, String> {
    let v = ks.ranges(is_page_allocator);
    if v.is_empty() {
        return Err("page_allocations: /proc/kallsyms names none of the page allocator's functions (addresses hidden: run as root, or kernel.kptr_restrict)".into());
    }
    if v.len() > MEMORY_PAGE_SKIP_MAX as usize {
        return Err(format!("page_allocations: this kernel has {} page allocator functions, the filter holds {MEMORY_PAGE_SKIP_MAX}", v.len()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_is_known_by_base_name_on_either_kernel() {
        for n in ["__alloc_pages", "__alloc_frozen_pages_noprof", "alloc_pages_mpol", "__alloc_pages_slowpath.constprop.0", "vma_alloc_folio_noprof", "perf_trace_mm_page_alloc"] {
            assert!(is_page_allocator(n), "{n}");
        }
        for n in ["anon_pipe_write", "pipe_write", "do_anonymous_page", "__pfx_alloc_pages_noprof", "alloc_pages_bulk_noprof", "allocate_slab"] {
            assert!(!is_page_allocator(n), "{n}");
        }
        let ks = Kallsyms::parse("ffffffff81000000 T alloc_pages_noprof\nffffffff81000100 T anon_pipe_write\nffffffff81000200 t __alloc_pages_slowpath.constprop.0\nffffffff81000300 T vfs_write\n");
        assert_eq!(skip_ranges(&ks).unwrap(), vec![(0xffffffff81000000, 0xffffffff81000100), (0xffffffff81000200, 0xffffffff81000300)]);
        assert!(skip_ranges(&Kallsyms::parse("")).unwrap_err().contains("kallsyms"));
    }
}
