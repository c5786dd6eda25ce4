/* linux.resources.devices on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program, and the device
 * rules every container gets on top of the spec's (v1 and v2 alike). */
#ifndef TSS_DEVICES_H
#define TSS_DEVICES_H
#include "spec.h"

/* The devices every container may use, appended after the spec's rules as runc and crun do:
 * mknod of any node (using one is what the rules decide), null, zero, full, random, urandom,
 * tty, console, ptmx, the pts, /dev/net/tun. */
extern const struct dev_rule dev_defaults[];
extern const int dev_ndefaults;

/* Builds the program from the spec's rules then dev_defaults (a later rule wins, as with v1's
 * devices.allow/deny; nothing matched: denied), loads it and attaches it to the cgroup dir. */
int dev_bpf_attach(const char *cgdir, const struct resources *res);
#endif
