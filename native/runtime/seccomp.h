/* linux.seccomp compiled to a classic BPF filter (x86_64), no libseccomp. */
#ifndef TSS_SECCOMP_H
#define TSS_SECCOMP_H
#include <stdint.h>
#include <stdio.h>
#include "json.h"

struct seccomp_prog;

/* Validates and compiles the spec's seccomp object; NULL with g_err on error. */
struct seccomp_prog *seccomp_compile(const struct jval *sc);
/* Prints the filter, one `code jt jf k` line (decimal) per instruction. */
void seccomp_print(const struct seccomp_prog *p, FILE *out);
/* Installs the filter on the calling thread (needs no_new_privs or CAP_SYS_ADMIN). */
int seccomp_load(const struct seccomp_prog *p);
#endif
