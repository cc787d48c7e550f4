/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The Landlock trace events of the Rust Landlock (security/landlock_rust): the
 * events of include/trace/events/landlock.h (system "landlock", the same event
 * and field names, the same text output), with prototypes of plain values that
 * Rust can pass (ids, masks, device and inode numbers, byte strings with their
 * length, per-layer masks as an array and its length) instead of the C module's
 * structures.  Rust calls them through rust_do_trace_<event>() (see
 * rust/kernel/tracepoint.rs); they are defined in
 * security/landlock_rust/glue.c.  C macros (TRACE_EVENT) force this to be C.
 */

#undef TRACE_SYSTEM
#define TRACE_SYSTEM landlock

#if !defined(_TRACE_LANDLOCK_RUST_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_LANDLOCK_RUST_H

#include <linux/kdev_t.h>
#include <linux/landlock.h>
#include <linux/string_helpers.h>
#include <linux/trace_seq.h>
#include <linux/tracepoint.h>
#include <linux/types.h>

/* The request types, numbered as the C module's enum landlock_request_type. */
#define LANDLOCK_RUST_REQUEST_FS_CHANGE_TOPOLOGY 2
#define LANDLOCK_RUST_REQUEST_FS_ACCESS 3
#define LANDLOCK_RUST_REQUEST_NET_ACCESS 4

#ifdef CREATE_TRACE_POINTS

/*
 * At most this many bytes of an escaped untrusted string go to the output
 * (three quarters of a trace_seq, leaving room for the other fields), its NUL
 * included.
 */
#define LANDLOCK_RUST_STR_MAX (TRACE_SEQ_BUFFER_SIZE - TRACE_SEQ_BUFFER_SIZE / 4)
/* Ends a truncated string: a raw UTF-8 "…", which no escaped byte can be. */
#define LANDLOCK_RUST_STR_CUT "\xe2\x80\xa6"
#define LANDLOCK_RUST_ESCAPE \
	(ESCAPE_SPACE | ESCAPE_SPECIAL | ESCAPE_NAP | ESCAPE_APPEND | ESCAPE_OCTAL)
#define LANDLOCK_RUST_ESCAPE_ONLY " ='\"\\"

/*
 * Writes @len bytes of @s (user-controlled: a path, a task name, an abstract
 * socket name, which may hold any byte) to @p escaped: spaces, '=', quotes,
 * backslashes, control and non-ASCII bytes as octal "\ooo", so a field can
 * neither be split nor faked.  If the escaped string does not fit in
 * LANDLOCK_RUST_STR_MAX bytes, the bytes that fit are followed by
 * LANDLOCK_RUST_STR_CUT.  Returns the NUL-terminated result in @p, or NULL when
 * @p has no room left for LANDLOCK_RUST_STR_MAX bytes.
 */
static inline const char *landlock_rust_print_str(struct trace_seq *p,
						  const char *s, size_t len)
{
	const size_t cut_len = sizeof(LANDLOCK_RUST_STR_CUT) - 1;
	const char *start = trace_seq_buffer_ptr(p);
	size_t room, used = 0, i;
	char *out;
	int n;

	room = seq_buf_get_buf(&p->seq, &out);
	if (room < LANDLOCK_RUST_STR_MAX)
		return NULL;
	n = string_escape_mem(s, len, NULL, 0, LANDLOCK_RUST_ESCAPE,
			      LANDLOCK_RUST_ESCAPE_ONLY);
	if (n < LANDLOCK_RUST_STR_MAX) {
		/* All of it, with its NUL. */
		used = string_escape_mem(s, len, out, n, LANDLOCK_RUST_ESCAPE,
					 LANDLOCK_RUST_ESCAPE_ONLY);
	} else {
		/* The bytes whose escapes fit with the cut mark and the NUL. */
		for (i = 0; i < len; i++) {
			n = string_escape_mem(s + i, 1, NULL, 0,
					      LANDLOCK_RUST_ESCAPE,
					      LANDLOCK_RUST_ESCAPE_ONLY);
			if (used + n + cut_len + 1 > LANDLOCK_RUST_STR_MAX)
				break;
			used += string_escape_mem(s + i, 1, out + used, n,
						  LANDLOCK_RUST_ESCAPE,
						  LANDLOCK_RUST_ESCAPE_ONLY);
		}
		memcpy(out + used, LANDLOCK_RUST_STR_CUT, cut_len);
		used += cut_len;
	}
	seq_buf_commit(&p->seq, used);
	trace_seq_putc(p, 0);
	return start;
}

/*
 * Writes the per-layer masks @masks[0..@n] to @p as "{A|B,,C}": one group per
 * layer (the oldest first) of the names in @names whose bits are set, "|"
 * between names, "," between layers.  Returns the NUL-terminated result.
 */
static inline const char *
landlock_rust_print_layers(struct trace_seq *p, const u32 *masks, size_t n,
			   const struct trace_print_flags *names, size_t nr_names)
{
	const char *start = trace_seq_buffer_ptr(p);
	size_t layer, k;

	trace_seq_putc(p, '{');
	for (layer = 0; layer < n; layer++) {
		const char *sep = "";

		if (layer)
			trace_seq_putc(p, ',');
		for (k = 0; k < nr_names; k++) {
			if (!(masks[layer] & names[k].mask))
				continue;
			trace_seq_printf(p, "%s%s", sep, names[k].name);
			sep = "|";
		}
	}
	trace_seq_puts(p, "}");
	trace_seq_putc(p, 0);
	return start;
}

#endif /* CREATE_TRACE_POINTS */

/* clang-format off */

#define _LANDLOCK_NAME_ENTRY(mask, name) { mask, name }

/* The layers of the dynamic array @array, named from the list @list. */
#define __landlock_rust_layers(array, list...)				\
	({								\
		static const struct trace_print_flags __names[] = { list }; \
		landlock_rust_print_layers(p, __get_dynamic_array(array), \
			__get_dynamic_array_len(array) / sizeof(u32),	\
			__names, ARRAY_SIZE(__names));			\
	})

/* An untrusted string field, escaped. */
#define __landlock_rust_str(field)					\
	landlock_rust_print_str(p, __get_str(field),			\
				__get_dynamic_array_len(field) - 1)

TRACE_EVENT(landlock_create_ruleset,
	TP_PROTO(u64 ruleset_id, u64 ruleset_version, u32 handled_fs,
		 u32 handled_net, u32 scoped),
	TP_ARGS(ruleset_id, ruleset_version, handled_fs, handled_net, scoped),
	TP_STRUCT__entry(
		__field(u64, ruleset_id)
		__field(u64, ruleset_version)
		__field(u32, handled_fs)
		__field(u32, handled_net)
		__field(u32, scoped)
	),
	TP_fast_assign(
		__entry->ruleset_id = ruleset_id;
		__entry->ruleset_version = ruleset_version;
		__entry->handled_fs = handled_fs;
		__entry->handled_net = handled_net;
		__entry->scoped = scoped;
	),
	TP_printk("ruleset=%llx.%llu handled_fs=%s handled_net=%s scoped=%s",
		__entry->ruleset_id, __entry->ruleset_version,
		__print_flags(__entry->handled_fs, "|", _LANDLOCK_ACCESS_FS_NAMES),
		__print_flags(__entry->handled_net, "|", _LANDLOCK_ACCESS_NET_NAMES),
		__print_flags(__entry->scoped, "|", _LANDLOCK_SCOPE_NAMES))
);

TRACE_EVENT(landlock_free_ruleset,
	TP_PROTO(u64 ruleset_id, u64 ruleset_version),
	TP_ARGS(ruleset_id, ruleset_version),
	TP_STRUCT__entry(
		__field(u64, ruleset_id)
		__field(u64, ruleset_version)
	),
	TP_fast_assign(
		__entry->ruleset_id = ruleset_id;
		__entry->ruleset_version = ruleset_version;
	),
	TP_printk("ruleset=%llx.%llu",
		__entry->ruleset_id, __entry->ruleset_version)
);

TRACE_EVENT(landlock_add_rule_path_beneath,
	TP_PROTO(u64 ruleset_id, u64 ruleset_version, u32 access_rights,
		 u32 dev, u64 ino, const char *pathname, u32 pathname_len),
	TP_ARGS(ruleset_id, ruleset_version, access_rights, dev, ino, pathname,
		pathname_len),
	TP_STRUCT__entry(
		__field(u64, ruleset_id)
		__field(u64, ruleset_version)
		__field(u32, access_rights)
		__field(dev_t, dev)
		__field(ino_t, ino)
		__string_len(pathname, pathname, pathname_len)
	),
	TP_fast_assign(
		__entry->ruleset_id = ruleset_id;
		__entry->ruleset_version = ruleset_version;
		__entry->access_rights = access_rights;
		__entry->dev = dev;
		__entry->ino = ino;
		__assign_str(pathname);
	),
	TP_printk("ruleset=%llx.%llu access_rights=%s dev=%u:%u ino=%lu path=%s",
		__entry->ruleset_id, __entry->ruleset_version,
		__print_flags(__entry->access_rights, "|", _LANDLOCK_ACCESS_FS_NAMES),
		MAJOR(__entry->dev), MINOR(__entry->dev), __entry->ino,
		__landlock_rust_str(pathname))
);

TRACE_EVENT(landlock_add_rule_net_port,
	TP_PROTO(u64 ruleset_id, u64 ruleset_version, u32 access_rights,
		 u64 port),
	TP_ARGS(ruleset_id, ruleset_version, access_rights, port),
	TP_STRUCT__entry(
		__field(u64, ruleset_id)
		__field(u64, ruleset_version)
		__field(u32, access_rights)
		__field(u64, port)
	),
	TP_fast_assign(
		__entry->ruleset_id = ruleset_id;
		__entry->ruleset_version = ruleset_version;
		__entry->access_rights = access_rights;
		__entry->port = port;
	),
	TP_printk("ruleset=%llx.%llu access_rights=%s port=%llu",
		__entry->ruleset_id, __entry->ruleset_version,
		__print_flags(__entry->access_rights, "|", _LANDLOCK_ACCESS_NET_NAMES),
		__entry->port)
);

TRACE_EVENT(landlock_create_domain,
	TP_PROTO(u64 domain_id, u64 parent_id, u64 ruleset_id,
		 u64 ruleset_version),
	TP_ARGS(domain_id, parent_id, ruleset_id, ruleset_version),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(u64, parent_id)
		__field(u64, ruleset_id)
		__field(u64, ruleset_version)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->parent_id = parent_id;
		__entry->ruleset_id = ruleset_id;
		__entry->ruleset_version = ruleset_version;
	),
	TP_printk("domain=%llx parent=%llx ruleset=%llx.%llu",
		__entry->domain_id, __entry->parent_id,
		__entry->ruleset_id, __entry->ruleset_version)
);

TRACE_EVENT(landlock_enforce_domain,
	TP_PROTO(u64 domain_id, bool complete, bool process_wide,
		 bool no_new_privs),
	TP_ARGS(domain_id, complete, process_wide, no_new_privs),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(bool, complete)
		__field(bool, process_wide)
		__field(bool, no_new_privs)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->complete = complete;
		__entry->process_wide = process_wide;
		__entry->no_new_privs = no_new_privs;
	),
	TP_printk("domain=%llx complete=%d process_wide=%d no_new_privs=%d",
		__entry->domain_id, __entry->complete, __entry->process_wide,
		__entry->no_new_privs)
);

TRACE_EVENT(landlock_free_domain,
	TP_PROTO(u64 domain_id, u64 denials),
	TP_ARGS(domain_id, denials),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(u64, denials)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->denials = denials;
	),
	TP_printk("domain=%llx denials=%llu",
		__entry->domain_id, __entry->denials)
);

TRACE_EVENT(landlock_check_rule_inode,
	TP_PROTO(u64 domain_id, u32 access_request, u32 dev, u64 ino,
		 const u32 *grants, u32 num_layers),
	TP_ARGS(domain_id, access_request, dev, ino, grants, num_layers),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(u32, access_request)
		__field(dev_t, dev)
		__field(ino_t, ino)
		__dynamic_array(u32, grants, num_layers)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->access_request = access_request;
		__entry->dev = dev;
		__entry->ino = ino;
		memcpy(__get_dynamic_array(grants), grants,
		       __get_dynamic_array_len(grants));
	),
	TP_printk("domain=%llx access_request=%s dev=%u:%u ino=%lu grants=%s",
		__entry->domain_id,
		__print_flags(__entry->access_request, "|", _LANDLOCK_ACCESS_FS_NAMES),
		MAJOR(__entry->dev), MINOR(__entry->dev), __entry->ino,
		__landlock_rust_layers(grants, _LANDLOCK_ACCESS_FS_NAMES))
);

TRACE_EVENT(landlock_check_rule_net_port,
	TP_PROTO(u64 domain_id, u32 access_request, u64 port,
		 const u32 *grants, u32 num_layers),
	TP_ARGS(domain_id, access_request, port, grants, num_layers),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(u32, access_request)
		__field(u64, port)
		__dynamic_array(u32, grants, num_layers)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->access_request = access_request;
		__entry->port = port;
		memcpy(__get_dynamic_array(grants), grants,
		       __get_dynamic_array_len(grants));
	),
	TP_printk("domain=%llx access_request=%s port=%llu grants=%s",
		__entry->domain_id,
		__print_flags(__entry->access_request, "|", _LANDLOCK_ACCESS_NET_NAMES),
		__entry->port,
		__landlock_rust_layers(grants, _LANDLOCK_ACCESS_NET_NAMES))
);

TRACE_EVENT(landlock_deny_access_fs,
	TP_PROTO(u64 domain_id, bool same_exec, bool logged, u32 blockers_type,
		 u32 blockers_access, u32 dev, u64 ino, const char *pathname,
		 u32 pathname_len),
	TP_ARGS(domain_id, same_exec, logged, blockers_type, blockers_access,
		dev, ino, pathname, pathname_len),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(bool, same_exec)
		__field(bool, logged)
		__field(u32, blockers_type)
		__field(u32, blockers_access)
		__field(dev_t, dev)
		__field(ino_t, ino)
		__string_len(pathname, pathname, pathname_len)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->same_exec = same_exec;
		__entry->logged = logged;
		__entry->blockers_type = blockers_type;
		__entry->blockers_access = blockers_access;
		__entry->dev = dev;
		__entry->ino = ino;
		__assign_str(pathname);
	),
	TP_printk("domain=%llx same_exec=%d logged=%d blockers=%s dev=%u:%u ino=%lu path=%s",
		__entry->domain_id, __entry->same_exec, __entry->logged,
		__entry->blockers_type == LANDLOCK_RUST_REQUEST_FS_ACCESS ?
			__print_flags(__entry->blockers_access, "|", _LANDLOCK_ACCESS_FS_NAMES) :
			"change_topology",
		MAJOR(__entry->dev), MINOR(__entry->dev), __entry->ino,
		__landlock_rust_str(pathname))
);

TRACE_EVENT(landlock_deny_access_net,
	TP_PROTO(u64 domain_id, bool same_exec, bool logged,
		 u32 blockers_access, s64 port),
	TP_ARGS(domain_id, same_exec, logged, blockers_access, port),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(bool, same_exec)
		__field(bool, logged)
		__field(u32, blockers_type)
		__field(u32, blockers_access)
		__field(s64, port)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->same_exec = same_exec;
		__entry->logged = logged;
		__entry->blockers_type = LANDLOCK_RUST_REQUEST_NET_ACCESS;
		__entry->blockers_access = blockers_access;
		__entry->port = port;
	),
	TP_printk("domain=%llx same_exec=%d logged=%d blockers=%s port=%lld",
		__entry->domain_id, __entry->same_exec, __entry->logged,
		__print_flags(__entry->blockers_access, "|", _LANDLOCK_ACCESS_NET_NAMES),
		__entry->port)
);

TRACE_EVENT(landlock_deny_ptrace,
	TP_PROTO(u64 domain_id, bool same_exec, bool logged,
		 u64 tracee_domain_id, pid_t tracee_pid,
		 const char *tracee_comm, u32 tracee_comm_len),
	TP_ARGS(domain_id, same_exec, logged, tracee_domain_id, tracee_pid,
		tracee_comm, tracee_comm_len),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(bool, same_exec)
		__field(bool, logged)
		__field(u64, tracee_domain_id)
		__field(pid_t, tracee_pid)
		__string_len(tracee_comm, tracee_comm, tracee_comm_len)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->same_exec = same_exec;
		__entry->logged = logged;
		__entry->tracee_domain_id = tracee_domain_id;
		__entry->tracee_pid = tracee_pid;
		__assign_str(tracee_comm);
	),
	TP_printk("domain=%llx same_exec=%d logged=%d tracee_domain=%llx tracee_pid=%d tracee_comm=%s",
		__entry->domain_id, __entry->same_exec, __entry->logged,
		__entry->tracee_domain_id, __entry->tracee_pid,
		__landlock_rust_str(tracee_comm))
);

TRACE_EVENT(landlock_deny_scope_signal,
	TP_PROTO(u64 domain_id, bool same_exec, bool logged,
		 u64 target_domain_id, pid_t target_pid,
		 const char *target_comm, u32 target_comm_len),
	TP_ARGS(domain_id, same_exec, logged, target_domain_id, target_pid,
		target_comm, target_comm_len),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(bool, same_exec)
		__field(bool, logged)
		__field(u64, target_domain_id)
		__field(pid_t, target_pid)
		__string_len(target_comm, target_comm, target_comm_len)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->same_exec = same_exec;
		__entry->logged = logged;
		__entry->target_domain_id = target_domain_id;
		__entry->target_pid = target_pid;
		__assign_str(target_comm);
	),
	TP_printk("domain=%llx same_exec=%d logged=%d target_domain=%llx target_pid=%d target_comm=%s",
		__entry->domain_id, __entry->same_exec, __entry->logged,
		__entry->target_domain_id, __entry->target_pid,
		__landlock_rust_str(target_comm))
);

TRACE_EVENT(landlock_deny_scope_abstract_unix_socket,
	TP_PROTO(u64 domain_id, bool same_exec, bool logged,
		 u64 peer_domain_id, pid_t peer_pid, const char *sun_path,
		 u32 sun_path_len),
	TP_ARGS(domain_id, same_exec, logged, peer_domain_id, peer_pid,
		sun_path, sun_path_len),
	TP_STRUCT__entry(
		__field(u64, domain_id)
		__field(bool, same_exec)
		__field(bool, logged)
		__field(u64, peer_domain_id)
		__field(pid_t, peer_pid)
		__string_len(sun_path, sun_path, sun_path_len)
	),
	TP_fast_assign(
		__entry->domain_id = domain_id;
		__entry->same_exec = same_exec;
		__entry->logged = logged;
		__entry->peer_domain_id = peer_domain_id;
		__entry->peer_pid = peer_pid;
		__assign_str(sun_path);
	),
	TP_printk("domain=%llx same_exec=%d logged=%d peer_domain=%llx peer_pid=%d sun_path=%s",
		__entry->domain_id, __entry->same_exec, __entry->logged,
		__entry->peer_domain_id, __entry->peer_pid,
		__landlock_rust_str(sun_path))
);

#undef _LANDLOCK_NAME_ENTRY

/* clang-format on */

#endif /* _TRACE_LANDLOCK_RUST_H */

/* This part must be outside protection: the file is not named after its system. */
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE landlock_rust
#include <trace/define_trace.h>
