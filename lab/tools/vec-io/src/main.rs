// SPDX-License-Identifier: GPL-2.0

//! `vec-io write|read DEVICE OFFSET PAGES`: one direct `pwritev`/`preadv` of PAGES pages at
//! byte OFFSET of DEVICE, each page its own iovec, in the reverse order of the pages in memory.
//! Pages faulted in one after the other mostly sit in ascending physical order, so reversed
//! they cannot merge: the block layer builds a request with about one segment per page (up to
//! the queue's `max_segments`, beyond which it splits the I/O). `write` writes a pattern made
//! of the device offset of each 8-byte word; `read` reads the range back and checks it.
//! Exit status 0 when the I/O and (for `read`) the data are right, 1 otherwise.

use std::{ffi::CString, process::exit};

const PAGE: usize = 4096;

/// The pattern word at byte `pos` of the device.
fn word(pos: u64) -> u64 {
    pos ^ 0x5a5a_0000_0000_0000
}

fn fail(msg: &str) -> ! {
    eprintln!("vec-io: {msg}: {}", std::io::Error::last_os_error());
    exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(op), Some(dev), Some(offset), Some(pages)) = (
        args.get(1),
        args.get(2),
        args.get(3).and_then(|s| s.parse::<u64>().ok()),
        args.get(4).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: vec-io write|read DEVICE OFFSET PAGES");
        exit(2)
    };
    let write = match op.as_str() {
        "write" => true,
        "read" => false,
        _ => exit(2),
    };
    if pages == 0 || pages > 1024 || offset % PAGE as u64 != 0 {
        eprintln!("vec-io: 1 to 1024 pages at a page-aligned offset");
        exit(2)
    }
    let len = pages * PAGE;
    // SAFETY: an anonymous private mapping of `len` bytes; checked below.
    let buf = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if buf == libc::MAP_FAILED {
        fail("mmap");
    }
    // SAFETY: the mapping is `len` bytes, readable and writable, and ours alone.
    let mem = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
    // Fault the pages in, in memory order.
    for p in mem.chunks_mut(PAGE) {
        p.fill(0xee);
    }
    // iovec i covers device bytes [offset + i * PAGE, ...) and sits at memory page pages-1-i.
    let mut iov = Vec::with_capacity(pages);
    for i in 0..pages {
        let page = &mut mem[(pages - 1 - i) * PAGE..][..PAGE];
        if write {
            let base = offset + (i * PAGE) as u64;
            for (k, w) in page.chunks_mut(8).enumerate() {
                w.copy_from_slice(&word(base + (k * 8) as u64).to_ne_bytes());
            }
        }
        iov.push(libc::iovec {
            iov_base: page.as_mut_ptr().cast(),
            iov_len: PAGE,
        });
    }
    let path = CString::new(dev.as_str()).unwrap_or_default();
    let flags = libc::O_DIRECT
        | if write {
            libc::O_WRONLY
        } else {
            libc::O_RDONLY
        };
    // SAFETY: `path` is a NUL-terminated string.
    let fd = unsafe { libc::open(path.as_ptr(), flags) };
    if fd < 0 {
        fail("open");
    }
    // SAFETY: `iov` holds `pages` iovecs of the live mapping.
    let n = unsafe {
        if write {
            libc::pwritev(fd, iov.as_ptr(), pages as i32, offset as i64)
        } else {
            libc::preadv(fd, iov.as_ptr(), pages as i32, offset as i64)
        }
    };
    if n != len as isize {
        fail(&format!("{op} returned {n} of {len} bytes"));
    }
    if !write {
        for (i, v) in iov.iter().enumerate() {
            // SAFETY: each iovec is a page of the live mapping.
            let page = unsafe { std::slice::from_raw_parts(v.iov_base.cast::<u8>(), PAGE) };
            let base = offset + (i * PAGE) as u64;
            for (k, w) in page.chunks(8).enumerate() {
                let want = word(base + (k * 8) as u64).to_ne_bytes();
                if w != want {
                    eprintln!(
                        "vec-io: wrong data at device byte {}",
                        base + (k * 8) as u64
                    );
                    exit(1);
                }
            }
        }
    }
    // SAFETY: `fd` is ours.
    unsafe { libc::close(fd) };
}
