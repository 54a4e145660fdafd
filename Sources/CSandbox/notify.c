/*
 * Refused calls answered by the server (parent side): the seccomp listener a sandbox's init
 * sends on its control socket, and the user notifications read from it and answered.
 */
#define _GNU_SOURCE 1
#include "csandbox.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/openat2.h>

#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

int cs_notification_receive(int listener, cs_notification *n) {
    struct seccomp_notif req;
    memset(&req, 0, sizeof req); /* the kernel refuses a request that is not zeroed */
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return -errno;
    n->id = req.id;
    n->pid = req.pid;
    n->nr = req.data.nr;
    for (int i = 0; i < 6; i++) n->args[i] = req.data.args[i];
    return 0;
}

int cs_notification_answer(int listener, uint64_t id, int err) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    if (err > 0) {
        resp.error = -err;
    } else {
        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    }
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0) return -errno;
    return 0;
}

int cs_receive_listener(int control) {
    uint32_t magic = 0;
    int fd = -1;
    char control_buf[CMSG_SPACE(sizeof(int))];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_receive(&msg, &iov, &magic, sizeof magic, control_buf, sizeof control_buf);
    ssize_t r;
    do {
        r = recvmsg(control, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r == 0) return 0;
    int n = cs_message_descriptors(&msg, &fd, 1);
    if (r != sizeof magic || magic != CS_LISTENER_MAGIC || n != 1) {
        if (n >= 1) close(fd);
        return -EPROTO;
    }
    return fd;
}

char *cs_syscall_name(int nr) {
    return seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
}

int cs_notification_valid(int listener, uint64_t id) {
    return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

ssize_t cs_read_process_memory(pid_t pid, uint64_t address, void *buf, size_t len) {
    struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)address, len};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    return n < 0 ? -errno : n;
}

int cs_path_exists_in_root(pid_t pid, const char *path) {
    char root[64];
    snprintf(root, sizeof root, "/proc/%d/root", (int)pid);
    int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return -errno;
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, dir, path, &how, sizeof how);
    int e = errno;
    close(dir);
    if (fd < 0) return -e;
    close(fd);
    return 0;
}
