/*
 * The child side of a sandbox launch: init (pid 1 of the run's pid namespace) and the program
 * it starts. EVERYTHING in this folder runs after clone() and must stay async-signal-safe:
 * raw system calls, stack buffers and static memory copied from the spawner at clone() time;
 * no malloc, no stdio, no locks, no errno-dependent library state beyond the calling thread's.
 * The spawner (../) prepares a cs_config in its own memory before each clone().
 */
#ifndef CONFINE_SPAWNER_CHILD_H
#define CONFINE_SPAWNER_CHILD_H

#include "csandbox.h"

#include <stddef.h>
#include <sys/types.h>

/* One entry of the mount plan, in the spawner's memory (copied into init by clone()). */
typedef struct cs_mount {
    int kind;
    int is_dir;           /* BIND_RO: the source is a directory */
    const char *source;
    const char *target;
    const char *data;
} cs_mount;

/* What init needs before the run is known: the policy's sandbox and its descriptors. */
typedef struct cs_config {
    int clone_flags;         /* CLONE_NEW* set at clone() (masked to the namespace bits) */
    int unshare_cgroup;      /* unshare(CLONE_NEWCGROUP) once the server placed us in our cgroup */
    int loopback_up;         /* bring `lo` up in the new network namespace */
    int pdeathsig;           /* signal sent to init when the server's spawning thread exits */

    /* Descriptors (spawner numbering); init maps stdin/stdout/stderr to 0/1/2. */
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int control_fd;          /* a stream socket: one byte when the ids are mapped and the cgroup
                              * joined, then the run (cs_run_header ...); EOF = never mind */
    int report_fd;           /* write end of the report pipe (cs_report records) */

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
    int seccomp_early;       /* loaded while the program waits for its run (CS_SPAWN_SECCOMP_EARLY) */
    int seccomp_notify;      /* loaded with a listener, handed up to the server (CS_SPAWN_SECCOMP_NOTIFY) */
} cs_config;

/* Where init keeps its descriptors, from its first instructions on. */
#define CS_FD_REPORT 3
#define CS_FD_CONTROL 4

/* init's entry point (clone()'s fn): never returns. */
int cs_init_main(void *arg);

/* A setup failure's record for the report pipe (written by cs_report_failure, or raw by the
 * program's process, which may not touch errno). */
static inline cs_report cs_failure_record(int stage, int index, int err) {
    cs_report r = {0};
    r.kind = CS_REPORT_SETUP_FAILED;
    r.stage = stage;
    r.index = index;
    r.err = err;
    return r;
}

/* util.c */
void cs_report_failure(int fd, int stage, int index, int err);
__attribute__((noreturn)) void cs_fail(int fd, int stage, int index);
int cs_join(char *dst, const char *a, const char *b);
int cs_mkdirs(const char *path, int with_last);
int cs_read_full(int fd, void *buf, size_t n);
int cs_write_decimal(const char *path, uint64_t value);
/* The same through an open descriptor (written at offset 0). */
int cs_write_decimal_fd(int fd, uint64_t value);
void cs_reset_signals(void);
int cs_close_from(unsigned int first);

/* root.c */
void cs_prepare_root(const cs_config *c);
void cs_finish_root(const cs_config *c);
int cs_loopback_up(void);

/* run.c: the run as init receives it, in memory shared with the program's process (made
 * before the run is known, it reads what init received once init tells it to go). */
typedef struct cs_run_area {
    cs_run_header header;
    char **argv, **envp, **exec_paths, **file_targets; /* lists in `pointers`, NULL-terminated */
    char *pointers[CS_MAX_POINTERS];
    char strings[CS_MAX_STRINGS_BYTES];
} cs_run_area;
extern cs_run_area *cs_run;
extern int cs_file_fds[CS_MAX_FILES];
int cs_map_run_area(void);

/* program.c: the program's process, made while the sandbox waits (pid 2). It arms itself
 * (session, capabilities, no_new_privs, the filter when early) and waits on `go_fd` for
 * one byte (init keeps `init_end`); then rlimits, the filter when not early, execve.
 * A filter loaded with a listener (seccomp_notify) sends it to init on `go_fd` at once (one
 * byte, 'L', with the descriptor) and closes its own copy. Returns its pid or -1. */
pid_t cs_prepare_program(const cs_config *c, int go_fd, int init_end);

/* init.c: the program's listener, received on the go socket and sent to the server on the
 * control socket; nothing when the program ended first (it reported why). 0, or -1 with errno. */
int cs_forward_listener(int go_end, int control);

#define CS_PATH_MAX 4096

#endif
