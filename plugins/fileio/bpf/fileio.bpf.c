// SPDX-License-Identifier: GPL-2.0
/* File I/O per process and per file (filetop), latency per operation
 * (fileslower's histogram) and the slow calls themselves, from the system
 * calls that read, write and sync files.
 *
 * At a call's entry its fd is resolved to the file the kernel will use, in
 * the task's own fd table, and the file's device, inode and type are kept in
 * task-local storage with the start time; at its exit the figures go to the
 * (process, file) entry, made on first use with the file's name and its
 * directory's name (the last two components: no full path without
 * bpf_d_path, which tracepoints may not call). Bytes are the call's return,
 * so they are what /proc/PID/io counts as rchar and wchar.
 *
 * Alternatives, best first: the per-syscall classic tracepoints (only the
 * twelve calls pay for tracing), or raw_tp sys_enter/sys_exit (no tracefs
 * needed; every system call on the machine pays a lookup; x86-64 syscall
 * numbers). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "dentry_name.h"
#include "fd_file.h"
#include "fileio.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum fileio_op);
SHARED_TYPE(enum fileio_kind);
SHARED_TYPE(enum fileio_stat_idx);
SHARED_TYPE(struct fileio_filter);
SHARED_TYPE(struct fileio_key);
SHARED_TYPE(struct fileio_file);
SHARED_TYPE(struct fileio_hist);
SHARED_TYPE(struct fileio_slow);

/* The call in flight of each thread, and the file it used last. */
struct fileio_start {
	__u64 ts_ns; /* 0: none timed */
	__u64 ino;
	struct file *file;
	struct inode *inode;
	__u32 dev;
	__u32 kind;
	__u32 op;
	__u32 gen; /* filter generation at entry */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fileio_filter);
} fileio_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fileio_start);
} fileio_start SEC(".maps");

/* Bounded: the least recently used (process, file) pairs go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct fileio_key);
	__type(value, struct fileio_file);
} fileio_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fileio_hist);
} fileio_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} fileio_slow_calls SEC(".maps");

DECLARE_STATS(fileio_counters, FILEIO_STAT_MAX);

/* From the kernel's stat.h (not in BTF). */
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFCHR 0020000
#define S_IFIFO 0010000

static __always_inline __u32 kind_of(umode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return FILEIO_KIND_REGULAR;
	case S_IFSOCK:
		return FILEIO_KIND_SOCKET;
	case S_IFIFO:
		return FILEIO_KIND_PIPE;
	case S_IFCHR:
		return FILEIO_KIND_CHAR;
	case S_IFBLK:
		return FILEIO_KIND_BLOCK;
	default:
		return FILEIO_KIND_OTHER;
	}
}

/* Reads the first PREFIX bytes of a kernel struct in one copy, then its
 * fields at their CO-RE offsets in this kernel: one helper call instead of
 * one per field. A field past the prefix (a kernel laid out otherwise)
 * reads as 0 (the check is on constants: the verifier drops it). */
#define PREFIX 128
#define FIELD(buf, type, field)                                                              \
	({                                                                                   \
		__u32 __off = bpf_core_field_offset(type, field);                            \
		typeof(((type *)0)->field) __v = 0;                                          \
		if (__off + sizeof(__v) <= PREFIX)                                           \
			__builtin_memcpy(&__v, (buf) + (__off & (PREFIX - 1)), sizeof(__v)); \
		__v;                                                                         \
	})

static __always_inline void on_enter(__u32 op, long fd)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct fileio_filter *f = bpf_map_lookup_elem(&fileio_filter, &zero);
	struct fileio_start *s;
	struct super_block *sb;
	struct inode *inode;
	struct file *file;
	char buf[PREFIX];

	if (!f || !proc_wanted(&f->proc, tgid) || !uid_wanted(&f->uid))
		return;
	file = fd_file(fd);
	if (!file || bpf_probe_read_kernel(&inode, sizeof(inode), (void *)file + bpf_core_field_offset(struct file, f_inode)))
		return;
	s = bpf_task_storage_get(&fileio_start, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		stat_inc(&fileio_counters, FILEIO_STAT_UNTRACKED);
		return;
	}
	/* A thread mostly calls on the file it called on last: the same file
	 * object on the same inode object with the same inode number is the
	 * same file. (Not the two addresses alone: once a file is closed both
	 * objects can be freed and handed to the next file opened, which the
	 * http tracer saw happen to sockets one time in five.) Else read the
	 * inode (one copy). */
	{
		__u64 ino = 0;

		bpf_probe_read_kernel(&ino, sizeof(ino), (void *)inode + bpf_core_field_offset(struct inode, i_ino));
		if (file != s->file || inode != s->inode || ino != s->ino)
			s->file = NULL;
	}
	if (file != s->file) {
		if (!inode || bpf_probe_read_kernel(buf, PREFIX, inode))
			return;
		s->file = file;
		s->inode = inode;
		s->kind = kind_of(FIELD(buf, struct inode, i_mode));
		s->ino = FIELD(buf, struct inode, i_ino);
		sb = FIELD(buf, struct inode, i_sb);
		s->dev = BPF_CORE_READ(sb, s_dev);
	}
	if (!f->all_files && s->kind != FILEIO_KIND_REGULAR && s->kind != FILEIO_KIND_BLOCK)
		return;
	s->op = op;
	s->gen = f->proc.gen;
	s->ts_ns = bpf_ktime_get_ns();
}

/* The file's last name component and its directory's (see dentry_name.h),
 * read while the call's file is still open: the calling thread holds its
 * fd until it returns. */
static __always_inline __u8 file_names(struct file *file, char *name, char *dir)
{
	return dentry_names(BPF_CORE_READ(file, f_path.dentry), name, FILEIO_NAME_LEN, dir, FILEIO_DIR_LEN);
}

static __always_inline struct fileio_file *file_entry(const struct fileio_key *key, const struct fileio_start *s)
{
	struct fileio_file *v = bpf_map_lookup_elem(&fileio_files, key);
	struct fileio_file zero = {};
	bool inserted;

	if (v)
		return v;
	zero.kind = s->kind;
	zero.name_truncated = file_names(s->file, zero.name, zero.dir);
	bpf_get_current_comm(&zero.comm, sizeof(zero.comm));
	v = map_insert_or_find(&fileio_files, key, &zero, &inserted);
	if (inserted)
		stat_inc(&fileio_counters, FILEIO_STAT_FILE_INSERTED);
	if (!v)
		stat_inc(&fileio_counters, FILEIO_STAT_FILE_FAILED);
	return v;
}

static __always_inline void stream_slow(const struct fileio_start *s, __u64 ns, long ret, __u64 tid_tgid)
{
	struct fileio_slow *e = bpf_ringbuf_reserve(&fileio_slow_calls, sizeof(*e), 0);

	if (!e) {
		stat_inc(&fileio_counters, FILEIO_STAT_RING_FULL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = s->ts_ns;
	e->ns = ns;
	e->ret = ret;
	e->tgid = tid_tgid >> 32;
	e->tid = (__u32)tid_tgid;
	e->op = s->op;
	e->kind = s->kind;
	e->name_truncated = file_names(s->file, e->name, e->dir);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, rb_submit_flags(&fileio_slow_calls));
}

static __always_inline void on_exit(long ret)
{
	__u32 zero = 0;
	struct fileio_start *s = bpf_task_storage_get(&fileio_start, bpf_get_current_task_btf(), 0, 0);
	__u64 tid_tgid = bpf_get_current_pid_tgid();
	struct fileio_filter *f;
	struct fileio_file *v;
	struct fileio_hist *h;
	struct fileio_key key;
	__u64 ns;
	__u32 op;

	if (!s || !s->ts_ns)
		return;
	ns = bpf_ktime_get_ns() - s->ts_ns;
	f = bpf_map_lookup_elem(&fileio_filter, &zero);
	/* Started under another filter (or before a reset): not ours to count. */
	if (!f || s->gen != f->proc.gen) {
		s->ts_ns = 0;
		return;
	}
	op = s->op & (FILEIO_OPS - 1);
	key.tgid = tid_tgid >> 32;
	key.dev = s->dev;
	key.ino = s->ino;
	v = file_entry(&key, s);
	if (v) {
		__sync_fetch_and_add(&v->ops[op], 1);
		__sync_fetch_and_add(&v->ns[op], ns);
		if (ret < 0)
			__sync_fetch_and_add(&v->errors, 1);
		else if (op == FILEIO_READ)
			__sync_fetch_and_add(&v->bytes[0], ret);
		else if (op == FILEIO_WRITE)
			__sync_fetch_and_add(&v->bytes[1], ret);
	}
	h = bpf_map_lookup_elem(&fileio_hist, &zero);
	if (h) {
		h->slots[op][hist_slot(ns / 1000, FILEIO_HIST_SLOTS)]++;
		h->sum_ns[op] += ns;
		if (ret < 0)
			h->errors++;
		else if (op == FILEIO_READ)
			h->bytes[0] += ret;
		else if (op == FILEIO_WRITE)
			h->bytes[1] += ret;
	}
	if (f->min_ns && ns >= f->min_ns)
		stream_slow(s, ns, ret, tid_tgid);
	s->ts_ns = 0;
}

/* ---- alternative 1: the calls' own classic tracepoints ---- */
#define FILEIO_TP(call, op)                                                  \
	SEC("tracepoint/syscalls/sys_enter_" #call)                          \
	int fileio_enter_##call(struct trace_event_raw_sys_enter *ctx)       \
	{                                                                    \
		on_enter(op, (long)ctx->args[0]);                            \
		return 0;                                                    \
	}                                                                    \
	SEC("tracepoint/syscalls/sys_exit_" #call)                           \
	int fileio_exit_##call(struct trace_event_raw_sys_exit *ctx)         \
	{                                                                    \
		on_exit(ctx->ret);                                           \
		return 0;                                                    \
	}

FILEIO_TP(read, FILEIO_READ)
FILEIO_TP(readv, FILEIO_READ)
FILEIO_TP(pread64, FILEIO_READ)
FILEIO_TP(preadv, FILEIO_READ)
FILEIO_TP(preadv2, FILEIO_READ)
FILEIO_TP(write, FILEIO_WRITE)
FILEIO_TP(writev, FILEIO_WRITE)
FILEIO_TP(pwrite64, FILEIO_WRITE)
FILEIO_TP(pwritev, FILEIO_WRITE)
FILEIO_TP(pwritev2, FILEIO_WRITE)
FILEIO_TP(fsync, FILEIO_FSYNC)
FILEIO_TP(fdatasync, FILEIO_FDATASYNC)

/* ---- alternative 2: raw tracepoints on every system call (x86-64) ---- */
static __always_inline int op_of(long id)
{
	switch (id) {
	case 0:   /* read */
	case 17:  /* pread64 */
	case 19:  /* readv */
	case 295: /* preadv */
	case 327: /* preadv2 */
		return FILEIO_READ;
	case 1:   /* write */
	case 18:  /* pwrite64 */
	case 20:  /* writev */
	case 296: /* pwritev */
	case 328: /* pwritev2 */
		return FILEIO_WRITE;
	case 74:
		return FILEIO_FSYNC;
	case 75:
		return FILEIO_FDATASYNC;
	default:
		return -1;
	}
}

SEC("raw_tp/sys_enter")
int BPF_PROG(fileio_enter_raw, struct pt_regs *regs, long id)
{
	int op = op_of(id);

	if (op >= 0)
		on_enter(op, PT_REGS_PARM1_CORE_SYSCALL(regs));
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(fileio_exit_raw, struct pt_regs *regs, long ret)
{
	on_exit(ret);
	return 0;
}
