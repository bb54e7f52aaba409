/* SPDX-License-Identifier: GPL-2.0 */
/* Layouts shared by fileio.bpf.c and plugins/fileio/src. */
#ifndef __FILEIO_H
#define __FILEIO_H

#define FILEIO_HIST_SLOTS 32
#define FILEIO_NAME_LEN 48
#define FILEIO_DIR_LEN 32

/* What a system call did to its file. */
enum fileio_op {
	FILEIO_READ = 0,      /* read, readv, pread64, preadv, preadv2 */
	FILEIO_WRITE = 1,     /* write, writev, pwrite64, pwritev, pwritev2 */
	FILEIO_FSYNC = 2,     /* fsync */
	FILEIO_FDATASYNC = 3, /* fdatasync */
	FILEIO_OPS = 4,
};

/* The file's type, from its inode's mode. */
enum fileio_kind {
	FILEIO_KIND_REGULAR = 0,
	FILEIO_KIND_SOCKET = 1,
	FILEIO_KIND_PIPE = 2,
	FILEIO_KIND_CHAR = 3,
	FILEIO_KIND_BLOCK = 4,
	FILEIO_KIND_OTHER = 5,
};

enum fileio_stat_idx {
	FILEIO_STAT_FILE_INSERTED = 0, /* new (process, file) entries: minus live = evicted */
	FILEIO_STAT_FILE_FAILED = 1,   /* a call whose figures could not be stored */
	FILEIO_STAT_RING_FULL = 2,     /* slow calls not streamed */
	FILEIO_STAT_UNTRACKED = 3,     /* calls whose start could not be kept */
	FILEIO_STAT_MAX = 4,
};

/* Key 0 of fileio_filter. */
struct fileio_filter {
	struct proc_filter proc;
	struct uid_filter uid;
	__u64 min_ns;    /* stream calls at least this slow; 0: none */
	__u32 all_files; /* also sockets, pipes, terminals (default: files and block devices) */
	__u32 _pad;
};

/* One file as one process uses it. */
struct fileio_key {
	__u32 tgid;
	__u32 dev; /* the file system's device (kernel encoding) */
	__u64 ino;
};

/* Its figures (updated atomically: threads share the entry) and its name,
 * taken when the entry was made: the last component and its directory's. */
struct fileio_file {
	__u64 ops[FILEIO_OPS];
	__u64 ns[FILEIO_OPS];
	__u64 bytes[2]; /* read, written */
	__u64 errors;
	__u32 kind;
	__u8 name_truncated;
	__u8 _pad[3];
	char comm[16];
	char name[FILEIO_NAME_LEN];
	char dir[FILEIO_DIR_LEN];
};

/* Latency per operation, usecs; the sums in ns; the bytes read and
 * written. Never evicted: the totals of every call, whatever the file
 * table lost. */
struct fileio_hist {
	__u64 slots[FILEIO_OPS][FILEIO_HIST_SLOTS];
	__u64 sum_ns[FILEIO_OPS];
	__u64 bytes[2];
	__u64 errors;
};

/* A call at least min_ns long, streamed. */
struct fileio_slow {
	__u64 ts_ns;
	__u64 ns;
	__s64 ret; /* bytes, or -errno */
	__u32 tgid;
	__u32 tid;
	__u32 op;
	__u32 kind;
	__u8 name_truncated;
	__u8 _pad[7];
	char comm[16];
	char name[FILEIO_NAME_LEN];
	char dir[FILEIO_DIR_LEN];
};

#endif
