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

static int cs_bind_ro(const char *src, const char *dst, int recursive, unsigned long extra) {
    if (mount(src, dst, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) != 0) return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra;
    flags |= cs_locked_flags(dst);
    return mount(NULL, dst, NULL, flags, NULL);
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
        if (cs_join(src, "/oldroot", m->source) != 0) return -1;
        if (cs_mountpoint(dst, 0) != 0) return -1;
        return mount(src, dst, NULL, MS_BIND, NULL);
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
    /* Into the new root, the host's gone: detaching its tree waits for an RCU grace period,
     * which belongs here, before the run is known, not on the run's path. */
    if (umount2("/oldroot", MNT_DETACH) != 0 || chdir("/newroot") != 0 ||
        syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        cs_fail(rep, CS_STAGE_PIVOT_ROOT, 0);
}

/* Phase 2 (after the run's files are placed): /dev and the root read-only, into the workdir. */
void cs_finish_root(const cs_config *c) {
    int rep = CS_FD_REPORT;
    for (int i = 0; i < c->n_mounts; i++) {
        if (c->mounts[i].kind != CS_MOUNT_DEV) continue;
        if (mount(NULL, c->mounts[i].target, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, c->mounts[i].data) != 0)
            cs_fail(rep, CS_STAGE_MOUNT, i);
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, c->root_options) != 0)
        cs_fail(rep, CS_STAGE_REMOUNT_ROOT, 0);
    if (c->workdir && chdir(c->workdir) != 0) cs_fail(rep, CS_STAGE_WORKDIR, 0);
}
