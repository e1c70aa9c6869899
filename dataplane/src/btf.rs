//! Reads one fact from the running kernel's BTF (`/sys/kernel/btf/vmlinux`): the byte offset
//! of a member of a kernel struct, such as `ifindex` in `struct net_device`, which the carrier
//! watch (`ebpf/xdp/src/engine.rs`) needs and which moves between kernel builds.
//!
//! The BPF side cannot relocate field accesses (no CO-RE in the Rust BPF toolchain), so the
//! loader looks the offset up here and hands it to the program as a global.
//!
//! The format: a header, a type section of variable-length records (type ids count from 1 in
//! file order) and a string section; a struct's members carry their bit offsets. Members of
//! anonymous structs and unions nested in the struct are searched too.

use std::collections::HashMap;

/// Where the running kernel publishes its BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// A struct or union member: name, type id, offset in bits.
#[derive(Clone, Debug)]
struct Member {
    name: u32,
    ty: u32,
    bits: u32,
}

#[derive(Clone, Debug)]
struct Type {
    name: u32,
    kind: u32,
    /// The referenced type (typedef, const, volatile, ...).
    target: u32,
    members: Vec<Member>,
}

/// The parsed type section.
#[derive(Debug)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

fn u32_at(data: &[u8], at: usize, little: bool) -> Result<u32, String> {
    let b: [u8; 4] = data
        .get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("BTF cut short at byte {at}"))?;
    Ok(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

impl Btf {
    /// Parses BTF bytes.
    ///
    /// # Errors
    /// Not BTF, or cut short.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let magic = data.get(0..2).ok_or("BTF shorter than its header")?;
        let little = match u16::from_le_bytes([magic[0], magic[1]]) {
            MAGIC => true,
            m if m.swap_bytes() == MAGIC => false,
            m => return Err(format!("not BTF (magic {m:#06x})")),
        };
        let hdr_len = u32_at(data, 4, little)? as usize;
        let type_off = u32_at(data, 8, little)? as usize;
        let type_len = u32_at(data, 12, little)? as usize;
        let str_off = u32_at(data, 16, little)? as usize;
        let str_len = u32_at(data, 20, little)? as usize;
        let types_at = hdr_len + type_off;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or("BTF string section out of bounds")?
            .to_vec();
        let end = types_at + type_len;
        let mut at = types_at;
        // Type id 0 is `void`.
        let mut types = vec![Type {
            name: 0,
            kind: 0,
            target: 0,
            members: Vec::new(),
        }];
        while at < end {
            let name = u32_at(data, at, little)?;
            let info = u32_at(data, at + 4, little)?;
            let target = u32_at(data, at + 8, little)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let bitfields = info >> 31 == 1;
            let mut members = Vec::new();
            at += match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + 12 * i;
                        let offset = u32_at(data, m + 8, little)?;
                        members.push(Member {
                            name: u32_at(data, m, little)?,
                            ty: u32_at(data, m + 4, little)?,
                            bits: if bitfields {
                                offset & 0x00ff_ffff
                            } else {
                                offset
                            },
                        });
                    }
                    12 * vlen
                }
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                0..=19 => 0,
                k => return Err(format!("BTF type kind {k} unknown")),
            };
            types.push(Type {
                name,
                kind,
                target,
                members,
            });
        }
        Ok(Self { types, strings })
    }

    /// Reads and parses the running kernel's BTF.
    ///
    /// # Errors
    /// No BTF (a kernel built without `CONFIG_DEBUG_INFO_BTF`), or unreadable.
    pub fn vmlinux() -> Result<Self, String> {
        let data = std::fs::read(VMLINUX).map_err(|e| {
            format!("{VMLINUX}: {e} (a kernel built without CONFIG_DEBUG_INFO_BTF has none)")
        })?;
        Self::parse(&data)
    }

    fn name(&self, off: u32) -> &str {
        let Some(rest) = self.strings.get(off as usize..) else {
            return "";
        };
        let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..len]).unwrap_or("")
    }

    /// Follows typedefs and qualifiers to the type they name.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.target;
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// The byte offset of `member` in struct `name` (searching anonymous nested structs and
    /// unions too).
    ///
    /// # Errors
    /// No such struct, no such member, or a bitfield member.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<usize, String> {
        let ty = self
            .types
            .iter()
            .find(|t| t.kind == KIND_STRUCT && !t.members.is_empty() && self.name(t.name) == name)
            .ok_or_else(|| format!("struct {name} not in the kernel's BTF"))?;
        let bits = self
            .find(ty, member, 0, &mut HashMap::new())
            .ok_or_else(|| format!("struct {name} has no member {member}"))?;
        if bits % 8 != 0 {
            return Err(format!("{name}.{member} is a bitfield"));
        }
        Ok(bits as usize / 8)
    }

    fn find(&self, ty: &Type, member: &str, base: u32, seen: &mut HashMap<u32, ()>) -> Option<u32> {
        for m in &ty.members {
            let name = self.name(m.name);
            if name == member {
                return Some(base + m.bits);
            }
            if name.is_empty() && seen.insert(m.ty, ()).is_none() {
                let Some(inner) = self.resolve(m.ty) else {
                    continue;
                };
                if matches!(inner.kind, KIND_STRUCT | KIND_UNION) {
                    if let Some(bits) = self.find(inner, member, base + m.bits, seen) {
                        return Some(bits);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built BTF: `int`, `struct inner { int b; }`, `struct outer { int a; struct
    /// inner (anonymous); int c; }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0inner\0outer\0a\0b\0c\0";
        let s = |n: &str| {
            let at = strings
                .windows(n.len() + 2)
                .position(|w| w[0] == 0 && &w[1..=n.len()] == n.as_bytes() && w[n.len() + 1] == 0)
                .unwrap();
            (at + 1) as u32
        };
        let mut types = Vec::new();
        let mut word = |v: u32| types.extend_from_slice(&v.to_le_bytes());
        // 1: int
        word(s("int"));
        word(KIND_INT << 24);
        word(4);
        word(32);
        // 2: struct inner { int b @ 0 }
        word(s("inner"));
        word(KIND_STRUCT << 24 | 1);
        word(4);
        word(s("b"));
        word(1);
        word(0);
        // 3: struct outer { int a @0; inner @32 (anon); int c @64 }
        word(s("outer"));
        word(KIND_STRUCT << 24 | 3);
        word(12);
        for (n, t, o) in [(s("a"), 1, 0), (0, 2, 32), (s("c"), 1, 64)] {
            word(n);
            word(t);
            word(o);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(strings);
        out
    }

    #[test]
    fn offsets_of_direct_and_nested_members() {
        let btf = Btf::parse(&sample()).unwrap();
        assert_eq!(btf.member_offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.member_offset("outer", "b").unwrap(), 4);
        assert_eq!(btf.member_offset("outer", "c").unwrap(), 8);
        assert!(btf
            .member_offset("outer", "d")
            .unwrap_err()
            .contains("no member d"));
        assert!(btf
            .member_offset("nope", "a")
            .unwrap_err()
            .contains("not in"));
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let good = sample();
        for cut in 0..good.len() {
            let _ = Btf::parse(&good[..cut]);
        }
        assert!(Btf::parse(b"hello, world, this is not btf").is_err());
    }

    #[test]
    fn the_running_kernel_has_net_device_ifindex() {
        // Every kernel this project supports has BTF; the carrier watch needs this offset.
        let btf = Btf::vmlinux().expect("the running kernel's BTF");
        let off = btf.member_offset("net_device", "ifindex").unwrap();
        assert!(off > 0 && off < 4096, "offset {off}");
    }
}
