/* The daemon's commands on stdin, one a line: set NAME IP..., del NAME, clear, sync. */
#ifndef TSS_CONTROL_H
#define TSS_CONTROL_H
/* Reads what stdin has and applies every complete line. Returns 0 on EOF. */
int read_commands(void);
#endif
