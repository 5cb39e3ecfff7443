/*
 * lossy_link_demo.c - why KCP exists, in one table.
 *
 *   lossy_link_demo [-r rtt_ms] [-j jitter_ms] [-l loss_percent] [-n messages] [-g gap_ms] [-s seed]
 *
 * Two KCP endpoints talk through a simulated link inside this process: each
 * datagram is delayed by rtt/2 plus or minus a random jitter and dropped with
 * the given probability. Endpoint A sends a message every gap_ms, B echoes it,
 * and A measures how long each round trip took. The same traffic, with the
 * same random seed, is replayed with three KCP settings:
 *
 *   default  what ikcp_create() gives: 100 ms ticks, conservative retransmission
 *   normal   40 ms ticks, otherwise default
 *   fast     ikcp_nodelay(kcp, 1, 10, 2, 1): 10 ms ticks, fast resend after two
 *            duplicate acknowledgements, no congestion window, quicker timeouts
 *
 * Time is virtual (the loop jumps from one event to the next, using
 * ikcp_check() to learn when KCP wants to run), so the demo takes milliseconds
 * and prints the same numbers on every run and machine.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ikcp.h"

#define MAX_MESSAGE 1200
#define TIME_LIMIT_MS (30u * 60u * 1000u) /* virtual; a run that needs more is reported as stalled */

struct options {
    int rtt, jitter, loss_percent, messages, gap;
    unsigned long long seed;
};

/* A datagram in flight, in a list sorted by arrival time. */
struct packet {
    IUINT32 arrive_at;
    int len;
    struct packet *next;
    char data[1500];
};

struct link {
    struct packet *head;
    const struct options *opt;
    unsigned long long *rng;
    unsigned long sent; /* datagrams handed to the link, lost or not */
    IUINT32 *now;
};

/* splitmix64: tiny, seedable, and the same everywhere. */
static unsigned long long next_random(unsigned long long *state)
{
    unsigned long long z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The output callback: KCP hands us a datagram, the link may lose or delay it. */
static int link_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
    struct link *link = (struct link *)user;
    struct packet *p, **at;
    int delay;
    (void)kcp;

    link->sent++;
    if ((int)(next_random(link->rng) % 100) < link->opt->loss_percent)
        return 0;
    delay = link->opt->rtt / 2;
    if (link->opt->jitter > 0)
        delay += (int)(next_random(link->rng) % (unsigned)(2 * link->opt->jitter + 1)) - link->opt->jitter;
    if (delay < 0)
        delay = 0;

    p = (struct packet *)malloc(sizeof *p);
    if (p == NULL || len > (int)sizeof p->data) {
        free(p);
        return -1;
    }
    p->arrive_at = *link->now + (IUINT32)delay;
    p->len = len;
    memcpy(p->data, buf, (size_t)len);
    /* Keep arrival order; jitter means datagrams may overtake each other. */
    for (at = &link->head; *at && (IINT32)((*at)->arrive_at - p->arrive_at) <= 0; at = &(*at)->next)
        ;
    p->next = *at;
    *at = p;
    return 0;
}

/* Hands every datagram that has arrived by now to the receiving endpoint. */
static void deliver(struct link *link, ikcpcb *to, IUINT32 now)
{
    while (link->head && (IINT32)(link->head->arrive_at - now) <= 0) {
        struct packet *p = link->head;
        link->head = p->next;
        ikcp_input(to, p->data, p->len);
        free(p);
    }
}

static void drain(struct link *link)
{
    while (link->head) {
        struct packet *p = link->head;
        link->head = p->next;
        free(p);
    }
}

static int message_size(int seq)
{
    return 8 + (seq * 37) % (MAX_MESSAGE - 8);
}

static void fill_message(char *buf, int seq)
{
    int i, size = message_size(seq);
    memcpy(buf, &seq, sizeof seq);
    for (i = (int)sizeof seq; i < size; i++)
        buf[i] = (char)(seq + i);
}

struct mode {
    const char *name;
    int nodelay, interval, resend, nc;
};

struct result {
    double avg_rtt;
    IUINT32 max_rtt;
    int echoed;
    unsigned long datagrams;
};

/* Earliest of two future times (KCP time wraps, so compare differences). */
static IUINT32 earliest(IUINT32 now, IUINT32 a, IUINT32 b)
{
    return (IINT32)(a - now) < (IINT32)(b - now) ? a : b;
}

static int run(const struct options *opt, const struct mode *mode, struct result *res)
{
    static char buf[MAX_MESSAGE], expected[MAX_MESSAGE];
    unsigned long long rng = opt->seed;
    IUINT32 now = 0, next_send = 0, *sent_at;
    struct link a_to_b = {0}, b_to_a = {0};
    ikcpcb *a, *b;
    int sent = 0, n, ok = 1;
    unsigned long long rtt_sum = 0;

    memset(res, 0, sizeof *res);
    sent_at = (IUINT32 *)calloc((size_t)opt->messages, sizeof *sent_at);
    a_to_b.opt = b_to_a.opt = opt;
    a_to_b.rng = b_to_a.rng = &rng;
    a_to_b.now = b_to_a.now = &now;

    a = ikcp_create(0x11223344, &a_to_b);
    b = ikcp_create(0x11223344, &b_to_a);
    if (!sent_at || !a || !b) {
        fprintf(stderr, "lossy_link_demo: out of memory\n");
        ok = 0;
        goto out;
    }
    ikcp_setoutput(a, link_output);
    ikcp_setoutput(b, link_output);
    if (strcmp(mode->name, "default") != 0) {
        ikcp_nodelay(a, mode->nodelay, mode->interval, mode->resend, mode->nc);
        ikcp_nodelay(b, mode->nodelay, mode->interval, mode->resend, mode->nc);
        ikcp_wndsize(a, 128, 128);
        ikcp_wndsize(b, 128, 128);
    }
    if (mode->nodelay) {
        /* As upstream suggests for the fastest setting: retransmit timeouts may go below 30 ms. */
        a->rx_minrto = 10;
        b->rx_minrto = 10;
    }
    ikcp_update(a, now);
    ikcp_update(b, now);

    while (res->echoed < opt->messages) {
        IUINT32 next;

        /* A's application: one new message every gap ms. */
        while (sent < opt->messages && (IINT32)(next_send - now) <= 0) {
            fill_message(buf, sent);
            ikcp_send(a, buf, message_size(sent));
            sent_at[sent++] = now;
            next_send += (IUINT32)opt->gap;
        }

        deliver(&a_to_b, b, now);
        deliver(&b_to_a, a, now);
        ikcp_update(a, now);
        ikcp_update(b, now);

        /* B's application echoes everything; A checks and times the echoes. */
        while ((n = ikcp_recv(b, buf, sizeof buf)) >= 0)
            ikcp_send(b, buf, n);
        while ((n = ikcp_recv(a, buf, sizeof buf)) >= 0) {
            IUINT32 rtt = now - sent_at[res->echoed];
            fill_message(expected, res->echoed);
            if (n != message_size(res->echoed) || memcmp(buf, expected, (size_t)n) != 0) {
                fprintf(stderr, "lossy_link_demo: %s: echo %d is wrong\n", mode->name, res->echoed);
                ok = 0;
                goto out;
            }
            rtt_sum += rtt;
            if (rtt > res->max_rtt)
                res->max_rtt = rtt;
            res->echoed++;
        }

        /* Jump to the next thing that can happen: an arrival, a send, or a KCP timer. */
        next = earliest(now, ikcp_check(a, now), ikcp_check(b, now));
        if (sent < opt->messages)
            next = earliest(now, next, next_send);
        if (a_to_b.head)
            next = earliest(now, next, a_to_b.head->arrive_at);
        if (b_to_a.head)
            next = earliest(now, next, b_to_a.head->arrive_at);
        now = (IINT32)(next - now) > 0 ? next : now + 1;
        if (now > TIME_LIMIT_MS)
            break; /* the link is too bad to finish; report what we have */
    }
    res->datagrams = a_to_b.sent + b_to_a.sent;
    res->avg_rtt = res->echoed ? (double)rtt_sum / res->echoed : 0.0;

out:
    drain(&a_to_b);
    drain(&b_to_a);
    if (a)
        ikcp_release(a);
    if (b)
        ikcp_release(b);
    free(sent_at);
    return ok;
}

static int parse_int(const char *text, int min, int max, int *out)
{
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < min || v > max)
        return -1;
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct mode modes[] = {
        {"default", 0, 100, 0, 0},
        {"normal", 0, 40, 0, 0},
        {"fast", 1, 10, 2, 1},
    };
    struct options opt = {100, 10, 10, 300, 100, 1};
    int c, bad = 0, seed = 1;
    size_t i;

    while ((c = getopt(argc, argv, "r:j:l:n:g:s:")) != -1) {
        switch (c) {
        case 'r': bad |= parse_int(optarg, 0, 10000, &opt.rtt); break;
        case 'j': bad |= parse_int(optarg, 0, 10000, &opt.jitter); break;
        case 'l': bad |= parse_int(optarg, 0, 100, &opt.loss_percent); break;
        case 'n': bad |= parse_int(optarg, 1, 1000000, &opt.messages); break;
        case 'g': bad |= parse_int(optarg, 1, 10000, &opt.gap); break;
        case 's': bad |= parse_int(optarg, 0, 0x7fffffff, &seed); opt.seed = (unsigned long long)seed; break;
        default: bad = 1;
        }
    }
    if (bad || optind != argc) {
        fprintf(stderr, "usage: %s [-r rtt_ms] [-j jitter_ms] [-l loss_percent] [-n messages] [-g gap_ms] [-s seed]\n",
                argv[0]);
        return 2;
    }

    printf("simulated link: rtt %d ms, jitter +-%d ms, loss %d%%; %d echoed messages, one every %d ms; seed %llu\n\n",
           opt.rtt, opt.jitter, opt.loss_percent, opt.messages, opt.gap, opt.seed);
    printf("%-8s %-28s %12s %12s %10s\n", "mode", "ikcp_nodelay(...)", "avg rtt", "max rtt", "datagrams");
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct result res;
        char settings[64];
        if (!run(&opt, &modes[i], &res))
            return 1;
        snprintf(settings, sizeof settings, "%d, %d, %d, %d%s", modes[i].nodelay, modes[i].interval, modes[i].resend,
                 modes[i].nc, i == 0 ? " (untouched)" : "");
        if (res.echoed < opt.messages)
            printf("%-8s %-28s   stalled: %d of %d messages echoed in %u s\n", modes[i].name, settings, res.echoed,
                   opt.messages, TIME_LIMIT_MS / 1000);
        else
            printf("%-8s %-28s %9.1f ms %9u ms %10lu\n", modes[i].name, settings, res.avg_rtt, (unsigned)res.max_rtt,
                   res.datagrams);
    }
    return 0;
}
