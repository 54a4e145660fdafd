/* Small async-signal-safe helpers of init and the program (see child.h). */
#define _GNU_SOURCE 1
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

void cs_report_failure(int fd, int stage, int index, int err) {
    cs_report r = cs_failure_record(stage, index, err);
    (void)!write(fd, &r, sizeof r);
}

__attribute__((noreturn)) void cs_fail(int fd, int stage, int index) {
    cs_report_failure(fd, stage, index, errno);
    _exit(127);
}

/* dst = a + b, bounded; returns 0, or -1 when too long. */
int cs_join(char *dst, const char *a, const char *b) {
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
int cs_mkdirs(const char *path, int with_last) {
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

/* Reads exactly n bytes; 0, or -1 with errno (EPIPE at end-of-file). */
int cs_read_full(int fd, void *buf, size_t n) {
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

/* Writes `value` in decimal into an existing file (a sysctl); 0, or -1 with errno. */
int cs_write_decimal_fd(int fd, uint64_t value) {
    char digits[24];
    int n = 0;
    do {
        digits[sizeof digits - 1 - (size_t)n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && n < (int)sizeof digits);
    ssize_t w = pwrite(fd, digits + sizeof digits - (size_t)n, (size_t)n, 0);
    if (w != n) {
        if (w >= 0) errno = EIO;
        return -1;
    }
    return 0;
}

int cs_write_decimal(const char *path, uint64_t value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    int r = cs_write_decimal_fd(fd, value);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

void cs_reset_signals(void) {
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

int cs_close_from(unsigned int first) {
    if (syscall(SYS_close_range, first, ~0U, 0) == 0) return 0;
    struct rlimit rl;
    unsigned long max = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max)
        max = rl.rlim_cur;
    for (unsigned long fd = first; fd < max; fd++) close((int)fd);
    return 0;
}
