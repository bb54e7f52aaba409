// SPDX-License-Identifier: GPL-2.0
/* Page faults per process, minor and major, as the kernel counts them.
 *
 * The kernel counts a fault in mm_account_fault(), where it adds to the
 * task's min_flt or maj_flt (what /proc/PID/stat shows) and raises the
 * software perf event page-faults-min or page-faults-maj: the programs here
 * run on those events (one per CPU, every event), in the faulting task, so
 * the counts are the kernel's own. No tracepoint marks that point: the
 * exception tracepoints fire on every fault entry, retries and faults that
 * end in a signal included, and cannot tell minor from major.
 *
 * Optional parts: the mapping's kind (file-backed or anonymous) from
 * bpf_find_vma (kernels from 5.17; setting `mappings`, off by default), and the time of major faults from the
 * page_fault_user/kernel tracepoints (x86) to the accounting. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "tracer.h"
#include "faults.h"

char LICENSE[] SEC("license") = "GPL";

SHARED_TYPE(enum faults_stat_idx);
SHARED_TYPE(struct faults_filter);
SHARED_TYPE(struct faults_proc);
SHARED_TYPE(struct faults_hist);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct faults_filter);
} faults_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct faults_proc);
} faults_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, char[TASK_COMM_LEN]);
} faults_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct faults_hist);
} faults_hist SEC(".maps");

/* When the current fault of each thread began. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} faults_start SEC(".maps");

DECLARE_STATS(faults_counters, FAULTS_STAT_MAX);

struct vma_kind {
	int file; /* 1 file-backed, 0 anonymous, -1 not known */
};

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_kind *k = data;

	k->file = vma->vm_file != NULL;
	return 0;
}

static __always_inline void on_fault(bool major, __u64 addr)
{
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct faults_filter *f = bpf_map_lookup_elem(&faults_filter, &zero);
	struct vma_kind k = { .file = -1 };
	struct faults_proc *p;

	if (!f || !proc_wanted(&f->proc, tgid) || !uid_wanted(&f->uid))
		return;
	p = PROC_ENTRY(struct faults_proc, &faults_procs, &tgid, tgid, &faults_comms, &faults_counters,
		       FAULTS_STAT_PROC_INSERTED, FAULTS_STAT_PROC_FAILED);
	if (!p)
		return;
	/* Opt-in: in a perf event handler interrupts are off, so the helper's
	 * mmap unlock goes through irq_work: ~6 us a fault on this machine. */
	if (f->mappings && bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_find_vma))
		bpf_find_vma(bpf_get_current_task_btf(), addr, vma_cb, &k, 0);
	if (!major) {
		p->minor++;
		if (k.file == 1)
			p->minor_file++;
		else if (k.file == 0)
			p->minor_anon++;
		return;
	}
	p->major++;
	if (k.file == 1)
		p->major_file++;
	else if (k.file == 0)
		p->major_anon++;
	{
		__u64 *start = bpf_task_storage_get(&faults_start, bpf_get_current_task_btf(), 0, 0);
		struct faults_hist *h = bpf_map_lookup_elem(&faults_hist, &zero);
		__u64 ns;

		if (!start || !*start || !h)
			return;
		ns = bpf_ktime_get_ns() - *start;
		*start = 0;
		p->major_ns += ns;
		p->major_timed++;
		h->slots[hist_slot(ns / 1000, FAULTS_HIST_SLOTS)]++;
		h->sum_ns += ns;
	}
}

SEC("perf_event")
int faults_minor(struct bpf_perf_event_data *ctx)
{
	on_fault(false, ctx->addr);
	return 0;
}

SEC("perf_event")
int faults_major(struct bpf_perf_event_data *ctx)
{
	on_fault(true, ctx->addr);
	return 0;
}

static __always_inline void on_entry(void)
{
	__u64 *start = bpf_task_storage_get(&faults_start, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (start)
		*start = bpf_ktime_get_ns();
}

/* x86's exception tracepoints: a fault's entry, for major fault latency. */
SEC("tp_btf/page_fault_user")
int BPF_PROG(faults_entry_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_entry();
	return 0;
}

SEC("tp_btf/page_fault_kernel")
int BPF_PROG(faults_entry_kernel, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_entry();
	return 0;
}

/* Optional: keeps process names current (exec, prctl), as the other tracers do. */
SEC("tracepoint/task/task_rename")
int faults_rename_tp(struct trace_event_raw_task_rename *ctx)
{
	comm_renamed(&faults_comms, ctx->pid, ctx->newcomm);
	return 0;
}
