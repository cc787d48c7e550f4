// SPDX-License-Identifier: GPL-2.0

//! Tests of the policy engine, shared by KUnit (`landlock_rust.rs`) and the host
//! (`lab/host/landlock-engine`): each returns `Err(line)` on the first failed check, and
//! each harness asserts `Ok(())`.

use super::engine::*;

/// A test's outcome: the line of the first failed check.
pub type Outcome = core::result::Result<(), u32>;

macro_rules! check {
    ($c:expr) => {
        if !$c {
            return Err(line!());
        }
    };
}

fn handled(fs: u64, net: u64) -> Handled {
    Handled { fs, net, scope: 0 }
}

/// Attribute validation, with the errnos of C.
pub fn attr_validation() -> Outcome {
    let ok = RulesetAttr {
        handled_access_fs: FS_READ_FILE,
        ..Default::default()
    };
    check!(ok.validate() == Ok(handled(FS_READ_FILE, 0)));
    check!(RulesetAttr::default().validate() == Err(ENOMSG));
    let unknown = RulesetAttr {
        handled_access_fs: 1 << 40,
        ..Default::default()
    };
    check!(unknown.validate() == Err(EINVAL));
    let net = RulesetAttr {
        handled_access_net: 1 << 5,
        ..Default::default()
    };
    check!(net.validate() == Err(EINVAL));
    let scope = RulesetAttr {
        handled_access_fs: FS_READ_FILE,
        scoped: 1 << 2,
        ..Default::default()
    };
    check!(scope.validate() == Err(EINVAL));
    // Scopes alone make a valid ruleset (ABI 6).
    let scoped = RulesetAttr {
        scoped: SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET,
        ..Default::default()
    };
    check!(
        scoped.validate()
            == Ok(Handled {
                fs: 0,
                net: 0,
                scope: SCOPE_MASK
            })
    );
    let quiet_scope = RulesetAttr {
        scoped: SCOPE_SIGNAL,
        quiet_scoped: SCOPE_SIGNAL,
        ..Default::default()
    };
    // Quiet masks (ABI 11) are accepted when within the handled ones.
    check!(quiet_scope.validate().is_ok());
    check!(quiet_scope.quiet().scope == SCOPE_SIGNAL && quiet_scope.quiet().fs == 0);
    let quiet = RulesetAttr {
        handled_access_fs: FS_READ_FILE,
        quiet_access_fs: FS_WRITE_FILE,
        ..Default::default()
    };
    check!(quiet.validate() == Err(EINVAL));
    let mut bytes = [0u8; RULESET_ATTR_SIZE];
    bytes[0] = 0x04;
    bytes[8] = 0x02;
    let a = RulesetAttr::from_bytes(&bytes);
    check!(a.handled_access_fs == FS_READ_FILE && a.handled_access_net == NET_CONNECT_TCP);
    Ok(())
}

/// The flags and size checks before the attribute is read.
pub fn create_prelude() -> Outcome {
    check!(create_ruleset_prelude(true, 0, CREATE_RULESET_VERSION) == Ok(Some(ABI_VERSION)));
    check!(create_ruleset_prelude(true, 0, CREATE_RULESET_ERRATA) == Ok(Some(ERRATA)));
    check!(create_ruleset_prelude(false, 0, CREATE_RULESET_VERSION) == Err(EINVAL));
    check!(create_ruleset_prelude(true, 8, CREATE_RULESET_VERSION) == Err(EINVAL));
    check!(create_ruleset_prelude(true, 0, 1 << 2) == Err(EINVAL));
    check!(create_ruleset_prelude(true, 0, 3) == Err(EINVAL));
    check!(create_ruleset_prelude(true, 8, 0) == Err(EFAULT));
    check!(create_ruleset_prelude(false, 7, 0) == Err(EINVAL));
    check!(create_ruleset_prelude(false, 4097, 0) == Err(E2BIG));
    check!(create_ruleset_prelude(false, usize::MAX, 0) == Err(E2BIG));
    check!(create_ruleset_prelude(false, 8, 0) == Ok(None));
    Ok(())
}

/// Rules: access checks against the handled masks, files, ports, merging.
pub fn rules() -> Outcome {
    let mut rs = Ruleset::new(handled(
        FS_READ_FILE | FS_READ_DIR | FS_TRUNCATE,
        NET_BIND_TCP,
    ));
    check!(rs.add_fs_rule(1, true, 0) == Err(ENOMSG));
    check!(rs.add_fs_rule(1, true, FS_WRITE_FILE) == Err(EINVAL));
    check!(rs.add_fs_rule(1, false, FS_READ_DIR) == Err(EINVAL));
    check!(rs.add_fs_rule(1, false, FS_READ_FILE | FS_TRUNCATE) == Ok(()));
    check!(rs.add_fs_rule(9, true, FS_READ_DIR) == Ok(()));
    check!(rs.add_fs_rule(5, true, FS_READ_DIR) == Ok(()));
    check!(rs.add_fs_rule(5, true, FS_READ_FILE) == Ok(()));
    check!(rs.num_rules() == 3);
    // The objects the ruleset pins: each once, whatever the number of rules added on it.
    check!(rs.has_fs_rule(1) && rs.has_fs_rule(5) && rs.has_fs_rule(9) && !rs.has_fs_rule(4));
    check!(rs.fs_keys().eq([1u64, 5, 9]));
    check!(rs.add_net_rule(80, 0) == Err(ENOMSG));
    check!(rs.add_net_rule(80, NET_CONNECT_TCP) == Err(EINVAL));
    check!(rs.add_net_rule(65536, NET_BIND_TCP) == Err(EINVAL));
    check!(rs.add_net_rule(u64::MAX, NET_BIND_TCP) == Err(EINVAL));
    check!(rs.add_net_rule(65535, NET_BIND_TCP) == Ok(()));
    check!(rs.num_rules() == 4);
    Ok(())
}

/// A path walk: rights granted by a rule on an ancestor, per layer.
pub fn fs_walk() -> Outcome {
    // Layer 1: read files beneath 10; layer 2: read files beneath 20 (a child of 10).
    let mut r1 = Ruleset::new(handled(FS_READ_FILE | FS_WRITE_FILE, 0));
    check!(r1.add_fs_rule(10, true, FS_READ_FILE) == Ok(()));
    let d1 = match Domain::merge(None, &r1, 100) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    // /10/20/30 (30 is the file): reading is allowed, writing is not.
    let walk = [30u64, 20, 10, 1];
    let run = |d: &Domain, req: u64| -> u64 {
        match d.fs_check(req) {
            None => 0,
            Some(mut c) => {
                for k in walk {
                    if c.visit(k) {
                        break;
                    }
                }
                c.denied()
            }
        }
    };
    check!(run(&d1, FS_READ_FILE) == 0);
    check!(run(&d1, FS_WRITE_FILE) == FS_WRITE_FILE);
    check!(run(&d1, FS_READ_FILE | FS_WRITE_FILE) == FS_WRITE_FILE);
    // Not handled: allowed.
    check!(run(&d1, FS_EXECUTE) == 0);
    check!(d1.fs_check(FS_EXECUTE).is_none());
    let mut r2 = Ruleset::new(handled(FS_READ_FILE, 0));
    check!(r2.add_fs_rule(40, true, FS_READ_FILE) == Ok(()));
    let d2 = match Domain::merge(Some(&d1), &r2, 101) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    check!(d2.num_layers() == 2);
    // Layer 2 does not grant reading beneath 10.
    check!(run(&d2, FS_READ_FILE) == FS_READ_FILE);
    let mut r3 = Ruleset::new(handled(FS_READ_FILE, 0));
    check!(r3.add_fs_rule(20, true, FS_READ_FILE) == Ok(()));
    let d3 = match Domain::merge(Some(&d1), &r3, 102) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    check!(run(&d3, FS_READ_FILE) == 0);
    check!(d1.is_ancestor_of(&d3) && !d3.is_ancestor_of(&d1) && !d2.is_ancestor_of(&d3));
    check!(d3.is_ancestor_of(&d3));
    // The objects a domain pins: those of every layer's rules, each once.
    check!(d1.fs_keys().eq([10u64]));
    check!(d2.fs_keys().eq([10u64, 40]));
    check!(d3.fs_keys().eq([10u64, 20]));
    let mut r4 = Ruleset::new(handled(FS_READ_FILE, 0));
    check!(r4.add_fs_rule(10, true, FS_READ_FILE) == Ok(()));
    check!(r4.add_fs_rule(5, true, FS_READ_FILE) == Ok(()));
    let d4 = match Domain::merge(Some(&d3), &r4, 103) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    check!(d4.fs_keys().eq([5u64, 10, 20]));
    Ok(())
}

/// What the trace events of a rule met during a check show: the handled part of the request
/// and, per layer, what that layer's rule on the object grants of it.
pub fn rule_grants() -> Outcome {
    // Layer 1 handles READ_DIR and EXECUTE; its rule on 10 grants READ_DIR (and, as stored,
    // every right it does not handle, REFER excepted).
    let mut r1 = Ruleset::new(handled(FS_READ_DIR | FS_EXECUTE, NET_BIND_TCP));
    check!(r1.add_fs_rule(10, true, FS_READ_DIR) == Ok(()));
    check!(r1.add_net_rule(80, NET_BIND_TCP) == Ok(()));
    let d1 = match Domain::merge(None, &r1, 100) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    // An open of a directory asks READ_DIR and the optional TRUNCATE (not handled).
    let c = match d1.fs_check(FS_READ_DIR | FS_TRUNCATE) {
        Some(c) => c,
        None => return Err(line!()),
    };
    check!(c.request() == FS_READ_DIR);
    check!(c.rule_grants(10).map(|g| g[0]) == Some(FS_READ_DIR));
    check!(c.rule_grants(11).is_none());
    // Executing under 10: the rule matches but grants none of the request.
    let c = match d1.fs_check(FS_EXECUTE) {
        Some(c) => c,
        None => return Err(line!()),
    };
    check!(c.rule_grants(10) == Some([0; MAX_LAYERS]));
    // REFER counts as handled.
    let c = match d1.fs_check(FS_REFER | FS_READ_FILE) {
        Some(c) => c,
        None => return Err(line!()),
    };
    check!(c.request() == FS_REFER);
    // Layer 2 has a rule on 10 too, granting both rights; layer 1's stays as it was.
    let mut r2 = Ruleset::new(handled(FS_READ_DIR | FS_EXECUTE, 0));
    check!(r2.add_fs_rule(10, true, FS_READ_DIR | FS_EXECUTE) == Ok(()));
    let d2 = match Domain::merge(Some(&d1), &r2, 101) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    let c = match d2.fs_check(FS_READ_DIR | FS_EXECUTE) {
        Some(c) => c,
        None => return Err(line!()),
    };
    let g = match c.rule_grants(10) {
        Some(g) => g,
        None => return Err(line!()),
    };
    check!(g[0] == FS_READ_DIR && g[1] == (FS_READ_DIR | FS_EXECUTE) && g[2] == 0);
    // Ports: layer 1's rule on 80; layer 2 has none (and does not handle the right).
    check!(d2.net_rule_grants(80, NET_BIND_TCP).map(|g| (g[0], g[1])) == Some((NET_BIND_TCP, 0)));
    check!(d2.net_rule_grants(81, NET_BIND_TCP).is_none());
    Ok(())
}

/// Checks of many layers against a direct model: a requested right a layer handles (or
/// `REFER`) is granted iff a rule of that layer grants it on an object of the walk, rules of
/// one layer adding up; a right is denied if any layer does not grant it.
pub fn layered_model() -> Outcome {
    const KEYS: usize = 6;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    // xorshift64: deterministic, so a failure is reproducible.
    let mut next = move |m: u64| -> u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for round in 0..64u64 {
        let n = 1 + next(MAX_LAYERS as u64) as usize;
        let mut handled_by = [0u64; MAX_LAYERS];
        // grants[l][k]: the rights layer `l` grants on the object `k + 1`.
        let mut grants = [[0u64; KEYS]; MAX_LAYERS];
        let mut d: Option<Domain> = None;
        for l in 0..n {
            let h = next(FS_MASK + 1) | FS_READ_FILE;
            handled_by[l] = h;
            let mut rs = Ruleset::new(handled(h, 0));
            for (k, g) in grants[l].iter_mut().enumerate() {
                let a = next(FS_MASK + 1) & h;
                if a != 0 && next(3) != 0 {
                    check!(rs.add_fs_rule(k as u64 + 1, true, a) == Ok(()));
                    *g = a;
                }
            }
            let id = round * 100 + l as u64 + 1;
            d = Some(Domain::merge(d.as_ref(), &rs, id).map_err(|_| line!())?);
        }
        let d = d.ok_or(line!())?;
        for _ in 0..20 {
            let request = next(FS_MASK + 1);
            // Objects 1..=KEYS have rules, KEYS + 1 has none.
            let mut walk = [0u64; 8];
            for w in walk.iter_mut() {
                *w = 1 + next(KEYS as u64 + 1);
            }
            let mut expected = 0;
            let mut handled_any = false;
            for l in 0..n {
                let mut need = request & (handled_by[l] | FS_REFER);
                handled_any |= need != 0;
                for &k in walk.iter() {
                    if let Some(g) = grants[l].get(k as usize - 1) {
                        need &= !g;
                    }
                }
                expected |= need;
            }
            let Some(mut c) = d.fs_check(request) else {
                check!(!handled_any);
                continue;
            };
            check!(handled_any);
            let mut stopped = false;
            for &k in walk.iter() {
                if c.visit(k) {
                    stopped = true;
                    break;
                }
            }
            check!(c.done() == (expected == 0));
            check!(stopped == (expected == 0));
            check!(c.denied() == expected);
        }
    }
    Ok(())
}

/// At most 16 layers.
pub fn layer_limit() -> Outcome {
    let rs = Ruleset::new(handled(FS_EXECUTE, 0));
    let mut d = match Domain::merge(None, &rs, 1) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    for i in 2..=16 {
        d = match Domain::merge(Some(&d), &rs, i) {
            Ok(d) => d,
            Err(_) => return Err(line!()),
        };
    }
    check!(d.num_layers() == MAX_LAYERS);
    check!(Domain::merge(Some(&d), &rs, 17).err() == Some(E2BIG));
    Ok(())
}

/// TCP ports, per layer.
pub fn net() -> Outcome {
    let mut r1 = Ruleset::new(handled(0, NET_BIND_TCP | NET_CONNECT_TCP));
    check!(r1.add_net_rule(80, NET_CONNECT_TCP) == Ok(()));
    let d1 = match Domain::merge(None, &r1, 1) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    check!(d1.net_check(NET_CONNECT_TCP, 80) == Ok(()));
    check!(d1.net_check(NET_CONNECT_TCP, 81) == Err(EACCES));
    check!(d1.net_check(NET_BIND_TCP, 80) == Err(EACCES));
    check!(d1.handled_fs() == 0 && d1.handled_net() == NET_BIND_TCP | NET_CONNECT_TCP);
    let r2 = Ruleset::new(handled(0, NET_BIND_TCP));
    let d2 = match Domain::merge(Some(&d1), &r2, 2) {
        Ok(d) => d,
        Err(_) => return Err(line!()),
    };
    check!(d2.net_check(NET_CONNECT_TCP, 80) == Ok(()));
    Ok(())
}

/// Socket addresses as C reads them.
pub fn sockaddr() -> Outcome {
    let mut sin = [0u8; 16];
    sin[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
    sin[2..4].copy_from_slice(&8080u16.to_be_bytes());
    check!(tcp_port_of(&sin, AF_INET, true) == Ok(Some(8080)));
    check!(tcp_port_of(&sin[..15], AF_INET, true) == Err(EINVAL));
    check!(tcp_port_of(&sin[..1], AF_INET, true) == Err(EINVAL));
    check!(tcp_port_of(&sin, AF_INET6, true) == Err(EINVAL));
    let mut sin6 = [0u8; 28];
    sin6[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
    sin6[2..4].copy_from_slice(&443u16.to_be_bytes());
    check!(tcp_port_of(&sin6, AF_INET6, false) == Ok(Some(443)));
    check!(tcp_port_of(&sin6[..23], AF_INET6, false) == Err(EINVAL));
    let mut unspec = sin;
    unspec[0..2].copy_from_slice(&AF_UNSPEC.to_ne_bytes());
    check!(tcp_port_of(&unspec, AF_INET, true) == Ok(None));
    check!(tcp_port_of(&unspec, AF_INET, false) == Ok(Some(8080)));
    unspec[4] = 1;
    check!(tcp_port_of(&unspec, AF_INET, false) == Err(EAFNOSUPPORT));
    check!(tcp_port_of(&sin6[..24], AF_INET6, false).is_ok());
    let mut unspec6 = [0u8; 24];
    unspec6[0..2].copy_from_slice(&AF_UNSPEC.to_ne_bytes());
    check!(tcp_port_of(&unspec6, AF_INET6, false) == Err(EAFNOSUPPORT));
    check!(tcp_port_of(&unspec6[..20], AF_INET6, false) == Err(EINVAL));
    let unix = [1u8, 0, 0, 0];
    check!(tcp_port_of(&unix, AF_INET, false) == Ok(None));
    Ok(())
}

/// Access rights of open, mknod and unlink, and the ioctl commands always allowed.
pub fn access_of_operations() -> Outcome {
    check!(open_access(true, false, false, true) == FS_READ_DIR);
    check!(open_access(true, true, false, false) == FS_READ_FILE | FS_WRITE_FILE);
    check!(open_access(false, false, true, false) == FS_EXECUTE);
    check!(open_access(false, false, false, false) == 0);
    check!(make_access(0o100644, 0) == FS_MAKE_REG);
    check!(make_access(0o020000, 0) == FS_MAKE_REG);
    check!(make_access(0o020000, 0x0501) == FS_MAKE_CHAR);
    check!(make_access(0o060000, 1) == FS_MAKE_BLOCK);
    check!(make_access(0o040755, 0) == FS_MAKE_DIR);
    check!(make_access(0o120777, 0) == FS_MAKE_SYM);
    check!(make_access(0o010644, 0) == FS_MAKE_FIFO);
    check!(make_access(0o140644, 0) == FS_MAKE_SOCK);
    check!(remove_access(0o040755) == FS_REMOVE_DIR);
    check!(remove_access(0o100644) == FS_REMOVE_FILE);
    check!(ioctl_always_allowed(0x5451, false));
    check!(!ioctl_always_allowed(0x5401, false));
    Ok(())
}

/// A rename or link as the hooks check it: the parents' walks up to the mount's root (`src`,
/// `dst`: the object ids met, the parent first), then the common walk from the mount's root
/// up (`up`, the root first). Returns the decision and the rights each side would be logged
/// for.
#[allow(clippy::too_many_arguments)]
fn refer_walk(
    d: &Domain,
    src: &[u64],
    dst: &[u64],
    up: &[u64],
    moved: (u64, bool),
    exchanged: Option<(u64, bool)>,
    src_request: u64,
    dst_request: u64,
) -> Option<(Result, Option<u64>, Option<u64>)> {
    let walk = |ids: &[u64]| {
        let mut c = d.fs_check(FS_MASK)?;
        for id in ids {
            if c.visit(*id) {
                break;
            }
        }
        Some(c)
    };
    let (s, t) = (walk(src)?, walk(dst)?);
    if s.done() && t.done() {
        return Some((Ok(()), None, None));
    }
    let mut r = Refer::new(s, t, moved, exchanged, src_request, dst_request);
    for id in up {
        if r.visit(*id) {
            break;
        }
    }
    let logged = |dst: bool| r.denial(dst).map(|(_, req)| req);
    Some((r.result(), logged(false), logged(true)))
}

/// Reparenting: `REFER` is needed on both sides, `EACCES` before `EXDEV`, and the moved file
/// may not gain a right, its own rules counted (C's `current_check_refer_path`).
pub fn reparent() -> Outcome {
    // Directories 10 (source) and 20 (destination) below the mount's root 1; files 11 and
    // 12 in 10 (12 with a rule of its own), directory 13 in 10; 2 above the mount.
    let mut rs = Ruleset::new(handled(
        FS_READ_FILE | FS_MAKE_REG | FS_MAKE_DIR | FS_REMOVE_FILE | FS_REMOVE_DIR | FS_REFER,
        0,
    ));
    let refer = FS_MAKE_REG | FS_MAKE_DIR | FS_REMOVE_FILE | FS_REMOVE_DIR | FS_REFER;
    check!(rs.add_fs_rule(1, true, refer) == Ok(()));
    check!(rs.add_fs_rule(20, true, FS_READ_FILE | FS_MAKE_DIR) == Ok(()));
    check!(rs.add_fs_rule(12, false, FS_READ_FILE) == Ok(()));
    let Ok(d) = Domain::merge(None, &rs, 1) else {
        return Err(line!());
    };
    let file = FS_MAKE_REG | FS_REFER;
    let rm = FS_REMOVE_FILE | FS_REFER;
    // 11 from 10 to 20: gains READ_FILE: EXDEV, both sides logged with every handled right.
    let r = refer_walk(&d, &[10, 1], &[20, 1], &[1, 2], (11, false), None, rm, file);
    check!(r == Some((Err(EXDEV), Some(d.handled_fs()), None)));
    // 12 has READ_FILE by its own rule: it gains nothing.
    let r = refer_walk(&d, &[10, 1], &[20, 1], &[1, 2], (12, false), None, rm, file);
    check!(r == Some((Ok(()), None, None)));
    // Back from 20 to 10: loses READ_FILE: fine.
    let r = refer_walk(&d, &[20, 1], &[10, 1], &[1, 2], (11, false), None, rm, file);
    check!(r == Some((Ok(()), None, None)));
    // A directory also counts MAKE_DIR, which a file does not.
    let dir = FS_MAKE_DIR | FS_REFER;
    let rmdir = FS_REMOVE_DIR | FS_REFER;
    let r = refer_walk(
        &d,
        &[20, 1],
        &[10, 1],
        &[1, 2],
        (13, true),
        None,
        rmdir,
        dir,
    );
    check!(r == Some((Ok(()), None, None)));
    // Exchanging 11 (in 10) with 21 (in 20): 11 would gain READ_FILE.
    let both = FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER;
    let r = refer_walk(
        &d,
        &[10, 1],
        &[20, 1],
        &[1, 2],
        (11, false),
        Some((21, false)),
        both,
        both,
    );
    check!(matches!(r, Some((Err(EXDEV), _, _))));
    // Exchanging 12 (own READ_FILE) with 21: neither gains anything.
    let r = refer_walk(
        &d,
        &[10, 1],
        &[20, 1],
        &[1, 2],
        (12, false),
        Some((21, false)),
        both,
        both,
    );
    check!(r == Some((Ok(()), None, None)));
    // A right missing at the destination: EACCES first; the walk found the move harmless,
    // so only the request is logged, and only for the side that denies it.
    let r = refer_walk(
        &d,
        &[20, 1],
        &[10, 1],
        &[1, 2],
        (11, false),
        None,
        rm,
        FS_READ_FILE | FS_REFER,
    );
    check!(r == Some((Err(EACCES), None, Some(FS_READ_FILE | FS_REFER))));

    // A rule above the mount's root granting READ_FILE makes both sides equal there: the
    // move is harmless once the walk is past it (WRITE_FILE, granted nowhere, is not asked).
    let mut rs = Ruleset::new(handled(
        FS_READ_FILE | FS_WRITE_FILE | FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER,
        0,
    ));
    check!(rs.add_fs_rule(1, true, FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER) == Ok(()));
    check!(rs.add_fs_rule(20, true, FS_READ_FILE) == Ok(()));
    check!(rs.add_fs_rule(2, true, FS_READ_FILE) == Ok(()));
    let Ok(d1) = Domain::merge(None, &rs, 2) else {
        return Err(line!());
    };
    let r = refer_walk(
        &d1,
        &[10, 1],
        &[20, 1],
        &[1, 2, 3],
        (11, false),
        None,
        rm,
        file,
    );
    check!(r == Some((Ok(()), None, None)));
    // C compares before each directory's rules: a rule on the last directory of the walk
    // (the root of the namespace) comes too late.
    let r = refer_walk(
        &d1,
        &[10, 1],
        &[20, 1],
        &[1, 2],
        (11, false),
        None,
        rm,
        file,
    );
    check!(matches!(r, Some((Err(EXDEV), _, _))));

    // Two layers: the second grants READ_FILE on 10 only; moving to 20 (READ_FILE in the
    // first layer, not in the second) gains nothing in either layer.
    let mut rs2 = Ruleset::new(handled(
        FS_READ_FILE | FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER,
        0,
    ));
    check!(rs2.add_fs_rule(1, true, FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER) == Ok(()));
    check!(rs2.add_fs_rule(10, true, FS_READ_FILE) == Ok(()));
    let Ok(d2) = Domain::merge(Some(&d), &rs2, 3) else {
        return Err(line!());
    };
    let r = refer_walk(
        &d2,
        &[10, 1],
        &[20, 1],
        &[1, 2],
        (12, false),
        None,
        rm,
        file,
    );
    check!(r == Some((Ok(()), None, None)));
    // 11 still gains READ_FILE in the first layer.
    let r = refer_walk(
        &d2,
        &[10, 1],
        &[20, 1],
        &[1, 2],
        (11, false),
        None,
        rm,
        file,
    );
    check!(matches!(r, Some((Err(EXDEV), _, _))));

    // Without REFER granted, reparenting is denied (EXDEV), both sides logged.
    let mut rs3 = Ruleset::new(handled(FS_MAKE_REG | FS_REMOVE_FILE, 0));
    check!(rs3.add_fs_rule(1, true, FS_MAKE_REG | FS_REMOVE_FILE) == Ok(()));
    let Ok(d3) = Domain::merge(None, &rs3, 4) else {
        return Err(line!());
    };
    let r = refer_walk(
        &d3,
        &[10, 1],
        &[20, 1],
        &[1, 2],
        (11, false),
        None,
        rm,
        file,
    );
    check!(r == Some((Err(EXDEV), Some(rm), Some(file))));
    // Everything granted below the mount's root on both sides: allowed without going up.
    let mut rs4 = Ruleset::new(handled(FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER, 0));
    check!(rs4.add_fs_rule(1, true, FS_MAKE_REG | FS_REMOVE_FILE | FS_REFER) == Ok(()));
    let Ok(d4) = Domain::merge(None, &rs4, 5) else {
        return Err(line!());
    };
    let r = refer_walk(&d4, &[10, 1], &[20, 1], &[], (11, false), None, rm, file);
    check!(r == Some((Ok(()), None, None)));
    Ok(())
}

fn scoped_domain(parent: Option<&Domain>, scope: u64, id: u64) -> Option<Domain> {
    let rs = Ruleset::new(Handled {
        fs: if scope == 0 { FS_EXECUTE } else { 0 },
        net: 0,
        scope,
    });
    Domain::merge(parent, &rs, id).ok()
}

/// Scoping (ABI 6): which domains a scoped client may reach, as C's `domain_is_scoped`.
pub fn scopes() -> Outcome {
    let sig = SCOPE_SIGNAL;
    let unix = SCOPE_ABSTRACT_UNIX_SOCKET;
    // a: scopes signals; a/b: nested in a, scopes nothing; a/c: nested in a, scopes signals;
    // d: another domain scoping both; u: a domain that scopes nothing.
    let a = scoped_domain(None, sig, 1).ok_or(line!())?;
    let b = scoped_domain(Some(&a), 0, 2).ok_or(line!())?;
    let c = scoped_domain(Some(&a), sig, 3).ok_or(line!())?;
    let d = scoped_domain(None, sig | unix, 4).ok_or(line!())?;
    let u = scoped_domain(None, 0, 5).ok_or(line!())?;
    check!(a.handles_scope(sig) && !a.handles_scope(unix));
    check!(b.handles_scope(sig) && c.handles_scope(sig) && d.handles_scope(unix));
    check!(!u.handles_scope(SCOPE_MASK));
    // A scoped client reaches its own domain and nested ones only.
    check!(!a.scope_denies(Some(&a), sig));
    check!(!a.scope_denies(Some(&b), sig));
    check!(!a.scope_denies(Some(&c), sig));
    check!(a.scope_denies(None, sig));
    check!(a.scope_denies(Some(&d), sig));
    check!(a.scope_denies(Some(&u), sig));
    // Not for a scope it does not handle.
    check!(!a.scope_denies(None, unix));
    check!(!a.scope_denies(Some(&d), unix));
    // b inherits a's scope: it reaches a (its scoping layer is a's) and c, not outside a.
    check!(!b.scope_denies(Some(&a), sig));
    check!(!b.scope_denies(Some(&c), sig));
    check!(b.scope_denies(None, sig));
    check!(b.scope_denies(Some(&d), sig));
    // c scopes itself: not its parent a nor its sibling b.
    check!(c.scope_denies(Some(&a), sig));
    check!(c.scope_denies(Some(&b), sig));
    check!(!c.scope_denies(Some(&c), sig));
    // A domain that scopes nothing is never denied; anybody may reach a scoped domain.
    check!(!u.scope_denies(None, SCOPE_MASK));
    check!(!u.scope_denies(Some(&a), SCOPE_MASK));
    // Two domains from the same ruleset are different domains.
    let d2 = scoped_domain(None, sig | unix, 6).ok_or(line!())?;
    check!(d.scope_denies(Some(&d2), unix));
    check!(d2.scope_denies(Some(&d), sig));
    // Sixteen scoped layers: the deepest reaches only itself.
    let mut chain = scoped_domain(None, unix, 100).ok_or(line!())?;
    let top = scoped_domain(None, unix, 99).ok_or(line!())?;
    for i in 101..116 {
        chain = scoped_domain(Some(&chain), unix, i).ok_or(line!())?;
    }
    check!(chain.num_layers() == MAX_LAYERS);
    check!(!chain.scope_denies(Some(&chain), unix));
    check!(chain.scope_denies(Some(&top), unix));
    check!(!top.scope_denies(Some(&top), unix));
    check!(top.scope_denies(Some(&chain), unix));
    Ok(())
}

/// `landlock_restrict_self(2)` flags, as C decodes them.
pub fn restrict_flags() -> Outcome {
    let none = restrict_self_flags(3, 0).map_err(|_| line!())?;
    check!(none.with_ruleset && none.log_same_exec && !none.log_new_exec);
    check!(none.log_subdomains && !none.no_new_privs);
    let all = restrict_self_flags(
        3,
        RESTRICT_SELF_LOG_SAME_EXEC_OFF
            | RESTRICT_SELF_LOG_NEW_EXEC_ON
            | RESTRICT_SELF_LOG_SUBDOMAINS_OFF
            | RESTRICT_SELF_NO_NEW_PRIVS,
    )
    .map_err(|_| line!())?;
    check!(all.with_ruleset && !all.log_same_exec && all.log_new_exec);
    check!(!all.log_subdomains && all.no_new_privs);
    // fd -1 is "no ruleset" with LOG_SUBDOMAINS_OFF alone only.
    let off = restrict_self_flags(-1, RESTRICT_SELF_LOG_SUBDOMAINS_OFF).map_err(|_| line!())?;
    check!(!off.with_ruleset && !off.log_subdomains);
    let with = restrict_self_flags(-1, RESTRICT_SELF_LOG_SUBDOMAINS_OFF | 1);
    check!(with.map(|f| f.with_ruleset) == Ok(true));
    check!(restrict_self_flags(-1, 0).map(|f| f.with_ruleset) == Ok(true));
    // Unknown flags.
    check!(restrict_self_flags(3, 1 << 5) == Err(EINVAL));
    // TSYNC alone needs a ruleset; with LOG_SUBDOMAINS_OFF alone, fd -1 is still "none".
    let t = restrict_self_flags(-1, RESTRICT_SELF_TSYNC).map_err(|_| line!())?;
    check!(t.with_ruleset && t.tsync);
    let t = restrict_self_flags(-1, RESTRICT_SELF_TSYNC | RESTRICT_SELF_LOG_SUBDOMAINS_OFF)
        .map_err(|_| line!())?;
    check!(!t.with_ruleset && t.tsync && !t.log_subdomains);
    let t = restrict_self_flags(
        -1,
        RESTRICT_SELF_TSYNC | RESTRICT_SELF_LOG_SUBDOMAINS_OFF | RESTRICT_SELF_LOG_SAME_EXEC_OFF,
    )
    .map_err(|_| line!())?;
    check!(t.with_ruleset);
    check!(!none.tsync);
    Ok(())
}

/// Which denials are logged: the flags of `landlock_restrict_self(2)` across `execve(2)` and
/// nested domains (C's `domain_exec`, `log_subdomains_off`, `log_status`).
pub fn log_policy() -> Outcome {
    let flags = |f: u32| restrict_self_flags(3, f).map_err(|_| line!());
    let default = flags(0)?;
    // A first domain: layer 0 is the running program's.
    let (c1, prev) = CredLog::default().restrict(&default, Some(1));
    check!(prev && c1.domain_exec == 1 && !c1.log_subdomains_off);
    check!(new_log_status(&default, prev) == LogStatus::Pending);
    check!(c1.same_exec(0) && !c1.same_exec(1) && !c1.same_exec(99));
    // Denials are logged in the same program, not after execve (default flags).
    check!(denial_logged(LogStatus::Pending, true, true, false, false));
    check!(!denial_logged(
        LogStatus::Pending,
        false,
        true,
        false,
        false
    ));
    check!(denial_logged(LogStatus::Recorded, true, true, false, false));
    // LOG_NEW_EXEC_ON: after execve too; LOG_SAME_EXEC_OFF: not before.
    check!(denial_logged(LogStatus::Pending, false, true, true, false));
    check!(!denial_logged(LogStatus::Pending, true, false, true, false));
    // Disabled or quieted: never.
    check!(!denial_logged(LogStatus::Disabled, true, true, true, false));
    check!(!denial_logged(LogStatus::Pending, true, true, true, true));
    // execve forgets which layers the program enforced, keeps LOG_SUBDOMAINS_OFF.
    let e = CredLog {
        domain_exec: 0b101,
        log_subdomains_off: true,
    }
    .on_exec();
    check!(e.domain_exec == 0 && e.log_subdomains_off);
    check!(CredLog::from_word(e.to_word()) == e);
    check!(CredLog::from_word(c1.to_word()) == c1);
    // Both exec flags off: the domain is never logged.
    let quiet = flags(RESTRICT_SELF_LOG_SAME_EXEC_OFF)?;
    check!(new_log_status(&quiet, true) == LogStatus::Disabled);
    let new_on = flags(RESTRICT_SELF_LOG_SAME_EXEC_OFF | RESTRICT_SELF_LOG_NEW_EXEC_ON)?;
    check!(new_log_status(&new_on, true) == LogStatus::Pending);
    // LOG_SUBDOMAINS_OFF: the new domain logs, its children do not.
    let sub_off = flags(RESTRICT_SELF_LOG_SUBDOMAINS_OFF)?;
    let (c2, prev2) = c1.restrict(&sub_off, Some(2));
    check!(prev2 && new_log_status(&sub_off, prev2) == LogStatus::Pending);
    check!(c2.log_subdomains_off && c2.domain_exec == 0b11);
    let (c3, prev3) = c2.restrict(&default, Some(3));
    check!(!prev3 && new_log_status(&default, prev3) == LogStatus::Disabled);
    // It sticks: a later call without the flag does not clear it.
    check!(c3.log_subdomains_off && c3.domain_exec == 0b111);
    // The fd -1 form sets it without a new domain (and without a new layer bit).
    let only = restrict_self_flags(-1, RESTRICT_SELF_LOG_SUBDOMAINS_OFF).map_err(|_| line!())?;
    let (c4, prev4) = CredLog::default().restrict(&only, None);
    check!(prev4 && c4.log_subdomains_off && c4.domain_exec == 0);
    let (c5, prev5) = c4.restrict(&default, Some(1));
    check!(!prev5 && new_log_status(&default, prev5) == LogStatus::Disabled);
    check!(c5.domain_exec == 1);
    check!(LogStatus::from_u8(LogStatus::Recorded as u8) == LogStatus::Recorded);
    check!(LogStatus::from_u8(7) == LogStatus::Disabled);
    Ok(())
}

/// The layer a denial is logged for (C's `get_denied_layer`, and the network, scope and
/// filesystem variants).
pub fn denied_layers() -> Outcome {
    let mut masks = [0u64; 5];
    masks[0] = FS_EXECUTE | FS_READ_DIR;
    masks[1] = FS_READ_FILE | FS_READ_DIR;
    masks[2] = FS_REMOVE_DIR;
    check!(youngest_denied_layer(&masks, FS_EXECUTE, 5) == (0, FS_EXECUTE));
    check!(youngest_denied_layer(&masks, FS_READ_FILE, 5) == (1, FS_READ_FILE));
    check!(youngest_denied_layer(&masks, FS_READ_DIR, 5) == (1, FS_READ_DIR));
    check!(
        youngest_denied_layer(&masks, FS_READ_FILE | FS_READ_DIR, 5)
            == (1, FS_READ_FILE | FS_READ_DIR)
    );
    check!(youngest_denied_layer(&masks, FS_EXECUTE | FS_READ_DIR, 5) == (1, FS_READ_DIR));
    check!(youngest_denied_layer(&masks, FS_WRITE_FILE, 5) == (4, 0));
    // Network: the youngest layer without a rule for the port.
    let mut r1 = Ruleset::new(handled(0, NET_CONNECT_TCP));
    check!(r1.add_net_rule(80, NET_CONNECT_TCP) == Ok(()));
    let d1 = Domain::merge(None, &r1, 1).map_err(|_| line!())?;
    let r2 = Ruleset::new(handled(0, NET_CONNECT_TCP));
    let d2 = Domain::merge(Some(&d1), &r2, 2).map_err(|_| line!())?;
    let r3 = Ruleset::new(handled(FS_READ_FILE, 0));
    let d3 = Domain::merge(Some(&d2), &r3, 3).map_err(|_| line!())?;
    check!(d1.net_denied_layer(NET_CONNECT_TCP, 80).is_none());
    check!(d1.net_denied_layer(NET_CONNECT_TCP, 81) == Some(0));
    check!(d3.net_denied_layer(NET_CONNECT_TCP, 80) == Some(1));
    check!(d3.net_denied_layer(NET_CONNECT_TCP, 81) == Some(1));
    check!(d3.net_denied_layer(NET_BIND_TCP, 81).is_none());
    check!(d3.youngest_fs_layer(FS_MASK_UAPI) == Some(2));
    check!(d2.youngest_fs_layer(FS_MASK_UAPI).is_none());
    let s = scoped_domain(Some(&d3), SCOPE_SIGNAL, 4).ok_or(line!())?;
    let s2 = scoped_domain(Some(&s), 0, 5).ok_or(line!())?;
    check!(s2.youngest_scope_layer(SCOPE_SIGNAL) == Some(3));
    check!(s2
        .youngest_scope_layer(SCOPE_ABSTRACT_UNIX_SOCKET)
        .is_none());
    // Filesystem: the youngest layer still denying after the walk.
    let mut f1 = Ruleset::new(handled(FS_READ_FILE | FS_WRITE_FILE, 0));
    check!(f1.add_fs_rule(7, true, FS_READ_FILE) == Ok(()));
    let fd1 = Domain::merge(None, &f1, 10).map_err(|_| line!())?;
    let f2 = Ruleset::new(handled(FS_WRITE_FILE, 0));
    let fd2 = Domain::merge(Some(&fd1), &f2, 11).map_err(|_| line!())?;
    let mut c = fd2.fs_check(FS_READ_FILE | FS_WRITE_FILE).ok_or(line!())?;
    check!(!c.visit(7));
    check!(c.denied() == FS_WRITE_FILE);
    check!(c.denied_layer(FS_READ_FILE | FS_WRITE_FILE) == (1, FS_WRITE_FILE));
    check!(c.denied_layer(FS_READ_FILE) == (1, 0));
    c.grant_all();
    check!(c.done() && c.denied() == 0);
    Ok(())
}

/// A fixed buffer to format into.
struct Buf {
    b: [u8; 160],
    n: usize,
}

impl core::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.n.checked_add(s.len()).ok_or(core::fmt::Error)?;
        self.b
            .get_mut(self.n..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

fn shows(b: Blocker, expected: &str) -> bool {
    use core::fmt::Write;
    let mut buf = Buf { b: [0; 160], n: 0 };
    write!(buf, "{b}").is_ok() && buf.b.get(..buf.n) == Some(expected.as_bytes())
}

/// The `blockers=` of records, as C writes them; domain ids.
pub fn blockers_and_ids() -> Outcome {
    check!(shows(Blocker::Ptrace, "ptrace"));
    check!(shows(Blocker::ChangeTopology, "fs.change_topology"));
    check!(shows(Blocker::Fs(FS_READ_DIR), "fs.read_dir"));
    check!(shows(
        Blocker::Fs(FS_EXECUTE | FS_WRITE_FILE | FS_IOCTL_DEV),
        "fs.execute,fs.write_file,fs.ioctl_dev"
    ));
    check!(shows(Blocker::Fs(1 << 16), "fs.resolve_unix"));
    check!(shows(Blocker::Net(NET_CONNECT_TCP), "net.connect_tcp"));
    check!(shows(Blocker::Net(NET_BIND_TCP), "net.bind_tcp"));
    check!(shows(Blocker::ScopeSignal, "scope.signal"));
    check!(shows(
        Blocker::ScopeAbstractUnix,
        "scope.abstract_unix_socket"
    ));
    // Ids: above 2^32, as C's init_id; steps of 1 to 16.
    check!(first_domain_id(0) == 1 + u64::from(u32::MAX));
    check!(first_domain_id(u32::MAX) == 1 + 2 * u64::from(u32::MAX));
    check!(domain_id_step(0) == 1 && domain_id_step(15) == 16 && domain_id_step(0xff) == 16);
    Ok(())
}

/// Quiet masks and quiet rules (ABI 11): what they accept and which denials they silence.
pub fn quiet_rules() -> Outcome {
    let mut rs = Ruleset::new(handled(FS_READ_FILE | FS_WRITE_FILE, NET_CONNECT_TCP));
    // Without quiet masks, the quiet flag is useless (EINVAL); a rule without rights is
    // useless (ENOMSG) unless it holds the flag.
    check!(rs.check_fs_access(0, 0) == Err(ENOMSG));
    check!(rs.check_fs_access(0, ADD_RULE_QUIET) == Err(EINVAL));
    check!(rs.add_net_rule_flags(80, 0, ADD_RULE_QUIET) == Err(EINVAL));
    rs.set_quiet(Handled {
        fs: FS_WRITE_FILE,
        net: NET_CONNECT_TCP,
        scope: 0,
    });
    check!(rs.check_fs_access(0, ADD_RULE_QUIET) == Ok(()));
    check!(rs.check_fs_access(FS_EXECUTE, ADD_RULE_QUIET) == Err(EINVAL));
    check!(rs.add_fs_rule_flags(7, true, 0, ADD_RULE_QUIET) == Ok(()));
    check!(rs.add_fs_rule_flags(8, true, FS_READ_FILE, 0) == Ok(()));
    check!(rs.add_net_rule_flags(80, 0, ADD_RULE_QUIET) == Ok(()));
    check!(rs.add_net_rule_flags(70000, 0, ADD_RULE_QUIET) == Err(EINVAL));
    let d = Domain::merge(None, &rs, 1).map_err(|_| line!())?;
    check!(d.quiet_of(0).fs == FS_WRITE_FILE && d.quiet_of(1).fs == 0);
    // A quiet rule met on the walk marks its layer; it grants nothing.
    let mut c = d.fs_check(FS_WRITE_FILE).ok_or(line!())?;
    check!(!c.visit(8));
    check!(!c.quiet_layer(0));
    check!(!c.visit(7));
    check!(c.quiet_layer(0) && c.denied() == FS_WRITE_FILE);
    check!(d.net_denied_quiet(NET_CONNECT_TCP, 80) == Some((0, true)));
    check!(d.net_denied_quiet(NET_CONNECT_TCP, 81) == Some((0, false)));
    // Silenced only when the quiet masks cover everything denied.
    let q = d.quiet_of(0);
    check!(denial_quieted(Blocker::Fs(FS_WRITE_FILE), q, true));
    check!(!denial_quieted(Blocker::Fs(FS_WRITE_FILE), q, false));
    check!(!denial_quieted(
        Blocker::Fs(FS_WRITE_FILE | FS_READ_FILE),
        q,
        true
    ));
    check!(denial_quieted(Blocker::Net(NET_CONNECT_TCP), q, true));
    check!(!denial_quieted(Blocker::Ptrace, q, true));
    let qs = Handled {
        fs: 0,
        net: 0,
        scope: SCOPE_SIGNAL,
    };
    check!(denial_quieted(Blocker::ScopeSignal, qs, false));
    check!(!denial_quieted(Blocker::ScopeAbstractUnix, qs, false));
    Ok(())
}

/// `FS_RESOLVE_UNIX` (ABI 9): accepted in rulesets and on file rules; granted by the layers
/// the socket's creator shares with the client (like a scope), else by rules.
pub fn resolve_unix() -> Outcome {
    let all = RulesetAttr {
        handled_access_fs: FS_MASK_UAPI,
        ..Default::default()
    };
    check!(all.validate().map(|h| h.fs) == Ok(FS_MASK_UAPI));
    let beyond = RulesetAttr {
        handled_access_fs: FS_RESOLVE_UNIX << 1,
        ..Default::default()
    };
    check!(beyond.validate() == Err(EINVAL));
    // A rule on the socket file itself, or on a directory above it.
    let mut r1 = Ruleset::new(handled(FS_RESOLVE_UNIX | FS_READ_FILE, 0));
    check!(r1.add_fs_rule(30, false, FS_RESOLVE_UNIX) == Ok(()));
    check!(r1.add_fs_rule(30, false, FS_READ_DIR) == Err(EINVAL));
    let a = Domain::merge(None, &r1, 1).map_err(|_| line!())?;
    // b is nested in a, with no rule: only sockets of b's own (or nested) domains.
    let r2 = Ruleset::new(handled(FS_RESOLVE_UNIX, 0));
    let b = Domain::merge(Some(&a), &r2, 2).map_err(|_| line!())?;
    let other = Domain::merge(None, &r2, 3).map_err(|_| line!())?;
    // Walks /10/20/30 (30 the socket) or /10/40 for a client in `d` and a server in `server`.
    let run = |d: &Domain, server: Option<&Domain>, walk: &[u64]| -> u64 {
        let Some(mut c) = d.fs_check(FS_RESOLVE_UNIX) else {
            return 0;
        };
        c.unmask_scoped(server);
        if c.done() {
            return 0;
        }
        for k in walk {
            if c.visit(*k) {
                break;
            }
        }
        c.denied()
    };
    let socket = [30u64, 20, 10, 1];
    let elsewhere = [40u64, 10, 1];
    // a: the rule grants 30; another server socket needs its own rule.
    check!(run(&a, None, &socket) == 0);
    check!(run(&a, None, &elsewhere) == FS_RESOLVE_UNIX);
    check!(run(&a, Some(&other), &elsewhere) == FS_RESOLVE_UNIX);
    // A server created in a (or in b, nested in a) is always reachable from a.
    check!(run(&a, Some(&a), &elsewhere) == 0);
    check!(run(&a, Some(&b), &elsewhere) == 0);
    // b: its own layer has no rule: the server must be of b, a's rule does not help.
    check!(run(&b, None, &socket) == FS_RESOLVE_UNIX);
    check!(run(&b, Some(&a), &socket) == FS_RESOLVE_UNIX);
    check!(run(&b, Some(&a), &elsewhere) == FS_RESOLVE_UNIX);
    check!(run(&b, Some(&b), &elsewhere) == 0);
    // A domain not handling the right is never asked.
    let r3 = Ruleset::new(handled(FS_READ_FILE, 0));
    let c = Domain::merge(None, &r3, 4).map_err(|_| line!())?;
    check!(c.fs_check(FS_RESOLVE_UNIX).is_none());
    // c nested in b handles nothing of it: b's layer still needs a server of b.
    let cb = Domain::merge(Some(&b), &r3, 5).map_err(|_| line!())?;
    check!(run(&cb, Some(&b), &elsewhere) == 0);
    check!(run(&cb, Some(&a), &elsewhere) == FS_RESOLVE_UNIX);
    // Moving a socket file keeps its rights (it is a file).
    check!(FS_FILE & FS_RESOLVE_UNIX != 0);
    Ok(())
}

/// UDP rights (ABI 10): per port and per layer, and the addresses of `sendmsg(2)`.
pub fn udp() -> Outcome {
    let all = RulesetAttr {
        handled_access_net: NET_MASK,
        ..Default::default()
    };
    check!(all.validate().map(|h| h.net) == Ok(NET_MASK));
    check!(NET_MASK == 0xf);
    let beyond = RulesetAttr {
        handled_access_net: NET_CONNECT_SEND_UDP << 1,
        ..Default::default()
    };
    check!(beyond.validate() == Err(EINVAL));
    let mut r1 = Ruleset::new(handled(
        0,
        NET_BIND_UDP | NET_CONNECT_SEND_UDP | NET_BIND_TCP,
    ));
    check!(r1.add_net_rule(53, NET_CONNECT_SEND_UDP) == Ok(()));
    check!(r1.add_net_rule(0, NET_BIND_UDP) == Ok(()));
    check!(r1.add_net_rule(80, NET_CONNECT_TCP) == Err(EINVAL));
    let d = Domain::merge(None, &r1, 1).map_err(|_| line!())?;
    check!(d.net_check(NET_CONNECT_SEND_UDP, 53) == Ok(()));
    check!(d.net_check(NET_CONNECT_SEND_UDP, 54) == Err(EACCES));
    check!(d.net_check(NET_BIND_UDP, 53) == Err(EACCES));
    // Port 0: an ephemeral port (explicit bind(0) or autobind).
    check!(d.net_check(NET_BIND_UDP, 0) == Ok(()));
    check!(d.net_check(NET_BIND_TCP, 0) == Err(EACCES));
    // TCP rights are not handled by this layer: granted.
    check!(d.net_check(NET_CONNECT_TCP, 1) == Ok(()));
    // A second layer handling only UDP sending, without rules.
    let r2 = Ruleset::new(handled(0, NET_CONNECT_SEND_UDP));
    let d2 = Domain::merge(Some(&d), &r2, 2).map_err(|_| line!())?;
    check!(d2.net_check(NET_CONNECT_SEND_UDP, 53) == Err(EACCES));
    check!(d2.net_check(NET_BIND_UDP, 0) == Ok(()));

    // Addresses: `sendmsg(2)` reads `AF_UNSPEC` as `AF_INET` on IPv4 sockets, and refuses
    // it on IPv6 ones; `connect(2)` to `AF_UNSPEC` is a disconnection.
    let mut unspec = [0u8; 16];
    unspec[0..2].copy_from_slice(&AF_UNSPEC.to_ne_bytes());
    unspec[2..4].copy_from_slice(&53u16.to_be_bytes());
    unspec[4] = 10;
    check!(inet_port_of(&unspec, AF_INET, NetOp::Send) == Ok(Some(53)));
    check!(inet_port_of(&unspec[..15], AF_INET, NetOp::Send) == Err(EINVAL));
    check!(inet_port_of(&unspec, AF_INET6, NetOp::Send) == Err(EACCES));
    check!(inet_port_of(&unspec[..4], AF_INET6, NetOp::Send) == Err(EACCES));
    check!(inet_port_of(&unspec, AF_INET6, NetOp::Connect) == Ok(None));
    check!(inet_port_of(&unspec, AF_INET, NetOp::Bind) == Err(EAFNOSUPPORT));
    check!(inet_port_of(&unspec[..1], AF_INET, NetOp::Send) == Err(EINVAL));
    let mut sin6 = [0u8; 28];
    sin6[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
    sin6[2..4].copy_from_slice(&5353u16.to_be_bytes());
    check!(inet_port_of(&sin6, AF_INET6, NetOp::Send) == Ok(Some(5353)));
    check!(inet_port_of(&sin6, AF_INET, NetOp::Send) == Err(EINVAL));
    check!(inet_port_of(&sin6[..23], AF_INET6, NetOp::Send) == Err(EINVAL));
    Ok(())
}
