/*
 * One spawn request, handled in the spawner before clone(): the request is checked and laid
 * out as a cs_config in static memory (init gets a copy of it at clone()), the descriptors
 * are made, init is cloned into fresh namespaces as the server's child (CLONE_PARENT), and
 * the server's ends go back with the reply. It runs before clone(), in the spawner's single
 * thread, and uses static memory only.
 */
#define _GNU_SOURCE 1
#include "spawner.h"
#include "child/child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

static char cs_request[CS_SPAWN_MAX_REQUEST] __attribute__((aligned(16)));
static cs_mount cs_mounts[CS_SPAWN_MAX_MOUNTS];
static cs_config cs_cfg;
static char cs_init_stack[256 * 1024] __attribute__((aligned(16)));

/* A string of the request's table, or NULL for -1; *ok cleared when out of range. */
static const char *cs_string(const char *table, uint32_t size, int32_t offset, int *ok) {
    if (offset == -1) return NULL;
    if (offset < 0 || (uint32_t)offset >= size) {
        *ok = 0;
        return NULL;
    }
    return table + offset;
}

/* Lays the request out as cs_cfg; 0, or -1 with errno EPROTO (malformed) or EMSGSIZE. */
static int cs_parse(size_t len, uint64_t *id) {
    const cs_spawn_request *h = (const cs_spawn_request *)cs_request;
    if (len < sizeof *h || h->magic != CS_SPAWNER_MAGIC || h->version != CS_SPAWNER_VERSION) {
        errno = EPROTO;
        return -1;
    }
    *id = h->id;
    if (h->n_mounts > CS_SPAWN_MAX_MOUNTS || h->seccomp_len > BPF_MAXINSNS) {
        errno = EMSGSIZE;
        return -1;
    }
    size_t mounts_bytes = (size_t)h->n_mounts * sizeof(cs_wire_mount);
    size_t filter_bytes = (size_t)h->seccomp_len * sizeof(struct sock_filter);
    if (sizeof *h + mounts_bytes + filter_bytes + h->strings_bytes != len || h->strings_bytes == 0) {
        errno = EPROTO;
        return -1;
    }
    const cs_wire_mount *wire = (const cs_wire_mount *)(cs_request + sizeof *h);
    const struct sock_filter *filter = (const struct sock_filter *)(cs_request + sizeof *h + mounts_bytes);
    const char *strings = cs_request + sizeof *h + mounts_bytes + filter_bytes;
    if (strings[h->strings_bytes - 1] != '\0') { /* every string ends inside the table */
        errno = EPROTO;
        return -1;
    }
    int ok = 1;
    memset(&cs_cfg, 0, sizeof cs_cfg);
    cs_cfg.clone_flags = (int)(h->clone_flags & CS_NAMESPACE_FLAGS);
    cs_cfg.unshare_cgroup = (h->options & CS_SPAWN_UNSHARE_CGROUP) != 0;
    cs_cfg.loopback_up = (h->options & CS_SPAWN_LOOPBACK_UP) != 0;
    cs_cfg.seccomp_early = (h->options & CS_SPAWN_SECCOMP_EARLY) != 0;
    cs_cfg.pdeathsig = SIGKILL;
    cs_cfg.base_dir = cs_string(strings, h->strings_bytes, h->base_dir, &ok);
    cs_cfg.root_options = cs_string(strings, h->strings_bytes, h->root_options, &ok);
    cs_cfg.workdir = cs_string(strings, h->strings_bytes, h->workdir, &ok);
    cs_cfg.hostname = cs_string(strings, h->strings_bytes, h->hostname, &ok);
    if (!cs_cfg.base_dir || !cs_cfg.root_options) ok = 0;
    for (uint32_t i = 0; i < h->n_mounts && ok; i++) {
        cs_mount *m = &cs_mounts[i];
        m->kind = wire[i].kind;
        m->is_dir = wire[i].is_dir != 0;
        m->source = cs_string(strings, h->strings_bytes, wire[i].source, &ok);
        m->target = cs_string(strings, h->strings_bytes, wire[i].target, &ok);
        m->data = cs_string(strings, h->strings_bytes, wire[i].data, &ok);
        int needs_source = m->kind == CS_MOUNT_BIND_RO || m->kind == CS_MOUNT_DEV_NODE || m->kind == CS_MOUNT_SYMLINK;
        if (m->kind < CS_MOUNT_BIND_RO || m->kind > CS_MOUNT_SYMLINK || !m->target || m->target[0] != '/' ||
            (needs_source && !m->source))
            ok = 0;
    }
    if (!ok) {
        errno = EPROTO;
        return -1;
    }
    cs_cfg.mounts = cs_mounts;
    cs_cfg.n_mounts = (int)h->n_mounts;
    if (h->seccomp_len > 0) {
        cs_cfg.seccomp_filter = filter;
        cs_cfg.seccomp_len = (unsigned short)h->seccomp_len;
    }
    return 0;
}

static void cs_reply(int sock, uint64_t id, pid_t pid, int err, int stage, const int *fds) {
    cs_spawn_reply reply;
    memset(&reply, 0, sizeof reply);
    reply.magic = CS_SPAWNER_MAGIC;
    reply.id = id;
    reply.pid = pid;
    reply.err = err;
    reply.stage = stage;
    char control[CMSG_SPACE(sizeof(int) * CS_SPAWN_FD_COUNT)];
    struct iovec iov = {&reply, sizeof reply};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fds) {
        memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * CS_SPAWN_FD_COUNT);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * CS_SPAWN_FD_COUNT);
    }
    ssize_t r;
    do {
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
}

int cs_serve_one(int sock) {
    struct iovec iov = {cs_request, sizeof cs_request};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n;
    do {
        n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return 0;  /* the server is gone, or let us go */
    if (n < 0) return -1;
    uint64_t id = 0;
    if (msg.msg_flags & MSG_TRUNC) {
        if ((size_t)n >= sizeof(cs_spawn_request)) id = ((const cs_spawn_request *)cs_request)->id;
        cs_reply(sock, id, 0, EMSGSIZE, CS_STAGE_SPAWNER_REQUEST, NULL);
        return 1;
    }
    if (cs_parse((size_t)n, &id) != 0) {
        cs_reply(sock, id, 0, errno, CS_STAGE_SPAWNER_REQUEST, NULL);
        return 1;
    }

    /* [read, write] × stdin, stdout, stderr, report; [server, init] control socket. */
    int fds[10];
    int made = 0;
    for (; made < 8; made += 2) {
        if (pipe2(fds + made, O_CLOEXEC) != 0) break;
    }
    if (made == 8 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds + 8) == 0) made = 10;
    if (made != 10) {
        int e = errno;
        for (int i = 0; i < made; i++) close(fds[i]);
        cs_reply(sock, id, 0, e, CS_STAGE_SPAWNER_PIPES, NULL);
        return 1;
    }
    cs_cfg.stdin_fd = fds[0];
    cs_cfg.stdout_fd = fds[3];
    cs_cfg.stderr_fd = fds[5];
    cs_cfg.report_fd = fds[7];
    cs_cfg.control_fd = fds[9];

    /* As posix_spawn does: no signal may reach init before it has reset its dispositions. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int pidfd = -1;
    pid_t pid = clone(cs_init_main, cs_init_stack + sizeof cs_init_stack,
                      cs_cfg.clone_flags | CLONE_PARENT | CLONE_PIDFD | SIGCHLD, &cs_cfg, &pidfd);
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    static const int init_ends[5] = {0, 3, 5, 7, 9};
    for (int i = 0; i < 5; i++) close(fds[init_ends[i]]);
    int back[CS_SPAWN_FD_COUNT] = {pidfd, fds[1], fds[2], fds[4], fds[8], fds[6]};
    if (pid < 0) {
        for (int i = 1; i < CS_SPAWN_FD_COUNT; i++) close(back[i]);
        cs_reply(sock, id, 0, e, CS_STAGE_CLONE, NULL);
        return 1;
    }
    cs_reply(sock, id, pid, 0, 0, back);
    for (int i = 0; i < CS_SPAWN_FD_COUNT; i++) close(back[i]);
    return 1;
}
