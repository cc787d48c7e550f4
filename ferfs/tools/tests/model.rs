//! Model-based property test: random operation sequences run against the
//! filesystem and an in-memory model; results must agree, and after every
//! step the whole volume (both trees, every B-tree invariant, every
//! filesystem cross-check, every data checksum) is verified. Random syncs,
//! remounts and crashes (remount without sync) are mixed in; after a crash
//! the filesystem must equal the model as of the last sync.
//!
//! Seeds are fixed so failures reproduce; FERFS_MODEL_SEEDS=N runs more.

mod common;
use common::*;
use ferfs_core::format::*;
use ferfs_core::fs::{FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, RENAME_EXCHANGE, RENAME_NOREPLACE};
use ferfs_core::Error;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
enum Node {
    File {
        data: Vec<u8>,
        nlink: u32,
    },
    Dir {
        entries: BTreeMap<Vec<u8>, u64>,
        parent: u64,
    },
}

#[derive(Clone, Debug, Default)]
struct Model {
    nodes: HashMap<u64, Node>,
    xattrs: HashMap<u64, BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Model {
    fn dirs(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n, Node::Dir { .. }))
            .map(|(i, _)| *i)
            .collect();
        v.sort();
        v
    }
    fn files(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| matches!(n, Node::File { .. }))
            .map(|(i, _)| *i)
            .collect();
        v.sort();
        v
    }
    fn entries(&self, d: u64) -> &BTreeMap<Vec<u8>, u64> {
        match &self.nodes[&d] {
            Node::Dir { entries, .. } => entries,
            _ => unreachable!(),
        }
    }
    fn entries_mut(&mut self, d: u64) -> &mut BTreeMap<Vec<u8>, u64> {
        match self.nodes.get_mut(&d).unwrap() {
            Node::Dir { entries, .. } => entries,
            _ => unreachable!(),
        }
    }
    fn is_dir(&self, i: u64) -> bool {
        matches!(self.nodes[&i], Node::Dir { .. })
    }
    fn within(&self, mut i: u64, anc: u64) -> bool {
        loop {
            if i == anc {
                return true;
            }
            if i == ROOT_INO {
                return false;
            }
            i = match &self.nodes[&i] {
                Node::Dir { parent, .. } => *parent,
                _ => unreachable!(),
            };
        }
    }
    fn unlink_ino(&mut self, i: u64) {
        if let Some(Node::File { nlink, .. }) = self.nodes.get_mut(&i) {
            *nlink -= 1;
            if *nlink == 0 {
                self.nodes.remove(&i);
                self.xattrs.remove(&i);
            }
        } else {
            self.nodes.remove(&i);
            self.xattrs.remove(&i);
        }
    }
    fn rename(&mut self, od: u64, on: &[u8], nd: u64, nn: &[u8], flags: u32) -> Result<(), Error> {
        let s = *self.entries(od).get(on).ok_or(Error::NotFound)?;
        let d = self.entries(nd).get(nn).copied();
        if flags & RENAME_EXCHANGE != 0 {
            let d = d.ok_or(Error::NotFound)?;
            if od == nd && on == nn {
                return Ok(());
            }
            if self.is_dir(s) && od != nd && self.within(nd, s) {
                return Err(Error::Invalid);
            }
            if self.is_dir(d) && od != nd && self.within(od, d) {
                return Err(Error::Invalid);
            }
            self.entries_mut(od).insert(on.to_vec(), d);
            self.entries_mut(nd).insert(nn.to_vec(), s);
            if let Some(Node::Dir { parent, .. }) = self.nodes.get_mut(&s) {
                *parent = nd;
            }
            if let Some(Node::Dir { parent, .. }) = self.nodes.get_mut(&d) {
                *parent = od;
            }
            return Ok(());
        }
        if let Some(d) = d {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Error::Exists);
            }
            if d == s {
                return Ok(());
            }
            match (self.is_dir(s), self.is_dir(d)) {
                (true, false) => return Err(Error::NotDir),
                (false, true) => return Err(Error::IsDir),
                _ => {}
            }
        }
        if self.is_dir(s) && self.within(nd, s) {
            return Err(Error::Invalid);
        }
        if let Some(d) = d {
            if self.is_dir(d) && !self.entries(d).is_empty() {
                return Err(Error::NotEmpty);
            }
            self.entries_mut(nd).remove(nn);
            self.unlink_ino(d);
        }
        self.entries_mut(od).remove(on);
        self.entries_mut(nd).insert(nn.to_vec(), s);
        if let Some(Node::Dir { parent, .. }) = self.nodes.get_mut(&s) {
            *parent = nd;
        }
        Ok(())
    }
}

/// Compare the whole filesystem with the model.
fn compare(v: &Vol, m: &Model) {
    for (ino, n) in &m.nodes {
        let a = v
            .getattr(*ino)
            .unwrap_or_else(|e| panic!("inode {ino}: {e}"));
        match n {
            Node::File { data, nlink } => {
                assert_eq!(a.size, data.len() as u64, "size of {ino}");
                assert_eq!(a.nlink, *nlink, "nlink of {ino}");
                let mut buf = vec![0u8; data.len()];
                v.read(*ino, 0, &mut buf).unwrap();
                assert!(buf == *data, "content of {ino} differs");
            }
            Node::Dir { entries, parent } => {
                let mut got = BTreeMap::new();
                v.readdir(*ino, 0, &mut |_, name, child, _| {
                    got.insert(name.to_vec(), child);
                    true
                })
                .unwrap();
                assert_eq!(&got, entries, "entries of dir {ino}");
                assert_eq!(v.parent_of(*ino).unwrap(), *parent);
            }
        }
        let mut xs = BTreeMap::new();
        let mut names = Vec::new();
        v.listxattr(*ino, &mut |n| names.push(n.to_vec())).unwrap();
        for n in names {
            let mut b = vec![0u8; MAX_XATTR_VALUE];
            let l = v.getxattr(*ino, &n, &mut b).unwrap();
            xs.insert(n, b[..l].to_vec());
        }
        assert_eq!(
            &xs,
            m.xattrs.get(ino).unwrap_or(&BTreeMap::new()),
            "xattrs of {ino}"
        );
    }
    assert_eq!(v.inode_count(), m.nodes.len() as u64);
}

fn verify(v: &Vol) {
    // Metadata only: data checksums are verified by `compare` reads and
    // the full fsck at the end of each run.
    let r = ferfs_tools::check::check_with(v, false, false).expect("check");
    assert!(r.errors.is_empty(), "invariants broken: {:#?}", r.errors);
}

/// `tight`: a small filesystem and large writes, so ENOSPC is frequent;
/// any operation may then fail with NoSpace and must leave no trace.
fn run(seed: u64, steps: usize, tight: bool) -> u64 {
    let mut nospace = 0u64;
    let comp = [
        Compression::None,
        Compression::Zstd,
        Compression::Lzo,
        Compression::Zlib,
    ][(seed % 4) as usize];
    let (dev, mut v) = new_fs(if tight { 4096 } else { 6144 }, CsumType::Crc32c, comp);
    let scale: u64 = if tight { 10 } else { 1 };
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut m = Model::default();
    m.nodes.insert(
        ROOT_INO,
        Node::Dir {
            entries: BTreeMap::new(),
            parent: ROOT_INO,
        },
    );
    // Tight runs start with a ballast file the random ops never touch,
    // leaving a few MiB free.
    let mut ballast = 0;
    if tight {
        let data = rng.bytes(12 << 20, false);
        let a = v
            .create(ROOT_INO, b"ballast", S_IFREG | 0o600, 0, 0, 0)
            .unwrap();
        v.write(a.ino, 0, &data).unwrap();
        m.nodes.insert(a.ino, Node::File { data, nlink: 1 });
        m.entries_mut(ROOT_INO).insert(b"ballast".to_vec(), a.ino);
        ballast = a.ino;
        v.sync().unwrap();
    }
    // States that may be durable: the last explicit sync, or, when an
    // operation committed on its own, the state before or after it (a
    // commit at its start releases pinned space; one while freeing an
    // orphan's data happens after the operation's visible effect).
    let mut synced = vec![m.clone()];
    let names: Vec<Vec<u8>> = (0..12).map(|i| format!("n{i}").into_bytes()).collect();
    for step in 0..steps {
        let dirs = m.dirs();
        let files: Vec<u64> = m.files().into_iter().filter(|f| *f != ballast).collect();
        let d = dirs[rng.below(dirs.len() as u64) as usize];
        let name = names[rng.below(names.len() as u64) as usize].clone();
        let ctx = format!("seed {seed} step {step}");
        // An operation may start with a commit of its own (to release
        // space pinned by the open transaction); the state before it then
        // became durable.
        let gen_before = v.generation();
        let before = m.clone();
        let mut synced_step = None;
        match rng.below(100) {
            0..=14 => {
                let dir = rng.below(4) == 0;
                let r = if dir {
                    v.mkdir(d, &name, 0o755, 0, 0)
                } else {
                    v.create(d, &name, S_IFREG | 0o644, 0, 0, 0)
                };
                if tight && r.as_ref().err() == Some(&Error::NoSpace) {
                    nospace += 1;
                } else if m.entries(d).contains_key(&name) {
                    assert_eq!(r.err(), Some(Error::Exists), "{ctx}");
                } else {
                    let a = r.unwrap_or_else(|e| panic!("{ctx}: create: {e}"));
                    let node = if dir {
                        Node::Dir {
                            entries: BTreeMap::new(),
                            parent: d,
                        }
                    } else {
                        Node::File {
                            data: Vec::new(),
                            nlink: 1,
                        }
                    };
                    m.nodes.insert(a.ino, node);
                    m.entries_mut(d).insert(name, a.ino);
                }
            }
            15..=39 if !files.is_empty() => {
                let f = files[rng.below(files.len() as u64) as usize];
                let off = rng.below(600_000 * scale);
                let max = if rng.below(4) == 0 {
                    300_000 * scale
                } else {
                    5000
                };
                let len = 1 + rng.below(max) as usize;
                let compressible = !tight && rng.below(2) == 0;
                let data = rng.bytes(len, compressible);
                match v.write(f, off, &data) {
                    Ok(n) => {
                        // A short write (ENOSPC part way) stores a prefix.
                        assert!(n > 0 && n <= len, "{ctx}: write returned {n}");
                        let data = &data[..n];
                        if let Node::File { data: md, .. } = m.nodes.get_mut(&f).unwrap() {
                            let end = off as usize + n;
                            if md.len() < end {
                                md.resize(end, 0);
                            }
                            md[off as usize..end].copy_from_slice(data);
                        }
                    }
                    Err(Error::NoSpace) => nospace += 1,
                    Err(e) => panic!("{ctx}: write: {e}"),
                }
            }
            40..=47 if !files.is_empty() => {
                let f = files[rng.below(files.len() as u64) as usize];
                let size = rng.below(500_000 * scale);
                let r = v.truncate(f, size);
                if tight && r == Err(Error::NoSpace) {
                    nospace += 1;
                } else if let Err(e) = r {
                    panic!("{ctx}: truncate: {e}");
                } else if let Node::File { data, .. } = m.nodes.get_mut(&f).unwrap() {
                    data.resize(size as usize, 0);
                }
            }
            48..=53 if !files.is_empty() => {
                let f = files[rng.below(files.len() as u64) as usize];
                let off = rng.below(500_000 * scale);
                let len = 1 + rng.below(300_000 * scale);
                // Punch a hole, or preallocate (growing the file or not).
                let mode = [FALLOC_PUNCH_HOLE | FALLOC_KEEP_SIZE, 0, FALLOC_KEEP_SIZE]
                    [rng.below(3) as usize];
                let r = v.fallocate(f, off, len, mode);
                if tight && r == Err(Error::NoSpace) {
                    nospace += 1;
                } else if let Err(e) = r {
                    panic!("{ctx}: fallocate mode {mode}: {e}");
                } else if let Node::File { data, .. } = m.nodes.get_mut(&f).unwrap() {
                    if mode & FALLOC_PUNCH_HOLE != 0 {
                        let s = (off as usize).min(data.len());
                        let e = ((off + len) as usize).min(data.len());
                        data[s..e].fill(0);
                    } else if mode == 0 && data.len() < (off + len) as usize {
                        data.resize((off + len) as usize, 0);
                    }
                }
            }
            54..=63 => {
                let r = v.unlink(d, &name);
                match m.entries(d).get(&name).copied() {
                    None => assert_eq!(r, Err(Error::NotFound), "{ctx}"),
                    Some(i) if m.is_dir(i) => assert_eq!(r, Err(Error::IsDir), "{ctx}"),
                    Some(i) => {
                        r.unwrap_or_else(|e| panic!("{ctx}: unlink: {e}"));
                        m.entries_mut(d).remove(&name);
                        m.unlink_ino(i);
                    }
                }
            }
            64..=68 => {
                let r = v.rmdir(d, &name);
                match m.entries(d).get(&name).copied() {
                    None => assert_eq!(r, Err(Error::NotFound), "{ctx}"),
                    Some(i) if !m.is_dir(i) => assert_eq!(r, Err(Error::NotDir), "{ctx}"),
                    Some(i) if !m.entries(i).is_empty() => {
                        assert_eq!(r, Err(Error::NotEmpty), "{ctx}")
                    }
                    Some(i) => {
                        r.unwrap_or_else(|e| panic!("{ctx}: rmdir: {e}"));
                        m.entries_mut(d).remove(&name);
                        m.unlink_ino(i);
                    }
                }
            }
            69..=80 => {
                let d2 = dirs[rng.below(dirs.len() as u64) as usize];
                let name2 = names[rng.below(names.len() as u64) as usize].clone();
                let flags = [0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE][rng.below(4) as usize];
                let r = v.rename(d, &name, d2, &name2, flags);
                let mut m2 = m.clone();
                let want = m2.rename(d, &name, d2, &name2, flags);
                let want = if tight && r == Err(Error::NoSpace) {
                    nospace += 1;
                    Err(Error::NoSpace)
                } else {
                    want
                };
                assert_eq!(
                    r, want,
                    "{ctx}: rename {d}/{:?} -> {d2}/{:?} flags {flags}",
                    name, name2
                );
                if want.is_ok() {
                    m = m2;
                }
            }
            81..=85 if !files.is_empty() => {
                let f = files[rng.below(files.len() as u64) as usize];
                let r = v.link(f, d, &name);
                if tight && r.as_ref().err() == Some(&Error::NoSpace) {
                    nospace += 1;
                } else if m.entries(d).contains_key(&name) {
                    assert_eq!(r.err(), Some(Error::Exists), "{ctx}");
                } else {
                    r.unwrap_or_else(|e| panic!("{ctx}: link: {e}"));
                    m.entries_mut(d).insert(name, f);
                    if let Node::File { nlink, .. } = m.nodes.get_mut(&f).unwrap() {
                        *nlink += 1;
                    }
                }
            }
            86..=90 => {
                let mut inos: Vec<u64> = m.nodes.keys().copied().collect();
                inos.sort();
                let i = inos[rng.below(inos.len() as u64) as usize];
                let xn = format!("user.x{}", rng.below(4)).into_bytes();
                if rng.below(3) == 0 {
                    let r = v.removexattr(i, &xn);
                    let had = m.xattrs.get_mut(&i).and_then(|x| x.remove(&xn));
                    assert_eq!(r.is_ok(), had.is_some(), "{ctx}: removexattr {r:?}");
                } else {
                    let vlen = rng.below(300) as usize;
                    let val = rng.bytes(vlen, false);
                    let r = v.setxattr(i, &xn, &val, 0);
                    if tight && r == Err(Error::NoSpace) {
                        nospace += 1;
                    } else {
                        r.unwrap_or_else(|e| panic!("{ctx}: setxattr: {e}"));
                        m.xattrs.entry(i).or_default().insert(xn, val);
                    }
                }
            }
            91..=94 => {
                v.sync().unwrap();
                synced = vec![m.clone()];
                synced_step = Some(step);
            }
            95..=97 => {
                v.sync().unwrap();
                synced = vec![m.clone()];
                synced_step = Some(step);
                drop(v);
                v = remount(&dev);
            }
            _ => {
                // Crash: everything since the last commit is lost.
                drop(v);
                v = remount(&dev);
                let found = synced.iter().find(|cand| {
                    let quiet = std::panic::take_hook();
                    std::panic::set_hook(Box::new(|_| {}));
                    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        compare(&v, cand)
                    }))
                    .is_ok();
                    std::panic::set_hook(quiet);
                    ok
                });
                m = found
                    .unwrap_or_else(|| {
                        panic!("{ctx}: state after crash matches no committed state")
                    })
                    .clone();
            }
        }
        if v.generation() != gen_before {
            // Explicit syncs set `synced` themselves; this one was implicit.
            if synced_step.is_none() {
                synced = vec![before, m.clone()];
            }
        }
        verify(&v);
        if step % 16 == 0 {
            compare(&v, &m);
        }
    }
    compare(&v, &m);
    v.sync().unwrap();
    assert_clean(&dev);
    nospace
}

#[test]
fn random_operations_match_the_model() {
    let extra: u64 = std::env::var("FERFS_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in 1..=(4 + extra) {
        run(seed, 250, false);
    }
}

#[test]
fn random_operations_on_a_nearly_full_filesystem() {
    let mut nospace = 0;
    let extra: u64 = std::env::var("FERFS_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in 100..(102 + extra) {
        nospace += run(seed, 150, true);
    }
    assert!(nospace > 10, "ENOSPC was hit only {nospace} times");
}
