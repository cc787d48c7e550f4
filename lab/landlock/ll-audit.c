// SPDX-License-Identifier: GPL-2.0
/*
 * `ll-audit on|off`: enables or disables the kernel's audit (AUDIT_SET over netlink), for a
 * guest with no auditd: the records then go to the kernel log as `audit: type=…` lines
 * (rate-limited by printk).
 * `ll-audit collect`: enables audit and registers itself as the audit daemon, then prints
 * every record as `type=N text` on stdout, one a line, until killed: no record is lost.
 */
#include <err.h>
#include <stdio.h>
#include <linux/audit.h>
#include <linux/netlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct {
		struct nlmsghdr h;
		struct audit_status s;
	} req = {};
	struct {
		struct nlmsghdr h;
		struct nlmsgerr e;
		char pad[256];
	} ack;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	int fd;

	int collect = argc == 2 && strcmp(argv[1], "collect") == 0;

	if (argc != 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off") && !collect))
		errx(2, "usage: ll-audit on|off|collect");
	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT);
	if (fd < 0)
		err(1, "socket(NETLINK_AUDIT)");
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = AUDIT_SET;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.h.nlmsg_seq = 1;
	req.s.mask = AUDIT_STATUS_ENABLED;
	req.s.enabled = strcmp(argv[1], "off") != 0;
	if (collect) {
		req.s.mask |= AUDIT_STATUS_PID;
		req.s.pid = getpid();
	}
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		err(1, "sendto");
	if (recv(fd, &ack, sizeof(ack), 0) < 0)
		err(1, "recv");
	if (ack.h.nlmsg_type == NLMSG_ERROR && ack.e.error)
		errx(1, "AUDIT_SET: error %d", ack.e.error);
	if (!collect)
		return 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		char buf[9000];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n < 0)
			err(1, "recv");
		for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type >= AUDIT_FIRST_USER_MSG)
				printf("type=%d %.*s\n", h->nlmsg_type,
				       (int)(h->nlmsg_len - NLMSG_HDRLEN),
				       (char *)NLMSG_DATA(h));
	}
}
