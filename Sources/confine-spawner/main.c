/*
 * confine-spawner: the small process every sandbox is born from.
 *
 * `confine serve` (and `confine run`, and any program using the Sandbox library) starts it by
 * exec, never as a fork of the grown server, with a SOCK_SEQPACKET socket as descriptor 3:
 *
 *     confine-spawner --uid UID --gid GID --parent PID
 *
 * It holds no secrets, no tokens, no database: only what each spawn request carries. As root
 * it raises its own per-user ceilings (each sandbox gets its own, set by init), then drops to
 * UID/GID for good — the unprivileged host user that owns every sandbox's user namespace, so
 * that the per-user kernel counters of sandboxes (inotify instances, message queues, queued
 * signals, ...) are charged to that user and never to host root. It answers with a hello
 * (ready, or the stage and errno that stop it), then serves spawn requests one at a time
 * until the server closes the socket. It dies with the server (parent-death signal).
 */
#define _GNU_SOURCE 1
#include "csandbox.h"
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void cs_hello(int stage, int err) {
    cs_spawner_hello h;
    memset(&h, 0, sizeof h);
    h.magic = CS_SPAWNER_MAGIC;
    h.version = CS_SPAWNER_VERSION;
    h.pid = getpid();
    h.err = err;
    h.stage = stage;
    h.uid = geteuid();
    h.gid = getegid();
    (void)!send(CS_SPAWNER_FD, &h, sizeof h, MSG_NOSIGNAL);
}

__attribute__((noreturn)) static void cs_refuse(int stage) {
    cs_hello(stage, errno ? errno : EPERM);
    _exit(70);
}

static long cs_number(const char *text, const char *flag) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !end || *end || v < 0) {
        fprintf(stderr, "confine-spawner: %s needs a number, not \"%s\"\n", flag, text);
        exit(64);
    }
    return v;
}

static int cs_probe_child(void *arg) {
    (void)arg;
    _exit(0);
}

static char cs_probe_stack[16 * 1024] __attribute__((aligned(16)));

/* Makes, as the spawner's uid, the namespaces every sandbox gets: whether this host lets it. */
static int cs_probe_namespaces(void) {
    int flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
    pid_t pid = clone(cs_probe_child, cs_probe_stack + sizeof cs_probe_stack, flags | SIGCHLD, NULL);
    if (pid < 0) return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    long uid = -1, gid = -1, parent = -1;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--uid") == 0) uid = cs_number(argv[++i], "--uid");
        else if (i + 1 < argc && strcmp(argv[i], "--gid") == 0) gid = cs_number(argv[++i], "--gid");
        else if (i + 1 < argc && strcmp(argv[i], "--parent") == 0) parent = cs_number(argv[++i], "--parent");
        else {
            fprintf(stderr, "confine-spawner: unknown argument \"%s\"; usage: confine-spawner --uid UID --gid GID --parent PID\n", argv[i]);
            return 64;
        }
    }
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(CS_SPAWNER_FD, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
        fprintf(stderr, "confine-spawner: descriptor 3 is not a SOCK_SEQPACKET socket — this program is started by "
                        "confine serve / confine run (the Sandbox library), not by hand\n");
        return 64;
    }
    if (uid == 0 || gid == 0) {
        errno = EPERM;
        cs_refuse(CS_STAGE_SPAWNER_PRIVILEGES);
    }
    /* Nothing inherited beyond the socket; not in the terminal's process group (Ctrl-C there
     * reaches the server, never the spawner or a sandbox). */
    (void)syscall(SYS_close_range, CS_SPAWNER_FD + 1, ~0U, 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC); /* the server's stdin and stdout are not ours */
    if (null >= 0) {
        (void)dup2(null, 0);
        (void)dup2(null, 1);
        close(null);
    }
    (void)setsid();
    signal(SIGPIPE, SIG_IGN);

    /* The sum over every sandbox of the per-user objects that are rlimits (queued signals,
     * message queue bytes, processes) is checked against the spawner's own limits at the time
     * each sandbox is made; each sandbox's own ceiling is its program's rlimit (set by init).
     * Raised as far as allowed (unlimited with CAP_SYS_RESOURCE, else up to the hard limit),
     * so that the spawner's are not the bottleneck. */
    int resources[] = {RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE, RLIMIT_NPROC};
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++) {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        if (setrlimit(resources[i], &rl) == 0) continue;
        if (getrlimit(resources[i], &rl) != 0) cs_refuse(CS_STAGE_SPAWNER_RLIMITS);
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(resources[i], &rl) != 0) cs_refuse(CS_STAGE_SPAWNER_RLIMITS);
    }
    if (geteuid() == 0) {
        if (uid > 0 && gid > 0) {
            if (setgroups(0, NULL) != 0 || setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0 ||
                setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0)
                cs_refuse(CS_STAGE_SPAWNER_PRIVILEGES);
            if (setresuid(0, 0, 0) == 0) { /* must be gone for good */
                errno = EPERM;
                cs_refuse(CS_STAGE_SPAWNER_PRIVILEGES);
            }
        }
    }
    /* Changing ids cleared the parent-death signal: set it again, then check the server is
     * still the parent (it may have died in between). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) cs_refuse(CS_STAGE_SPAWNER_PRIVILEGES);
    if (parent > 0 && getppid() != (pid_t)parent) return 0;
    /* Not readable or traceable by other processes of its uid; no way back to privileges. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);

    if (cs_probe_namespaces() != 0) cs_refuse(CS_STAGE_SPAWNER_PROBE);
    cs_hello(0, 0);
    for (;;) {
        int r = cs_serve_one(CS_SPAWNER_FD);
        if (r == 0) return 0;
        if (r < 0 && errno != EINTR) return 1;
    }
}
