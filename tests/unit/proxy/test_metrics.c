/* test_metrics: the per-worker (model, status) table and the Prometheus text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

int main(void)
{
	static struct metrics a, b;
	struct metrics *ws[2] = { &a, &b };
	struct metrics_global g = { 0 };
	char *text = NULL, name[32];
	size_t n = 0;
	FILE *f;
	int i;

	metrics_request(&a, "fraud", 5, 200, 800);
	metrics_request(&a, "fraud", 5, 200, 3000);
	metrics_request(&b, "fraud", 5, 200, 3000);
	metrics_request(&b, "fraud", 5, 504, 60000000);
	metrics_request(&a, "", 0, 401, 100);
	metrics_request(&a, "we\"ird", 6, 200, 100);
	metrics_request(&a, "caf\xc3\xa9", 5, 200, 100);
	metrics_request(&a, "bad\xff\xc3(\x01", 7, 200, 100);
	metrics_request(&a, "50%", 3, 200, 100);
	metrics_add(&a.m_auth_failures, 3);
	metrics_add(&b.m_conns_open, 2);
	/* a client cannot grow the table: 500 distinct names fill it, the rest is "_other" */
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		metrics_request(&b, name, strlen(name), 200, 100);
	}
	f = open_memstream(&text, &n);
	metrics_render(f, ws, 2, &g);
	fclose(f);
	ok(strstr(text, "tfguard_proxy_requests_total{model=\"fraud\",code=\"200\"} 3\n") != NULL,
	   "pairs summed over workers");
	ok(strstr(text, "tfguard_proxy_requests_total{model=\"fraud\",code=\"504\"} 1\n") != NULL,
	   "by status");
	ok(strstr(text, "{model=\"we\\\"ird\",code=\"200\"}") != NULL, "label escaped");
	ok(strstr(text, "{model=\"caf\xc3\xa9\",code=\"200\"}") != NULL, "UTF-8 kept as it is");
	ok(strstr(text, "{model=\"bad%FF%C3(%01\",code=\"200\"}") != NULL,
	   "invalid UTF-8 and control bytes written as %XX");
	ok(strstr(text, "{model=\"50%25\",code=\"200\"}") != NULL,
	   "and %% itself, so names stay distinct");
	ok(strstr(text, "{model=\"_other\",code=\"any\"}") != NULL, "overflow pair");
	ok(strstr(text, "tfguard_proxy_request_duration_seconds_bucket{le=\"0.001\"} 506\n") !=
	       NULL,
	   "histogram bucket le=1ms");
	ok(strstr(text, "tfguard_proxy_request_duration_seconds_bucket{le=\"+Inf\"} 509\n") != NULL,
	   "histogram count");
	ok(strstr(text, "tfguard_proxy_auth_failures_total 3\n") != NULL, "counter");
	ok(strstr(text, "tfguard_proxy_connections_open 2\n") != NULL, "gauge");
	{
		int lines = 0;
		const char *p;

		for (p = text; (p = strstr(p, "tfguard_proxy_requests_total{")) != NULL; p++)
			lines++;
		ok(lines <= 2 * METRICS_MODELS, "bounded number of series");
	}
	free(text);
	return done_testing();
}
