/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by sched.bpf.c and plugins/sched/src. */
#ifndef __SCHED_H
#define __SCHED_H

#define SCHED_HIST_SLOTS 32

enum sched_stat_idx {
	SCHED_STAT_PROC_INSERTED = 0, /* new processes: minus live = evicted */
	SCHED_STAT_TASK_FAILED = 1,   /* per-thread state could not be stored */
	SCHED_STAT_PROC_FAILED = 2,   /* per-process figures could not be stored */
	SCHED_STAT_ONCPU_REPAIRED = 3, /* a CPU's running task set right at a timer tick (a switch unseen) */
	SCHED_STAT_MAX = 4,
};

enum sched_hist_idx {
	SCHED_HIST_RUNQ = 0,  /* run-queue latency, usecs */
	SCHED_HIST_ONCPU = 1, /* on-CPU time slices, usecs */
	SCHED_HIST_MAX = 2,
};

/* Key 0 of sched_filter. */
struct sched_filter {
	struct proc_filter proc;
};

/* Per process (tgid), per CPU. */
struct sched_proc {
	__u64 run_ns;
	__u64 wait_ns;
	__u64 slices;      /* times switched out after running */
	__u64 waits;       /* run-queue waits measured */
	__u64 voluntary;   /* switched out blocking */
	__u64 involuntary; /* switched out preempted */
	__u64 migrations;
	__u64 runq_hist[SCHED_HIST_SLOTS];
	/* When this CPU last ended a slice of this process. A reader that saw
	 * sched_oncpu's slice start at `since` knows the slice is already in
	 * run_ns when last_out_ns >= since: only one task runs on a CPU at a
	 * time, so a later end on this CPU is that slice's end. */
	__u64 last_out_ns;
};

/* Per CPU: the task on it now, so the running slice counts towards CPU time
 * before it ends (a CPU hog that is rarely switched out is not one lump). */
struct sched_oncpu {
	__u64 since_ns; /* 0: idle or unknown */
	__u32 tgid;     /* 0: not known yet */
	/* The thread: one thread runs on one CPU at a time, so where two CPUs
	 * name it the earlier is a switch-out unseen, and a reader counts only
	 * the later. */
	__u32 tid;
};

#endif
