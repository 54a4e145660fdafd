/*
 * CSandbox: the only code that runs between clone() and execve().
 *
 * The parent (Swift) prepares everything that allocates — argv, envp, the mount plan, rlimits,
 * the seccomp BPF program — in a cs_config, then calls cs_spawn(). The child side is
 * async-signal-safe: raw system calls, stack buffers, no malloc, no locks.
 *
 * Process layout of one run:
 *   parent ──clone(NEWUSER|NEWPID|NEWNS|...)──▶ init (pid 1 of the run's pid namespace)
 *   init: waits for the parent (id maps, cgroup), builds the root, then vforks
 *   program (pid 2): rlimits, capabilities, no_new_privs, seccomp, execve.
 *   init reaps every process of the namespace; when the program exits it reports the wait
 *   status on the report pipe and exits, and the kernel kills whatever is left in the namespace.
 */
#ifndef CSANDBOX_H
#define CSANDBOX_H


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <signal.h>
#include <seccomp.h>
#include <linux/filter.h>

/* Namespace flags, for Swift (which does not see the macros). */
enum {
    CS_CLONE_NEWUSER = CLONE_NEWUSER,
    CS_CLONE_NEWPID = CLONE_NEWPID,
    CS_CLONE_NEWNS = CLONE_NEWNS,
    CS_CLONE_NEWNET = CLONE_NEWNET,
    CS_CLONE_NEWIPC = CLONE_NEWIPC,
    CS_CLONE_NEWUTS = CLONE_NEWUTS,
    CS_CLONE_NEWCGROUP = CLONE_NEWCGROUP,
};

/* What a mount-plan entry does. Targets are absolute paths inside the sandbox. */
enum cs_mount_kind {
    CS_MOUNT_BIND_RO = 1,   /* bind host `source` read-only at `target` (dir or file) */
    CS_MOUNT_TMPFS = 2,     /* tmpfs at `target` with options `data` ("size=...,mode=...") */
    CS_MOUNT_PROC = 3,      /* a fresh procfs of the run's pid namespace at `target` */
    CS_MOUNT_DEV = 4,       /* a read-only tmpfs at `target` (e.g. /dev); nodes follow as DEV_NODE */
    CS_MOUNT_DEV_NODE = 5,  /* bind the host device `source` at `target` */
    CS_MOUNT_SYMLINK = 6,   /* a symlink at `target` pointing to `source` */
    CS_MOUNT_FILE_FD = 7,   /* copy the file `fd` (a sealed memfd) to `target` in the read-only root;
                             * is_dir here means "executable" */
};

typedef struct cs_mount {
    int kind;
    int is_dir;           /* BIND_RO: the source is a directory */
    int fd;               /* FILE_FD: descriptor in the parent, inherited by the child */
    const char *source;
    const char *target;
    const char *data;
} cs_mount;

typedef struct cs_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
} cs_rlimit;

/* Where a setup failure happened; cs_stage_name() gives its words. */
enum cs_stage {
    CS_STAGE_NONE = 0,
    CS_STAGE_CLONE,
    CS_STAGE_SYNC,
    CS_STAGE_SETGROUPS,
    CS_STAGE_SETRESGID,
    CS_STAGE_SETRESUID,
    CS_STAGE_UNSHARE_CGROUP,
    CS_STAGE_HOSTNAME,
    CS_STAGE_MOUNT_PRIVATE,
    CS_STAGE_MOUNT_BASE,
    CS_STAGE_PIVOT_BASE,
    CS_STAGE_MOUNT_ROOT,
    CS_STAGE_MOUNT,        /* index = mount-plan entry */
    CS_STAGE_REMOUNT_ROOT,
    CS_STAGE_PIVOT_ROOT,
    CS_STAGE_WORKDIR,
    CS_STAGE_LOOPBACK,
    CS_STAGE_PDEATHSIG,
    CS_STAGE_FDS,
    CS_STAGE_FORK_PROGRAM,
    CS_STAGE_RLIMIT,       /* index = rlimit entry */
    CS_STAGE_CAPABILITIES,
    CS_STAGE_NO_NEW_PRIVS,
    CS_STAGE_SECCOMP,
    CS_STAGE_EXECVE,
};

/* Records on the report pipe (fixed size, written atomically). */
enum cs_report_kind {
    CS_REPORT_SETUP_FAILED = 1, /* stage, index, err */
    CS_REPORT_EXITED = 2,       /* status (wait status of the program), rusage of the program tree */
};

typedef struct cs_report {
    int32_t kind;
    int32_t stage;
    int32_t index;
    int32_t err;
    int32_t status;
    int32_t pad;
    int64_t utime_us;
    int64_t stime_us;
    int64_t maxrss_kb;
} cs_report;

typedef struct cs_config {
    /* Isolation. bare = 1: plain fork+exec (a benchmark baseline), everything else ignored
     * except fds, argv, envp and exec paths. */
    int bare;
    int clone_flags;         /* CLONE_NEW* set at clone(); CLONE_NEWCGROUP is unshared later */
    int unshare_cgroup;      /* unshare(CLONE_NEWCGROUP) once the parent placed us in our cgroup */
    int loopback_up;         /* bring `lo` up in the new network namespace */
    int pdeathsig;           /* signal sent to init when the spawning thread exits (0 = none) */

    /* Descriptors (parent numbering); the child maps stdin/stdout/stderr to 0/1/2. */
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int sync_fd;             /* read end: the parent writes one byte when the child may go on */
    int report_fd;           /* write end of the report pipe (records above) */

    /* Filesystem. */
    const char *base_dir;    /* host directory the scratch tmpfs is mounted over (e.g. /tmp) */
    const char *root_options;/* tmpfs options of the new root, e.g. "size=1m,mode=0755" */
    const cs_mount *mounts;
    int n_mounts;
    const char *workdir;
    const char *hostname;

    /* Limits and privileges of the program. */
    const cs_rlimit *rlimits;
    int n_rlimits;
    const struct sock_filter *seccomp_filter; /* NULL = none */
    unsigned short seccomp_len;

    /* The program: candidate paths are tried in order until one is not ENOENT/ENOTDIR/EACCES. */
    const char *const *exec_paths;
    int n_exec_paths;
    char *const *argv;
    char *const *envp;
} cs_config;

/* Spawns init (or, with bare, the program) and returns its pid (> 0), or -errno. */
pid_t cs_spawn(const cs_config *cfg);

/* Words for a stage: "mount", "pivot_root", ... */
const char *cs_stage_name(int stage);

/* Builds a seccomp BPF program with libseccomp and returns it in a malloc'ed buffer that the
 * caller frees with free(). deny: syscall names refused with `action` (SCMP_ACT_*);
 * deny_clone_namespaces: refuse clone() with any CLONE_NEW* flag and unshare/setns-like
 * behaviour; deny_tiocsti: refuse ioctl(TIOCSTI/TIOCLINUX); clone3 is always answered with
 * ENOSYS so that libc falls back to clone(). On failure returns NULL and writes a message. */
struct sock_filter *cs_build_seccomp(const char *const *deny, int n_deny, uint32_t action,
                                     int deny_clone_namespaces, int deny_tiocsti,
                                     size_t *out_len, char *errbuf, size_t errbuf_len);

/* Helpers Swift's Glibc does not import. */
static inline int cs_wifexited(int s) { return WIFEXITED(s); }
static inline int cs_wexitstatus(int s) { return WEXITSTATUS(s); }
static inline int cs_wifsignaled(int s) { return WIFSIGNALED(s); }
static inline int cs_wtermsig(int s) { return WTERMSIG(s); }
static inline int cs_wcoredump(int s) { return WCOREDUMP(s); }

/* pidfd_open(2); -errno on failure. */
int cs_pidfd_open(pid_t pid);
/* pidfd_send_signal(2); -errno on failure. */
int cs_pidfd_send_signal(int pidfd, int sig);
/* A sealed, read-only memfd holding `len` bytes; -errno on failure. */
int cs_sealed_memfd(const char *name, const void *bytes, size_t len, int executable);
/* A non-blocking, close-on-exec eventfd (for waking a supervisor); -errno on failure. */
int cs_eventfd(void);
/* pipe2(fds, O_CLOEXEC); 0 or -errno. */
int cs_pipe_cloexec(int fds[2]);
/* The current thread's errno (Swift reads it right after the failing call). */
int cs_errno(void);

#endif
