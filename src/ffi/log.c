/* ikcp_log: the one variadic function of the API, so it is written in C. */
#include <stdarg.h>
#include <stdio.h>

#include "ikcp.h"

void ikcp_log(ikcpcb *kcp, int mask, const char *fmt, ...)
{
	char line[1024];
	va_list args;

	if (kcp == NULL || fmt == NULL) return;
	if ((mask & kcp->logmask) == 0 || kcp->writelog == NULL) return;

	va_start(args, fmt);
	vsnprintf(line, sizeof line, fmt, args);
	va_end(args);
	kcp->writelog(line, kcp, kcp->user);
}
