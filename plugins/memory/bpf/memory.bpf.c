// SPDX-License-Identifier: GPL-2.0
/* Memory pressure: OOM kills, streamed one record each.
 *
 * oom:mark_victim fires when the OOM killer has chosen and marked its
 * victim, next to the kernel's count of OOM kills (/proc/vmstat oom_kill).
 * The classic tracepoint is used: newer kernels' carries the victim's comm,
 * sizes, uid and oom_score_adj, older ones' only the pid (read with CO-RE
 * field checks, so one object serves both). The current task is the one
 * whose allocation failed: its memory cgroup's limit says which limit was
 * hit (a cgroup OOM) or none (the whole machine). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "memory.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum memory_stat_idx);
SHARED_TYPE(struct memory_filter);
SHARED_TYPE(struct memory_oom);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct memory_filter);
} memory_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} memory_events SEC(".maps");

DECLARE_STATS(memory_counters, MEMORY_STAT_MAX);

/* The limit of the current task's memory cgroup, in KiB; 0 for none (the
 * root's "max") or not known. Cgroup v1 and v2 both keep it in memory.max. */
static __always_inline __u64 memcg_limit_kb(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = NULL;
	struct css_set *cset;
	unsigned long max;

	cset = BPF_CORE_READ(t, cgroups);
	if (!cset || id < 0 || id >= 16)
		return 0;
	bpf_probe_read_kernel(&css, sizeof(css), &cset->subsys[id]);
	if (!css)
		return 0;
	/* css is mem_cgroup's first member. */
	max = BPF_CORE_READ((struct mem_cgroup *)css, memory.max);
	/* PAGE_COUNTER_MAX: no limit. */
	if (max >= (~0UL >> 1) / 4096)
		return 0;
	return (__u64)max * 4;
}

SEC("tracepoint/oom/mark_victim")
int memory_oom_tp(struct trace_event_raw_mark_victim *ctx)
{
	__u32 zero = 0, pid = ctx->pid;
	struct memory_filter *f = bpf_map_lookup_elem(&memory_filter, &zero);
	struct memory_oom *e;
	char comm[16] = {};

	stat_inc(&memory_counters, MEMORY_STAT_OOM_KILLS);
	if (!f)
		return 0;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		__u32 loc = BPF_CORE_READ(ctx, __data_loc_comm);

		bpf_probe_read_kernel_str(comm, sizeof(comm), (void *)ctx + (loc & 0xffff));
	}
	if (!proc_wanted_as(&f->proc, pid, comm))
		return 0;
	e = bpf_ringbuf_reserve(&memory_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&memory_counters, MEMORY_STAT_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = pid;
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	if (bpf_core_field_exists(ctx->total_vm)) {
		e->has_details = 1;
		e->total_vm_kb = BPF_CORE_READ(ctx, total_vm);
		e->anon_rss_kb = BPF_CORE_READ(ctx, anon_rss);
		e->file_rss_kb = BPF_CORE_READ(ctx, file_rss);
		e->shmem_rss_kb = BPF_CORE_READ(ctx, shmem_rss);
		e->pgtables_kb = BPF_CORE_READ(ctx, pgtables);
		e->uid = BPF_CORE_READ(ctx, uid);
		e->oom_score_adj = BPF_CORE_READ(ctx, oom_score_adj);
	}
	e->killer_pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e->killer_comm, sizeof(e->killer_comm));
	e->memcg_limit_kb = memcg_limit_kb();
	bpf_ringbuf_submit(e, 0);
	return 0;
}
