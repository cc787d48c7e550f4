// SPDX-License-Identifier: GPL-2.0

//! Landlock in Rust: unprivileged sandboxing with the same system calls and user space ABI
//! as the C Landlock (`include/uapi/linux/landlock.h`).
//!
//! - `engine`: the policy (rulesets, layered domains, decisions), without kernel types;
//! - `syscalls`: `landlock_create_ruleset`, `landlock_add_rule`, `landlock_restrict_self`;
//! - `hooks`: the LSM hooks;
//! - `pins`: inodes with rules are kept in memory until their rulesets and domains are freed
//!   or their filesystem is unmounted.
//!
//! The crate has no `unsafe`: the LSM plumbing is `kernel::lsm`, and the C that macros force
//! (`DEFINE_LSM`, the hook list, `SYSCALL_DEFINE`) is `glue.c`.

#![deny(unsafe_code)]

use core::sync::atomic::AtomicBool;
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_uint, c_ulong, c_void},
};

pub mod engine;
#[cfg(CONFIG_KUNIT)]
pub mod engine_tests;
mod hooks;
pub mod log;
mod pins;
mod syscalls;

/// What the engine allocates with.
mod shim {
    pub(crate) use kernel::alloc::{AllocError, KVec};
    pub(crate) const GFP: kernel::alloc::Flags = kernel::alloc::flags::GFP_KERNEL_ACCOUNT;
}

/// The prefix of this crate's `pr_*!` messages.
const __LOG_PREFIX: &[u8] = b"landlock\0";

/// The Landlock LSM.
pub struct Landlock;

/// Set once the LSM is initialised (it may be left out by `lsm=`).
static INITIALIZED: AtomicBool = AtomicBool::new(false);

kernel::define_lsm! {
    lsm: Landlock,
    blob_sizes: landlock_rust_blob_sizes,
    init: landlock_rust_init,
    hooks: {
        landlock_rust_cred_prepare => cred_prepare(
            new: *mut bindings::cred, old: *const bindings::cred, gfp: bindings::gfp_t) -> c_int,
        landlock_rust_cred_transfer => cred_transfer(
            new: *mut bindings::cred, old: *const bindings::cred),
        landlock_rust_cred_free => cred_free(cred: *mut bindings::cred),
        landlock_rust_bprm_creds_for_exec => bprm_creds_for_exec(
            bprm: *mut bindings::linux_binprm) -> c_int,
        landlock_rust_file_open => file_open(file: *mut bindings::file) -> c_int,
        landlock_rust_file_truncate => file_truncate(file: *mut bindings::file) -> c_int,
        landlock_rust_file_ioctl => file_ioctl(
            file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_int,
        landlock_rust_file_ioctl_compat => file_ioctl_compat(
            file: *mut bindings::file, cmd: c_uint, arg: c_ulong) -> c_int,
        landlock_rust_path_mkdir => path_mkdir(
            dir: *const bindings::path, dentry: *mut bindings::dentry, mode: bindings::umode_t
        ) -> c_int,
        landlock_rust_path_mknod => path_mknod(
            dir: *const bindings::path,
            dentry: *mut bindings::dentry,
            mode: bindings::umode_t,
            dev: c_uint,
        ) -> c_int,
        landlock_rust_path_symlink => path_symlink(
            dir: *const bindings::path, dentry: *mut bindings::dentry, old_name: *const c_char
        ) -> c_int,
        landlock_rust_path_unlink => path_unlink(
            dir: *const bindings::path, dentry: *mut bindings::dentry) -> c_int,
        landlock_rust_path_rmdir => path_rmdir(
            dir: *const bindings::path, dentry: *mut bindings::dentry) -> c_int,
        landlock_rust_path_link => path_link(
            old: *mut bindings::dentry, new_dir: *const bindings::path, new: *mut bindings::dentry
        ) -> c_int,
        landlock_rust_path_rename => path_rename(
            old_dir: *const bindings::path,
            old: *mut bindings::dentry,
            new_dir: *const bindings::path,
            new: *mut bindings::dentry,
            flags: c_uint,
        ) -> c_int,
        landlock_rust_path_truncate => path_truncate(path: *const bindings::path) -> c_int,
        landlock_rust_sb_mount => sb_mount(
            dev: *const c_char,
            path: *const bindings::path,
            ty: *const c_char,
            flags: c_ulong,
            data: *mut c_void,
        ) -> c_int,
        landlock_rust_move_mount => move_mount(
            from: *const bindings::path, to: *const bindings::path) -> c_int,
        landlock_rust_sb_umount => sb_umount(mnt: *mut bindings::vfsmount, flags: c_int) -> c_int,
        landlock_rust_sb_remount => sb_remount(
            sb: *mut bindings::super_block, opts: *mut c_void) -> c_int,
        landlock_rust_sb_pivotroot => sb_pivotroot(
            old: *const bindings::path, new: *const bindings::path) -> c_int,
        landlock_rust_sb_delete => sb_delete(sb: *mut bindings::super_block),
        landlock_rust_ptrace_access_check => ptrace_access_check(
            child: *mut bindings::task_struct, mode: c_uint) -> c_int,
        landlock_rust_ptrace_traceme => ptrace_traceme(parent: *mut bindings::task_struct) -> c_int,
        landlock_rust_socket_bind => socket_bind(
            sock: *mut bindings::socket, addr: *mut bindings::sockaddr, len: c_int) -> c_int,
        landlock_rust_socket_connect => socket_connect(
            sock: *mut bindings::socket, addr: *mut bindings::sockaddr, len: c_int) -> c_int,
        landlock_rust_unix_stream_connect => unix_stream_connect(
            sock: *mut bindings::sock, other: *mut bindings::sock, newsk: *mut bindings::sock
        ) -> c_int,
        landlock_rust_unix_may_send => unix_may_send(
            sock: *mut bindings::socket, other: *mut bindings::socket) -> c_int,
        landlock_rust_unix_find => unix_find(
            path: *const bindings::path, other: *mut bindings::sock, flags: c_int) -> c_int,
        landlock_rust_socket_sendmsg => socket_sendmsg(
            sock: *mut bindings::socket, msg: *mut bindings::msghdr, size: c_int) -> c_int,
        landlock_rust_task_kill => task_kill(
            p: *mut bindings::task_struct,
            info: *mut c_void,
            sig: c_int,
            cred: *const bindings::cred,
        ) -> c_int,
        landlock_rust_file_set_fowner => file_set_fowner(file: *mut bindings::file),
        landlock_rust_file_send_sigiotask => file_send_sigiotask(
            tsk: *mut bindings::task_struct, fown: *mut bindings::fown_struct, sig: c_int
        ) -> c_int,
        landlock_rust_file_free_security => file_free_security(file: *mut bindings::file),
    },
    entries: {
        fn landlock_rust_sys_create_ruleset(attr: usize, size: usize, flags: u32) -> isize =
            syscalls::create_ruleset;
        fn landlock_rust_sys_add_rule(fd: c_int, ty: c_int, attr: usize, flags: u32) -> isize =
            syscalls::add_rule;
        fn landlock_rust_sys_restrict_self(fd: c_int, flags: u32) -> isize =
            syscalls::restrict_self;
    },
}

#[cfg(CONFIG_KUNIT)]
#[kernel::macros::kunit_tests(landlock_rust_engine)]
mod tests {
    use super::engine_tests as t;

    #[test]
    fn attr_validation() {
        assert_eq!(t::attr_validation(), Ok(()));
    }
    #[test]
    fn create_prelude() {
        assert_eq!(t::create_prelude(), Ok(()));
    }
    #[test]
    fn rules() {
        assert_eq!(t::rules(), Ok(()));
    }
    #[test]
    fn fs_walk() {
        assert_eq!(t::fs_walk(), Ok(()));
    }
    #[test]
    fn rule_grants() {
        assert_eq!(t::rule_grants(), Ok(()));
    }
    #[test]
    fn layered_model() {
        assert_eq!(t::layered_model(), Ok(()));
    }
    #[test]
    fn layer_limit() {
        assert_eq!(t::layer_limit(), Ok(()));
    }
    #[test]
    fn net() {
        assert_eq!(t::net(), Ok(()));
    }
    #[test]
    fn sockaddr() {
        assert_eq!(t::sockaddr(), Ok(()));
    }
    #[test]
    fn access_of_operations() {
        assert_eq!(t::access_of_operations(), Ok(()));
    }
    #[test]
    fn reparent() {
        assert_eq!(t::reparent(), Ok(()));
    }
    #[test]
    fn scopes() {
        assert_eq!(t::scopes(), Ok(()));
    }
    #[test]
    fn restrict_flags() {
        assert_eq!(t::restrict_flags(), Ok(()));
    }
    #[test]
    fn log_policy() {
        assert_eq!(t::log_policy(), Ok(()));
    }
    #[test]
    fn denied_layers() {
        assert_eq!(t::denied_layers(), Ok(()));
    }
    #[test]
    fn blockers_and_ids() {
        assert_eq!(t::blockers_and_ids(), Ok(()));
    }
    #[test]
    fn quiet_rules() {
        assert_eq!(t::quiet_rules(), Ok(()));
    }
    #[test]
    fn resolve_unix() {
        assert_eq!(t::resolve_unix(), Ok(()));
    }
    #[test]
    fn udp() {
        assert_eq!(t::udp(), Ok(()));
    }
}
