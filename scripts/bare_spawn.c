/*
 * The bare baseline of the end-to-end benchmark: COUNT runs of a program, PARALLEL at a time,
 * each a plain posix_spawn + waitpid (no sandbox, no server), output to /dev/null.
 *
 *   bare_spawn PARALLEL COUNT PROGRAM [ARGS...]
 *
 * Prints one line: "<runs/s> <CPU ms per run of the programs>" (their user + system time).
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bare_spawn PARALLEL COUNT PROGRAM [ARGS...]\n");
        return 64;
    }
    int parallel = atoi(argv[1]), count = atoi(argv[2]), started = 0, done = 0;
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", 1, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (done < count) {
        while (started < count && started - done < parallel) {
            pid_t pid;
            if (posix_spawn(&pid, argv[3], &quiet, NULL, argv + 3, environ) != 0) {
                perror("posix_spawn");
                return 1;
            }
            started++;
        }
        int status;
        if (wait(&status) < 0) { perror("wait"); return 1; }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { fprintf(stderr, "bare_spawn: a run failed\n"); return 1; }
        done++;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    double cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    printf("%.1f %.3f\n", count / seconds, cpu_ms / count);
    return 0;
}
