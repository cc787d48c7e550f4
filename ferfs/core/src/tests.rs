//! Unit tests of the core with a minimal in-test host (bitwise CRC-32C,
//! no compression, RAM device).
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

extern crate std;
use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

use crate::format::*;
use crate::host::*;
use crate::node::{self, LeafBuilder, NodeBuilder};
use crate::space::Space;
use crate::volume::{MkfsOptions, MountOptions, Op, Visitor, Volume};
use core::cell::RefCell;

struct TestHost;

/// CRC-32C lookup table (reflected polynomial 0x82F63B78).
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

impl Memory for TestHost {
    type Buf = Vec<u8>;
    fn alloc(&self, len: usize) -> Result<Vec<u8>> {
        Ok(vec![0; len])
    }
}
impl Checksummer for TestHost {
    fn checksum(&self, _algo: CsumType, data: &[u8]) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        out[..4].copy_from_slice(&crc32c(data).to_le_bytes());
        Ok(out)
    }
}
impl Compressor for TestHost {
    fn compress(&self, _: Compression, _: &[u8], _: &mut [u8]) -> Result<Option<usize>> {
        Ok(None)
    }
    fn decompress(&self, _: Compression, _: &[u8], _: &mut [u8]) -> Result<usize> {
        Err(Error::Host("no compression in tests"))
    }
}
impl Clock for TestHost {
    fn now(&self) -> (i64, u32) {
        (1_700_000_000, 5)
    }
}

struct Ram(RefCell<Vec<u8>>);
impl BlockDevice for &Ram {
    fn num_blocks(&self) -> u64 {
        (self.0.borrow().len() / BLOCK_SIZE) as u64
    }
    fn read(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        let s = block as usize * BLOCK_SIZE;
        buf.copy_from_slice(
            self.0
                .borrow()
                .get(s..s + buf.len())
                .ok_or(Error::Io { block })?,
        );
        Ok(())
    }
    fn write(&self, block: u64, buf: &[u8]) -> Result<()> {
        let s = block as usize * BLOCK_SIZE;
        self.0
            .borrow_mut()
            .get_mut(s..s + buf.len())
            .ok_or(Error::Io { block })?
            .copy_from_slice(buf);
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

fn opts(dup: bool) -> MkfsOptions {
    MkfsOptions {
        fsid: [1; 16],
        csum: CsumType::Crc32c,
        dup_metadata: dup,
        compression: Compression::None,
        label: [0; 64],
        total_blocks: 0,
    }
}

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn name_hash_is_fnv1a() {
    assert_eq!(name_hash(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(name_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn key_order_and_successor() {
    let a = Key::new(1, 2, u64::MAX);
    assert_eq!(a.successor(), Some(Key::new(1, 3, 0)));
    assert_eq!(Key::new(u64::MAX, u8::MAX, u64::MAX).successor(), None);
    assert!(Key::new(1, 1, 9) < Key::new(1, 2, 0));
    assert!(Key::new(1, 200, 9) < Key::new(2, 0, 0));
}

#[test]
fn leaf_build_validate_and_reject() {
    let mut buf = vec![0u8; BLOCK_SIZE];
    {
        let mut lb = LeafBuilder::new(&mut buf).unwrap();
        lb.push(Key::new(1, 1, 0), b"one").unwrap();
        lb.push(Key::new(2, 1, 0), b"two!").unwrap();
    }
    node::validate(&buf, 99, 0, None, None).unwrap();
    let (k, d) = node::leaf_item(&buf, 1, 99).unwrap();
    assert_eq!((k, d), (Key::new(2, 1, 0), &b"two!"[..]));
    // Bounds from the parent are enforced.
    assert!(node::validate(&buf, 99, 0, Some(Key::new(0, 0, 0)), None).is_err());
    assert!(node::validate(&buf, 99, 0, None, Some(Key::new(2, 0, 0))).is_err());
    assert!(node::validate(&buf, 99, 1, None, None).is_err());
    // Keys out of order.
    let mut bad = buf.clone();
    bad[HEADER_SIZE..HEADER_SIZE + 8].copy_from_slice(&5u64.to_le_bytes());
    assert!(matches!(
        node::validate(&bad, 99, 0, None, None),
        Err(Error::Corrupt { block: 99, .. })
    ));
    // Item data offset pointing elsewhere.
    let mut bad = buf.clone();
    bad[HEADER_SIZE + 17] ^= 1;
    assert!(node::validate(&bad, 99, 0, None, None).is_err());
    // Item count beyond the block.
    let mut bad = buf.clone();
    bad[86..88].copy_from_slice(&1000u16.to_le_bytes());
    assert!(node::validate(&bad, 99, 0, None, None).is_err());
}

#[test]
fn internal_node_limits() {
    let mut buf = vec![0u8; BLOCK_SIZE];
    let ptr = BlockPtr {
        addr: 20u64.into(),
        mirror: 0u64.into(),
        generation: 0u64.into(),
        csum: [0; 32],
    };
    let mut nb = NodeBuilder::new(&mut buf, 1).unwrap();
    for i in 0..MAX_NODE_ENTRIES as u64 {
        nb.push(Key::new(i, 0, 0), &ptr).unwrap();
    }
    assert_eq!(nb.push(Key::new(999, 0, 0), &ptr), Err(Error::NoSpace));
    node::validate(&buf, 1, 1, None, None).unwrap();
    assert_eq!(node::child_slot(&buf, &Key::new(3, 5, 0), 1).unwrap(), 3);
}

#[test]
fn space_pins_blocks_freed_until_commit() {
    let mut s = Space::new(&TestHost, 64).unwrap();
    assert!(s.mark_used(0, 10).unwrap());
    assert!(!s.mark_used(5, 1).unwrap(), "double use is reported");
    let a = s.alloc(4).unwrap();
    assert_eq!(a, 10);
    s.commit();
    s.free(a, 4).unwrap();
    assert_eq!(s.pinned(), 4);
    // Freed-but-committed blocks are not reused before commit.
    let b = s.alloc(51).err();
    assert_eq!(b, Some(Error::NoSpace));
    let c = s.alloc(4).unwrap();
    assert_ne!(c, a);
    s.free(c, 4).unwrap();
    assert!(
        s.alloc(4).is_ok(),
        "blocks allocated and freed in one transaction are reusable"
    );
    assert!(s.free(63, 2).is_err());
}

/// Checks every node on the way; counts items.
struct Count(usize);
impl Visitor for Count {
    fn node(&mut self, _: u64, _: &BlockPtr, _: u8) -> Result<()> {
        Ok(())
    }
    fn item(&mut self, _: u64, _: Key, _: &[u8]) -> Result<()> {
        self.0 += 1;
        Ok(())
    }
}

#[test]
fn btree_matches_a_map_through_inserts_deletes_and_remounts() {
    let ram = Ram(RefCell::new(vec![0u8; 8192 * BLOCK_SIZE]));
    let mut v = Volume::mkfs(&ram, TestHost, &opts(true)).unwrap();
    let mut model: BTreeMap<Key, Vec<u8>> = BTreeMap::new();
    // The root directory inode exists already.
    let mut leaf = vec![0u8; BLOCK_SIZE];
    let (k0, _) = v
        .search_ge(&v.fs_tree(), Key::MIN, &mut leaf)
        .unwrap()
        .unwrap();
    model.insert(k0, node::leaf_item(&leaf, 0, 0).unwrap().1.to_vec());
    let mut x = 12345u64;
    for step in 0..3000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = Key::new(1000 + x % 500, 7, x % 3);
        let len = (x >> 20) as usize % 300;
        let data: Vec<u8> = (0..len).map(|i| (i as u64 ^ x) as u8).collect();
        if x.is_multiple_of(3) {
            let r = v.modify(TREE_FS, key, Op::Delete);
            assert_eq!(r.is_ok(), model.remove(&key).is_some());
        } else {
            v.modify(TREE_FS, key, Op::Upsert(&data)).unwrap();
            model.insert(key, data);
        }
        if step % 500 == 0 {
            v.commit().unwrap();
            drop(v);
            v = Volume::mount(&ram, TestHost, MountOptions::default()).unwrap();
        }
    }
    // Every key reads back, iteration order matches, invariants hold.
    let mut c = Count(0);
    v.walk(&v.fs_tree(), &mut c, true).unwrap();
    assert_eq!(c.0, model.len());
    let mut next = Key::MIN;
    let mut seen = Vec::new();
    while let Some((k, idx)) = v.search_ge(&v.fs_tree(), next, &mut leaf).unwrap() {
        seen.push((k, node::leaf_item(&leaf, idx, 0).unwrap().1.to_vec()));
        next = k.successor().unwrap();
    }
    let want: Vec<(Key, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(seen, want);
    assert!(v.fs_tree().level >= 1);
}

#[test]
fn mount_rejects_garbage_without_panicking() {
    let ram = Ram(RefCell::new(vec![0u8; 4096 * BLOCK_SIZE]));
    assert!(Volume::mount(&ram, TestHost, MountOptions::default()).is_err());
    let ram = Ram(RefCell::new(vec![0xa5u8; 4096 * BLOCK_SIZE]));
    assert!(Volume::mount(&ram, TestHost, MountOptions::default()).is_err());
    // Too small a device for mkfs.
    let ram = Ram(RefCell::new(vec![0u8; 100 * BLOCK_SIZE]));
    assert_eq!(
        Volume::mkfs(&ram, TestHost, &opts(false)).err(),
        Some(Error::NoSpace)
    );
}

#[test]
fn single_copy_metadata_detects_corruption_by_block() {
    let ram = Ram(RefCell::new(vec![0u8; 4096 * BLOCK_SIZE]));
    let v = Volume::mkfs(&ram, TestHost, &opts(false)).unwrap();
    let fs_root = v.fs_tree().ptr.addr.get();
    drop(v);
    ram.0.borrow_mut()[fs_root as usize * BLOCK_SIZE + 300] ^= 4;
    match Volume::mount(&ram, TestHost, MountOptions::default()) {
        Err(Error::Corrupt { block, .. }) => assert_eq!(block, fs_root),
        other => panic!("expected corruption at {fs_root}, got {:?}", other.err()),
    }
}

/// Counts leaves and items.
struct Shape {
    leaves: usize,
    items: usize,
}
impl Visitor for Shape {
    fn node(&mut self, _: u64, _: &BlockPtr, level: u8) -> Result<()> {
        if level == 0 {
            self.leaves += 1;
        }
        Ok(())
    }
    fn item(&mut self, _: u64, _: Key, _: &[u8]) -> Result<()> {
        self.items += 1;
        Ok(())
    }
}

#[test]
fn deletes_merge_underfull_nodes() {
    let ram = Ram(RefCell::new(vec![0u8; 8192 * BLOCK_SIZE]));
    let mut v = Volume::mkfs(&ram, TestHost, &opts(false)).unwrap();
    for i in 0..1200u64 {
        v.modify(TREE_FS, Key::new(10_000 + i, 9, 0), Op::Insert(&[7u8; 100]))
            .unwrap();
    }
    let mut full = Shape {
        leaves: 0,
        items: 0,
    };
    v.walk(&v.fs_tree(), &mut full, false).unwrap();
    // Delete nine of every ten keys, scattered over all leaves.
    for i in 0..1200u64 {
        if i % 10 != 0 {
            v.modify(TREE_FS, Key::new(10_000 + i, 9, 0), Op::Delete)
                .unwrap();
        }
    }
    v.commit().unwrap();
    let mut after = Shape {
        leaves: 0,
        items: 0,
    };
    v.walk(&v.fs_tree(), &mut after, true).unwrap();
    assert_eq!(after.items, 121);
    // 121 items of 121 bytes need 4 leaves; without merging nearly all
    // of the original leaves would remain.
    assert!(
        after.leaves * 3 < full.leaves,
        "{} leaves before, {} after",
        full.leaves,
        after.leaves
    );
}

/// Field offsets as tabulated in docs/format.md.
#[test]
fn layouts_match_the_format_document() {
    use core::mem::offset_of;
    assert_eq!(offset_of!(BlockHeader, fsid), 32);
    assert_eq!(offset_of!(BlockHeader, addr), 48);
    assert_eq!(offset_of!(BlockHeader, mirror), 56);
    assert_eq!(offset_of!(BlockHeader, generation), 64);
    assert_eq!(offset_of!(BlockHeader, owner), 72);
    assert_eq!(offset_of!(BlockHeader, magic), 80);
    assert_eq!(offset_of!(BlockHeader, level), 84);
    assert_eq!(offset_of!(BlockHeader, nritems), 86);
    // Superblock body fields, as absolute offsets in the block.
    let sb = |o: usize| o + HEADER_SIZE;
    assert_eq!(sb(offset_of!(SuperBody, format_version)), 104);
    assert_eq!(sb(offset_of!(SuperBody, csum_type)), 108);
    assert_eq!(sb(offset_of!(SuperBody, default_compression)), 109);
    assert_eq!(sb(offset_of!(SuperBody, flags)), 110);
    assert_eq!(sb(offset_of!(SuperBody, block_size)), 112);
    assert_eq!(sb(offset_of!(SuperBody, total_blocks)), 120);
    assert_eq!(sb(offset_of!(SuperBody, compat)), 128);
    assert_eq!(sb(offset_of!(SuperBody, ro_compat)), 136);
    assert_eq!(sb(offset_of!(SuperBody, incompat)), 144);
    assert_eq!(sb(offset_of!(SuperBody, root_tree)), 152);
    assert_eq!(sb(offset_of!(SuperBody, root_tree_level)), 208);
    assert_eq!(sb(offset_of!(SuperBody, reserve_blocks)), 216);
    assert_eq!(sb(offset_of!(SuperBody, mkfs_time)), 224);
    assert_eq!(sb(offset_of!(SuperBody, label)), 232);
    assert_eq!(sb(SUPER_BODY_SIZE), 296);
    assert_eq!(offset_of!(BlockPtr, generation), 16);
    assert_eq!(offset_of!(BlockPtr, csum), 24);
    assert_eq!(offset_of!(LeafItem, offset), 17);
    assert_eq!(offset_of!(LeafItem, size), 19);
    assert_eq!(offset_of!(NodeEntry, ptr), 17);
    assert_eq!(MAX_NODE_ENTRIES, 54);
    assert_eq!(MAX_ITEM_DATA, 1979);
    assert_eq!(offset_of!(RootItem, level), 56);
    assert_eq!(offset_of!(RootItem, generation), 64);
    assert_eq!(offset_of!(RootItem, next_ino), 72);
    assert_eq!(offset_of!(RootItem, inode_count), 80);
    assert_eq!(offset_of!(RootItem, flags), 88);
    assert_eq!(offset_of!(InodeItem, size), 16);
    assert_eq!(offset_of!(InodeItem, stored_blocks), 24);
    assert_eq!(offset_of!(InodeItem, rdev), 32);
    assert_eq!(offset_of!(InodeItem, atime), 40);
    assert_eq!(offset_of!(InodeItem, mtime), 52);
    assert_eq!(offset_of!(InodeItem, ctime), 64);
    assert_eq!(offset_of!(InodeItem, btime), 76);
    assert_eq!(offset_of!(InodeItem, flags), 88);
    assert_eq!(offset_of!(InodeItem, generation), 92);
    assert_eq!(offset_of!(InodeItem, parent), 100);
    assert_eq!(offset_of!(InodeItem, next_index), 108);
    assert_eq!(offset_of!(ExtentItem, stored_len), 8);
    assert_eq!(offset_of!(ExtentItem, logical_len), 12);
    assert_eq!(offset_of!(ExtentItem, compression), 16);
    assert_eq!(offset_of!(ExtentItem, kind), 17);
    assert_eq!(offset_of!(ExtentItem, generation), 24);
    assert_eq!(offset_of!(ExtentItem, csum), 32);
    assert_eq!(offset_of!(DirValue, file_type), 8);
    assert_eq!(offset_of!(DirValue, index), 9);
}

#[test]
fn orphans_left_by_a_crash_are_freed_at_mount() {
    let ram = Ram(RefCell::new(vec![0u8; 4096 * BLOCK_SIZE]));
    let mut v = Volume::mkfs(&ram, TestHost, &opts(true)).unwrap();
    let f = v
        .create(ROOT_INO, b"big", S_IFREG | 0o644, 0, 0, 0)
        .unwrap();
    v.write(f.ino, 0, &vec![3u8; 1 << 20]).unwrap();
    v.sync().unwrap();
    let used_with_file = v.space().used();
    // The first half of an unlink, committed: entry gone, inode orphaned.
    v.remove_entry(ROOT_INO, b"big").unwrap();
    v.make_orphan(f.ino).unwrap();
    v.commit().unwrap();
    drop(v);
    // A read-only mount leaves it alone; a read-write mount frees it.
    let ro = Volume::mount(
        &ram,
        TestHost,
        MountOptions {
            read_only: true,
            ..MountOptions::default()
        },
    )
    .unwrap();
    assert_eq!(ro.getattr(f.ino).unwrap().nlink, 0);
    drop(ro);
    let v = Volume::mount(&ram, TestHost, MountOptions::default()).unwrap();
    assert_eq!(v.getattr(f.ino), Err(Error::NotFound));
    assert_eq!(v.inode_count(), 1);
    assert!(
        v.space().used() + 256 <= used_with_file,
        "the file's blocks were not freed"
    );
    let mut leaf = vec![0u8; BLOCK_SIZE];
    let first = v
        .search_ge(&v.fs_tree(), Key::MIN, &mut leaf)
        .unwrap()
        .unwrap()
        .0;
    assert_ne!(first.kind, ITEM_ORPHAN, "orphan record left behind");
}

#[test]
fn an_interrupted_truncate_is_finished_at_mount() {
    let ram = Ram(RefCell::new(vec![0u8; 4096 * BLOCK_SIZE]));
    let mut v = Volume::mkfs(&ram, TestHost, &opts(true)).unwrap();
    let f = v.create(ROOT_INO, b"f", S_IFREG | 0o644, 0, 0, 0).unwrap();
    v.write(f.ino, 0, &vec![3u8; 1 << 20]).unwrap();
    v.sync().unwrap();
    // The first half of truncate(f, 0), committed: size cut and the orphan
    // record written, the extents not yet freed.
    let mut i = v.read_inode(f.ino).unwrap();
    i.size = 0u64.into();
    v.write_inode(f.ino, &i).unwrap();
    v.modify(
        TREE_FS,
        Key::new(ORPHAN_OBJECTID, ITEM_ORPHAN, f.ino),
        Op::Insert(&[]),
    )
    .unwrap();
    v.commit().unwrap();
    drop(v);
    let mut v = Volume::mount(&ram, TestHost, MountOptions::default()).unwrap();
    let a = v.getattr(f.ino).unwrap();
    assert_eq!((a.size, a.sectors, a.nlink), (0, 0, 1));
    // Growing the file again must not bring old data back.
    v.truncate(f.ino, 1 << 20).unwrap();
    let mut buf = vec![1u8; 1 << 20];
    v.read(f.ino, 0, &mut buf).unwrap();
    assert!(buf.iter().all(|b| *b == 0));
}

#[test]
fn largest_items_always_split_cleanly() {
    let ram = Ram(RefCell::new(vec![0u8; 8192 * BLOCK_SIZE]));
    let mut v = Volume::mkfs(&ram, TestHost, &opts(false)).unwrap();
    let mut model: BTreeMap<u64, usize> = BTreeMap::new();
    let mut x = 99u64;
    for _ in 0..1500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = 100 + x % 120;
        // Mostly extreme sizes: tiny or the largest allowed.
        let len = match x % 4 {
            0 => 1,
            1 => MAX_ITEM_DATA - 1,
            2 => MAX_ITEM_DATA,
            _ => (x >> 32) as usize % MAX_ITEM_DATA,
        };
        v.modify(TREE_FS, Key::new(k, 1, 0), Op::Upsert(&vec![k as u8; len]))
            .unwrap();
        model.insert(k, len);
    }
    assert_eq!(
        v.modify(
            TREE_FS,
            Key::new(1, 1, 0),
            Op::Upsert(&vec![0; MAX_ITEM_DATA + 1])
        ),
        Err(Error::TooBig)
    );
    let mut c = Count(0);
    v.walk(&v.fs_tree(), &mut c, false).unwrap();
    assert_eq!(c.0, model.len() + 1);
    for (k, len) in model {
        let mut out = vec![0u8; MAX_ITEM_DATA];
        assert_eq!(
            v.lookup(&v.fs_tree(), Key::new(k, 1, 0), &mut out).unwrap(),
            Some(len)
        );
    }
}
