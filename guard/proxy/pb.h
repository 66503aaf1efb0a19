/*
 * pb: a minimal, bounds-checked reader of the protobuf wire format.
 *
 * Only what the gRPC path needs to find model_spec.name in a TF Serving request:
 * walk the fields of one message, each as (number, wire type, value or bytes).
 * Nothing is allocated and nothing is decoded beyond the field boundaries: a LEN
 * field's bytes are handed back as a slice of the input, to be read with another
 * struct pb. Groups (wire types 3 and 4, deprecated and unused by TF Serving) and
 * anything truncated or over-long are malformed: the caller refuses the request,
 * which is the safe side (the proxy never guesses a model name).
 *
 * Pure functions: reentrant, no global state.
 */
#ifndef TFG_PB_H
#define TFG_PB_H

#include <stddef.h>
#include <stdint.h>

enum pb_wire {
	PB_VARINT = 0,
	PB_I64 = 1,
	PB_LEN = 2,
	PB_I32 = 5,
};

struct pb {
	const uint8_t *pb_p;
	size_t pb_n;
	size_t pb_off;
};

struct pb_field {
	uint32_t pf_num; /* 1 .. 2^29-1 */
	enum pb_wire pf_wire;
	uint64_t pf_val;	/* PB_VARINT, PB_I64, PB_I32 */
	const uint8_t *pf_data; /* PB_LEN: the bytes, inside the reader's input */
	size_t pf_len;
};

void pb_init(struct pb *r, const void *buf, size_t n);
/* 1 with f filled, 0 at the end of the input, -1 if malformed (the reader stays there). */
int pb_next(struct pb *r, struct pb_field *f);

#endif
