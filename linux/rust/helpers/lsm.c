// SPDX-License-Identifier: GPL-2.0

#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/sched.h>
#include <net/sock.h>

__rust_helper const struct cred *rust_helper_current_cred(void)
{
	return current_cred();
}

__rust_helper bool rust_helper_task_no_new_privs(struct task_struct *p)
{
	return task_no_new_privs(p);
}

__rust_helper struct inode *rust_helper_d_backing_inode(const struct dentry *dentry)
{
	return d_backing_inode(dentry);
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
