// SPDX-License-Identifier: GPL-2.0
/* Scheduler figures aggregated in the kernel: run-queue latency (wakeup and
 * wakeup_new, or preemption, to switch-in) and on-CPU slices as log2
 * histograms, and per process run time, wait time, voluntary and involuntary
 * switches and migrations.
 *
 * Everything is keyed by thread id until the thread itself is switched out:
 * then `current` is that thread, so its process (tgid) and comm are known on
 * every attach path, including classic tracepoints that carry only pids, and
 * filters by pid and comm apply there.
 *
 * Alternatives, best first: tp_btf, raw_tp, classic sched tracepoints. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "sched.h"

char LICENSE[] SEC("license") = "GPL";

/* Every type of sched.h in the BTF, so its Rust twin is generated from it. */
SHARED_TYPE(enum sched_stat_idx);
SHARED_TYPE(enum sched_hist_idx);
SHARED_TYPE(struct sched_filter);
SHARED_TYPE(struct sched_proc);
SHARED_TYPE(struct sched_oncpu);

struct sched_task {
	__u64 wakeup_ts;  /* runnable since (0: not waiting) */
	__u64 oncpu_ts;   /* on a CPU since (0: not running) */
	__u64 pending_wait;
	/* The kernel's own totals for this thread at its last switch-out:
	 * se.sum_exec_runtime and sched_info.run_delay. */
	__u64 last_run_total;
	__u64 last_delay_total;
	__u64 last_out_ts; /* its last switch-out seen */
	__u32 pending_migrations;
	__u32 tgid;       /* learned when the thread is first switched out */
	__u8 pending_has_wait;
	__u8 totals_known; /* last_*_total are set */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sched_filter);
} sched_filter SEC(".maps");

/* Per thread. LRU: exited threads age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct sched_task);
} sched_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct sched_proc);
} sched_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} sched_comms SEC(".maps");

/* slots, then the sum of the values in ns: Prometheus histograms want a real
 * _sum, and the slots cannot give one (a log2 slot spans 2x). */
struct hist {
	__u64 slots[SCHED_HIST_SLOTS];
	__u64 sum_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCHED_HIST_MAX);
	__type(key, __u32);
	__type(value, struct hist);
} sched_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sched_oncpu);
} sched_oncpu SEC(".maps");

DECLARE_STATS(sched_counters, SCHED_STAT_MAX);

static __always_inline struct sched_task *task_state(__u32 tid)
{
	struct sched_task *t = bpf_map_lookup_elem(&sched_tasks, &tid);
	struct sched_task zero = {};
	bool inserted;

	if (t)
		return t;
	t = map_insert_or_find(&sched_tasks, &tid, &zero, &inserted);
	if (!t)
		stat_inc(&sched_counters, SCHED_STAT_TASK_FAILED);
	return t;
}

static __always_inline void hist_add(__u32 which, __u64 ns)
{
	struct hist *h = bpf_map_lookup_elem(&sched_hists, &which);

	if (h) {
		h->slots[hist_slot(ns / 1000, SCHED_HIST_SLOTS)]++;
		h->sum_ns += ns;
	}
}

static __always_inline bool wanted(__u32 tgid)
{
	__u32 zero = 0;
	struct sched_filter *f = bpf_map_lookup_elem(&sched_filter, &zero);

	return f && proc_wanted(&f->proc, tgid);
}

static __always_inline void on_wakeup(__u32 tid)
{
	struct sched_task *t;

	if (!tid)
		return;
	t = task_state(tid);
	if (t && !t->wakeup_ts)
		t->wakeup_ts = bpf_ktime_get_ns();
}

/* A task just made (fork or clone). Its tid may have been an exited
 * thread's, whose state the LRU still holds: a switch-out would take that
 * thread's runtime total for this one's and count its first slice short,
 * or wrap below zero. So the state starts afresh. */
static __always_inline void on_wakeup_new(__u32 tid)
{
	struct sched_task fresh = {};

	if (!tid)
		return;
	fresh.wakeup_ts = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&sched_tasks, &tid, &fresh, BPF_ANY))
		stat_inc(&sched_counters, SCHED_STAT_TASK_FAILED);
}

static __always_inline void on_migrate(__u32 tid)
{
	struct sched_task *t = tid ? bpf_map_lookup_elem(&sched_tasks, &tid) : NULL;

	if (t)
		t->pending_migrations++;
}

/* `prev` is current: account what it did to its process.
 *
 * Run and wait time come from the kernel's own per-thread totals where the
 * thread was seen switched out before: the run time since then is the growth
 * of se.sum_exec_runtime, the wait the growth of sched_info.run_delay (which
 * the kernel has added this slice's wait to by now). Timestamps of switch-in
 * are only the fallback for a thread's first slice: a switch-in can go
 * unseen (measured here: sched_switch events from some threads never reach
 * tracepoints), and a slice timed from a missing switch-in is lost whole. */
static __always_inline void switch_out(__u32 prev_tid, bool voluntary, __u64 now)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct sched_task *t = bpf_map_lookup_elem(&sched_tasks, &prev_tid);
	struct task_struct *cur = (void *)bpf_get_current_task();
	__u64 run_total = BPF_CORE_READ(cur, se.sum_exec_runtime);
	__u64 delay_total = 0;
	bool have_delay = bpf_core_field_exists(cur->sched_info.run_delay);
	struct sched_proc *p;
	__u64 slice = 0, wait = 0;
	__u32 migrations = 0;
	bool has_wait = false;

	if (have_delay)
		delay_total = BPF_CORE_READ(cur, sched_info.run_delay);
	if (t) {
		wait = t->pending_wait;
		has_wait = t->pending_has_wait;
		if (t->totals_known) {
			slice = run_total - t->last_run_total;
			if (have_delay) {
				wait = delay_total - t->last_delay_total;
				has_wait = has_wait || wait;
			}
		} else if (t->oncpu_ts) {
			slice = now - t->oncpu_ts;
		}
		t->last_run_total = run_total;
		t->last_delay_total = delay_total;
		t->last_out_ts = now;
		t->totals_known = 1;
		migrations = t->pending_migrations;
		t->oncpu_ts = 0;
		t->pending_wait = 0;
		t->pending_has_wait = 0;
		t->pending_migrations = 0;
		t->tgid = tgid;
		/* Preempted: still runnable, so waiting again from now (runqlat). */
		if (!voluntary)
			t->wakeup_ts = now;
	} else if (!voluntary) {
		t = task_state(prev_tid);
		if (t)
			t->wakeup_ts = now;
	}
	if (!wanted(tgid))
		return;

	p = PROC_ENTRY(struct sched_proc, &sched_procs, &tgid, tgid, &sched_comms, &sched_counters,
		       SCHED_STAT_PROC_INSERTED, SCHED_STAT_PROC_FAILED);
	if (!p)
		return;
	if ((p->slices & 63) == 0 && p->slices && !bpf_map_lookup_elem(&sched_comms, &tgid)) {
		/* The name map is an LRU filled once per process: short-lived
		 * processes push a long-lived one's name out. Put it back now and
		 * then (the lookup also marks it used). */
		comm_remember(&sched_comms, tgid);
	}
	if (slice) {
		p->run_ns += slice;
		p->slices++;
		p->last_out_ns = now;
		hist_add(SCHED_HIST_ONCPU, slice);
	}
	if (has_wait) {
		p->wait_ns += wait;
		p->waits++;
		p->runq_hist[hist_slot(wait / 1000, SCHED_HIST_SLOTS)]++;
		hist_add(SCHED_HIST_RUNQ, wait);
	}
	p->migrations += migrations;
	if (voluntary)
		p->voluntary++;
	else
		p->involuntary++;
}

/* `next` gets the CPU: its wait ends now; it is accounted when it leaves.
 * next_tgid is 0 where the hook does not tell it (classic tracepoint). */
static __always_inline void switch_in(__u32 next_tid, __u32 next_tgid, __u64 now)
{
	__u32 zero = 0;
	struct sched_oncpu *cpu = bpf_map_lookup_elem(&sched_oncpu, &zero);
	struct sched_task *t;

	if (cpu) {
		cpu->since_ns = 0;
		cpu->tgid = 0;
		cpu->tid = 0;
	}
	if (!next_tid)
		return;
	t = task_state(next_tid);
	if (!t)
		return;
	if (cpu) {
		cpu->since_ns = now;
		cpu->tgid = next_tgid ? next_tgid : t->tgid;
		cpu->tid = next_tid;
	}
	if (t->wakeup_ts) {
		t->pending_wait = now - t->wakeup_ts;
		t->pending_has_wait = 1;
		t->wakeup_ts = 0;
	}
	t->oncpu_ts = now;
}

static __always_inline void on_switch(__u32 prev_tid, bool voluntary, __u32 next_tid, __u32 next_tgid)
{
	__u64 now = bpf_ktime_get_ns();

	if (prev_tid)
		switch_out(prev_tid, voluntary, now);
	switch_in(next_tid, next_tgid, now);
}

/* At a timer interrupt (the scheduler tick among them): the task running on
 * this CPU is `current`, whatever sched_switch said. On this kernel some
 * switches never reach the tracepoint (measured: a hog's switch-in missed,
 * sched_oncpu still naming the task before it for 200 ms, and the hog's
 * CPU % at 26 % then 171 % in the next interval). Where sched_oncpu names
 * another process, or starts later than what the task has run unaccounted
 * (its own sum_exec_runtime since its last switch-out seen), it is set
 * right: the running slice then counts everything the next switch-out will
 * add to run_ns, and no more. */
static __always_inline void on_tick(void)
{
	struct task_struct *cur = (void *)bpf_get_current_task();
	__u32 tid = BPF_CORE_READ(cur, pid);
	__u32 tgid = BPF_CORE_READ(cur, tgid);
	__u32 zero = 0;
	struct sched_oncpu *cpu = bpf_map_lookup_elem(&sched_oncpu, &zero);
	struct sched_task *t;
	__u64 now = bpf_ktime_get_ns(), since = now;

	if (!cpu)
		return;
	if (!tid) {
		/* Idle. */
		cpu->since_ns = 0;
		cpu->tgid = 0;
		cpu->tid = 0;
		return;
	}
	t = bpf_map_lookup_elem(&sched_tasks, &tid);
	if (t && t->totals_known) {
		__u64 unaccounted = BPF_CORE_READ(cur, se.sum_exec_runtime) - t->last_run_total;

		if (unaccounted < now)
			since = now - unaccounted;
		/* After its last end seen: a reader takes a slice end at or
		 * after `since` as this slice's end. */
		if (since <= t->last_out_ts)
			since = t->last_out_ts + 1;
	}
	if (cpu->tid == tid && cpu->since_ns && cpu->since_ns <= since)
		return;
	if (cpu->tid != tid)
		stat_inc(&sched_counters, SCHED_STAT_ONCPU_REPAIRED);
	cpu->tgid = tgid;
	cpu->tid = tid;
	cpu->since_ns = since;
	if (t && !t->oncpu_ts)
		t->oncpu_ts = since;
}
/* tp_btf and raw_tp only: a classic (perf) tracepoint on
 * hrtimer_expire_entry locked up Debian 12's 6.1 under qemu (a soft lockup
 * in tracer-host, timers on the other CPU no longer handled), so the
 * classic alternative goes without it. */

/* ---- alternative 1: tp_btf ---- */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	on_wakeup(p->pid);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	on_wakeup_new(p->pid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	on_switch(prev->pid, !preempt && prev_state != 0, next->pid, next->tgid);
	return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(sched_tick_btf)
{
	on_tick();
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sched_migrate_btf, struct task_struct *p, int dest_cpu)
{
	on_migrate(p->pid);
	return 0;
}

/* ---- alternative 2: raw_tp (pointers read with CO-RE) ---- */
SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	on_wakeup(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	on_wakeup_new(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	on_switch(BPF_CORE_READ(prev, pid), !preempt && prev_state != 0, BPF_CORE_READ(next, pid),
		  BPF_CORE_READ(next, tgid));
	return 0;
}

SEC("raw_tp/hrtimer_expire_entry")
int BPF_PROG(sched_tick_raw)
{
	on_tick();
	return 0;
}

SEC("raw_tp/sched_migrate_task")
int BPF_PROG(sched_migrate_raw, struct task_struct *p, int dest_cpu)
{
	on_migrate(BPF_CORE_READ(p, pid));
	return 0;
}

/* ---- alternative 3: classic tracepoints ---- */
SEC("tracepoint/sched/sched_wakeup")
int sched_wakeup_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	on_wakeup(ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_wakeup_new")
int sched_wakeup_new_tp(struct trace_event_raw_sched_wakeup_template *ctx)
{
	on_wakeup_new(ctx->pid);
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int sched_switch_tp(struct trace_event_raw_sched_switch *ctx)
{
	/* Preemption is reported as TASK_REPORT_MAX (0x100): not in the low byte. */
	on_switch(ctx->prev_pid, (ctx->prev_state & 0xff) != 0, ctx->next_pid, 0);
	return 0;
}

SEC("tracepoint/sched/sched_migrate_task")
int sched_migrate_tp(struct trace_event_raw_sched_migrate_task *ctx)
{
	on_migrate(ctx->pid);
	return 0;
}

/* In every alternative (optional): keeps process names current. */
SEC("tracepoint/task/task_rename")
int sched_rename_tp(struct trace_event_raw_task_rename *ctx)
{
	comm_renamed(&sched_comms, ctx->pid, ctx->newcomm);
	return 0;
}
