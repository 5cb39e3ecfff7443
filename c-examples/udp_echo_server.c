/*
 * udp_echo_server.c - a KCP echo server over one UDP socket on 127.0.0.1.
 *
 *   udp_echo_server [port [idle_timeout_s]]
 *
 * port 0 (the default) lets the kernel pick a free port; the first line on
 * stdout says which one, so a script can start several servers at once.
 *
 * One client at a time: the first datagram that looks like KCP fixes the
 * client's address and, through ikcp_getconv(), the conversation id. Every
 * message is echoed back. A message starting with 'B' (goodbye) is echoed,
 * then the server waits until the client has acknowledged everything and
 * exits 0. With no datagram for idle_timeout_s seconds it exits 1.
 *
 * The loop sleeps in poll() for exactly as long as ikcp_check() allows, so an
 * idle connection costs no CPU.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ikcp.h"

#define KCP_HEADER_SIZE 24 /* every KCP datagram starts with a 24-byte header */
#define MAX_MESSAGE (64 * 1024)
#define LINGER_MS 3000 /* how long to wait for the last acknowledgements */

static IUINT32 clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* KCP time is a wrapping 32-bit millisecond counter; only differences matter. */
    return (IUINT32)((unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u);
}

/* KCP calls this for every datagram it wants on the wire. */
static int udp_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
    int fd = *(int *)user;
    (void)kcp;
    /* UDP may drop; KCP retransmits, so a failed send is not fatal. */
    if (send(fd, buf, (size_t)len, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED)
        perror("send");
    return 0;
}

/* A whole decimal number in [min, max], or -1. */
static long parse_number(const char *text, long min, long max)
{
    char *end;
    long v = strtol(text, &end, 10);
    return (*text == '\0' || *end != '\0' || v < min || v > max) ? -1 : v;
}

int main(int argc, char **argv)
{
    long port = 0, idle_timeout_s = 10, idle_timeout_ms;
    int fd;
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof addr;
    ikcpcb *kcp = NULL;
    static char buf[MAX_MESSAGE];
    unsigned long messages = 0, bytes = 0;
    IUINT32 last_heard, goodbye_at = 0;
    int said_goodbye = 0, status = 1;

    if (argc > 1)
        port = parse_number(argv[1], 0, 65535);
    if (argc > 2)
        idle_timeout_s = parse_number(argv[2], 1, 3600);
    if (argc > 3 || port < 0 || idle_timeout_s < 0) {
        fprintf(stderr, "usage: %s [port [idle_timeout_s]]\n", argv[0]);
        return 2;
    }
    idle_timeout_ms = idle_timeout_s * 1000;

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("bind");
        close(fd);
        return 1;
    }
    /* Non-blocking, so we can drain every queued datagram after poll(). */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    printf("udp_echo_server: listening on 127.0.0.1:%u\n", ntohs(addr.sin_port));
    fflush(stdout);

    last_heard = clock_ms();
    for (;;) {
        IUINT32 now = clock_ms();
        int timeout, n;
        struct pollfd pfd;

        if (said_goodbye && (ikcp_waitsnd(kcp) == 0 || (IINT32)(now - goodbye_at) >= LINGER_MS)) {
            status = 0;
            break;
        }
        if ((IINT32)(now - last_heard) >= idle_timeout_ms) {
            fprintf(stderr, "udp_echo_server: no datagram for %ld s, giving up\n", idle_timeout_ms / 1000);
            break;
        }

        /* Sleep until KCP has work to do (a flush, a retransmission) or the idle deadline. */
        timeout = (int)(idle_timeout_ms - (IINT32)(now - last_heard));
        if (kcp) {
            IINT32 due = (IINT32)(ikcp_check(kcp, now) - now);
            if (due < timeout)
                timeout = due < 0 ? 0 : due;
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }

        for (;;) {
            struct sockaddr_in from;
            socklen_t from_len = sizeof from;
            n = (int)recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
            if (n < 0)
                break;
            if (n < KCP_HEADER_SIZE)
                continue; /* not KCP */
            if (kcp == NULL) {
                /* First contact: adopt the client's conversation id and address. */
                kcp = ikcp_create(ikcp_getconv(buf), &fd);
                if (kcp == NULL || connect(fd, (struct sockaddr *)&from, from_len) != 0) {
                    perror("udp_echo_server: accepting client");
                    goto done;
                }
                ikcp_setoutput(kcp, udp_output);
                ikcp_nodelay(kcp, 1, 10, 2, 1); /* low-latency settings */
                ikcp_wndsize(kcp, 128, 128);
                ikcp_update(kcp, clock_ms());
                printf("udp_echo_server: client %s:%u, conv %u\n", inet_ntoa(from.sin_addr),
                       ntohs(from.sin_port), (unsigned)ikcp_getconv(buf));
                fflush(stdout);
            }
            last_heard = clock_ms();
            ikcp_input(kcp, buf, n); /* datagrams of another conv are refused by KCP itself */
        }
        if (kcp == NULL)
            continue;

        ikcp_update(kcp, clock_ms());
        while ((n = ikcp_recv(kcp, buf, sizeof buf)) >= 0) {
            if (n > 0 && buf[0] == 'B' && !said_goodbye) {
                said_goodbye = 1;
                goodbye_at = clock_ms();
            } else {
                messages++;
                bytes += (unsigned long)n;
            }
            ikcp_send(kcp, buf, n);
        }
        /* Send echoes and acknowledgements now rather than at the next interval. */
        ikcp_flush(kcp);
    }

done:
    if (kcp) {
        /* rx_srtt is a field of the public IKCPCB struct, as in upstream. */
        printf("udp_echo_server: %lu messages, %lu bytes echoed, smoothed rtt %d ms, %s\n", messages, bytes,
               (int)kcp->rx_srtt, said_goodbye ? "client said goodbye" : "no goodbye");
        ikcp_release(kcp);
    } else {
        printf("udp_echo_server: no client\n");
    }
    close(fd);
    return status;
}
