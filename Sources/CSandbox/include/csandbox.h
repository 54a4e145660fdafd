/*
 * CSandbox: the only code that runs between clone() and execve().
 *
 * The parent (Swift) prepares everything that allocates — argv, envp, the mount plan, rlimits,
 * the seccomp BPF program — in a cs_config, then calls cs_spawn(). The child side is
 * async-signal-safe: raw system calls, stack buffers, no malloc, no locks.
 *
 * Process layout of one run:
 *   parent ──clone(NEWUSER|NEWPID|NEWNS|...)──▶ init (pid 1 of the run's pid namespace)
 *   init, phase 1 (may happen ahead of time, for a pool of warm sandboxes): waits for the
 *     parent (id maps, cgroup), builds the policy's root;
 *   init, phase 2: receives the run on the control socket (argv, envp, rlimits, files as
 *     memfds), places the files, makes the root read-only, pivots into it, then vforks
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
};

typedef struct cs_mount {
    int kind;
    int is_dir;           /* BIND_RO: the source is a directory */
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
    CS_STAGE_RECEIVE,      /* the run message */
    CS_STAGE_PLACE_FILE,   /* index = file of the run message */
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

/* Limits of one run message (the parent refuses larger requests before sending). */
#define CS_MAX_STRINGS_BYTES (1 << 20)
#define CS_MAX_POINTERS 16384
#define CS_MAX_FILES 32
#define CS_MAX_RLIMITS 16
#define CS_RUN_MAGIC 0x436f6e66u

/* The run, sent by the parent on the control socket once init is ready for it. The file
 * descriptors of the files (sealed memfds) travel with the header as SCM_RIGHTS, in order;
 * `strings_bytes` bytes of NUL-terminated strings follow the header: argv, envp, candidate
 * executable paths, then file targets. */
typedef struct cs_run_header {
    uint32_t magic;
    uint32_t n_argv;
    uint32_t n_envp;
    uint32_t n_exec_paths;
    uint32_t n_files;
    uint32_t n_rlimits;
    uint32_t strings_bytes;
    uint32_t pad;
    uint64_t files_executable; /* bit i: file i gets mode 0555 instead of 0444 */
    cs_rlimit rlimits[CS_MAX_RLIMITS];
} cs_run_header;

/* What the child needs before the run is known: the policy's sandbox. */
typedef struct cs_config {
    int clone_flags;         /* CLONE_NEW* set at clone(); CLONE_NEWCGROUP is unshared later */
    int unshare_cgroup;      /* unshare(CLONE_NEWCGROUP) once the parent placed us in our cgroup */
    int loopback_up;         /* bring `lo` up in the new network namespace */
    int pdeathsig;           /* signal sent to init when the spawning thread exits (0 = none) */

    /* Descriptors (parent numbering); the child maps stdin/stdout/stderr to 0/1/2. */
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int control_fd;          /* a stream socket: one byte when the ids are mapped and the cgroup
                              * joined, then the run (cs_run_header ...); EOF = never mind */
    int report_fd;           /* write end of the report pipe (records above) */

    /* Filesystem. */
    const char *base_dir;    /* host directory the scratch tmpfs is mounted over (e.g. /tmp) */
    const char *root_options;/* tmpfs options of the new root, e.g. "size=1m,mode=0755" */
    const cs_mount *mounts;
    int n_mounts;
    const char *workdir;
    const char *hostname;

    /* The program's seccomp filter (NULL = none). */
    const struct sock_filter *seccomp_filter;
    unsigned short seccomp_len;
} cs_config;

/* Spawns init and returns its pid (> 0), or -errno. */
pid_t cs_spawn(const cs_config *cfg);

/* No isolation at all, the way posix_spawn does it (vfork semantics): the benchmarks'
 * baseline. Maps in/out/err to 0/1/2, tries each path, returns the pid or -errno. */
pid_t cs_spawn_bare(const char *const *exec_paths, int n_exec_paths, char *const *argv,
                    char *const *envp, int in, int out, int err);

/* Sends the run header with `fds` attached (SCM_RIGHTS), then `strings`. 0 or -errno. */
int cs_send_run(int sock, const cs_run_header *header, const int *fds, int n_fds,
                const char *strings, size_t strings_len);

/* Words for a stage: "mount", "pivot_root", ... */
const char *cs_stage_name(int stage);

/* Builds a seccomp BPF program with libseccomp and returns it in a malloc'ed buffer that the
 * caller frees with free() (seccomp_build.c).
 * The first half, permissive by default, refuses: the `deny` syscall names with `action`
 * (SCMP_ACT_*); with deny_clone_namespaces, clone() with any CLONE_NEW* flag; with
 * deny_tiocsti, ioctl(TIOCSTI/TIOCLINUX); socket() and socketpair() in any address family not
 * in `families` (AF_* numbers; AF_NETLINK only with protocol NETLINK_ROUTE) with EAFNOSUPPORT;
 * personality() with anything but a query (0xffffffff) or PER_LINUX, with `action`; clone3
 * with ENOSYS so that libc falls back to clone().
 * With allow_list, what the first half lets through then meets a second half that permits only
 * the `allow` names and answers every other syscall ENOSYS (so libc falls back): the two are
 * joined into one program (the first half's "allow" becomes a jump into the second).
 * On failure returns NULL and writes a message. */
struct sock_filter *cs_build_seccomp(const char *const *deny, int n_deny, uint32_t action,
                                     int deny_clone_namespaces, int deny_tiocsti,
                                     const int *families, int n_families,
                                     int allow_list, const char *const *allow, int n_allow,
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
/* socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC); 0 or -errno. */
int cs_socketpair_cloexec(int fds[2]);
/* The current thread's errno (Swift reads it right after the failing call). */
int cs_errno(void);

/* Whether this host lets a process create a user namespace: a forked child tries
 * unshare(CLONE_NEWUSER) and exits. Returns 0 when it worked, else the errno (of the child's
 * unshare, or of fork/waitpid). For diagnostics (`confine doctor`); the child runs only C. */
int cs_probe_user_namespace(void);

#endif
