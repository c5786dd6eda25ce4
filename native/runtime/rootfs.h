/* Builds the container's filesystem view inside its new mount namespace and pivots into it. */
#ifndef TSS_ROOTFS_H
#define TSS_ROOTFS_H
#include "spec.h"
#include "cgroup.h"

/* wait_cgroup is called before the first cgroup mount: the parent creates the cgroup
 * concurrently with this setup, and the mount needs its directories to exist. */
/* before_pivot runs once the mounts are made, before pivot_root (or chroot): OCI hooks. */
int rootfs_setup(const struct spec *s, struct cgroup *cg, int userns, int (*wait_cgroup)(void),
                 int (*before_pivot)(void));
#endif
