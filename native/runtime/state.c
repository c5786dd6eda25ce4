#include "state.h"
#include "cgroup.h"
#include "json.h"
#include "util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int state_path(const char *root, const char *id, const char *file, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s%s%s", root, id, file ? "/" : "", file ? file : "");
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int state_write(const char *root, const struct cstate *st)
{
	static char buf[32768];
	size_t pos = 0;
	char path[4200];
#define PUT(...) pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, __VA_ARGS__)
	PUT("{\"ociVersion\":\"1.0.2\",\"id\":");
	json_escape(buf, sizeof(buf), &pos, st->id, strlen(st->id));
	PUT(",\"pid\":%d,\"pidStart\":%llu,\"bundle\":", (int)st->pid, st->start);
	json_escape(buf, sizeof(buf), &pos, st->bundle, strlen(st->bundle));
	PUT(",\"rootfs\":");
	json_escape(buf, sizeof(buf), &pos, st->rootfs, strlen(st->rootfs));
	PUT(",\"created\":\"%s\",\"cgroupsPath\":", st->created);
	json_escape(buf, sizeof(buf), &pos, st->cgpath, strlen(st->cgpath));
	PUT(",\"pidns\":%s,\"cpuset\":%s,\"annotations\":%s}\n", st->pidns ? "true" : "false",
	    st->cpuset ? "true" : "false", st->annotations ? st->annotations : "{}");
#undef PUT
	if (pos >= sizeof(buf) - 1) return seterr("state: too large");
	state_path(root, st->id, "state.json", path, sizeof(path));
	if (write_atomic(path, buf, pos) < 0) return seterr("write %s: %s", path, strerror(errno));
	return 0;
}

static void copy_str(const struct jval *o, const char *k, char *out, size_t cap)
{
	struct jval *v = json_get(o, k);
	snprintf(out, cap, "%s", v && v->t == J_STR ? v->s : "");
}

int state_read(const char *root, const char *id, struct cstate *st)
{
	char path[4200], perr[200];
	memset(st, 0, sizeof(*st));
	if (!valid_id(id)) return seterr("invalid container id \"%.80s\"", id);
	state_path(root, id, "state.json", path, sizeof(path));
	size_t len;
	char *text = read_file(path, &len);
	if (!text) {
		if (errno == ENOENT) return seterr("container \"%s\" does not exist", id);
		return seterr("read %s: %s", path, strerror(errno));
	}
	struct jval *v = json_parse(text, len, perr, sizeof(perr));
	if (!v || v->t != J_OBJ) return seterr("state %s is corrupt: %s", path, v ? "not an object" : perr);
	copy_str(v, "id", st->id, sizeof(st->id));
	copy_str(v, "bundle", st->bundle, sizeof(st->bundle));
	copy_str(v, "rootfs", st->rootfs, sizeof(st->rootfs));
	copy_str(v, "created", st->created, sizeof(st->created));
	copy_str(v, "cgroupsPath", st->cgpath, sizeof(st->cgpath));
	struct jval *p = json_get(v, "pid"), *s = json_get(v, "pidStart"), *pn = json_get(v, "pidns"),
		    *cs = json_get(v, "cpuset");
	st->pid = p && p->t == J_NUM ? (pid_t)p->i : 0;
	st->start = s && s->t == J_NUM ? (unsigned long long)s->i : 0;
	st->pidns = pn && pn->t == J_BOOL && pn->b;
	st->cpuset = cs && cs->t == J_BOOL && cs->b;
	struct jval *an = json_get(v, "annotations");
	if (an) {
		static char abuf[16384];
		size_t pos = 0;
		if (json_write(abuf, sizeof(abuf), &pos, an) == 0) st->annotations = abuf;
	}
	state_path(root, id, NULL, st->dir, sizeof(st->dir));
	free(text);
	return 0;
}

int state_alive(const struct cstate *st)
{
	return st->pid > 0 && proc_starttime(st->pid) == st->start;
}

const char *state_status(const char *root, const struct cstate *st)
{
	char path[4200];
	if (!state_alive(st)) return "stopped";
	state_path(root, st->id, "exec.fifo", path, sizeof(path));
	if (access(path, F_OK) == 0) return "created";
	struct cgroup cg;
	if (st->cgpath[0] && cg_init(&cg, st->cgpath, st->cpuset) == 0 && cg_is_frozen(&cg) == 1) return "paused";
	return "running";
}

void state_remove(const char *root, const char *id)
{
	static const char *files[] = { "state.json", "state.json.tmp", "config.json", "exec.fifo" };
	char path[4200];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		state_path(root, id, files[i], path, sizeof(path));
		unlink(path);
	}
	state_path(root, id, NULL, path, sizeof(path));
	rmdir(path);
}
