//! fsck and scrub: full consistency check of a mounted volume.
//!
//! Mount has already verified every metadata block it walked (checksums,
//! owners, generations, addresses, key order, no block referenced
//! twice). This adds the filesystem-level cross-checks and verifies every
//! data extent.

use ferfs_core::format::*;
use ferfs_core::fs::parse_entries;
use ferfs_core::repair::Fix;
use ferfs_core::volume::Visitor;
use ferfs_core::{BlockDevice, Error, Result, Volume};
use std::collections::{BTreeMap, HashMap};
use zerocopy::FromBytes;

use crate::StdHost;

#[derive(Default, Debug)]
pub struct Report {
    /// Problems found and left in place.
    pub errors: Vec<String>,
    /// Problems repaired (bad metadata copies rewritten, superblocks).
    pub corrected: u64,
    pub inodes: u64,
    pub dirs: u64,
    pub files: u64,
    pub extents: u64,
    pub logical_bytes: u64,
    pub stored_bytes: u64,
    /// Blocks the stored data occupies (each extent rounded up to blocks).
    pub stored_blocks: u64,
    pub meta_nodes: u64,
    pub fs_tree_level: u8,
    /// Bytes of data and metadata read while checking.
    pub bytes_checked: u64,
    /// Corrections fsck can derive for some of `errors` (`repair` applies them).
    pub fixes: Vec<Fix>,
}

struct InodeInfo {
    mode: u32,
    nlink: u32,
    size: u64,
    stored_blocks: u64,
    parent: u64,
    next_index: u64,
}

struct DirEnt {
    ino: u64,
    ftype: u8,
}

#[derive(Default)]
struct Collector {
    inodes: BTreeMap<u64, InodeInfo>,
    /// (dir, index) -> (name, entry) from DIR_INDEX items.
    index: BTreeMap<(u64, u64), (Vec<u8>, DirEnt)>,
    /// (dir, name) -> (entry, index) from DIR_HASH items.
    hashed: HashMap<(u64, Vec<u8>), (DirEnt, u64)>,
    extents: Vec<(u64, u64, ExtentItem)>,
    xattr_owners: Vec<u64>,
    /// Inodes recorded as orphans (unlinked, being freed).
    orphans: std::collections::BTreeSet<u64>,
    errors: Vec<String>,
    nodes: u64,
}

impl Visitor for Collector {
    fn node(&mut self, _owner: u64, _ptr: &BlockPtr, _level: u8) -> Result<()> {
        self.nodes += 1;
        Ok(())
    }
    fn item(&mut self, owner: u64, key: Key, data: &[u8]) -> Result<()> {
        if owner != TREE_FS {
            return Ok(());
        }
        let k = key;
        match key.kind {
            ITEM_INODE => match InodeItem::read_from_bytes(data) {
                Ok(i) if k.offset == 0 && valid_file_type(i.mode.get()) => {
                    self.inodes.insert(
                        k.objectid,
                        InodeInfo {
                            mode: i.mode.get(),
                            nlink: i.nlink.get(),
                            size: i.size.get(),
                            stored_blocks: i.stored_blocks.get(),
                            parent: i.parent.get(),
                            next_index: i.next_index.get(),
                        },
                    );
                }
                _ => self
                    .errors
                    .push(format!("inode {}: malformed inode item", k.objectid)),
            },
            ITEM_DIR_HASH | ITEM_DIR_INDEX => {
                let mut count = 0;
                let res = parse_entries(data, &mut |name, value| {
                    count += 1;
                    let Ok(dv) = DirValue::read_from_bytes(value) else {
                        self.errors
                            .push(format!("dir {}: entry with malformed value", k.objectid));
                        return Ok(true);
                    };
                    let ent = DirEnt {
                        ino: dv.ino.get(),
                        ftype: dv.file_type,
                    };
                    if k.kind == ITEM_DIR_HASH {
                        if name_hash(name) != k.offset {
                            self.errors.push(format!(
                                "dir {}: entry {:?} under the wrong hash",
                                k.objectid,
                                lossy(name)
                            ));
                        }
                        self.hashed
                            .insert((k.objectid, name.to_vec()), (ent, dv.index.get()));
                    } else {
                        if dv.index.get() != k.offset {
                            self.errors.push(format!(
                                "dir {}: index entry disagrees with its key",
                                k.objectid
                            ));
                        }
                        self.index
                            .insert((k.objectid, k.offset), (name.to_vec(), ent));
                    }
                    Ok(true)
                });
                if res.is_err() || (k.kind == ITEM_DIR_INDEX && count != 1) {
                    self.errors
                        .push(format!("dir {}: malformed directory item", k.objectid));
                }
            }
            ITEM_EXTENT => match ExtentItem::read_from_bytes(data) {
                Ok(e) => self.extents.push((k.objectid, k.offset, e)),
                Err(_) => self
                    .errors
                    .push(format!("inode {}: malformed extent item", k.objectid)),
            },
            ITEM_XATTR => {
                let mut bad = false;
                let res = parse_entries(data, &mut |name, value| {
                    bad |= name_hash(name) != k.offset || value.len() > MAX_XATTR_VALUE;
                    Ok(true)
                });
                if res.is_err() || bad {
                    self.errors
                        .push(format!("inode {}: malformed xattr item", k.objectid));
                }
                self.xattr_owners.push(k.objectid);
            }
            ITEM_ORPHAN if k.objectid == ORPHAN_OBJECTID && data.is_empty() => {
                self.orphans.insert(k.offset);
            }
            other => self.errors.push(format!(
                "object {}: unknown or malformed item type {other}",
                k.objectid
            )),
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Check everything. `scrub` also reads and verifies the DUP copy of
/// every metadata block (repairing per the volume's mount options).
pub fn check<D: BlockDevice>(vol: &Volume<D, StdHost>, scrub: bool) -> Result<Report> {
    check_with(vol, scrub, true)
}

/// `check`, optionally without reading data extents (metadata only).
pub fn check_with<D: BlockDevice>(
    vol: &Volume<D, StdHost>,
    scrub: bool,
    verify_data: bool,
) -> Result<Report> {
    let mut c = Collector::default();
    let rt = vol.root_tree();
    let ft = vol.fs_tree();
    vol.walk(&rt, &mut c, scrub)?;
    vol.walk(&ft, &mut c, scrub)?;
    let mut r = Report {
        meta_nodes: c.nodes,
        fs_tree_level: ft.level,
        ..Report::default()
    };
    r.bytes_checked = c.nodes * BLOCK_SIZE_U64 * if scrub && vol.info().dup { 2 } else { 1 };
    let mut errors = std::mem::take(&mut c.errors);
    let mut fixes = Vec::new();
    // A problem with a derivable correction: reported, and fixed by `repair`.
    let mut fixable = |errors: &mut Vec<String>, what: String, fix: Fix| {
        errors.push(what);
        fixes.push(fix);
    };

    // Directory entries: both indexes agree and point at live inodes.
    let mut links: HashMap<u64, u32> = HashMap::new();
    let mut subdirs: HashMap<u64, u32> = HashMap::new();
    let mut dir_refs: HashMap<u64, Vec<u64>> = HashMap::new();
    for ((dir, index), (name, ent)) in &c.index {
        let n = lossy(name);
        match c.inodes.get(dir) {
            Some(d) if d.mode & S_IFMT == S_IFDIR => {
                if *index >= d.next_index || *index < FIRST_DIR_INDEX {
                    errors.push(format!(
                        "dir {dir}: entry {n:?} has index {index} out of range"
                    ));
                }
            }
            _ => errors.push(format!(
                "entry {n:?} lives in {dir}, which is not a directory"
            )),
        }
        match c.hashed.get(&(*dir, name.clone())) {
            Some((h, hi)) if h.ino == ent.ino && h.ftype == ent.ftype && hi == index => {}
            _ => errors.push(format!(
                "dir {dir}: entry {n:?} missing from or differing in the name index"
            )),
        }
        match c.inodes.get(&ent.ino) {
            None => errors.push(format!(
                "dir {dir}: entry {n:?} points to missing inode {}",
                ent.ino
            )),
            Some(i) => {
                if u32::from(ent.ftype) != (i.mode & S_IFMT) >> 12 {
                    errors.push(format!("dir {dir}: entry {n:?} has the wrong file type"));
                }
                *links.entry(ent.ino).or_default() += 1;
                if i.mode & S_IFMT == S_IFDIR {
                    *subdirs.entry(*dir).or_default() += 1;
                    dir_refs.entry(ent.ino).or_default().push(*dir);
                }
            }
        }
    }
    for ((dir, name), (_, index)) in &c.hashed {
        if !c.index.contains_key(&(*dir, *index)) {
            errors.push(format!(
                "dir {dir}: entry {:?} missing from the readdir index",
                lossy(name)
            ));
        }
    }

    // Extents: owned by files, aligned, inside the file, data intact.
    let mut stored: HashMap<u64, u64> = HashMap::new();
    for (ino, chunk, e) in &c.extents {
        r.extents += 1;
        let Some(i) = c.inodes.get(ino) else {
            errors.push(format!(
                "extent at file offset {chunk} belongs to missing inode {ino}"
            ));
            continue;
        };
        let t = i.mode & S_IFMT;
        if t != S_IFREG && t != S_IFLNK {
            errors.push(format!("inode {ino}: extent on a file that holds no data"));
        }
        if chunk % CHUNK_SIZE_U64 != 0 {
            errors.push(format!("inode {ino}: extent at unaligned offset {chunk}"));
        }
        // An orphan record (interrupted truncate) allows extents past the size.
        if e.kind == EXTENT_REGULAR
            && chunk.saturating_add(u64::from(e.logical_len.get())) > i.size
            && !c.orphans.contains(ino)
        {
            errors.push(format!(
                "inode {ino}: extent at {chunk} reaches past the file size"
            ));
        }
        *stored.entry(*ino).or_default() += u64::from(e.stored_len.get()).div_ceil(BLOCK_SIZE_U64);
        if e.kind == EXTENT_REGULAR {
            r.logical_bytes += u64::from(e.logical_len.get());
            r.stored_bytes += u64::from(e.stored_len.get());
            r.stored_blocks += u64::from(e.stored_len.get()).div_ceil(BLOCK_SIZE_U64);
            r.bytes_checked += u64::from(e.stored_len.get());
        }
        if !verify_data {
            continue;
        }
        if let Err(err) = vol.verify_extent(e) {
            errors.push(format!("inode {ino} offset {chunk}: {err}"));
        }
    }

    // Inodes: link counts, parents, block counts.
    for ino in &c.orphans {
        match c.inodes.get(ino) {
            // Unlinked (being deleted) or linked (truncate in progress).
            Some(_) => {}
            None => fixable(
                &mut errors,
                format!("orphan record for missing inode {ino}"),
                Fix::DropOrphanRecord(*ino),
            ),
        }
    }
    for (ino, i) in &c.inodes {
        r.inodes += 1;
        if i.nlink == 0 && !links.contains_key(ino) {
            // Unlinked and being freed: only its orphan record matters
            // (mount finishes the deletion).
            if !c.orphans.contains(ino) {
                // A directory may still hold entries: keep it rather than free it.
                let fix = if i.mode & S_IFMT == S_IFDIR {
                    Fix::LostFound(*ino)
                } else {
                    Fix::FreeUnlinked(*ino)
                };
                fixable(
                    &mut errors,
                    format!("inode {ino}: unlinked but not recorded as orphan"),
                    fix,
                );
            }
            continue;
        }
        let is_dir = i.mode & S_IFMT == S_IFDIR;
        if is_dir {
            r.dirs += 1;
            let want = 2 + subdirs.get(ino).copied().unwrap_or(0);
            if i.nlink != want {
                fixable(
                    &mut errors,
                    format!("dir {ino}: link count {} should be {want}", i.nlink),
                    Fix::Nlink {
                        ino: *ino,
                        nlink: want,
                    },
                );
            }
            if *ino == ROOT_INO {
                if i.parent != ROOT_INO || dir_refs.contains_key(ino) {
                    errors.push("root directory has a parent entry".to_string());
                }
            } else {
                match dir_refs.get(ino).map(|v| v.as_slice()) {
                    Some([p]) if *p == i.parent => {}
                    Some([p]) => fixable(
                        &mut errors,
                        format!("dir {ino}: parent field disagrees with its entry"),
                        Fix::Parent {
                            ino: *ino,
                            parent: *p,
                        },
                    ),
                    Some(_) => errors.push(format!("dir {ino}: linked from several directories")),
                    None => fixable(
                        &mut errors,
                        format!("dir {ino}: unreachable (no entry names it)"),
                        Fix::LostFound(*ino),
                    ),
                }
            }
        } else {
            r.files += 1;
            let want = links.get(ino).copied().unwrap_or(0);
            if i.nlink != want {
                let what = format!("inode {ino}: link count {} but {want} entries", i.nlink);
                let fix = if want == 0 {
                    Fix::LostFound(*ino)
                } else {
                    Fix::Nlink {
                        ino: *ino,
                        nlink: want,
                    }
                };
                fixable(&mut errors, what, fix);
            }
            if i.size > MAX_FILE_SIZE {
                errors.push(format!("inode {ino}: size beyond the maximum"));
            }
        }
        let blocks = stored.get(ino).copied().unwrap_or(0);
        if blocks != i.stored_blocks {
            fixable(
                &mut errors,
                format!(
                    "inode {ino}: block count {} but its extents hold {blocks}",
                    i.stored_blocks
                ),
                Fix::StoredBlocks { ino: *ino, blocks },
            );
        }
        if *ino >= vol.next_ino() {
            errors.push(format!("inode {ino}: number not yet handed out"));
        }
    }
    if !c.inodes.contains_key(&ROOT_INO) {
        errors.push("root directory missing".to_string());
    }
    if r.inodes != vol.inode_count() {
        fixable(
            &mut errors,
            format!(
                "inode count {} but {} inodes exist",
                vol.inode_count(),
                r.inodes
            ),
            Fix::InodeCount(r.inodes),
        );
    }
    for ino in &c.xattr_owners {
        if !c.inodes.contains_key(ino) {
            errors.push(format!("xattr belongs to missing inode {ino}"));
        }
    }
    let st = &vol.stats;
    let bad_meta = st.meta_bad_copies.get();
    let repaired = st.meta_repaired.get();
    r.corrected = repaired
        + if vol.is_read_only() {
            0
        } else {
            st.super_bad.get()
        };
    if bad_meta > repaired {
        errors.push(format!(
            "{} bad metadata copies not repaired",
            bad_meta - repaired
        ));
    }
    if vol.is_read_only() && st.super_bad.get() > 0 {
        errors.push(format!(
            "{} superblock copies stale or corrupt",
            st.super_bad.get()
        ));
    }
    r.errors = errors;
    r.fixes = fixes;
    Ok(r)
}

/// Rounds of check-and-fix before giving up: a relink into /lost+found
/// changes the link counts the next round checks.
const REPAIR_ROUNDS: usize = 4;

/// fsck -y: check, apply every derivable correction, commit, and check
/// again until nothing derivable is left. The report is the last check's,
/// with every correction made counted in `corrected`.
pub fn repair<D: BlockDevice>(vol: &mut Volume<D, StdHost>, scrub: bool) -> Result<Report> {
    let mut applied = 0u64;
    let mut r = check(vol, scrub)?;
    for _ in 0..REPAIR_ROUNDS {
        if r.fixes.is_empty() || vol.is_read_only() {
            break;
        }
        for fix in std::mem::take(&mut r.fixes) {
            vol.repair(fix)?;
            applied += 1;
        }
        vol.sync()?;
        r = check(vol, false)?;
    }
    r.corrected += applied;
    Ok(r)
}

/// fsck(8) exit code for a result.
pub fn exit_code(res: &std::result::Result<Report, Error>) -> i32 {
    match res {
        Ok(r) if !r.errors.is_empty() => 4,
        Ok(r) if r.corrected > 0 => 1,
        Ok(_) => 0,
        Err(Error::Corrupt { .. }) => 4,
        Err(_) => 8,
    }
}
