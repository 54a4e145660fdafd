// Build and run: cc -O2 -o /tmp/handoff scripts/bench-listener-handoff.c && /tmp/handoff 1000
// The seccomp listener from the program to the supervisor: SCM_RIGHTS over a socket (what
// Confine does, per hop) against pidfd_getfd from the supervisor. Per handoff, median of N.
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <stddef.h>

static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { long long x = *(long long *)a, y = *(long long *)b; return x < y ? -1 : x > y; }

static int load(void) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 165 /* mount */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {4, f};
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &p);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 500;
    long long *pass = calloc(n, sizeof *pass), *getfd = calloc(n, sizeof *getfd);
    for (int i = 0; i < n; i++) {
        for (int mode = 0; mode < 2; mode++) {
            int sv[2];
            socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
            pid_t pid = fork();
            if (pid == 0) {
                close(sv[0]);
                int fd = load();
                long long t0 = now();
                if (mode == 0) {
                    char c[CMSG_SPACE(sizeof(int))]; memset(c, 0, sizeof c);
                    struct iovec iov = {"L", 1};
                    struct msghdr m = {0}; m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = c; m.msg_controllen = sizeof c;
                    struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm->cmsg_level = SOL_SOCKET; cm->cmsg_type = SCM_RIGHTS;
                    cm->cmsg_len = CMSG_LEN(sizeof(int)); memcpy(CMSG_DATA(cm), &fd, sizeof fd);
                    sendmsg(sv[1], &m, 0);
                    close(fd);
                } else {
                    write(sv[1], &fd, sizeof fd);
                }
                long long spent = now() - t0;
                write(sv[1], &spent, sizeof spent);
                char go; read(sv[1], &go, 1);
                _exit(0);
            }
            close(sv[1]);
            int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
            long long t0, parent;
            int got = -1;
            if (mode == 0) {
                char b, c[CMSG_SPACE(sizeof(int))];
                struct iovec iov = {&b, 1};
                struct msghdr m = {0}; m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = c; m.msg_controllen = sizeof c;
                // wait until it is there, then time the receive alone
                struct timespec ts = {0, 0}; (void)ts;
                char peek; recv(sv[0], &peek, 1, MSG_PEEK);
                t0 = now();
                recvmsg(sv[0], &m, MSG_CMSG_CLOEXEC);
                memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
                parent = now() - t0;
            } else {
                int number; read(sv[0], &number, sizeof number);
                t0 = now();
                got = (int)syscall(SYS_pidfd_getfd, pidfd, number, 0);
                parent = now() - t0;
            }
            long long child; read(sv[0], &child, sizeof child);
            if (got < 0) { perror("handoff"); return 1; }
            close(got);
            write(sv[0], "g", 1);
            waitpid(pid, NULL, 0);
            close(pidfd); close(sv[0]);
            (mode == 0 ? pass : getfd)[i] = parent + child;
        }
    }
    qsort(pass, n, sizeof *pass, cmp); qsort(getfd, n, sizeof *getfd, cmp);
    printf("listener handoff, median of %d (child's send + supervisor's receive):\n", n);
    printf("  SCM_RIGHTS (sendmsg/recvmsg, one hop): %.2f us\n", pass[n / 2] / 1000.0);
    printf("  pidfd_getfd (write the number; getfd): %.2f us (+ pidfd_open of the program, not counted)\n", getfd[n / 2] / 1000.0);
    return 0;
}
