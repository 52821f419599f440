/* Socket helpers for tests that play the peer of the engine (a fake
 * enclave the gateway's pool connects to): a loopback listener and
 * reading whole frames.  127.0.0.1 only, every read bounded in time. */
#ifndef SOCKUTIL_H
#define SOCKUTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads exactly n bytes within 5 s each.  0 or -1. */
static inline int tu_read_n(int fd, unsigned char *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd pf = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&pf, 1, 5000) != 1 || (r = recv(fd, b + got, n - got, 0)) <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* One frame (4-byte big-endian length, then the body) off fd: the body,
 * malloc'd and NUL-terminated, or NULL. */
static inline char *tu_read_frame(int fd)
{
    unsigned char hdr[4];
    char *got;
    size_t len;
    if (tu_read_n(fd, hdr, 4) != 0)
        return NULL;
    len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 |
          hdr[3];
    if ((got = calloc(1, len + 1)) != NULL &&
        tu_read_n(fd, (unsigned char *)got, len) != 0) {
        free(got);
        got = NULL;
    }
    return got;
}

/* A listening socket on 127.0.0.1 (an ephemeral port, in *port); -1 on
 * failure. */
static inline int tu_listen_local(int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Accepts one connection on lfd within 5 s: its fd, or -1. */
static inline int tu_accept_within(int lfd)
{
    struct pollfd pf = {lfd, POLLIN, 0};
    if (poll(&pf, 1, 5000) != 1)
        return -1;
    return accept(lfd, NULL, NULL);
}

#endif
