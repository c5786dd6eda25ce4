#include "rootfs.h"
#include "util.h"
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Resolves path inside the rootfs with the kernel treating rootfd as "/", so a symlink in the
 * image (say /dev -> /host) cannot redirect a mount outside the container; creates what is missing. */
static int open_in_root(int rootfd, const char *path, int as_file)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	while (*path == '/') path++;
	if (!*path) return openat(rootfd, ".", O_PATH | O_CLOEXEC);
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	if (fd >= 0 || errno != ENOENT) return fd;
	char parent[4096];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/'), *last;
	if (slash) {
		*slash = 0;
		last = slash + 1;
	} else {
		last = parent;
	}
	int pfd = slash ? open_in_root(rootfd, parent, 0) : openat(rootfd, ".", O_PATH | O_CLOEXEC);
	if (pfd < 0) return -1;
	if (as_file) {
		int f = openat(pfd, last, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (f >= 0)
			close(f);
		else if (errno != EEXIST) {
			int e = errno;
			close(pfd);
			errno = e;
			return -1;
		}
	} else if (mkdirat(pfd, last, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		close(pfd);
		errno = e;
		return -1;
	}
	close(pfd);
	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

static void fdpath(char *buf, size_t cap, int fd)
{
	snprintf(buf, cap, "/proc/self/fd/%d", fd);
}

/* Mount flags that a bind remount must keep, or the kernel refuses it in a user namespace. */
static unsigned long locked_flags(const char *target)
{
	struct statvfs sv;
	if (statvfs(target, &sv) < 0) return 0;
	return sv.f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
}

static int remount_flags(const char *target, unsigned long flags)
{
	return mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags | locked_flags(target), NULL);
}

static int mount_cgroup(const struct mount_spec *m, const char *target, struct cgroup *cg, int rootfd)
{
	if (cg->v2) {
		if (mount(cg->dir[0], target, NULL, MS_BIND | MS_REC, NULL) < 0)
			return seterr("mount %s: bind %s: %s", m->dest, cg->dir[0], strerror(errno));
		return 0;
	}
	/* v1: a tmpfs with one bind per joined hierarchy, each showing the container's own cgroup,
	 * so /sys/fs/cgroup/memory/memory.limit_in_bytes inside reads the container's limit. */
	(void)target;
	if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
		return seterr("mount %s: tmpfs: %s", m->dest, strerror(errno));
	int dfd = open_in_root(rootfd, m->dest, 0);
	if (dfd < 0) return seterr("mount %s: %s", m->dest, strerror(errno));
	for (int i = 0; i < cg->n; i++) {
		char t[64];
		if (mkdirat(dfd, cg->name[i], 0755) < 0 && errno != EEXIST) {
			close(dfd);
			return seterr("mount %s/%s: mkdir: %s", m->dest, cg->name[i], strerror(errno));
		}
		int sub = openat(dfd, cg->name[i], O_PATH | O_CLOEXEC | O_NOFOLLOW);
		fdpath(t, sizeof(t), sub);
		int ok = sub >= 0 && mount(cg->dir[i], t, NULL, MS_BIND, NULL) == 0;
		/* /proc/self/fd/N names what was there before the mount: reopen to reach the new one. */
		if (sub >= 0) close(sub);
		sub = ok ? openat(dfd, cg->name[i], O_PATH | O_CLOEXEC | O_NOFOLLOW) : -1;
		fdpath(t, sizeof(t), sub);
		if (sub < 0 || remount_flags(t, MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->flags & MS_RDONLY)) < 0) {
			int e = errno;
			if (sub >= 0) close(sub);
			close(dfd);
			return seterr("mount %s/%s: bind %s: %s", m->dest, cg->name[i], cg->dir[i], strerror(e));
		}
		close(sub);
	}
	close(dfd);
	return 0;
}

static int do_mount(const struct mount_spec *m, int rootfd, struct cgroup *cg, int (*wait_cgroup)(void))
{
	int as_file = 0;
	struct stat st;
	if (m->bind) {
		if (stat(m->source, &st) < 0)
			return seterr("mount %s: bind source %s: %s", m->dest, m->source, strerror(errno));
		as_file = !S_ISDIR(st.st_mode);
	}
	int fd = open_in_root(rootfd, m->dest, as_file);
	if (fd < 0) return seterr("mount %s: cannot create the mount point: %s", m->dest, strerror(errno));
	char target[64];
	fdpath(target, sizeof(target), fd);
	int rc = 0;
	unsigned long remount = 0; /* flags a bind needs applied by a second, remount call */
	if (strcmp(m->type, "cgroup") == 0 || strcmp(m->type, "cgroup2") == 0) {
		if (wait_cgroup()) {
			close(fd);
			return -1;
		}
		rc = mount_cgroup(m, target, cg, rootfd);
		remount = MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->flags & MS_RDONLY);
	} else if (m->bind) {
		if (mount(m->source, target, NULL, MS_BIND | (m->rec ? MS_REC : 0), NULL) < 0)
			rc = seterr("mount %s: bind %s: %s", m->dest, m->source, strerror(errno));
		remount = m->flags & ~MS_REMOUNT;
	} else {
		const char *data = m->data[0] ? m->data : NULL;
		if (mount(m->source, target, m->type, m->flags, data) < 0) {
			int e = errno;
			/* Without a new netns (or in a userns) sysfs cannot be mounted: bind the host's, read-only. */
			if (strcmp(m->type, "sysfs") == 0 && (e == EPERM || e == EBUSY)) {
				if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0)
					rc = seterr("mount %s: sysfs: %s", m->dest, strerror(e));
				remount = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
			} else {
				rc = seterr("mount %s: %s on %s: %s", m->dest, m->type, m->source, strerror(e));
			}
		}
	}
	close(fd);
	if (rc || (!remount && !m->prop)) return rc;
	/* /proc/self/fd/N still names the covered directory: reopen to reach the new mount. */
	fd = open_in_root(rootfd, m->dest, as_file);
	if (fd < 0) return seterr("mount %s: reopen: %s", m->dest, strerror(errno));
	fdpath(target, sizeof(target), fd);
	if (remount && remount_flags(target, remount) < 0)
		rc = seterr("mount %s: remount with options: %s", m->dest, strerror(errno));
	if (!rc && m->prop && mount(NULL, target, NULL, m->prop, NULL) < 0)
		rc = seterr("mount %s: set propagation: %s", m->dest, strerror(errno));
	close(fd);
	return rc;
}

static const struct {
	const char *name;
	unsigned maj, min;
} std_devs[] = {
	{ "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 }, { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static int make_dev(int rootfd, const char *path, char type, unsigned maj, unsigned min, unsigned mode, int userns,
                    int has_owner, unsigned uid, unsigned gid)
{
	/* In a user namespace mknod is not allowed: bind-mount the host's node instead (as runc does). */
	if (userns) {
		char host[4096], t[64];
		snprintf(host, sizeof(host), "%s", path);
		int fd = open_in_root(rootfd, path, 1);
		if (fd < 0) return seterr("device %s: %s", path, strerror(errno));
		fdpath(t, sizeof(t), fd);
		int r = mount(host, t, NULL, MS_BIND, NULL);
		int e = errno;
		close(fd);
		return r < 0 ? seterr("device %s: bind from host: %s", path, strerror(e)) : 0;
	}
	char parent[4096];
	snprintf(parent, sizeof(parent), "%s", path);
	char *slash = strrchr(parent, '/');
	*slash = 0;
	int dfd = open_in_root(rootfd, parent[0] ? parent : "/", 0);
	if (dfd < 0) return seterr("device %s: %s", path, strerror(errno));
	mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
	unlinkat(dfd, slash + 1, 0);
	int r = mknodat(dfd, slash + 1, kind | mode, makedev(maj, min));
	int e = errno;
	if (!r && has_owner && fchownat(dfd, slash + 1, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
		r = -1;
		e = errno;
	}
	close(dfd);
	return r < 0 ? seterr("device %s: mknod: %s", path, strerror(e)) : 0;
}

static int setup_dev(const struct spec *s, int rootfd, int userns)
{
	mode_t old = umask(0);
	int rc = 0;
	for (size_t i = 0; i < sizeof(std_devs) / sizeof(std_devs[0]) && !rc; i++) {
		char p[32];
		snprintf(p, sizeof(p), "/dev/%s", std_devs[i].name);
		rc = make_dev(rootfd, p, 'c', std_devs[i].maj, std_devs[i].min, 0666, userns, 0, 0, 0);
	}
	for (int i = 0; i < s->ndevices && !rc; i++) {
		const struct dev_node *d = &s->devices[i];
		rc = make_dev(rootfd, d->path, d->type, (unsigned)d->major, (unsigned)d->minor,
		              d->has_mode ? d->mode : 0666, userns, d->has_uid || d->has_gid, d->uid, d->gid);
	}
	umask(old);
	if (rc) return rc;
	int dfd = open_in_root(rootfd, "/dev", 0);
	if (dfd < 0) return seterr("/dev: %s", strerror(errno));
	static const char *links[][2] = { { "/proc/self/fd", "fd" },
		                          { "/proc/self/fd/0", "stdin" },
		                          { "/proc/self/fd/1", "stdout" },
		                          { "/proc/self/fd/2", "stderr" },
		                          { "pts/ptmx", "ptmx" } };
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (strcmp(links[i][1], "ptmx") == 0) unlinkat(dfd, "ptmx", 0);
		if (symlinkat(links[i][0], dfd, links[i][1]) < 0 && errno != EEXIST) {
			rc = seterr("/dev/%s: symlink: %s", links[i][1], strerror(errno));
			break;
		}
	}
	close(dfd);
	return rc;
}

static int mask_paths(const struct spec *s)
{
	for (int i = 0; i < s->nmasked; i++) {
		struct stat st;
		const char *p = s->masked[i];
		if (stat(p, &st) < 0) continue; /* absent paths need no mask */
		int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL)
		                            : mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0 && errno != ENOENT) return seterr("maskedPaths %s: %s", p, strerror(errno));
	}
	for (int i = 0; i < s->nreadonly; i++) {
		const char *p = s->readonly[i];
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT) continue;
			return seterr("readonlyPaths %s: %s", p, strerror(errno));
		}
		if (remount_flags(p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC) < 0)
			return seterr("readonlyPaths %s: remount: %s", p, strerror(errno));
	}
	return 0;
}

int rootfs_setup(const struct spec *s, struct cgroup *cg, int userns, int (*wait_cgroup)(void),
                 int (*before_pivot)(void))
{
	const char *root = s->root_path, *mnt_path = NULL;
	if (ns_path_for(s, CLONE_NEWNS, &mnt_path) && mnt_path) {
		/* A mount namespace joined by path comes with its root and mounts (as nsenter, or crun):
		 * nothing is mounted in it, the process starts at its "/". */
		if (before_pivot()) return -1;
		if (chdir("/") < 0) return seterr("chdir / in %s: %s", mnt_path, strerror(errno));
		return 0;
	}
	if (!(s->ns_flags & CLONE_NEWNS)) {
		/* No mount namespace asked for: the best we can do is a chroot. */
		if (before_pivot()) return -1;
		if (chroot(root) < 0 || chdir("/") < 0) return seterr("chroot %s: %s", root, strerror(errno));
		return 0;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return seterr("make mounts private: %s", strerror(errno));
	if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
		return seterr("bind rootfs %s: %s", root, strerror(errno));
	int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) return seterr("open rootfs %s: %s", root, strerror(errno));
	int dev_mounted = 0;
	for (int i = 0; i < s->nmounts; i++) {
		if (do_mount(&s->mounts[i], rootfd, cg, wait_cgroup)) {
			close(rootfd);
			return -1;
		}
		if (strcmp(s->mounts[i].dest, "/dev") == 0) dev_mounted = 1;
	}
	if (dev_mounted && setup_dev(s, rootfd, userns)) {
		close(rootfd);
		return -1;
	}
	close(rootfd);
	if (before_pivot()) return -1;
	/* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the container. */
	if (chdir(root) < 0) return seterr("chdir %s: %s", root, strerror(errno));
	if (syscall(SYS_pivot_root, ".", ".") < 0) return seterr("pivot_root %s: %s", root, strerror(errno));
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return seterr("old root: make slave: %s", strerror(errno));
	if (umount2(".", MNT_DETACH) < 0) return seterr("detach old root: %s", strerror(errno));
	if (chdir("/") < 0) return seterr("chdir /: %s", strerror(errno));
	if (s->rootfs_prop && mount(NULL, "/", NULL, s->rootfs_prop, NULL) < 0)
		return seterr("rootfsPropagation: %s", strerror(errno));
	if (mask_paths(s)) return -1;
	if (s->root_ro && remount_flags("/", MS_RDONLY) < 0)
		return seterr("root.readonly: remount / read-only: %s", strerror(errno));
	return 0;
}
