/* Starting a container (create / run) and entering one (exec). */
#ifndef TSS_CONTAINER_H
#define TSS_CONTAINER_H
#include "spec.h"

enum start_mode { MODE_CREATE, MODE_RUN, MODE_RUN_DETACH };

struct create_opts {
	const char *root, *id, *bundle, *pidfile;
	enum start_mode mode;
	int keep;
};

/* Returns the exit status to use: 0 for create/run -d, the container's for run; -1 with g_err. */
int container_create(const struct create_opts *o);

struct exec_opts {
	const char *root, *id, *process_file, *cwd, *pidfile;
	char **env;
	int nenv;
	char **args;
	int nargs;
	int detach;
	int has_user;
	unsigned uid, gid;
};
int container_exec(const struct exec_opts *o);
int container_kill_all(const char *root, const char *id, int sig);
/* Stops (if force), waits for the init to go, removes cgroups and state. */
int container_delete(const char *root, const char *id, int force);
#endif
