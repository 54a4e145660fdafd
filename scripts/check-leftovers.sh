#!/usr/bin/env bash
# After the test suite: nothing of any run may survive it — no sandboxed process (they run as
# the unprivileged host uid 65534), no run cgroup, no mount made for a run.
set -u
status=0
procs=$(ps -u 65534 -o pid=,args= 2>/dev/null | grep -v '^\s*$' || true)
if [ -n "$procs" ]; then
  echo "leftover check: processes of uid 65534 survived the suite:" >&2
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
