/* Uses every declaration of ikcp.h; compiled (not run) under many language
 * standards with warnings as errors. Valid as C89 and as C++98. */
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
	ikcp_send(kcp, buf, (int)sizeof buf);
	ikcp_update(kcp, now);
	ikcp_flush(kcp);
	now = ikcp_check(kcp, now);
	ikcp_input(kcp, buf, (long)sizeof buf);
	sum += ikcp_peeksize(kcp) + ikcp_recv(kcp, buf, (int)sizeof buf) + ikcp_waitsnd(kcp);
	ikcp_log(kcp, IKCP_LOG_OUTPUT, "%s %d", "sum", sum);
	conv = ikcp_getconv(buf) + kcp->nsnd_que + kcp->state;
	ikcp_release(kcp);
	ikcp_allocator(NULL, NULL);
	return (int)(conv + now + (IUINT32)signed32 + u16 + i16 + u8 + i8 + (int)i64 + (int)u64 + sum) & 0;
}
