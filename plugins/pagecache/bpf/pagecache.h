/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by pagecache.bpf.c and plugins/pagecache/src. */
#ifndef __PAGECACHE_H
#define __PAGECACHE_H

#define PAGECACHE_NAME_LEN 48
#define PAGECACHE_DIR_LEN 32

/* Page counts, in this order in every figure array. */
enum pagecache_figure {
	PAGECACHE_ACCESSED = 0, /* pages read(2)-family calls asked the cache for */
	PAGECACHE_ADDED = 1,    /* pages added to the cache (reads' misses, new pages written) */
	PAGECACHE_DIRTIED = 2,  /* pages made dirty */
	PAGECACHE_EVICTED = 3,  /* pages removed from the cache (reclaim, invalidation, truncation) */
	PAGECACHE_WRITTEN = 4,  /* pages written back by the flusher, sync(2), syncfs(2) */
	PAGECACHE_FIGURES = 5,
};

enum pagecache_stat_idx {
	PAGECACHE_STAT_PROC_INSERTED = 0, /* minus live = evicted */
	PAGECACHE_STAT_PROC_FAILED = 1,
	PAGECACHE_STAT_FILE_INSERTED = 2,
	PAGECACHE_STAT_FILE_FAILED = 3,
	PAGECACHE_STAT_MAX = 4,
};

/* Key 0 of pagecache_filter. */
struct pagecache_filter {
	struct proc_filter proc;
	struct uid_filter uid;
};

/* Per process (tgid), per CPU: what it did to the cache. */
struct pagecache_proc {
	__u64 pages[PAGECACHE_FIGURES];
};

/* One file (device, inode). */
struct pagecache_file_key {
	__u32 dev;
	__u32 _pad;
	__u64 ino;
};

/* Its figures, updated atomically, and its name when first seen. */
struct pagecache_file {
	__u64 pages[PAGECACHE_FIGURES];
	__u8 name_truncated;
	__u8 _pad[7];
	char name[PAGECACHE_NAME_LEN];
	char dir[PAGECACHE_DIR_LEN];
};

/* Machine-wide, per CPU, never evicted: every page the hooks saw (the
 * process filter applies to what a process does: accessed, added,
 * dirtied). */
struct pagecache_totals {
	__u64 pages[PAGECACHE_FIGURES];
};

#endif
