//! On-disk structures, byte for byte as specified in `docs/format.md`.
//!
//! Every multi-byte integer is little endian and every structure is
//! `Unaligned`, so it can be parsed with zerocopy straight out of a block
//! buffer without copies or alignment assumptions.

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Size of every block: metadata nodes, superblocks and data allocation unit.
pub const BLOCK_SIZE: usize = 4096;
/// `BLOCK_SIZE` as a u64, for address arithmetic.
pub const BLOCK_SIZE_U64: u64 = 4096;

/// Superblock copies live at these block numbers (64 KiB, 8 MiB, 1 GiB,
/// 256 GiB); a copy exists only if the filesystem is large enough to hold
/// it, so every filesystem (>= 16 MiB) has at least two.
pub const SUPER_BLOCKS: [u64; 4] = [16, 2048, 256 * 1024, 64 * 1024 * 1024];
/// Blocks below this number are never allocated (room for boot loaders and
/// partition tables, and the first superblock).
pub const FIRST_USABLE_BLOCK: u64 = 17;
/// Smallest device mkfs accepts: 16 MiB.
pub const MIN_BLOCKS: u64 = 4096;

pub const SUPER_MAGIC: [u8; 8] = *b"FeRfS_SB";
pub const NODE_MAGIC: [u8; 4] = *b"FrND";
pub const FORMAT_VERSION: u32 = 1;

/// `owner` of superblocks.
pub const OWNER_SUPER: u64 = u64::MAX;
/// Tree ids (the `owner` of every node of that tree).
pub const TREE_ROOT: u64 = 1;
pub const TREE_FS: u64 = 5;

/// Largest depth of any tree (levels 0..MAX_LEVEL-1).
pub const MAX_LEVEL: u8 = 8;

/// Superblock `flags`.
pub const SB_FLAG_DUP_METADATA: u16 = 1;

/// Feature flags. v1 defines none; unknown incompat bits refuse mount,
/// unknown ro_compat bits refuse read-write mount, compat bits are ignored.
pub const SUPPORTED_INCOMPAT: u64 = 0;
pub const SUPPORTED_RO_COMPAT: u64 = 0;

/// Item types (the `kind` byte of a key). Sorting follows the numbers.
pub const ITEM_INODE: u8 = 1;
pub const ITEM_XATTR: u8 = 24;
pub const ITEM_ORPHAN: u8 = 48;
pub const ITEM_DIR_HASH: u8 = 84;
pub const ITEM_DIR_INDEX: u8 = 96;
pub const ITEM_EXTENT: u8 = 108;
pub const ITEM_ROOT: u8 = 132;

/// Objectid of ORPHAN items (no inode has number 0).
pub const ORPHAN_OBJECTID: u64 = 0;

/// Inode number of the root directory (also FUSE's root id).
pub const ROOT_INO: u64 = 1;
/// First inode number handed out after the root directory.
pub const FIRST_FREE_INO: u64 = 2;
/// First DIR_INDEX value of a directory; 0..2 are left to "." and "..".
pub const FIRST_DIR_INDEX: u64 = 3;

/// File data is stored in chunks of this many bytes of file offset; each
/// chunk is at most one extent (compression unit, <= 128 KiB).
pub const CHUNK_SIZE: usize = 128 * 1024;
pub const CHUNK_SIZE_U64: u64 = 128 * 1024;
/// Largest file size: 2^63 - 1 bytes.
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
/// Longest name (directory entry or xattr name).
pub const MAX_NAME: usize = 255;
/// Longest xattr value.
pub const MAX_XATTR_VALUE: usize = 1024;
/// Longest symlink target.
pub const MAX_SYMLINK: usize = 4095;

/// Checksum algorithms (superblock `csum_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CsumType {
    Crc32c = 0,
    XxHash64 = 1,
    Sha256 = 2,
    Blake2b256 = 3,
}

impl CsumType {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Crc32c),
            1 => Some(Self::XxHash64),
            2 => Some(Self::Sha256),
            3 => Some(Self::Blake2b256),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32c => "crc32c",
            Self::XxHash64 => "xxhash64",
            Self::Sha256 => "sha256",
            Self::Blake2b256 => "blake2b-256",
        }
    }
    /// Significant bytes of the 32-byte checksum field; the rest are zero.
    pub fn sig_len(self) -> usize {
        match self {
            Self::Crc32c => 4,
            Self::XxHash64 => 8,
            Self::Sha256 | Self::Blake2b256 => 32,
        }
    }
}

/// Compression algorithms (extent `compression`, superblock default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Compression {
    None = 0,
    Zstd = 1,
    Lzo = 2,
    Zlib = 3,
}

impl Compression {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::None),
            1 => Some(Self::Zstd),
            2 => Some(Self::Lzo),
            3 => Some(Self::Zlib),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Zstd => "zstd",
            Self::Lzo => "lzo",
            Self::Zlib => "zlib",
        }
    }
}

/// Header at the start of every metadata block (superblocks and nodes).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BlockHeader {
    /// Checksum of bytes 32..4096 of the block (algorithm: superblock csum_type).
    pub csum: [u8; 32],
    /// Filesystem id, equal to the superblock's.
    pub fsid: [u8; 16],
    /// Block number of the primary copy.
    pub addr: U64,
    /// Block number of the DUP copy, or 0 when there is none.
    pub mirror: U64,
    /// Transaction generation that wrote this block.
    pub generation: U64,
    /// Tree id owning this node (`OWNER_SUPER` for superblocks).
    pub owner: U64,
    /// `NODE_MAGIC` for nodes, first 4 bytes of `SUPER_MAGIC` for superblocks.
    pub magic: [u8; 4],
    /// Node level: 0 for leaves.
    pub level: u8,
    pub reserved0: u8,
    /// Number of items (leaf) or child pointers (internal node).
    pub nritems: U16,
    pub reserved1: [u8; 8],
}
pub const HEADER_SIZE: usize = 96;
const _: () = assert!(core::mem::size_of::<BlockHeader>() == HEADER_SIZE);

/// A pointer to a metadata block: both copies plus what the child must hold.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct BlockPtr {
    pub addr: U64,
    pub mirror: U64,
    pub generation: U64,
    pub csum: [u8; 32],
}
pub const BLOCK_PTR_SIZE: usize = 56;
const _: () = assert!(core::mem::size_of::<BlockPtr>() == BLOCK_PTR_SIZE);

/// Superblock: the block header followed by this body.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SuperBody {
    pub magic: [u8; 8],
    pub format_version: U32,
    pub csum_type: u8,
    pub default_compression: u8,
    pub flags: U16,
    pub block_size: U32,
    pub node_size: U32,
    pub total_blocks: U64,
    pub compat: U64,
    pub ro_compat: U64,
    pub incompat: U64,
    pub root_tree: BlockPtr,
    pub root_tree_level: u8,
    pub reserved0: [u8; 7],
    /// Blocks kept free for metadata copy-on-write (ENOSPC headroom).
    pub reserve_blocks: U64,
    pub mkfs_time: I64,
    pub label: [u8; 64],
}
pub const SUPER_BODY_SIZE: usize = 200;
const _: () = assert!(core::mem::size_of::<SuperBody>() == SUPER_BODY_SIZE);

/// B-tree key. Ordered by (objectid, kind, offset).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct DiskKey {
    pub objectid: U64,
    pub kind: u8,
    pub offset: U64,
}
pub const KEY_SIZE: usize = 17;
const _: () = assert!(core::mem::size_of::<DiskKey>() == KEY_SIZE);

/// In-memory key with the ordering used by every tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub objectid: u64,
    pub kind: u8,
    pub offset: u64,
}

impl Key {
    pub const MIN: Key = Key {
        objectid: 0,
        kind: 0,
        offset: 0,
    };
    pub const fn new(objectid: u64, kind: u8, offset: u64) -> Self {
        Key {
            objectid,
            kind,
            offset,
        }
    }
    pub fn to_disk(self) -> DiskKey {
        DiskKey {
            objectid: self.objectid.into(),
            kind: self.kind,
            offset: self.offset.into(),
        }
    }
    pub fn from_disk(d: &DiskKey) -> Self {
        Key {
            objectid: d.objectid.get(),
            kind: d.kind,
            offset: d.offset.get(),
        }
    }
    /// The smallest key strictly greater than this one, if any.
    pub fn successor(self) -> Option<Key> {
        if let Some(offset) = self.offset.checked_add(1) {
            return Some(Key { offset, ..self });
        }
        if let Some(kind) = self.kind.checked_add(1) {
            return Some(Key {
                objectid: self.objectid,
                kind,
                offset: 0,
            });
        }
        self.objectid.checked_add(1).map(|objectid| Key {
            objectid,
            kind: 0,
            offset: 0,
        })
    }
}

/// Leaf item header; item data lives at `offset` (from block start).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LeafItem {
    pub key: DiskKey,
    pub offset: U16,
    pub size: U16,
}
pub const LEAF_ITEM_SIZE: usize = 21;
const _: () = assert!(core::mem::size_of::<LeafItem>() == LEAF_ITEM_SIZE);

/// Internal node entry: lowest key of the child subtree and the pointer.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NodeEntry {
    pub key: DiskKey,
    pub ptr: BlockPtr,
}
pub const NODE_ENTRY_SIZE: usize = 73;
const _: () = assert!(core::mem::size_of::<NodeEntry>() == NODE_ENTRY_SIZE);

/// Most entries an internal node holds.
pub const MAX_NODE_ENTRIES: usize = (BLOCK_SIZE - HEADER_SIZE) / NODE_ENTRY_SIZE;
/// Largest item payload: two items always fit in one leaf, so a split
/// always makes room.
pub const MAX_ITEM_DATA: usize = (BLOCK_SIZE - HEADER_SIZE) / 2 - LEAF_ITEM_SIZE;

/// ROOT_ITEM in the root tree, key (tree id, ITEM_ROOT, 0).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RootItem {
    pub root: BlockPtr,
    pub level: u8,
    pub reserved0: [u8; 7],
    /// Generation of the last commit that changed this tree.
    pub generation: U64,
    /// Next inode number to hand out.
    pub next_ino: U64,
    /// Number of live inodes.
    pub inode_count: U64,
    pub flags: U64,
}
pub const ROOT_ITEM_SIZE: usize = 96;
const _: () = assert!(core::mem::size_of::<RootItem>() == ROOT_ITEM_SIZE);

/// Timestamp: seconds since the epoch (signed) and nanoseconds (< 10^9).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct DiskTime {
    pub sec: I64,
    pub nsec: U32,
}

/// INODE item, key (ino, ITEM_INODE, 0).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeItem {
    pub mode: U32,
    pub uid: U32,
    pub gid: U32,
    pub nlink: U32,
    pub size: U64,
    /// Data blocks (4 KiB) this inode's extents occupy on disk.
    pub stored_blocks: U64,
    pub rdev: U64,
    pub atime: DiskTime,
    pub mtime: DiskTime,
    pub ctime: DiskTime,
    pub btime: DiskTime,
    /// Low 4 bits: compression override (0 inherit mount default, else
    /// `Compression` + 1). Other bits reserved, zero.
    pub flags: U32,
    /// Generation of the transaction that created the inode.
    pub generation: U64,
    /// Directories only: inode of the parent ("..").
    pub parent: U64,
    /// Directories only: next DIR_INDEX offset to hand out.
    pub next_index: U64,
}
pub const INODE_ITEM_SIZE: usize = 116;
const _: () = assert!(core::mem::size_of::<InodeItem>() == INODE_ITEM_SIZE);

/// Extent kinds.
pub const EXTENT_REGULAR: u8 = 0;
/// Allocated by fallocate, never written: reads as zeros, not checksummed.
pub const EXTENT_PREALLOC: u8 = 1;

/// EXTENT item, key (ino, ITEM_EXTENT, chunk file offset).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtentItem {
    /// First block of the stored (possibly compressed) data.
    pub addr: U64,
    /// Bytes of stored data (compressed size, or logical size if plain).
    pub stored_len: U32,
    /// Bytes of file data this chunk holds (<= CHUNK_SIZE).
    pub logical_len: U32,
    pub compression: u8,
    pub kind: u8,
    pub reserved0: [u8; 6],
    pub generation: U64,
    /// Checksum over all stored blocks (ceil(stored_len / 4096) * 4096 bytes).
    pub csum: [u8; 32],
}
pub const EXTENT_ITEM_SIZE: usize = 64;
const _: () = assert!(core::mem::size_of::<ExtentItem>() == EXTENT_ITEM_SIZE);

/// Header of one entry in a DIR_HASH, DIR_INDEX or XATTR item; followed by
/// `name_len` name bytes and `value_len` value bytes. DIR_HASH and XATTR
/// items hold one or more entries (hash collisions) back to back.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct EntryHeader {
    pub name_len: U16,
    pub value_len: U16,
}
pub const ENTRY_HEADER_SIZE: usize = 4;

/// Value of a directory entry.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirValue {
    pub ino: U64,
    /// File type, as in the `S_IFMT` bits of mode shifted right by 12.
    pub file_type: u8,
    /// DIR_INDEX offset of this entry.
    pub index: U64,
}
pub const DIR_VALUE_SIZE: usize = 17;
const _: () = assert!(core::mem::size_of::<DirValue>() == DIR_VALUE_SIZE);

/// Hash of a name for DIR_HASH and XATTR keys: 64-bit FNV-1a.
/// Collisions are legal; entries sharing a hash share one item.
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// POSIX file type bits.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;

/// True if `mode` names one of the seven POSIX file types.
pub fn valid_file_type(mode: u32) -> bool {
    matches!(
        mode & S_IFMT,
        S_IFSOCK | S_IFLNK | S_IFREG | S_IFBLK | S_IFDIR | S_IFCHR | S_IFIFO
    )
}
