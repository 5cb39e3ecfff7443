/* Two KCP endpoints over an in-memory link, driven only through the ikcp_*
 * functions, so that the same source measures any library with that ABI:
 * build it against ikcp.c or against our libkcp (scripts/bench-capi.sh).
 *
 * The link has a fixed one-way latency in 1 ms ticks and drops a given
 * percentage of datagrams (both directions, a fixed pseudo-random pattern).
 * Fast mode (nodelay 1, interval 10, resend 2, no congestion window) as in
 * KCP's README. Every message carries its number and a fixed pattern; every byte
 * is checked (message number and content). Prints CPU seconds of the transfer (the process's own user +
 * system time) and what it moved.
 *
 * usage: capi_link WINDOW LOSS_PERCENT MEGABYTES [MSG_BYTES] [LATENCY_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "ikcp.h"

struct packet {
	struct packet *next;
	IUINT32 due;
	int len;
	char data[1500];
};

struct line {
	struct packet *head, *tail, *free;
	IUINT32 latency;
	unsigned loss;
	unsigned long long rng;
	unsigned long long offered;
};

static struct packet *take(struct line *l)
{
	struct packet *p = l->free;
	if (p) {
		l->free = p->next;
		return p;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		perror("malloc");
		exit(2);
	}
	return p;
}

static unsigned percent(struct line *l)
{
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	return (unsigned)(l->rng % 100);
}

static IUINT32 now_ms;

static int output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct line *l = user;
	struct packet *p;
	(void)kcp;
	if (len > (int)sizeof(p->data)) {
		fprintf(stderr, "datagram of %d bytes\n", len);
		exit(2);
	}
	l->offered += (unsigned long long)len;
	if (l->loss && percent(l) < l->loss)
		return 0;
	p = take(l);
	p->next = NULL;
	p->due = now_ms + l->latency;
	p->len = len;
	memcpy(p->data, buf, (size_t)len);
	if (l->tail)
		l->tail->next = p;
	else
		l->head = p;
	l->tail = p;
	return 0;
}

static void deliver(struct line *l, ikcpcb *to)
{
	while (l->head && (IINT32)(now_ms - l->head->due) >= 0) {
		struct packet *p = l->head;
		l->head = p->next;
		if (!l->head)
			l->tail = NULL;
		ikcp_input(to, p->data, p->len);
		p->next = l->free;
		l->free = p;
	}
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static ikcpcb *endpoint(struct line *out, int window)
{
	ikcpcb *k = ikcp_create(0x11223344, out);
	if (!k) {
		fprintf(stderr, "ikcp_create failed\n");
		exit(2);
	}
	ikcp_setoutput(k, output);
	ikcp_wndsize(k, window, window);
	ikcp_nodelay(k, 1, 10, 2, 1);
	return k;
}

int main(int argc, char **argv)
{
	int window, msg, i;
	unsigned loss;
	unsigned long long total, sent = 0, checked = 0;
	IUINT32 latency;
	struct line ab, ba;
	ikcpcb *a, *b;
	char *out, *in, *pattern;
	unsigned long long next = 0, expect = 0;
	double start, cpu;

	if (argc < 4) {
		fprintf(stderr, "usage: %s WINDOW LOSS_PERCENT MEGABYTES [MSG_BYTES] [LATENCY_MS]\n", argv[0]);
		return 2;
	}
	window = atoi(argv[1]);
	loss = (unsigned)atoi(argv[2]);
	total = (unsigned long long)atoi(argv[3]) << 20;
	msg = argc > 4 ? atoi(argv[4]) : 8192;
	latency = argc > 5 ? (IUINT32)atoi(argv[5]) : 5;

	memset(&ab, 0, sizeof(ab));
	memset(&ba, 0, sizeof(ba));
	ab.latency = ba.latency = latency;
	ab.loss = ba.loss = loss;
	ab.rng = 0x9e3779b97f4a7c15ULL;
	ba.rng = 0x2545f4914f6cdd1dULL;
	a = endpoint(&ab, window);
	b = endpoint(&ba, window);
	if (msg < 16) {
		fprintf(stderr, "MSG_BYTES must be at least 16\n");
		return 2;
	}
	out = malloc((size_t)msg);
	in = malloc((size_t)msg + 1);
	pattern = malloc((size_t)msg);
	if (!out || !in || !pattern)
		return 2;
	/* Every message is this pattern with its number in its first and last
	 * 8 bytes, so that checking one is a memcmp plus two numbers. */
	for (i = 0; i < msg; i++)
		pattern[i] = (char)(percent(&ab) + i);
	memcpy(out, pattern, (size_t)msg);

	start = cpu_seconds();
	while (checked < total) {
		now_ms++;
		deliver(&ab, b);
		deliver(&ba, a);
		while (sent < total && ikcp_waitsnd(a) < 2 * window) {
			memcpy(out, &next, 8);
			memcpy(out + msg - 8, &next, 8);
			next++;
			if (ikcp_send(a, out, msg) < 0) {
				fprintf(stderr, "ikcp_send failed\n");
				return 1;
			}
			sent += (unsigned long long)msg;
		}
		ikcp_update(a, now_ms);
		ikcp_update(b, now_ms);
		for (;;) {
			int n = ikcp_recv(b, in, msg + 1);
			if (n < 0)
				break;
			if (n != msg) {
				fprintf(stderr, "message of %d bytes, want %d\n", n, msg);
				return 1;
			}
			if (memcmp(in, &expect, 8) != 0 || memcmp(in + n - 8, &expect, 8) != 0 ||
			    memcmp(in + 8, pattern + 8, (size_t)n - 16) != 0) {
				fprintf(stderr, "message %llu differs\n", expect);
				return 1;
			}
			expect++;
			checked += (unsigned long long)n;
		}
		if (now_ms > 100000000u) {
			fprintf(stderr, "no progress\n");
			return 1;
		}
	}
	cpu = cpu_seconds() - start;
	printf("window %d loss %u%% %llu bytes in %.0f ms simulated, %llu bytes offered, cpu %.4f s, %.3f us/segment\n",
	       window, loss, checked, (double)now_ms, ab.offered + ba.offered, cpu,
	       cpu * 1e6 / ((double)checked / 1376.0));
	ikcp_release(a);
	ikcp_release(b);
	return 0;
}
