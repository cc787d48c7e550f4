//! Userspace host for the ferfs core: block devices on image files or in
//! memory, and checksum/compression/clock/memory services from crates.

pub mod check;
pub mod cli;
pub mod fuse;
pub mod fuzzing;

use ferfs_core::format::{Compression, CsumType, BLOCK_SIZE, BLOCK_SIZE_U64};
use ferfs_core::{BlockDevice, Checksummer, Clock, Compressor, Error, Memory, Result};
use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

/// Host services backed by crates.io libraries.
#[derive(Clone, Copy, Default)]
pub struct StdHost;

impl Memory for StdHost {
    type Buf = Vec<u8>;
    fn alloc(&self, len: usize) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        v.try_reserve_exact(len).map_err(|_| Error::NoMem)?;
        v.resize(len, 0);
        Ok(v)
    }
}

impl Checksummer for StdHost {
    fn checksum(&self, algo: CsumType, data: &[u8]) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        match algo {
            CsumType::Crc32c => out[..4].copy_from_slice(&crc32c::crc32c(data).to_le_bytes()),
            CsumType::XxHash64 => {
                out[..8].copy_from_slice(&xxhash_rust::xxh64::xxh64(data, 0).to_le_bytes())
            }
            CsumType::Sha256 => {
                use sha2::Digest;
                out.copy_from_slice(&sha2::Sha256::digest(data));
            }
            CsumType::Blake2b256 => {
                use blake2::Digest;
                out.copy_from_slice(&blake2::Blake2b::<blake2::digest::consts::U32>::digest(
                    data,
                ));
            }
        }
        Ok(out)
    }
}

/// zstd level used for new extents.
pub const ZSTD_LEVEL: i32 = 3;
/// zstd window log: 2^17 = 128 KiB, the largest extent, well within what
/// the kernel's zstd decompressor accepts.
pub const ZSTD_WINDOW_LOG: u32 = 17;
/// zlib level used for new extents.
pub const ZLIB_LEVEL: u32 = 6;

fn compress_impl(algo: Compression, src: &[u8], dst: &mut [u8]) -> Option<usize> {
    match algo {
        Compression::None => None,
        Compression::Zstd => {
            let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()?;
            c.set_parameter(zstd::zstd_safe::CParameter::WindowLog(ZSTD_WINDOW_LOG))
                .ok()?;
            c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(false))
                .ok()?;
            c.compress_to_buffer(src, dst).ok()
        }
        Compression::Zlib => {
            let mut c = flate2::Compress::new(flate2::Compression::new(ZLIB_LEVEL), true);
            match c.compress(src, dst, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => usize::try_from(c.total_out()).ok(),
                _ => None,
            }
        }
        Compression::Lzo => {
            let v = lzokay_native::compress(src).ok()?;
            let d = dst.get_mut(..v.len())?;
            d.copy_from_slice(&v);
            Some(v.len())
        }
    }
}

fn decompress_impl(algo: Compression, src: &[u8], dst: &mut [u8]) -> Option<usize> {
    match algo {
        Compression::None => None,
        Compression::Zstd => zstd::bulk::decompress_to_buffer(src, dst).ok(),
        Compression::Zlib => {
            let mut d = flate2::Decompress::new(true);
            match d.decompress(src, dst, flate2::FlushDecompress::Finish) {
                Ok(flate2::Status::StreamEnd) => usize::try_from(d.total_out()).ok(),
                _ => None,
            }
        }
        Compression::Lzo => {
            let v = lzokay_native::decompress_all(src, Some(dst.len())).ok()?;
            let d = dst.get_mut(..v.len())?;
            d.copy_from_slice(&v);
            Some(v.len())
        }
    }
}

impl Compressor for StdHost {
    fn compress(&self, algo: Compression, src: &[u8], dst: &mut [u8]) -> Result<Option<usize>> {
        Ok(compress_impl(algo, src, dst))
    }
    fn decompress(&self, algo: Compression, src: &[u8], dst: &mut [u8]) -> Result<usize> {
        // Decoders see disk content: contain any panic in a library as an
        // error rather than trusting every decoder to be panic-free.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            decompress_impl(algo, src, dst)
        }))
        .ok()
        .flatten()
        .ok_or(Error::Host("decompression failed"))
    }
}

impl Clock for StdHost {
    fn now(&self) -> (i64, u32) {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs() as i64, d.subsec_nanos())
    }
}

/// A device on an image file (or block device node).
pub struct FileDevice {
    file: File,
    blocks: u64,
    writable: bool,
}

impl FileDevice {
    pub fn open(path: &str, writable: bool) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)?;
        let len = device_len(&file)?;
        Ok(FileDevice {
            file,
            blocks: len / BLOCK_SIZE_U64,
            writable,
        })
    }
}

/// Size of a regular file or block device.
fn device_len(f: &File) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = f;
    let len = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(len)
}

impl BlockDevice for FileDevice {
    fn num_blocks(&self) -> u64 {
        self.blocks
    }
    fn read(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        let off = block
            .checked_mul(BLOCK_SIZE_U64)
            .ok_or(Error::Io { block })?;
        self.file
            .read_exact_at(buf, off)
            .map_err(|_| Error::Io { block })
    }
    fn write(&self, block: u64, buf: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        let off = block
            .checked_mul(BLOCK_SIZE_U64)
            .ok_or(Error::Io { block })?;
        self.file
            .write_all_at(buf, off)
            .map_err(|_| Error::Io { block })
    }
    fn flush(&self) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        self.file.sync_data().map_err(|_| Error::Io { block: 0 })
    }
}

/// One recorded device operation.
#[derive(Clone, Debug)]
pub enum DevOp {
    Write(u64, Vec<u8>),
    Flush,
}

/// An in-memory device, optionally recording every write and flush
/// (crash-consistency tests replay prefixes of the record). Clones share
/// the same storage.
#[derive(Clone)]
pub struct MemDevice {
    inner: Rc<RefCell<MemInner>>,
}

struct MemInner {
    data: Vec<u8>,
    record: Option<Vec<DevOp>>,
}

impl MemDevice {
    pub fn new(blocks: u64) -> Self {
        Self::from_bytes(vec![0u8; (blocks as usize) * BLOCK_SIZE])
    }
    pub fn from_bytes(data: Vec<u8>) -> Self {
        MemDevice {
            inner: Rc::new(RefCell::new(MemInner { data, record: None })),
        }
    }
    pub fn snapshot(&self) -> Vec<u8> {
        self.inner.borrow().data.clone()
    }
    pub fn start_recording(&self) {
        self.inner.borrow_mut().record = Some(Vec::new());
    }
    /// Operations recorded so far.
    pub fn record_len(&self) -> usize {
        self.inner.borrow().record.as_ref().map_or(0, |r| r.len())
    }
    pub fn take_record(&self) -> Vec<DevOp> {
        self.inner.borrow_mut().record.take().unwrap_or_default()
    }
    /// Flip one bit of the stored bytes.
    pub fn flip_bit(&self, byte: usize, bit: u8) {
        self.inner.borrow_mut().data[byte] ^= 1 << bit;
    }
    pub fn read_block_raw(&self, block: u64) -> Vec<u8> {
        let s = block as usize * BLOCK_SIZE;
        self.inner.borrow().data[s..s + BLOCK_SIZE].to_vec()
    }
}

impl BlockDevice for MemDevice {
    fn num_blocks(&self) -> u64 {
        (self.inner.borrow().data.len() / BLOCK_SIZE) as u64
    }
    fn read(&self, block: u64, buf: &mut [u8]) -> Result<()> {
        let inner = self.inner.borrow();
        let s = usize::try_from(block)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK_SIZE))
            .ok_or(Error::Io { block })?;
        let src = inner
            .data
            .get(s..s.saturating_add(buf.len()))
            .ok_or(Error::Io { block })?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&self, block: u64, buf: &[u8]) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let s = usize::try_from(block)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK_SIZE))
            .ok_or(Error::Io { block })?;
        let dst = inner
            .data
            .get_mut(s..s.saturating_add(buf.len()))
            .ok_or(Error::Io { block })?;
        dst.copy_from_slice(buf);
        if let Some(r) = inner.record.as_mut() {
            r.push(DevOp::Write(block, buf.to_vec()));
        }
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        if let Some(r) = self.inner.borrow_mut().record.as_mut() {
            r.push(DevOp::Flush);
        }
        Ok(())
    }
}

/// Parse "crc32c", "xxhash64", "sha256", "blake2b-256".
pub fn parse_csum(s: &str) -> Option<CsumType> {
    [
        CsumType::Crc32c,
        CsumType::XxHash64,
        CsumType::Sha256,
        CsumType::Blake2b256,
    ]
    .into_iter()
    .find(|c| c.name() == s || (s == "blake2b" && *c == CsumType::Blake2b256))
}

/// Parse "zstd", "lzo", "zlib", "none".
pub fn parse_compression(s: &str) -> Option<Compression> {
    [
        Compression::None,
        Compression::Zstd,
        Compression::Lzo,
        Compression::Zlib,
    ]
    .into_iter()
    .find(|c| c.name() == s)
}

/// A random filesystem id.
pub fn random_fsid() -> [u8; 16] {
    let mut id = [0u8; 16];
    if let Ok(mut f) = File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut id);
    }
    if id == [0; 16] {
        let t = StdHost.now();
        id[..8].copy_from_slice(&t.0.to_le_bytes());
        id[8..12].copy_from_slice(&t.1.to_le_bytes());
        id[12..].copy_from_slice(&std::process::id().to_le_bytes());
    }
    id
}

pub fn fmt_uuid(id: &[u8; 16]) -> String {
    let h: Vec<String> = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..].concat()
    )
}
