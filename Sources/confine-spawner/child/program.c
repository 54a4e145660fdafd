/* The program (pid 2): made by init while the sandbox waits for its run, it arms itself then
 * waits for init's word; the run it reads from the area it shares with init (see child.h).
 *
 * It shares init's memory until its execve (CLONE_VM, where the raw system calls below exist):
 * no copy of init's page tables to make, no copy-on-write faults in either afterwards, and
 * nothing to tear down at execve — a program starts the way posix_spawn starts one. Both run
 * at once, so until execve this process writes nothing of init's: its stack is its own
 * (cs_program_stack, which init never uses), and it makes every system call raw (cs_sys),
 * never through libc, whose wrappers write errno — a variable the two would share. */
#define _GNU_SOURCE 1
#include "child.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A system call that returns -errno on failure and writes nothing else (errno is init's). */
#if defined(__x86_64__)
#define CS_PROGRAM_SHARES_MEMORY CLONE_VM
static long cs_sys(long n, long a, long b, long c, long d, long e) {
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define CS_PROGRAM_SHARES_MEMORY CLONE_VM
static long cs_sys(long n, long a, long b, long c, long d, long e) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}
#else
/* Elsewhere: libc's syscall(), and a copy of init's memory (no CLONE_VM), as errno is written. */
#define CS_PROGRAM_SHARES_MEMORY 0
static long cs_sys(long n, long a, long b, long c, long d, long e) {
    long r = syscall(n, a, b, c, d, e);
    return r < 0 ? -errno : r;
}
#endif
#define CS_SYS(n, a, b, c, d, e) cs_sys((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))

__attribute__((noreturn)) static void cs_program_exit(int status) {
    for (;;) (void)CS_SYS(SYS_exit_group, status, 0, 0, 0, 0);
}

/* Reports the failed stage (with -ret as its errno) to init's report pipe and ends. */
__attribute__((noreturn)) static void cs_program_fail(int stage, int index, long ret) {
    cs_report r = cs_failure_record(stage, index, (int)-ret);
    (void)CS_SYS(SYS_write, CS_FD_REPORT, &r, sizeof r, 0, 0);
    cs_program_exit(127);
}

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* 0, or -errno. */
static long cs_drop_capabilities(void) {
    long r = CS_SYS(SYS_prctl, PR_SET_SECUREBITS,
                    SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                        SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                    0, 0, 0);
    if (r < 0) return r;
    (void)CS_SYS(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int cap = 0; cap <= 63; cap++) {
        r = CS_SYS(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0);
        if (r < 0 && r != -EINVAL) return r;
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return CS_SYS(SYS_capset, &hdr, data, 0, 0, 0);
}

__attribute__((noreturn)) static void cs_exec(char **paths, int n_paths, char **argv, char **envp) {
    long saved = -ENOENT;
    for (int i = 0; i < n_paths; i++) {
        long r = CS_SYS(SYS_execve, paths[i], argv, envp, 0, 0);
        if (r == -EACCES) saved = r;
        else if (r != -ENOENT && r != -ENOTDIR) {
            saved = r;
            break;
        }
    }
    cs_program_fail(CS_STAGE_EXECVE, 0, saved);
}

/* Loads the policy's seccomp filter, if it has one. With a listener (its refusals are the
 * server's to answer), the listener goes to init at once, on the go socket, and this process
 * keeps no copy: only the server can answer its calls. Until the server has it, it is alive
 * in flight, so a refused call waits for its answer (a call with no listener left would get
 * ENOSYS). The filter permits the sendmsg and close this takes (SeccompProgram.notifies). */
static void cs_load_filter(const cs_config *c, int go_fd) {
    if (!c->seccomp_filter) return;
    struct sock_fprog prog = {c->seccomp_len, (struct sock_filter *)c->seccomp_filter};
    unsigned long flags = c->seccomp_notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
    long listener = CS_SYS(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog, 0, 0);
    if (listener < 0) cs_program_fail(CS_STAGE_SECCOMP, 0, listener);
    if (!c->seccomp_notify) return;
    int fd = (int)listener;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_send(&msg, &iov, "L", 1, control, &fd, 1);
    long r;
    do {
        r = CS_SYS(SYS_sendmsg, go_fd, &msg, MSG_NOSIGNAL, 0, 0);
    } while (r == -EINTR);
    if (r != 1) cs_program_fail(CS_STAGE_SECCOMP_LISTENER, 0, r < 0 ? r : -EPROTO);
    (void)CS_SYS(SYS_close, fd, 0, 0, 0, 0);
}

struct cs_program_args {
    const cs_config *config;
    int go_fd;
    int init_end;
};

static int cs_program_main(void *arg) {
    const struct cs_program_args *a = arg;
    const cs_config *c = a->config;
    /* Init's control socket and its end of the go socket are init's alone (holding the
     * latter, the program would never see init's end close). */
    (void)CS_SYS(SYS_close, CS_FD_CONTROL, 0, 0, 0, 0);
    (void)CS_SYS(SYS_close, a->init_end, 0, 0, 0, 0);
    /* A session of its own: a terminal's Ctrl-C (sent to the terminal's foreground process
     * group) reaches Confine, which cancels the run; never the program directly. */
    long r = CS_SYS(SYS_setsid, 0, 0, 0, 0, 0);
    if (r < 0) cs_program_fail(CS_STAGE_SETSID, 0, r);
    if (c->workdir && (r = CS_SYS(SYS_chdir, c->workdir, 0, 0, 0, 0)) < 0) cs_program_fail(CS_STAGE_WORKDIR, 0, r);
    if ((r = cs_drop_capabilities()) < 0) cs_program_fail(CS_STAGE_CAPABILITIES, 0, r);
    if ((r = CS_SYS(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) < 0) cs_program_fail(CS_STAGE_NO_NEW_PRIVS, 0, r);
    /* Loading a filter costs the kernel a compilation (about 150 us for the default policy):
     * done now, off the run's path, when the filter permits every call made below. */
    if (c->seccomp_early) cs_load_filter(c, a->go_fd);

    /* Init's word: the run is in the shared area, its files placed, the root read-only. Its
     * end closed without a word: the sandbox is being discarded. */
    char go;
    long n;
    do {
        n = CS_SYS(SYS_read, a->go_fd, &go, 1, 0, 0);
    } while (n == -EINTR);
    if (n != 1) cs_program_exit(0);
    const cs_run_header *h = &cs_run->header;
    for (uint32_t i = 0; i < h->n_rlimits; i++) {
        struct rlimit rl = {(rlim_t)h->rlimits[i].soft, (rlim_t)h->rlimits[i].hard};
        if ((r = CS_SYS(SYS_prlimit64, 0, h->rlimits[i].resource, &rl, NULL, 0)) < 0)
            cs_program_fail(CS_STAGE_RLIMIT, (int)i, r);
    }
    if (!c->seccomp_early) cs_load_filter(c, a->go_fd);
    cs_exec(cs_run->exec_paths, (int)h->n_exec_paths, cs_run->argv, cs_run->envp);
}

static char cs_program_stack[64 * 1024] __attribute__((aligned(16)));
static struct cs_program_args cs_program_args;

/* In init's memory until its execve (see the top of this file), with descriptors of its own:
 * 0, 1, 2, the report pipe (3) and its end of the go socket (close-on-exec). */
pid_t cs_prepare_program(const cs_config *c, int go_fd, int init_end) {
    cs_program_args.config = c;
    cs_program_args.go_fd = go_fd;
    cs_program_args.init_end = init_end;
    return clone(cs_program_main, cs_program_stack + sizeof cs_program_stack, CS_PROGRAM_SHARES_MEMORY | SIGCHLD,
                 &cs_program_args);
}
