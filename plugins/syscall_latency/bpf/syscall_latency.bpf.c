// SPDX-License-Identifier: GPL-2.0
/* Per-syscall latency, aggregated in the kernel: count, total, max, errors and
 * a log2 histogram per syscall (per-CPU, no atomics), plus count/total/errors
 * per (process, syscall). Nothing is streamed.
 *
 * The start of each syscall lives in task-local storage: it goes away with the
 * thread, so a thread killed mid-syscall leaks nothing.
 *
 * Alternatives, best first: tp_btf, raw_tp, classic raw_syscalls tracepoints. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tracer.h"
#include "syscall_latency.h"

char LICENSE[] SEC("license") = "GPL";

/* Every type of syscall_latency.h in the BTF, so its Rust twin is generated from it. */
SHARED_TYPE(enum sc_stat_idx);
SHARED_TYPE(struct sc_filter);
SHARED_TYPE(struct sc_stat);
SHARED_TYPE(struct sc_proc_key);
SHARED_TYPE(struct sc_proc_val);

struct sc_start {
	__u64 ts_ns; /* 0: not timing this thread's current syscall */
	__u32 nr;
	__u32 gen;   /* filter generation at entry */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sc_filter);
} sc_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sc_start);
} sc_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SC_MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct sc_stat);
} sc_stats SEC(".maps");

/* Bounded: the least recently used (process, syscall) pairs go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sc_proc_key);
	__type(value, struct sc_proc_val);
} sc_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} sc_comms SEC(".maps");

DECLARE_STATS(sc_counters, SC_STAT_MAX);

static __always_inline void on_enter(long id)
{
	__u32 zero = 0;
	struct sc_filter *f = bpf_map_lookup_elem(&sc_filter, &zero);
	struct sc_start *s;
	__u32 nr = (__u32)id;

	if (!f || nr >= SC_MAX_SYSCALLS)
		return;
	/* The syscall bitmap first: it needs no helper call. */
	if (f->has_syscalls && !(f->syscalls[(nr / 64) & 7] & (1ULL << (nr % 64))))
		return;
	if (!proc_wanted(&f->proc, bpf_get_current_pid_tgid() >> 32))
		return;
	s = bpf_task_storage_get(&sc_start, bpf_get_current_task_btf(), 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!s)
		return;
	s->nr = nr;
	s->gen = f->proc.gen;
	s->ts_ns = bpf_ktime_get_ns();
}

static __always_inline void on_exit(long ret)
{
	__u32 zero = 0;
	struct sc_start *s = bpf_task_storage_get(&sc_start, bpf_get_current_task_btf(), 0, 0);
	struct sc_filter *f;
	struct sc_proc_key key;
	struct sc_proc_val *pv;
	struct sc_stat *st;
	__u64 delta;
	bool failed = ret < 0 && ret >= -4095;

	/* Untimed (filtered out at entry): nothing more to look up. */
	if (!s || !s->ts_ns)
		return;
	f = bpf_map_lookup_elem(&sc_filter, &zero);
	if (!f)
		return;
	delta = bpf_ktime_get_ns() - s->ts_ns;
	s->ts_ns = 0;
	/* Started under another filter (or before a reset): not ours to count. */
	if (s->gen != f->proc.gen)
		return;
	/* Faster than the threshold: the "slow calls only" view leaves it out. */
	if (delta < f->min_ns)
		return;
	key.nr = s->nr;

	st = bpf_map_lookup_elem(&sc_stats, &key.nr);
	if (st) {
		st->count++;
		st->total_ns += delta;
		if (st->max_gen != s->gen) {
			st->max_gen = s->gen;
			st->max_ns = delta;
		} else if (delta > st->max_ns) {
			st->max_ns = delta;
		}
		st->errors += failed;
		st->hist[hist_slot(delta / 1000, SC_HIST_SLOTS)]++;
	}

	/* The per-process hash costs more than everything above: only on request. */
	if (!f->per_process)
		return;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	pv = PROC_ENTRY(struct sc_proc_val, &sc_procs, &key, key.tgid, &sc_comms, &sc_counters,
			SC_STAT_PROC_INSERTED, SC_STAT_PROC_FAILED);
	if (!pv)
		return;
	pv->count++;
	pv->total_ns += delta;
	pv->errors += failed;
}

/* ---- alternative 1: BTF-typed raw tracepoints ---- */
SEC("tp_btf/sys_enter")
int BPF_PROG(sc_enter_btf, struct pt_regs *regs, long id)
{
	on_enter(id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sc_exit_btf, struct pt_regs *regs, long ret)
{
	on_exit(ret);
	return 0;
}

/* ---- alternative 2: raw tracepoints ---- */
SEC("raw_tp/sys_enter")
int BPF_PROG(sc_enter_raw, struct pt_regs *regs, long id)
{
	on_enter(id);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(sc_exit_raw, struct pt_regs *regs, long ret)
{
	on_exit(ret);
	return 0;
}

/* ---- alternative 3: classic tracepoints ---- */
SEC("tracepoint/raw_syscalls/sys_enter")
int sc_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	on_enter(ctx->id);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sc_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	on_exit(ctx->ret);
	return 0;
}

/* In every alternative (optional): keeps process names current. */
SEC("tracepoint/task/task_rename")
int sc_rename_tp(struct trace_event_raw_task_rename *ctx)
{
	comm_renamed(&sc_comms, ctx->pid, ctx->newcomm);
	return 0;
}
