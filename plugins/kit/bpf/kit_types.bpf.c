// SPDX-License-Identifier: GPL-2.0
/* Never loaded: compiled only so the structs of tracer.h get BTF, from which
 * the kit generates their Rust twins (plugins/kit/src/btf_types.rs). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tracer.h"

SHARED_TYPE(struct proc_filter);
SHARED_TYPE(struct uid_filter);

char LICENSE[] SEC("license") = "GPL";
