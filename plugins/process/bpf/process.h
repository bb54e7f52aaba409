/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by process.bpf.c and plugins/process/src (generated twins). */
#ifndef __PROCESS_H
#define __PROCESS_H

#define PROC_FILENAME_LEN 256 /* bytes of the exec'd path kept, NUL included */
#define PROC_ARGS_LEN 1024    /* bytes of argv kept, NUL-separated */
#define PROC_ARG_MAX 128      /* bytes kept of one argument, NUL included */
#define PROC_MAX_ARGS 32      /* arguments kept */

#define PROC_ARGS_TRUNCATED 1     /* more arguments, or a longer one, than kept */
#define PROC_FILENAME_TRUNCATED 2 /* path longer than PROC_FILENAME_LEN - 1 */
#define PROC_ARGS_UNREAD 4        /* argv could not be read at entry */

enum process_stat_idx {
	PROC_STAT_RINGBUF_FULL = 0,  /* records lost: a ring buffer full */
	PROC_STAT_EXEC_UNSTORED = 1, /* exec lost: its entry could not be stored */
	PROC_STAT_MAX = 2,
};

/* Key 0 of process_filter. */
struct process_filter {
	struct proc_filter proc;
};

/* Ring process_execs: one per execve/execveat that returned (or, when it
 * succeeded, whose new program started). Sent up to args_len bytes of args. */
struct exec_event {
	__u64 ts_ns;   /* entry */
	__s64 ret;     /* 0, or -errno */
	__u32 pid;     /* tgid after the call */
	__u32 tid;
	__u32 ppid;
	__u32 uid;     /* real, after the call */
	__u16 argc;    /* arguments kept */
	__u8 flags;    /* PROC_* above */
	__u8 _pad;
	__u32 args_len;
	char comm[16]; /* after the call: the new program's on success */
	char filename[PROC_FILENAME_LEN]; /* copied at entry */
	char args[PROC_ARGS_LEN];         /* copied at entry */
};

/* Ring process_exits: one per process (its last thread), at exit. */
struct exit_event {
	__u64 ts_ns;
	__u64 lifetime_ns; /* since the process started (its first thread) */
	__u64 cpu_ns;      /* user + system, all threads (scheduler runtime) */
	__u64 maxrss_pages;
	__u32 pid;
	__u32 ppid;
	__u32 exit_status; /* as the kernel keeps it: code << 8 | core 0x80 | signal */
	__u32 policy;      /* SCHED_* */
	__s32 nice;
	__s32 prio;        /* as /proc/PID/stat shows it (kernel prio - 100) */
	char comm[16];
};

#endif
