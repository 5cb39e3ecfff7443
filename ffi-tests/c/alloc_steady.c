/* Counts what a KCP library asks of the C allocator, seen from a C program.
 *
 * The program defines malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc and memalign itself, so every allocation of the library it
 * is linked with (ikcp.c compiled in, or a shared libkcp, Rust's own
 * allocations included) goes through these counters.
 *
 * Two endpoints, fast mode, window WINDOW, 1 KB messages, a link that holds
 * each datagram for 5 ms (1 ms ticks) and drops LOSS percent of them in a
 * fixed pattern. After a warm-up of WARM_MB the allocations made while
 * moving the next MEASURE_MB are counted. Then, on a fresh pair, WINDOW
 * messages are sent with the link cut (the peer's window taken as WINDOW),
 * and the bytes that came into use are divided by WINDOW: memory per
 * in-flight segment.
 *
 * usage: alloc_steady WINDOW LOSS_PERCENT WARM_MB MEASURE_MB
 * prints: steady_allocations N segments N in_flight_bytes_per_segment N
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ikcp.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t size);

static unsigned long long calls;
static long long live_bytes;

static void *counted(void *p)
{
	if (p) {
		calls++;
		live_bytes += (long long)malloc_usable_size(p);
	}
	return p;
}

void *malloc(size_t size) { return counted(__libc_malloc(size)); }
void *calloc(size_t n, size_t size) { return counted(__libc_calloc(n, size)); }
void free(void *p)
{
	if (p)
		live_bytes -= (long long)malloc_usable_size(p);
	__libc_free(p);
}
void *realloc(void *p, size_t size)
{
	if (p)
		live_bytes -= (long long)malloc_usable_size(p);
	return counted(__libc_realloc(p, size));
}
void *memalign(size_t align, size_t size) { return counted(__libc_memalign(align, size)); }
void *aligned_alloc(size_t align, size_t size) { return memalign(align, size); }
int posix_memalign(void **out, size_t align, size_t size)
{
	void *p = memalign(align, size);
	if (!p)
		return 12; /* ENOMEM */
	*out = p;
	return 0;
}

#define LATENCY 5
#define SLOTS 65536
#define MSG 1024

struct datagram {
	unsigned due;
	int len;
	char bytes[1500];
};

/* One direction of the link: a ring of fixed slots, so the harness itself
 * allocates nothing once started. */
struct line {
	struct datagram *ring;
	unsigned head, count, seq, loss;
	ikcpcb *to;
};

static unsigned now;
static int cut;

static int output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct line *l = user;
	struct datagram *d;
	(void)kcp;
	if (cut || len > 1500)
		return 0;
	l->seq++;
	if (l->loss && (l->seq * 2654435761u) % 100 < l->loss)
		return 0;
	if (l->count == SLOTS) {
		fprintf(stderr, "link full\n");
		exit(2);
	}
	d = &l->ring[(l->head + l->count) % SLOTS];
	d->due = now + LATENCY;
	d->len = len;
	memcpy(d->bytes, buf, (size_t)len);
	l->count++;
	return 0;
}

static void deliver(struct line *l)
{
	while (l->count && (int)(l->ring[l->head].due - now) <= 0) {
		struct datagram *d = &l->ring[l->head];
		ikcp_input(l->to, d->bytes, d->len);
		l->head = (l->head + 1) % SLOTS;
		l->count--;
	}
}

static ikcpcb *endpoint(struct line *out, int window)
{
	ikcpcb *k = ikcp_create(7, out);
	ikcp_setoutput(k, output);
	ikcp_nodelay(k, 1, 10, 2, 1);
	ikcp_wndsize(k, window, window);
	return k;
}

/* Moves `messages` messages from a to b, every byte checked. */
static void transfer(ikcpcb *a, ikcpcb *b, struct line *ab, struct line *ba,
		     int window, unsigned messages, unsigned *sent, unsigned *got)
{
	static char msg[MSG], in[MSG];
	unsigned goal = *got + messages;
	while (*got < goal) {
		while (*sent < goal && ikcp_waitsnd(a) < 2 * window) {
			memset(msg, (int)(*sent & 0xff), MSG);
			memcpy(msg, sent, sizeof(*sent));
			ikcp_send(a, msg, MSG);
			(*sent)++;
		}
		now++;
		ikcp_update(a, now);
		ikcp_update(b, now);
		deliver(ab);
		deliver(ba);
		for (;;) {
			unsigned n;
			int r = ikcp_recv(b, in, MSG);
			if (r < 0)
				break;
			memcpy(&n, in, sizeof(n));
			if (r != MSG || n != *got || in[MSG - 1] != (char)(n & 0xff)) {
				fprintf(stderr, "message %u corrupt\n", *got);
				exit(2);
			}
			(*got)++;
		}
	}
}

int main(int argc, char **argv)
{
	int window, loss;
	unsigned warm, measure, sent = 0, got = 0;
	unsigned long long before;
	long long idle;
	struct line ab, ba;
	ikcpcb *a, *b;
	int i;

	if (argc != 5) {
		fprintf(stderr, "usage: %s WINDOW LOSS WARM_MB MEASURE_MB\n", argv[0]);
		return 2;
	}
	window = atoi(argv[1]);
	loss = atoi(argv[2]);
	warm = (unsigned)atoi(argv[3]) * 1024;
	measure = (unsigned)atoi(argv[4]) * 1024;

	memset(&ab, 0, sizeof(ab));
	memset(&ba, 0, sizeof(ba));
	ab.ring = __libc_malloc(sizeof(struct datagram) * SLOTS);
	ba.ring = __libc_malloc(sizeof(struct datagram) * SLOTS);
	ab.loss = ba.loss = (unsigned)loss;
	a = endpoint(&ab, window);
	b = endpoint(&ba, window);
	ab.to = b;
	ba.to = a;
	transfer(a, b, &ab, &ba, window, warm, &sent, &got);
	before = calls;
	transfer(a, b, &ab, &ba, window, measure, &sent, &got);
	printf("steady_allocations %llu segments %u", calls - before, measure);
	ikcp_release(a);
	ikcp_release(b);

	/* Memory per in-flight segment, on a fresh pair. */
	a = endpoint(&ab, window);
	b = endpoint(&ba, window);
	ab.to = b;
	ba.to = a;
	a->rmt_wnd = (IUINT32)window; /* as if the peer had said so */
	ikcp_update(a, now);
	cut = 1;
	idle = live_bytes;
	{
		static char msg[MSG];
		for (i = 0; i < window; i++)
			ikcp_send(a, msg, MSG);
	}
	now += 10;
	ikcp_update(a, now);
	if ((int)a->nsnd_buf != window) {
		fprintf(stderr, "expected %d segments in flight\n", window);
		return 2;
	}
	printf(" in_flight_bytes_per_segment %lld\n", (live_bytes - idle) / window);
	ikcp_release(a);
	ikcp_release(b);
	return 0;
}
