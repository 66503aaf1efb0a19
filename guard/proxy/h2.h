/*
 * h2: the gRPC path. A TLS connection whose ALPN chose "h2" is handed over by conn.c
 * (h2_accept) and served here with libnghttp2 on both sides:
 *
 *   client ──TLS, h2──▶ server session ──streams──▶ client session ──h2c──▶ backend_grpc
 *
 * Backend connections (HTTP/2 with prior knowledge) are pooled per worker and shared by
 * the calls of every client: a call goes to the least busy one while it has fewer than
 * H2_UP_STREAMS calls, else to a new one (at most H2_UP_MAX per worker); idle ones close
 * after idle_timeout; one that sent GOAWAY takes no new calls, finishes the others and
 * closes. After any event, h2_flush_all() runs the client connections and backend
 * connections that have frames to send until neither side has more (sending on one
 * side acknowledges data of the other).
 *
 * Per call (stream): client limit, authentication through the same entry points as
 * REST (auth.h: failure throttle, credential cache, verifier pool, with the
 * `authorization` metadata value and the socket peer), user limit, method allow-list
 * and per-model ACL (grpc.h), then forwarding. Refusals are trailers-only responses:
 * grpc-status 16 UNAUTHENTICATED, 8 RESOURCE_EXHAUSTED (throttled, limited, too big),
 * 7 PERMISSION_DENIED, 12 UNIMPLEMENTED, 14 UNAVAILABLE (backend down), 4
 * DEADLINE_EXCEEDED (grpc-timeout).
 *
 * Flow control end to end: received DATA is acknowledged (WINDOW_UPDATE) only once it
 * has been handed to the other session, so a slow reader on one side closes the window
 * of the writer on the other side. The one exception is the first request message,
 * which must be read whole before the model is known: it is acknowledged as it arrives,
 * up to grpc_max_message per stream and a per-connection budget.
 *
 * Bounded per connection: grpc_max_streams concurrent streams, header lists of at most
 * max_header_bytes, windows of H2_WINDOW per stream and H2_CONN_WINDOW per connection
 * on both sides, and a token bucket on RST_STREAM frames from the client (a rapid-reset
 * flood, CVE-2023-44487, is answered with GOAWAY ENHANCE_YOUR_CALM and a close).
 *
 * Everything here runs on the worker's thread.
 */
#ifndef TFG_H2_H
#define TFG_H2_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"
#include "tls.h"

struct worker;

/*
 * Takes over fd and its finished TLS object t (ALPN "h2") with the peer as conn.c
 * formatted it and its client certificate's verdict (peer, copied; NULL without TLS). The connection stays counted in w_nconns / px_nconns / the open
 * connections metric; h2 gives the count back when it closes. On failure it closes
 * everything itself.
 */
void h2_accept(struct worker *w, int fd, struct tls *t, const struct tls_peer *peer,
	       const char *peer_text, const char *peer_ip, const uint8_t *akey, size_t akeylen);
/* The worker's gRPC auth queue became readable (registered by worker.c; arg = worker). */
void h2_auth_ready(struct ev_loop *loop, int fd, uint32_t events, void *arg);
/* Shutdown: GOAWAY to every h2 connection; those without calls in progress close now. */
void h2_drain_idle(struct worker *w);
/* Shutdown deadline: closes every h2 connection of w. */
void h2_close_all(struct worker *w);

#endif
