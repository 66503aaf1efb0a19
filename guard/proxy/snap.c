/*
 * snap: reference-counted configuration snapshots (the reloadable part). See proxy.h.
 */
#include <stdlib.h>

#include "proxy.h"

struct snap *snap_get(struct proxy *px)
{
	struct snap *s;

	pthread_mutex_lock(&px->px_snap_lock);
	s = px->px_snap;
	atomic_fetch_add(&s->s_refs, 1);
	pthread_mutex_unlock(&px->px_snap_lock);
	return s;
}

void snap_put(struct snap *s)
{
	if (s == NULL || atomic_fetch_sub(&s->s_refs, 1) != 1)
		return;
	conf_free(&s->s_conf);
	tls_ctx_free(s->s_tls);
	free(s);
}

void snap_publish(struct proxy *px, struct snap *s)
{
	struct snap *old;

	pthread_mutex_lock(&px->px_snap_lock);
	old = px->px_snap;
	px->px_snap = s;
	atomic_fetch_add(&px->px_gen, 1);
	pthread_mutex_unlock(&px->px_snap_lock);
	snap_put(old);
}
