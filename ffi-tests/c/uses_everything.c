/* Uses every declaration of ikcp.h; compiled (not run) under many language
 * standards with warnings as errors. Valid as C89 and as C++98. With
 * -DIKCP_USES_V2 it also uses what the 2.x header adds. */
#include "ikcp.h"

struct item {
	int value;
	struct IQUEUEHEAD node;
};

static int on_output(const char *buf, int len, ikcpcb *kcp, void *user)
{
	(void)buf; (void)kcp; (void)user;
	return len;
}

static void on_log(const char *line, struct IKCPCB *kcp, void *user)
{
	(void)line; (void)kcp; (void)user;
}

#ifdef IKCP_USES_V2
static int cc_init(ikcpcb *kcp) { kcp->congest = kcp; return 0; }
static void cc_release(ikcpcb *kcp) { kcp->congest = NULL; }
static void cc_on_ack(ikcpcb *kcp, IUINT32 segs, IUINT32 bytes, IUINT32 prior)
{
	kcp->cwnd += segs + bytes / (kcp->mss ? kcp->mss : 1) + prior * 0 + kcp->ackedlen * 0;
}
static void cc_on_fast_retransmit(ikcpcb *kcp, IUINT32 n, IUINT32 inflight, IUINT32 prior)
{
	kcp->ssthresh = (inflight + n + prior) / 2;
}
static void cc_on_timeout(ikcpcb *kcp, IUINT32 prior) { kcp->ssthresh = prior / 2; }
static void cc_on_tick(ikcpcb *kcp) { kcp->incr = kcp->cwnd * kcp->mss; }
static void cc_on_app_limited(ikcpcb *kcp, IUINT32 inflight) { (void)kcp; (void)inflight; }
static void cc_on_rtt(ikcpcb *kcp, IINT32 rtt) { (void)kcp; (void)rtt; }
static void cc_on_pkt_sent(ikcpcb *kcp, IUINT32 sn, IUINT32 ts, IUINT32 len,
	IUINT32 inflight, IUINT32 xmit)
{
	(void)kcp; (void)sn; (void)ts; (void)len; (void)inflight; (void)xmit;
}
static void cc_on_pkt_acked(ikcpcb *kcp, IUINT32 sn, IUINT32 ts, IUINT32 len,
	IINT32 rtt, IUINT32 xmit)
{
	(void)kcp; (void)sn; (void)ts; (void)len; (void)rtt; (void)xmit;
}
static IUINT32 cc_get_info(ikcpcb *kcp, void *buf, IUINT32 size)
{
	(void)kcp; (void)buf;
	return size;
}
static IUINT32 cc_pacing_rate(ikcpcb *kcp) { return kcp->mss * 4; }

/* Positional, as C89 and C++98 need. */
static const struct IKCPOPS cc_ops = {
	"example", cc_init, cc_release, cc_on_ack, cc_on_fast_retransmit,
	cc_on_timeout, cc_on_tick, cc_on_app_limited, cc_on_rtt, cc_on_pkt_sent,
	cc_on_pkt_acked, cc_get_info, cc_pacing_rate
};
#endif

static void *my_malloc(size_t size) { return malloc(size); }
static void my_free(void *ptr) { free(ptr); }

int main(void)
{
	char buf[64] = { 0 };
	IUINT32 conv = 1, now = 0;
	IINT32 signed32 = -1;
	IUINT16 u16 = 0; IINT16 i16 = 0; IUINT8 u8 = 0; IINT8 i8 = 0;
	IINT64 i64 = 0; IUINT64 u64 = 0;
	struct item it;
	iqueue_head list;
	struct IQUEUEHEAD *pos;
	ikcpcb *kcp;
	int sum = 0;

	IQUEUE_INIT(&list);
	it.value = 3;
	iqueue_add_tail(&it.node, &list);
	iqueue_foreach_entry(pos, &list) {
		sum += iqueue_entry(pos, struct item, node)->value;
	}
	iqueue_del_init(&it.node);

	ikcp_allocator(my_malloc, my_free);
	kcp = ikcp_create(conv, NULL);
	ikcp_setoutput(kcp, on_output);
	kcp->output = on_output;
	kcp->writelog = on_log;
	kcp->logmask = IKCP_LOG_OUTPUT | IKCP_LOG_INPUT | IKCP_LOG_SEND | IKCP_LOG_RECV
		| IKCP_LOG_IN_DATA | IKCP_LOG_IN_ACK | IKCP_LOG_IN_PROBE | IKCP_LOG_IN_WINS
		| IKCP_LOG_OUT_DATA | IKCP_LOG_OUT_ACK | IKCP_LOG_OUT_PROBE | IKCP_LOG_OUT_WINS;
	kcp->stream = 1;
	kcp->rx_minrto = 10;
	ikcp_nodelay(kcp, 1, 10, 2, 1);
	ikcp_interval(kcp, 20);
	ikcp_wndsize(kcp, 64, 128);
	ikcp_setmtu(kcp, 1200);
#ifdef IKCP_USES_V2
	sum += ikcp_setcc(kcp, &cc_ops) + (kcp->ccops == &cc_ops) + (kcp->congest != NULL);
	sum += (int)cc_ops.get_info(kcp, buf, 4) + (cc_ops.name[0] == 'e');
#endif
	ikcp_send(kcp, buf, (int)sizeof buf);
	ikcp_update(kcp, now);
	ikcp_flush(kcp);
	now = ikcp_check(kcp, now);
	ikcp_input(kcp, buf, (long)sizeof buf);
	sum += ikcp_peeksize(kcp) + ikcp_recv(kcp, buf, (int)sizeof buf) + ikcp_waitsnd(kcp);
	ikcp_log(kcp, IKCP_LOG_OUTPUT, "%s %d", "sum", sum);
	conv = ikcp_getconv(buf) + kcp->nsnd_que + kcp->state;
#ifdef IKCP_USES_V2
	sum += ikcp_setcc(kcp, NULL);
#endif
	ikcp_release(kcp);
	ikcp_allocator(NULL, NULL);
	return (int)(conv + now + (IUINT32)signed32 + u16 + i16 + u8 + i8 + (int)i64 + (int)u64 + sum) & 0;
}
