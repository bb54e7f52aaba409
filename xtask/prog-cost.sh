#!/bin/bash
# The kernel's own per-program cost of one plugin on one workload, as root:
#   xtask/prog-cost.sh PLUGIN.so PLUGIN 'SETTINGS TOML' PROGRAM_PREFIX -- WORKLOAD ARGS...
# e.g. xtask/prog-cost.sh target/debug/plugins/libtracer_sched.so sched "" sched_ -- pingpong 200000
# Runs tracer-host headless with only that plugin, runs tracer-workload, and prints
# "program ns_per_run runs" from bpftool (run_time_ns / run_cnt, kernel.bpf_stats_enabled=1).
# Run it in turns with two builds of a plugin to compare them: one run is noisy.
set -e
so=$1; plugin=$2; settings=$3; prefix=$4; shift 5
d=$(mktemp -d); cp "$so" $d/; chmod 644 $d/*.so
cat > $d/c.toml <<EOC
plugins_dir = "unused"
enabled = ["$plugin"]
[plugins.$plugin]
$settings
EOC
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
trap 'sysctl -q kernel.bpf_stats_enabled=$old_stats' EXIT
sysctl -q kernel.bpf_stats_enabled=1
$(dirname "$0")/../target/debug/tracer-host --config $d/c.toml --plugins-dir $d --headless --format json > /dev/null 2> $d/err &
h=$!
for i in $(seq 50); do grep -q "$plugin running" $d/err && break; sleep 0.2; done
$(dirname "$0")/../target/debug/tracer-workload "$@" > /dev/null
bpftool prog show -j | python3 -c '
import json,sys
for p in json.load(sys.stdin):
    if p.get("run_cnt",0)>0 and p["name"].startswith(sys.argv[1]):
        print(p["name"], round(p["run_time_ns"]/p["run_cnt"],1), p["run_cnt"])
' "$prefix"
kill -TERM $h; wait $h || true
rm -rf $d
