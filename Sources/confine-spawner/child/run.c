/* The run, as init receives it once its sandbox is ready (see child.h): argv, envp, rlimits,
 * kernel object ceilings and the delivered files, into memory init shares with the program's
 * waiting process. */
#define _GNU_SOURCE 1
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

cs_run_area *cs_run;
int cs_file_fds[CS_MAX_FILES];

/* Maps the shared run area (before the program's process is made, so that both see it; pages
 * are touched only as the run fills them). 0, or -1 with errno. */
int cs_map_run_area(void) {
    void *area = mmap(NULL, sizeof(cs_run_area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return -1;
    cs_run = area;
    return 0;
}

/* Receives the run: the header with the files' descriptors, then the strings, which are cut
 * into argv, envp, exec paths and file targets. Returns 0, 1 when the server closed the
 * socket without sending a run (a warm sandbox discarded), or -1 with errno. */
int cs_receive_run(int sock) {
    char control[CMSG_SPACE(sizeof(int) * CS_MAX_FILES)];
    cs_run_header *h = &cs_run->header;
    struct iovec iov;
    struct msghdr msg;
    cs_message_to_receive(&msg, &iov, h, sizeof *h, control, sizeof control);
    ssize_t r = cs_receive_message(sock, &msg);
    if (r == 0) return 1;
    if (r < 0) return -1;
    int n_fds = cs_message_descriptors(&msg, cs_file_fds, CS_MAX_FILES);
    if ((size_t)r < sizeof *h && cs_read_full(sock, (char *)h + r, sizeof *h - (size_t)r) != 0) return -1;
    uint32_t n_strings = h->n_argv + h->n_envp + h->n_exec_paths + h->n_files;
    /* Each list is NULL-terminated in cs_run->pointers: n_strings + 4 slots. */
    if (h->magic != CS_RUN_MAGIC || h->strings_bytes > sizeof cs_run->strings || n_strings + 4 > CS_MAX_POINTERS ||
        h->n_files > CS_MAX_FILES || (int)h->n_files != n_fds || h->n_rlimits > CS_MAX_RLIMITS) {
        errno = EPROTO;
        return -1;
    }
    if (cs_read_full(sock, cs_run->strings, h->strings_bytes) != 0) return -1;
    char *p = cs_run->strings, *end = cs_run->strings + h->strings_bytes;
    char **slot = cs_run->pointers;
    uint32_t counts[4] = {h->n_argv, h->n_envp, h->n_exec_paths, h->n_files};
    char ***lists[4] = {&cs_run->argv, &cs_run->envp, &cs_run->exec_paths, &cs_run->file_targets};
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
int cs_place_file(int i) {
    char dst[CS_PATH_MAX];
    if (cs_join(dst, "", cs_run->file_targets[i]) != 0 || cs_mkdirs(dst, 0) != 0) return -1;
    mode_t mode = cs_is_executable(&cs_run->header, (unsigned)i) ? 0555 : 0444;
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

/* Writes ceilings on per-user kernel objects into this user namespace's own /proc/sys/user/
 * (init is root there, with every capability): they bound what the program can hold of
 * inotify instances and watches, and forbid new namespaces, for this sandbox alone.
 * CS_USER_LIMIT_KEEP leaves one as it is. Returns -1 with errno and *index set on failure.
 * A ceiling the kernel does not have (ENOENT: an older kernel) is skipped only when the
 * value is 0 (nothing to allow). */
extern int cs_run_limit_fds[CS_USER_LIMIT_COUNT];
extern const uint64_t cs_no_namespaces[CS_USER_LIMIT_COUNT];

int cs_write_user_limits(const uint64_t values[CS_USER_LIMIT_COUNT], int *index) {
    for (int i = 0; i < CS_USER_LIMIT_COUNT; i++) {
        uint64_t v = values[i];
        if (v == CS_USER_LIMIT_KEEP) continue;
        int fd = cs_run_limit_fds[i] - 1;
        if ((fd >= 0 ? cs_write_decimal_fd(fd, v) : cs_write_decimal(cs_user_limit_files[i], v)) != 0) {
            if (errno == ENOENT && v == 0) continue;
            *index = i;
            return -1;
        }
    }
    return 0;
}

/* The ceilings a run may set (those `cs_no_namespaces` keeps), opened while the sandbox waits:
 * on the run's path they are written without a path lookup in /proc. Descriptor + 1; 0 when
 * not open (the path is used then, and says what failed). */
int cs_run_limit_fds[CS_USER_LIMIT_COUNT];

void cs_open_run_limits(void) {
    for (int i = 0; i < CS_USER_LIMIT_COUNT; i++) {
        if (cs_no_namespaces[i] != CS_USER_LIMIT_KEEP) continue;
        int fd = open(cs_user_limit_files[i], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) cs_run_limit_fds[i] = fd + 1;
    }
}

/* Before the run is known: no fanotify and no new namespaces of any kind, whatever the run. */
const uint64_t cs_no_namespaces[CS_USER_LIMIT_COUNT] = {
    [CS_USER_LIMIT_INOTIFY_INSTANCES] = CS_USER_LIMIT_KEEP,
    [CS_USER_LIMIT_INOTIFY_WATCHES] = CS_USER_LIMIT_KEEP,
};
