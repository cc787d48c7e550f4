// SPDX-License-Identifier: GPL-2.0

//! `landlock-probe`: the guest's Landlock test tool, for the Rust and the C Landlock alike.
//!
//! - `landlock-probe abi`: prints the ABI version and the errata bits;
//! - `landlock-probe lsms`: prints the ids of the active LSMs (`lsm_list_modules(2)`);
//! - `landlock-probe errnos`: hostile and malformed inputs to the three system calls, one
//!   line per check, `PASS name` or `FAIL name: ...`;
//! - `landlock-probe race`: `add_rule` from 4 threads while 2 threads enforce the ruleset;
//! - `landlock-probe sandbox [--fs MASK] [--ro DIR]... [--rw DIR]... [--rule MASK:PATH]... [--net]
//!   [--bind PORT]... [--connect PORT]... -- CMD [ARG]...`: restricts itself and runs CMD;
//! - `landlock-probe connect PORT`, `landlock-probe bind PORT`: a TCP connect (to 127.0.0.1)
//!   or bind, printing the errno (0 on success);
//! - `landlock-probe tsync THREADS FLAGS FILE [churn]`: THREADS threads wait while the main
//!   thread enforces a ruleset denying every file read with `restrict_self` FLAGS (hex, `8`
//!   is TSYNC); then each tries to read FILE. With `churn`, a chain of threads (each starts
//!   the next and ends) runs meanwhile and its last link tries too. Prints
//!   `main M denied D/THREADS nnp P/THREADS chain C` (M, C: 1 when denied);
//! - `landlock-probe rename A B`, `landlock-probe link A B`: the same for rename(2)/link(2);
//! - `landlock-probe udp bind|connect|sendto PORT`: a UDP bind, connect or sendto (to
//!   127.0.0.1) on a new socket, printing the errno (0 on success);
//! - `landlock-probe unix-serve PATH SECONDS`: binds a datagram UNIX socket at PATH and keeps
//!   it for SECONDS; `landlock-probe unix-send PATH`: sends a datagram to it, printing the
//!   errno. The sandbox options `--udp` (handle the UDP rights), `--udp-bind PORT`,
//!   `--udp-send PORT` go with these.

use std::ffi::CString;
use std::io::Error;

const VERSION: u32 = 1;
const ERRATA: u32 = 2;
const RULE_PATH_BENEATH: i32 = 1;
const RULE_NET_PORT: i32 = 2;

// File system rights.
const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_TRUNCATE: u64 = 1 << 14;
/// Every right of ABI 1.
const FS_V1: u64 = (1 << 13) - 1;
const FS_RO: u64 = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;
const NET_BIND: u64 = 1;
const NET_CONNECT: u64 = 2;
const NET_BIND_UDP: u64 = 1 << 2;
const NET_CONNECT_SEND_UDP: u64 = 1 << 3;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RulesetAttr {
    fs: u64,
    net: u64,
    scoped: u64,
    quiet_fs: u64,
    quiet_net: u64,
    quiet_scoped: u64,
}

#[repr(C, packed)]
struct PathBeneath {
    allowed: u64,
    fd: i32,
}

#[repr(C)]
struct NetPort {
    allowed: u64,
    port: u64,
}

fn errno_of(ret: libc::c_long) -> i32 {
    if ret < 0 {
        Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

fn create(attr: *const u8, size: usize, flags: u32) -> libc::c_long {
    // SAFETY: the kernel checks every argument; that is what is being tested.
    unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, attr, size, flags) }
}

fn add_rule(fd: i32, ty: i32, attr: *const u8, flags: u32) -> libc::c_long {
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_landlock_add_rule, fd, ty, attr, flags) }
}

fn restrict(fd: i32, flags: u32) -> libc::c_long {
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, flags) }
}

fn ruleset(fs: u64, net: u64) -> i32 {
    let attr = RulesetAttr {
        fs,
        net,
        ..Default::default()
    };
    create(
        (&attr as *const RulesetAttr).cast(),
        std::mem::size_of::<RulesetAttr>(),
        0,
    ) as i32
}

fn open_path(p: &str) -> i32 {
    let c = CString::new(p).expect("path");
    // SAFETY: a valid C string.
    unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) }
}

fn add_path(rs: i32, path: &str, allowed: u64) -> i32 {
    let fd = open_path(path);
    let pb = PathBeneath { allowed, fd };
    let r = errno_of(add_rule(
        rs,
        RULE_PATH_BENEATH,
        (&pb as *const PathBeneath).cast(),
        0,
    ));
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
    r
}

fn add_port(rs: i32, port: u64, allowed: u64) -> i32 {
    let np = NetPort { allowed, port };
    errno_of(add_rule(
        rs,
        RULE_NET_PORT,
        (&np as *const NetPort).cast(),
        0,
    ))
}

fn no_new_privs() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
}

struct Checks {
    failed: bool,
}

impl Checks {
    fn eq(&mut self, name: &str, got: i32, want: i32) {
        if got == want {
            println!("PASS {name}");
        } else {
            self.failed = true;
            println!("FAIL {name}: got errno {got}, want {want}");
        }
    }
}

fn errnos() -> bool {
    let mut c = Checks { failed: false };
    let attr = RulesetAttr {
        fs: FS_READ_FILE,
        ..Default::default()
    };
    let ap = (&attr as *const RulesetAttr).cast::<u8>();
    let sz = std::mem::size_of::<RulesetAttr>();
    c.eq(
        "version flag with attr",
        errno_of(create(ap, 0, VERSION)),
        libc::EINVAL,
    );
    c.eq(
        "version flag with size",
        errno_of(create(std::ptr::null(), 8, VERSION)),
        libc::EINVAL,
    );
    c.eq(
        "unknown flag",
        errno_of(create(std::ptr::null(), 0, 1 << 7)),
        libc::EINVAL,
    );
    c.eq(
        "both flags",
        errno_of(create(std::ptr::null(), 0, VERSION | ERRATA)),
        libc::EINVAL,
    );
    c.eq(
        "null attr",
        errno_of(create(std::ptr::null(), sz, 0)),
        libc::EFAULT,
    );
    c.eq("size 0", errno_of(create(ap, 0, 0)), libc::EINVAL);
    c.eq("size 7", errno_of(create(ap, 7, 0)), libc::EINVAL);
    c.eq("size > page", errno_of(create(ap, 4097, 0)), libc::E2BIG);
    c.eq(
        "size usize::MAX",
        errno_of(create(ap, usize::MAX, 0)),
        libc::E2BIG,
    );
    c.eq(
        "bad pointer",
        errno_of(create(8 as *const u8, sz, 0)),
        libc::EFAULT,
    );
    let mut big = [0u8; 64];
    big[0] = FS_READ_FILE as u8;
    c.eq(
        "larger zeroed struct",
        errno_of(create(big.as_ptr(), 64, 0).min(0)),
        0,
    );
    big[60] = 1;
    c.eq(
        "larger struct, non-zero tail",
        errno_of(create(big.as_ptr(), 64, 0)),
        libc::E2BIG,
    );
    c.eq(
        "short struct (fs only)",
        errno_of(create(ap, 8, 0).min(0)),
        0,
    );
    let empty = RulesetAttr::default();
    c.eq(
        "empty ruleset",
        errno_of(create((&empty as *const RulesetAttr).cast(), sz, 0)),
        libc::ENOMSG,
    );
    let unknown = RulesetAttr {
        fs: 1 << 60,
        ..Default::default()
    };
    c.eq(
        "unknown fs right",
        errno_of(create((&unknown as *const RulesetAttr).cast(), sz, 0)),
        libc::EINVAL,
    );
    let unknown = RulesetAttr {
        net: 1 << 60,
        ..Default::default()
    };
    c.eq(
        "unknown net right",
        errno_of(create((&unknown as *const RulesetAttr).cast(), sz, 0)),
        libc::EINVAL,
    );
    let quiet = RulesetAttr {
        fs: FS_READ_FILE,
        quiet_fs: FS_WRITE_FILE,
        ..Default::default()
    };
    c.eq(
        "quiet not handled",
        errno_of(create((&quiet as *const RulesetAttr).cast(), sz, 0)),
        libc::EINVAL,
    );

    let rs = ruleset(FS_READ_FILE | FS_READ_DIR, NET_BIND);
    c.eq("ruleset fd", if rs >= 0 { 0 } else { -1 }, 0);
    c.eq(
        "rule: bad ruleset fd",
        errno_of(add_rule(-1, RULE_PATH_BENEATH, std::ptr::null(), 0)),
        libc::EBADF,
    );
    let root = CString::new("/").expect("path");
    // SAFETY: a valid C string.
    let dirfd = unsafe { libc::open(root.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    c.eq(
        "rule: fd not a ruleset",
        errno_of(add_rule(dirfd, RULE_PATH_BENEATH, std::ptr::null(), 0)),
        libc::EBADFD,
    );
    let opath = open_path("/");
    c.eq(
        "rule: O_PATH fd as ruleset",
        errno_of(add_rule(opath, RULE_PATH_BENEATH, std::ptr::null(), 0)),
        libc::EBADF,
    );
    c.eq(
        "rule: unknown flags",
        errno_of(add_rule(rs, RULE_PATH_BENEATH, std::ptr::null(), 1 << 5)),
        libc::EINVAL,
    );
    c.eq(
        "rule: unknown type",
        errno_of(add_rule(rs, 99, std::ptr::null(), 0)),
        libc::EINVAL,
    );
    c.eq(
        "rule: null attr",
        errno_of(add_rule(rs, RULE_PATH_BENEATH, std::ptr::null(), 0)),
        libc::EFAULT,
    );
    c.eq("rule: no access", add_path(rs, "/", 0), libc::ENOMSG);
    c.eq(
        "rule: unhandled access",
        add_path(rs, "/", FS_WRITE_FILE),
        libc::EINVAL,
    );
    let pb = PathBeneath {
        allowed: FS_READ_FILE,
        fd: -1,
    };
    c.eq(
        "rule: bad parent fd",
        errno_of(add_rule(
            rs,
            RULE_PATH_BENEATH,
            (&pb as *const PathBeneath).cast(),
            0,
        )),
        libc::EBADF,
    );
    let pb = PathBeneath {
        allowed: FS_READ_FILE,
        fd: rs,
    };
    c.eq(
        "rule: ruleset as parent fd",
        errno_of(add_rule(
            rs,
            RULE_PATH_BENEATH,
            (&pb as *const PathBeneath).cast(),
            0,
        )),
        libc::EBADFD,
    );
    let mut pipe = [0i32; 2];
    // SAFETY: a valid array of two descriptors.
    unsafe { libc::pipe(pipe.as_mut_ptr()) };
    let pb = PathBeneath {
        allowed: FS_READ_FILE,
        fd: pipe[0],
    };
    c.eq(
        "rule: pipe (pipefs) as parent fd",
        errno_of(add_rule(
            rs,
            RULE_PATH_BENEATH,
            (&pb as *const PathBeneath).cast(),
            0,
        )),
        libc::EBADFD,
    );
    c.eq(
        "rule: dir right on a file",
        add_path(rs, "/init", FS_READ_DIR),
        libc::EINVAL,
    );
    c.eq(
        "rule: file right on a file",
        add_path(rs, "/init", FS_READ_FILE),
        0,
    );
    c.eq(
        "rule: path beneath",
        add_path(rs, "/", FS_READ_FILE | FS_READ_DIR),
        0,
    );
    c.eq("rule: same again", add_path(rs, "/", FS_READ_FILE), 0);
    c.eq(
        "rule: port > 65535",
        add_port(rs, 65536, NET_BIND),
        libc::EINVAL,
    );
    c.eq(
        "rule: port u64::MAX",
        add_port(rs, u64::MAX, NET_BIND),
        libc::EINVAL,
    );
    c.eq(
        "rule: port unhandled right",
        add_port(rs, 80, NET_CONNECT),
        libc::EINVAL,
    );
    c.eq("rule: port no right", add_port(rs, 80, 0), libc::ENOMSG);
    c.eq("rule: port", add_port(rs, 65535, NET_BIND), 0);
    for p in 1000..2000 {
        if add_port(rs, p, NET_BIND) != 0 {
            c.eq("rule: 1000 ports", -1, 0);
            break;
        }
    }
    c.eq(
        "restrict: unknown flags",
        errno_of(restrict(rs, 1 << 30)),
        libc::EINVAL,
    );
    c.eq("restrict: bad fd", errno_of(restrict(-1, 0)), libc::EBADF);
    c.eq(
        "restrict: not a ruleset",
        errno_of(restrict(opath, 0)),
        libc::EBADF,
    );
    c.eq(
        "restrict: pipe",
        errno_of(restrict(pipe[0], 0)),
        libc::EBADFD,
    );
    // Dropping CAP_SYS_ADMIN: without no_new_privs, EPERM.
    // SAFETY: fork, then only async-signal-safe calls in the child.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: setuid to an unprivileged user drops the capabilities.
        unsafe {
            libc::setgid(65534);
            libc::setuid(65534);
            let e = if restrict(rs, 0) < 0 {
                *libc::__errno_location()
            } else {
                0
            };
            libc::_exit(e);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    c.eq(
        "restrict: unprivileged without no_new_privs",
        libc::WEXITSTATUS(status),
        libc::EPERM,
    );
    // A write-only ruleset fd cannot be enforced: reopen through /proc.
    let wo = CString::new(format!("/proc/self/fd/{rs}")).expect("path");
    // SAFETY: a valid C string.
    let wfd = unsafe { libc::open(wo.as_ptr(), libc::O_WRONLY) };
    if wfd >= 0 {
        c.eq(
            "restrict: ruleset reopened",
            errno_of(restrict(wfd, 0)),
            libc::EPERM,
        );
    }
    // Sixteen layers, then E2BIG.
    // SAFETY: fork; the child only makes system calls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        no_new_privs();
        let one = ruleset(FS_EXECUTE, 0);
        for _ in 0..16 {
            if restrict(one, 0) < 0 {
                // SAFETY: exiting the child.
                unsafe { libc::_exit(100) };
            }
        }
        let e = errno_of(restrict(one, 0));
        // SAFETY: exiting the child.
        unsafe { libc::_exit(e) };
    }
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    c.eq(
        "restrict: 17th layer",
        libc::WEXITSTATUS(status),
        libc::E2BIG,
    );
    !c.failed
}

/// Threads adding rules to one ruleset while others enforce it in forked children: every
/// call must succeed, and nothing else may happen (the test kernel watches for reports).
fn race() -> bool {
    let rs = ruleset(FS_READ_FILE | FS_READ_DIR, NET_BIND | NET_CONNECT);
    if rs < 0 {
        return false;
    }
    let adders: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut bad = 0;
                for i in 0..500u64 {
                    if add_port(rs, t * 1000 + i, NET_BIND) != 0 {
                        bad += 1;
                    }
                    if i % 50 == 0 && add_path(rs, "/tmp", FS_READ_DIR) != 0 {
                        bad += 1;
                    }
                }
                bad
            })
        })
        .collect();
    let enforcers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut bad = 0;
                for _ in 0..20 {
                    // SAFETY: fork; the child only makes system calls and exits.
                    let pid = unsafe { libc::fork() };
                    if pid == 0 {
                        no_new_privs();
                        let e = errno_of(restrict(rs, 0));
                        // SAFETY: exiting the child.
                        unsafe { libc::_exit(e) };
                    }
                    let mut status = 0;
                    // SAFETY: waiting for our child.
                    unsafe { libc::waitpid(pid, &mut status, 0) };
                    if libc::WEXITSTATUS(status) != 0 {
                        bad += 1;
                    }
                }
                bad
            })
        })
        .collect();
    let bad: i32 = adders
        .into_iter()
        .chain(enforcers)
        .map(|h| h.join().unwrap_or(1))
        .sum();
    // SAFETY: closing our own descriptor, while no thread uses it any more.
    unsafe { libc::close(rs) };
    bad == 0
}

/// 127.0.0.1:`port`.
fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    }
}

fn tcp(port: u16, bind: bool) -> i32 {
    // SAFETY: plain socket calls on our own descriptor.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let addr = loopback(port);
        let p = (&addr as *const libc::sockaddr_in).cast();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        let r = if bind {
            libc::bind(fd, p, len)
        } else {
            libc::connect(fd, p, len)
        };
        errno_of(r.into())
    }
}

fn udp(op: &str, port: u16) -> i32 {
    // SAFETY: plain socket calls on our own descriptor.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        let addr = loopback(port);
        let p = (&addr as *const libc::sockaddr_in).cast();
        let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
        let buf = [0u8; 1];
        let r = match op {
            "bind" => libc::bind(fd, p, len) as isize,
            "connect" => libc::connect(fd, p, len) as isize,
            "sendto" => libc::sendto(fd, buf.as_ptr().cast(), 1, 0, p, len),
            _ => -1,
        };
        errno_of(r as libc::c_long)
    }
}

fn unix_addr(path: &str) -> libc::sockaddr_un {
    // SAFETY: an all-zero `sockaddr_un` is valid.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as u16;
    for (d, s) in a.sun_path.iter_mut().zip(path.bytes().take(107)) {
        *d = s as libc::c_char;
    }
    a
}

fn unix(op: &str, path: &str, secs: u32) -> i32 {
    let a = unix_addr(path);
    let p = (&a as *const libc::sockaddr_un).cast();
    let len = std::mem::size_of::<libc::sockaddr_un>() as u32;
    // SAFETY: plain socket calls on our own descriptor.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0);
        if op == "serve" {
            let r = libc::bind(fd, p, len);
            if r == 0 {
                libc::sleep(secs);
            }
            return errno_of(r.into());
        }
        let buf = [0u8; 1];
        errno_of(libc::sendto(fd, buf.as_ptr().cast(), 1, 0, p, len) as libc::c_long)
    }
}

fn sandbox(args: &[String]) -> i32 {
    let mut fs = FS_V1 | FS_TRUNCATE;
    let mut net = 0;
    let (mut ro, mut rw, mut bind, mut conn) = (vec![], vec![], vec![], vec![]);
    let mut custom: Vec<(u64, String)> = vec![];
    let (mut udp_bind, mut udp_send) = (vec![], vec![]);
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match a {
            "--fs" => fs = u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap_or(fs),
            "--ro" => ro.push(v),
            "--rw" => rw.push(v),
            "--rule" => {
                let (m, p) = v.split_once(':').unwrap_or(("0", ""));
                let m = u64::from_str_radix(m.trim_start_matches("0x"), 16).unwrap_or(0);
                custom.push((m, p.to_owned()));
            }
            "--net" => {
                net |= NET_BIND | NET_CONNECT;
                i += 1;
                continue;
            }
            "--udp" => {
                net |= NET_BIND_UDP | NET_CONNECT_SEND_UDP;
                i += 1;
                continue;
            }
            "--udp-bind" => udp_bind.push(v.parse::<u64>().unwrap_or(0)),
            "--udp-send" => udp_send.push(v.parse::<u64>().unwrap_or(0)),
            "--bind" => bind.push(v.parse::<u64>().unwrap_or(0)),
            "--connect" => conn.push(v.parse::<u64>().unwrap_or(0)),
            "--" => {
                i += 1;
                break;
            }
            _ => {
                eprintln!("landlock-probe sandbox: unknown option {a}");
                return 2;
            }
        }
        i += 2;
    }
    let rs = ruleset(fs, net);
    if rs < 0 {
        eprintln!("landlock_create_ruleset: {}", Error::last_os_error());
        return 1;
    }
    // Paths that do not exist in this guest (e.g. /lib64) are skipped.
    ro.retain(|p| std::path::Path::new(p).exists());
    rw.retain(|p| std::path::Path::new(p).exists());
    for p in &ro {
        let e = add_path(rs, p, FS_RO & fs);
        if e != 0 {
            eprintln!("add_rule {p}: errno {e}");
            return 1;
        }
    }
    for p in &rw {
        let e = add_path(rs, p, fs);
        if e != 0 {
            eprintln!("add_rule {p}: errno {e}");
            return 1;
        }
    }
    for (m, p) in &custom {
        let e = add_path(rs, p, *m);
        if e != 0 {
            eprintln!("add_rule {p}: errno {e}");
            return 1;
        }
    }
    for p in &bind {
        if add_port(rs, *p, NET_BIND) != 0 {
            return 1;
        }
    }
    for p in &conn {
        if add_port(rs, *p, NET_CONNECT) != 0 {
            return 1;
        }
    }
    for (ports, right) in [(&udp_bind, NET_BIND_UDP), (&udp_send, NET_CONNECT_SEND_UDP)] {
        for p in ports {
            if add_port(rs, *p, right) != 0 {
                eprintln!("add_rule port {p}: {}", Error::last_os_error());
                return 1;
            }
        }
    }
    no_new_privs();
    if restrict(rs, 0) < 0 {
        eprintln!("landlock_restrict_self: {}", Error::last_os_error());
        return 1;
    }
    let cmd: Vec<CString> = args[i..]
        .iter()
        .map(|a| CString::new(a.as_str()).expect("arg"))
        .collect();
    if cmd.is_empty() {
        return 0;
    }
    let mut argv: Vec<*const libc::c_char> = cmd.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: a null-terminated argument vector of valid C strings.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    eprintln!("exec: {}", Error::last_os_error());
    127
}

/// One thread's view after the restriction: whether reading `file` is denied, and its
/// `no_new_privs`.
fn thread_view(file: &str) -> (bool, bool) {
    let denied = std::fs::File::open(file)
        .err()
        .and_then(|e| e.raw_os_error())
        == Some(libc::EACCES);
    // SAFETY: prctl with integer arguments.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1;
    (denied, nnp)
}

/// A link of the churning chain: starts the next link and ends, until `done`; the last link
/// reports whether it is denied.
fn chain_link(
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    file: std::sync::Arc<String>,
    result: std::sync::mpsc::Sender<bool>,
) {
    use std::sync::atomic::Ordering;
    if done.load(Ordering::Acquire) {
        let _ = result.send(thread_view(&file).0);
        return;
    }
    let spawned = std::thread::Builder::new().spawn(move || chain_link(done, file, result));
    if spawned.is_err() {
        // Out of threads for a moment: the report then never comes and the check fails.
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn tsync(args: &[String]) -> i32 {
    use std::sync::{atomic::AtomicBool, atomic::Ordering, mpsc, Arc, Barrier};
    let n: usize = args.first().and_then(|v| v.parse().ok()).unwrap_or(4);
    let flags = args
        .get(1)
        .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0);
    let file = Arc::new(args.get(2).cloned().unwrap_or_else(|| "/etc/passwd".into()));
    let churn = args.get(3).is_some_and(|a| a == "churn");
    if flags & 0x10 == 0 {
        no_new_privs();
    }
    let rs = ruleset(FS_READ_FILE, 0);
    if rs < 0 {
        eprintln!("landlock_create_ruleset: {}", Error::last_os_error());
        return 1;
    }
    let start = Arc::new(Barrier::new(n + 1));
    let restricted = Arc::new(Barrier::new(n + 1));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, restricted, file) = (start.clone(), restricted.clone(), file.clone());
            std::thread::spawn(move || {
                start.wait();
                restricted.wait();
                thread_view(&file)
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    if churn {
        let (done, file) = (done.clone(), file.clone());
        std::thread::spawn(move || chain_link(done, file, tx));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    start.wait();
    if restrict(rs, flags) < 0 {
        eprintln!("landlock_restrict_self: {}", Error::last_os_error());
        return 1;
    }
    done.store(true, Ordering::Release);
    restricted.wait();
    let main_denied = thread_view(&file).0;
    let (mut denied, mut nnp) = (0, 0);
    for t in threads {
        let (d, p) = t.join().unwrap_or((false, false));
        denied += usize::from(d);
        nnp += usize::from(p);
    }
    let chain = if churn {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(d) => i32::from(d).to_string(),
            Err(_) => "lost".to_owned(),
        }
    } else {
        "-".to_owned()
    };
    println!(
        "main {} denied {denied}/{n} nnp {nnp}/{n} chain {chain}",
        i32::from(main_denied)
    );
    0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(String::as_str) {
        Some("abi") => {
            let v = create(std::ptr::null(), 0, VERSION);
            let e = create(std::ptr::null(), 0, ERRATA);
            println!("{v} {e}");
            i32::from(v < 0)
        }
        Some("lsms") => {
            // lsm_list_modules(2) (x86_64 number 461): the ids of the active LSMs.
            let mut ids = [0u64; 32];
            let mut size = std::mem::size_of_val(&ids) as u32;
            // SAFETY: a buffer of `size` bytes and a pointer to its size.
            let n = unsafe { libc::syscall(461, ids.as_mut_ptr(), &mut size as *mut u32, 0) };
            let list: Vec<String> = ids
                .iter()
                .take(n.max(0) as usize)
                .map(u64::to_string)
                .collect();
            println!("{}", list.join(" "));
            i32::from(n < 0)
        }
        Some("errnos") => i32::from(!errnos()),
        Some("race") => i32::from(!race()),
        Some("sandbox") => sandbox(&args[1..]),
        Some("tsync") => tsync(&args[1..]),
        Some("rename") | Some("link") => {
            let (a, b) = (
                args.get(1).cloned().unwrap_or_default(),
                args.get(2).cloned().unwrap_or_default(),
            );
            let r = if args[0] == "rename" {
                std::fs::rename(a, b)
            } else {
                std::fs::hard_link(a, b)
            };
            println!("{}", r.err().and_then(|e| e.raw_os_error()).unwrap_or(0));
            0
        }
        Some("udp") => {
            let op = args.get(1).cloned().unwrap_or_default();
            let port = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            println!("{}", udp(&op, port));
            0
        }
        Some("unix-serve") | Some("unix-send") => {
            let path = args.get(1).cloned().unwrap_or_default();
            let secs = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            let op = if args[0] == "unix-serve" {
                "serve"
            } else {
                "send"
            };
            println!("{}", unix(op, &path, secs));
            0
        }
        Some("connect") | Some("bind") => {
            let port = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            println!("{}", tcp(port, args[0] == "bind"));
            0
        }
        _ => {
            eprintln!("usage: landlock-probe abi|errnos|sandbox ...|connect PORT|bind PORT");
            2
        }
    };
    std::process::exit(code);
}
