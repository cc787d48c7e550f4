// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile input for the Landlock system calls, with the exact errno each call must give.
 * The expected values are what the C Landlock of Linux 7.3 returns (security/landlock/
 * syscalls.c); the Rust Landlock is held to the same. Prints TAP on stdout.
 *
 * Built by the lab on the host (static, against the kernel's exported uapi headers).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ALL_FS ((LANDLOCK_ACCESS_FS_RESOLVE_UNIX << 1) - 1)
#define ALL_NET ((LANDLOCK_ACCESS_NET_CONNECT_SEND_UDP << 1) - 1)
#define ALL_SCOPE ((LANDLOCK_SCOPE_SIGNAL << 1) - 1)
#define RO_FILE (LANDLOCK_ACCESS_FS_READ_FILE)

static long create_ruleset(const void *attr, size_t size, uint32_t flags)
{
	return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

static long add_rule(int fd, int type, const void *attr, uint32_t flags)
{
	return syscall(SYS_landlock_add_rule, fd, type, attr, flags);
}

static long restrict_self(int fd, uint32_t flags)
{
	return syscall(SYS_landlock_restrict_self, fd, flags);
}

static int n, failed;

static void result(int pass, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", pass ? "ok" : "not ok", ++n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!pass)
		failed++;
}

/* expect(desc, ret, err): err 0 means success (ret >= 0), else ret == -1 && errno == err. */
#define EXPECT(desc, call, err)                                                        \
	do {                                                                            \
		errno = 0;                                                              \
		long r_ = (call);                                                       \
		int e_ = errno;                                                         \
		int pass_ = (err) ? (r_ == -1 && e_ == (err)) : (r_ >= 0);              \
		result(pass_, "%s", desc);                                              \
		if (!pass_)                                                             \
			printf("# expected %s, got ret=%ld errno=%d (%s)\n",          \
			       (err) ? strerrorname_np(err) : "success", r_, e_,        \
			       e_ ? strerrorname_np(e_) : "0");                         \
		if (r_ >= 0 && (err) == 0 && close_after)                               \
			close(r_);                                                      \
	} while (0)

static int close_after;

static int fs_ruleset(uint64_t fs)
{
	struct landlock_ruleset_attr a = { .handled_access_fs = fs };

	return create_ruleset(&a, sizeof(a), 0);
}

/* Runs fn in a child and reports its exit status as one result. */
static void in_child(const char *desc, int (*fn)(void))
{
	pid_t p = fork();
	int st = 0;

	if (p == 0)
		_exit(fn());
	waitpid(p, &st, 0);
	result(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", desc);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		printf("# child status %#x (exit code = failing step)\n", st);
}

static void test_create_ruleset(void)
{
	struct landlock_ruleset_attr a = { .handled_access_fs = RO_FILE };
	char *page = aligned_alloc(4096, 3 * 4096);
	char *hole;
	long abi;

	close_after = 1;
	abi = create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	result(abi >= 1, "create_ruleset VERSION gives the ABI version (%ld)", abi);
	EXPECT("create_ruleset ERRATA gives the errata mask", create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_ERRATA), 0);
	EXPECT("VERSION with an attr is EINVAL", create_ruleset(&a, 0, LANDLOCK_CREATE_RULESET_VERSION), EINVAL);
	EXPECT("VERSION with a size is EINVAL", create_ruleset(NULL, 1, LANDLOCK_CREATE_RULESET_VERSION), EINVAL);
	EXPECT("VERSION|ERRATA is EINVAL", create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION | LANDLOCK_CREATE_RULESET_ERRATA), EINVAL);
	EXPECT("unknown flag 1<<2 is EINVAL", create_ruleset(NULL, 0, 1U << 2), EINVAL);
	EXPECT("unknown flag 1<<31 is EINVAL", create_ruleset(NULL, 0, 1U << 31), EINVAL);
	EXPECT("unknown flag with a valid attr is EINVAL", create_ruleset(&a, sizeof(a), 1U << 31), EINVAL);
	EXPECT("NULL attr is EFAULT", create_ruleset(NULL, sizeof(a), 0), EFAULT);
	EXPECT("NULL attr, size 0 is EFAULT", create_ruleset(NULL, 0, 0), EFAULT);
	EXPECT("size 0 is EINVAL", create_ruleset(&a, 0, 0), EINVAL);
	EXPECT("size 1 is EINVAL", create_ruleset(&a, 1, 0), EINVAL);
	EXPECT("size 7 (less than handled_access_fs) is EINVAL", create_ruleset(&a, 7, 0), EINVAL);
	EXPECT("size 8 (handled_access_fs only) works", create_ruleset(&a, 8, 0), 0);
	EXPECT("size 9 (odd) works", create_ruleset(&a, 9, 0), 0);
	EXPECT("size 23 works", create_ruleset(&a, 23, 0), 0);
	EXPECT("size sizeof(attr) works", create_ruleset(&a, sizeof(a), 0), 0);

	memset(page, 0, 3 * 4096);
	memcpy(page, &a, sizeof(a));
	EXPECT("size 4096, zero tail works", create_ruleset(page, 4096, 0), 0);
	EXPECT("size 4097 is E2BIG", create_ruleset(page, 4097, 0), E2BIG);
	EXPECT("size SIZE_MAX is E2BIG", create_ruleset(page, SIZE_MAX, 0), E2BIG);
	page[sizeof(a)] = 1;
	EXPECT("non-zero byte just past the struct is E2BIG", create_ruleset(page, sizeof(a) + 1, 0), E2BIG);
	page[sizeof(a)] = 0;
	page[4095] = 1;
	EXPECT("non-zero last byte of a 4096-byte attr is E2BIG", create_ruleset(page, 4096, 0), E2BIG);
	page[4095] = 0;
	memcpy(page + 4096 + 1, &a, sizeof(a));
	EXPECT("misaligned attr pointer works", create_ruleset(page + 4096 + 1, sizeof(a), 0), 0);

	hole = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 4096);
	EXPECT("unmapped attr is EFAULT", create_ruleset(hole, sizeof(a), 0), EFAULT);
	/* The struct straddles the end of a readable page. */
	hole = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole + 4096, 4096);
	memcpy(hole + 4096 - 8, &a, 8);
	EXPECT("attr running into an unmapped page is EFAULT", create_ruleset(hole + 4096 - 8, sizeof(a), 0), EFAULT);
	EXPECT("attr of exactly 8 bytes before an unmapped page works", create_ruleset(hole + 4096 - 8, 8, 0), 0);
	munmap(hole, 4096);

	{
		struct landlock_ruleset_attr z = {};
		EXPECT("nothing handled is ENOMSG", create_ruleset(&z, sizeof(z), 0), ENOMSG);
		z.handled_access_fs = 1ULL << 63;
		EXPECT("fs access bit 63 is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
		z.handled_access_fs = ALL_FS + 1;
		EXPECT("first unknown fs access bit is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
		z.handled_access_fs = ALL_FS;
		EXPECT("every known fs access works", create_ruleset(&z, sizeof(z), 0), 0);
		z.handled_access_net = ALL_NET + 1;
		EXPECT("unknown net access is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
		z.handled_access_net = ALL_NET;
		z.scoped = ALL_SCOPE + 1;
		EXPECT("unknown scope is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
		z.scoped = ALL_SCOPE;
		EXPECT("every known fs, net access and scope works", create_ruleset(&z, sizeof(z), 0), 0);
		z.quiet_access_fs = ALL_FS + 1;
		EXPECT("quiet fs access not handled is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
		z.quiet_access_fs = 0;
		z.handled_access_net = 0;
		z.quiet_access_net = LANDLOCK_ACCESS_NET_BIND_TCP;
		EXPECT("quiet net access not handled is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
		z.quiet_access_net = 0;
		z.scoped = 0;
		z.quiet_scoped = LANDLOCK_SCOPE_SIGNAL;
		EXPECT("quiet scope not handled is EINVAL", create_ruleset(&z, sizeof(z), 0), EINVAL);
	}
	free(page);
	close_after = 0;
}

static void test_ruleset_fd(void)
{
	/* A right of ABI 1: the fd's behaviour does not depend on the ABI version. */
	int rs = fs_ruleset(LANDLOCK_ACCESS_FS_READ_FILE);
	char c;
	int fl;

	EXPECT("read() on a ruleset fd is EINVAL", read(rs, &c, 1), EINVAL);
	EXPECT("write() on a ruleset fd is EINVAL", write(rs, "x", 1), EINVAL);
	fl = fcntl(rs, F_GETFD);
	result(fl >= 0 && (fl & FD_CLOEXEC), "a ruleset fd is close-on-exec");
	close(rs);
}

static void test_add_rule(void)
{
	int rs = fs_ruleset(RO_FILE | LANDLOCK_ACCESS_FS_READ_DIR);
	int rs_net;
	int devnull = open("/dev/null", O_RDONLY);
	int tmp = open("/tmp", O_PATH | O_DIRECTORY);
	int file = open("/proc/self/exe", O_PATH);
	int pipes[2];
	struct landlock_path_beneath_attr pb = { .allowed_access = RO_FILE, .parent_fd = tmp };
	struct landlock_net_port_attr np = { .allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP, .port = 80 };
	struct landlock_ruleset_attr na = { .handled_access_net = LANDLOCK_ACCESS_NET_CONNECT_TCP };
	struct landlock_path_beneath_attr bad;

	pipe(pipes);
	EXPECT("add_rule with a valid path rule works", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), 0);
	EXPECT("the same rule again works (merged)", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), 0);
	EXPECT("unknown flag 1<<1 is EINVAL", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 1U << 1), EINVAL);
	EXPECT("unknown flag 1<<31 is EINVAL", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 1U << 31), EINVAL);
	EXPECT("ruleset fd -1 is EBADF", add_rule(-1, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EBADF);
	EXPECT("ruleset fd never opened is EBADF", add_rule(999, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EBADF);
	EXPECT("ruleset fd INT_MAX is EBADF", add_rule(0x7fffffff, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EBADF);
	EXPECT("/dev/null as ruleset fd is EBADFD", add_rule(devnull, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EBADFD);
	EXPECT("a pipe as ruleset fd is EBADFD", add_rule(pipes[0], LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EBADFD);
	EXPECT("an O_PATH fd as ruleset fd is EBADF", add_rule(tmp, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EBADF);
	EXPECT("rule type 0 is EINVAL", add_rule(rs, 0, &pb, 0), EINVAL);
	EXPECT("rule type 99 is EINVAL", add_rule(rs, 99, &pb, 0), EINVAL);
	EXPECT("rule type -1 is EINVAL", add_rule(rs, -1, &pb, 0), EINVAL);
	EXPECT("NULL rule attr is EFAULT", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, NULL, 0), EFAULT);
	EXPECT("rule attr at address 1 is EFAULT", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, (void *)1, 0), EFAULT);

	bad = pb;
	bad.allowed_access = 0;
	EXPECT("empty allowed_access is ENOMSG", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), ENOMSG);
	bad.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE;
	EXPECT("access not handled by the ruleset is EINVAL", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EINVAL);
	bad.allowed_access = 1ULL << 63;
	EXPECT("unknown access bit is EINVAL", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EINVAL);
	bad.allowed_access = RO_FILE;
	EXPECT("QUIET without quiet masks is EINVAL", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, LANDLOCK_ADD_RULE_QUIET), EINVAL);
	bad.parent_fd = -1;
	EXPECT("parent fd -1 is EBADF", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EBADF);
	bad.parent_fd = 999;
	EXPECT("parent fd never opened is EBADF", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EBADF);
	bad.parent_fd = rs;
	EXPECT("a ruleset fd as parent is EBADFD", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EBADFD);
	bad.parent_fd = pipes[1];
	EXPECT("a pipe as parent is EBADFD", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EBADFD);
	bad.parent_fd = devnull;
	EXPECT("/dev/null (opened, not O_PATH) as parent works", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), 0);
	bad.parent_fd = file;
	EXPECT("a regular file with a file right works", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), 0);
	bad.allowed_access = LANDLOCK_ACCESS_FS_READ_DIR;
	EXPECT("a regular file with a directory right is EINVAL", add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &bad, 0), EINVAL);

	EXPECT("a net rule on an fs-only ruleset is EINVAL", add_rule(rs, LANDLOCK_RULE_NET_PORT, &np, 0), EINVAL);
	rs_net = create_ruleset(&na, sizeof(na), 0);
	EXPECT("a valid net rule works", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), 0);
	np.port = 0;
	EXPECT("a net rule for port 0 works", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), 0);
	np.port = 65535;
	EXPECT("a net rule for port 65535 works", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), 0);
	np.port = 65536;
	EXPECT("port 65536 is EINVAL", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), EINVAL);
	np.port = UINT64_MAX;
	EXPECT("port UINT64_MAX is EINVAL", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), EINVAL);
	np.port = 80;
	np.allowed_access = 0;
	EXPECT("empty net allowed_access is ENOMSG", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), ENOMSG);
	np.allowed_access = LANDLOCK_ACCESS_NET_BIND_TCP;
	EXPECT("net access not handled is EINVAL", add_rule(rs_net, LANDLOCK_RULE_NET_PORT, &np, 0), EINVAL);
	EXPECT("a path rule on a net-only ruleset is EINVAL", add_rule(rs_net, LANDLOCK_RULE_PATH_BENEATH, &pb, 0), EINVAL);
	close(rs_net);
	close(rs);
	close(devnull);
	close(tmp);
	close(file);
	close(pipes[0]);
	close(pipes[1]);
}

static int child_restrict_errors(void)
{
	int rs = fs_ruleset(RO_FILE);
	int devnull = open("/dev/null", O_RDONLY);

	if (restrict_self(rs, 1U << 31) != -1 || errno != EINVAL)
		return 1;
	if (restrict_self(rs, 1U << 5) != -1 || errno != EINVAL)
		return 2;
	if (restrict_self(-1, 0) != -1 || errno != EBADF)
		return 3;
	if (restrict_self(devnull, 0) != -1 || errno != EBADFD)
		return 4;
	if (restrict_self(-1, LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF) != -1 || errno != EBADF)
		return 5;
	/* -1 with only LOG_SUBDOMAINS_OFF is the one accepted use of a missing ruleset. */
	if (restrict_self(-1, LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF) != 0)
		return 6;
	if (restrict_self(-1, LANDLOCK_RESTRICT_SELF_LOG_SUBDOMAINS_OFF | LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF) != -1 || errno != EBADF)
		return 7;
	/* Unprivileged without no_new_privs: EPERM; with the NO_NEW_PRIVS flag: allowed. */
	if (setresuid(65534, 65534, 65534))
		return 8;
	if (restrict_self(rs, 0) != -1 || errno != EPERM)
		return 9;
	if (restrict_self(rs, LANDLOCK_RESTRICT_SELF_NO_NEW_PRIVS) != 0)
		return 10;
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 11;
	/* Now no_new_privs is set: plain restrict_self works too. */
	if (restrict_self(rs, 0) != 0)
		return 12;
	return 0;
}

static int child_layers(void)
{
	int rs = fs_ruleset(RO_FILE);
	int i;

	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	for (i = 0; i < 16; i++)
		if (restrict_self(rs, 0) != 0)
			return 1 + i;
	if (restrict_self(rs, 0) != -1 || errno != E2BIG)
		return 20;
	/* Still E2BIG: a failed call changes nothing. */
	if (restrict_self(rs, 0) != -1 || errno != E2BIG)
		return 21;
	/* Creating rulesets and adding rules still works at the limit. */
	if (fs_ruleset(RO_FILE) < 0)
		return 22;
	return 0;
}

#define MANY 2000

static int child_many_rules(void)
{
	int rs = fs_ruleset(RO_FILE | LANDLOCK_ACCESS_FS_READ_DIR);
	char path[64];
	int i, fd;

	mkdir("/tmp/ll-many", 0755);
	for (i = 0; i < MANY; i++) {
		struct landlock_path_beneath_attr pb = { .allowed_access = RO_FILE };

		snprintf(path, sizeof(path), "/tmp/ll-many/f%d", i);
		fd = open(path, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			return 1;
		close(fd);
		pb.parent_fd = open(path, O_PATH);
		/* Every other file gets a rule. */
		if (i % 2 == 0 && add_rule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
			return 2;
		close(pb.parent_fd);
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (restrict_self(rs, 0))
		return 3;
	for (i = 0; i < MANY; i++) {
		snprintf(path, sizeof(path), "/tmp/ll-many/f%d", i);
		fd = open(path, O_RDONLY);
		if (i % 2 == 0 && fd < 0)
			return 4;
		if (i % 2 == 1 && (fd != -1 || errno != EACCES))
			return 5;
		if (fd >= 0)
			close(fd);
	}
	if (open("/tmp/ll-many", O_RDONLY | O_DIRECTORY) != -1 || errno != EACCES)
		return 6;
	return 0;
}

/* --- races: add_rule from many threads against restrict_self, close and dup ---------- */
static int race_rs;
static volatile int race_stop;
static int race_bad;

static void *race_adder(void *arg)
{
	long id = (long)arg;
	int i;

	for (i = 0; i < 400 && !race_stop; i++) {
		struct landlock_path_beneath_attr pb = { .allowed_access = RO_FILE };
		char path[64];

		snprintf(path, sizeof(path), "/tmp/ll-race/t%ld-%d", id, i % 50);
		pb.parent_fd = open(path, O_PATH);
		if (add_rule(race_rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) != 0)
			__atomic_add_fetch(&race_bad, 1, __ATOMIC_RELAXED);
		close(pb.parent_fd);
	}
	return NULL;
}

static void *race_dupper(void *arg)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = RO_FILE };
	int i;

	(void)arg;
	pb.parent_fd = open("/tmp/ll-race", O_PATH);
	for (i = 0; i < 2000 && !race_stop; i++) {
		int d = dup(race_rs);
		long r;

		close(d);
		/* The closed duplicate: EBADF, or a different file reusing the number. */
		r = add_rule(d, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
		if (r == 0 || (errno != EBADF && errno != EBADFD))
			__atomic_add_fetch(&race_bad, 1, __ATOMIC_RELAXED);
	}
	close(pb.parent_fd);
	return NULL;
}

static void *race_restricter(void *arg)
{
	int i, ok = 0;

	(void)arg;
	/* Each thread's own credentials: 16 layers, then E2BIG, while rules keep coming. */
	for (i = 0; i < 20; i++) {
		long r = restrict_self(race_rs, 0);

		if (r == 0)
			ok++;
		else if (errno != E2BIG || ok != 16)
			__atomic_add_fetch(&race_bad, 1, __ATOMIC_RELAXED);
	}
	if (ok != 16)
		__atomic_add_fetch(&race_bad, 100, __ATOMIC_RELAXED);
	return NULL;
}

static int child_race(void)
{
	pthread_t t[12];
	char path[64];
	long i, j;

	mkdir("/tmp/ll-race", 0755);
	for (i = 0; i < 8; i++)
		for (j = 0; j < 50; j++) {
			snprintf(path, sizeof(path), "/tmp/ll-race/t%ld-%ld", i, j);
			close(open(path, O_CREAT | O_WRONLY, 0644));
		}
	race_rs = fs_ruleset(RO_FILE | LANDLOCK_ACCESS_FS_READ_DIR);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	for (i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, race_adder, (void *)i);
	pthread_create(&t[8], NULL, race_dupper, NULL);
	pthread_create(&t[9], NULL, race_restricter, NULL);
	pthread_create(&t[10], NULL, race_restricter, NULL);
	pthread_create(&t[11], NULL, race_restricter, NULL);
	for (i = 0; i < 12; i++)
		pthread_join(t[i], NULL);
	if (race_bad) {
		printf("# %d unexpected results\n", race_bad);
		return 1;
	}
	/* The sandboxed threads exited; this one is not sandboxed: a last rule still works. */
	{
		struct landlock_path_beneath_attr pb = { .allowed_access = RO_FILE };

		pb.parent_fd = open("/tmp", O_PATH);
		if (add_rule(race_rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
			return 2;
	}
	return 0;
}

static void *tsync_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		long r = restrict_self(race_rs, LANDLOCK_RESTRICT_SELF_TSYNC);

		/* Concurrent process-wide restrictions: each succeeds or hits the layer limit. */
		if (r != 0 && errno != E2BIG)
			__atomic_add_fetch(&race_bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int child_tsync_race(void)
{
	pthread_t t[6];
	int i;

	race_bad = 0;
	race_rs = fs_ruleset(RO_FILE);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	for (i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, tsync_thread, NULL);
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	if (race_bad) {
		printf("# %d unexpected results\n", race_bad);
		return 1;
	}
	/* 16 layers process-wide: the next one from this thread is E2BIG. */
	if (restrict_self(race_rs, 0) != -1 || errno != E2BIG)
		return 2;
	return 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	test_create_ruleset();
	test_ruleset_fd();
	test_add_rule();
	in_child("restrict_self: EINVAL, EBADF, EBADFD, EPERM and the accepted -1", child_restrict_errors);
	in_child("restrict_self: 16 layers, the 17th is E2BIG", child_layers);
	in_child("2000 rules on 2000 files: exactly the ruled ones open", child_many_rules);
	in_child("race: 8 threads add_rule, 1 dup/close, 3 restrict_self", child_race);
	in_child("race: 6 threads restrict_self with TSYNC", child_tsync_race);
	printf("1..%d\n", n);
	return failed ? 1 : 0;
}
