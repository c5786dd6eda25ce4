/*
 * tsswarm-netattach: attaches one task to its overlay networks in one process, with no spawn (but
 * nft, when VIP rules are given). It creates the task's named network namespace the way `ip netns
 * add` does, then talks rtnetlink from inside it: one veth pair per attachment, created with its
 * host end placed straight into the network's sandbox namespace (IFLA_NET_NS_FD) and enslaved there
 * to the bridge by its fixed index, the container end configured here; lo up; the default route.
 * A spawn of `unshare ... ip -batch` costs more than all of the kernel's work; this does not.
 *
 *   tsswarm-netattach [-g GATEWAY] [-f RULES.nft] NETNS VETH SANDBOX,IP/PREFIX,MTU...
 *
 * See native/README.md. Any failure: one line on stderr naming the step and the errno, exit 1, and
 * nothing left behind (the namespace it made is deleted, its veths first). Usage errors exit 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETNS_RUN_DIR "/run/netns"
/* The sandbox's bridge is created with this index (src/network/names.ts BRIDGE_INDEX). */
#define BRIDGE_INDEX 100
#define MAX_ATTACHMENTS 16

struct attachment {
	const char *sandbox;
	int sandbox_fd;
	struct in_addr ip;
	int prefix;
	int mtu;
	char eth[IFNAMSIZ];
	int ifindex;
	int created;
};

static const char *netns_name = "?";
static char netns_path[PATH_MAX];
/* What rollback must undo: the namespace file exists (made by us), and what was created in it. */
static int made_netns_file;
static struct attachment attachments[MAX_ATTACHMENTS];
static int attachment_count;
static int rtnl = -1;
static uint32_t sequence;
/* The kernel's extended ack message of the last failed request (NETLINK_EXT_ACK), if any. */
static char kernel_message[256];

static void rollback(void);

static void usage(const char *why)
{
	fprintf(stderr,
	        "tsswarm-netattach: %s\n"
	        "usage: tsswarm-netattach [-g GATEWAY] [-f RULES.nft] NETNS VETH SANDBOX,IP/PREFIX,MTU...\n",
	        why);
	exit(2);
}

/* The one error line: the step, the errno (name and number) and what the kernel said. */
static void fail(int err, const char *fmt, ...)
{
	char step[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(step, sizeof step, fmt, ap);
	va_end(ap);
	if (err > 0) {
		fprintf(stderr, "tsswarm-netattach: %s: %s: %s (errno %d)%s%s\n", netns_name, step, strerror(err), err,
		        kernel_message[0] ? ": " : "", kernel_message);
	} else {
		fprintf(stderr, "tsswarm-netattach: %s: %s\n", netns_name, step);
	}
	rollback();
	exit(1);
}

/* ------------------------------------------------------------------ rtnetlink */

struct request {
	struct nlmsghdr header;
	char payload[2048];
};

static void request_init(struct request *r, uint16_t type, uint16_t flags, const void *body, size_t len)
{
	memset(r, 0, sizeof *r);
	r->header.nlmsg_len = NLMSG_LENGTH(len);
	r->header.nlmsg_type = type;
	r->header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	memcpy(NLMSG_DATA(&r->header), body, len);
}

static struct rtattr *attr_put(struct request *r, uint16_t type, const void *data, size_t len)
{
	size_t at = NLMSG_ALIGN(r->header.nlmsg_len);
	if (at + RTA_SPACE(len) > sizeof *r) {
		fprintf(stderr, "tsswarm-netattach: netlink request too large\n");
		abort();
	}
	struct rtattr *a = (struct rtattr *)((char *)r + at);
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len > 0) memcpy(RTA_DATA(a), data, len);
	r->header.nlmsg_len = at + RTA_ALIGN(a->rta_len);
	return a;
}

static void attr_u32(struct request *r, uint16_t type, uint32_t value)
{
	attr_put(r, type, &value, sizeof value);
}

static void attr_str(struct request *r, uint16_t type, const char *s)
{
	attr_put(r, type, s, strlen(s) + 1);
}

static struct rtattr *nest_begin(struct request *r, uint16_t type)
{
	return attr_put(r, type, NULL, 0);
}

static void nest_end(struct request *r, struct rtattr *nest)
{
	nest->rta_len = (char *)r + r->header.nlmsg_len - (char *)nest;
}

static void remember_kernel_message(const struct nlmsghdr *m)
{
	kernel_message[0] = 0;
	if (!(m->nlmsg_flags & NLM_F_ACK_TLVS)) return;
	/* With NETLINK_CAP_ACK the error carries only the request's header, then the TLVs. */
	const char *start = (const char *)NLMSG_DATA(m) + sizeof(struct nlmsgerr);
	int left = (int)m->nlmsg_len - (int)(start - (const char *)m);
	for (const struct rtattr *a = (const void *)start; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
		if (a->rta_type == NLMSGERR_ATTR_MSG)
			snprintf(kernel_message, sizeof kernel_message, "%s", (const char *)RTA_DATA(a));
	}
}

/*
 * Sends one request and waits for its ack: 0, or a positive errno. A reply that comes before the ack
 * (RTM_GETLINK) is copied to `reply`.
 */
static int talk(struct request *r, struct request *reply)
{
	r->header.nlmsg_seq = ++sequence;
	kernel_message[0] = 0;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(rtnl, r, r->header.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return errno;
	static char buf[32768];
	for (;;) {
		ssize_t n = recv(rtnl, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == EINTR) continue;
			return errno;
		}
		int left = (int)n;
		for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
			if (m->nlmsg_seq != r->header.nlmsg_seq) continue;
			if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(m);
				if (e->error != 0) remember_kernel_message(m);
				return -e->error;
			}
			if (reply && m->nlmsg_len <= sizeof *reply) memcpy(reply, m, m->nlmsg_len);
		}
	}
}

static void open_rtnetlink(void)
{
	rtnl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (rtnl < 0) fail(errno, "open an rtnetlink socket in the task namespace");
	int one = 1;
	/* Best effort: the kernel's own words in error lines. */
	setsockopt(rtnl, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
	setsockopt(rtnl, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
}

/* Sets a link's flags (up) by index, or by name when index is 0. */
static int link_set_up(int index, const char *name)
{
	struct ifinfomsg ifi = {
		.ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP
	};
	struct request r;
	request_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	if (index == 0) attr_str(&r, IFLA_IFNAME, name);
	return talk(&r, NULL);
}

static int link_index(const char *name, int *index)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct request r, reply;
	request_init(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
	attr_str(&r, IFLA_IFNAME, name);
	memset(&reply, 0, sizeof reply);
	int err = talk(&r, &reply);
	if (err) return err;
	if (reply.header.nlmsg_type != RTM_NEWLINK) return ENODEV;
	*index = ((struct ifinfomsg *)NLMSG_DATA(&reply.header))->ifi_index;
	return 0;
}

static void mac_for_ip(struct in_addr ip, unsigned char mac[6])
{
	const unsigned char *octets = (const unsigned char *)&ip.s_addr;
	mac[0] = 0x02;
	mac[1] = 0x42;
	memcpy(mac + 2, octets, 4);
}

/*
 * One message creates the pair, as `ip link add VETH netns SANDBOX mtu M master if100 up type veth
 * peer name ethN address MAC mtu M` does: the host end goes straight into the sandbox (where the
 * kernel resolves IFLA_MASTER), the peer stays here, in the task namespace, down.
 */
static int create_veth(const char *veth, struct attachment *a)
{
	struct ifinfomsg host = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	struct ifinfomsg peer = { .ifi_family = AF_UNSPEC };
	unsigned char mac[6];
	mac_for_ip(a->ip, mac);
	struct request r;
	request_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &host, sizeof host);
	attr_str(&r, IFLA_IFNAME, veth);
	attr_u32(&r, IFLA_NET_NS_FD, (uint32_t)a->sandbox_fd);
	attr_u32(&r, IFLA_MTU, (uint32_t)a->mtu);
	attr_u32(&r, IFLA_MASTER, BRIDGE_INDEX);
	struct rtattr *linkinfo = nest_begin(&r, IFLA_LINKINFO);
	attr_str(&r, IFLA_INFO_KIND, "veth");
	struct rtattr *data = nest_begin(&r, IFLA_INFO_DATA);
	struct rtattr *peer_attr = attr_put(&r, VETH_INFO_PEER, &peer, sizeof peer);
	/* The peer's attributes follow its ifinfomsg inside VETH_INFO_PEER. */
	attr_str(&r, IFLA_IFNAME, a->eth);
	attr_put(&r, IFLA_ADDRESS, mac, sizeof mac);
	attr_u32(&r, IFLA_MTU, (uint32_t)a->mtu);
	nest_end(&r, peer_attr);
	nest_end(&r, data);
	nest_end(&r, linkinfo);
	return talk(&r, NULL);
}

/* No IPv6 link-local address on the container end (`addrgenmode none`); set before it goes up. */
static int disable_addrgen(int index)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	struct request r;
	request_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	struct rtattr *spec = nest_begin(&r, IFLA_AF_SPEC);
	struct rtattr *inet6 = nest_begin(&r, AF_INET6);
	uint8_t mode = IN6_ADDR_GEN_MODE_NONE;
	attr_put(&r, IFLA_INET6_ADDR_GEN_MODE, &mode, sizeof mode);
	nest_end(&r, inet6);
	nest_end(&r, spec);
	int err = talk(&r, NULL);
	/* A kernel without IPv6 makes no link-local address to begin with. */
	return err == EAFNOSUPPORT ? 0 : err;
}

static int add_address(const struct attachment *a)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_INET,
		                 .ifa_prefixlen = (unsigned char)a->prefix,
		                 .ifa_scope = RT_SCOPE_UNIVERSE,
		                 .ifa_index = (unsigned)a->ifindex };
	struct request r;
	request_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	attr_put(&r, IFA_LOCAL, &a->ip, sizeof a->ip);
	attr_put(&r, IFA_ADDRESS, &a->ip, sizeof a->ip);
	return talk(&r, NULL);
}

static int add_default_route(struct in_addr gateway)
{
	struct rtmsg rtm = { .rtm_family = AF_INET,
		             .rtm_table = RT_TABLE_MAIN,
		             .rtm_protocol = RTPROT_BOOT,
		             .rtm_scope = RT_SCOPE_UNIVERSE,
		             .rtm_type = RTN_UNICAST };
	struct request r;
	request_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtm, sizeof rtm);
	attr_put(&r, RTA_GATEWAY, &gateway, sizeof gateway);
	return talk(&r, NULL);
}

static void delete_link(const char *name)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct request r;
	request_init(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
	attr_str(&r, IFLA_IFNAME, name);
	talk(&r, NULL);
}

/* ------------------------------------------------------------------ the namespace */

/*
 * As iproute2's `ip netns add`: /run/netns exists and is a shared mount point (made one by binding
 * it onto itself if it is not), so that the namespace's bind mount propagates to every mount
 * namespace and an unmount anywhere frees it everywhere.
 */
static void prepare_run_dir(void)
{
	if (mkdir(NETNS_RUN_DIR, S_IRWXU | S_IRGRP | S_IXGRP | S_IROTH | S_IXOTH) < 0 && errno != EEXIST)
		fail(errno, "create %s", NETNS_RUN_DIR);
	int made_mount_point = 0;
	while (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) < 0) {
		if (errno != EINVAL || made_mount_point) fail(errno, "make %s a shared mount", NETNS_RUN_DIR);
		if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) < 0)
			fail(errno, "bind %s onto itself", NETNS_RUN_DIR);
		made_mount_point = 1;
	}
}

/* Creates the namespace, bound at /run/netns/NAME, and moves this process into it. */
static void create_netns(void)
{
	prepare_run_dir();
	int fd = open(netns_path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
	if (fd < 0) fail(errno, "create namespace file %s", netns_path);
	close(fd);
	made_netns_file = 1;
	if (unshare(CLONE_NEWNET) < 0) fail(errno, "unshare the network namespace");
	/* Single-threaded: /proc/self/ns/net is this thread's new namespace. */
	if (mount("/proc/self/ns/net", netns_path, "none", MS_BIND, NULL) < 0)
		fail(errno, "bind the namespace at %s", netns_path);
}

static void rollback(void)
{
	if (!made_netns_file) return;
	/* The container ends first: deleting one deletes its sandbox end at once, not when the namespace dies. */
	if (rtnl >= 0) {
		for (int i = 0; i < attachment_count; i++)
			if (attachments[i].created) delete_link(attachments[i].eth);
	}
	umount2(netns_path, MNT_DETACH); /* EINVAL when never bound: nothing to undo */
	unlink(netns_path);
	made_netns_file = 0;
}

static void apply_rules(const char *rules)
{
	pid_t pid = fork();
	if (pid < 0) fail(errno, "fork for nft -f %s", rules);
	if (pid == 0) {
		execlp("nft", "nft", "-f", rules, (char *)NULL);
		fprintf(stderr, "tsswarm-netattach: %s: exec nft: %s\n", netns_name, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) fail(errno, "wait for nft -f %s", rules);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFEXITED(status)) fail(0, "VIP rules: nft -f %s failed (exit %d)", rules, WEXITSTATUS(status));
		fail(0, "VIP rules: nft -f %s killed by signal %d", rules, WTERMSIG(status));
	}
}

/* ------------------------------------------------------------------ arguments */

static int valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p <= ' ' || *p == ',' || *p == ':') return 0;
	return 1;
}

static int parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) return 0;
	*out = (int)v;
	return 1;
}

/* SANDBOX,IP/PREFIX,MTU */
static void parse_attachment(char *spec, int i)
{
	struct attachment *a = &attachments[i];
	char *ip = strchr(spec, ','), *mtu = ip ? strchr(ip + 1, ',') : NULL, *prefix;
	char why[512];
	if (!ip || !mtu) goto bad;
	*ip++ = 0;
	*mtu++ = 0;
	prefix = strchr(ip, '/');
	if (!prefix) goto bad;
	*prefix++ = 0;
	if (!valid_name(spec, NAME_MAX)) {
		snprintf(why, sizeof why, "attachment %d: bad sandbox namespace name \"%s\"", i, spec);
		usage(why);
	}
	if (inet_pton(AF_INET, ip, &a->ip) != 1) {
		snprintf(why, sizeof why, "attachment %d: not an IPv4 address: \"%s\"", i, ip);
		usage(why);
	}
	if (!parse_int(prefix, 0, 32, &a->prefix)) {
		snprintf(why, sizeof why, "attachment %d: bad prefix length \"%s\"", i, prefix);
		usage(why);
	}
	if (!parse_int(mtu, 68, 65535, &a->mtu)) {
		snprintf(why, sizeof why, "attachment %d: bad MTU \"%s\" (68-65535)", i, mtu);
		usage(why);
	}
	a->sandbox = spec;
	a->sandbox_fd = -1;
	snprintf(a->eth, sizeof a->eth, "eth%d", i);
	return;
bad:
	snprintf(why, sizeof why, "attachment %d: \"%s\" is not SANDBOX,IP/PREFIX,MTU", i, spec);
	usage(why);
}

int main(int argc, char **argv)
{
	const char *gateway_text = NULL, *rules = NULL;
	int opt;
	while ((opt = getopt(argc, argv, "+g:f:h")) != -1) {
		switch (opt) {
		case 'g': gateway_text = optarg; break;
		case 'f': rules = optarg; break;
		default: usage("bad option");
		}
	}
	if (argc - optind < 3) usage("need NETNS, VETH and at least one attachment");
	netns_name = argv[optind];
	const char *veth = argv[optind + 1];
	if (!valid_name(netns_name, NAME_MAX)) usage("bad namespace name");
	if (!valid_name(veth, IFNAMSIZ - 1)) usage("bad veth name (1-15 characters, no '/', ',', ':' or spaces)");
	attachment_count = argc - optind - 2;
	if (attachment_count > MAX_ATTACHMENTS) usage("too many attachments (at most 16)");
	for (int i = 0; i < attachment_count; i++) parse_attachment(argv[optind + 2 + i], i);
	struct in_addr gateway;
	if (gateway_text && inet_pton(AF_INET, gateway_text, &gateway) != 1) usage("-g: not an IPv4 address");
	snprintf(netns_path, sizeof netns_path, "%s/%s", NETNS_RUN_DIR, netns_name);

	/* The sandboxes are opened first: a missing one fails before anything is made. */
	for (int i = 0; i < attachment_count; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", NETNS_RUN_DIR, attachments[i].sandbox);
		attachments[i].sandbox_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (attachments[i].sandbox_fd < 0) fail(errno, "open sandbox namespace %s", path);
	}

	create_netns();
	open_rtnetlink();
	int err;
	if ((err = link_set_up(0, "lo"))) fail(err, "set lo up");
	for (int i = 0; i < attachment_count; i++) {
		struct attachment *a = &attachments[i];
		if ((err = create_veth(veth, a)))
			fail(err, "create veth %s (in %s, master if%d) peer %s", veth, a->sandbox, BRIDGE_INDEX,
			     a->eth);
		a->created = 1;
		if ((err = link_index(a->eth, &a->ifindex))) fail(err, "find %s", a->eth);
		if ((err = disable_addrgen(a->ifindex))) fail(err, "set %s addrgenmode none", a->eth);
		if ((err = add_address(a))) {
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &a->ip, ip, sizeof ip);
			fail(err, "add address %s/%d to %s", ip, a->prefix, a->eth);
		}
		if ((err = link_set_up(a->ifindex, NULL))) fail(err, "set %s up", a->eth);
	}
	if (gateway_text && (err = add_default_route(gateway))) fail(err, "add default route via %s", gateway_text);
	if (rules) apply_rules(rules);
	return 0;
}
