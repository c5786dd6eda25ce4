#include "exeseal.h"
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* Running from a read-only mount (our clone, or a binary installed on one) or a sealed memfd. */
static int sealed(void)
{
	struct statvfs sv;
	if (statvfs("/proc/self/exe", &sv) == 0 && (sv.f_flag & ST_RDONLY)) return 1;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0) return 0;
	int seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	return seals >= 0 && (seals & SEALS) == SEALS;
}

static int reexec(int fd, char **argv)
{
	syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
	return -1;
}

/* A detached bind mount of our own file, made read-only: writes through any path to it (the
 * container's /proc/PID/exe included) fail with EROFS, and the mount is in no namespace where
 * anyone could remount it. */
static int via_ro_bind(char **argv)
{
	int fd = (int)syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0) return seterr("open_tree /proc/self/exe: %s", strerror(errno));
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		int e = errno;
		close(fd);
		return seterr("mount_setattr read-only: %s", strerror(e));
	}
	reexec(fd, argv);
	int e = errno;
	close(fd);
	return seterr("execveat the read-only copy: %s", strerror(e));
}

/* The fallback runc 1.1 uses: the whole binary copied into a memfd, sealed against writes. */
static int via_memfd(char **argv)
{
	int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0) return seterr("open /proc/self/exe: %s", strerror(errno));
	struct stat st;
	int mfd = memfd_create("tsswarm-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 || fstat(src, &st) < 0) {
		int e = errno;
		close(src);
		if (mfd >= 0) close(mfd);
		return seterr("memfd_create: %s", strerror(e));
	}
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = sendfile(mfd, src, NULL, (size_t)left);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(src);
			close(mfd);
			return seterr("copy /proc/self/exe into a memfd: %s", strerror(e));
		}
		left -= n;
	}
	close(src);
	if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0) {
		int e = errno;
		close(mfd);
		return seterr("seal the memfd: %s", strerror(e));
	}
	reexec(mfd, argv);
	int e = errno;
	close(mfd);
	return seterr("execveat the memfd: %s", strerror(e));
}

int exe_seal(char **argv)
{
	if (sealed()) return 0;
	char first[512];
	via_ro_bind(argv);
	snprintf(first, sizeof(first), "%s", g_err);
	via_memfd(argv);
	return seterr("protect the runtime binary (CVE-2019-5736): %s; %s", first, g_err);
}
