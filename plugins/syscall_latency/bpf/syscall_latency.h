/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by syscall_latency.bpf.c and plugins/syscall_latency/src. */
#ifndef __SYSCALL_LATENCY_H
#define __SYSCALL_LATENCY_H

#define SC_MAX_SYSCALLS 512
#define SC_HIST_SLOTS 32

enum sc_stat_idx {
	SC_STAT_PROC_INSERTED = 0, /* new (process, syscall) keys: minus live = evicted */
	SC_STAT_NO_ENTRY = 1,      /* exits whose entry was not seen (started before us) */
	SC_STAT_PROC_FAILED = 2,   /* (process, syscall) update failed */
	SC_STAT_MAX = 3,
};

/* Key 0 of sc_filter. Zero fields mean "no filter". */
struct sc_filter {
	struct proc_filter proc; /* pid, comm, the host itself */
	__u8 has_syscalls;
	__u8 per_process;   /* also count per (process, syscall): syscount -P */
	__u8 _pad[6];
	__u64 min_ns;       /* count only calls at least this long (0: all) */
	__u64 syscalls[SC_MAX_SYSCALLS / 64]; /* bitmap of syscall numbers to trace */
};

/* Per syscall, per CPU. */
struct sc_stat {
	__u64 count;
	__u64 total_ns;
	__u64 max_ns;
	__u64 errors;
	__u64 hist[SC_HIST_SLOTS]; /* log2 buckets of microseconds */
	__u64 max_gen; /* filter generation max_ns belongs to: a reset or a new
			* filter starts the maximum again on every CPU */
};

struct sc_proc_key {
	__u32 tgid;
	__u32 nr;
};

struct sc_proc_val {
	__u64 count;
	__u64 total_ns;
	__u64 errors;
};

#endif
