/*
 * fuzz_http_chunked: the chunked-body validator.
 *
 * The first input byte picks the options (bit 0: trailers allowed; bit 1: a 64-byte
 * payload limit), the rest is the body. Invariants: consumed <= len; the answer (bytes
 * consumed, done, payload total, or the rejection status) is the same whether the body
 * arrives at once, byte by byte, or in two pieces split anywhere; once done, nothing
 * more is consumed; the total never exceeds the limit.
 */
#include "fuzz.h"
#include "http.h"

struct outcome {
	ssize_t consumed; /* total, or HTTP_BAD */
	bool done;
	uint64_t total;
	int status;
};

static struct outcome run(const char *p, size_t n, uint8_t opt, const size_t *cuts, size_t ncuts)
{
	struct http_chunked ch;
	struct outcome o = { 0, false, 0, 0 };
	size_t off = 0, c;

	http_chunked_init(&ch, (opt & 2) ? 64 : 0, opt & 1);
	for (c = 0; c <= ncuts && off < n && !ch.ch_done; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		ssize_t r;

		if (end < off)
			continue;
		if (end > n)
			end = n;
		r = http_chunked_feed(&ch, p + off, end - off);
		if (r == HTTP_BAD) {
			FUZZ_CHECK(ch.ch_status == 400 || ch.ch_status == 413);
			FUZZ_CHECK(ch.ch_error != NULL);
			o.consumed = HTTP_BAD;
			o.status = ch.ch_status;
			/* a rejected decoder stays rejected */
			FUZZ_CHECK(http_chunked_feed(&ch, p, n) == HTTP_BAD);
			return o;
		}
		FUZZ_CHECK(r >= 0 && (size_t)r <= end - off);
		/* it stops early only at the end of the body */
		FUZZ_CHECK((size_t)r == end - off || ch.ch_done);
		off += (size_t)r;
	}
	if (ch.ch_done)
		FUZZ_CHECK(http_chunked_feed(&ch, p, n) == 0);
	if (opt & 2)
		FUZZ_CHECK(ch.ch_total <= 64);
	o.consumed = (ssize_t)off;
	o.done = ch.ch_done;
	o.total = ch.ch_total;
	return o;
}

static bool same(struct outcome a, struct outcome b)
{
	return a.consumed == b.consumed && a.done == b.done && a.status == b.status &&
	       (a.consumed == HTTP_BAD || a.total == b.total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome whole, piece;
	size_t n, i, *cuts;
	uint8_t opt;
	char *p;

	if (size == 0)
		return 0;
	opt = data[0];
	n = size - 1;
	p = fuzz_dup(data + 1, n);
	whole = run(p, n, opt, NULL, 0);

	cuts = malloc((n + 1) * sizeof(*cuts));
	if (!cuts)
		abort();
	for (i = 0; i < n; i++)
		cuts[i] = i + 1;
	piece = run(p, n, opt, cuts, n);
	FUZZ_CHECK(same(whole, piece));
	for (i = 0; i <= n; i += n < 64 ? 1 : n / 16) {
		size_t cut = i;

		piece = run(p, n, opt, &cut, 1);
		FUZZ_CHECK(same(whole, piece));
	}
	free(cuts);
	free(p);
	return 0;
}
