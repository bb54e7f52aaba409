/* SPDX-License-Identifier: GPL-2.0 */
/* What memory.bpf.c and src/lib.rs share: the Rust side is generated from this. */
#ifndef __MEMORY_H
#define __MEMORY_H

enum memory_stat_idx {
	MEMORY_STAT_RING_FULL = 0, /* an OOM kill record not written: ring full */
	MEMORY_STAT_OOM_KILLS = 1, /* OOM kills seen (also those filtered out of the records) */
	MEMORY_STAT_MAX = 2,
};

struct memory_filter {
	struct proc_filter proc; /* the victim's pid and comm */
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
