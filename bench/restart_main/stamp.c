#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <string.h>
/* stamp DIR TAG: writes CLOCK_MONOTONIC at main() into DIR/TAG.<pid>, then sleeps */
int main(int argc, char **argv) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    char path[512], buf[64];
    snprintf(path, sizeof path, "%s/%s.%d", argv[1], argv[2], getpid());
    int n = snprintf(buf, sizeof buf, "%ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
    int fd = open(path, O_WRONLY|O_CREAT|O_TRUNC, 0644); write(fd, buf, n); close(fd);
    for (;;) pause();
}
