//! In-memory free-space map.
//!
//! Format v1 stores no allocation map on disk: mount rebuilds it by
//! walking every tree (which also validates them). Two bitmaps are kept:
//! `current` (blocks used by the open transaction) and `committed`
//! (blocks used by the last committed tree). A block may be handed out
//! only if it is free in both, so the committed tree is never overwritten
//! before the next commit makes it unreachable.

use crate::host::{Error, Memory, Result};

pub struct Space<B> {
    current: B,
    committed: B,
    total: u64,
    used: u64,
    /// Blocks freed in this transaction that the committed tree still uses.
    pinned: u64,
    cursor: u64,
}

fn bit(bm: &[u8], b: u64) -> Result<bool> {
    let byte = usize::try_from(b / 8).map_err(|_| Error::Invalid)?;
    let v = bm.get(byte).ok_or(Error::Invalid)?;
    Ok(v & (1u8 << (b % 8)) != 0)
}

fn set_bit(bm: &mut [u8], b: u64, on: bool) -> Result<()> {
    let byte = usize::try_from(b / 8).map_err(|_| Error::Invalid)?;
    let v = bm.get_mut(byte).ok_or(Error::Invalid)?;
    let mask = 1u8 << (b % 8);
    if on {
        *v |= mask;
    } else {
        *v &= !mask;
    }
    Ok(())
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Space<B> {
    pub fn new<M: Memory<Buf = B>>(mem: &M, total: u64) -> Result<Self> {
        let bytes = usize::try_from(total.div_ceil(8)).map_err(|_| Error::NoMem)?;
        let current = mem.alloc(bytes)?;
        let committed = mem.alloc(bytes)?;
        // `commit` copies one into the other: equal lengths are required.
        if current.as_ref().len() != bytes || committed.as_ref().len() != bytes {
            return Err(Error::NoMem);
        }
        Ok(Space {
            current,
            committed,
            total,
            used: 0,
            pinned: 0,
            cursor: 0,
        })
    }

    pub fn total(&self) -> u64 {
        self.total
    }
    pub fn used(&self) -> u64 {
        self.used
    }
    /// Blocks that can be allocated right now.
    pub fn available(&self) -> u64 {
        self.total
            .saturating_sub(self.used)
            .saturating_sub(self.pinned)
    }
    /// Blocks that will be free after the next commit.
    pub fn free_after_commit(&self) -> u64 {
        self.total.saturating_sub(self.used)
    }
    pub fn pinned(&self) -> u64 {
        self.pinned
    }

    pub fn is_used(&self, b: u64) -> Result<bool> {
        bit(self.current.as_ref(), b)
    }

    /// Mark `[start, start+n)` used while rebuilding; `Ok(false)` if any
    /// block was already used (a block referenced twice) or out of range.
    pub fn mark_used(&mut self, start: u64, n: u64) -> Result<bool> {
        let end = match start.checked_add(n) {
            Some(e) if e <= self.total => e,
            _ => return Ok(false),
        };
        let mut ok = true;
        for b in start..end {
            if bit(self.current.as_ref(), b)? {
                ok = false;
            } else {
                set_bit(self.current.as_mut(), b, true)?;
                set_bit(self.committed.as_mut(), b, true)?;
                self.used = self.used.saturating_add(1);
            }
        }
        Ok(ok)
    }

    fn allocatable(&self, b: u64) -> Result<bool> {
        Ok(!bit(self.current.as_ref(), b)? && !bit(self.committed.as_ref(), b)?)
    }

    /// Allocate `n` contiguous blocks, next-fit from the last allocation.
    pub fn alloc(&mut self, n: u64) -> Result<u64> {
        if n == 0 || n > self.available() {
            return Err(Error::NoSpace);
        }
        let mut start = if self.cursor >= self.total {
            0
        } else {
            self.cursor
        };
        let mut scanned: u64 = 0;
        let mut run: u64 = 0;
        let mut b = start;
        // Scan at most one full lap plus the run length.
        let limit = self.total.saturating_add(n);
        while scanned < limit {
            if b >= self.total {
                b = 0;
                run = 0;
            }
            if run == 0 {
                start = b;
                // Skip fully used bytes quickly.
                if b % 8 == 0 {
                    let byte = usize::try_from(b / 8).map_err(|_| Error::Invalid)?;
                    let cur = self.current.as_ref().get(byte).copied().unwrap_or(0xff);
                    let com = self.committed.as_ref().get(byte).copied().unwrap_or(0xff);
                    if cur | com == 0xff && b.saturating_add(8) <= self.total {
                        b = b.saturating_add(8);
                        scanned = scanned.saturating_add(8);
                        continue;
                    }
                }
            }
            if self.allocatable(b)? {
                run = run.saturating_add(1);
                if run == n {
                    for x in start..start.saturating_add(n) {
                        set_bit(self.current.as_mut(), x, true)?;
                    }
                    self.used = self.used.saturating_add(n);
                    self.cursor = start.saturating_add(n);
                    return Ok(start);
                }
            } else {
                run = 0;
            }
            b = b.saturating_add(1);
            scanned = scanned.saturating_add(1);
        }
        Err(Error::NoSpace)
    }

    /// Release `[start, start+n)`; blocks the committed tree still uses
    /// stay unallocatable until `commit`.
    pub fn free(&mut self, start: u64, n: u64) -> Result<()> {
        let end = start.checked_add(n).ok_or(Error::Invalid)?;
        if end > self.total {
            return Err(Error::Invalid);
        }
        for b in start..end {
            if !bit(self.current.as_ref(), b)? {
                // Freeing a free block is a logic error; refuse loudly.
                return Err(Error::Corrupt {
                    block: b,
                    what: "freeing a block that is not in use",
                });
            }
            set_bit(self.current.as_mut(), b, false)?;
            self.used = self.used.saturating_sub(1);
            if bit(self.committed.as_ref(), b)? {
                self.pinned = self.pinned.saturating_add(1);
            }
        }
        Ok(())
    }

    /// The open transaction became the committed state.
    pub fn commit(&mut self) {
        let cur = self.current.as_ref();
        self.committed.as_mut().copy_from_slice(cur);
        self.pinned = 0;
    }
}
