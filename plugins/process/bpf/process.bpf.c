// SPDX-License-Identifier: GPL-2.0
/* Process lifecycle: every exec (execsnoop) and every process exit
 * (exitsnoop), with what the kernel knows at that moment.
 *
 * Execs: the path and argv are copied from the caller's memory at syscall
 * entry, before the kernel reads them; the record is sent at syscall exit
 * with the result and who the caller is by then. Entry and exit meet in task
 * storage, which follows the task_struct: a multi-threaded exec that makes
 * the calling thread the leader (new tid) still finds its entry.
 *
 * Exits: at sched_process_exit of a process's last thread (signal->live has
 * dropped to 0), its exit status, lifetime, CPU time, peak RSS and scheduling
 * parameters, all read from the task at that instant.
 *
 * Alternatives, best first. Execs: classic syscall tracepoints (they fire on
 * exec only), else tp_btf sys_enter/sys_exit (every syscall pays a check).
 * Exits: tp_btf, else the classic tracepoint. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "process.h"

char LICENSE[] SEC("license") = "GPL";

/* Every type of process.h in the BTF, so its Rust twin is generated from it. */
SHARED_TYPE(enum process_stat_idx);
SHARED_TYPE(struct process_filter);
SHARED_TYPE(struct exec_event);
SHARED_TYPE(struct exit_event);

#define NR_EXECVE 59    /* x86_64 */
#define NR_EXECVEAT 322

struct exec_start {
	struct exec_event ev; /* ev.ts_ns == 0: no exec of this task traced */
	__u32 gen;            /* filter generation at entry */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct process_filter);
} process_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct exec_start);
} process_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} process_execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} process_exits SEC(".maps");

DECLARE_STATS(process_stats, PROC_STAT_MAX);

static __always_inline struct process_filter *filter(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&process_filter, &zero);
}

/* State of the walk over argv, for bpf_loop. */
struct argv_walk {
	struct exec_start *s;
	const char *const *argv;
	__u32 off;
};

/* One argument, or the end of the walk (1). A callback of bpf_loop: verified
 * once, not once per argument (an unrolled loop took the verifier ~2 s). */
static long copy_arg(__u32 i, void *data)
{
	struct argv_walk *w = data;
	struct exec_start *s = w->s;
	const char *arg;
	__u32 off = w->off;
	long n;

	if (bpf_probe_read_user(&arg, sizeof(arg), &w->argv[i])) {
		s->ev.flags |= PROC_ARGS_UNREAD;
		return 1;
	}
	if (!arg)
		return 1;
	/* An argument past the last kept, or no room for a whole one. */
	if (i >= PROC_MAX_ARGS || off > PROC_ARGS_LEN - PROC_ARG_MAX) {
		s->ev.flags |= PROC_ARGS_TRUNCATED;
		return 1;
	}
	n = bpf_probe_read_user_str(&s->ev.args[off], PROC_ARG_MAX, arg);
	if (n <= 0) {
		s->ev.flags |= PROC_ARGS_UNREAD;
		return 1;
	}
	if (n == PROC_ARG_MAX)
		s->ev.flags |= PROC_ARGS_TRUNCATED;
	w->off = off + n;
	s->ev.argc++;
	return 0;
}

static __always_inline int exec_enter(const char *fname, const char *const *argv)
{
	struct process_filter *f = filter();
	struct argv_walk w = { .argv = argv };
	struct exec_start *s;
	long n;

	if (!f || !proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32))
		return 0;
	s = bpf_task_storage_get(&process_inflight, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s) {
		stat_inc(&process_stats, PROC_STAT_EXEC_UNSTORED);
		return 0;
	}
	s->gen = f->proc.gen;
	s->ev.flags = 0;
	s->ev.argc = 0;
	n = bpf_probe_read_user_str(s->ev.filename, sizeof(s->ev.filename), fname);
	if (n <= 0)
		s->ev.filename[0] = 0;
	else if (n == sizeof(s->ev.filename))
		s->ev.flags |= PROC_FILENAME_TRUNCATED;
	w.s = s;
	/* One more than kept: the extra one only says whether some were left out. */
	bpf_loop(PROC_MAX_ARGS + 1, copy_arg, &w, 0);
	s->ev.args_len = w.off;
	s->ev.ts_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int exec_exit(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct exec_start *s = bpf_task_storage_get(&process_inflight, task, 0, 0);
	struct process_filter *f = filter();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 len;

	if (!s || !s->ev.ts_ns)
		return 0;
	/* Entered under another filter: the new one did not choose it. */
	if (f && s->gen == f->proc.gen) {
		s->ev.ret = ret;
		s->ev.pid = id >> 32;
		s->ev.tid = (__u32)id;
		s->ev.ppid = task->real_parent->tgid;
		s->ev.uid = task->cred->uid.val;
		bpf_get_current_comm(&s->ev.comm, sizeof(s->ev.comm));
		len = s->ev.args_len;
		if (len > PROC_ARGS_LEN)
			len = PROC_ARGS_LEN;
		if (bpf_ringbuf_output(&process_execs, &s->ev, offsetof(struct exec_event, args) + len, 0))
			stat_inc(&process_stats, PROC_STAT_RINGBUF_FULL);
	}
	s->ev.ts_ns = 0;
	return 0;
}

static __always_inline int process_exit(struct task_struct *task)
{
	struct process_filter *f = filter();
	struct exit_event *e;
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u64 now;

	/* Other threads still run: the process exits with the last one. */
	if (BPF_CORE_READ(task, signal, live.counter))
		return 0;
	if (!f || !proc_wanted(&f->proc, tgid))
		return 0;
	e = bpf_ringbuf_reserve(&process_exits, sizeof(*e), 0);
	if (!e) {
		stat_inc(&process_stats, PROC_STAT_RINGBUF_FULL);
		return 0;
	}
	now = bpf_ktime_get_ns();
	e->ts_ns = now;
	e->lifetime_ns = now - BPF_CORE_READ(task, group_leader, start_time);
	/* Threads already gone are in signal->sum_sched_runtime; this one not yet. */
	e->cpu_ns = BPF_CORE_READ(task, signal, sum_sched_runtime) + BPF_CORE_READ(task, se.sum_exec_runtime);
	e->maxrss_pages = BPF_CORE_READ(task, signal, maxrss);
	e->pid = tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_status = BPF_CORE_READ(task, exit_code);
	e->policy = BPF_CORE_READ(task, policy);
	e->nice = BPF_CORE_READ(task, static_prio) - 120;
	e->prio = BPF_CORE_READ(task, prio) - 100;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* ---- execs, alternative 1: classic syscall tracepoints ---- */
SEC("tracepoint/syscalls/sys_enter_execve")
int exec_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int execat_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exec_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int execat_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

/* ---- execs, alternative 2: tp_btf on every syscall, exec picked out ---- */
SEC("tp_btf/sys_enter")
int BPF_PROG(exec_enter_btf, struct pt_regs *regs, long id)
{
	if (id == NR_EXECVE)
		return exec_enter((const char *)PT_REGS_PARM1_CORE_SYSCALL(regs), (const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs));
	if (id == NR_EXECVEAT)
		return exec_enter((const char *)PT_REGS_PARM2_CORE_SYSCALL(regs), (const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs));
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(exec_exit_btf, struct pt_regs *regs, long ret)
{
	/* orig_ax still holds the syscall number at exit. */
	long id = BPF_CORE_READ(regs, orig_ax);

	if (id == NR_EXECVE || id == NR_EXECVEAT)
		return exec_exit(ret);
	return 0;
}

/* ---- exits ---- */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *task)
{
	return process_exit(task);
}

SEC("tracepoint/sched/sched_process_exit")
int exit_tp(void *ctx)
{
	return process_exit(bpf_get_current_task_btf());
}
