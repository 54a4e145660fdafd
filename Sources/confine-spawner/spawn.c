/*
 * One spawn request, handled in the spawner before clone(): the request is checked and laid
 * out as a cs_config in static memory (init gets a copy of it at clone()), the descriptors
 * are made, init is cloned into fresh namespaces as the server's child (CLONE_PARENT) — born
 * in its cgroup (clone3, CLONE_INTO_CGROUP) when the request brought the cgroup's directory and
 * the kernel allows it — and the server's ends go back with the reply. It runs before clone(), in the spawner's single
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
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* clone3's arguments (linux/sched.h's struct clone_args, up to `cgroup`: CLONE_ARGS_SIZE_VER2). */
struct cs_clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

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
    cs_cfg.seccomp_notify = (h->options & CS_SPAWN_SECCOMP_NOTIFY) != 0;
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

static void cs_reply(int sock, uint64_t id, pid_t pid, int err, int stage, const int *fds, uint32_t flags,
                     int into_cgroup_err) {
    cs_spawn_reply reply;
    memset(&reply, 0, sizeof reply);
    reply.magic = CS_SPAWNER_MAGIC;
    reply.id = id;
    reply.pid = pid;
    reply.err = err;
    reply.stage = stage;
    reply.flags = flags;
    reply.into_cgroup_err = into_cgroup_err;
    char control[CMSG_SPACE(sizeof(int) * CS_SPAWN_FD_COUNT)];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_send(&msg, &iov, &reply, sizeof reply, control, fds, fds ? CS_SPAWN_FD_COUNT : 0);
    (void)cs_send_message(sock, &msg);
}

/* init born in the cgroup `cgroup_fd` (clone3 with CLONE_INTO_CGROUP: no moment outside it,
 * nothing to move afterwards). Fork-like (no CLONE_VM): the child goes on with a copy of this
 * stack into cs_init_main. Returns the pid, or -1 with errno. */
static pid_t cs_clone_into_cgroup(int cgroup_fd, int *pidfd) {
    struct cs_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = (uint64_t)(unsigned)cs_cfg.clone_flags | CLONE_PARENT | CLONE_PIDFD | CLONE_INTO_CGROUP;
    args.pidfd = (uint64_t)(uintptr_t)pidfd;
    /* 0 with CLONE_PARENT (clone3 refuses any other, EINVAL): the child's exit signal is then
     * the spawner's own, SIGCHLD, sent to the server. */
    args.exit_signal = 0;
    args.cgroup = (uint64_t)cgroup_fd;
    long r = syscall(SYS_clone3, &args, sizeof args);
    if (r == 0) {
        cs_init_main(&cs_cfg);
        _exit(127);
    }
    return (pid_t)r;
}

/* Serves one received request; `cgroup_fd` (or -1) is the descriptor that came with it. */
static void cs_serve_request(int sock, const struct msghdr *msg, size_t n, int cgroup_fd) {
    uint64_t id = 0;
    if (msg->msg_flags & MSG_TRUNC) {
        if (n >= sizeof(cs_spawn_request)) id = ((const cs_spawn_request *)cs_request)->id;
        cs_reply(sock, id, 0, EMSGSIZE, CS_STAGE_SPAWNER_REQUEST, NULL, 0, 0);
        return;
    }
    if (cs_parse(n, &id) != 0) {
        cs_reply(sock, id, 0, errno, CS_STAGE_SPAWNER_REQUEST, NULL, 0, 0);
        return;
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
        cs_reply(sock, id, 0, e, CS_STAGE_SPAWNER_PIPES, NULL, 0, 0);
        return;
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
    int pidfd = -1, into_cgroup_err = 0;
    uint32_t flags = 0;
    pid_t pid = -1;
    if (cgroup_fd >= 0) {
        pid = cs_clone_into_cgroup(cgroup_fd, &pidfd);
        if (pid > 0) flags |= CS_SPAWNED_IN_CGROUP;
        else into_cgroup_err = errno; /* an older kernel, or no right to the cgroup: as before */
    }
    if (pid < 0)
        pid = clone(cs_init_main, cs_init_stack + sizeof cs_init_stack,
                    cs_cfg.clone_flags | CLONE_PARENT | CLONE_PIDFD | SIGCHLD, &cs_cfg, &pidfd);
    int e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    static const int init_ends[5] = {0, 3, 5, 7, 9};
    for (int i = 0; i < 5; i++) close(fds[init_ends[i]]);
    int back[CS_SPAWN_FD_COUNT] = {pidfd, fds[1], fds[2], fds[4], fds[8], fds[6]};
    if (pid < 0) {
        for (int i = 1; i < CS_SPAWN_FD_COUNT; i++) close(back[i]);
        cs_reply(sock, id, 0, e, CS_STAGE_CLONE, NULL, 0, into_cgroup_err);
        return;
    }
    cs_reply(sock, id, pid, 0, 0, back, flags, into_cgroup_err);
    for (int i = 0; i < CS_SPAWN_FD_COUNT; i++) close(back[i]);
}

int cs_serve_one(int sock) {
    struct iovec iov;
    char control[CMSG_SPACE(sizeof(int) * 4)];
    struct msghdr msg;
    cs_message_to_receive(&msg, &iov, cs_request, sizeof cs_request, control, sizeof control);
    ssize_t n = cs_receive_message(sock, &msg);
    if (n == 0) return 0;  /* the server is gone, or let us go */
    if (n < 0) return -1;
    /* At most one descriptor comes with a request: a cgroup directory (any other is closed). */
    int cgroup_fd = -1;
    (void)cs_message_descriptors(&msg, &cgroup_fd, 1);
    cs_serve_request(sock, &msg, (size_t)n, cgroup_fd);
    if (cgroup_fd >= 0) close(cgroup_fd);
    return 1;
}
