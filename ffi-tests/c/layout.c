/* Prints the size of every public type and the offset of every field of the
 * public structs, so two headers can be compared line by line. Built with
 * -DIKCP_LAYOUT_V2 for a 2.x header (ackedlen, ccops, congest, IKCPOPS). */
#include <stdio.h>
#include <stddef.h>
#include "ikcp.h"

#define SIZE(T) printf("sizeof %s %lu\n", #T, (unsigned long)sizeof(T))
#define FIELD(S, F) printf("offsetof %s.%s %lu size %lu\n", #S, #F, \
	(unsigned long)offsetof(struct S, F), (unsigned long)sizeof(((struct S *)0)->F))

int main(void)
{
	SIZE(IUINT32); SIZE(IINT32); SIZE(IUINT16); SIZE(IINT16); SIZE(IUINT8);
	SIZE(IINT8); SIZE(IINT64); SIZE(IUINT64); SIZE(ikcpcb); SIZE(iqueue_head);
	SIZE(struct IKCPCB); SIZE(struct IKCPSEG); SIZE(struct IQUEUEHEAD);

	FIELD(IQUEUEHEAD, next); FIELD(IQUEUEHEAD, prev);

	FIELD(IKCPSEG, node); FIELD(IKCPSEG, conv); FIELD(IKCPSEG, cmd);
	FIELD(IKCPSEG, frg); FIELD(IKCPSEG, wnd); FIELD(IKCPSEG, ts);
	FIELD(IKCPSEG, sn); FIELD(IKCPSEG, una); FIELD(IKCPSEG, len);
	FIELD(IKCPSEG, resendts); FIELD(IKCPSEG, rto); FIELD(IKCPSEG, fastack);
	FIELD(IKCPSEG, xmit); FIELD(IKCPSEG, data);

	FIELD(IKCPCB, conv); FIELD(IKCPCB, mtu); FIELD(IKCPCB, mss);
	FIELD(IKCPCB, state); FIELD(IKCPCB, snd_una); FIELD(IKCPCB, snd_nxt);
	FIELD(IKCPCB, rcv_nxt); FIELD(IKCPCB, ts_recent); FIELD(IKCPCB, ts_lastack);
	FIELD(IKCPCB, ssthresh); FIELD(IKCPCB, rx_rttval); FIELD(IKCPCB, rx_srtt);
	FIELD(IKCPCB, rx_rto); FIELD(IKCPCB, rx_minrto); FIELD(IKCPCB, snd_wnd);
	FIELD(IKCPCB, rcv_wnd); FIELD(IKCPCB, rmt_wnd); FIELD(IKCPCB, cwnd);
	FIELD(IKCPCB, probe); FIELD(IKCPCB, current); FIELD(IKCPCB, interval);
	FIELD(IKCPCB, ts_flush); FIELD(IKCPCB, xmit); FIELD(IKCPCB, nrcv_buf);
	FIELD(IKCPCB, nsnd_buf); FIELD(IKCPCB, nrcv_que); FIELD(IKCPCB, nsnd_que);
	FIELD(IKCPCB, nodelay); FIELD(IKCPCB, updated); FIELD(IKCPCB, ts_probe);
	FIELD(IKCPCB, probe_wait); FIELD(IKCPCB, dead_link); FIELD(IKCPCB, incr);
	FIELD(IKCPCB, snd_queue); FIELD(IKCPCB, rcv_queue); FIELD(IKCPCB, snd_buf);
	FIELD(IKCPCB, rcv_buf); FIELD(IKCPCB, acklist); FIELD(IKCPCB, ackcount);
	FIELD(IKCPCB, ackblock);
#ifdef IKCP_LAYOUT_V2
	FIELD(IKCPCB, ackedlen);
#endif
	FIELD(IKCPCB, user); FIELD(IKCPCB, buffer);
	FIELD(IKCPCB, fastresend); FIELD(IKCPCB, fastlimit); FIELD(IKCPCB, nocwnd);
	FIELD(IKCPCB, stream);
#ifdef IKCP_LAYOUT_V2
	FIELD(IKCPCB, ccops); FIELD(IKCPCB, congest);
#endif
	FIELD(IKCPCB, logmask); FIELD(IKCPCB, output);
	FIELD(IKCPCB, writelog);

#ifdef IKCP_LAYOUT_V2
	SIZE(struct IKCPOPS);
	FIELD(IKCPOPS, name); FIELD(IKCPOPS, init); FIELD(IKCPOPS, release);
	FIELD(IKCPOPS, on_ack); FIELD(IKCPOPS, on_fast_retransmit);
	FIELD(IKCPOPS, on_timeout); FIELD(IKCPOPS, on_tick);
	FIELD(IKCPOPS, on_app_limited); FIELD(IKCPOPS, on_rtt);
	FIELD(IKCPOPS, on_pkt_sent); FIELD(IKCPOPS, on_pkt_acked);
	FIELD(IKCPOPS, get_info); FIELD(IKCPOPS, pacing_rate);
#endif

	printf("log %d %d %d %d %d %d %d %d %d %d %d %d\n", IKCP_LOG_OUTPUT,
		IKCP_LOG_INPUT, IKCP_LOG_SEND, IKCP_LOG_RECV, IKCP_LOG_IN_DATA,
		IKCP_LOG_IN_ACK, IKCP_LOG_IN_PROBE, IKCP_LOG_IN_WINS,
		IKCP_LOG_OUT_DATA, IKCP_LOG_OUT_ACK, IKCP_LOG_OUT_PROBE,
		IKCP_LOG_OUT_WINS);
	return 0;
}
