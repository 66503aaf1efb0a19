/*
 * pb: protobuf wire-format reader. See pb.h.
 */
#include "pb.h"

void pb_init(struct pb *r, const void *buf, size_t n)
{
	r->pb_p = buf;
	r->pb_n = n;
	r->pb_off = 0;
}

/* Base-128 varint of at most 10 bytes, the 10th holding bit 63 only. */
static int pb_varint(struct pb *r, uint64_t *out)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < 10; i++) {
		uint8_t b;

		if (r->pb_off >= r->pb_n)
			return -1;
		b = r->pb_p[r->pb_off++];
		if (i == 9 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int pb_fixed(struct pb *r, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (r->pb_n - r->pb_off < n)
		return -1;
	for (i = 0; i < n; i++)
		v |= (uint64_t)r->pb_p[r->pb_off + i] << (8 * i);
	r->pb_off += n;
	*out = v;
	return 0;
}

int pb_next(struct pb *r, struct pb_field *f)
{
	size_t start = r->pb_off;
	uint64_t tag, len;

	if (r->pb_off >= r->pb_n)
		return 0;
	if (pb_varint(r, &tag) < 0 || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
		goto bad;
	f->pf_num = (uint32_t)(tag >> 3);
	f->pf_data = NULL;
	f->pf_len = 0;
	f->pf_val = 0;
	switch (tag & 7) {
	case PB_VARINT:
		f->pf_wire = PB_VARINT;
		if (pb_varint(r, &f->pf_val) < 0)
			goto bad;
		return 1;
	case PB_I64:
		f->pf_wire = PB_I64;
		if (pb_fixed(r, 8, &f->pf_val) < 0)
			goto bad;
		return 1;
	case PB_I32:
		f->pf_wire = PB_I32;
		if (pb_fixed(r, 4, &f->pf_val) < 0)
			goto bad;
		return 1;
	case PB_LEN:
		f->pf_wire = PB_LEN;
		if (pb_varint(r, &len) < 0 || len > r->pb_n - r->pb_off)
			goto bad;
		f->pf_data = r->pb_p + r->pb_off;
		f->pf_len = (size_t)len;
		r->pb_off += (size_t)len;
		return 1;
	default: /* groups (3, 4) and the undefined 6, 7 */
		goto bad;
	}
bad:
	r->pb_off = start;
	return -1;
}
