/* Waiting for a child the way a runtime must: forwarding signals, mapping its status to an exit code. */
#ifndef TSS_CHILD_H
#define TSS_CHILD_H
#include <signal.h>
#include <sys/types.h>

extern volatile pid_t fwd_pid;
/* INT, TERM, HUP, QUIT, USR1, USR2, WINCH received by us go to pid (like runc run / exec). */
void install_forwarding(pid_t pid);
void reap(pid_t pid, int *status);
/* 128+N for a signal, like a shell. */
int exit_code(int status);
#endif
