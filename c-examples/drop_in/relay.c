/*
 * relay.c - a small program written the way KCP programs have been written
 * for years: C89, a fixed 10 ms tick, fields of the control block poked
 * directly, a custom allocator, the log hook. It knows nothing about Rust.
 *
 * Two sessions move a batch of text records through an in-memory pipe that
 * loses every fifth datagram and delivers the rest two ticks later:
 *   - "msg": message mode, one record per ikcp_send;
 *   - "stream": stream mode (kcp->stream = 1), records glued together.
 * It prints what arrived, the return values of a few calls made wrong on
 * purpose, the final values of the public struct fields, and hashes of every
 * byte put on the wire and of every log line. Built against upstream's ikcp.c
 * or against libkcp, it must print exactly the same thing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ikcp.h"

#define TICK 10
#define DELAY_TICKS 2
#define RECORDS 300
#define PIPE_SLOTS 4096

/* ---- a counting allocator, as many servers install ---- */
static long blocks_in_use = 0;

static void *counting_malloc(size_t size)
{
	blocks_in_use++;
	return malloc(size);
}

static void counting_free(void *ptr)
{
	if (ptr) blocks_in_use--;
	free(ptr);
}

/* ---- FNV-1a, to compare long byte streams in one line ---- */
static unsigned long fnv(unsigned long h, const char *data, int len)
{
	int i;
	for (i = 0; i < len; i++) {
		h ^= (unsigned char)data[i];
		h = (h * 16777619UL) & 0xffffffffUL;
	}
	return h;
}

/* ---- the pipe: fixed delay, every fifth datagram lost ---- */
struct datagram {
	IUINT32 due;
	int len;
	char data[1400];
};

struct pipe {
	struct datagram slots[PIPE_SLOTS];
	int head, count;
	unsigned long offered, wire_hash;
};

static IUINT32 current = 0;
static unsigned long log_lines = 0, log_hash = 2166136261UL;

static int pipe_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	struct pipe *p = (struct pipe *)user;
	struct datagram *d;
	p->offered++;
	p->wire_hash = fnv(p->wire_hash, buf, len);
	if (p->offered % 5 == 0 || p->count == PIPE_SLOTS) return 0;
	d = &p->slots[(p->head + p->count) % PIPE_SLOTS];
	d->due = current + DELAY_TICKS * TICK;
	d->len = len;
	memcpy(d->data, buf, len);
	p->count++;
	(void)kcp;
	return 0;
}

static void pipe_deliver(struct pipe *p, ikcpcb *to)
{
	while (p->count > 0 && (IINT32)(current - p->slots[p->head].due) >= 0) {
		ikcp_input(to, p->slots[p->head].data, p->slots[p->head].len);
		p->head = (p->head + 1) % PIPE_SLOTS;
		p->count--;
	}
}

static void write_log(const char *line, ikcpcb *kcp, void *user)
{
	log_lines++;
	log_hash = fnv(log_hash, line, (int)strlen(line));
	log_hash = fnv(log_hash, "\n", 1);
	(void)kcp;
	(void)user;
}

static void show_fields(const char *name, const ikcpcb *k)
{
	printf("%s fields: conv=%lu mtu=%lu mss=%lu state=%lu snd_una=%lu snd_nxt=%lu rcv_nxt=%lu\n", name,
	       (unsigned long)k->conv, (unsigned long)k->mtu, (unsigned long)k->mss, (unsigned long)k->state,
	       (unsigned long)k->snd_una, (unsigned long)k->snd_nxt, (unsigned long)k->rcv_nxt);
	printf("%s timing: srtt=%ld rttval=%ld rto=%ld minrto=%ld interval=%lu xmit=%lu\n", name,
	       (long)k->rx_srtt, (long)k->rx_rttval, (long)k->rx_rto, (long)k->rx_minrto,
	       (unsigned long)k->interval, (unsigned long)k->xmit);
	printf("%s window: snd_wnd=%lu rcv_wnd=%lu rmt_wnd=%lu cwnd=%lu ssthresh=%lu incr=%lu\n", name,
	       (unsigned long)k->snd_wnd, (unsigned long)k->rcv_wnd, (unsigned long)k->rmt_wnd,
	       (unsigned long)k->cwnd, (unsigned long)k->ssthresh, (unsigned long)k->incr);
}

static struct pipe up, down;

static int run(const char *name, int stream)
{
	ikcpcb *sender, *receiver;
	char record[256], got[8192];
	int sent = 0, ticks = 0, n, shown = 0;
	long bytes_sent = 0, bytes_got = 0;
	unsigned long got_hash = 2166136261UL, sent_hash = 2166136261UL;

	memset(&up, 0, sizeof up);
	memset(&down, 0, sizeof down);
	up.wire_hash = down.wire_hash = 2166136261UL;
	current = 0;

	sender = ikcp_create(0x0bad5eed, &up);
	receiver = ikcp_create(0x0bad5eed, &down);
	sender->output = pipe_output; /* the old way: no ikcp_setoutput */
	receiver->output = pipe_output;
	sender->writelog = write_log;
	sender->logmask = IKCP_LOG_OUTPUT | IKCP_LOG_INPUT | IKCP_LOG_IN_ACK | IKCP_LOG_OUT_DATA;
	sender->stream = stream;
	receiver->stream = stream;
	ikcp_nodelay(sender, 1, TICK, 2, 0);
	ikcp_nodelay(receiver, 1, TICK, 2, 0);
	sender->rx_minrto = 30;
	ikcp_wndsize(sender, 64, 64);
	ikcp_wndsize(receiver, 64, 64);
	ikcp_setmtu(sender, 1200);

	while (ticks < 5000) {
		/* the application writes a few records per tick */
		while (sent < RECORDS && sent < ticks * 3) {
			sprintf(record, "%s record %04d %.*s", name, sent, 5 + (sent * 13) % 180,
			        "the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog, "
			        "the quick brown fox jumps over the lazy dog, the quick brown fox jumps over the lazy dog.");
			n = (int)strlen(record);
			if (ikcp_send(sender, record, n) < 0) break;
			sent_hash = fnv(sent_hash, record, n);
			bytes_sent += n;
			sent++;
		}

		ikcp_update(sender, current);
		ikcp_update(receiver, current);
		pipe_deliver(&up, receiver);
		pipe_deliver(&down, sender);

		while ((n = ikcp_recv(receiver, got, sizeof got)) > 0) {
			if (shown < 3 && !stream) {
				printf("%s got: %.*s\n", name, n > 40 ? 40 : n, got);
				shown++;
			}
			got_hash = fnv(got_hash, got, n);
			bytes_got += n;
		}

		if (sent == RECORDS && bytes_got == bytes_sent && ikcp_waitsnd(sender) == 0) break;
		current += TICK;
		ticks++;
	}

	printf("%s: %d records, %ld bytes sent, %ld received, content %s, done after %d ticks\n", name, sent,
	       bytes_sent, bytes_got, got_hash == sent_hash ? "identical" : "DIFFERENT", ticks);
	printf("%s wire: %lu+%lu datagrams offered, hashes %08lx %08lx\n", name, up.offered, down.offered,
	       up.wire_hash, down.wire_hash);
	printf("%s check: next update at %lu, waitsnd %d, peeksize %d\n", name,
	       (unsigned long)(ikcp_check(sender, current) - current), ikcp_waitsnd(sender), ikcp_peeksize(receiver));
	show_fields(name, sender);
	show_fields(name, receiver);
	ikcp_release(sender);
	ikcp_release(receiver);
	return got_hash == sent_hash;
}

/* Calls made wrong on purpose: legacy code often depends on these return values. */
static void misuse(void)
{
	static char big[200 * 1400];
	char small[4];
	ikcpcb *k = ikcp_create(7, &up);
	ikcpcb *peer = ikcp_create(7, &down);
	ikcpcb *stranger = ikcp_create(9, &down);
	struct datagram *d = &up.slots[0];

	memset(&up, 0, sizeof up);
	k->output = pipe_output;
	current = 0;
	ikcp_update(k, current);

	printf("send of a message needing too many fragments: %d\n", ikcp_send(k, big, (int)sizeof big));
	printf("recv with nothing queued: %d\n", ikcp_recv(peer, small, sizeof small));
	printf("input of a runt datagram: %d\n", ikcp_input(peer, "short", 5));
	printf("setmtu(10): %d, mtu stays %lu\n", ikcp_setmtu(k, 10), (unsigned long)k->mtu);

	ikcp_send(k, "a message of 28 bytes, long.", 28);
	ikcp_flush(k);
	printf("one datagram of %d bytes on the wire, conv %lu\n", d->len, (unsigned long)ikcp_getconv(d->data));
	printf("input of it truncated: %d\n", ikcp_input(peer, d->data, d->len - 3));
	printf("input into another conversation: %d\n", ikcp_input(stranger, d->data, d->len));
	printf("input where it belongs: %d\n", ikcp_input(peer, d->data, d->len));
	printf("peeksize: %d, recv into 4 bytes: %d\n", ikcp_peeksize(peer), ikcp_recv(peer, small, sizeof small));

	ikcp_release(k);
	ikcp_release(peer);
	ikcp_release(stranger);
}

int main(void)
{
	int ok;
	ikcp_allocator(counting_malloc, counting_free);
	ok = run("msg", 0);
	ok &= run("stream", 1);
	misuse();
	printf("log: %lu lines, hash %08lx\n", log_lines, log_hash);
	printf("allocator: %s\n", blocks_in_use == 0 ? "every block returned" : "LEAKED");
	return ok && blocks_in_use == 0 ? 0 : 1;
}
