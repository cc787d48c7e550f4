// SPDX-License-Identifier: GPL-2.0
/*
 * Landlock syscall micro-benchmark: open(2) or stat(2) of a file at the bottom of a deep
 * directory chain, inside a sandbox of many layers with many rules.
 *
 *   ll-bench OP DEPTH LAYERS RULES SECONDS
 *   ll-bench OP DEPTH LAYERS RULES --ops=N
 *
 * OP is open (read, allowed: Landlock walks up to the rule at the top of the chain in every
 * layer), open-denied (write, denied: the walk goes to the root), or stat (no Landlock
 * check: the control). Every layer handles the read, write and directory rights, allows
 * reading beneath the top of the chain and has RULES more rules on decoy files, so its rule
 * tree is that big. LAYERS 0 is no sandbox. Prints `ops_per_s=N` and `ns_per_op=N`.
 *
 * With --ops=N it does 64 operations unmeasured, then exactly N between the two no-ops that
 * open and close a counting window of the lab's QEMU plugin (lab/host/qemu-insns; `cargo
 * xtask profile landlock`), so the sandbox's setup is not counted; it prints `ops=N`.
 * Elsewhere those no-ops do nothing.
 */
#define _GNU_SOURCE
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The plugin's window markers: `nopl 0x46455201(%rax)` starts, `...02` stops. */
static void insn_mark(int start)
{
#if defined(__x86_64__)
	if (start)
		asm volatile("nopl 0x46455201(%%rax)" ::: "memory");
	else
		asm volatile("nopl 0x46455202(%%rax)" ::: "memory");
#else
	(void)start;
#endif
}

/* One open or stat of `path`, checked to do what the benchmark claims. */
static void one_op(const char *op, const char *path, int layers)
{
	int fd;

	if (strcmp(op, "stat") == 0) {
		struct stat st;

		if (stat(path, &st))
			err(1, "stat");
	} else if (strcmp(op, "open") == 0) {
		fd = open(path, O_RDONLY);
		if (fd < 0)
			err(1, "open");
		close(fd);
	} else if (strcmp(op, "open-denied") == 0) {
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			close(fd);
			if (layers > 0)
				errx(1, "open for writing was allowed");
		}
	} else {
		errx(2, "unknown operation %s", op);
	}
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *op;
	int depth, layers, rules;
	double seconds, start, end;
	char *path;
	long ops = 0, count = 0;
	int i, l, fd;

	if (argc != 6)
		errx(2, "usage: ll-bench open|open-denied|stat DEPTH LAYERS RULES SECONDS|--ops=N");
	op = argv[1];
	depth = atoi(argv[2]);
	layers = atoi(argv[3]);
	rules = atoi(argv[4]);
	if (strncmp(argv[5], "--ops=", 6) == 0) {
		count = atol(argv[5] + 6);
		if (count <= 0)
			errx(2, "--ops wants a positive count");
		seconds = 0;
	} else {
		seconds = atof(argv[5]);
	}

	/* /tmp/llb/d/d/.../d/file */
	path = calloc(1, 16 + 2 * depth + 8);
	strcpy(path, "/tmp/llb");
	mkdir(path, 0755);
	mkdir("/tmp/llb-decoys", 0755);
	for (i = 0; i < depth; i++) {
		strcat(path, "/d");
		if (mkdir(path, 0755) && errno != EEXIST)
			err(1, "mkdir %s", path);
	}
	strcat(path, "/file");
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		err(1, "create %s", path);
	close(fd);
	for (i = 0; i < rules; i++) {
		char decoy[64];

		snprintf(decoy, sizeof(decoy), "/tmp/llb-decoys/%d", i);
		fd = open(decoy, O_CREAT | O_WRONLY, 0644);
		if (fd < 0)
			err(1, "create %s", decoy);
		close(fd);
	}

	if (layers > 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		err(1, "no_new_privs");
	for (l = 0; l < layers; l++) {
		struct landlock_ruleset_attr ra = {
			.handled_access_fs = LANDLOCK_ACCESS_FS_READ_FILE |
					     LANDLOCK_ACCESS_FS_WRITE_FILE |
					     LANDLOCK_ACCESS_FS_READ_DIR,
		};
		struct landlock_path_beneath_attr pb = {
			.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR,
		};
		int rs = syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);

		if (rs < 0)
			err(1, "landlock_create_ruleset");
		pb.parent_fd = open("/tmp/llb", O_PATH);
		if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
			err(1, "landlock_add_rule");
		close(pb.parent_fd);
		pb.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
		for (i = 0; i < rules; i++) {
			char decoy[64];

			snprintf(decoy, sizeof(decoy), "/tmp/llb-decoys/%d", i);
			pb.parent_fd = open(decoy, O_PATH);
			if (syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0))
				err(1, "landlock_add_rule (decoy)");
			close(pb.parent_fd);
		}
		if (syscall(SYS_landlock_restrict_self, rs, 0))
			err(1, "landlock_restrict_self (layer %d)", l + 1);
		close(rs);
	}

	/* Checks the sandbox does what the benchmark claims before timing it. */
	fd = open(path, O_WRONLY);
	if (layers > 0 && (fd != -1 || errno != EACCES))
		errx(1, "writing is not denied in the sandbox");
	if (fd >= 0)
		close(fd);

	if (count) {
		/* Lets the work items freeing the rulesets just closed run before the window. */
		usleep(200000);
		/* Unmeasured first: the dentry and page caches of the chain. */
		for (i = 0; i < 64; i++)
			one_op(op, path, layers);
		insn_mark(1);
		for (ops = 0; ops < count; ops++)
			one_op(op, path, layers);
		insn_mark(0);
		printf("ops=%ld\n", ops);
		return 0;
	}
	start = now();
	end = start + seconds;
	do {
		for (i = 0; i < 64; i++)
			one_op(op, path, layers);
		ops += 64;
	} while (now() < end);
	end = now();
	printf("ops_per_s=%.1f ns_per_op=%.1f ops=%ld\n", ops / (end - start),
	       (end - start) * 1e9 / ops, ops);
	return 0;
}
