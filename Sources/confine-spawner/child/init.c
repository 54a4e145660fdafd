/* init: pid 1 of the run's pid namespace, a clone of the small spawner (see child.h). */
#define _GNU_SOURCE 1
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int cs_receive_run(int sock);
int cs_place_file(int i);
int cs_write_user_limits(const uint64_t values[CS_USER_LIMIT_COUNT], int *index);
extern const uint64_t cs_no_namespaces[CS_USER_LIMIT_COUNT];
void cs_open_run_limits(void);

/* Maps stdin/stdout/stderr to 0/1/2, the report pipe to 3 and the control socket to 4 (both
 * close-on-exec), and closes everything else at once: a sandbox waiting for its run holds
 * nothing of the spawner's (its socket to the server, other launches' descriptors). */
static int cs_compact_fds(const cs_config *c) {
    int from[5] = {c->stdin_fd, c->stdout_fd, c->stderr_fd, c->report_fd, c->control_fd};
    int tmp[5];
    for (int i = 0; i < 5; i++) {
        if ((tmp[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 10)) < 0) return -1;
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(tmp[i], i) < 0) return -1;
    }
    if (dup3(tmp[3], CS_FD_REPORT, O_CLOEXEC) < 0 || dup3(tmp[4], CS_FD_CONTROL, O_CLOEXEC) < 0) return -1;
    return cs_close_from(5);
}

int cs_forward_listener(int go_end, int control) {
    char byte = 0;
    int fd = -1;
    char buf[CMSG_SPACE(sizeof(int))];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_receive(&msg, &iov, &byte, 1, buf, sizeof buf);
    ssize_t r = cs_receive_message(go_end, &msg);
    int n = r > 0 ? cs_message_descriptors(&msg, &fd, 1) : 0;
    if (r == 0) return 0; /* the program ended before loading its filter (and said why) */
    if (r != 1 || byte != 'L' || n != 1) {
        if (n >= 1) close(fd);
        errno = r < 0 ? errno : EPROTO;
        return -1;
    }
    uint32_t magic = CS_LISTENER_MAGIC;
    char out[CMSG_SPACE(sizeof(int))];
    cs_message_to_send(&msg, &iov, &magic, sizeof magic, out, &fd, 1);
    r = cs_send_message(control, &msg);
    int e = errno;
    close(fd);
    if (r == (ssize_t)sizeof magic) return 0;
    errno = r < 0 ? e : EPROTO;
    return -1;
}

/* The server's word to go (the ids are mapped), with the cgroup files init moves itself in
 * through, if any (cgroup v1's `tasks`): "0" written to one moves the writing thread alone, so
 * the kernel takes no lock over every process of the host — a move by pid does, and waits for
 * an RCU grace period (about 6 ms) whenever no other move came just before. The files were
 * opened by the server: the kernel checks the opener's rights, not init's. None is kept. */
static void cs_receive_go(int ctl, int rep) {
    char go = 0;
    int fds[CS_MAX_JOIN_FILES];
    char control[CMSG_SPACE(sizeof(int) * CS_MAX_JOIN_FILES)];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_receive(&msg, &iov, &go, 1, control, sizeof control);
    ssize_t r = cs_receive_message(ctl, &msg);
    if (r != 1) {
        if (r == 0) errno = EPIPE;
        cs_fail(rep, CS_STAGE_SYNC, 0);
    }
    int n = cs_message_descriptors(&msg, fds, CS_MAX_JOIN_FILES);
    if (n > CS_MAX_JOIN_FILES || (msg.msg_flags & MSG_CTRUNC)) {
        for (int i = 0; i < n && i < CS_MAX_JOIN_FILES; i++) close(fds[i]);
        errno = EPROTO;
        cs_fail(rep, CS_STAGE_CGROUP_JOIN, 0);
    }
    for (int i = 0; i < n; i++) {
        ssize_t w;
        do {
            w = pwrite(fds[i], "0", 1, 0);
        } while (w < 0 && errno == EINTR);
        if (w != 1) {
            int e = w < 0 ? errno : EIO;
            for (int k = i; k < n; k++) close(fds[k]);
            errno = e;
            cs_fail(rep, CS_STAGE_CGROUP_JOIN, i);
        }
        close(fds[i]);
    }
}

int cs_init_main(void *arg) {
    const cs_config *c = (const cs_config *)arg;
    int rep = CS_FD_REPORT, ctl = CS_FD_CONTROL;
    /* The spawner blocked every signal around clone(): defaults first, then the mask cleared. */
    cs_reset_signals();
    if (c->pdeathsig) (void)prctl(PR_SET_PDEATHSIG, c->pdeathsig, 0, 0, 0);
    if (cs_compact_fds(c) != 0) cs_fail(c->report_fd, CS_STAGE_FDS, 0);

    /* Wait for the server: id maps written; in the cgroup, or the files to move in with. */
    cs_receive_go(ctl, rep);

    /* glibc's set*id() may wait for threads that do not exist here: raw system calls. */
    if (syscall(SYS_setgroups, 0, NULL) != 0) cs_fail(rep, CS_STAGE_SETGROUPS, 0);
    if (syscall(SYS_setresgid, 0, 0, 0) != 0) cs_fail(rep, CS_STAGE_SETRESGID, 0);
    if (syscall(SYS_setresuid, 0, 0, 0) != 0) cs_fail(rep, CS_STAGE_SETRESUID, 0);
    /* Changing ids cleared the death signal: set it again, then make sure the server is
     * still there (it holds the control socket open for the whole run). */
    if (c->pdeathsig) {
        if (prctl(PR_SET_PDEATHSIG, c->pdeathsig, 0, 0, 0) != 0) cs_fail(rep, CS_STAGE_PDEATHSIG, 0);
        struct pollfd p = {ctl, 0, 0};
        if (poll(&p, 1, 0) > 0 && (p.revents & POLLHUP)) _exit(127);
    }
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    if (c->unshare_cgroup && unshare(CLONE_NEWCGROUP) != 0) cs_fail(rep, CS_STAGE_UNSHARE_CGROUP, 0);
    if (c->hostname && (c->clone_flags & CLONE_NEWUTS) &&
        sethostname(c->hostname, strlen(c->hostname)) != 0)
        cs_fail(rep, CS_STAGE_HOSTNAME, 0);
    if (c->loopback_up && cs_loopback_up() != 0) cs_fail(rep, CS_STAGE_LOOPBACK, 0);
    cs_prepare_root(c);
    int limit = 0;
    if (cs_write_user_limits(cs_no_namespaces, &limit) != 0) cs_fail(rep, CS_STAGE_USER_LIMIT, limit);

    /* The program's process, made now and waiting for its run: it arms itself meanwhile. */
    if (cs_map_run_area() != 0) cs_fail(rep, CS_STAGE_RUN_AREA, 0);
    int start[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, start) != 0) cs_fail(rep, CS_STAGE_FORK_PROGRAM, 0);
    pid_t program = cs_prepare_program(c, start[1], start[0]);
    if (program < 0) cs_fail(rep, CS_STAGE_FORK_PROGRAM, 0);
    /* Opened now, after the program's process was made: it never holds them. */
    cs_open_run_limits();
    /* Only the program (and what it starts) holds the stdio pipes now. */
    close(start[1]);
    close(0);
    close(1);
    close(2);
    /* A filter loaded early with a listener: the listener goes to the server now. A server
     * that has closed the control socket discards this sandbox. */
    if (c->seccomp_notify && c->seccomp_early && cs_forward_listener(start[0], ctl) != 0) {
        if (errno == EPIPE || errno == ECONNRESET) _exit(0);
        cs_fail(rep, CS_STAGE_SECCOMP_LISTENER, 0);
    }

    /* Ready: everything above may have happened long before the run is known. */
    int received = cs_receive_run(ctl);
    if (received == 1) _exit(0);
    if (received != 0) cs_fail(rep, CS_STAGE_RECEIVE, 0);
    for (uint32_t i = 0; i < cs_run->header.n_files; i++) {
        if (cs_place_file((int)i) != 0) cs_fail(rep, CS_STAGE_PLACE_FILE, (int)i);
    }
    cs_finish_root(c);
    if (cs_write_user_limits(cs_run->header.user_limits, &limit) != 0) cs_fail(rep, CS_STAGE_USER_LIMIT, limit);
    /* A program that has already failed (and reported why) is reaped below. */
    if (send(start[0], "g", 1, MSG_NOSIGNAL) != 1 && errno != EPIPE && errno != ECONNRESET)
        cs_fail(rep, CS_STAGE_START_PROGRAM, 0);
    /* A filter loaded at the word to go: its listener follows the same way. */
    if (c->seccomp_notify && !c->seccomp_early && cs_forward_listener(start[0], ctl) != 0)
        cs_fail(rep, CS_STAGE_SECCOMP_LISTENER, 0);
    close(ctl);
    close(start[0]);

    for (;;) {
        int status;
        struct rusage ru;
        pid_t pid = wait4(-1, &status, __WALL, &ru);
        if (pid < 0) {
            if (errno == EINTR) continue;
            _exit(126);
        }
        if (pid == program) {
            cs_report r;
            memset(&r, 0, sizeof r);
            r.kind = CS_REPORT_EXITED;
            r.status = status;
            r.utime_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
            r.stime_us = (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
            r.maxrss_kb = ru.ru_maxrss;
            (void)!write(rep, &r, sizeof r);
            _exit(0);
        }
    }
}
