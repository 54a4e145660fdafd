#!/usr/bin/env bash
# make test-cgroup2: boots Debian's own kernel (cgroup v2 only) under QEMU (KVM; TCG emulation
# where the host's KVM cannot boot a stock kernel, about 5 minutes in all) with a tiny init,
# the host's root file system shared read-only over 9p, and runs guest.sh there: the Sandbox and
# Engine suites of the very test binary built on the host, `confine doctor`, a `confine serve`
# end-to-end check and (CGROUP2_BENCH=1) the launch benchmark. The guest's results come back
# over a second, writable 9p share; a failing guest stage fails this script.
#
#   scripts/cgroup2-guest/run.sh [--optional]
#
# --optional (what `make test` passes): without a KVM able to boot the guest, or without root,
# print why and exit 0 (CGROUP2_ACCEL=tcg runs it emulated all the same).
# CGROUP2_BENCH=1 adds the launch benchmark (.build/release/confine-bench; BENCH_ROUNDS and
# BENCH_EXECUTIONS are handed to the guest) after the tests; CGROUP2_BENCH=only runs it alone.
# Every stage has a timeout (CGROUP2_TIMEOUT, seconds, for the whole guest: 1200); the guest is
# always killed at the end. The extracted kernel is cached in .build/cgroup2-guest (`make clean`
# removes it); the initramfs and the results live in a temporary directory removed at exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
optional=0
[ "${1:-}" = "--optional" ] && optional=1
timeout_s=${CGROUP2_TIMEOUT:-1200}
memory_mb=${CGROUP2_MEMORY_MB:-4096}

skip() {
    if [ $optional -eq 1 ]; then
        echo "test-cgroup2: SKIPPED: $*" >&2
        exit 0
    fi
    echo "test-cgroup2: cannot run: $*" >&2
    exit 1
}
[ "$(uname -m)" = x86_64 ] || skip "this is $(uname -m), the guest is x86_64 (Debian's linux-image-amd64)"
[ "$(id -u)" -eq 0 ] || skip "not root (the guest shares the host's root read-only as root, and apt-get installs qemu)"
[ -e /dev/kvm ] || skip "/dev/kvm does not exist (no KVM on this host: the guest would take far too long without it)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not readable and writable"
command -v apt-get >/dev/null || skip "no apt-get: the guest kernel is Debian's linux-image-amd64"

# KVM where it can boot a stock kernel (decided before anything is installed or fetched, so that
# `make test` skips at once where it cannot run). A host whose KVM is kvm-pvm (PVM, the page-table based
# nested hypervisor of some cloud sandboxes) runs only PVM-enabled guest kernels: a stock one
# hangs in its decompressor. There the guest runs under TCG (emulated; slower).
accel=${CGROUP2_ACCEL:-}
if [ -z "$accel" ]; then
    if [ -d /sys/module/kvm_pvm ]; then
        [ $optional -eq 1 ] && skip "this host's KVM is kvm-pvm, which boots only PVM-enabled guest kernels (a stock one hangs in its decompressor); under TCG emulation the guest takes several minutes more: run make test-cgroup2, or make test CGROUP2_ACCEL=tcg"
        accel=tcg
        echo "test-cgroup2: this host's KVM is kvm-pvm, which boots only PVM guest kernels; emulating the guest (TCG) instead" >&2
    else
        accel=kvm
    fi
fi

"$repo/scripts/ensure-deps.sh" qemu-system-x86 busybox-static
xctest="$repo/.build/debug/ConfinePackageTests.xctest"
confine="$repo/.build/debug/confine"
for f in "$xctest" "$confine"; do
    [ -x "$f" ] || { echo "test-cgroup2: $f is missing: run swift build --build-tests first" >&2; exit 1; }
done

# The kernel: linux-image-amd64 resolved to its versioned package, downloaded and extracted
# once; only vmlinuz and the 9p/virtio modules are kept.
cache="$repo/.build/cgroup2-guest"
package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$package" ] || { echo "test-cgroup2: apt-cache does not resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
release=${package#linux-image-}
kdir="$cache/$release"
if [ ! -f "$kdir/vmlinuz" ]; then
    echo "test-cgroup2: fetching $package (apt-get download)" >&2
    rm -rf "$kdir.partial" && mkdir -p "$kdir.partial/deb"
    (cd "$kdir.partial/deb" && timeout 300 apt-get download -q "$package" >/dev/null 2>&1) || {
        apt-get update -qq && (cd "$kdir.partial/deb" && timeout 300 apt-get download -q "$package" >/dev/null)
    }
    timeout 300 dpkg-deb -x "$kdir.partial"/deb/*.deb "$kdir.partial/x"
    mkdir -p "$kdir.partial/modules"
    cp "$kdir.partial/x/boot/vmlinuz-$release" "$kdir.partial/vmlinuz"
    find "$kdir.partial/x/lib/modules/$release/kernel" \( -path '*/fs/9p/*' -o -path '*/net/9p/*' \
        -o -path '*/fs/netfs/*' -o -path '*/fs/fscache/*' -o -path '*/drivers/virtio/*' \) -name '*.ko*' \
        -exec cp {} "$kdir.partial/modules/" \;
    rm -rf "$kdir.partial/x" "$kdir.partial/deb"
    rm -rf "$kdir" && mv "$kdir.partial" "$kdir"
fi

work=$(mktemp -d /tmp/confine-cgroup2.XXXXXX)
qemu_pid=
cleanup() {
    # CGROUP2_RESULTS=DIR keeps the guest's stage logs there.
    if [ -n "${CGROUP2_RESULTS:-}" ] && [ -d "$work/results" ]; then
        mkdir -p "$CGROUP2_RESULTS" && cp -r "$work/results/." "$CGROUP2_RESULTS/" || true
    fi
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill -KILL "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The initramfs: busybox-static, init, the modules in dependency order (from their modinfo).
mkdir -p "$work/initramfs"/{bin,proc,sys,dev,modules,newroot}
cp /bin/busybox "$work/initramfs/bin/busybox"
cp "$here/init" "$work/initramfs/init"
chmod 755 "$work/initramfs/init"
for ko in "$kdir"/modules/*.ko*; do
    name=$(basename "$ko"); name=${name%%.ko*}
    case "$ko" in
        *.xz) xz -dc "$ko" >"$work/initramfs/modules/$name.ko" ;;
        *.zst) zstd -qdc "$ko" >"$work/initramfs/modules/$name.ko" ;;
        *) cp "$ko" "$work/initramfs/modules/$name.ko" ;;
    esac
done
declare -A loaded=()
order=()
add_module() {
    local name=$1 dep
    [ -n "${loaded[$name]:-}" ] && return
    [ -f "$work/initramfs/modules/$name.ko" ] || { echo "test-cgroup2: module $name missing from $package" >&2; exit 1; }
    loaded[$name]=1
    for dep in $(tr '\0' '\n' <"$work/initramfs/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    order+=("$name")
}
for m in virtio_pci 9pnet_virtio 9p; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$work/initramfs/modules/order"
(cd "$work/initramfs" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$work/initramfs.cpio.gz")

mkdir -p "$work/results"
chmod 777 "$work/results"
case "$accel" in
    kvm) accel_args=(-enable-kvm -cpu host) ;;
    tcg) accel_args=(-accel tcg,thread=multi,tb-size=512 -cpu max) ;;
    *) echo "test-cgroup2: CGROUP2_ACCEL must be kvm or tcg, not $accel" >&2; exit 1 ;;
esac
boot_timeout=${CGROUP2_BOOT_TIMEOUT:-240}
echo "test-cgroup2: booting $package with $accel ($(nproc) CPUs, ${memory_mb} MiB, boot timeout ${boot_timeout}s, timeout ${timeout_s}s)" >&2
start=$(date +%s)
timeout -k 10 "$timeout_s" qemu-system-x86_64 "${accel_args[@]}" -smp "$(nproc)" -m "$memory_mb" \
    -nographic -no-reboot -nodefaults -serial stdio \
    -kernel "$kdir/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 confine_guest=$here/guest.sh confine_repo=$repo confine_bench=${CGROUP2_BENCH:-0} confine_bench_rounds=${BENCH_ROUNDS:-200} confine_bench_executions=${BENCH_EXECUTIONS:-1000} confine_accel=$accel" \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$work/results,mount_tag=results,security_model=none" \
    </dev/null &
qemu_pid=$!
# The boot watchdog: guest.sh writes the summary's first line as soon as it runs.
booted=0
while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ $booted -eq 0 ]; then
        if [ -s "$work/results/summary" ]; then
            booted=1
            echo "test-cgroup2: the guest booted in $(( $(date +%s) - start ))s" >&2
        elif [ $(( $(date +%s) - start )) -ge "$boot_timeout" ]; then
            echo "test-cgroup2: FAILED: the guest did not boot within ${boot_timeout}s (accelerator $accel); killed" >&2
            exit 1
        fi
    fi
    sleep 1
done
set +e
wait "$qemu_pid"
qemu_status=$?
set -e
qemu_pid=
elapsed=$(( $(date +%s) - start ))
if [ $qemu_status -eq 124 ] || [ $qemu_status -eq 137 ]; then
    echo "test-cgroup2: FAILED: the guest did not finish within ${timeout_s}s and was killed" >&2
    exit 1
fi
if [ ! -f "$work/results/summary" ]; then
    echo "test-cgroup2: FAILED: the guest wrote no results (qemu exit status $qemu_status); see its console above" >&2
    exit 1
fi
echo "---- test-cgroup2: guest results (${elapsed}s for the whole guest) ----"
cat "$work/results/summary"
[ -f "$work/results/bench" ] && { echo "---- launch benchmark in the guest (cgroup v2) ----"; cat "$work/results/bench"; }
if grep -q '^FAIL' "$work/results/summary" || ! grep -q '^DONE' "$work/results/summary"; then
    echo "test-cgroup2: FAILED (stage logs were printed on the guest's console above)" >&2
    exit 1
fi
echo "test-cgroup2: every guest stage passed on $(sed -n 's/^kernel //p' "$work/results/summary") in ${elapsed}s"
