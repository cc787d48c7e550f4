//! ferfs core: the on-disk format and all logic that makes the filesystem
//! correct (copy-on-write B-trees, transactions, allocation, checksums,
//! POSIX semantics), shared by the Linux kernel module and the userspace
//! tools. It uses neither `std` nor `alloc`: memory, block I/O, time,
//! checksums and compression come from the host through the traits in
//! [`host`]. Everything read from disk is validated before it is trusted.

#![no_std]
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

pub mod format;
pub mod fs;
pub mod host;
pub mod node;
pub mod repair;
pub mod space;
pub mod volume;

#[cfg(test)]
mod tests;

pub use fs::{Attr, SetAttr, StatFs};
pub use host::{BlockDevice, Checksummer, Clock, Compressor, Error, Host, Memory, Result};
pub use volume::{MkfsOptions, MountOptions, Volume};
