/*
 * The child side of a sandbox launch. Everything after clone() in this file is
 * async-signal-safe: system calls, stack buffers and the configuration the parent prepared.
 */
#define _GNU_SOURCE 1
#include "csandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <termios.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
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

#define CS_PATH_MAX 4096
#define CS_STACK_SIZE (256 * 1024)

/* ---------------------------------------------------------------- child helpers */

static void cs_report_failure(int fd, int stage, int index, int err) {
    cs_report r;
    memset(&r, 0, sizeof r);
    r.kind = CS_REPORT_SETUP_FAILED;
    r.stage = stage;
    r.index = index;
    r.err = err;
    (void)!write(fd, &r, sizeof r);
}

__attribute__((noreturn)) static void cs_fail(int fd, int stage, int index) {
    cs_report_failure(fd, stage, index, errno);
    _exit(127);
}

/* dst = a + b, bounded; returns 0, or -1 when too long. */
static int cs_join(char *dst, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 1 > CS_PATH_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dst, a, la);
    memcpy(dst + la, b, lb + 1);
    return 0;
}

/* mkdir -p of every component of `path` (not the last one unless with_last). */
static int cs_mkdirs(const char *path, int with_last) {
    char buf[CS_PATH_MAX];
    size_t n = strlen(path);
    if (n + 1 > sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || (buf[i] == '\0' && with_last)) {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            buf[i] = saved;
        }
    }
    return 0;
}

/* Creates the mount point `dst`: a directory, or an empty file. */
static int cs_mountpoint(const char *dst, int is_dir) {
    if (cs_mkdirs(dst, is_dir) != 0) return -1;
    if (!is_dir) {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno != EEXIST) return -1;
        if (fd >= 0) close(fd);
    }
    return 0;
}

/* Mount flags that a user namespace locks on a bind mount: a remount must keep them. */
static unsigned long cs_locked_flags(const char *path) {
    struct statfs st;
    unsigned long flags = 0;
    if (statfs(path, &st) != 0) return 0;
    if (st.f_flags & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flags & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flags & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flags & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flags & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flags & ST_RELATIME) flags |= MS_RELATIME;
    return flags;
}

static int cs_bind_ro(const char *src, const char *dst, int recursive, unsigned long extra) {
    if (mount(src, dst, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) != 0) return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra;
    flags |= cs_locked_flags(dst);
    return mount(NULL, dst, NULL, flags, NULL);
}

static int cs_do_mount(const cs_mount *m) {
    char dst[CS_PATH_MAX], src[CS_PATH_MAX];
    if (cs_join(dst, "/newroot", m->target) != 0) return -1;
    switch (m->kind) {
    case CS_MOUNT_BIND_RO:
        if (cs_join(src, "/oldroot", m->source) != 0) return -1;
        if (cs_mountpoint(dst, m->is_dir) != 0) return -1;
        return cs_bind_ro(src, dst, 1, 0);
    case CS_MOUNT_TMPFS:
        if (cs_mkdirs(dst, 1) != 0) return -1;
        return mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, m->data);
    case CS_MOUNT_PROC:
        if (cs_mkdirs(dst, 1) != 0) return -1;
        return mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    case CS_MOUNT_DEV:
        if (cs_mkdirs(dst, 1) != 0) return -1;
        return mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NOEXEC, m->data);
    case CS_MOUNT_DEV_NODE:
        if (cs_join(src, "/oldroot", m->source) != 0) return -1;
        if (cs_mountpoint(dst, 0) != 0) return -1;
        return mount(src, dst, NULL, MS_BIND, NULL);
    case CS_MOUNT_SYMLINK:
        if (cs_mkdirs(dst, 0) != 0) return -1;
        return symlink(m->source, dst);
    default:
        errno = EINVAL;
        return -1;
    }
}

static int cs_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) goto fail;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) goto fail;
    close(s);
    return 0;
fail:;
    int e = errno;
    close(s);
    errno = e;
    return -1;
}

static void cs_reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        (void)sigaction(sig, &sa, NULL); /* glibc's internal signals answer EINVAL: fine */
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static int cs_close_from(unsigned int first) {
    if (syscall(SYS_close_range, first, ~0U, 0) == 0) return 0;
    struct rlimit rl;
    unsigned long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
        max = rl.rlim_cur;
    for (unsigned long fd = first; fd < max; fd++) close((int)fd);
    return 0;
}

/* Where init keeps its descriptors, from its first instructions on. */
#define CS_FD_REPORT 3
#define CS_FD_CONTROL 4

/* Maps stdin/stdout/stderr to 0/1/2, the report pipe to 3 and the control socket to 4 (both
 * close-on-exec), and closes everything else at once: a sandbox waiting for its run must not
 * hold other runs' pipes (it was cloned from a process full of them). */
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

/* ---------------------------------------------------------------- the program (pid 2) */

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

/* The run, as received by init (its own copy of memory: no allocation, no sharing). */
static cs_run_header cs_run;
static char cs_strings[CS_MAX_STRINGS_BYTES];
static char *cs_pointers[CS_MAX_POINTERS];
static char **cs_argv, **cs_envp, **cs_exec_paths, **cs_file_targets;
static int cs_file_fds[CS_MAX_FILES];

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
    cs_fail(3, CS_STAGE_EXECVE, 0);
}

static int cs_program_main(void *arg) {
    const cs_config *c = (const cs_config *)arg;
    for (uint32_t i = 0; i < cs_run.n_rlimits; i++) {
        struct rlimit rl = {(rlim_t)cs_run.rlimits[i].soft, (rlim_t)cs_run.rlimits[i].hard};
        if (setrlimit(cs_run.rlimits[i].resource, &rl) != 0) cs_fail(3, CS_STAGE_RLIMIT, (int)i);
    }
    if (cs_drop_capabilities() != 0) cs_fail(3, CS_STAGE_CAPABILITIES, 0);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) cs_fail(3, CS_STAGE_NO_NEW_PRIVS, 0);
    if (c->seccomp_filter) {
        struct sock_fprog prog = {c->seccomp_len, (struct sock_filter *)c->seccomp_filter};
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) cs_fail(3, CS_STAGE_SECCOMP, 0);
    }
    cs_exec(cs_exec_paths, (int)cs_run.n_exec_paths, cs_argv, cs_envp);
}

/* Reads exactly n bytes; 0, or -1 with errno (EPIPE at end-of-file). */
static int cs_read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EPIPE;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Receives the run: the header with the files' descriptors, then the strings, which are cut
 * into argv, envp, exec paths and file targets. Returns 0, 1 when the parent closed the
 * socket without sending a run (a warm sandbox discarded), or -1 with errno. */
static int cs_receive_run(int sock) {
    char control[CMSG_SPACE(sizeof(int) * CS_MAX_FILES)];
    struct iovec iov = {&cs_run, sizeof cs_run};
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
    if (r == 0) return 1;
    if (r < 0) return -1;
    int n_fds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            n_fds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(cs_file_fds, CMSG_DATA(cm), sizeof(int) * (size_t)n_fds);
        }
    }
    if ((size_t)r < sizeof cs_run && cs_read_full(sock, (char *)&cs_run + r, sizeof cs_run - (size_t)r) != 0) return -1;
    uint32_t n_strings = cs_run.n_argv + cs_run.n_envp + cs_run.n_exec_paths + cs_run.n_files;
    /* Each list is NULL-terminated in cs_pointers: n_strings + 4 slots. */
    if (cs_run.magic != CS_RUN_MAGIC || cs_run.strings_bytes > sizeof cs_strings || n_strings + 4 > CS_MAX_POINTERS ||
        cs_run.n_files > CS_MAX_FILES || (int)cs_run.n_files != n_fds || cs_run.n_rlimits > CS_MAX_RLIMITS) {
        errno = EPROTO;
        return -1;
    }
    if (cs_read_full(sock, cs_strings, cs_run.strings_bytes) != 0) return -1;
    char *p = cs_strings, *end = cs_strings + cs_run.strings_bytes;
    char **slot = cs_pointers;
    uint32_t counts[4] = {cs_run.n_argv, cs_run.n_envp, cs_run.n_exec_paths, cs_run.n_files};
    char ***lists[4] = {&cs_argv, &cs_envp, &cs_exec_paths, &cs_file_targets};
    for (int l = 0; l < 4; l++) {
        *lists[l] = slot;
        for (uint32_t i = 0; i < counts[l]; i++) {
            char *nul = memchr(p, '\0', (size_t)(end - p));
            if (!nul) {
                errno = EPROTO;
                return -1;
            }
            *slot++ = p;
            p = nul + 1;
        }
        *slot++ = NULL;
    }
    return 0;
}

/* Copies file i of the run into the root (still writable; it turns read-only next). */
static int cs_place_file(int i) {
    char dst[CS_PATH_MAX];
    if (cs_join(dst, "", cs_file_targets[i]) != 0 || cs_mkdirs(dst, 0) != 0) return -1;
    mode_t mode = (cs_run.files_executable >> i) & 1 ? 0555 : 0444;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (out < 0) return -1;
    off_t offset = 0;
    for (;;) {
        ssize_t n = sendfile(out, cs_file_fds[i], &offset, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = errno;
            close(out);
            close(cs_file_fds[i]);
            if (n == 0) return 0;
            errno = e;
            return -1;
        }
    }
}

/* ---------------------------------------------------------------- init (pid 1) */

static char cs_program_stack[64 * 1024] __attribute__((aligned(16)));

/* Phase 1: the policy's root built under /newroot (with the host's under /oldroot), then
 * made the root. Everything the run needs of the host is bound by now. */
static void cs_prepare_root(const cs_config *c) {
    int rep = CS_FD_REPORT;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) cs_fail(rep, CS_STAGE_MOUNT_PRIVATE, 0);
    /* A scratch tmpfs over base_dir becomes the root for a moment, with the host's root under
     * /oldroot, so that every source is reached as /oldroot/... while /newroot is built. */
    if (mount("tmpfs", c->base_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") != 0)
        cs_fail(rep, CS_STAGE_MOUNT_BASE, 0);
    if (chdir(c->base_dir) != 0 || mkdir("newroot", 0755) != 0 || mkdir("oldroot", 0755) != 0 ||
        syscall(SYS_pivot_root, ".", "oldroot") != 0 || chdir("/") != 0)
        cs_fail(rep, CS_STAGE_PIVOT_BASE, 0);
    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, c->root_options) != 0)
        cs_fail(rep, CS_STAGE_MOUNT_ROOT, 0);
    for (int i = 0; i < c->n_mounts; i++) {
        if (cs_do_mount(&c->mounts[i]) != 0) cs_fail(rep, CS_STAGE_MOUNT, i);
    }
    /* Into the new root, the host's gone: detaching its tree waits for an RCU grace period,
     * which belongs here, before the run is known, not on the run's path. */
    if (umount2("/oldroot", MNT_DETACH) != 0 || chdir("/newroot") != 0 ||
        syscall(SYS_pivot_root, ".", ".") != 0 || umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        cs_fail(rep, CS_STAGE_PIVOT_ROOT, 0);
}

/* Phase 2 (after the run's files are placed): /dev and the root read-only, into the workdir. */
static void cs_finish_root(const cs_config *c) {
    int rep = CS_FD_REPORT;
    for (int i = 0; i < c->n_mounts; i++) {
        if (c->mounts[i].kind != CS_MOUNT_DEV) continue;
        if (mount(NULL, c->mounts[i].target, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, c->mounts[i].data) != 0)
            cs_fail(rep, CS_STAGE_MOUNT, i);
    }
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, c->root_options) != 0)
        cs_fail(rep, CS_STAGE_REMOUNT_ROOT, 0);
    if (c->workdir && chdir(c->workdir) != 0) cs_fail(rep, CS_STAGE_WORKDIR, 0);
}

static int cs_init_main(void *arg) {
    const cs_config *c = (const cs_config *)arg;
    int rep = CS_FD_REPORT, ctl = CS_FD_CONTROL;
    cs_reset_signals();
    if (c->pdeathsig) (void)prctl(PR_SET_PDEATHSIG, c->pdeathsig, 0, 0, 0);
    if (cs_compact_fds(c) != 0) cs_fail(c->report_fd, CS_STAGE_FDS, 0);

    /* Wait for the parent: id maps written, cgroup joined. */
    char go;
    if (cs_read_full(ctl, &go, 1) != 0) cs_fail(rep, CS_STAGE_SYNC, 0);

    /* glibc's set*id() may wait for threads that do not exist here: raw system calls. */
    if (syscall(SYS_setgroups, 0, NULL) != 0) cs_fail(rep, CS_STAGE_SETGROUPS, 0);
    if (syscall(SYS_setresgid, 0, 0, 0) != 0) cs_fail(rep, CS_STAGE_SETRESGID, 0);
    if (syscall(SYS_setresuid, 0, 0, 0) != 0) cs_fail(rep, CS_STAGE_SETRESUID, 0);
    /* Changing ids cleared the death signal: set it again, then make sure the parent is
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

    /* Ready: everything above may have happened long before the run is known. */
    int received = cs_receive_run(ctl);
    if (received == 1) _exit(0);
    if (received != 0) cs_fail(rep, CS_STAGE_RECEIVE, 0);
    for (uint32_t i = 0; i < cs_run.n_files; i++) {
        if (cs_place_file((int)i) != 0) cs_fail(rep, CS_STAGE_PLACE_FILE, (int)i);
    }
    cs_finish_root(c);

    close(ctl);
    /* The program shares our memory until it execs; it gets 0, 1, 2 and (until exec) 3. */
    pid_t program = clone(cs_program_main, cs_program_stack + sizeof cs_program_stack,
                          CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)c);
    if (program < 0) cs_fail(3, CS_STAGE_FORK_PROGRAM, 0);
    /* Only the program (and what it starts) holds the stdio pipes now. */
    close(0);
    close(1);
    close(2);

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
            (void)!write(3, &r, sizeof r);
            _exit(0);
        }
    }
}

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

/* ---------------------------------------------------------------- parent side */

pid_t cs_spawn(const cs_config *cfg) {
    void *stack = mmap(NULL, CS_STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -errno;
    pid_t pid = clone(cs_init_main, (char *)stack + CS_STACK_SIZE, cfg->clone_flags | SIGCHLD, (void *)cfg);
    int err = errno;
    munmap(stack, CS_STACK_SIZE); /* the child has its own copy */
    return pid < 0 ? -err : pid;
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
    struct iovec iov = {(void *)header, sizeof *header};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (n_fds > 0) {
        memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n_fds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n_fds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n_fds);
    }
    ssize_t sent;
    do {
        sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
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
    default: return "setup";
    }
}

/* cs_build_seccomp: seccomp_build.c */

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
