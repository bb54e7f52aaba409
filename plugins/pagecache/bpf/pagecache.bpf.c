// SPDX-License-Identifier: GPL-2.0
/* The page cache (cachestat, per process and per file): pages asked for by
 * reads, pages added, dirtied, evicted and written back, in the kernel.
 *
 * No hook marks a cache hit. Reads ask filemap_get_pages() for a range of
 * a file's pages (tracepoint mm_filemap_get_pages, kernels from 6.10): the
 * pages asked for are the accesses. A page not in the cache is added first
 * (mm_filemap_add_to_page_cache): reads' misses, and new pages a write
 * makes, which are dirtied at once (writeback_dirty_folio). User space
 * takes misses as added minus dirtied and hits as accesses minus misses, as
 * libbpf-tools' cachestat does with its kprobes. mmap access is not seen
 * (the faults tracer counts its major faults).
 *
 * Eviction (mm_filemap_delete_from_page_cache) and writeback
 * (writeback_single_inode: the flusher threads, sync(2), syncfs(2); not
 * fsync's own write-out) happen in whichever task reclaims or writes: they
 * count for the file, not a process.
 *
 * Page counts come from each folio's order: a large folio is many pages.
 * Alternatives: tp_btf, then raw_tp (the same bodies, probe reads). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "dentry_name.h"
#include "pagecache.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum pagecache_figure);
SHARED_TYPE(enum pagecache_stat_idx);
SHARED_TYPE(struct pagecache_filter);
SHARED_TYPE(struct pagecache_proc);
SHARED_TYPE(struct pagecache_file_key);
SHARED_TYPE(struct pagecache_file);
SHARED_TYPE(struct pagecache_totals);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pagecache_filter);
} pagecache_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pagecache_proc);
} pagecache_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} pagecache_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct pagecache_file_key);
	__type(value, struct pagecache_file);
} pagecache_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pagecache_totals);
} pagecache_totals SEC(".maps");

/* The last range each thread's read asked for: filemap_read() asks again
 * for what is left of the same range after each batch of pages. */
struct read_range {
	void *mapping;
	__u64 index;
	__u64 last;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct read_range);
} pagecache_ranges SEC(".maps");

DECLARE_STATS(pagecache_counters, PAGECACHE_STAT_MAX);

/* 6.1-6.5 kept a large folio's order in its first tail page's own field. */
struct folio___old {
	unsigned char _folio_order;
} __attribute__((preserve_access_index));

/* The pages of a folio: 1, or 2^order for a large one. */
static __always_inline __u64 folio_pages(struct folio *folio)
{
	unsigned long flags = 0, flags1 = 0;
	unsigned char order = 0;
	int head = bpf_core_enum_value(enum pageflags, PG_head);

	/* The page flags are the folio's first word in every kernel, but their
	 * type is not (unsigned long before 6.17, memdesc_flags_t after), and
	 * CO-RE refuses a field whose type changed kind: read the word. */
	bpf_probe_read_kernel(&flags, sizeof(flags), folio);
	if (head < 0 || head >= 64 || !(flags & (1UL << head)))
		return 1;
	if (bpf_core_field_exists(((struct folio___old *)folio)->_folio_order)) {
		order = BPF_CORE_READ((struct folio___old *)folio, _folio_order);
	} else if (bpf_core_field_exists(folio->_flags_1)) {
		bpf_probe_read_kernel(&flags1, sizeof(flags1), &folio->_flags_1);
		order = flags1 & 0xff;
	}
	return 1ULL << (order & 31);
}

static __always_inline void totals_add(__u32 fig, __u64 pages)
{
	__u32 zero = 0;
	struct pagecache_totals *t = bpf_map_lookup_elem(&pagecache_totals, &zero);

	if (t && fig < PAGECACHE_FIGURES)
		t->pages[fig] += pages;
}

static __always_inline void key_of(struct inode *inode, struct pagecache_file_key *k)
{
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->_pad = 0;
	k->ino = BPF_CORE_READ(inode, i_ino);
}

/* A page count `fig` done by the current process, which `f` wants, to
 * file `inode` (key `k`): for the process, the file (made on first use,
 * named from one of its dentries) and the totals. */
static __always_inline void by_process_key(struct inode *inode, const struct pagecache_file_key *k, __u32 fig, __u64 pages)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pagecache_file *v;
	struct pagecache_proc *p;
	bool inserted;

	if (fig >= PAGECACHE_FIGURES)
		return;
	p = PROC_ENTRY(struct pagecache_proc, &pagecache_procs, &tgid, tgid, &pagecache_comms, &pagecache_counters,
		       PAGECACHE_STAT_PROC_INSERTED, PAGECACHE_STAT_PROC_FAILED);
	if (p)
		p->pages[fig] += pages;
	totals_add(fig, pages);
	if (!inode)
		return;
	v = bpf_map_lookup_elem(&pagecache_files, k);
	if (!v) {
		struct pagecache_file zero = {};

		zero.name_truncated = dentry_names(inode_dentry(inode), zero.name, sizeof(zero.name), zero.dir, sizeof(zero.dir));
		v = map_insert_or_find(&pagecache_files, k, &zero, &inserted);
		if (inserted)
			stat_inc(&pagecache_counters, PAGECACHE_STAT_FILE_INSERTED);
		if (!v) {
			stat_inc(&pagecache_counters, PAGECACHE_STAT_FILE_FAILED);
			return;
		}
	}
	__sync_fetch_and_add(&v->pages[fig], pages);
}

static __always_inline void by_process(struct inode *inode, __u32 fig, __u64 pages)
{
	struct pagecache_file_key k = {};

	if (inode)
		key_of(inode, &k);
	by_process_key(inode, &k, fig, pages);
}

/* A page count `fig` no process owns (eviction, writeback): for the file
 * if a process made it known, and for the totals if no process filter is
 * set or the file is known. */
static __always_inline void by_file(struct inode *inode, __u32 fig, __u64 pages)
{
	__u32 zero = 0;
	struct pagecache_filter *f = bpf_map_lookup_elem(&pagecache_filter, &zero);
	struct pagecache_file_key k;
	struct pagecache_file *v;

	if (!f || !inode)
		return;
	if (fig >= PAGECACHE_FIGURES)
		return;
	key_of(inode, &k);
	v = bpf_map_lookup_elem(&pagecache_files, &k);
	if (v)
		__sync_fetch_and_add(&v->pages[fig], pages);
	if (v || !proc_filter_picks(&f->proc))
		totals_add(fig, pages);
}

static __always_inline bool wanted(void)
{
	__u32 zero = 0;
	struct pagecache_filter *f = bpf_map_lookup_elem(&pagecache_filter, &zero);

	return f && proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) && uid_wanted(&f->uid);
}

/* Each on_* checks its pointers first: tp_btf arguments may be NULL, and
 * the verifier allows no arithmetic on them before that check. */
static __always_inline void on_add(struct folio *folio)
{
	if (folio && wanted())
		by_process(BPF_CORE_READ(folio, mapping, host), PAGECACHE_ADDED, folio_pages(folio));
}

static __always_inline void on_delete(struct folio *folio)
{
	if (folio)
		by_file(BPF_CORE_READ(folio, mapping, host), PAGECACHE_EVICTED, folio_pages(folio));
}

static __always_inline void on_dirty(struct folio *folio, struct address_space *mapping)
{
	if (folio && mapping && wanted())
		by_process(BPF_CORE_READ(mapping, host), PAGECACHE_DIRTIED, folio_pages(folio));
}

static __always_inline void on_written(struct inode *inode, struct writeback_control *wbc, long nr_to_write)
{
	long left;

	if (!inode || !wbc)
		return;
	left = BPF_CORE_READ(wbc, nr_to_write);
	if (nr_to_write > left)
		by_file(inode, PAGECACHE_WRITTEN, nr_to_write - left);
}

/* A read asks for pages index..last of the file: counted once per read
 * (the repeats for what is left of the range are the same read), clamped
 * to the file's end (a read at the end asks for pages that are not there).
 * The caller reads the inode's figures: tp_btf by plain loads through its
 * typed pointers, raw_tp by copies (the hot path of this tracer). */
static __always_inline void on_read(void *mapping, struct inode *inode, __s64 size, const struct pagecache_file_key *k,
				    __u64 index, __u64 last)
{
	struct read_range *r;
	__u64 end;

	if (!inode || !wanted())
		return;
	r = bpf_task_storage_get(&pagecache_ranges, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (r) {
		if (r->mapping == mapping && r->last == last && index > r->index) {
			r->index = index;
			return;
		}
		r->mapping = mapping;
		r->index = index;
		r->last = last;
	}
	if (size <= 0)
		return;
	end = (size - 1) >> 12;
	if (last > end)
		last = end;
	if (index > last)
		return;
	by_process_key(inode, k, PAGECACHE_ACCESSED, last - index + 1);
}

/* ---- alternative 1: BTF-typed tracepoints ---- */
SEC("tp_btf/mm_filemap_add_to_page_cache")
int BPF_PROG(pagecache_add_btf, struct folio *folio)
{
	on_add(folio);
	return 0;
}

SEC("tp_btf/mm_filemap_delete_from_page_cache")
int BPF_PROG(pagecache_delete_btf, struct folio *folio)
{
	on_delete(folio);
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(pagecache_dirty_btf, struct folio *folio, struct address_space *mapping)
{
	on_dirty(folio, mapping);
	return 0;
}

SEC("tp_btf/writeback_single_inode")
int BPF_PROG(pagecache_written_btf, struct inode *inode, struct writeback_control *wbc, unsigned long nr_to_write)
{
	on_written(inode, wbc, nr_to_write);
	return 0;
}

SEC("tp_btf/mm_filemap_get_pages")
int BPF_PROG(pagecache_reads_btf, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	struct inode *inode;

	if (!mapping)
		return 0;
	inode = mapping->host;
	if (inode) {
		struct pagecache_file_key k = { .dev = inode->i_sb->s_dev, .ino = inode->i_ino };

		on_read(mapping, inode, inode->i_size, &k, index, last_index);
	}
	return 0;
}

/* ---- alternative 2: raw tracepoints ---- */
SEC("raw_tp/mm_filemap_add_to_page_cache")
int BPF_PROG(pagecache_add_raw, struct folio *folio)
{
	on_add(folio);
	return 0;
}

SEC("raw_tp/mm_filemap_delete_from_page_cache")
int BPF_PROG(pagecache_delete_raw, struct folio *folio)
{
	on_delete(folio);
	return 0;
}

SEC("raw_tp/writeback_dirty_folio")
int BPF_PROG(pagecache_dirty_raw, struct folio *folio, struct address_space *mapping)
{
	on_dirty(folio, mapping);
	return 0;
}

SEC("raw_tp/writeback_single_inode")
int BPF_PROG(pagecache_written_raw, struct inode *inode, struct writeback_control *wbc, unsigned long nr_to_write)
{
	on_written(inode, wbc, nr_to_write);
	return 0;
}

SEC("raw_tp/mm_filemap_get_pages")
int BPF_PROG(pagecache_reads_raw, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	struct inode *inode = BPF_CORE_READ(mapping, host);
	struct pagecache_file_key k;

	if (inode) {
		key_of(inode, &k);
		on_read(mapping, inode, BPF_CORE_READ(inode, i_size), &k, index, last_index);
	}
	return 0;
}

/* In both alternatives (optional): keeps process names current (exec, prctl). */
SEC("tracepoint/task/task_rename")
int pagecache_rename_tp(struct trace_event_raw_task_rename *ctx)
{
	comm_renamed(&pagecache_comms, ctx->pid, ctx->newcomm);
	return 0;
}
