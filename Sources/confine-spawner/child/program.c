/* The program (pid 2): vforked by init, it shares init's memory until execve (see child.h). */
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
#include <sys/syscall.h>
#include <unistd.h>

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

static int cs_drop_capabilities(void) {
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                                     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE |
                                     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
              0, 0, 0) != 0)
        return -1;
    (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    }
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &hdr, data);
}

__attribute__((noreturn)) static void cs_exec(char **paths, int n_paths, char **argv, char **envp) {
    int saved = ENOENT;
    for (int i = 0; i < n_paths; i++) {
        execve(paths[i], argv, envp);
        if (errno == EACCES) saved = EACCES;
        else if (errno != ENOENT && errno != ENOTDIR) {
            saved = errno;
            break;
        }
    }
    errno = saved;
    cs_fail(CS_FD_REPORT, CS_STAGE_EXECVE, 0);
}

static int cs_program_main(void *arg) {
    const cs_config *c = (const cs_config *)arg;
    /* A session of its own: a terminal's Ctrl-C (sent to the terminal's foreground process
     * group) reaches Confine, which cancels the run; never the program directly. */
    if (setsid() < 0) cs_fail(CS_FD_REPORT, CS_STAGE_SETSID, 0);
    for (uint32_t i = 0; i < cs_run.n_rlimits; i++) {
        struct rlimit rl = {(rlim_t)cs_run.rlimits[i].soft, (rlim_t)cs_run.rlimits[i].hard};
        if (setrlimit(cs_run.rlimits[i].resource, &rl) != 0) cs_fail(CS_FD_REPORT, CS_STAGE_RLIMIT, (int)i);
    }
    if (cs_drop_capabilities() != 0) cs_fail(CS_FD_REPORT, CS_STAGE_CAPABILITIES, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) cs_fail(CS_FD_REPORT, CS_STAGE_NO_NEW_PRIVS, 0);
    if (c->seccomp_filter) {
        struct sock_fprog prog = {c->seccomp_len, (struct sock_filter *)c->seccomp_filter};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) cs_fail(CS_FD_REPORT, CS_STAGE_SECCOMP, 0);
    }
    cs_exec(cs_exec_paths, (int)cs_run.n_exec_paths, cs_argv, cs_envp);
}

static char cs_program_stack[64 * 1024] __attribute__((aligned(16)));

/* The program shares init's memory until it execs; it gets 0, 1, 2 and (until exec) 3. */
pid_t cs_start_program(const cs_config *c) {
    return clone(cs_program_main, cs_program_stack + sizeof cs_program_stack,
                 CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)c);
}
