//! The narrow interface between the filesystem core and its host (the
//! userspace tools today, the kernel module later). The core never
//! allocates on its own, never touches a clock or a device directly and
//! never links a checksum or compression library: it asks the host.
//!
//! Locking is the host's job too: every mutating core call takes
//! `&mut self`, so the host serialises callers with whatever lock it has
//! (a `Mutex` in userspace, a kernel mutex in the module).

use crate::format::{Compression, CsumType};
use core::fmt;

/// Every error the core returns. Corruption and I/O errors name the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The device failed to read or write this block.
    Io {
        block: u64,
    },
    /// A structure read from this block failed validation.
    Corrupt {
        block: u64,
        what: &'static str,
    },
    /// No free space left (ENOSPC).
    NoSpace,
    /// The host could not allocate memory (ENOMEM).
    NoMem,
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    NameTooLong,
    /// Invalid argument (EINVAL).
    Invalid,
    /// File or value too large (EFBIG / E2BIG).
    TooBig,
    /// Attribute not present (ENODATA).
    NoData,
    /// The image or request uses something this version does not support.
    Unsupported(&'static str),
    /// The filesystem is mounted read-only.
    ReadOnly,
    /// A host service (checksum, compression) failed.
    Host(&'static str),
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The Linux errno for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io { .. } | Error::Host(_) => 5, // EIO
            Error::Corrupt { .. } => 117,           // EUCLEAN
            Error::NoSpace => 28,                   // ENOSPC
            Error::NoMem => 12,                     // ENOMEM
            Error::NotFound => 2,                   // ENOENT
            Error::Exists => 17,                    // EEXIST
            Error::NotDir => 20,                    // ENOTDIR
            Error::IsDir => 21,                     // EISDIR
            Error::NotEmpty => 39,                  // ENOTEMPTY
            Error::NameTooLong => 36,               // ENAMETOOLONG
            Error::Invalid => 22,                   // EINVAL
            Error::TooBig => 27,                    // EFBIG
            Error::NoData => 61,                    // ENODATA
            Error::Unsupported(_) => 95,            // EOPNOTSUPP
            Error::ReadOnly => 30,                  // EROFS
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { block } => write!(f, "I/O error at block {block}"),
            Error::Corrupt { block, what } => {
                write!(f, "corrupt metadata at block {block}: {what}")
            }
            Error::NoSpace => f.write_str("no space left on device"),
            Error::NoMem => f.write_str("out of memory"),
            Error::NotFound => f.write_str("no such file or directory"),
            Error::Exists => f.write_str("file exists"),
            Error::NotDir => f.write_str("not a directory"),
            Error::IsDir => f.write_str("is a directory"),
            Error::NotEmpty => f.write_str("directory not empty"),
            Error::NameTooLong => f.write_str("name too long"),
            Error::Invalid => f.write_str("invalid argument"),
            Error::TooBig => f.write_str("file or value too large"),
            Error::NoData => f.write_str("no such attribute"),
            Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            Error::ReadOnly => f.write_str("read-only filesystem"),
            Error::Host(what) => write!(f, "host service failed: {what}"),
        }
    }
}

/// A block device of 4 KiB blocks. Methods take `&self` so that a read
/// may repair a bad DUP copy; the host provides interior mutability.
pub trait BlockDevice {
    /// Number of 4 KiB blocks on the device.
    fn num_blocks(&self) -> u64;
    /// Read `buf.len()` bytes (a multiple of 4096) starting at block `block`.
    fn read(&self, block: u64, buf: &mut [u8]) -> Result<()>;
    /// Write `buf.len()` bytes (a multiple of 4096) starting at block `block`.
    /// Not durable until `flush` returns.
    fn write(&self, block: u64, buf: &[u8]) -> Result<()>;
    /// Make every completed write durable (a cache flush / FUA barrier).
    fn flush(&self) -> Result<()>;
}

/// A fallible buffer allocation (KVec<u8> in the kernel, Vec<u8> here).
pub trait Memory {
    type Buf: AsRef<[u8]> + AsMut<[u8]>;
    /// A zero-filled buffer of exactly `len` bytes, or `Error::NoMem`.
    fn alloc(&self, len: usize) -> Result<Self::Buf>;
}

/// Checksums: the 32-byte field holds `CsumType::len` significant bytes,
/// the rest must be zero.
pub trait Checksummer {
    fn checksum(&self, algo: CsumType, data: &[u8]) -> Result<[u8; 32]>;
}

/// Compression. Compressed formats: zstd frame (window log <= 17, level 3),
/// raw LZO1X-1 stream, zlib stream (RFC 1950, level 6).
pub trait Compressor {
    /// Compress `src` into `dst`. `Ok(None)` if the result would not fit
    /// in `dst` (the caller then stores the data plain).
    fn compress(&self, algo: Compression, src: &[u8], dst: &mut [u8]) -> Result<Option<usize>>;
    /// Decompress `src` into `dst`, returning the number of bytes produced.
    /// Must never write past `dst` nor panic on garbage input.
    fn decompress(&self, algo: Compression, src: &[u8], dst: &mut [u8]) -> Result<usize>;
}

/// Wall-clock time for inode timestamps.
pub trait Clock {
    /// (seconds since the epoch, nanoseconds).
    fn now(&self) -> (i64, u32);
}

/// Everything the core needs from its host except the device.
pub trait Host: Memory + Checksummer + Compressor + Clock {}
impl<T: Memory + Checksummer + Compressor + Clock> Host for T {}
