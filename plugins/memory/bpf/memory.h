/* SPDX-License-Identifier: GPL-2.0 */
/* What memory.bpf.c and src/lib.rs share: the Rust side is generated from this. */
#ifndef __MEMORY_H
#define __MEMORY_H

/* Entries of the tables of followed allocations (LRU: full, they forget). */
#define MEMORY_ALLOCS_MAX 32768
#define MEMORY_KALLOCS_MAX 65536

/* Page allocations: kernel frames looked at for the caller, and address
 * ranges of the page allocator's own functions (skipped to find it). */
#define MEMORY_PAGE_FRAMES 8
#define MEMORY_PAGE_SKIP_MAX 48

/* Frames kept of each allocation's user stack. */
#define MEMORY_STACK_DEPTH 32
#define MEMORY_HIST_SLOTS 32

enum memory_stat_idx {
	MEMORY_STAT_RING_FULL = 0,      /* an OOM kill record not written: ring full */
	MEMORY_STAT_OOM_KILLS = 1,      /* OOM kills seen (also those filtered out of the records) */
	MEMORY_STAT_ALLOCS = 2,         /* user allocations seen (malloc, calloc, realloc) */
	MEMORY_STAT_FREES = 3,          /* frees of a tracked allocation */
	MEMORY_STAT_ALLOC_LOST = 4,     /* allocations not tracked: the table was full */
	MEMORY_STAT_STACK_LOST = 5,     /* allocations whose stack was not kept */
	MEMORY_STAT_RECLAIM_LOST = 6,   /* reclaim stalls whose start was not kept */
	MEMORY_STAT_PROC_INSERTED = 7,  /* processes with reclaim stalls: minus live = evicted */
	MEMORY_STAT_PROC_FAILED = 8,    /* a process's reclaim figures not stored */
	MEMORY_STAT_KALLOCS = 9,        /* kernel allocations followed */
	MEMORY_STAT_KFREES = 10,        /* frees of a followed kernel allocation */
	MEMORY_STAT_KALLOC_LOST = 11,   /* kernel allocations not followed: a table was full */
	MEMORY_STAT_KSTALE = 12,        /* followed kernel addresses handed out again (freed unseen) */
	MEMORY_STAT_STALE = 13,         /* followed user addresses handed out again (freed unseen) */
	MEMORY_STAT_PAGE_ALLOCS = 14,   /* page allocations followed */
	MEMORY_STAT_PAGE_FREES = 15,    /* frees of a followed page allocation */
	MEMORY_STAT_PAGE_NO_SITE = 16,  /* page allocations whose caller was not found in their stack */
	MEMORY_STAT_MAX = 17,
};

struct memory_filter {
	struct proc_filter proc; /* the victim's pid and comm; the reclaiming process */
	struct uid_filter uid;   /* the reclaiming or allocating task's (not the OOM victim's) */
	__u32 leaks_pid;         /* the process whose allocations are followed */
	__u32 kernel_allocs;     /* follow kmalloc and kmem_cache allocations */
	__u32 page_allocs;       /* follow page allocations (mm_page_alloc) */
	__u32 page_size;
	__u32 page_skip_n;       /* ranges in page_skip */
	__u32 _pad;
	/* [start, end) of each page allocator function: a page allocation's
	 * call site is the first frame of its kernel stack outside them. */
	__u64 page_skip[MEMORY_PAGE_SKIP_MAX][2];
};

enum memory_allocator {
	MEMORY_KMALLOC = 0,
	MEMORY_KMEM_CACHE = 1,
	MEMORY_PAGES = 2,
};

/* A kernel allocation site: the caller of kmalloc or kmem_cache_alloc, or
 * of the page allocator. */
struct memory_ksite_key {
	__u64 call_site;
	__u32 cache; /* enum memory_allocator */
	__u32 _pad;
};

/* What a site holds now: allocations made since the tracer started (by the
 * tasks the filter picks) and not freed (by anyone). `since_ns`: when its
 * count last rose from zero, i.e. it has held something ever since (the age
 * of its oldest block comes from memory_kallocs). */
struct memory_ksite {
	__s64 count;
	__s64 bytes;
	__u64 since_ns;
};

/* A followed kernel allocation (key: its address; a page allocation's: its
 * page frame number, below any kernel address). */
struct memory_kalloc {
	__u64 call_site;
	__u64 ts_ns; /* when it was made: user space finds each site's oldest */
	__u32 cache;
	__u32 bytes;
};

/* An allocation of the followed process not freed yet (key: its address). */
struct memory_alloc {
	__u64 size;
	__u64 ts_ns;
	__s32 stack_id; /* in memory_stacks; < 0: not kept */
	__u32 _pad;
};

/* Reclaim stalls (direct, and memory cgroup limit reclaim), per kind: how
 * long the allocating task waited, usecs; the sums in ns. */
enum memory_reclaim_kind {
	MEMORY_RECLAIM_DIRECT = 0,
	MEMORY_RECLAIM_MEMCG = 1,
	MEMORY_RECLAIM_KINDS = 2,
};

struct memory_reclaim_hist {
	__u64 slots[MEMORY_RECLAIM_KINDS][MEMORY_HIST_SLOTS];
	__u64 sum_ns[MEMORY_RECLAIM_KINDS];
	__u64 reclaimed[MEMORY_RECLAIM_KINDS]; /* pages the stalls reclaimed */
};

/* Per process (tgid), per CPU: reclaim stalls and their time. */
struct memory_reclaim_proc {
	__u64 stalls;
	__u64 ns;
};

/* Ring memory_events: one per OOM kill (oom:mark_victim). Sizes in KiB, as
 * the kernel reports them; 0 where this kernel's tracepoint lacks them. */
struct memory_oom {
	__u64 ts_ns;
	__u64 total_vm_kb;
	__u64 anon_rss_kb;
	__u64 file_rss_kb;
	__u64 shmem_rss_kb;
	__u64 pgtables_kb;
	__u64 memcg_limit_kb; /* the killing task's memory cgroup limit; 0: none or not known */
	__u32 pid;            /* the victim (tgid) */
	__u32 uid;
	__u32 killer_pid;     /* the task whose allocation caused the kill */
	__s16 oom_score_adj;
	__u8 has_details;     /* the tracepoint carries sizes and uid (newer kernels) */
	__u8 _pad;
	char comm[16];        /* the victim's */
	char killer_comm[16];
};

#endif
