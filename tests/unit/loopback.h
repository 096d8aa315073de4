/*
 * loopback.h - a listening socket on 127.0.0.1 for the unit tests that talk
 * to a real peer (test_upstream.c, test_h1client.c, test_readpause.c,
 * test_writesoon.c).
 */
#ifndef PRISM_TEST_LOOPBACK_H
#define PRISM_TEST_LOOPBACK_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket listening on 127.0.0.1 at a port the kernel picks (stored in
 * *port; 0 on failure), or -1. */
static inline int listen_on_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    *port = 0;
    if (fd < 0) {
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(addr.sin_port);
    return fd;
}

/* A TCP connection over 127.0.0.1, both ends blocking sockets: *client the
 * connecting end, *server the accepted one. 0, or -1 with neither open. */
static inline int connected_on_loopback(int *client, int *server)
{
    int port;
    int lfd = listen_on_loopback(&port);
    if (lfd < 0) {
        return -1;
    }
    *client = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (*client < 0 || connect(*client, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        (*server = accept(lfd, NULL, NULL)) < 0) {
        if (*client >= 0) {
            close(*client);
        }
        close(lfd);
        return -1;
    }
    close(lfd);
    return 0;
}

#endif
