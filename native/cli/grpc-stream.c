/* See grpc-stream.h. Blocking I/O on one socket: the CLI has nothing else to do meanwhile. */
#include "grpc-stream.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct call {
	int fd;
	int32_t stream_id;
	const uint8_t *body; /* the request: 5-byte gRPC prefix + message */
	size_t body_len, body_sent;
	uint8_t *pending; /* response bytes not yet a whole gRPC message */
	size_t pending_len, pending_cap;
	grpc_message_fn on_message;
	void *ctx;
	bool done, stopped, failed;
	struct grpc_outcome *outcome;
};

static void fail(struct call *c, const char *what)
{
	if (!c->failed) snprintf(c->outcome->message, sizeof c->outcome->message, "%s", what);
	c->failed = true;
	c->done = true;
}

static ssize_t send_bytes(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	(void)s, (void)flags;
	struct call *c = user;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(c->fd, data + off, len - off);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
		off += (size_t)n;
	}
	return (ssize_t)len;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user)
{
	(void)s, (void)id, (void)src;
	struct call *c = user;
	size_t n = c->body_len - c->body_sent;
	if (n > len) n = len;
	memcpy(buf, c->body + c->body_sent, n);
	c->body_sent += n;
	if (c->body_sent == c->body_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Hands every complete gRPC message in `pending` to the caller. */
static void deliver_messages(struct call *c)
{
	size_t off = 0;
	while (!c->stopped && c->pending_len - off >= 5) {
		const uint8_t *p = c->pending + off;
		size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
		if (c->pending_len - off - 5 < len) break;
		if (p[0] != 0) {
			fail(c, "the daemon sent a compressed message");
			return;
		}
		if (!c->on_message(c->ctx, p + 5, len)) c->stopped = c->done = true;
		off += 5 + len;
	}
	memmove(c->pending, c->pending + off, c->pending_len - off);
	c->pending_len -= off;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user)
{
	(void)s, (void)flags;
	struct call *c = user;
	if (id != c->stream_id || c->stopped) return 0;
	if (c->pending_len + len > c->pending_cap) {
		size_t cap = c->pending_cap ? c->pending_cap : 16384;
		while (cap < c->pending_len + len) cap *= 2;
		uint8_t *p = realloc(c->pending, cap);
		if (!p) return NGHTTP2_ERR_CALLBACK_FAILURE;
		c->pending = p;
		c->pending_cap = cap;
	}
	memcpy(c->pending + c->pending_len, data, len);
	c->pending_len += len;
	deliver_messages(c);
	return 0;
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

/* grpc-message is percent-encoded (gRPC's HTTP/2 protocol). */
static void percent_decode(const uint8_t *in, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		int hi, lo;
		if (in[i] == '%' && i + 2 < len && (hi = hex_value((char)in[i + 1])) >= 0 &&
		    (lo = hex_value((char)in[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = (char)in[i];
		}
	}
	out[o] = 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user)
{
	(void)s, (void)flags;
	struct call *c = user;
	if (frame->hd.stream_id != c->stream_id) return 0;
#define IS(n) (namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
	if (IS("grpc-status")) {
		c->outcome->status = atoi((const char *)value); /* nghttp2 NUL-terminates header values */
	} else if (IS("grpc-message")) {
		percent_decode(value, valuelen, c->outcome->message, sizeof c->outcome->message);
	} else if (IS("tsswarm-answered")) {
		c->outcome->daemon_answered = true;
	} else if (IS(":status") && !(valuelen == 3 && memcmp(value, "200", 3) == 0)) {
		char what[64];
		snprintf(what, sizeof what, "the daemon answered with HTTP status %.*s", (int)valuelen, value);
		fail(c, what);
	}
#undef IS
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
	(void)s;
	struct call *c = user;
	if (id != c->stream_id) return 0;
	if (error_code != NGHTTP2_NO_ERROR && c->outcome->status < 0) {
		char what[96];
		snprintf(what, sizeof what, "the daemon reset the stream (%s)", nghttp2_http2_strerror(error_code));
		fail(c, what);
	}
	c->done = true;
	return 0;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void grpc_server_stream(const char *socket_path, const char *path, const uint8_t *request, size_t request_len,
                        grpc_message_fn on_message, void *ctx, struct grpc_outcome *outcome)
{
	memset(outcome, 0, sizeof *outcome);
	outcome->status = -1;
	struct call c = { .on_message = on_message, .ctx = ctx, .outcome = outcome };
	c.fd = connect_unix(socket_path);
	if (c.fd < 0) {
		snprintf(outcome->message, sizeof outcome->message, "connect: %s", strerror(errno));
		return;
	}
	outcome->connected = true;

	uint8_t *body = malloc(request_len + 5);
	if (!body) abort();
	body[0] = 0;
	body[1] = (uint8_t)(request_len >> 24), body[2] = (uint8_t)(request_len >> 16);
	body[3] = (uint8_t)(request_len >> 8), body[4] = (uint8_t)request_len;
	memcpy(body + 5, request, request_len);
	c.body = body;
	c.body_len = request_len + 5;

	nghttp2_session_callbacks *cbs;
	nghttp2_session *session;
	if (nghttp2_session_callbacks_new(&cbs) != 0) abort();
	nghttp2_session_callbacks_set_send_callback(cbs, send_bytes);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	if (nghttp2_session_client_new(&session, cbs, &c) != 0) abort();
	nghttp2_session_callbacks_del(cbs);

	/* A large window: a chatty container's output should not wait for WINDOW_UPDATE round trips. */
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24 },
	};
	nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, 2);
	nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, 1 << 24);

#define HEADER(n, v) { (uint8_t *)n, (uint8_t *)v, sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }
	nghttp2_nv headers[] = {
		HEADER(":method", "POST"),
		HEADER(":scheme", "http"),
		HEADER(":path", path),
		HEADER(":authority", "localhost"),
		HEADER("content-type", "application/grpc"),
		HEADER("te", "trailers"),
		HEADER("user-agent", "tsswarm-run"),
	};
#undef HEADER
	nghttp2_data_provider body_provider = { .read_callback = read_body };
	c.stream_id =
		nghttp2_submit_request(session, NULL, headers, sizeof headers / sizeof headers[0], &body_provider, &c);
	if (c.stream_id < 0) fail(&c, nghttp2_strerror(c.stream_id));

	uint8_t buf[65536];
	while (!c.done) {
		int rv = nghttp2_session_send(session);
		if (rv != 0) {
			fail(&c, "the connection to the daemon broke while sending");
			break;
		}
		if (c.done) break;
		ssize_t n = read(c.fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			fail(&c, n == 0 ? "the daemon closed the connection" : strerror(errno));
			break;
		}
		ssize_t used = nghttp2_session_mem_recv(session, buf, (size_t)n);
		if (used < 0) {
			fail(&c, nghttp2_strerror((int)used));
			break;
		}
	}
	if (c.failed) outcome->status = -1;
	nghttp2_session_del(session);
	close(c.fd);
	free(c.pending);
	free(body);
}
