/*
 * udp_echo_client.c - sends numbered messages to udp_echo_server over KCP and
 * checks that each comes back intact and in order.
 *
 *   udp_echo_client port [messages [conv]]
 *
 * Talks to 127.0.0.1:port only. Message sizes vary from a few bytes to several
 * KCP segments, so fragmentation and reassembly are exercised too. At most
 * WINDOW messages are in flight; each echo releases the next one. When every
 * echo is back it says goodbye ('B'), waits for the goodbye echo, prints a
 * summary with the round-trip times and exits 0. Anything wrong (corrupt or
 * out-of-order echo, no progress within the deadline) exits 1.
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

#define WINDOW 16         /* messages in flight */
#define MAX_MESSAGE 5000  /* larger than one segment: some messages are fragmented */
#define DEADLINE_MS 30000 /* the whole exchange, generous even under valgrind */

static unsigned long long clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000u + (unsigned long long)ts.tv_nsec / 1000u;
}

/* KCP time: a wrapping 32-bit millisecond counter. */
static IUINT32 clock_ms(void)
{
    return (IUINT32)(clock_us() / 1000u);
}

static int udp_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
    int fd = *(int *)user;
    (void)kcp;
    /* A lost datagram is KCP's business (it retransmits), not ours. */
    if (send(fd, buf, (size_t)len, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED)
        perror("send");
    return 0;
}

/* Message seq: 'D', the 4-byte sequence number, then a pattern derived from seq. */
static int message_size(unsigned long seq)
{
    return 5 + (int)((seq * 7919u) % (MAX_MESSAGE - 5));
}

static void fill_message(char *buf, unsigned long seq)
{
    int i, size = message_size(seq);
    IUINT32 s = (IUINT32)seq;
    buf[0] = 'D';
    memcpy(buf + 1, &s, 4);
    for (i = 5; i < size; i++)
        buf[i] = (char)((seq * 31u + (unsigned)i) & 0xff);
}

int main(int argc, char **argv)
{
    static char msg[MAX_MESSAGE], expected[MAX_MESSAGE], dgram[2048];
    static unsigned long long sent_us[WINDOW];
    unsigned long total = 500, conv = 0x4b435031, sent = 0, echoed = 0, bytes = 0;
    unsigned long long rtt_sum = 0, rtt_max = 0, start;
    int fd, port, n, goodbye_sent = 0, goodbye_back = 0, status = 1;
    struct sockaddr_in server;
    ikcpcb *kcp;

    if (argc < 2 || argc > 4 || (port = atoi(argv[1])) <= 0 || port > 65535 ||
        (argc > 2 && (total = strtoul(argv[2], NULL, 10)) == 0) ||
        (argc > 3 && (conv = strtoul(argv[3], NULL, 0)) == 0)) {
        fprintf(stderr, "usage: %s port [messages [conv]]\n", argv[0]);
        return 2;
    }

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    server.sin_port = htons((unsigned short)port);
    /* connect() fixes the peer: send() goes there and datagrams from others are dropped. */
    if (fd < 0 || connect(fd, (struct sockaddr *)&server, sizeof server) != 0) {
        perror("udp_echo_client: socket");
        return 1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    kcp = ikcp_create((IUINT32)conv, &fd);
    ikcp_setoutput(kcp, udp_output);
    ikcp_nodelay(kcp, 1, 10, 2, 1);
    ikcp_wndsize(kcp, 128, 128);
    ikcp_update(kcp, clock_ms());

    start = clock_us();
    while (!goodbye_back) {
        IUINT32 now = clock_ms();
        IINT32 wait;
        struct pollfd pfd;

        if (clock_us() - start > DEADLINE_MS * 1000ull) {
            fprintf(stderr, "udp_echo_client: no answer within %d s (%lu of %lu echoes)\n", DEADLINE_MS / 1000,
                    echoed, total);
            goto done;
        }

        /* Keep WINDOW messages in flight, then say goodbye once all are back. */
        while (sent < total && sent - echoed < WINDOW) {
            fill_message(msg, sent);
            sent_us[sent % WINDOW] = clock_us();
            if (ikcp_send(kcp, msg, message_size(sent)) < 0) {
                fprintf(stderr, "udp_echo_client: ikcp_send failed\n");
                goto done;
            }
            sent++;
        }
        if (echoed == total && !goodbye_sent) {
            ikcp_send(kcp, "Bye", 3);
            goodbye_sent = 1;
        }
        ikcp_flush(kcp);

        /* Sleep until a datagram arrives or KCP needs ikcp_update (at most the deadline). */
        wait = (IINT32)(ikcp_check(kcp, now) - now);
        pfd.fd = fd;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, wait < 0 ? 0 : wait) < 0 && errno != EINTR) {
            perror("poll");
            goto done;
        }
        while ((n = (int)recv(fd, dgram, sizeof dgram, 0)) >= 0)
            ikcp_input(kcp, dgram, n);
        ikcp_update(kcp, clock_ms());

        while ((n = ikcp_recv(kcp, msg, sizeof msg)) >= 0) {
            unsigned long long rtt;
            if (n > 0 && msg[0] == 'B') {
                goodbye_back = 1;
                break;
            }
            fill_message(expected, echoed);
            if (n != message_size(echoed) || memcmp(msg, expected, (size_t)n) != 0) {
                fprintf(stderr, "udp_echo_client: echo %lu is wrong (%d bytes, expected %d)\n", echoed, n,
                        message_size(echoed));
                goto done;
            }
            rtt = clock_us() - sent_us[echoed % WINDOW];
            rtt_sum += rtt;
            if (rtt > rtt_max)
                rtt_max = rtt;
            bytes += (unsigned long)n;
            echoed++;
        }
    }
    /* Acknowledge the goodbye echo right away so the server can leave. */
    ikcp_flush(kcp);
    printf("udp_echo_client: %lu messages, %lu bytes echoed, rtt avg %.3f ms, max %.3f ms\n", echoed, bytes,
           (double)rtt_sum / (double)echoed / 1000.0, (double)rtt_max / 1000.0);
    status = 0;

done:
    ikcp_release(kcp);
    close(fd);
    return status;
}
