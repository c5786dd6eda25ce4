/*
 * One gRPC call with a server stream, over HTTP/2 (nghttp2) on a unix socket, without TLS: what the
 * Node CLI's grpc-js channel does for `tsswarm run` against the local daemon.
 */
#ifndef TSSWARM_GRPC_STREAM_H
#define TSSWARM_GRPC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called for every message of the response stream, in order; return false to stop (cancel). */
typedef bool (*grpc_message_fn)(void *ctx, const uint8_t *data, size_t len);

struct grpc_outcome {
	int status;           /* grpc-status; -1 when the call did not end with one */
	char message[1024];   /* grpc-message (percent-decoded), or what went wrong on the way */
	bool daemon_answered; /* the server set tsswarm-answered: UNAVAILABLE then came from the daemon */
	bool connected;       /* false: the socket could not be reached */
};

/* `path` is "/package.Service/Method"; `request` one encoded message. Returns when the stream ends. */
void grpc_server_stream(const char *socket_path, const char *path, const uint8_t *request, size_t request_len,
                        grpc_message_fn on_message, void *ctx, struct grpc_outcome *outcome);

#endif
