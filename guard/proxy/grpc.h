/*
 * grpc: what the gRPC path decides, without any I/O (h2.c does the I/O).
 *
 * Authorisation of a call has two steps:
 *   1. the method (grpc_method_check): by default only
 *        /tensorflow.serving.PredictionService/…  and
 *        /tensorflow.serving.ModelService/GetModelStatus
 *      may be called. Anything else (ModelService/HandleReloadConfigRequest, which
 *      swaps the served models, the profiler, SessionService, reflection...) needs an
 *      explicit grant in the user's [acl] line: "@grpc:SERVICE/METHOD" or
 *      "@grpc:SERVICE/…". "*" (every model) does not grant methods, just as it does not
 *      grant "@metrics".
 *   2. the model, for the methods allowed by default (grpc_model_check): the first
 *      request message is read with pb.h; model_spec is field 1 of every TF Serving
 *      request and name is field 1 of ModelSpec (MultiInferenceRequest: tasks, field 1,
 *      each an InferenceTask whose field 1 is model_spec). Every occurrence is checked
 *      (protobuf merges repeated occurrences of a message field and the last name wins,
 *      so checking all of them checks the one TF Serving will use), each against the
 *      same [acl] rules as REST (route_acl_allows). A call with no name is refused
 *      unless the user may call every model. Explicitly granted methods are not
 *      per-model: the grant is the whole decision.
 *
 * Pure functions over a read-only struct conf: reentrant.
 */
#ifndef TFG_GRPC_H
#define TFG_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16,
};

/* The [acl] prefix of a method grant. */
#define GRPC_ACL_PREFIX "@grpc:" /* conf.c checks the syntax of these items */

enum grpc_method {
	GRPC_METHOD_DENIED,  /* not allowed for this user: PERMISSION_DENIED */
	GRPC_METHOD_MODEL,   /* allowed by default; the model must be checked */
	GRPC_METHOD_GRANTED, /* explicitly granted: no model check */
	GRPC_METHOD_BAD,     /* not a gRPC path "/SERVICE/METHOD": UNIMPLEMENTED */
};

/*
 * Decides step 1 for :path (path/n, not NUL-terminated) and an authenticated user.
 * For GRPC_METHOD_MODEL, *depth is where the model name is: 2 (field 1 → field 1) or
 * 3 (MultiInference: field 1 → field 1 → field 1).
 */
enum grpc_method grpc_method_check(const struct conf *c, const char *user, const char *path,
				   size_t n, unsigned *depth);

enum grpc_model {
	GRPC_MODEL_OK,	   /* every name found may be called */
	GRPC_MODEL_DENIED, /* one of them may not */
	GRPC_MODEL_NONE,   /* no name, and the user may not call every model */
	GRPC_MODEL_BAD,	   /* malformed message, or a name of CONF_MODEL_MAX bytes or more */
};

/*
 * Decides step 2 from one request message (msg/n, without the 5-byte gRPC prefix).
 * The last name seen is copied into model (NUL-terminated, *mlen; "" if none) for the
 * log, the metrics and the model's rate limit.
 */
enum grpc_model grpc_model_check(const struct conf *c, const char *user, const uint8_t *msg,
				 size_t n, unsigned depth, char model[CONF_MODEL_MAX],
				 size_t *mlen);

/* grpc-timeout ("1-8 digits" + H/M/S/m/u/n) in milliseconds, rounded up. 0 or -1. */
int grpc_timeout_parse(const char *v, size_t n, uint64_t *ms);

/* The HTTP status logged and counted for a gRPC status (as the gRPC HTTP mapping). */
int grpc_http_status(int code);

#endif
