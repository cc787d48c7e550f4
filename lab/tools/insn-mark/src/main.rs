// SPDX-License-Identifier: GPL-2.0

//! `insn-mark start|stop`: executes the no-op the lab's QEMU plugin (`lab/host/qemu-insns`)
//! recognises as the start or the stop of a counting window: `nopl 0x46455201(%rax)` or
//! `nopl 0x46455202(%rax)`. Anywhere but under that plugin it does nothing.

fn main() {
    match std::env::args().nth(1).as_deref() {
        // SAFETY: a no-op (a multi-byte NOP); it reads no memory and changes no register.
        Some("start") => unsafe { core::arch::asm!("nop dword ptr [rax + 0x46455201]") },
        // SAFETY: as above.
        Some("stop") => unsafe { core::arch::asm!("nop dword ptr [rax + 0x46455202]") },
        _ => {
            eprintln!("usage: insn-mark start|stop");
            std::process::exit(2);
        }
    }
}
