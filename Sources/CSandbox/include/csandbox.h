/*
 * CSandbox: the C the server itself runs (parent side). Nothing here runs after clone().
 *
 * Sandboxes are born from a small separate executable, `confine-spawner` (Sources/confine-spawner),
 * that the server starts by exec at start and talks to over a SOCK_SEQPACKET unix socket: the
 * server sends a spawn request (the policy's sandbox: namespaces, mount plan, seccomp program);
 * the spawner clones an init into fresh namespaces as the server's child (CLONE_PARENT) and
 * answers with the descriptors (pidfd, stdin, stdout, stderr, control socket, report pipe) by
 * SCM_RIGHTS. The server then writes the id maps, places init in its cgroup and releases it.
 * Everything after clone() lives in Sources/confine-spawner/child/ and is async-signal-safe.
 *
 * Process layout of one run:
 *   server ─request─▶ spawner ──clone(CLONE_PARENT|NEWUSER|NEWPID|NEWNS|...)──▶ init (pid 1)
 *   init, phase 1 (may happen ahead of time, for a pool of warm sandboxes): waits for the
 *     server (id maps, cgroup), builds the policy's root;
 *   init, phase 2: receives the run on the control socket (argv, envp, rlimits, kernel object
 *     ceilings, files as memfds), places the files, makes the root read-only, then vforks
 *   program (pid 2): its own session, rlimits, capabilities, no_new_privs, seccomp, execve.
 *   init reaps every process of the namespace; when the program exits it reports the wait
 *   status on the report pipe and exits, and the kernel kills whatever is left in the namespace.
 */
#ifndef CSANDBOX_H
#define CSANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
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

/* rlimits Swift's Glibc does not import by name. */
enum {
    CS_RLIMIT_MSGQUEUE = RLIMIT_MSGQUEUE,
    CS_RLIMIT_SIGPENDING = RLIMIT_SIGPENDING,
};

/* The only clone flags a spawn request may ask for: the spawner masks the rest away. */
#define CS_NAMESPACE_FLAGS (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | \
                            CLONE_NEWUTS | CLONE_NEWCGROUP)

/* What a mount-plan entry does. Targets are absolute paths inside the sandbox. */
enum cs_mount_kind {
    CS_MOUNT_BIND_RO = 1,   /* bind host `source` read-only at `target` (dir or file) */
    CS_MOUNT_TMPFS = 2,     /* tmpfs at `target` with options `data` ("size=...,mode=...") */
    CS_MOUNT_PROC = 3,      /* a fresh procfs of the run's pid namespace at `target` */
    CS_MOUNT_DEV = 4,       /* a read-only tmpfs at `target` (e.g. /dev); nodes follow as DEV_NODE */
    CS_MOUNT_DEV_NODE = 5,  /* bind the host device `source` at `target` */
    CS_MOUNT_SYMLINK = 6,   /* a symlink at `target` pointing to `source` */
};

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
    CS_STAGE_USER_LIMIT,   /* index = kernel object ceiling (cs_user_limit) */
    CS_STAGE_SETSID,
    CS_STAGE_RUN_AREA,     /* the memory init shares with the waiting program */
    CS_STAGE_START_PROGRAM,/* telling the waiting program to go */
    CS_STAGE_SECCOMP_LISTENER, /* handing the filter's listener to init, and init to the server */
    CS_STAGE_CGROUP_JOIN,  /* index = cgroup file init writes "0" to, to move itself in (v1 `tasks`) */
    /* Stages of the spawner itself (before clone, or while starting). */
    CS_STAGE_SPAWNER_REQUEST,   /* a malformed or oversized spawn request */
    CS_STAGE_SPAWNER_PIPES,     /* pipe2/socketpair for the new init */
    CS_STAGE_SPAWNER_PRIVILEGES,/* dropping to the spawner's uid/gid */
    CS_STAGE_SPAWNER_RLIMITS,   /* raising the spawner's own per-user ceilings */
    CS_STAGE_SPAWNER_PROBE,     /* the start-up probe: namespaces as the spawner's uid */
};

/* Per-sandbox ceilings on per-user kernel objects, written by init into its own user
 * namespace's /proc/sys/user/ before the program starts (value CS_USER_LIMIT_KEEP: untouched). */
enum cs_user_limit {
    CS_USER_LIMIT_INOTIFY_INSTANCES = 0,
    CS_USER_LIMIT_INOTIFY_WATCHES,
    CS_USER_LIMIT_FANOTIFY_GROUPS,
    CS_USER_LIMIT_FANOTIFY_MARKS,
    CS_USER_LIMIT_USER_NAMESPACES,
    CS_USER_LIMIT_PID_NAMESPACES,
    CS_USER_LIMIT_NET_NAMESPACES,
    CS_USER_LIMIT_MNT_NAMESPACES,
    CS_USER_LIMIT_IPC_NAMESPACES,
    CS_USER_LIMIT_UTS_NAMESPACES,
    CS_USER_LIMIT_CGROUP_NAMESPACES,
    CS_USER_LIMIT_TIME_NAMESPACES,
    CS_USER_LIMIT_COUNT
};
#define CS_USER_LIMIT_KEEP UINT64_MAX

/* The /proc/sys/user/ file of each ceiling, by cs_user_limit. */
static const char *const cs_user_limit_files[CS_USER_LIMIT_COUNT] = {
    "/proc/sys/user/max_inotify_instances", "/proc/sys/user/max_inotify_watches",
    "/proc/sys/user/max_fanotify_groups", "/proc/sys/user/max_fanotify_marks",
    "/proc/sys/user/max_user_namespaces", "/proc/sys/user/max_pid_namespaces",
    "/proc/sys/user/max_net_namespaces", "/proc/sys/user/max_mnt_namespaces",
    "/proc/sys/user/max_ipc_namespaces", "/proc/sys/user/max_uts_namespaces",
    "/proc/sys/user/max_cgroup_namespaces", "/proc/sys/user/max_time_namespaces",
};
/* The file of a ceiling, for messages ("/proc/sys/user/max_inotify_instances"). */
const char *cs_user_limit_name(int limit);

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
#define CS_MAX_FILES 128
#define CS_MAX_RLIMITS 16
#define CS_RUN_MAGIC 0x436f6e66u

/* The run, sent by the server on the control socket once init is ready for it. The file
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
    uint64_t files_executable[CS_MAX_FILES / 64]; /* bit i: file i gets mode 0555, not 0444 */
    cs_rlimit rlimits[CS_MAX_RLIMITS];
    uint64_t user_limits[CS_USER_LIMIT_COUNT]; /* CS_USER_LIMIT_KEEP: leave as is */
} cs_run_header;

/* File i of the run is executable (mode 0555). */
static inline void cs_mark_executable(cs_run_header *h, unsigned i) {
    if (i < CS_MAX_FILES) h->files_executable[i / 64] |= 1ULL << (i % 64);
}
static inline int cs_is_executable(const cs_run_header *h, unsigned i) {
    return i < CS_MAX_FILES && ((h->files_executable[i / 64] >> (i % 64)) & 1);
}

/* ------------------------------------------------------------ descriptors with a message */
/* Every message of the server, the spawner and init is one buffer with, at times, descriptors
 * (SCM_RIGHTS). These helpers are async-signal-safe (no allocation): init uses them too. */

/* `msg` sends `len` bytes of `buf` with the `n` descriptors of `fds` (none when n is 0);
 * `control` holds at least CMSG_SPACE(sizeof(int) * n) bytes. */
static inline void cs_message_to_send(struct msghdr *msg, struct iovec *iov, const void *buf, size_t len,
                                      char *control, const int *fds, int n) {
    memset(msg, 0, sizeof *msg);
    iov->iov_base = (void *)buf;
    iov->iov_len = len;
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
    if (n <= 0) return;
    memset(control, 0, CMSG_SPACE(sizeof(int) * (size_t)n));
    msg->msg_control = control;
    msg->msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    struct cmsghdr *cm = CMSG_FIRSTHDR(msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
}

/* `msg` receives up to `len` bytes into `buf`, and descriptors into `control`. */
static inline void cs_message_to_receive(struct msghdr *msg, struct iovec *iov, void *buf, size_t len,
                                         char *control, size_t control_len) {
    memset(msg, 0, sizeof *msg);
    iov->iov_base = buf;
    iov->iov_len = len;
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
    msg->msg_control = control;
    msg->msg_controllen = control_len;
}

/* sendmsg without SIGPIPE, again after EINTR: the bytes sent, or -1 with errno. */
static inline ssize_t cs_send_message(int sock, const struct msghdr *msg) {
    ssize_t r;
    do {
        r = sendmsg(sock, msg, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* recvmsg, again after EINTR; received descriptors are close-on-exec. */
static inline ssize_t cs_receive_message(int sock, struct msghdr *msg) {
    ssize_t r;
    do {
        r = recvmsg(sock, msg, MSG_CMSG_CLOEXEC);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* The descriptors a received message brought: the first `max` into `fds`, any beyond closed.
 * Returns how many came in all (more than `max` says the sender sent too many). */
static inline int cs_message_descriptors(struct msghdr *msg, int *fds, int max) {
    int total = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++, total++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + sizeof(int) * (size_t)i, sizeof fd);
            if (total < max) fds[total] = fd;
            else close(fd);
        }
    }
    return total;
}

/* ------------------------------------------------------------ the spawner's protocol */

#define CS_SPAWNER_MAGIC 0x43535057u   /* "CSPW" */
#define CS_SPAWNER_VERSION 3u
/* The largest spawn request (header, mounts, seccomp program, strings). */
#define CS_SPAWN_MAX_REQUEST (192 * 1024)
#define CS_SPAWN_MAX_MOUNTS 512
/* The spawner's socket: its descriptor number in the spawner. */
#define CS_SPAWNER_FD 3
/* Descriptors that come back with a successful spawn reply, in this order. */
enum { CS_SPAWN_FD_PIDFD = 0, CS_SPAWN_FD_STDIN, CS_SPAWN_FD_STDOUT, CS_SPAWN_FD_STDERR,
       CS_SPAWN_FD_CONTROL, CS_SPAWN_FD_REPORT, CS_SPAWN_FD_COUNT };

/* Sent once by the spawner when it starts: ready (err 0), or why it cannot work. */
typedef struct cs_spawner_hello {
    uint32_t magic;
    uint32_t version;
    int32_t pid;     /* the spawner's pid */
    int32_t err;     /* 0, or the errno of `stage` */
    int32_t stage;   /* CS_STAGE_SPAWNER_* that failed, 0 when ready */
    uint32_t uid;    /* the ids it runs as */
    uint32_t gid;
    uint32_t pad;
} cs_spawner_hello;

/* A mount-plan entry on the wire: strings are offsets into the request's string table. */
typedef struct cs_wire_mount {
    int32_t kind;
    int32_t is_dir;
    int32_t source;  /* -1: none */
    int32_t target;
    int32_t data;    /* -1: none */
    int32_t pad;
} cs_wire_mount;

enum {
    CS_SPAWN_LOOPBACK_UP = 1,    /* bring `lo` up in the new network namespace */
    CS_SPAWN_UNSHARE_CGROUP = 2, /* unshare(CLONE_NEWCGROUP) once placed in the run's cgroup */
    CS_SPAWN_SECCOMP_EARLY = 4,  /* the filter permits what the waiting program calls after it
                                  * (read, write, prlimit64, execve, exit_group): the program
                                  * loads it while the sandbox waits for its run */
    CS_SPAWN_SECCOMP_NOTIFY = 8, /* the filter's refusals are user notifications: the program
                                  * loads it with a listener, hands that to init (sendmsg on the
                                  * go socket), which sends it to the server on the control
                                  * socket (CS_LISTENER_MAGIC) */
};

/* One spawn request: this header, then n_mounts cs_wire_mount, then seccomp_len sock_filter
 * instructions, then strings_bytes bytes of NUL-terminated strings. One SEQPACKET message,
 * with at most one descriptor (SCM_RIGHTS): the run's cgroup v2 directory, for init to be born
 * in it (clone3 with CLONE_INTO_CGROUP) where the kernel lets the spawner do so. */
typedef struct cs_spawn_request {
    uint32_t magic;
    uint32_t version;
    uint64_t id;
    uint32_t clone_flags;   /* CLONE_NEW*; masked to CS_NAMESPACE_FLAGS by the spawner */
    uint32_t options;       /* CS_SPAWN_* */
    int32_t base_dir;       /* host directory the scratch tmpfs is mounted over (e.g. /tmp) */
    int32_t root_options;   /* tmpfs options of the new root */
    int32_t workdir;        /* -1: none */
    int32_t hostname;       /* -1: none */
    uint32_t n_mounts;
    uint32_t seccomp_len;   /* instructions; 0: no filter */
    uint32_t strings_bytes;
    uint32_t pad;
} cs_spawn_request;

/* The spawner's answer; with pid > 0, CS_SPAWN_FD_COUNT descriptors come with it. */
typedef struct cs_spawn_reply {
    uint32_t magic;
    int32_t pid;     /* init's pid (> 0), or 0 on failure */
    uint64_t id;     /* the request's */
    int32_t err;     /* errno of the failed stage */
    int32_t stage;   /* CS_STAGE_* that failed in the spawner */
    uint32_t flags;  /* CS_SPAWNED_* */
    int32_t into_cgroup_err; /* why init was not born in the cgroup sent (errno), else 0 */
} cs_spawn_reply;

enum {
    CS_SPAWNED_IN_CGROUP = 1, /* init was born in the cgroup that came with the request */
};

/* Starts the spawner executable `path` as a child of the calling thread (which must outlive
 * every sandbox: it is their parent-death thread), with `sock` as its descriptor 3, no
 * environment, and a SIGKILL parent-death signal. Returns its pid or -errno. */
pid_t cs_start_spawner(const char *path, char *const *argv, int sock);

/* Reads the spawner's hello, waiting at most timeout_ms. 0, or -errno (-ETIMEDOUT, -EPROTO). */
int cs_read_spawner_hello(int sock, int timeout_ms, cs_spawner_hello *hello);

/* Sends one spawn request (a whole message) and reads replies until the one for `id`; stale
 * replies (of a request that timed out) are dropped with their descriptors. On success the
 * reply is in *reply and, when reply->pid > 0, fds[0..CS_SPAWN_FD_COUNT) hold the descriptors
 * (close-on-exec). Returns 0, or -errno of the exchange (EPIPE/ECONNRESET when the spawner is
 * gone, EAGAIN when it did not answer within the socket's receive timeout); *sent says whether
 * the request had left (0: the spawner never saw it, so it may be sent again elsewhere).
 * cgroup_fd >= 0 travels with the request (the run's cgroup v2 directory; see above). */
int cs_spawner_exchange(int sock, const void *request, size_t len, int cgroup_fd, uint64_t id,
                        cs_spawn_reply *reply, int fds[CS_SPAWN_FD_COUNT], int *sent);

/* ------------------------------------------------------------ other parent-side helpers */

/* No isolation at all, the way posix_spawn does it (vfork semantics): the benchmarks'
 * baseline. Maps in/out/err to 0/1/2, tries each path, returns the pid or -errno. */
pid_t cs_spawn_bare(const char *const *exec_paths, int n_exec_paths, char *const *argv,
                    char *const *envp, int in, int out, int err);

/* Sends the run header with `fds` attached (SCM_RIGHTS), then `strings`. 0 or -errno. */
int cs_send_run(int sock, const cs_run_header *header, const int *fds, int n_fds,
                const char *strings, size_t strings_len);

/* The most cgroup files init is handed to move itself in with (one a v1 hierarchy: memory,
 * pids, cpu, cpuacct). */
#define CS_MAX_JOIN_FILES 4

/* Releases a waiting init (its ids are mapped): one byte, with the `n` cgroup files it moves
 * itself in through (it writes "0" to each: cgroup v1's `tasks`; none when it was born in its
 * cgroup or was moved in by pid). 0 or -errno. */
int cs_send_go(int sock, const int *join_fds, int n);

/* Words for a stage: "mount", "pivot_root", ... */
const char *cs_stage_name(int stage);

/* Builds a seccomp BPF program with libseccomp and returns it in a malloc'ed buffer that the
 * caller frees with free() (seccomp.c).
 * The first half, permissive by default, refuses: the `deny` syscall names with `action`
 * (SCMP_ACT_*); with deny_clone_namespaces, clone() with any CLONE_NEW* flag; with
 * deny_tiocsti, ioctl(TIOCSTI/TIOCLINUX); socket() and socketpair() in any address family not
 * in `families` (AF_* numbers; AF_NETLINK only with protocol NETLINK_ROUTE) with EAFNOSUPPORT;
 * personality() with anything but a query (0xffffffff) or PER_LINUX, with `action`; clone3
 * with ENOSYS so that libc falls back to clone().
 * With allow_list, what the first half lets through then meets a second half that permits only
 * the `allow` names and answers every other syscall ENOSYS (so libc falls back): the two are
 * joined into one program (the first half's "allow" becomes a jump into the second).
 * With notify, every refusal but clone3's ENOSYS is SECCOMP_RET_USER_NOTIF instead (the caller
 * passes SCMP_ACT_NOTIFY as `action` too): the listener's holder answers each refused call with
 * its errno (or kills), and counts it. With notify 2 (a trial run), connect, open, openat and
 * openat2 are notifications too, which the holder lets through after reading their argument.
 * On failure returns NULL and writes a message. */
struct sock_filter *cs_build_seccomp(const char *const *deny, int n_deny, uint32_t action,
                                     int deny_clone_namespaces, int deny_tiocsti,
                                     const int *families, int n_families,
                                     int allow_list, const char *const *allow, int n_allow, int notify,
                                     size_t *out_len, char *errbuf, size_t errbuf_len);

/* ------------------------------------------------------------ refused calls (user notification) */

/* The message init sends the server on the control socket, with the program's seccomp listener
 * (SCM_RIGHTS), once the program has loaded its filter. */
#define CS_LISTENER_MAGIC 0x43534c4eu /* "CSLN" */

/* One refused call, as the supervisor received it (struct seccomp_notif, which Swift cannot
 * size portably). */
typedef struct cs_notification {
    uint64_t id;
    uint32_t pid;   /* in the receiver's pid namespace (the server's: a host pid) */
    int32_t nr;
    uint64_t args[6];
} cs_notification;

/* SECCOMP_IOCTL_NOTIF_RECV: 0, or -errno (EINTR, ENOENT: the caller went away). */
int cs_notification_receive(int listener, cs_notification *n);
/* SECCOMP_IOCTL_NOTIF_SEND: the call fails with `err` (> 0), or, with err == 0, is let through
 * as if never filtered (SECCOMP_USER_NOTIF_FLAG_CONTINUE: `policy learn`). 0 or -errno (ENOENT:
 * the caller went away, killed or interrupted). */
int cs_notification_answer(int listener, uint64_t id, int err);
/* SECCOMP_IOCTL_NOTIF_ID_VALID: whether the notification `id` still waits (its process has not
 * gone, so memory read from its pid was its own). */
int cs_notification_valid(int listener, uint64_t id);
/* Reads `len` bytes at `address` of process `pid` (process_vm_readv): bytes read, or -errno. */
ssize_t cs_read_process_memory(pid_t pid, uint64_t address, void *buf, size_t len);
/* Whether absolute `path` exists in the view of process `pid` (openat2 O_PATH under its
 * /proc/PID/root with RESOLVE_IN_ROOT and no magic links: nothing the sandbox planted can lead
 * outside its root). 0 when it exists, else -errno (-ENOENT: it does not). */
int cs_path_exists_in_root(pid_t pid, const char *path);
/* Receives the listener init sent on the control socket (non-blocking): the descriptor, -EAGAIN
 * when nothing is there yet, 0 when init closed the socket without one, or -errno. */
int cs_receive_listener(int control);
/* The name of syscall `nr` of this architecture (libseccomp), malloc'ed (the caller frees it),
 * or NULL when libseccomp does not know it. */
char *cs_syscall_name(int nr);

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
/* socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC); 0 or -errno. */
int cs_seqpacket_pair(int fds[2]);
/* The current thread's errno (Swift reads it right after the failing call). */
int cs_errno(void);

/* Whether this host lets a process create a user namespace: a forked child tries
 * unshare(CLONE_NEWUSER) and exits. Returns 0 when it worked, else the errno (of the child's
 * unshare, or of fork/waitpid). For diagnostics (`confine doctor`); the child runs only C. */
int cs_probe_user_namespace(void);

#endif
