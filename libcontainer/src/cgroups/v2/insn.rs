//! One eBPF instruction (`struct bpf_insn`): the few opcodes the device program uses, the
//! kernel's byte layout, and a disassembly for tests and debug logs. Shared by the program
//! generator (`device_filter`) and the loader (`bpf`), so neither depends on the other for it.

use std::fmt;

// eBPF instruction classes, operations and sources (uapi/linux/bpf_common.h, bpf.h).
pub(super) const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub(super) const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K (32-bit)
pub(super) const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub(super) const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub(super) const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub(super) const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K (64-bit compare, imm sign-extended)
pub(super) const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
pub(super) const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// One `struct bpf_insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub(super) const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The kernel's 8-byte layout: the register nibbles are a bitfield, dst first in memory
    /// order, so its nibble position depends on the byte order.
    pub fn to_bytes(self) -> [u8; 8] {
        let regs = if cfg!(target_endian = "little") {
            self.dst | (self.src << 4)
        } else {
            (self.dst << 4) | self.src
        };
        let off = self.off.to_ne_bytes();
        let imm = self.imm.to_ne_bytes();
        [self.code, regs, off[0], off[1], imm[0], imm[1], imm[2], imm[3]]
    }
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, s, off, imm) = (self.dst, self.src, self.off, self.imm);
        match self.code {
            LDX_MEM_W => write!(f, "r{d} = *(u32 *)(r{s} + {off})"),
            ALU_AND_K => write!(f, "w{d} &= {imm:#x}"),
            ALU_RSH_K => write!(f, "w{d} >>= {imm}"),
            ALU_MOV_K => write!(f, "w{d} = {imm}"),
            ALU_MOV_X => write!(f, "w{d} = w{s}"),
            JMP_JNE_K => write!(f, "if r{d} != {imm} goto +{off}"),
            JMP_JNE_X => write!(f, "if r{d} != r{s} goto +{off}"),
            JMP_EXIT => f.write_str("exit"),
            c => write!(f, "op {c:#04x} dst r{d} src r{s} off {off} imm {imm}"),
        }
    }
}
