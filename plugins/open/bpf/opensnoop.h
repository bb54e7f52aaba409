/* SPDX-License-Identifier: GPL-2.0 */
/* Layout shared between opensnoop.bpf.c and the plugin's Rust decoder
 * (plugins/open/src/record.rs mirrors it; a test checks the sizes agree). */
#ifndef __OPENSNOOP_H
#define __OPENSNOOP_H

/* The longest path prefix kept (PATH_MAX is 4096); longer ones are marked. */
#define OPEN_PATH_LEN 512

#define OPEN_PATH_TRUNCATED 1 /* longer than OPEN_PATH_LEN - 1 bytes */
#define OPEN_PATH_UNREAD 2    /* the name could not be read at entry */
#define AT_FDCWD_VALUE -100

enum open_syscall {
	SC_UNKNOWN = 0, /* do_sys_openat2 reached from no open syscall (io_uring) */
	SC_OPENAT = 1,
	SC_OPENAT2 = 2,
	SC_OPEN = 3,
	SC_CREAT = 4,
};

enum open_stat {
	OPEN_STAT_RINGBUF_FULL = 0, /* record lost: ring buffer full */
	OPEN_STAT_INFLIGHT_FULL = 1, /* open lost: its entry could not be stored */
	OPEN_STAT_MAX = 2,
};

/* Key 0 of the open_filter map. A zero field means "no filter". */
struct open_filter {
	struct proc_filter proc; /* pid, comm, the host itself */
	__u32 uid;
	__u8 has_uid;      /* uid 0 is a real uid, hence the flag */
	__u8 failed_only;
	__u8 _pad[2];
};

struct open_event {
	__u64 ts_ns;  /* bpf_ktime_get_ns() at entry */
	__u64 flags;
	__s64 ret;    /* fd, or -errno */
	__u32 pid;
	__u32 tid;
	__u32 uid;    /* real */
	__u32 mode;
	__u8 syscall; /* enum open_syscall */
	__u8 path_flags; /* OPEN_PATH_* */
	__u8 _pad[2];
	__s32 dirfd;  /* what a relative path is relative to (AT_FDCWD: the cwd) */
	__u32 euid;   /* effective: what permission checks use */
	__u32 _pad2;
	char comm[16];
	/* Copied at entry, before the kernel reads it. Records end after the
	 * path's NUL: they are as long as the path, not the buffer. */
	char path[OPEN_PATH_LEN];
};

#endif /* __OPENSNOOP_H */
