//! B-tree node layout: parsing, validation and building of leaves and
//! internal nodes inside one 4 KiB block buffer.
//!
//! Leaf: header, item array growing up from byte 96, item data packed
//! down from the end of the block in item order (item 0's data ends at
//! 4096, item i+1's data ends where item i's starts). Internal node:
//! header then `nritems` (key, child pointer) entries.

use crate::format::*;
use crate::host::{Error, Result};
use zerocopy::{FromBytes, IntoBytes};

/// Error for a malformed structure in `block`.
pub fn corrupt(block: u64, what: &'static str) -> Error {
    Error::Corrupt { block, what }
}

/// `buf[start..start+len]` or a corruption error naming `block`.
pub fn bytes(buf: &[u8], start: usize, len: usize, block: u64) -> Result<&[u8]> {
    let end = start
        .checked_add(len)
        .ok_or(corrupt(block, "offset overflow"))?;
    buf.get(start..end)
        .ok_or(corrupt(block, "offset out of bounds"))
}

/// Mutable counterpart of `bytes`.
pub fn bytes_mut(buf: &mut [u8], start: usize, len: usize, block: u64) -> Result<&mut [u8]> {
    let end = start
        .checked_add(len)
        .ok_or(corrupt(block, "offset overflow"))?;
    buf.get_mut(start..end)
        .ok_or(corrupt(block, "offset out of bounds"))
}

/// Parse a `T` at byte `start` of `buf`.
pub fn read_at<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable + Copy>(
    buf: &[u8],
    start: usize,
    block: u64,
) -> Result<T> {
    let src = bytes(buf, start, core::mem::size_of::<T>(), block)?;
    T::read_from_bytes(src).map_err(|_| corrupt(block, "short structure"))
}

/// Store a `T` at byte `start` of `buf`.
pub fn write_at<T: IntoBytes + zerocopy::Immutable>(
    buf: &mut [u8],
    start: usize,
    v: &T,
) -> Result<()> {
    let src = v.as_bytes();
    let dst = bytes_mut(buf, start, src.len(), 0)?;
    dst.copy_from_slice(src);
    Ok(())
}

pub fn header(buf: &[u8], block: u64) -> Result<BlockHeader> {
    read_at::<BlockHeader>(buf, 0, block)
}

/// Number of items / entries in a node.
pub fn nritems(buf: &[u8], block: u64) -> Result<usize> {
    Ok(usize::from(header(buf, block)?.nritems.get()))
}

fn item_pos(i: usize, block: u64) -> Result<usize> {
    i.checked_mul(LEAF_ITEM_SIZE)
        .and_then(|o| o.checked_add(HEADER_SIZE))
        .ok_or(corrupt(block, "item index overflow"))
}

fn entry_pos(i: usize, block: u64) -> Result<usize> {
    i.checked_mul(NODE_ENTRY_SIZE)
        .and_then(|o| o.checked_add(HEADER_SIZE))
        .ok_or(corrupt(block, "entry index overflow"))
}

/// Key of item/entry `i` of a leaf (`level == 0`) or internal node.
pub fn key_at(buf: &[u8], level: u8, i: usize, block: u64) -> Result<Key> {
    let pos = if level == 0 {
        item_pos(i, block)?
    } else {
        entry_pos(i, block)?
    };
    Ok(Key::from_disk(&read_at::<DiskKey>(buf, pos, block)?))
}

/// Key and data of leaf item `i`.
pub fn leaf_item(buf: &[u8], i: usize, block: u64) -> Result<(Key, &[u8])> {
    let it = read_at::<LeafItem>(buf, item_pos(i, block)?, block)?;
    let data = bytes(
        buf,
        usize::from(it.offset.get()),
        usize::from(it.size.get()),
        block,
    )?;
    Ok((Key::from_disk(&it.key), data))
}

/// Key and child pointer of internal entry `i`.
pub fn node_entry(buf: &[u8], i: usize, block: u64) -> Result<(Key, BlockPtr)> {
    let e = read_at::<NodeEntry>(buf, entry_pos(i, block)?, block)?;
    Ok((Key::from_disk(&e.key), e.ptr))
}

/// Overwrite the pointer of internal entry `i` (its key stays).
pub fn set_node_entry(buf: &mut [u8], i: usize, key: Key, ptr: &BlockPtr) -> Result<()> {
    let e = NodeEntry {
        key: key.to_disk(),
        ptr: *ptr,
    };
    write_at(buf, entry_pos(i, 0)?, &e)
}

/// Index of the first item/entry whose key is >= `key` (leaf search) or,
/// for internal nodes, of the child whose range holds `key`.
pub fn search(buf: &[u8], level: u8, key: &Key, block: u64) -> Result<SearchPos> {
    let n = nritems(buf, block)?;
    // Binary search: `lo` ends at the first index with key >= target.
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        // lo < hi <= 4096, so neither the sum nor the difference overflows.
        #[allow(clippy::arithmetic_side_effects)]
        let mid = lo + (hi - lo) / 2;
        let k = key_at(buf, level, mid, block)?;
        match k.cmp(key) {
            core::cmp::Ordering::Less => lo = mid.checked_add(1).ok_or(corrupt(block, "index"))?,
            core::cmp::Ordering::Equal => {
                return Ok(SearchPos {
                    index: mid,
                    exact: true,
                })
            }
            core::cmp::Ordering::Greater => hi = mid,
        }
    }
    Ok(SearchPos {
        index: lo,
        exact: false,
    })
}

#[derive(Clone, Copy, Debug)]
pub struct SearchPos {
    pub index: usize,
    pub exact: bool,
}

/// For internal nodes: the child to descend into for `key`.
pub fn child_slot(buf: &[u8], key: &Key, block: u64) -> Result<usize> {
    let pos = search(buf, 1, key, block)?;
    if pos.exact {
        Ok(pos.index)
    } else {
        // Keys below the first separator still go to child 0 (only
        // possible at the root, whose range is unbounded).
        Ok(pos.index.saturating_sub(1))
    }
}

/// Structural validation of a node whose checksum already matched:
/// magic, level, item count, key order, item data bounds and packing,
/// and that every key lies in `[lo, hi)` with the first key equal to `lo`
/// when the parent gave one.
pub fn validate(buf: &[u8], block: u64, level: u8, lo: Option<Key>, hi: Option<Key>) -> Result<()> {
    let h = header(buf, block)?;
    if h.magic != NODE_MAGIC {
        return Err(corrupt(block, "bad node magic"));
    }
    if h.level != level {
        return Err(corrupt(block, "unexpected node level"));
    }
    let n = usize::from(h.nritems.get());
    if level > 0 {
        if n == 0 || n > MAX_NODE_ENTRIES {
            return Err(corrupt(block, "internal node item count out of range"));
        }
    } else {
        let max = (BLOCK_SIZE - HEADER_SIZE) / LEAF_ITEM_SIZE;
        if n > max {
            return Err(corrupt(block, "leaf item count out of range"));
        }
        if n == 0 && lo.is_some() {
            return Err(corrupt(block, "empty non-root leaf"));
        }
    }
    let mut prev: Option<Key> = None;
    let mut data_end = BLOCK_SIZE;
    let items_end = if level == 0 {
        item_pos(n, block)?
    } else {
        entry_pos(n, block)?
    };
    if items_end > BLOCK_SIZE {
        return Err(corrupt(block, "items overflow block"));
    }
    for i in 0..n {
        let k = key_at(buf, level, i, block)?;
        if let Some(p) = prev {
            if k <= p {
                return Err(corrupt(block, "keys out of order"));
            }
        } else if let Some(l) = lo {
            if k != l {
                return Err(corrupt(block, "first key differs from parent key"));
            }
        }
        if let Some(hk) = hi {
            if k >= hk {
                return Err(corrupt(block, "key beyond parent range"));
            }
        }
        prev = Some(k);
        if level == 0 {
            let it = read_at::<LeafItem>(buf, item_pos(i, block)?, block)?;
            let size = usize::from(it.size.get());
            let off = usize::from(it.offset.get());
            if size > MAX_ITEM_DATA {
                return Err(corrupt(block, "item too large"));
            }
            if off.checked_add(size) != Some(data_end) || off < items_end {
                return Err(corrupt(block, "item data misplaced"));
            }
            data_end = off;
        } else {
            let (_, ptr) = node_entry(buf, i, block)?;
            if ptr.generation.get() > h.generation.get() {
                return Err(corrupt(block, "child newer than parent"));
            }
        }
    }
    Ok(())
}

/// Fill the header fields that do not depend on where the block goes.
pub fn init_node(buf: &mut [u8], level: u8) -> Result<()> {
    buf.fill(0);
    let mut h = header(buf, 0)?;
    h.magic = NODE_MAGIC;
    h.level = level;
    write_at(buf, 0, &h)
}

fn set_nritems(buf: &mut [u8], n: usize) -> Result<()> {
    let mut h = header(buf, 0)?;
    h.nritems = u16::try_from(n).map_err(|_| Error::Invalid)?.into();
    write_at(buf, 0, &h)
}

/// Appends items in key order into an empty leaf.
pub struct LeafBuilder<'a> {
    buf: &'a mut [u8],
    n: usize,
    data_start: usize,
}

impl<'a> LeafBuilder<'a> {
    pub fn new(buf: &'a mut [u8]) -> Result<Self> {
        init_node(buf, 0)?;
        Ok(LeafBuilder {
            buf,
            n: 0,
            data_start: BLOCK_SIZE,
        })
    }
    /// Bytes still free.
    pub fn free(&self) -> usize {
        let used = HEADER_SIZE.saturating_add(self.n.saturating_mul(LEAF_ITEM_SIZE));
        self.data_start.saturating_sub(used)
    }
    pub fn fits(&self, data_len: usize) -> bool {
        data_len
            .checked_add(LEAF_ITEM_SIZE)
            .is_some_and(|need| need <= self.free())
    }
    pub fn push(&mut self, key: Key, data: &[u8]) -> Result<()> {
        if !self.fits(data.len()) {
            return Err(Error::NoSpace);
        }
        // fits() guaranteed data.len() <= data_start - items end.
        let off = self
            .data_start
            .checked_sub(data.len())
            .ok_or(Error::Invalid)?;
        bytes_mut(self.buf, off, data.len(), 0)?.copy_from_slice(data);
        let it = LeafItem {
            key: key.to_disk(),
            offset: u16::try_from(off).map_err(|_| Error::Invalid)?.into(),
            size: u16::try_from(data.len())
                .map_err(|_| Error::Invalid)?
                .into(),
        };
        write_at(self.buf, item_pos(self.n, 0)?, &it)?;
        self.data_start = off;
        self.n = self.n.checked_add(1).ok_or(Error::Invalid)?;
        set_nritems(self.buf, self.n)
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// Appends entries in key order into an empty internal node.
pub struct NodeBuilder<'a> {
    buf: &'a mut [u8],
    n: usize,
}

impl<'a> NodeBuilder<'a> {
    pub fn new(buf: &'a mut [u8], level: u8) -> Result<Self> {
        init_node(buf, level)?;
        Ok(NodeBuilder { buf, n: 0 })
    }
    pub fn push(&mut self, key: Key, ptr: &BlockPtr) -> Result<()> {
        if self.n >= MAX_NODE_ENTRIES {
            return Err(Error::NoSpace);
        }
        set_node_entry(self.buf, self.n, key, ptr)?;
        self.n = self.n.checked_add(1).ok_or(Error::Invalid)?;
        set_nritems(self.buf, self.n)
    }
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// Bytes a leaf item with `data_len` bytes of payload occupies.
pub fn leaf_cost(data_len: usize) -> usize {
    data_len.saturating_add(LEAF_ITEM_SIZE)
}
