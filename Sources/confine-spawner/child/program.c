/* The program (pid 2): made by init while the sandbox waits for its run, it arms itself then
 * waits for init's word; the run it reads from the area it shares with init (see child.h). */
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

/* Loads the policy's seccomp filter, if it has one. With a listener (its refusals are the
 * server's to answer), the listener goes to init at once, on the go socket, and this process
 * keeps no copy: only the server can answer its calls. Until the server has it, it is alive
 * in flight, so a refused call waits for its answer (a call with no listener left would get
 * ENOSYS). The filter permits the sendmsg and close this takes (SeccompProgram.notifies). */
static void cs_load_filter(const cs_config *c, int go_fd) {
    if (!c->seccomp_filter) return;
    struct sock_fprog prog = {c->seccomp_len, (struct sock_filter *)c->seccomp_filter};
    unsigned long flags = c->seccomp_notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
    long listener = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (listener < 0) cs_fail(CS_FD_REPORT, CS_STAGE_SECCOMP, 0);
    if (!c->seccomp_notify) return;
    int fd = (int)listener;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_send(&msg, &iov, "L", 1, control, &fd, 1);
    ssize_t r;
    do {
        r = sendmsg(go_fd, &msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r != 1) cs_fail(CS_FD_REPORT, CS_STAGE_SECCOMP_LISTENER, 0);
    close(fd);
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
    close(CS_FD_CONTROL);
    close(a->init_end);
    /* A session of its own: a terminal's Ctrl-C (sent to the terminal's foreground process
     * group) reaches Confine, which cancels the run; never the program directly. */
    if (setsid() < 0) cs_fail(CS_FD_REPORT, CS_STAGE_SETSID, 0);
    if (c->workdir && chdir(c->workdir) != 0) cs_fail(CS_FD_REPORT, CS_STAGE_WORKDIR, 0);
    if (cs_drop_capabilities() != 0) cs_fail(CS_FD_REPORT, CS_STAGE_CAPABILITIES, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) cs_fail(CS_FD_REPORT, CS_STAGE_NO_NEW_PRIVS, 0);
    /* Loading a filter costs the kernel a compilation (about 150 us for the default policy):
     * done now, off the run's path, when the filter permits every call made below. */
    if (c->seccomp_early) cs_load_filter(c, a->go_fd);

    /* Init's word: the run is in the shared area, its files placed, the root read-only. Its
     * end closed without a word: the sandbox is being discarded. */
    char go;
    ssize_t n;
    do {
        n = read(a->go_fd, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(0);
    const cs_run_header *h = &cs_run->header;
    for (uint32_t i = 0; i < h->n_rlimits; i++) {
        struct rlimit rl = {(rlim_t)h->rlimits[i].soft, (rlim_t)h->rlimits[i].hard};
        if (setrlimit(h->rlimits[i].resource, &rl) != 0) cs_fail(CS_FD_REPORT, CS_STAGE_RLIMIT, (int)i);
    }
    if (!c->seccomp_early) cs_load_filter(c, a->go_fd);
    cs_exec(cs_run->exec_paths, (int)h->n_exec_paths, cs_run->argv, cs_run->envp);
}

static char cs_program_stack[64 * 1024] __attribute__((aligned(16)));
static struct cs_program_args cs_program_args;

/* A copy of init (its memory is small: the spawner's static data), sharing the run area. It
 * gets 0, 1, 2, the report pipe (3) and its end of the go socket (close-on-exec). */
pid_t cs_prepare_program(const cs_config *c, int go_fd, int init_end) {
    cs_program_args.config = c;
    cs_program_args.go_fd = go_fd;
    cs_program_args.init_end = init_end;
    return clone(cs_program_main, cs_program_stack + sizeof cs_program_stack, SIGCHLD, &cs_program_args);
}
