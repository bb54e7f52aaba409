/* SPDX-License-Identifier: GPL-2.0 */
/* What forks.bpf.c and src/lib.rs share: the Rust side is generated from this. */
#ifndef __FORKS_H
#define __FORKS_H

struct forks_filter {
	struct proc_filter proc; /* pid, comm, the host itself (tracer.h) */
};

/* Ring forks_events: one per new process or thread. */
struct fork_event {
	__u64 ts_ns;
	__u32 parent_pid;
	__u32 child_pid; /* the new task's id (a thread's tid) */
	char comm[16];   /* the parent's */
};

#endif
