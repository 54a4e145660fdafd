/*
 * The server's side of the spawner: starting it (by exec, never as a fork of the grown server)
 * and one request/reply exchange over its SOCK_SEQPACKET socket.
 */
#define _GNU_SOURCE 1
#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CS_STACK_SIZE (64 * 1024)

struct cs_start_args {
    const char *path;
    char *const *argv;
    int sock;
    sigset_t *mask;
};

/* The vfork child: it shares the server's memory until execve, so it only resets signals,
 * places the socket at descriptor 3 and execs (an empty environment: nothing of the server's). */
static int cs_start_main(void *arg) {
    const struct cs_start_args *a = arg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        (void)sigaction(sig, &sa, NULL);
    }
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (a->sock == CS_SPAWNER_FD) {
        int flags = fcntl(a->sock, F_GETFD);
        if (flags < 0 || fcntl(a->sock, F_SETFD, flags & ~FD_CLOEXEC) != 0) _exit(127);
    } else if (dup2(a->sock, CS_SPAWNER_FD) < 0) {
        _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    char *const envp[] = {NULL};
    execve(a->path, a->argv, envp);
    _exit(127);
}

pid_t cs_start_spawner(const char *path, char *const *argv, int sock) {
    sigset_t all, old;
    struct cs_start_args a = {path, argv, sock, NULL};
    void *stack = mmap(NULL, CS_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -errno;
    /* As posix_spawn does: no handler of ours may run in the child while it shares our memory. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t pid = clone(cs_start_main, (char *)stack + CS_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CS_STACK_SIZE); /* vfork: the child has exec'd or exited */
    return pid < 0 ? -e : pid;
}

int cs_read_spawner_hello(int sock, int timeout_ms, cs_spawner_hello *hello) {
    struct pollfd p = {sock, POLLIN, 0};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    if (n == 0) return -ETIMEDOUT;
    ssize_t r;
    do {
        r = recv(sock, hello, sizeof *hello, 0);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (r == 0) return -EPIPE;
    if ((size_t)r != sizeof *hello || hello->magic != CS_SPAWNER_MAGIC) return -EPROTO;
    if (hello->version != CS_SPAWNER_VERSION) return -EPROTONOSUPPORT;
    return 0;
}

int cs_spawner_exchange(int sock, const void *request, size_t len, int cgroup_fd, uint64_t id,
                        cs_spawn_reply *reply, int fds[CS_SPAWN_FD_COUNT], int *sent) {
    ssize_t n_sent;
    *sent = 0;
    char out_control[CMSG_SPACE(sizeof(int))];
    struct iovec out_iov = {(void *)request, len};
    struct msghdr out;
    memset(&out, 0, sizeof out);
    out.msg_iov = &out_iov;
    out.msg_iovlen = 1;
    if (cgroup_fd >= 0) {
        memset(out_control, 0, sizeof out_control);
        out.msg_control = out_control;
        out.msg_controllen = sizeof out_control;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&out);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &cgroup_fd, sizeof(int));
    }
    do {
        n_sent = sendmsg(sock, &out, MSG_NOSIGNAL);
    } while (n_sent < 0 && errno == EINTR);
    if (n_sent < 0) return -errno;
    if ((size_t)n_sent != len) return -EMSGSIZE;
    *sent = 1;
    for (;;) {
        char control[CMSG_SPACE(sizeof(int) * CS_SPAWN_FD_COUNT)];
        struct iovec iov = {reply, sizeof *reply};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t r;
        do {
            r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        } while (r < 0 && errno == EINTR);
        if (r < 0) return -errno;
        if (r == 0) return -ECONNRESET;
        int got[CS_SPAWN_FD_COUNT], n_got = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int i = 0; i < n; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(cm) + sizeof(int) * (size_t)i, sizeof fd);
                    if (n_got < CS_SPAWN_FD_COUNT) got[n_got++] = fd;
                    else close(fd);
                }
            }
        }
        int valid = (size_t)r == sizeof *reply && reply->magic == CS_SPAWNER_MAGIC && !(msg.msg_flags & MSG_CTRUNC);
        int complete = reply->pid > 0 ? n_got == CS_SPAWN_FD_COUNT : n_got == 0;
        if (!valid || !complete || reply->id != id) {
            for (int i = 0; i < n_got; i++) close(got[i]);
            if (!valid || !complete) return -EPROTO;
            continue; /* the late answer to an earlier request that timed out */
        }
        memcpy(fds, got, sizeof(int) * (size_t)n_got);
        return 0;
    }
}
