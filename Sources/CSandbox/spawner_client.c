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
    *sent = 0;
    char out_control[CMSG_SPACE(sizeof(int))];
    struct iovec out_iov;
    struct msghdr out;
    cs_message_to_send(&out, &out_iov, request, len, out_control, &cgroup_fd, cgroup_fd >= 0 ? 1 : 0);
    ssize_t n_sent = cs_send_message(sock, &out);
    if (n_sent < 0) return -errno;
    if ((size_t)n_sent != len) return -EMSGSIZE;
    *sent = 1;
    for (;;) {
        char control[CMSG_SPACE(sizeof(int) * CS_SPAWN_FD_COUNT)];
        struct iovec iov;
        struct msghdr msg;
        cs_message_to_receive(&msg, &iov, reply, sizeof *reply, control, sizeof control);
        ssize_t r = cs_receive_message(sock, &msg);
        if (r < 0) return -errno;
        if (r == 0) return -ECONNRESET;
        int got[CS_SPAWN_FD_COUNT];
        int n_came = cs_message_descriptors(&msg, got, CS_SPAWN_FD_COUNT);
        int n_got = n_came < CS_SPAWN_FD_COUNT ? n_came : CS_SPAWN_FD_COUNT;
        int valid = (size_t)r == sizeof *reply && reply->magic == CS_SPAWNER_MAGIC && !(msg.msg_flags & MSG_CTRUNC);
        int complete = reply->pid > 0 ? n_came == CS_SPAWN_FD_COUNT : n_came == 0;
        if (!valid || !complete || reply->id != id) {
            for (int i = 0; i < n_got; i++) close(got[i]);
            if (!valid || !complete) return -EPROTO;
            continue; /* the late answer to an earlier request that timed out */
        }
        memcpy(fds, got, sizeof(int) * (size_t)n_got);
        return 0;
    }
}
