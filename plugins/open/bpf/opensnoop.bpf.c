// SPDX-License-Identifier: GPL-2.0
/* File opens with path, flags and result.
 *
 * Three attach alternatives live in this one object; the host keeps the first
 * that loads and attaches on the running kernel and switches the others off
 * before load (loading is all-or-nothing per object):
 *   1. fexit do_sys_openat2: one program sees arguments and result together.
 *   2. kprobe + kretprobe do_sys_openat2.
 *   3. sys_enter/sys_exit tracepoints of openat, openat2, open, creat.
 * 2 and 3 correlate entry and exit per thread through task-local storage
 * (`open_inflight`): no shared hash and its lock on the hot path, and a thread
 * killed mid-open leaves nothing behind. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "opensnoop.h"

char LICENSE[] SEC("license") = "GPL";

/* Every type of opensnoop.h in the BTF, so its Rust twin is generated from it. */
SHARED_TYPE(enum open_syscall);
SHARED_TYPE(enum open_stat);
SHARED_TYPE(struct open_filter);
SHARED_TYPE(struct open_event);

#define O_WRONLY 01
#define O_CREAT 0100
#define O_TRUNC 01000

/* The record, filled at entry; exit adds the result and who, and sends it
 * as it stands (only the bytes of the path in use). The name is copied here
 * at entry: read at exit, another thread could have rewritten or unmapped it
 * while the kernel used its own copy. */
struct open_start {
	struct open_event ev; /* ev.ts_ns == 0: this thread's open is not traced */
	__u32 gen;            /* filter generation at entry */
	__u32 path_len;       /* bytes of ev.path in use, NUL included */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_filter);
} open_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct open_start);
} open_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} open_events SEC(".maps");

DECLARE_STATS(open_stats, OPEN_STAT_MAX);

static __always_inline struct open_filter *filter(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&open_filter, &zero);
}

static __always_inline bool wanted(struct open_filter *f, __u32 tgid)
{
	if (f->has_uid && f->uid != (__u32)bpf_get_current_uid_gid())
		return false;
	return proc_wanted(&f->proc, tgid);
}

static __always_inline int on_enter(int dfd, const char *fname, __u64 flags, __u32 mode, __u8 syscall)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct open_filter *f = filter();
	struct task_struct *task;
	const struct cred *cred;
	struct open_start *s;
	long n;

	if (!f || !wanted(f, id >> 32))
		return 0;
	task = bpf_get_current_task_btf();
	s = bpf_task_storage_get(&open_inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		stat_inc(&open_stats, OPEN_STAT_INFLIGHT_FULL);
		return 0;
	}
	s->ev.flags = flags;
	s->ev.mode = mode;
	s->ev.syscall = syscall;
	s->ev.dirfd = dfd;
	/* Both ids from the task's credentials by direct (BTF) loads: no
	 * helper call on the hot path. */
	cred = task->cred;
	s->ev.uid = cred->uid.val;
	s->ev.euid = cred->euid.val;
	s->ev.path_flags = 0;
	s->gen = f->proc.gen;
	n = bpf_probe_read_user_str(s->ev.path, sizeof(s->ev.path), fname);
	if (n <= 0) {
		s->ev.path[0] = 0;
		if (n < 0)
			s->ev.path_flags = OPEN_PATH_UNREAD;
		n = 1;
	} else if (n == sizeof(s->ev.path)) {
		/* Full buffer: cut, unless the name ends exactly at its last byte. */
		char next = 0;

		if (bpf_probe_read_user(&next, 1, fname + sizeof(s->ev.path) - 1) || next)
			s->ev.path_flags = OPEN_PATH_TRUNCATED;
	}
	s->path_len = n;
	s->ev.ts_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_exit(long ret)
{
	struct open_filter *f = filter();
	struct open_start *s = bpf_task_storage_get(&open_inflight, bpf_get_current_task_btf(), 0, 0);
	__u64 id;
	__u32 len;

	if (!s || !s->ev.ts_ns)
		return 0;
	/* Entered under another filter: the new one did not choose it. */
	if (f && s->gen == f->proc.gen && !(f->failed_only && ret >= 0)) {
		id = bpf_get_current_pid_tgid();
		s->ev.ret = ret;
		s->ev.pid = id >> 32;
		s->ev.tid = (__u32)id;
		bpf_get_current_comm(&s->ev.comm, sizeof(s->ev.comm));
		len = s->path_len;
		if (len > OPEN_PATH_LEN)
			len = OPEN_PATH_LEN;
		/* One copy, of the bytes in use (most paths are far shorter than
		 * the buffer): more records fit the ring, fewer wake-ups. */
		if (bpf_ringbuf_output(&open_events, &s->ev, offsetof(struct open_event, path) + len,
				       rb_submit_flags(&open_events)))
			stat_inc(&open_stats, OPEN_STAT_RINGBUF_FULL);
	}
	s->ev.ts_ns = 0;
	return 0;
}

/* Which open syscall led to do_sys_openat2, from the syscall number in the
 * task's saved registers (x86_64 numbers); SC_UNKNOWN when none did (e.g.
 * io_uring). Hooks on syscall tracepoints know it without this. */
static __always_inline __u8 current_open_syscall(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	switch (BPF_CORE_READ(regs, orig_ax)) {
	case 257:
		return SC_OPENAT;
	case 437:
		return SC_OPENAT2;
	case 2:
		return SC_OPEN;
	case 85:
		return SC_CREAT;
	}
	return SC_UNKNOWN;
}

/* ---- alternative 1: fentry + fexit ---- */
SEC("fentry/do_sys_openat2")
int BPF_PROG(open_fentry, int dfd, const char *filename, struct open_how *how)
{
	return on_enter(dfd, filename, BPF_CORE_READ(how, flags), BPF_CORE_READ(how, mode),
			current_open_syscall());
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(open_fexit, int dfd, const char *filename, struct open_how *how, long ret)
{
	return on_exit(ret);
}

/* ---- alternative 2: kprobe + kretprobe ---- */
SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(open_kprobe, int dfd, const char *filename, struct open_how *how)
{
	return on_enter(dfd, filename, BPF_CORE_READ(how, flags), BPF_CORE_READ(how, mode),
			current_open_syscall());
}

SEC("kretprobe/do_sys_openat2")
int BPF_KRETPROBE(open_kretprobe, long ret)
{
	return on_exit(ret);
}

/* ---- alternative 3: syscall tracepoints ---- */
SEC("tracepoint/syscalls/sys_enter_openat")
int open_tp_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(ctx->args[0], (const char *)ctx->args[1], ctx->args[2], ctx->args[3], SC_OPENAT);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int open_tp_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return on_enter(ctx->args[0], (const char *)ctx->args[1], how.flags, how.mode, SC_OPENAT2);
}

SEC("tracepoint/syscalls/sys_enter_open")
int open_tp_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(AT_FDCWD_VALUE, (const char *)ctx->args[0], ctx->args[1], ctx->args[2], SC_OPEN);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int open_tp_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter(AT_FDCWD_VALUE, (const char *)ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC,
			ctx->args[1], SC_CREAT);
}

/* One exit handler serves all four syscalls: the in-flight entry says which. */
SEC("tracepoint/syscalls/sys_exit_openat")
int open_tp_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int open_tp_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_open")
int open_tp_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int open_tp_exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}
