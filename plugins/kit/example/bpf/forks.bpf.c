// SPDX-License-Identifier: GPL-2.0
/* Every fork and clone: who made which task. tp_btf where the kernel allows
 * it, the classic tracepoint otherwise: the host picks at run time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tracer.h"
#include "forks.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(struct forks_filter);
SHARED_TYPE(struct fork_event);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct forks_filter);
} forks_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} forks_events SEC(".maps");

DECLARE_STATS(forks_stats, 1);

static __always_inline int on_fork(__u32 child)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct forks_filter *f = bpf_map_lookup_elem(&forks_filter, &zero);
	struct fork_event *e;

	if (!f || !proc_wanted(&f->proc, tgid))
		return 0;
	e = bpf_ringbuf_reserve(&forks_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&forks_stats, 0);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->parent_pid = tgid;
	e->child_pid = child;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(forks_btf, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(child->pid);
}

SEC("tracepoint/sched/sched_process_fork")
int forks_tp(struct trace_event_raw_sched_process_fork *ctx)
{
	return on_fork(ctx->child_pid);
}
