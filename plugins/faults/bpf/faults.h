/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by faults.bpf.c and plugins/faults/src. */
#ifndef __FAULTS_H
#define __FAULTS_H

#define FAULTS_HIST_SLOTS 32

enum faults_stat_idx {
	FAULTS_STAT_PROC_INSERTED = 0, /* new processes: minus live = evicted */
	FAULTS_STAT_PROC_FAILED = 1,   /* per-process figures could not be stored */
	FAULTS_STAT_MAX = 2,
};

/* Key 0 of faults_filter. */
struct faults_filter {
	struct proc_filter proc;
	struct uid_filter uid;
	__u32 mappings; /* find each fault's mapping kind (bpf_find_vma: ~6 us a fault here) */
	__u32 _pad;
};

/* Per process (tgid), per CPU: faults as the kernel counts them in the
 * task's min_flt and maj_flt, and where they were. */
struct faults_proc {
	__u64 minor;
	__u64 major;
	__u64 minor_file; /* in a file-backed mapping */
	__u64 major_file;
	__u64 minor_anon; /* in an anonymous mapping */
	__u64 major_anon;
	__u64 major_ns;    /* time in major faults, from the exception's entry */
	__u64 major_timed; /* major faults whose entry was seen */
};

/* Major fault latency, usecs; the sum in ns. */
struct faults_hist {
	__u64 slots[FAULTS_HIST_SLOTS];
	__u64 sum_ns;
};

#endif
