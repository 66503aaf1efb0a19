/*
 * metrics: counters and the Prometheus text format. See metrics.h.
 */
#include "metrics.h"

#include <string.h>

/* Latency buckets in µs: 1 ms .. 30 s, the range a predict call lives in. */
static const uint64_t metrics_le_us[METRICS_BUCKETS] = {
	1000,	2500,	5000,	 10000,	  25000,    50000,    100000,
	250000, 500000, 1000000, 2500000, 10000000, 30000000,
};

static uint64_t ld(const atomic_uint_fast64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static size_t metrics_slot(const char *model, size_t mlen, int status)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < mlen; i++)
		h = (h ^ (unsigned char)model[i]) * 1099511628211ull;
	h = (h ^ (unsigned)status) * 1099511628211ull;
	return (size_t)(h % (METRICS_MODELS - 1));
}

void metrics_request(struct metrics *m, const char *model, size_t mlen, int status, uint64_t dur_us)
{
	size_t i, slot, probe;

	if (mlen >= METRICS_NAME_MAX) {
		model = "_other";
		mlen = 6;
	}
	slot = metrics_slot(model, mlen, status);
	/* The last slot is the overflow pair; linear probing over the others. */
	for (probe = 0; probe < METRICS_MODELS - 1; probe++) {
		struct metrics_pair *p = &m->m_pairs[(slot + probe) % (METRICS_MODELS - 1)];
		unsigned st = atomic_load_explicit(&p->mp_status, memory_order_relaxed);

		if (st == 0) {
			memcpy(p->mp_model, model, mlen);
			p->mp_model[mlen] = '\0';
			atomic_store_explicit(&p->mp_status, (unsigned)status,
					      memory_order_release);
			metrics_add(&p->mp_count, 1);
			goto out_lat;
		}
		if (st == (unsigned)status && strlen(p->mp_model) == mlen &&
		    memcmp(p->mp_model, model, mlen) == 0) {
			metrics_add(&p->mp_count, 1);
			goto out_lat;
		}
	}
	{
		struct metrics_pair *p = &m->m_pairs[METRICS_MODELS - 1];

		if (atomic_load_explicit(&p->mp_status, memory_order_relaxed) == 0) {
			strcpy(p->mp_model, "_other");
			atomic_store_explicit(&p->mp_status, 1, memory_order_release);
		}
		metrics_add(&p->mp_count, 1);
	}
out_lat:
	for (i = 0; i < METRICS_BUCKETS; i++) {
		if (dur_us <= metrics_le_us[i]) {
			metrics_add(&m->m_lat_bucket[i], 1);
			break;
		}
	}
	metrics_add(&m->m_lat_count, 1);
	metrics_add(&m->m_lat_sum_us, dur_us);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4: no overlongs, no
 * surrogates, at most U+10FFFF), or 0. */
static size_t metrics_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/*
 * A label value in the exposition format: \\ " and newline escaped, and, since the value
 * is whatever a client put in its URL, control bytes, bytes that are not well-formed UTF-8
 * and '%' itself written as %XX: the page stays valid UTF-8 (one bad byte must not make
 * a scraper drop it) and two different names never share a label.
 */
static void metrics_label(FILE *f, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t n;

		if (*u == '\\' || *u == '"') {
			fprintf(f, "\\%c", *u++);
		} else if (*u == '\n') {
			fputs("\\n", f);
			u++;
		} else if (*u >= 0x20 && *u < 0x7f && *u != '%') {
			fputc(*u++, f);
		} else if (*u >= 0x80 && (n = metrics_utf8_len(u)) > 0) {
			fwrite(u, 1, n, f);
			u += n;
		} else {
			fprintf(f, "%%%02X", *u++);
		}
	}
}

#define SUM(field)                                                                                 \
	({                                                                                         \
		uint64_t s_ = 0;                                                                   \
		for (size_t w_ = 0; w_ < n; w_++)                                                  \
			s_ += ld(&ws[w_]->field);                                                  \
		s_;                                                                                \
	})

static void metrics_counter(FILE *f, const char *name, const char *help, uint64_t v,
			    const char *type)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		(unsigned long long)v);
}

void metrics_render(FILE *f, struct metrics *const *ws, size_t n, const struct metrics_global *g)
{
	static const char *const up_kinds[METRICS_UP_NKINDS] = { "connect", "timeout", "closed",
								 "bad_response" };
	size_t w, i, j;
	uint64_t cum = 0;

	fputs("# HELP tfguard_proxy_requests_total Requests answered, by model and status.\n"
	      "# TYPE tfguard_proxy_requests_total counter\n",
	      f);
	for (w = 0; w < n; w++) {
		for (i = 0; i < METRICS_MODELS; i++) {
			const struct metrics_pair *p = &ws[w]->m_pairs[i];
			unsigned st = atomic_load_explicit(&p->mp_status, memory_order_acquire);
			uint64_t c = 0;
			int seen = 0;

			if (st == 0)
				continue;
			/* Sum the same pair over all workers, printed at its first occurrence. */
			for (j = 0; j < n && !seen; j++) {
				for (size_t k = 0; k < METRICS_MODELS && j < w; k++) {
					const struct metrics_pair *q = &ws[j]->m_pairs[k];

					if (atomic_load_explicit(&q->mp_status,
								 memory_order_acquire) == st &&
					    strcmp(q->mp_model, p->mp_model) == 0) {
						seen = 1;
						break;
					}
				}
			}
			if (seen)
				continue;
			for (j = w; j < n; j++) {
				for (size_t k = 0; k < METRICS_MODELS; k++) {
					const struct metrics_pair *q = &ws[j]->m_pairs[k];

					if (atomic_load_explicit(&q->mp_status,
								 memory_order_acquire) == st &&
					    strcmp(q->mp_model, p->mp_model) == 0)
						c += ld(&q->mp_count);
				}
			}
			fputs("tfguard_proxy_requests_total{model=\"", f);
			metrics_label(f, p->mp_model);
			if (i == METRICS_MODELS - 1)
				fprintf(f, "\",code=\"any\"} %llu\n", (unsigned long long)c);
			else
				fprintf(f, "\",code=\"%u\"} %llu\n", st, (unsigned long long)c);
		}
	}
	fputs("# HELP tfguard_proxy_request_duration_seconds Time from request head to the last "
	      "response byte.\n# TYPE tfguard_proxy_request_duration_seconds histogram\n",
	      f);
	for (i = 0; i < METRICS_BUCKETS; i++) {
		cum += SUM(m_lat_bucket[i]);
		fprintf(f, "tfguard_proxy_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
			(double)metrics_le_us[i] / 1e6, (unsigned long long)cum);
	}
	fprintf(f, "tfguard_proxy_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
		(unsigned long long)SUM(m_lat_count));
	fprintf(f, "tfguard_proxy_request_duration_seconds_sum %.6f\n",
		(double)SUM(m_lat_sum_us) / 1e6);
	fprintf(f, "tfguard_proxy_request_duration_seconds_count %llu\n",
		(unsigned long long)SUM(m_lat_count));
	fputs("# HELP tfguard_proxy_upstream_errors_total Backend failures, by kind.\n"
	      "# TYPE tfguard_proxy_upstream_errors_total counter\n",
	      f);
	for (i = 0; i < METRICS_UP_NKINDS; i++)
		fprintf(f, "tfguard_proxy_upstream_errors_total{kind=\"%s\"} %llu\n", up_kinds[i],
			(unsigned long long)SUM(m_up_errors[i]));
	metrics_counter(f, "tfguard_proxy_auth_success_total", "Successful Basic logins.",
			SUM(m_auth_ok), "counter");
	metrics_counter(f, "tfguard_proxy_auth_failures_total",
			"Failed Basic logins (wrong password, unknown user, malformed).",
			SUM(m_auth_failures), "counter");
	metrics_counter(f, "tfguard_proxy_auth_throttled_total",
			"Requests refused with 429 after repeated failures.", SUM(m_auth_throttled),
			"counter");
	metrics_counter(f, "tfguard_proxy_auth_busy_total",
			"Requests refused with 429: auth_fail_limit logins from the address being "
			"verified or failed.",
			SUM(m_auth_busy), "counter");
	metrics_counter(f, "tfguard_proxy_cred_cache_hits_total",
			"Logins answered from the credential cache.", SUM(m_cache_hits), "counter");
	metrics_counter(f, "tfguard_proxy_connections_open", "Client connections open now.",
			SUM(m_conns_open), "gauge");
	metrics_counter(f, "tfguard_proxy_connections_total", "Client connections accepted.",
			SUM(m_conns_total), "counter");
	metrics_counter(f, "tfguard_proxy_connections_refused_total",
			"Connections closed at once because max_connections was reached.",
			SUM(m_conns_refused), "counter");
	metrics_counter(f, "tfguard_proxy_tls_handshake_failures_total",
			"TLS handshakes that failed or timed out.", SUM(m_tls_failures), "counter");
	metrics_counter(f, "tfguard_proxy_request_bytes_total", "Request body bytes forwarded.",
			SUM(m_bytes_in), "counter");
	metrics_counter(f, "tfguard_proxy_response_bytes_total", "Response bytes sent to clients.",
			SUM(m_bytes_out), "counter");
	metrics_counter(f, "tfguard_proxy_reloads_total", "Successful reloads (SIGHUP, htpasswd).",
			ld(&g->g_reload_ok), "counter");
	metrics_counter(f, "tfguard_proxy_reload_failures_total",
			"Rejected reloads (the old configuration stayed in force).",
			ld(&g->g_reload_failed), "counter");
	metrics_counter(f, "tfguard_proxy_workers", "Worker threads.", ld(&g->g_workers), "gauge");
	metrics_counter(f, "tfguard_proxy_start_time_seconds",
			"Start time, seconds since the epoch.", ld(&g->g_start_time), "gauge");
}
