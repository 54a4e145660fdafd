/*
 * Helpers the server calls (parent side): the bare baseline, sending a run to init, the words
 * of stages, descriptors, probes. Nothing here runs inside a sandbox.
 */
#define _GNU_SOURCE 1
#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CS_STACK_SIZE (256 * 1024)

/* The bare baseline's child: stdio, then exec (it shares the parent's memory until then). */
struct cs_bare_args {
    const char *const *paths;
    int n_paths;
    char *const *argv;
    char *const *envp;
    int in, out, err;
};

static int cs_bare_main(void *arg) {
    const struct cs_bare_args *a = arg;
    if (dup2(a->in, 0) < 0 || dup2(a->out, 1) < 0 || dup2(a->err, 2) < 0) _exit(127);
    for (int i = 0; i < a->n_paths; i++) execve(a->paths[i], a->argv, a->envp);
    _exit(127);
}

pid_t cs_spawn_bare(const char *const *exec_paths, int n_exec_paths, char *const *argv,
                    char *const *envp, int in, int out, int err) {
    struct cs_bare_args a = {exec_paths, n_exec_paths, argv, envp, in, out, err};
    void *stack = mmap(NULL, CS_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -errno;
    pid_t pid = clone(cs_bare_main, (char *)stack + CS_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    int e = errno;
    munmap(stack, CS_STACK_SIZE); /* vfork: the child has exec'd or exited */
    return pid < 0 ? -e : pid;
}

int cs_send_run(int sock, const cs_run_header *header, const int *fds, int n_fds,
                const char *strings, size_t strings_len) {
    char control[CMSG_SPACE(sizeof(int) * CS_MAX_FILES)];
    if (n_fds > CS_MAX_FILES) return -EINVAL;
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_send(&msg, &iov, header, sizeof *header, control, fds, n_fds);
    ssize_t sent = cs_send_message(sock, &msg);
    if (sent < 0) return -errno;
    const char *p = (const char *)header + sent;
    size_t left = sizeof *header - (size_t)sent;
    for (int part = 0; part < 2; part++) {
        while (left > 0) {
            ssize_t n = send(sock, p, left, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return -errno;
            p += n;
            left -= (size_t)n;
        }
        p = strings;
        left = strings_len;
    }
    return 0;
}

int cs_send_go(int sock, const int *join_fds, int n) {
    if (n < 0 || n > CS_MAX_JOIN_FILES) return -EINVAL;
    char control[CMSG_SPACE(sizeof(int) * CS_MAX_JOIN_FILES)];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_send(&msg, &iov, "g", 1, control, join_fds, n);
    ssize_t sent = cs_send_message(sock, &msg);
    if (sent < 0) return -errno;
    return sent == 1 ? 0 : -EPROTO;
}

const char *cs_stage_name(int stage) {
    switch (stage) {
    case CS_STAGE_CLONE: return "clone";
    case CS_STAGE_SYNC: return "wait for parent";
    case CS_STAGE_RECEIVE: return "receive the run";
    case CS_STAGE_PLACE_FILE: return "place file";
    case CS_STAGE_SETGROUPS: return "setgroups";
    case CS_STAGE_SETRESGID: return "setresgid";
    case CS_STAGE_SETRESUID: return "setresuid";
    case CS_STAGE_UNSHARE_CGROUP: return "unshare cgroup namespace";
    case CS_STAGE_HOSTNAME: return "sethostname";
    case CS_STAGE_MOUNT_PRIVATE: return "make mounts private";
    case CS_STAGE_MOUNT_BASE: return "mount scratch tmpfs";
    case CS_STAGE_PIVOT_BASE: return "pivot_root to scratch";
    case CS_STAGE_MOUNT_ROOT: return "mount root tmpfs";
    case CS_STAGE_MOUNT: return "mount";
    case CS_STAGE_REMOUNT_ROOT: return "remount root read-only";
    case CS_STAGE_PIVOT_ROOT: return "pivot_root";
    case CS_STAGE_WORKDIR: return "chdir to workdir";
    case CS_STAGE_LOOPBACK: return "bring loopback up";
    case CS_STAGE_PDEATHSIG: return "set parent-death signal";
    case CS_STAGE_FDS: return "arrange descriptors";
    case CS_STAGE_FORK_PROGRAM: return "fork program";
    case CS_STAGE_RLIMIT: return "setrlimit";
    case CS_STAGE_CAPABILITIES: return "drop capabilities";
    case CS_STAGE_NO_NEW_PRIVS: return "set no_new_privs";
    case CS_STAGE_SECCOMP: return "load seccomp filter";
    case CS_STAGE_EXECVE: return "execve";
    case CS_STAGE_USER_LIMIT: return "set kernel object ceiling";
    case CS_STAGE_SETSID: return "setsid";
    case CS_STAGE_RUN_AREA: return "map the run's shared memory";
    case CS_STAGE_START_PROGRAM: return "start the program";
    case CS_STAGE_SECCOMP_LISTENER: return "hand the seccomp listener to the server";
    case CS_STAGE_CGROUP_JOIN: return "move into the run's cgroup";
    case CS_STAGE_SPAWNER_REQUEST: return "spawner: read the request";
    case CS_STAGE_SPAWNER_PIPES: return "spawner: make pipes";
    case CS_STAGE_SPAWNER_PRIVILEGES: return "spawner: drop privileges";
    case CS_STAGE_SPAWNER_RLIMITS: return "spawner: raise its per-user ceilings";
    case CS_STAGE_SPAWNER_PROBE: return "spawner: create namespaces";
    default: return "setup";
    }
}

int cs_pidfd_open(pid_t pid) {
    long r = syscall(SYS_pidfd_open, pid, 0);
    return r < 0 ? -errno : (int)r;
}

int cs_pidfd_send_signal(int pidfd, int sig) {
    long r = syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
    return r < 0 ? -errno : 0;
}

int cs_sealed_memfd(const char *name, const void *bytes, size_t len, int executable) {
    int fd = (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -errno;
    const char *p = bytes;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return -e;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, executable ? 0555 : 0444) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cs_errno(void) { return errno; }

int cs_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int cs_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno; }

int cs_socketpair_cloexec(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -errno;
}

int cs_seqpacket_pair(int fds[2]) {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : -errno;
}

const char *cs_user_limit_name(int limit) {
    if (limit < 0 || limit >= CS_USER_LIMIT_COUNT) return "a kernel object ceiling";
    return cs_user_limit_files[limit];
}

int cs_probe_user_namespace(void) {
    pid_t child = fork();
    if (child < 0) return errno;
    if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0x7f));
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return errno;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return EPROTO;
}
