#!/bin/bash
# Runs as PID 1 of the cgroup2 test guest (see init and run.sh), on the host's root file system
# (read-only) with cgroup2 as the only hierarchy at /sys/fs/cgroup. Each stage has a timeout;
# its log goes to the results share (/run/cgroup2-results/STAGE.log) and one line to
# /run/cgroup2-results/summary: "PASS stage (Ns)" or "FAIL stage (Ns): why". "DONE" ends it.
# Then the guest powers itself off.
repo=${1:?usage: guest.sh REPO}
results=/run/cgroup2-results
summary=$results/summary
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8
cgroot=/sys/fs/cgroup
xctest=$repo/.build/debug/ConfinePackageTests.xctest
confine=$repo/.build/debug/confine

poweroff_now() {
    sync
    echo o >/proc/sysrq-trigger
    sleep 30
}
trap poweroff_now EXIT

echo "kernel $(uname -r)" >"$summary"
echo "controllers $(cat $cgroot/cgroup.controllers)" >>"$summary"

# stage NAME TIMEOUT COMMAND...: runs COMMAND with its output in NAME.log, bounded by TIMEOUT s.
stage() {
    local name=$1 limit=$2 start status
    shift 2
    echo "== guest stage $name (timeout ${limit}s)" >/dev/console
    start=$(date +%s)
    # bash -c: the command may be one of the functions below (exported).
    timeout -k 5 "$limit" bash -c '"$@"' stage "$@" >"$results/$name.log" 2>&1
    status=$?
    local took=$(( $(date +%s) - start ))
    if [ $status -eq 0 ]; then
        echo "PASS $name (${took}s)" >>"$summary"
    elif [ $status -eq 124 ] || [ $status -eq 137 ]; then
        echo "FAIL $name (${took}s): timed out after ${limit}s" >>"$summary"
    else
        if grep -q '✘' "$results/$name.log"; then
            echo "FAIL $name (${took}s): exit status $status; the failed tests:" >>"$summary"
            grep -A3 '✘' "$results/$name.log" | head -n 60 | sed 's/^/    /' >>"$summary"
        else
            echo "FAIL $name (${took}s): exit status $status; last lines of $name.log:" >>"$summary"
            tail -n 40 "$results/$name.log" | sed 's/^/    /' >>"$summary"
        fi
    fi
    tail -n 1 "$summary" >/dev/console
}

# What systemd does on a v2 host: the controllers enabled from the root down to the slices.
echo "+cpu +memory +pids" >$cgroot/cgroup.subtree_control
mkdir -p $cgroot/system.slice
echo "+cpu +memory +pids" >$cgroot/system.slice/cgroup.subtree_control

# run_in CGROUP COMMAND...: COMMAND as the only process of CGROUP (created), as a systemd unit
# with Delegate=yes would start it.
run_in() {
    local cgroup=$cgroot/$1
    shift
    mkdir -p "$cgroup"
    bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cgroup" "$@"
}
export -f run_in
export cgroot

doctor() {
    mkdir -p /tmp/doctor && cd /tmp/doctor || return 1
    CONFINE_POLICIES=$repo/policies "$confine" doctor || return 1
    CONFINE_POLICIES=$repo/policies "$confine" doctor --json >/tmp/doctor/report.json || return 1
    python3 - <<'PY'
import json, sys
checks = {c["name"]: c for c in json.load(open("/tmp/doctor/report.json"))["checks"]}
cg = checks["cgroups"]
assert cg["status"] == "ok" and cg["detail"].startswith("v2 at /sys/fs/cgroup"), cg
parent = checks["cgroup parent"]
assert parent["status"] == "ok" and parent["detail"].startswith("v2:"), parent
print("doctor reports cgroup v2:", cg["detail"], "|", parent["detail"])
PY
}

# Under TCG every instruction is emulated (several times slower than KVM): the few tests whose
# programs must finish within a CPU-time or short wall-clock limit scale those limits by
# CONFINE_TEST_TIME_SCALE (TestTimeScale in the tests), and still prove what they prove. Under
# KVM nothing is scaled. (A test may still be skipped here with its reason in the summary.)
accel=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^confine_accel=//p')
skips=()
time_scale=1
if [ "$accel" = tcg ]; then
    time_scale=8
    echo "NOTE (accel tcg) CPU-time and short wall-clock limits of five tests scaled ×$time_scale (CONFINE_TEST_TIME_SCALE): concurrentRuns, outputFlood, seccompKill, signalsReset, gracefulShutdown" >>"$summary"
fi
export CONFINE_TEST_TIME_SCALE=$time_scale
skip_args=()
for entry in "${skips[@]}"; do
    id=${entry%%|*}
    skip_args+=(--skip "^${id%()}\\(")
    echo "SKIP (accel $accel) ${entry%%|*}: ${entry#*|}" >>"$summary"
done
export skip_args_text="${skip_args[*]}"

suites() {
    # The test binary of the host, as `swift test` runs it, as the only process of a delegated
    # cgroup: the v2 backend must move itself into a leaf and put runs beside it.
    # One test at a time: the guest's CPUs are few (and emulated under TCG), and the suites'
    # wall-clock limits are meant for a run that has the machine to itself.
    cd "$repo" || return 1
    CONFINE_SANDBOX_CPU_WEIGHT=100 run_in "system.slice/confine-$1.service" \
        "$xctest" --testing-library swift-testing --no-parallel --filter "$2" $skip_args_text || return 1
}

serve_e2e() { python3 "$repo/scripts/cgroup2-guest/serve_e2e.py" "$confine" "$repo/policies"; }
export -f doctor suites serve_e2e
export repo xctest confine

bench_mode=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^confine_bench=//p')
if [ "$bench_mode" != only ]; then
    stage doctor 120 doctor
    stage sandbox-suite 900 suites sandbox-tests '^SandboxTests\.'
    stage engine-suite 600 suites engine-tests '^EngineTests\.'
    stage serve-e2e 180 serve_e2e
fi
if [ "$bench_mode" = 1 ] || [ "$bench_mode" = only ]; then
    bench=$repo/.build/release/confine-bench
    rounds=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^confine_bench_rounds=//p')
    export BENCH_ROUNDS=${rounds:-200}
    executions=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^confine_bench_executions=//p')
    export BENCH_EXECUTIONS=${executions:-1000}
    if [ -x "$bench" ]; then
        stage bench 900 bash -c "cd '$repo' && '$bench' 2>&1 | tee '$results/bench'"
    else
        echo "FAIL bench: $bench is missing (swift build -c release --product confine-bench)" >>"$summary"
    fi
fi
# Every directory under a confine/ is a run's, but the spawners' leaf, which must be empty.
leftovers=$(find $cgroot -mindepth 2 -path '*/confine/*' -type d ! -path '*/confine/spawner' 2>/dev/null)
for leaf in $(find $cgroot -mindepth 2 -path '*/confine/spawner' -type d 2>/dev/null); do
    [ -s "$leaf/cgroup.procs" ] && leftovers="$leftovers $leaf (spawners still in it: $(tr '\n' ' ' <"$leaf/cgroup.procs"))"
done
if [ -n "$leftovers" ]; then
    echo "FAIL leftovers: run cgroups survived: $leftovers" >>"$summary"
else
    echo "PASS leftovers: no run cgroup survived" >>"$summary"
fi
echo DONE >>"$summary"
