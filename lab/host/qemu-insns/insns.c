// SPDX-License-Identifier: GPL-2.0
/*
 * insns: a QEMU TCG plugin counting the guest instructions executed between two marker
 * instructions, by translation block, for `cargo xtask profile`.
 *
 * The guest marks a window with `insn-mark start` / `insn-mark stop` (lab/tools/insn-mark),
 * which execute a no-op with a recognisable displacement (`nopl 0x46455201(%rax)` and
 * `...02`). At each stop the plugin writes `OUT/window-N.txt`: one line per block address
 * executed in the window, `ADDRESS INSNS_PER_EXECUTION EXECUTIONS ATOMICS EXIT`. Counting is
 * an inline add per block execution (no callback); run the guest with
 * `-accel tcg,thread=single` so the counters are not raced by other vCPU threads.
 *
 * ATOMICS and EXIT say what a block costs TCG beyond its instruction count: ATOMICS is the
 * number of locked read-modify-write instructions in it (each becomes a call to an atomic
 * helper on the host), EXIT how the block ends: `i` an indirect branch (ret, call or jmp
 * through a register or memory: the next block is looked up at run time), `x` a direct
 * branch whose target, or a fall-through into a block, on another guest page (TCG chains
 * blocks only within a page, so this too is a run-time lookup), `c` a branch or
 * fall-through TCG can chain, `o` anything else (system instructions, I/O).
 *
 * QEMU installs no plugin header on Debian: the few declarations of the plugin API
 * (version 1, QEMU 7.2) this file uses are written out below.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The plugin API (qemu-plugin.h of QEMU 7.2), as far as used here. */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS = 0 };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 = 0 };
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
					    qemu_plugin_vcpu_udata_cb_t cb,
					    enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* One translation of a block; a block translated again gets another record. */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t executions; /* the inline add's target */
	uint64_t at_start;
	unsigned int atomics;
	char exit;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct block **blocks;
static size_t n_blocks, cap_blocks;
static char out_dir[4096] = ".";
static unsigned int window;
static bool open_window;

/* `nopl 0x464552NN(%rax)`: 0f 1f 80, then the displacement, little-endian. */
static int marker_of(const struct qemu_plugin_insn *insn)
{
	const uint8_t *b = qemu_plugin_insn_data(insn);

	if (qemu_plugin_insn_size(insn) != 7 || b[0] != 0x0f || b[1] != 0x1f || b[2] != 0x80 ||
	    b[4] != 0x52 || b[5] != 0x45 || b[6] != 0x46)
		return 0;
	return b[3] == 0x01 || b[3] == 0x02 ? b[3] : 0;
}

/* The opcode of an x86 instruction after its prefixes; *locked if it has a lock prefix. */
static const uint8_t *opcode_of(const uint8_t *b, size_t n, bool *locked)
{
	const uint8_t *end = b + n;

	*locked = false;
	for (; b < end; b++) {
		switch (*b) {
		case 0xf0:
			*locked = true;
			break;
		case 0xf2: case 0xf3: case 0x2e: case 0x36: case 0x3e: case 0x26:
		case 0x64: case 0x65: case 0x66: case 0x67:
			break;
		default:
			if ((*b & 0xf0) == 0x40) /* REX */
				break;
			return b;
		}
	}
	return NULL;
}

static int32_t le32(const uint8_t *p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
			 (uint32_t)p[3] << 24);
}

static bool same_page(uint64_t a, uint64_t b)
{
	return ((a ^ b) & ~(uint64_t)0xfff) == 0;
}

/* How a block starting at `start` ends with the instruction `b` (`n` bytes) at `pc`. */
static char exit_of(uint64_t start, uint64_t pc, const uint8_t *b, size_t n)
{
	bool locked;
	const uint8_t *op = opcode_of(b, n, &locked);
	const uint8_t *end = b + n;
	uint64_t next = pc + n, target;

	if (!op)
		return 'o';
	if (*op == 0xc3 || *op == 0xc2 || *op == 0xcb || *op == 0xca)
		return 'i';
	if (*op == 0xff && op + 1 < end) {
		unsigned int reg = (op[1] >> 3) & 7;

		if (reg >= 2 && reg <= 5)
			return 'i';
	}
	if ((*op == 0xe8 || *op == 0xe9) && op + 5 <= end)
		target = next + (int64_t)le32(op + 1);
	else if ((*op == 0xeb || (*op >= 0x70 && *op <= 0x7f) || (*op >= 0xe0 && *op <= 0xe3)) &&
		 op + 2 <= end)
		target = next + (int64_t)(int8_t)op[1];
	else if (*op == 0x0f && op + 6 <= end && op[1] >= 0x80 && op[1] <= 0x8f)
		target = next + (int64_t)le32(op + 2);
	else if (*op == 0x0f || *op == 0xcc || *op == 0xcd || *op == 0xcf || *op == 0xf4 ||
		 *op == 0xe4 || *op == 0xe5 || *op == 0xe6 || *op == 0xe7 || (*op >= 0xec && *op <= 0xef))
		return 'o'; /* system instructions, port I/O, traps */
	else
		target = next; /* the block was cut (its length, or a page end) */
	return same_page(start, target) ? 'c' : 'x';
}

static unsigned int atomics_of(const uint8_t *b, size_t n)
{
	bool locked;
	const uint8_t *op = opcode_of(b, n, &locked);

	if (locked)
		return 1;
	/* xchg with memory is locked without the prefix. */
	return op && (*op == 0x86 || *op == 0x87) && op + 1 < b + n && (op[1] >> 6) != 3;
}

static void start_window(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_blocks; i++)
		blocks[i]->at_start = blocks[i]->executions;
	open_window = true;
	pthread_mutex_unlock(&lock);
}

static void stop_window(void)
{
	char path[4200], msg[4300];
	uint64_t total = 0;
	FILE *f;

	pthread_mutex_lock(&lock);
	if (!open_window) {
		pthread_mutex_unlock(&lock);
		return;
	}
	open_window = false;
	snprintf(path, sizeof(path), "%s/window-%u.txt", out_dir, window++);
	f = fopen(path, "w");
	for (size_t i = 0; f && i < n_blocks; i++) {
		uint64_t n = blocks[i]->executions - blocks[i]->at_start;

		if (!n)
			continue;
		fprintf(f, "%" PRIx64 " %" PRIu64 " %" PRIu64 " %u %c\n", blocks[i]->vaddr,
			blocks[i]->insns, n, blocks[i]->atomics, blocks[i]->exit);
		total += n * blocks[i]->insns;
	}
	if (f)
		fclose(f);
	pthread_mutex_unlock(&lock);
	snprintf(msg, sizeof(msg), "insns: %s: %" PRIu64 " instructions\n", path, total);
	qemu_plugin_outs(msg);
}

static void on_marker(unsigned int vcpu, void *which)
{
	(void)vcpu;
	if ((uintptr_t)which == 1)
		start_window();
	else
		stop_window();
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	struct block *b = calloc(1, sizeof(*b));
	size_t n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	if (!b)
		return;
	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->insns = n;
	b->exit = 'o';
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		const uint8_t *bytes = qemu_plugin_insn_data(insn);
		size_t len = qemu_plugin_insn_size(insn);

		b->atomics += atomics_of(bytes, len);
		if (i + 1 == n)
			b->exit = exit_of(b->vaddr, qemu_plugin_insn_vaddr(insn), bytes, len);
	}
	pthread_mutex_lock(&lock);
	if (n_blocks == cap_blocks) {
		size_t cap = cap_blocks ? cap_blocks * 2 : 65536;
		struct block **grown = realloc(blocks, cap * sizeof(*grown));

		if (!grown) {
			pthread_mutex_unlock(&lock);
			free(b);
			return;
		}
		blocks = grown;
		cap_blocks = cap;
	}
	blocks[n_blocks++] = b;
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->executions, 1);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		int m = marker_of(insn);

		if (m)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
							       (void *)(uintptr_t)m);
	}
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
							      const qemu_info_t *info, int argc,
							      char **argv)
{
	(void)info;
	for (int i = 0; i < argc; i++)
		if (!strncmp(argv[i], "out=", 4))
			snprintf(out_dir, sizeof(out_dir), "%s", argv[i] + 4);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
	return 0;
}
