/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by block.bpf.c and plugins/block/src. */
#ifndef __BLOCK_H
#define __BLOCK_H

#define BLOCK_HIST_SLOTS 32

enum block_stat_idx {
	BLOCK_STAT_RQ_FAILED = 0,     /* a request's state could not be stored */
	BLOCK_STAT_UNSEEN = 1,        /* completed, never seen before (begun before attach): counted without owner */
	BLOCK_STAT_REQUEUED = 2,      /* handed back by the driver, to be issued again */
	BLOCK_STAT_DISK_FAILED = 3,   /* per-disk figures could not be stored */
	BLOCK_STAT_PROC_INSERTED = 4, /* new per-process entries: minus live = evicted */
	BLOCK_STAT_PROC_FAILED = 5,   /* per-process figures could not be stored */
	BLOCK_STAT_RQ_INSERTED = 6,   /* requests followed: minus deleted and live = evicted */
	BLOCK_STAT_RQ_DELETED = 7,    /* requests no longer followed (completed, merged away) */
	BLOCK_STAT_UNOWNED = 8,       /* such a request not counted: a process filter is set */
	BLOCK_STAT_STALE = 9,         /* a request's address reused while its state remained: replaced */
	BLOCK_STAT_STALE_DONE = 10,   /* of those, completed but never counted (no block_io_done came) */
	BLOCK_STAT_MAX = 11,
};

/* The operation class of a request (REQ_OP_* folded). */
enum block_op {
	BLOCK_OP_READ = 0,
	BLOCK_OP_WRITE = 1,
	BLOCK_OP_FLUSH = 2,
	BLOCK_OP_DISCARD = 3, /* discard, secure erase, write zeroes */
	BLOCK_OP_OTHER = 4,
	BLOCK_OP_MAX = 5,
};

/* A request in flight (block_rqs, by its address). */
struct block_rq {
	__u64 seen_ns;  /* first seen (a start when the kernel keeps none) */
	__u64 issue_ns; /* 0: not issued (yet, or again after a requeue) */
	__u64 done_ns;  /* completed; counted at block_io_done, where the kernel's accounting ends */
	__u32 tgid;
	__u32 dev;
	__u32 bytes;      /* at issue */
	__u32 done_bytes; /* at completion */
	__u8 skip;        /* not wanted by the filter: followed only to stay so */
	__u8 op;
	__u8 sync;
	__u8 error;       /* completed with an error */
	__u32 _pad;
	char comm[TASK_COMM_LEN];
};

/* Key 0 of block_filter. */
struct block_filter {
	struct proc_filter proc;
	struct uid_filter uid; /* the submitter's */
	__u32 dev; /* only this disk (MAJOR << 20 | MINOR, the kernel's dev_t); 0: all */
	__u32 _pad;
};

/* A log2 histogram and the sum of what it counts (ns or bytes). */
struct block_hist {
	__u64 slots[BLOCK_HIST_SLOTS];
	__u64 sum;
};

/* Key of block_disks: one disk, one operation class, sync or not. */
struct block_disk_key {
	__u32 dev;
	__u8 op;   /* enum block_op */
	__u8 sync; /* as the kernel's op_is_sync(): reads, and writes marked SYNC, FUA or PREFLUSH */
	__u16 _pad;
};

/* Per disk and operation, per CPU. */
struct block_disk {
	__u64 issued;    /* requests handed to the driver (a requeued one counts again) */
	__u64 requeued;  /* handed back by the driver: issued - requeued - done are in flight */
	__u64 done;      /* requests completed (also those never issued themselves: an fsync's empty PREFLUSH write) */
	__u64 bytes;     /* their bytes */
	__u64 errors;    /* completed with an error status */
	__u64 queued;    /* of done, those with a queue time (issued, start known) */
	struct block_hist queue;  /* usecs: allocated (or inserted) to issued */
	struct block_hist device; /* usecs: issued to completed */
	struct block_hist total;  /* usecs: allocated to completed (what /proc/diskstats sums), where the start is known */
	struct block_hist size;   /* bytes per completed request */
	char disk_name[32];       /* the kernel's name for dev, copied when first seen */
};

/* Key of block_procs: the process that submitted the requests. */
struct block_proc_key {
	__u32 tgid;
	__u32 dev;
	__u8 op; /* enum block_op */
	__u8 _pad[7];
};

/* Per process, disk and operation, per CPU. */
struct block_proc {
	__u64 ops;
	__u64 bytes;
	__u64 total_ns; /* allocated to completed */
	__u64 device_ns;
};

#endif
