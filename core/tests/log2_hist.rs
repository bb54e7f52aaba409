//! The histogram slot helper every BPF program uses (bpf/include/log2_hist.h),
//! compiled with the host's C compiler: a value past the last bucket must land
//! in the last bucket, never wrap into a low one.

use std::path::Path;
use std::process::Command;

#[test]
fn values_past_the_last_slot_are_clamped_not_wrapped() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf/include");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("t.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <linux/types.h>
#define __always_inline inline __attribute__((always_inline))
#include "log2_hist.h"
int main(void) {
    unsigned long long v[] = {0, 1, 3, 1000, 1ULL << 31, (1ULL << 32) - 1, 1ULL << 32, 1ULL << 40, ~0ULL};
    for (int i = 0; i < 9; i++) printf("%u %u\n", log2_u64(v[i]), hist_slot(v[i], 32));
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.path().join("t");
    let st = Command::new("cc").arg("-O2").arg("-I").arg(&include).arg(&src).arg("-o").arg(&exe).status().expect("running cc");
    assert!(st.success(), "compiling the histogram helper test failed");
    let out = String::from_utf8(Command::new(&exe).output().unwrap().stdout).unwrap();
    let got: Vec<(u32, u32)> = out
        .lines()
        .map(|l| {
            let mut it = l.split(' ').map(|x| x.parse().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    // (log2, slot of 32): 2^32 and above belong to the last slot, 31.
    assert_eq!(got, vec![(0, 0), (0, 0), (1, 1), (9, 9), (31, 31), (31, 31), (32, 31), (40, 31), (63, 31)]);
}
