#!/usr/bin/env bash
# After the test suite: nothing of any run may survive it — no sandboxed process (they run as
# host ids from the sandboxes' range, CONFINE_SANDBOX_ID_FIRST… (default 0x70000000, 65536 ids),
# or as nobody 65534 in older builds), no run cgroup, no mount made for a run.
set -u
status=0
first="${CONFINE_SANDBOX_ID_FIRST:-1879048192}"
count="${CONFINE_SANDBOX_ID_COUNT:-65536}"
procs=$(ps -e -o uid=,pid=,args= 2>/dev/null | awk -v f="$first" -v c="$count" '($1 >= f && $1 < f + c) || $1 == 65534' || true)
if [ -n "$procs" ]; then
  echo "leftover check: sandboxed processes (host ids $first… or 65534) survived the suite:" >&2
  echo "$procs" >&2
  status=1
fi
for dir in /sys/fs/cgroup/*/confine /sys/fs/cgroup/confine; do
  [ -d "$dir" ] || continue
  runs=$(find "$dir" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
  if [ -n "$runs" ]; then
    echo "leftover check: run cgroups survived the suite under $dir:" >&2
    echo "$runs" >&2
    status=1
  fi
done
if grep -qE ' /(newroot|oldroot)' /proc/self/mountinfo; then
  echo "leftover check: sandbox mounts are visible on the host" >&2
  status=1
fi
[ $status -eq 0 ] && echo "leftover check: no process, cgroup or mount of any run survived"
exit $status
