/* init's file system: the policy's root built under /newroot, then made the root (see child.h). */
#define _GNU_SOURCE 1
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Creates the mount point `dst`: a directory, or an empty file. */
static int cs_mountpoint(const char *dst, int is_dir) {
    if (cs_mkdirs(dst, is_dir) != 0) return -1;
    if (!is_dir) {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno != EEXIST) return -1;
        if (fd >= 0) close(fd);
    }
    return 0;
}

/* Mount flags that a user namespace locks on a bind mount: a remount must keep them. */
static unsigned long cs_locked_flags(const char *path) {
    struct statfs st;
    unsigned long flags = 0;
    if (statfs(path, &st) != 0) return 0;
    if (st.f_flags & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flags & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flags & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flags & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#define CS_AT_RECURSIVE 0x8000
#define CS_MOUNT_ATTR_RDONLY 0x1
#define CS_MOUNT_ATTR_NOSUID 0x2
#define CS_MOUNT_ATTR_NODEV 0x4

/* struct mount_attr of mount_setattr(2) (not in every libc's headers). */
struct cs_mount_attr {
    unsigned long long attr_set, attr_clr, propagation, userns_fd;
};

/* Remounts one bind mount read-only, nosuid, nodev, keeping the flags the user namespace locks. */
static int cs_remount_ro(const char *dst) {
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | cs_locked_flags(dst);
    return mount(NULL, dst, NULL, flags, NULL);
}

/* Without mount_setattr (kernels before 5.12): every mount below `dst` in the mount table,
 * remounted read-only one by one. Static memory, raw reads: no malloc after clone(). */
static char cs_mountinfo[65536];

static int cs_remount_submounts_ro(const char *dst) {
    int fd = open("/oldroot/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t dst_len = strlen(dst), kept = 0;
    for (;;) {
        ssize_t n = read(fd, cs_mountinfo + kept, sizeof cs_mountinfo - 1 - kept);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { int e = errno; close(fd); errno = e; return -1; }
        size_t len = kept + (size_t)n, start = 0;
        for (size_t i = 0; i < len; i++) {
            if (cs_mountinfo[i] != '\n' && !(n == 0 && i == len - 1)) continue;
            /* Fifth field: the mount point (octal escapes such as \040 are left as they are:
             * they never match a plan's target, which has none). */
            char *line = cs_mountinfo + start, *field = line;
            cs_mountinfo[cs_mountinfo[i] == '\n' ? i : len] = 0;
            for (int k = 0; k < 4 && field; k++) {
                field = strchr(field, ' ');
                if (field) field++;
            }
            start = i + 1;
            if (!field) continue;
            char *end = strchr(field, ' ');
            if (end) *end = 0;
            if (strncmp(field, dst, dst_len) == 0 && field[dst_len] == '/' && cs_remount_ro(field) != 0) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
            }
        }
        if (n == 0) break;
        kept = len - start;
        if (kept == sizeof cs_mountinfo - 1) { close(fd); errno = E2BIG; return -1; } /* one line longer than the buffer */
        memmove(cs_mountinfo, cs_mountinfo + start, kept);
    }
    close(fd);
    return 0;
}

/* A read-only bind that is read-only all the way down: the top remounted, then every submount
 * (mount_setattr with AT_RECURSIVE where the kernel has it, else each one). */
static int cs_bind_ro(const char *src, const char *dst, int recursive, unsigned long extra) {
    if (mount(src, dst, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) != 0) return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra;
    flags |= cs_locked_flags(dst);
    if (mount(NULL, dst, NULL, flags, NULL) != 0) return -1;
    if (!recursive) return 0;
    struct cs_mount_attr attr = {CS_MOUNT_ATTR_RDONLY | CS_MOUNT_ATTR_NOSUID | CS_MOUNT_ATTR_NODEV, 0, 0, 0};
    if (syscall(SYS_mount_setattr, AT_FDCWD, dst, CS_AT_RECURSIVE, &attr, sizeof attr) == 0) return 0;
    if (errno != ENOSYS) return -1;
    return cs_remount_submounts_ro(dst);
}

static int cs_do_mount(const cs_mount *m) {
    char dst[CS_PATH_MAX], src[CS_PATH_MAX];
    if (cs_join(dst, "/newroot", m->target) != 0) return -1;
    switch (m->kind) {
    case CS_MOUNT_BIND_RO:
        if (cs_join(src, "/oldroot", m->source) != 0) return -1;
        if (cs_mountpoint(dst, m->is_dir) != 0) return -1;
        return cs_bind_ro(src, dst, 1, 0);
    case CS_MOUNT_TMPFS:
        if (cs_mkdirs(dst, 1) != 0) return -1;
        return mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, m->data);
    case CS_MOUNT_PROC:
        if (cs_mkdirs(dst, 1) != 0) return -1;
        return mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    case CS_MOUNT_DEV:
        if (cs_mkdirs(dst, 1) != 0) return -1;
        return mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NOEXEC, m->data);
    case CS_MOUNT_DEV_NODE:
        /* Read-only: the node works (reads, writes to the device) but the host's inode cannot
         * be changed through it (touch, chmod). Not nodev, or it could not be opened. */
        if (cs_join(src, "/oldroot", m->source) != 0) return -1;
        if (cs_mountpoint(dst, 0) != 0) return -1;
        if (mount(src, dst, NULL, MS_BIND, NULL) != 0) return -1;
        return mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC | cs_locked_flags(dst), NULL);
    case CS_MOUNT_SYMLINK:
        if (cs_mkdirs(dst, 0) != 0) return -1;
        return symlink(m->source, dst);
    default:
        errno = EINVAL;
        return -1;
    }
}

int cs_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) goto fail;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) goto fail;
    close(s);
    return 0;
fail:;
    int e = errno;
    close(s);
    errno = e;
    return -1;
}

/* Phase 1: the policy's root built under /newroot (with the host's under /oldroot), then
 * made the root. Everything the run needs of the host is bound by now. */
void cs_prepare_root(const cs_config *c) {
    int rep = CS_FD_REPORT;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) cs_fail(rep, CS_STAGE_MOUNT_PRIVATE, 0);
    /* A scratch tmpfs over base_dir becomes the root for a moment, with the host's root under
     * /oldroot, so that every source is reached as /oldroot/... while /newroot is built. */
    if (mount("tmpfs", c->base_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") != 0)
        cs_fail(rep, CS_STAGE_MOUNT_BASE, 0);
    if (chdir(c->base_dir) != 0 || mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0 ||
        syscall(SYS_pivot_root, ".", "oldroot") != 0 || chdir("/") != 0)
        cs_fail(rep, CS_STAGE_PIVOT_BASE, 0);
    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, c->root_options) != 0)
        cs_fail(rep, CS_STAGE_MOUNT_ROOT, 0);
    for (int i = 0; i < c->n_mounts; i++) {
        if (cs_do_mount(&c->mounts[i]) != 0) cs_fail(rep, CS_STAGE_MOUNT, i);
    }
    /* Into the new root, the host's gone: pivot_root(".", ".") stacks the scratch root (with
     * the host's tree under its /oldroot) on top of the new root, and one lazy unmount detaches
     * the scratch and everything below it. Every unmount waits for an expedited RCU grace
     * period (IPIs to every CPU): one here, not one for the host's tree and one for the
     * scratch; and here, before the run is known, not on the run's path. */
    if (chdir("/newroot") != 0 || syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 ||
        chdir("/") != 0)
        cs_fail(rep, CS_STAGE_PIVOT_ROOT, 0);
}

/* Phase 2 (after the run's files are placed): /dev and the root read-only. (The program's
 * process, made before, went into the workdir itself.) */
void cs_finish_root(const cs_config *c) {
    int rep = CS_FD_REPORT;
    for (int i = 0; i < c->n_mounts; i++) {
        if (c->mounts[i].kind != CS_MOUNT_DEV) continue;
        if (mount(NULL, c->mounts[i].target, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, c->mounts[i].data) != 0)
            cs_fail(rep, CS_STAGE_MOUNT, i);
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, c->root_options) != 0)
        cs_fail(rep, CS_STAGE_REMOUNT_ROOT, 0);
}
