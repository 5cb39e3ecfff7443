/* A congestion controller for the 2.x lockstep tests, written against the
 * 2.x ikcp.h the way a C program would write one.
 *
 * Every hook appends one line to its endpoint's log: the hook, its
 * arguments, and the public fields it sees on entry (so a test compares
 * what each library shows its callbacks). Depending on the configuration
 * the hooks then steer cwnd, ssthresh and incr, return pacing budgets, and
 * call back into the API (through `struct cc_api`, never the ikcp_*
 * symbols: the test process links several implementations).
 *
 * The state of an endpoint is found through kcp->user, whose first member
 * is a pointer to it (the test's per-object record is laid out that way),
 * so hooks work whether or not `init` ran; `init` also stores it in
 * kcp->congest, as a real controller would. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ikcp.h"

/* The entry points of the implementation under test, for re-entry. */
struct cc_api {
	int (*send)(ikcpcb *kcp, const char *buf, int len);
	int (*waitsnd)(const ikcpcb *kcp);
	int (*peeksize)(const ikcpcb *kcp);
	int (*setcc)(ikcpcb *kcp, const struct IKCPOPS *ops);
	IUINT32 (*check)(const ikcpcb *kcp, IUINT32 current);
};

/* What a configuration asks for (bits of `steer` and `reenter`). */
#define CC_STEER_ACK        1u   /* on_ack: own window growth */
#define CC_STEER_FAST       2u   /* on_fast_retransmit: own reduction */
#define CC_STEER_TIMEOUT    4u   /* on_timeout: own collapse */
#define CC_STEER_TICK       8u   /* on_tick: nudge cwnd up and down */
#define CC_STEER_RTT       16u   /* on_rtt: ssthresh from the sample */
#define CC_STEER_INCR      32u   /* on_pkt_acked: move incr */
#define CC_STEER_ZERO      64u   /* on_tick: sometimes cwnd = 0 */

#define CC_REENTER_SEND     1u   /* on_app_limited: ikcp_send a few bytes */
#define CC_REENTER_QUERY    2u   /* on_pkt_acked / on_pkt_sent: waitsnd, peeksize, check */
#define CC_REENTER_RESTORE  4u   /* on_ack, every 5th: ikcp_setcc(kcp, NULL) */

/* Pacing modes. */
#define CC_PACE_NONE        0u   /* returns 0xffffffff: no limit */
#define CC_PACE_FIXED       1u   /* returns `budget` */
#define CC_PACE_BURST       2u   /* `budget` every 4th flush, else a little */
#define CC_PACE_ZERO        3u   /* returns 0 */

struct cc_state {
	const struct cc_api *api;
	int init_result;
	unsigned steer, reenter, pacing, budget;
	unsigned ticks, acks, calls;
	char *log;
	size_t len, cap;
};

struct cc_state *cc_state_new(const struct cc_api *api)
{
	struct cc_state *st = (struct cc_state *)calloc(1, sizeof *st);
	if (st) st->api = api;
	return st;
}

void cc_state_free(struct cc_state *st)
{
	if (st) free(st->log);
	free(st);
}

void cc_configure(struct cc_state *st, int init_result, unsigned steer,
	unsigned reenter, unsigned pacing, unsigned budget)
{
	st->init_result = init_result;
	st->steer = steer;
	st->reenter = reenter;
	st->pacing = pacing;
	st->budget = budget;
}

const char *cc_log_data(const struct cc_state *st) { return st->log; }
size_t cc_log_len(const struct cc_state *st) { return st->len; }
void cc_log_clear(struct cc_state *st) { st->len = 0; }

static struct cc_state *state_of(ikcpcb *kcp)
{
	return *(struct cc_state **)kcp->user;
}

static void say(struct cc_state *st, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0) return;
	if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
	if (st->len + (size_t)n + 1 > st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 4096;
		char *p;
		while (cap < st->len + (size_t)n + 1) cap *= 2;
		p = (char *)realloc(st->log, cap);
		if (!p) return;
		st->log = p;
		st->cap = cap;
	}
	memcpy(st->log + st->len, line, (size_t)n);
	st->len += (size_t)n;
	st->log[st->len++] = '\n';
}

/* The public fields a hook sees, appended to each line. */
static void say_fields(struct cc_state *st, ikcpcb *kcp, const char *what)
{
	say(st, "%s | cwnd=%u ssthresh=%u incr=%u snd_una=%u snd_nxt=%u nsnd_buf=%u "
		"nsnd_que=%u rmt_wnd=%u ackedlen=%u rto=%d srtt=%d xmit=%u current=%u "
		"congest=%s", what, (unsigned)kcp->cwnd, (unsigned)kcp->ssthresh,
		(unsigned)kcp->incr, (unsigned)kcp->snd_una, (unsigned)kcp->snd_nxt,
		(unsigned)kcp->nsnd_buf, (unsigned)kcp->nsnd_que, (unsigned)kcp->rmt_wnd,
		(unsigned)kcp->ackedlen, (int)kcp->rx_rto, (int)kcp->rx_srtt,
		(unsigned)kcp->xmit, (unsigned)kcp->current,
		kcp->congest == NULL ? "null" : kcp->congest == (void *)st ? "state" : "other");
}

static void query(struct cc_state *st, ikcpcb *kcp)
{
	if (!(st->reenter & CC_REENTER_QUERY)) return;
	say(st, "  waitsnd=%d peeksize=%d check=%u", st->api->waitsnd(kcp),
		st->api->peeksize(kcp), (unsigned)st->api->check(kcp, kcp->current));
}

int cc_init(ikcpcb *kcp)
{
	struct cc_state *st = state_of(kcp);
	st->calls++;
	say_fields(st, kcp, "init");
	if (st->init_result >= 0) kcp->congest = st;
	return st->init_result;
}

void cc_release(ikcpcb *kcp)
{
	struct cc_state *st = state_of(kcp);
	st->calls++;
	say_fields(st, kcp, "release");
	kcp->congest = NULL;
}

void cc_on_ack(ikcpcb *kcp, IUINT32 acked_segs, IUINT32 acked_bytes, IUINT32 prior_in_flight)
{
	struct cc_state *st = state_of(kcp);
	char what[96];
	st->calls++;
	st->acks++;
	sprintf(what, "on_ack %u %u %u", (unsigned)acked_segs, (unsigned)acked_bytes,
		(unsigned)prior_in_flight);
	say_fields(st, kcp, what);
	if (st->steer & CC_STEER_ACK) {
		/* Grows by the acknowledged segments up to a ceiling that moves. */
		IUINT32 ceiling = 4 + (st->acks * 7) % 61;
		IUINT32 next = kcp->cwnd + acked_segs;
		kcp->cwnd = next > ceiling ? ceiling : next;
		kcp->incr = kcp->cwnd * kcp->mss + acked_bytes % 97;
		if (kcp->ssthresh < kcp->cwnd / 2) kcp->ssthresh = kcp->cwnd / 2;
	}
	if ((st->reenter & CC_REENTER_RESTORE) && st->acks % 5 == 0) {
		say(st, "  setcc(NULL)=%d", st->api->setcc(kcp, NULL));
	}
}

void cc_on_fast_retransmit(ikcpcb *kcp, IUINT32 fast_retrans, IUINT32 inflight, IUINT32 prior_cwnd)
{
	struct cc_state *st = state_of(kcp);
	char what[96];
	st->calls++;
	sprintf(what, "on_fast_retransmit %u %u %u", (unsigned)fast_retrans,
		(unsigned)inflight, (unsigned)prior_cwnd);
	say_fields(st, kcp, what);
	if (st->steer & CC_STEER_FAST) {
		kcp->ssthresh = prior_cwnd * 7 / 10;
		if (kcp->ssthresh < 2) kcp->ssthresh = 2;
		kcp->cwnd = kcp->ssthresh + (fast_retrans > 3 ? 3 : fast_retrans);
		kcp->incr = kcp->cwnd * kcp->mss;
	}
}

void cc_on_timeout(ikcpcb *kcp, IUINT32 prior_cwnd)
{
	struct cc_state *st = state_of(kcp);
	char what[64];
	st->calls++;
	sprintf(what, "on_timeout %u", (unsigned)prior_cwnd);
	say_fields(st, kcp, what);
	if (st->steer & CC_STEER_TIMEOUT) {
		kcp->ssthresh = prior_cwnd > 4 ? prior_cwnd - 2 : 2;
		kcp->cwnd = 2;
		kcp->incr = 2 * kcp->mss;
	}
}

void cc_on_tick(ikcpcb *kcp)
{
	struct cc_state *st = state_of(kcp);
	st->calls++;
	st->ticks++;
	say_fields(st, kcp, "on_tick");
	if (st->steer & CC_STEER_TICK) {
		if (st->ticks % 3 == 0) kcp->cwnd += 1;
		else if (st->ticks % 3 == 1 && kcp->cwnd > 1) kcp->cwnd -= 1;
	}
	if ((st->steer & CC_STEER_ZERO) && st->ticks % 11 == 0) kcp->cwnd = 0;
}

void cc_on_app_limited(ikcpcb *kcp, IUINT32 inflight)
{
	struct cc_state *st = state_of(kcp);
	char what[64];
	st->calls++;
	sprintf(what, "on_app_limited %u", (unsigned)inflight);
	say_fields(st, kcp, what);
	if ((st->reenter & CC_REENTER_SEND) && st->ticks % 4 == 0) {
		say(st, "  send=%d", st->api->send(kcp, "app-limited", 11));
	}
}

void cc_on_rtt(ikcpcb *kcp, IINT32 rtt)
{
	struct cc_state *st = state_of(kcp);
	char what[64];
	st->calls++;
	sprintf(what, "on_rtt %d", (int)rtt);
	say_fields(st, kcp, what);
	if (st->steer & CC_STEER_RTT) {
		kcp->ssthresh = 2 + (IUINT32)(rtt < 0 ? 0 : rtt) % 30;
	}
}

void cc_on_pkt_sent(ikcpcb *kcp, IUINT32 sn, IUINT32 ts, IUINT32 len, IUINT32 inflight, IUINT32 xmit)
{
	struct cc_state *st = state_of(kcp);
	char what[128];
	st->calls++;
	sprintf(what, "on_pkt_sent %u %u %u %u %u", (unsigned)sn, (unsigned)ts,
		(unsigned)len, (unsigned)inflight, (unsigned)xmit);
	say_fields(st, kcp, what);
	query(st, kcp);
}

void cc_on_pkt_acked(ikcpcb *kcp, IUINT32 sn, IUINT32 ts, IUINT32 len, IINT32 rtt, IUINT32 xmit)
{
	struct cc_state *st = state_of(kcp);
	char what[128];
	st->calls++;
	sprintf(what, "on_pkt_acked %u %u %u %d %u", (unsigned)sn, (unsigned)ts,
		(unsigned)len, (int)rtt, (unsigned)xmit);
	say_fields(st, kcp, what);
	if (st->steer & CC_STEER_INCR) kcp->incr += len;
	query(st, kcp);
}

IUINT32 cc_get_info(ikcpcb *kcp, void *buf, IUINT32 bufsize)
{
	struct cc_state *st = state_of(kcp);
	int n = snprintf((char *)buf, bufsize, "calls=%u", st->calls);
	return n < 0 ? 0 : (IUINT32)n;
}

IUINT32 cc_pacing_rate(ikcpcb *kcp)
{
	struct cc_state *st = state_of(kcp);
	IUINT32 budget;
	st->calls++;
	switch (st->pacing) {
	case CC_PACE_FIXED: budget = st->budget; break;
	case CC_PACE_BURST: budget = st->ticks % 4 == 0 ? st->budget * 8 : st->budget / 4; break;
	case CC_PACE_ZERO: budget = 0; break;
	default: budget = 0xffffffffu; break;
	}
	{
		char what[64];
		sprintf(what, "pacing_rate -> %u", (unsigned)budget);
		say_fields(st, kcp, what);
	}
	return budget;
}
