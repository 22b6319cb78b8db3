//! Tests of the v2 device program: rule emulation, exact instruction dumps, the byte encoding,
//! and verdicts from a small interpreter of the instructions the generator emits.

use super::*;

fn dev(json: &str) -> LinuxDeviceCgroup {
    serde_json::from_str(json).unwrap()
}

fn emulate(rules: &[&str]) -> Result<Emulator> {
    let mut e = Emulator::default();
    for r in rules {
        e.apply(&Rule::from_spec(&dev(r))?)?;
    }
    Ok(e)
}

/// Run `p` the way the kernel would for one device access; returns r0.
fn run(p: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> u64 {
    let ctx = [((u32::from(access)) << 16) | typ as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..1000 {
        let i = p[pc];
        let (d, s) = (i.dst as usize, i.src as usize);
        pc += 1;
        match i.code {
            LDX_MEM_W => {
                assert_eq!(s, 1, "loads only from the context");
                r[d] = u64::from(ctx[i.off as usize / 4]);
            }
            ALU_AND_K => r[d] = u64::from((r[d] as u32) & i.imm as u32),
            ALU_RSH_K => r[d] = u64::from((r[d] as u32) >> i.imm),
            ALU_MOV_K => r[d] = u64::from(i.imm as u32),
            ALU_MOV_X => r[d] = u64::from(r[s] as u32),
            JMP_JNE_K => {
                if r[d] != i64::from(i.imm) as u64 {
                    pc += i.off as usize;
                }
            }
            JMP_JNE_X => {
                if r[d] != r[s] {
                    pc += i.off as usize;
                }
            }
            JMP_EXIT => return r[0],
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
    panic!("program did not exit");
}

const R: u8 = ACC_READ;
const W: u8 = ACC_WRITE;
const M: u8 = ACC_MKNOD;

#[test]
fn dump_of_a_small_allow_list() {
    let e = emulate(&[
        r#"{"allow":false,"access":"rwm"}"#,
        r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#,
        r#"{"allow":true,"type":"b","major":8,"access":"r"}"#,
    ])
    .unwrap();
    let want = "\
0: r2 = *(u32 *)(r1 + 0)
1: w2 &= 0xffff
2: r3 = *(u32 *)(r1 + 0)
3: w3 >>= 16
4: r4 = *(u32 *)(r1 + 4)
5: r5 = *(u32 *)(r1 + 8)
6: if r2 != 1 goto +6
7: w1 = w3
8: w1 &= 0x2
9: if r1 != r3 goto +3
10: if r4 != 8 goto +2
11: w0 = 1
12: exit
13: if r2 != 2 goto +7
14: w1 = w3
15: w1 &= 0x6
16: if r1 != r3 goto +4
17: if r4 != 1 goto +3
18: if r5 != 3 goto +2
19: w0 = 1
20: exit
21: w0 = 0
22: exit
";
    assert_eq!(dump(&program(&e)), want);
}

#[test]
fn dump_of_allow_all_and_of_a_deny_list() {
    // Allow-all, with the defaults adding nothing: no exceptions at all.
    let e = Emulator::from_spec(&[dev(r#"{"allow":true,"access":"rwm"}"#)]).unwrap();
    assert!(e.exceptions.is_empty());
    assert!(dump(&program(&e)).ends_with("5: r5 = *(u32 *)(r1 + 8)\n6: w0 = 1\n7: exit\n"));
    // A deny list: the exception returns 0, rwm needs no access check, the default is 1.
    let e = emulate(&[
        r#"{"allow":true,"access":"rwm"}"#,
        r#"{"allow":false,"type":"c","major":1,"minor":1}"#,
    ])
    .unwrap();
    let d = dump(&program(&e));
    assert!(
        d.ends_with(
            "6: if r2 != 2 goto +4\n7: if r4 != 1 goto +3\n8: if r5 != 1 goto +2\n9: w0 = 0\n10: exit\n11: w0 = 1\n12: exit\n"
        ),
        "{d}"
    );
}

#[test]
fn default_list_verdicts() {
    let p = program(&Emulator::from_spec(&[dev(r#"{"allow":false,"access":"rwm"}"#)]).unwrap());
    // /dev/null, zero, full, random, urandom, tty, ptmx, a pts, tun: all access.
    for (maj, min) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 2),
        (136, 4),
        (10, 200),
    ] {
        assert_eq!(run(&p, DEV_CHAR, R | W, maj, min), 1, "c {maj}:{min}");
    }
    // /dev/mem, /dev/kmsg, a disk: no read or write, but mknod of any node is allowed.
    for (typ, maj, min) in [
        (DEV_CHAR, 1, 1),
        (DEV_CHAR, 1, 11),
        (DEV_BLOCK, 254, 0),
        (DEV_BLOCK, 8, 0),
    ] {
        assert_eq!(run(&p, typ, R, maj, min), 0, "{typ} {maj}:{min} read");
        assert_eq!(run(&p, typ, W, maj, min), 0, "{typ} {maj}:{min} write");
        assert_eq!(run(&p, typ, M, maj, min), 1, "{typ} {maj}:{min} mknod");
    }
    // A request is allowed only if every access it asks for is.
    assert_eq!(run(&p, DEV_CHAR, R | M, 1, 1), 0);
}

#[test]
fn later_rules_win() {
    // An allow then a narrower deny of the same device: read stays, write goes.
    let e = emulate(&[
        r#"{"allow":false,"access":"rwm"}"#,
        r#"{"allow":true,"type":"c","major":1,"minor":1,"access":"rwm"}"#,
        r#"{"allow":false,"type":"c","major":1,"minor":1,"access":"w"}"#,
    ])
    .unwrap();
    let p = program(&e);
    assert_eq!(run(&p, DEV_CHAR, R, 1, 1), 1);
    assert_eq!(run(&p, DEV_CHAR, W, 1, 1), 0);
    assert_eq!(run(&p, DEV_CHAR, R, 1, 2), 0);

    // Deny list: a deny of c 1:1 then an allow of its read.
    let e = emulate(&[
        r#"{"allow":true,"access":"rwm"}"#,
        r#"{"allow":false,"type":"c","major":1,"minor":1}"#,
        r#"{"allow":true,"type":"c","major":1,"minor":1,"access":"r"}"#,
    ])
    .unwrap();
    let p = program(&e);
    assert_eq!(run(&p, DEV_CHAR, R, 1, 1), 1);
    assert_eq!(run(&p, DEV_CHAR, W, 1, 1), 0);
    assert_eq!(run(&p, DEV_BLOCK, R | W, 8, 0), 1);

    // A type a rule resets whatever came before, numbers or not.
    let e = emulate(&[
        r#"{"allow":true,"type":"c","major":1,"minor":1}"#,
        r#"{"allow":false,"type":"a","major":5,"access":"r"}"#,
    ])
    .unwrap();
    assert_eq!(e, Emulator::default());
    // Removing every access of an exception removes it.
    let e = emulate(&[
        r#"{"allow":true,"type":"c","major":1,"minor":1,"access":"rw"}"#,
        r#"{"allow":false,"type":"c","major":1,"minor":1,"access":"rwm"}"#,
    ])
    .unwrap();
    assert!(e.exceptions.is_empty());
}

#[test]
fn wildcards_match_any_number() {
    let e = emulate(&[
        r#"{"allow":true,"type":"c","major":4,"access":"rw"}"#,
        r#"{"allow":true,"type":"b","minor":0,"access":"r"}"#,
    ])
    .unwrap();
    let p = program(&e);
    assert_eq!(run(&p, DEV_CHAR, R | W, 4, 0), 1);
    assert_eq!(run(&p, DEV_CHAR, R | W, 4, 63), 1);
    assert_eq!(run(&p, DEV_CHAR, R, 5, 0), 0);
    assert_eq!(run(&p, DEV_BLOCK, R, 8, 0), 1);
    assert_eq!(run(&p, DEV_BLOCK, R, 8, 1), 0);
    assert_eq!(run(&p, DEV_BLOCK, W, 8, 0), 0);
}

#[test]
fn punching_a_hole_in_a_wildcard_is_refused() {
    let e = emulate(&[
        r#"{"allow":false,"access":"rwm"}"#,
        r#"{"allow":true,"type":"c","access":"rwm"}"#,
        r#"{"allow":false,"type":"c","major":1,"minor":1,"access":"rw"}"#,
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("c 1:1") && e.contains("c *:*"), "{e}");
    // No overlap in access: fine.
    emulate(&[
        r#"{"allow":false,"access":"rwm"}"#,
        r#"{"allow":true,"type":"c","access":"m"}"#,
        r#"{"allow":false,"type":"c","major":1,"minor":1,"access":"rw"}"#,
    ])
    .unwrap();
}

#[test]
fn invalid_rules() {
    for bad in [
        r#"{"allow":true,"type":"p"}"#,
        r#"{"allow":true,"type":"c","access":"rx"}"#,
        r#"{"allow":true,"type":"c","major":4294967296}"#,
    ] {
        assert!(Rule::from_spec(&dev(bad)).is_err(), "{bad}");
    }
    assert!(Rule::parse(true, "c 1:3").is_err());
    assert!(Rule::parse(true, "x 1:3 r").is_err());
    assert_eq!(
        Rule::parse(true, "c 136:* rwm").unwrap(),
        Rule {
            allow: true,
            typ: Some(DEV_CHAR),
            major: Some(136),
            minor: None,
            access: ACC_ALL
        }
    );
    // An empty access means all, and -1 any number.
    let r = Rule::from_spec(&dev(r#"{"allow":true,"type":"b","major":-1,"minor":2,"access":""}"#)).unwrap();
    assert_eq!((r.major, r.minor, r.access), (None, Some(2), ACC_ALL));
}

#[test]
fn instruction_bytes() {
    let ld = Insn::new(LDX_MEM_W, 4, 1, 4, 0).to_bytes();
    let jne = Insn::new(JMP_JNE_K, 5, 0, 7, 200).to_bytes();
    if cfg!(target_endian = "little") {
        assert_eq!(ld, [0x61, 0x14, 4, 0, 0, 0, 0, 0]);
        assert_eq!(jne, [0x55, 0x05, 7, 0, 200, 0, 0, 0]);
    }
    assert_eq!(Insn::new(JMP_EXIT, 0, 0, 0, 0).to_bytes(), [0x95, 0, 0, 0, 0, 0, 0, 0]);
}
