// SPDX-License-Identifier: GPL-2.0
/* Memory pressure: OOM kills, streamed one record each.
 *
 * oom:mark_victim fires when the OOM killer has chosen and marked its
 * victim, next to the kernel's count of OOM kills (/proc/vmstat oom_kill).
 * The classic tracepoint is used: newer kernels' carries the victim's comm,
 * sizes, uid and oom_score_adj, older ones' only the pid (read with CO-RE
 * field checks, so one object serves both). The current task is the one
 * whose allocation failed: its memory cgroup's limit says which limit was
 * hit (a cgroup OOM) or none (the whole machine). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum memory_stat_idx);
SHARED_TYPE(struct memory_filter);
SHARED_TYPE(struct memory_oom);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memory_filter);
} memory_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} memory_events SEC(".maps");

DECLARE_STATS(memory_counters, MEMORY_STAT_MAX);

/* The limit of the current task's memory cgroup, in KiB; 0 for none (the
 * root's "max") or not known. Cgroup v1 and v2 both keep it in memory.max. */
static __always_inline __u64 memcg_limit_kb(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = NULL;
	struct css_set *cset;
	unsigned long max;

	cset = BPF_CORE_READ(t, cgroups);
	if (!cset || id < 0 || id >= 16)
		return 0;
	bpf_probe_read_kernel(&css, sizeof(css), &cset->subsys[id]);
	if (!css)
		return 0;
	/* css is mem_cgroup's first member. */
	max = BPF_CORE_READ((struct mem_cgroup *)css, memory.max);
	/* PAGE_COUNTER_MAX: no limit. */
	if (max >= (~0UL >> 1) / 4096)
		return 0;
	return (__u64)max * 4;
}

SEC("tracepoint/oom/mark_victim")
int memory_oom_tp(struct trace_event_raw_mark_victim *ctx)
{
	__u32 zero = 0, pid = ctx->pid;
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);
	struct memory_oom *e;
	char comm[16] = {};

	stat_inc(&memory_counters, MEMORY_STAT_OOM_KILLS);
	if (!f)
		return 0;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		__u32 loc = BPF_CORE_READ(ctx, __data_loc_comm);

		bpf_probe_read_kernel_str(comm, sizeof(comm), (void *)ctx + (loc & 0xffff));
	}
	if (!proc_wanted_as(&f->proc, pid, comm))
		return 0;
	e = bpf_ringbuf_reserve(&memory_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&memory_counters, MEMORY_STAT_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = pid;
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	if (bpf_core_field_exists(ctx->total_vm)) {
		e->has_details = 1;
		e->total_vm_kb = BPF_CORE_READ(ctx, total_vm);
		e->anon_rss_kb = BPF_CORE_READ(ctx, anon_rss);
		e->file_rss_kb = BPF_CORE_READ(ctx, file_rss);
		e->shmem_rss_kb = BPF_CORE_READ(ctx, shmem_rss);
		e->pgtables_kb = BPF_CORE_READ(ctx, pgtables);
		e->uid = BPF_CORE_READ(ctx, uid);
		e->oom_score_adj = BPF_CORE_READ(ctx, oom_score_adj);
	}
	e->killer_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e->killer_comm, sizeof(e->killer_comm));
	e->memcg_limit_kb = memcg_limit_kb();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---- user-space allocations of one process (memleak -p) ----
 * uprobes on its libc's malloc, calloc, realloc and free, attached to that
 * process only (the host resolves the library it maps). An allocation is
 * known at the allocator's return (its address), with the user stack that
 * made it; a free of a known address forgets it. What is left is what the
 * process holds: aggregated by stack in user space, oldest first. */

SHARED_TYPE(struct memory_alloc);
SHARED_TYPE(struct memory_reclaim_hist);
SHARED_TYPE(struct memory_reclaim_proc);
SHARED_TYPE(enum memory_reclaim_kind);

/* LRU: full, it forgets the allocations not touched longest (counted:
 * followed - freed - live) rather than refuse every new one for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MEMORY_ALLOCS_MAX);
	__type(key, __u64);
	__type(value, struct memory_alloc);
} memory_allocs SEC(".maps");

/* The size asked for, from the allocator's entry to its return, per thread
 * (allocators do not nest within a thread: realloc is one call). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} memory_sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 8192);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, MEMORY_STACK_DEPTH * sizeof(__u64));
} memory_stacks SEC(".maps");

static __always_inline bool leaks_wanted(void)
{
	__u32 zero = 0;
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);

	return f && f->leaks_pid && f->leaks_pid == bpf_get_current_pid_tgid() >> 32;
}

/* The size in flight; the top bit says "set" (a size of 0 is a real call). */
#define SIZE_SET (1ULL << 63)

static __always_inline void size_enter(__u64 size)
{
	__u64 *s;

	if (!leaks_wanted())
		return;
	s = bpf_task_storage_get(&memory_sizes, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (s)
		*s = (size & ~SIZE_SET) | SIZE_SET;
}

static __always_inline void alloc_exit(struct pt_regs *ctx)
{
	__u64 *s = bpf_task_storage_get(&memory_sizes, bpf_get_current_task_btf(), 0, 0);
	__u64 addr = PT_REGS_RC(ctx);
	struct memory_alloc a = {};

	if (!s || !(*s & SIZE_SET))
		return;
	a.size = *s & ~SIZE_SET;
	*s = 0;
	if (!addr)
		return;
	a.ts_ns = bpf_ktime_get_ns();
	a.stack_id = bpf_get_stackid(ctx, &memory_stacks, BPF_F_USER_STACK);
	if (a.stack_id < 0)
		stat_inc(&memory_counters, MEMORY_STAT_STACK_LOST);
	/* Still followed: freed by a way no probe sees, handed out again. */
	if (bpf_map_lookup_elem(&memory_allocs, &addr))
		stat_inc(&memory_counters, MEMORY_STAT_STALE);
	stat_inc(&memory_counters, MEMORY_STAT_ALLOCS);
	if (bpf_map_update_elem(&memory_allocs, &addr, &a, BPF_ANY))
		stat_inc(&memory_counters, MEMORY_STAT_ALLOC_LOST);
}

static __always_inline void forget(__u64 addr)
{
	if (addr && !bpf_map_delete_elem(&memory_allocs, &addr))
		stat_inc(&memory_counters, MEMORY_STAT_FREES);
}

SEC("uprobe")
int BPF_KPROBE(memory_malloc, size_t size)
{
	size_enter(size);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(memory_malloc_ret)
{
	alloc_exit(ctx);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memory_calloc, size_t n, size_t size)
{
	size_enter((__u64)n * size);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(memory_calloc_ret)
{
	alloc_exit(ctx);
	return 0;
}

/* realloc frees its old block (when it returns a new one, or the same) and
 * makes a new allocation of the new size. */
SEC("uprobe")
int BPF_KPROBE(memory_realloc, void *ptr, size_t size)
{
	if (!leaks_wanted())
		return 0;
	forget((__u64)ptr);
	size_enter(size);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(memory_realloc_ret)
{
	alloc_exit(ctx);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(memory_free, void *ptr)
{
	if (leaks_wanted())
		forget((__u64)ptr);
	return 0;
}

/* ---- reclaim stalls: an allocating task reclaiming memory itself ----
 * direct reclaim (the machine is short of memory) and memory cgroup limit
 * reclaim (its cgroup is at its limit), begin to end, in that task. */

struct reclaim_start {
	__u64 ts_ns;
	__u32 kind;
	__u32 gen;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct reclaim_start);
} memory_reclaim_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memory_reclaim_hist);
} memory_reclaim_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct memory_reclaim_proc);
} memory_reclaim_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} memory_comms SEC(".maps");

static __always_inline void reclaim_begin(__u32 kind)
{
	__u32 zero = 0;
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);
	struct reclaim_start *s;

	if (!f || !proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) || !uid_wanted(&f->uid))
		return;
	s = bpf_task_storage_get(&memory_reclaim_start, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		stat_inc(&memory_counters, MEMORY_STAT_RECLAIM_LOST);
		return;
	}
	s->kind = kind;
	s->gen = f->proc.gen;
	s->ts_ns = bpf_ktime_get_ns();
}

static __always_inline void reclaim_end(__u64 nr_reclaimed)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct reclaim_start *s = bpf_task_storage_get(&memory_reclaim_start, bpf_get_current_task_btf(), 0, 0);
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);
	struct memory_reclaim_hist *h;
	struct memory_reclaim_proc *p;
	__u32 kind;
	__u64 ns;

	if (!s || !s->ts_ns || !f)
		return;
	ns = bpf_ktime_get_ns() - s->ts_ns;
	s->ts_ns = 0;
	if (s->gen != f->proc.gen)
		return;
	kind = s->kind & 1;
	h = bpf_map_lookup_elem(&memory_reclaim_hist, &zero);
	if (h) {
		h->slots[kind][hist_slot(ns / 1000, MEMORY_HIST_SLOTS)]++;
		h->sum_ns[kind] += ns;
		h->reclaimed[kind] += nr_reclaimed;
	}
	p = PROC_ENTRY(struct memory_reclaim_proc, &memory_reclaim_procs, &tgid, tgid, &memory_comms, &memory_counters,
		       MEMORY_STAT_PROC_INSERTED, MEMORY_STAT_PROC_FAILED);
	if (p) {
		p->stalls++;
		p->ns += ns;
	}
}

SEC("tp_btf/mm_vmscan_direct_reclaim_begin")
int BPF_PROG(memory_direct_begin, int order, gfp_t gfp)
{
	reclaim_begin(MEMORY_RECLAIM_DIRECT);
	return 0;
}

SEC("tp_btf/mm_vmscan_direct_reclaim_end")
int BPF_PROG(memory_direct_end, unsigned long nr_reclaimed)
{
	reclaim_end(nr_reclaimed);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_begin")
int BPF_PROG(memory_memcg_begin, int order, gfp_t gfp)
{
	reclaim_begin(MEMORY_RECLAIM_MEMCG);
	return 0;
}

SEC("tp_btf/mm_vmscan_memcg_reclaim_end")
int BPF_PROG(memory_memcg_end, unsigned long nr_reclaimed)
{
	reclaim_end(nr_reclaimed);
	return 0;
}

/* ---- kernel allocations by call site (memleak without -p) ----
 * kmem:kmalloc and kmem:kmem_cache_alloc give each allocation's caller and
 * address; kfree and kmem_cache_free the address freed. Allocations made by
 * the tasks the filter picks are followed to their free (by whichever task)
 * and summed per call site. Only with `kernel_allocations`: every
 * allocation of the kernel pays for it. */

SHARED_TYPE(struct memory_ksite_key);
SHARED_TYPE(struct memory_ksite);
SHARED_TYPE(struct memory_kalloc);
SHARED_TYPE(enum memory_allocator);

/* LRU, as memory_allocs: a full table forgets the allocations not touched
 * longest (their sites keep counting them: the summary says how many were
 * forgotten) rather than refuse every new one for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MEMORY_KALLOCS_MAX);
	__type(key, __u64);
	__type(value, struct memory_kalloc);
} memory_kallocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct memory_ksite_key);
	__type(value, struct memory_ksite);
} memory_ksites SEC(".maps");

static __always_inline void site_sub(__u64 call_site, __u32 cache, __u32 bytes)
{
	struct memory_ksite_key k = { .call_site = call_site, .cache = cache };
	struct memory_ksite *site = bpf_map_lookup_elem(&memory_ksites, &k);

	if (site) {
		__sync_fetch_and_add(&site->count, -1);
		__sync_fetch_and_add(&site->bytes, -(__s64)bytes);
	}
}

/* Follow allocation `key` (an address, or a page frame number) of `bytes`
 * made at call_site by the current task, if the filter picks it. */
static __always_inline void kalloc(struct memory_filter *f, __u64 call_site, __u64 key, __u64 bytes, __u32 cache,
				   __u32 made_stat)
{
	struct memory_ksite_key k = { .call_site = call_site, .cache = cache };
	struct memory_kalloc a = { .call_site = call_site, .cache = cache, .bytes = bytes, .ts_ns = bpf_ktime_get_ns() };
	struct memory_ksite *site;
	bool inserted;

	if (!proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) || !uid_wanted(&f->uid))
		return;
	site = bpf_map_lookup_elem(&memory_ksites, &k);
	if (!site) {
		struct memory_ksite z = {};

		site = map_insert_or_find(&memory_ksites, &k, &z, &inserted);
		if (!site) {
			stat_inc(&memory_counters, MEMORY_STAT_KALLOC_LOST);
			return;
		}
	}
	/* Still followed: freed by a way no hook sees (a bulk free), and
	 * now handed out again. Its site holds it no longer. */
	{
		struct memory_kalloc *old = bpf_map_lookup_elem(&memory_kallocs, &key);

		if (old) {
			site_sub(old->call_site, old->cache, old->bytes);
			stat_inc(&memory_counters, MEMORY_STAT_KSTALE);
		}
	}
	if (bpf_map_update_elem(&memory_kallocs, &key, &a, BPF_ANY)) {
		stat_inc(&memory_counters, MEMORY_STAT_KALLOC_LOST);
		return;
	}
	stat_inc(&memory_counters, made_stat);
	if (__sync_fetch_and_add(&site->count, 1) == 0)
		site->since_ns = bpf_ktime_get_ns();
	__sync_fetch_and_add(&site->bytes, bytes);
}

static __always_inline void kfree(__u64 key, __u32 freed_stat)
{
	struct memory_kalloc *a = bpf_map_lookup_elem(&memory_kallocs, &key);

	if (!a)
		return;
	site_sub(a->call_site, a->cache, a->bytes);
	bpf_map_delete_elem(&memory_kallocs, &key);
	stat_inc(&memory_counters, freed_stat);
}

/* The filter, if it asks for kmalloc and kmem_cache allocations. */
static __always_inline struct memory_filter *kmem_filter(void)
{
	__u32 zero = 0;
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);

	return f && f->kernel_allocs ? f : NULL;
}

static __always_inline void kmem_alloc(__u64 call_site, __u64 ptr, __u64 bytes, __u32 cache)
{
	struct memory_filter *f = kmem_filter();

	if (f && ptr)
		kalloc(f, call_site, ptr, bytes, cache, MEMORY_STAT_KALLOCS);
}

SEC("tracepoint/kmem/kmalloc")
int memory_kmalloc_tp(struct trace_event_raw_kmalloc *ctx)
{
	kmem_alloc(ctx->call_site, (__u64)ctx->ptr, ctx->bytes_alloc, MEMORY_KMALLOC);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_alloc")
int memory_cache_alloc_tp(struct trace_event_raw_kmem_cache_alloc *ctx)
{
	kmem_alloc(ctx->call_site, (__u64)ctx->ptr, ctx->bytes_alloc, MEMORY_KMEM_CACHE);
	return 0;
}

SEC("tracepoint/kmem/kfree")
int memory_kfree_tp(struct trace_event_raw_kfree *ctx)
{
	kfree((__u64)ctx->ptr, MEMORY_STAT_KFREES);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_free")
int memory_cache_free_tp(struct trace_event_raw_kmem_cache_free *ctx)
{
	kfree((__u64)ctx->ptr, MEMORY_STAT_KFREES);
	return 0;
}

/* ---- page allocations by call site ----
 * mm_page_alloc names no caller: the caller is the first frame of the kernel
 * stack outside the page allocator's own functions (their address ranges
 * come from user space, from kallsyms). Keyed by page frame number, which
 * mm_page_free gives back. Only with `page_allocations`: every page
 * allocation then walks its stack (about a microsecond). */

static __always_inline bool in_page_allocator(struct memory_filter *f, __u64 ip)
{
	for (int i = 0; i < MEMORY_PAGE_SKIP_MAX; i++) {
		if (i >= f->page_skip_n)
			break;
		if (ip >= f->page_skip[i][0] && ip < f->page_skip[i][1])
			return true;
	}
	return false;
}

SEC("tracepoint/kmem/mm_page_alloc")
int memory_page_alloc_tp(struct trace_event_raw_mm_page_alloc *ctx)
{
	__u32 zero = 0;
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);
	__u64 ips[MEMORY_PAGE_FRAMES] = {};
	__u64 pfn = ctx->pfn, site = 0;
	long n;

	/* A failed allocation reports pfn -1. */
	if (!f || !f->page_allocs || pfn == (__u64)-1)
		return 0;
	if (!proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32) || !uid_wanted(&f->uid))
		return 0;
	n = bpf_get_stack(ctx, ips, sizeof(ips), 0);
	for (int i = 0; i < MEMORY_PAGE_FRAMES; i++) {
		if (i * 8 >= n)
			break;
		if (!in_page_allocator(f, ips[i])) {
			site = ips[i];
			break;
		}
	}
	/* Followed all the same, under site 0 ("caller not found"). */
	if (!site)
		stat_inc(&memory_counters, MEMORY_STAT_PAGE_NO_SITE);
	kalloc(f, site, pfn, (__u64)f->page_size << (ctx->order & 31), MEMORY_PAGES, MEMORY_STAT_PAGE_ALLOCS);
	return 0;
}

SEC("tracepoint/kmem/mm_page_free")
int memory_page_free_tp(struct trace_event_raw_mm_page_free *ctx)
{
	kfree(ctx->pfn, MEMORY_STAT_PAGE_FREES);
	return 0;
}
