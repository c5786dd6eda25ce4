#include "jsonlog.h"
#include "json.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void emit(struct stream *s, const char *data, size_t n)
{
	static char out[LINE_MAX_BYTES * 6 + 256];
	char ts[64];
	size_t pos = 0;
	now_rfc3339(ts, sizeof(ts));
	memcpy(out, "{\"log\":", 7);
	pos = 7;
	json_escape(out, sizeof(out), &pos, data, n);
	pos += (size_t)snprintf(out + pos, sizeof(out) - pos, ",\"stream\":\"%s\",\"time\":\"%s\"}\n", s->name, ts);
	if (s->log_fd >= 0) write_all(s->log_fd, out, pos);
}

static void stream_data(struct stream *s, const char *data, size_t n)
{
	while (n) {
		size_t take = sizeof(s->buf) - s->len;
		if (take > n) take = n;
		memcpy(s->buf + s->len, data, take);
		s->len += take;
		data += take;
		n -= take;
		size_t start = 0;
		for (size_t i = 0; i < s->len; i++)
			if (s->buf[i] == '\n') {
				emit(s, s->buf + start, i + 1 - start);
				start = i + 1;
			}
		if (start == 0 && s->len == sizeof(s->buf)) {
			emit(s, s->buf, s->len);
			start = s->len;
		}
		memmove(s->buf, s->buf + start, s->len - start);
		s->len -= start;
	}
}

int stream_read(struct stream *s)
{
	char tmp[8192];
	ssize_t r = read(s->fd, tmp, sizeof(tmp));
	if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
	if (r <= 0) {
		if (s->len) emit(s, s->buf, s->len); /* keep a partial last line */
		s->len = 0;
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	stream_data(s, tmp, (size_t)r);
	return 0;
}

void stream_close(struct stream *s)
{
	if (s->fd < 0) return;
	if (s->len) emit(s, s->buf, s->len);
	s->len = 0;
	close(s->fd);
	s->fd = -1;
}
