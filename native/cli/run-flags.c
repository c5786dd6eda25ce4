/* See run-flags.h. Every rule here mirrors one in src/cli; where the Node CLI would refuse a value,
 * or where matching it exactly is not worth the code, the command line is "not ours". */
#include "run-flags.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SOCKET "/run/tsswarm/tsswarm.sock"
/* Above this a JS number stops being an exact integer; such values are left to the Node CLI. */
#define MAX_EXACT 9007199254740991.0

typedef Tsswarm__Node__V1__ContainerSpec Spec;
typedef Tsswarm__Node__V1__RestartPolicy RestartPolicy;
typedef Tsswarm__Node__V1__Mount Mount;
typedef Tsswarm__Node__V1__ContainerSpec__LabelsEntry Label;
typedef Tsswarm__Node__V1__ContainerSpec__PortMapping PortMapping;

enum option_id {
	OPT_DETACH,
	OPT_RM,
	OPT_READ_ONLY, /* flags */
	OPT_NAME,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_PIDS_LIMIT,
	OPT_HOSTNAME,
	OPT_RESTART,
	OPT_NETWORK,
	OPT_ENTRYPOINT,
	OPT_WORKDIR,
	OPT_USER,
	OPT_STOP_SIGNAL,
	OPT_STOP_TIMEOUT, /* one value, last wins */
	OPT_ENV,
	OPT_VOLUME,
	OPT_PUBLISH,
	OPT_LABEL, /* repeatable */
	OPT_COUNT,
};
#define FIRST_VALUE OPT_NAME
#define FIRST_LIST OPT_ENV

/* `container run`'s options, as addRunOptions and the run command declare them. */
static const struct {
	char short_name;
	const char *long_name;
	enum option_id id;
} OPTIONS[] = {
	{ 'd', "detach", OPT_DETACH },
	{ 0, "rm", OPT_RM },
	{ 0, "read-only", OPT_READ_ONLY },
	{ 0, "name", OPT_NAME },
	{ 'm', "memory", OPT_MEMORY },
	{ 0, "cpus", OPT_CPUS },
	{ 0, "pids-limit", OPT_PIDS_LIMIT },
	{ 'h', "hostname", OPT_HOSTNAME },
	{ 0, "restart", OPT_RESTART },
	{ 0, "network", OPT_NETWORK },
	{ 0, "entrypoint", OPT_ENTRYPOINT },
	{ 'w', "workdir", OPT_WORKDIR },
	{ 'u', "user", OPT_USER },
	{ 0, "stop-signal", OPT_STOP_SIGNAL },
	{ 0, "stop-timeout", OPT_STOP_TIMEOUT },
	{ 'e', "env", OPT_ENV },
	{ 'v', "volume", OPT_VOLUME },
	{ 'p', "publish", OPT_PUBLISH },
	{ 'l', "label", OPT_LABEL },
};

struct values {
	bool flag[OPT_COUNT];
	const char *value[OPT_COUNT]; /* NULL: not given */
	const char **list[OPT_COUNT];
	size_t list_len[OPT_COUNT];
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) abort();
	return p;
}

static int find_option(const char *arg, size_t long_len)
{
	for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++) {
		if (long_len) {
			if (strlen(OPTIONS[i].long_name) == long_len &&
			    strncmp(OPTIONS[i].long_name, arg, long_len) == 0)
				return OPTIONS[i].id;
		} else if (OPTIONS[i].short_name && OPTIONS[i].short_name == arg[0]) {
			return OPTIONS[i].id;
		}
	}
	return -1;
}

/* ---- values, as src/cli/units.ts parses them ---- */

/* /^\d+(\.\d+)?/ at *s; returns the number and advances *s, or -1 when there is none. */
static double read_decimal(const char **s)
{
	const char *p = *s;
	if (!isdigit((unsigned char)*p)) return -1;
	while (isdigit((unsigned char)*p)) p++;
	if (*p == '.') {
		if (!isdigit((unsigned char)p[1])) return -1;
		p++;
		while (isdigit((unsigned char)*p)) p++;
	}
	/* Both JS Number() and strtod round a decimal string to the nearest double. */
	double v = strtod(*s, NULL);
	*s = p;
	return v;
}

/* parseBytes: /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i, Math.round(n * unit). Whitespace: not ours. */
static bool parse_bytes(const char *text, uint64_t *out)
{
	const char *p = text;
	double n = read_decimal(&p);
	if (n < 0) return false;
	double unit = 1;
	switch (tolower((unsigned char)*p)) {
	case 'k':
		unit = 1024.0;
		p++;
		break;
	case 'm':
		unit = 1024.0 * 1024;
		p++;
		break;
	case 'g':
		unit = 1024.0 * 1024 * 1024;
		p++;
		break;
	case 't':
		unit = 1024.0 * 1024 * 1024 * 1024;
		p++;
		break;
	case 'b': p++; break;
	}
	if (*p && strcasecmp(p, "b") != 0 && strcasecmp(p, "ib") != 0) return false;
	double v = round(n * unit); /* ties away from zero: Math.round for positive numbers */
	if (v > MAX_EXACT) return false;
	*out = (uint64_t)v;
	return true;
}

/* parseNanoCpus: /^\d+(\.\d+)?$/, > 0, Math.round(n * 1e9). */
static bool parse_nano_cpus(const char *text, uint64_t *out)
{
	const char *p = text;
	double n = read_decimal(&p);
	if (n <= 0 || *p) return false;
	double v = round(n * 1e9);
	if (v > MAX_EXACT) return false;
	*out = (uint64_t)v;
	return true;
}

/* parseInteger: /^-?\d+$/ and at least `min`; also at most `max`, past which the Node CLI's number
 * would not fit the field exactly. */
static bool parse_integer(const char *text, long long min, long long max, long long *out)
{
	const char *p = text;
	bool negative = *p == '-';
	if (negative) p++;
	if (!*p) return false;
	long long v = 0;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p)) return false;
		if (v > (max + 9) / 10) return false;
		v = v * 10 + (*p - '0');
	}
	if (negative) v = -v;
	if (v < min || v > max) return false;
	*out = v;
	return true;
}

/* --restart: split(':') as the Node CLI does, which ignores a third part. */
static bool parse_restart(const char *text, RestartPolicy *out)
{
	const char *colon = strchr(text, ':');
	size_t name_len = colon ? (size_t)(colon - text) : strlen(text);
	static const char *const NAMES[] = { "no", "on-failure", "always", "unless-stopped" };
	out->name = NULL;
	for (size_t i = 0; i < 4; i++) {
		if (strlen(NAMES[i]) == name_len && strncmp(NAMES[i], text, name_len) == 0)
			out->name = (char *)NAMES[i];
	}
	if (!out->name) return false;
	out->max_retries = 0;
	if (!colon) return true;
	if (strcmp(out->name, "on-failure") != 0) return false;
	const char *end = strchr(colon + 1, ':');
	size_t len = end ? (size_t)(end - colon - 1) : strlen(colon + 1);
	char retries[24];
	if (len >= sizeof retries) return false;
	memcpy(retries, colon + 1, len);
	retries[len] = 0;
	long long n;
	if (!parse_integer(retries, 0, INT32_MAX, &n)) return false;
	out->max_retries = (uint32_t)n;
	return true;
}

/* -v SRC:DST[:ro|rw] with an absolute SRC. */
static bool parse_volume(const char *text, Mount *out)
{
	const char *c1 = strchr(text, ':');
	if (!c1) return false;
	const char *c2 = strchr(c1 + 1, ':');
	if (c2 && strchr(c2 + 1, ':')) return false;
	if (c2 && strcmp(c2 + 1, "ro") != 0 && strcmp(c2 + 1, "rw") != 0) return false;
	if (text[0] != '/') return false;
	tsswarm__node__v1__mount__init(out);
	out->source = strndup(text, (size_t)(c1 - text));
	out->target = c2 ? strndup(c1 + 1, (size_t)(c2 - c1 - 1)) : (char *)(c1 + 1);
	out->read_only = c2 && strcmp(c2 + 1, "ro") == 0;
	return out->source && out->target;
}

/* A port of /^(\d+):(\d+)(?:\/(tcp|udp))?$/, 1-65535; leading zeros are fine, as for Number(). */
static bool read_port(const char **s, uint32_t *out)
{
	const char *p = *s;
	uint32_t v = 0;
	if (!isdigit((unsigned char)*p)) return false;
	for (; isdigit((unsigned char)*p); p++) v = v > 65535 ? v : v * 10 + (uint32_t)(*p - '0');
	if (v < 1 || v > 65535) return false;
	*out = v;
	*s = p;
	return true;
}

static bool parse_port_mapping(const char *text, PortMapping *out)
{
	tsswarm__node__v1__container_spec__port_mapping__init(out);
	const char *p = text;
	if (!read_port(&p, &out->host_port) || *p++ != ':' || !read_port(&p, &out->container_port)) return false;
	if (!*p)
		out->protocol = "tcp";
	else if (strcmp(p, "/tcp") == 0)
		out->protocol = "tcp";
	else if (strcmp(p, "/udp") == 0)
		out->protocol = "udp";
	else
		return false;
	return true;
}

/* -e KEY without a value takes this process's $KEY, as the Node CLI does. */
static char *env_entry(const char *text)
{
	if (strchr(text, '=')) return (char *)text;
	const char *v = getenv(text);
	size_t kl = strlen(text), vl = v ? strlen(v) : 0;
	char *e = xcalloc(kl + vl + 2, 1);
	memcpy(e, text, kl);
	e[kl] = '=';
	if (v) memcpy(e + kl + 1, v, vl);
	return e;
}

/* -l KEY=VALUE into the map, the last of equal keys winning (a JS object's assignment). */
static bool add_label(Spec *spec, const char *text)
{
	const char *eq = strchr(text, '=');
	char *key = eq ? strndup(text, (size_t)(eq - text)) : (char *)text;
	if (!key) abort();
	/* `labels["__proto__"] = v` is no label in JS: not worth mirroring. */
	if (strcmp(key, "__proto__") == 0) return false;
	char *value = eq ? (char *)(eq + 1) : "";
	for (size_t i = 0; i < spec->n_labels; i++) {
		if (strcmp(spec->labels[i]->key, key) == 0) {
			spec->labels[i]->value = value;
			return true;
		}
	}
	Label *l = xcalloc(1, sizeof *l);
	tsswarm__node__v1__container_spec__labels_entry__init(l);
	l->key = key;
	l->value = value;
	spec->labels[spec->n_labels++] = l;
	return true;
}

/* ---- the command line ---- */

/* Global options, then `run` or `container run`; returns the index after it, or -1. */
static int read_global_options(int argc, char **argv, const char **host)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-H") == 0 || strcmp(a, "--host") == 0) {
			if (++i >= argc) return -1;
			*host = argv[i];
		} else if (strncmp(a, "--host=", 7) == 0) {
			*host = a + 7;
		} else if (strcmp(a, "--format") == 0 || strncmp(a, "--format=", 9) == 0) {
			const char *v = a[8] == '=' ? a + 9 : (++i < argc ? argv[i] : NULL);
			if (!v || (strcmp(v, "table") != 0 && strcmp(v, "json") != 0)) return -1;
		} else if (a[0] == '-') {
			return -1;
		} else {
			break;
		}
	}
	if (i >= argc) return -1;
	if (strcmp(argv[i], "run") == 0) return i + 1;
	if (strcmp(argv[i], "container") == 0 && i + 1 < argc && strcmp(argv[i + 1], "run") == 0) return i + 2;
	return -1;
}

/* daemonAddress(): -H, else $TSSWARM_HOST, else the default; unix://PATH or /PATH. */
static bool socket_path(const char *host, char *out, size_t size)
{
	if (!host || !*host) host = getenv("TSSWARM_HOST");
	if (!host || !*host) host = "unix://" DEFAULT_SOCKET;
	const char *path = strncmp(host, "unix://", 7) == 0 ? host + 7 : host[0] == '/' ? host : NULL;
	if (!path || strlen(path) >= size) return false;
	strcpy(out, path);
	return true;
}

static bool build_spec(const struct values *v, const char *image, char **cmd, size_t n_cmd, Spec *spec)
{
	tsswarm__node__v1__container_spec__init(spec);
	const char *const *val = v->value;
	spec->name = (char *)(val[OPT_NAME] ? val[OPT_NAME] : "");
	spec->image = (char *)image;
	spec->cmd = cmd;
	spec->n_cmd = n_cmd;
	if (val[OPT_ENTRYPOINT]) {
		spec->entrypoint_set = true;
		if (*val[OPT_ENTRYPOINT]) {
			spec->entrypoint = xcalloc(1, sizeof(char *)); /* `v` lives on the caller's stack */
			spec->entrypoint[0] = (char *)val[OPT_ENTRYPOINT];
			spec->n_entrypoint = 1;
		}
	}
	spec->n_env = v->list_len[OPT_ENV];
	spec->env = xcalloc(spec->n_env, sizeof(char *));
	for (size_t i = 0; i < spec->n_env; i++) spec->env[i] = env_entry(v->list[OPT_ENV][i]);
	spec->working_dir = (char *)(val[OPT_WORKDIR] ? val[OPT_WORKDIR] : "");
	spec->user = (char *)(val[OPT_USER] ? val[OPT_USER] : "");
	spec->hostname = (char *)(val[OPT_HOSTNAME] ? val[OPT_HOSTNAME] : "");
	/* The Node CLI tests these with `o.memory ? ... : default`: an empty value is no value. */
	if (val[OPT_MEMORY] && *val[OPT_MEMORY] && !parse_bytes(val[OPT_MEMORY], &spec->memory_bytes)) return false;
	if (val[OPT_CPUS] && *val[OPT_CPUS] && !parse_nano_cpus(val[OPT_CPUS], &spec->nano_cpus)) return false;
	if (val[OPT_PIDS_LIMIT] && *val[OPT_PIDS_LIMIT]) {
		long long n;
		if (!parse_integer(val[OPT_PIDS_LIMIT], -1, (long long)MAX_EXACT, &n)) return false;
		spec->pids_limit = n;
	}
	RestartPolicy *restart = xcalloc(1, sizeof *restart);
	tsswarm__node__v1__restart_policy__init(restart);
	restart->name = "no";
	if (val[OPT_RESTART] && *val[OPT_RESTART] && !parse_restart(val[OPT_RESTART], restart)) return false;
	spec->restart = restart;
	spec->n_mounts = v->list_len[OPT_VOLUME];
	spec->mounts = xcalloc(spec->n_mounts, sizeof(Mount *));
	for (size_t i = 0; i < spec->n_mounts; i++) {
		spec->mounts[i] = xcalloc(1, sizeof(Mount));
		if (!parse_volume(v->list[OPT_VOLUME][i], spec->mounts[i])) return false;
	}
	/* As docker: publishing a port implies the bridge network. */
	spec->network = (char *)(val[OPT_NETWORK] ? val[OPT_NETWORK] : v->list_len[OPT_PUBLISH] ? "bridge" : "none");
	spec->n_ports = v->list_len[OPT_PUBLISH];
	spec->ports = xcalloc(spec->n_ports, sizeof(PortMapping *));
	for (size_t i = 0; i < spec->n_ports; i++) {
		spec->ports[i] = xcalloc(1, sizeof(PortMapping));
		if (!parse_port_mapping(v->list[OPT_PUBLISH][i], spec->ports[i])) return false;
	}
	spec->auto_remove = v->flag[OPT_RM];
	spec->read_only = v->flag[OPT_READ_ONLY];
	spec->stop_signal = (char *)(val[OPT_STOP_SIGNAL] ? val[OPT_STOP_SIGNAL] : "");
	spec->stop_timeout = 10;
	if (val[OPT_STOP_TIMEOUT] && *val[OPT_STOP_TIMEOUT]) {
		long long n;
		if (!parse_integer(val[OPT_STOP_TIMEOUT], 0, INT32_MAX, &n)) return false;
		spec->stop_timeout = (uint32_t)n;
	}
	spec->labels = xcalloc(v->list_len[OPT_LABEL], sizeof(Label *));
	for (size_t i = 0; i < v->list_len[OPT_LABEL]; i++) {
		if (!add_label(spec, v->list[OPT_LABEL][i])) return false;
	}
	return true;
}

bool read_run_command(int argc, char **argv, struct run_command *out)
{
	const char *host = NULL;
	int i = read_global_options(argc, argv, &host);
	if (i < 0 || !socket_path(host, out->socket_path, sizeof out->socket_path)) return false;

	struct values v;
	memset(&v, 0, sizeof v);
	for (int k = FIRST_LIST; k < OPT_COUNT; k++) v.list[k] = xcalloc((size_t)argc, sizeof(char *));
	/* Options until the image; everything after it is the command (commander's passThroughOptions). */
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-') break;
		int id;
		const char *inline_value = NULL;
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			id = find_option(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2));
			if (eq) inline_value = eq + 1;
		} else {
			/* Grouped (-dm 64m) or glued (-m64m) short options, and "-": left to the Node CLI. */
			if (a[1] == 0 || a[2] != 0) return false;
			id = find_option(a + 1, 0);
		}
		if (id < 0) return false;
		if (id < FIRST_VALUE) {
			if (inline_value) return false;
			v.flag[id] = true;
			continue;
		}
		/* A required option-argument takes the next argument, even one that starts with '-'. */
		const char *value = inline_value;
		if (!value) {
			if (++i >= argc) return false;
			value = argv[i];
		}
		if (id < FIRST_LIST)
			v.value[id] = value;
		else
			v.list[id][v.list_len[id]++] = value;
	}
	if (i >= argc) return false; /* no image: the Node CLI says so */

	tsswarm__node__v1__container_run_request__init(&out->request);
	Spec *spec = xcalloc(1, sizeof *spec);
	if (!build_spec(&v, argv[i], &argv[i + 1], (size_t)(argc - i - 1), spec)) return false;
	out->request.spec = spec;
	out->request.detach = v.flag[OPT_DETACH];
	return true;
}
