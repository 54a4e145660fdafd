/*
 * The seccomp program of a policy, compiled in the server with libseccomp (parent side: it
 * allocates). The instructions travel to the spawner inside each spawn request.
 */
#define _GNU_SOURCE 1
#include "csandbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

struct sock_filter *cs_build_seccomp(const char *const *deny, int n_deny, uint32_t action,
                                     int deny_clone_namespaces, int deny_tiocsti,
                                     size_t *out_len, char *errbuf, size_t errbuf_len) {
    struct sock_filter *result = NULL;
    int memfd = -1;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        snprintf(errbuf, errbuf_len, "seccomp_init failed");
        return NULL;
    }
    int rc;
    for (int i = 0; i < n_deny; i++) {
        int nr = seccomp_syscall_resolve_name(deny[i]);
        if (nr == __NR_SCMP_ERROR) {
            snprintf(errbuf, errbuf_len, "unknown system call \"%s\"", deny[i]);
            goto out;
        }
        if (nr < 0) continue; /* not on this architecture */
        if ((rc = seccomp_rule_add(ctx, action, nr, 0)) != 0) {
            snprintf(errbuf, errbuf_len, "seccomp rule for %s: %s", deny[i], strerror(-rc));
            goto out;
        }
    }
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0) {
        snprintf(errbuf, errbuf_len, "seccomp rule for clone3: %s", strerror(-rc));
        goto out;
    }
    if (deny_clone_namespaces) {
        static const uint64_t ns_flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                            CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP,
#ifdef CLONE_NEWTIME
                                            CLONE_NEWTIME,
#else
                                            0x00000080,
#endif
        };
        for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++) {
            rc = seccomp_rule_add(ctx, action, SCMP_SYS(clone), 1,
                                  SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
            if (rc != 0) {
                snprintf(errbuf, errbuf_len, "seccomp rule for clone flags: %s", strerror(-rc));
                goto out;
            }
        }
    }
    if (deny_tiocsti) {
        static const uint64_t cmds[] = {TIOCSTI, TIOCLINUX};
        for (size_t i = 0; i < 2; i++) {
            rc = seccomp_rule_add(ctx, action, SCMP_SYS(ioctl), 1,
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffULL, cmds[i]));
            if (rc != 0) {
                snprintf(errbuf, errbuf_len, "seccomp rule for ioctl: %s", strerror(-rc));
                goto out;
            }
        }
    }
    /* libseccomp 2.5 exports BPF only to a descriptor: a memfd, read back. */
    memfd = (int)syscall(SYS_memfd_create, "confine-seccomp", MFD_CLOEXEC);
    if (memfd < 0) {
        snprintf(errbuf, errbuf_len, "memfd_create: %s", strerror(errno));
        goto out;
    }
    if ((rc = seccomp_export_bpf(ctx, memfd)) != 0) {
        snprintf(errbuf, errbuf_len, "seccomp_export_bpf: %s", strerror(-rc));
        goto out;
    }
    off_t size = lseek(memfd, 0, SEEK_END);
    if (size <= 0 || size % sizeof(struct sock_filter) != 0 ||
        size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        snprintf(errbuf, errbuf_len, "seccomp program has an unexpected size (%lld bytes)", (long long)size);
        goto out;
    }
    result = malloc((size_t)size);
    if (!result || pread(memfd, result, (size_t)size, 0) != size) {
        snprintf(errbuf, errbuf_len, "reading the seccomp program back: %s", strerror(errno));
        free(result);
        result = NULL;
        goto out;
    }
    *out_len = (size_t)size / sizeof(struct sock_filter);
out:
    if (memfd >= 0) close(memfd);
    seccomp_release(ctx);
    return result;
}
