/*
 * timer.c: filter timers (sof_timer_arm/sof_timer_cancel).
 *
 * Placeholder: the service thread that runs timers is not there yet, so
 * arming fails with ENOSYS and filters fall back to not timing out.
 */
#include <errno.h>

#include "core.h"

unsigned long
sof_timer_arm(sof_handle_t h, unsigned int msec, sof_timer_fn_t fn, void *arg)
{
	(void)h;
	(void)msec;
	(void)fn;
	(void)arg;
	errno = ENOSYS;
	return 0;
}

boolean_t
sof_timer_cancel(sof_handle_t h, unsigned long id)
{
	(void)h;
	(void)id;
	return B_FALSE;
}
