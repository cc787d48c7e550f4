// SPDX-License-Identifier: GPL-2.0

#include <linux/audit.h>
#include <linux/binfmts.h>
#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/net.h>
#include <linux/pid.h>
#include <linux/rculist.h>
#include <linux/rcupdate.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <net/af_unix.h>
#include <net/inet_sock.h>
#include <net/sock.h>

__rust_helper const struct cred *rust_helper_current_cred(void)
{
	return current_cred();
}

__rust_helper bool rust_helper_task_no_new_privs(struct task_struct *p)
{
	return task_no_new_privs(p);
}

__rust_helper bool rust_helper_sk_is_tcp(const struct sock *sk)
{
	return sk_is_tcp(sk);
}

__rust_helper unsigned short rust_helper_lsm_sk_family(const struct sock *sk)
{
	return READ_ONCE(sk->sk_family);
}

__rust_helper struct dentry *rust_helper_dget(struct dentry *dentry)
{
	return dget(dentry);
}

__rust_helper bool rust_helper_lsm_same_thread_group_as_current(struct task_struct *p)
{
	return same_thread_group(p, current);
}

/* Whether a UNIX socket (state lock held) is bound to an abstract address. */
__rust_helper bool rust_helper_lsm_unix_is_abstract(struct sock *sk)
{
	const struct unix_address *addr = unix_sk(sk)->addr;

	return addr && addr->len > offsetof(struct sockaddr_un, sun_path) &&
	       addr->name->sun_path[0] == '\0';
}

/* The credentials of a UNIX socket's file (state lock held), NULL for a kernel socket. */
__rust_helper const struct cred *rust_helper_lsm_unix_file_cred(struct sock *sk)
{
	if (!sk->sk_socket || !sk->sk_socket->file)
		return NULL;
	return sk->sk_socket->file->f_cred;
}

__rust_helper bool rust_helper_lsm_unix_peer_is(struct socket *sock, struct socket *other)
{
	return unix_peer(sock->sk) == other->sk;
}

/*
 * Whether a file's owner (f_owner->lock held) may be outside the current process: a process
 * group or session, a task of another process, or none found.
 */
__rust_helper bool rust_helper_lsm_fown_is_other_process(struct file *file)
{
	struct fown_struct *fown = file_f_owner(file);
	struct task_struct *p;
	bool other;

	if (fown->pid_type != PIDTYPE_PID && fown->pid_type != PIDTYPE_TGID)
		return true;
	rcu_read_lock();
	p = pid_task(fown->pid, fown->pid_type);
	other = !p || !same_thread_group(p, current);
	rcu_read_unlock();
	return other;
}

__rust_helper struct file *rust_helper_lsm_fown_file(struct fown_struct *fown)
{
	return fown->file;
}

__rust_helper struct pid *rust_helper_lsm_get_current_tgid(void)
{
	return get_pid(task_tgid(current));
}

__rust_helper struct pid *rust_helper_lsm_task_tgid(struct task_struct *p)
{
	return task_tgid(p);
}

__rust_helper void rust_helper_lsm_put_pid(struct pid *pid)
{
	put_pid(pid);
}

__rust_helper void rust_helper_task_set_no_new_privs(struct task_struct *p)
{
	task_set_no_new_privs(p);
}

__rust_helper int rust_helper_restart_syscall(void)
{
	return restart_syscall();
}

/* The current process's exec_update_lock, for changing every thread's credentials. */
__rust_helper bool rust_helper_lsm_exec_update_trylock(void)
{
	return down_write_trylock(&current->signal->exec_update_lock);
}

__rust_helper void rust_helper_lsm_exec_update_unlock(void)
{
	up_write(&current->signal->exec_update_lock);
}

/* The first thread of p's process (RCU read lock held): for_each_thread is a macro. */
__rust_helper struct task_struct *rust_helper_lsm_first_thread(struct task_struct *p)
{
	return list_first_or_null_rcu(&p->signal->thread_head, struct task_struct, thread_node);
}

__rust_helper struct task_struct *rust_helper___next_thread(struct task_struct *p)
{
	return __next_thread(p);
}

__rust_helper pid_t rust_helper_lsm_current_tgid_nr(void)
{
	return pid_nr(task_tgid(current));
}

__rust_helper u32 rust_helper_lsm_current_uid(void)
{
	return from_kuid(&init_user_ns, current_uid());
}

/* Copies the current task's comm to @buf, TASK_COMM_LEN bytes, NUL-padded. */
__rust_helper void rust_helper_lsm_current_comm(char *buf)
{
	strscpy_pad(buf, current->comm, TASK_COMM_LEN);
}

#ifdef CONFIG_AUDIT
__rust_helper struct audit_context *rust_helper_lsm_audit_context(void)
{
	return audit_context();
}
#endif

__rust_helper struct cred *rust_helper_lsm_bprm_cred(struct linux_binprm *bprm)
{
	return bprm->cred;
}

__rust_helper bool rust_helper_lsm_sk_is_udp(const struct sock *sk)
{
	return sk_is_udp(sk);
}

/* An inet socket's local port, under the socket lock (may sleep). */
__rust_helper unsigned short rust_helper_lsm_inet_num_locked(struct sock *sk)
{
	bool slow = lock_sock_fast(sk);
	unsigned short num = inet_sk(sk)->inet_num;

	unlock_sock_fast(sk, slow);
	return num;
}

__rust_helper void rust_helper_lsm_unix_state_lock(struct sock *sk)
{
	unix_state_lock(sk);
}

__rust_helper void rust_helper_lsm_unix_state_unlock(struct sock *sk)
{
	unix_state_unlock(sk);
}

/* Whether a UNIX socket (state lock held) is alive and has a file (so its creator's cred). */
__rust_helper bool rust_helper_lsm_unix_live_with_file(struct sock *sk)
{
	return !sock_flag(sk, SOCK_DEAD) && sk->sk_socket && sk->sk_socket->file;
}

__rust_helper int rust_helper_lsm_sock_coredump_flag(void)
{
	return SOCK_COREDUMP;
}

/* Copies @task's comm to @buf, TASK_COMM_LEN bytes, NUL-padded (a racy snapshot). */
__rust_helper void rust_helper_lsm_task_comm(struct task_struct *task, char *buf)
{
	strscpy_pad(buf, task->comm, TASK_COMM_LEN);
}

/* @task's thread group id in the initial pid namespace. */
__rust_helper pid_t rust_helper_lsm_task_tgid_nr(struct task_struct *task)
{
	return task_tgid_nr(task);
}

/*
 * The name of a UNIX socket bound in the abstract namespace (state lock held):
 * sets @name to the bytes after the leading NUL of sun_path and returns their
 * number; 0 (and @name to "") without an address.
 */
__rust_helper int rust_helper_lsm_unix_abstract_name(struct sock *sk, const char **name)
{
	const struct unix_address *addr = unix_sk(sk)->addr;

	if (!addr || addr->len <= (int)offsetof(struct sockaddr_un, sun_path)) {
		*name = "";
		return 0;
	}
	*name = addr->name->sun_path + 1;
	return addr->len - offsetof(struct sockaddr_un, sun_path) - 1;
}

/* The pid (initial namespace) of the peer credentials of @sk, 0 without any. */
__rust_helper pid_t rust_helper_lsm_sk_peer_pid_nr(struct sock *sk)
{
	struct pid *pid = READ_ONCE(sk->sk_peer_pid);

	return pid ? pid_nr(pid) : 0;
}

__rust_helper int rust_helper_lsm_current_nr_threads(void)
{
	return get_nr_threads(current);
}
