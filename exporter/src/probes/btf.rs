//! Kernel struct member offsets from `/sys/kernel/btf/vmlinux`, for the probes' `OFFSETS` global.
//!
//! Rust eBPF gets no CO-RE field relocations, so userspace resolves `struct.member` paths here
//! (descending into anonymous structs and unions) and the probes read fields at those offsets.
use std::path::Path;

use btf_rs::{Btf, Type};
use tripline_common::{KernelOffsets, KERNEL_OFFSET_SOURCES};

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read kernel BTF at {path}: {message} (tripline needs a kernel built with CONFIG_DEBUG_INFO_BTF=y)")]
    Read { path: String, message: String },
    #[error("kernel BTF has no {0}")]
    Missing(String),
}

/// Resolves member offsets (in bytes) within named structs.
pub struct Resolver {
    btf: Btf,
}

impl Resolver {
    pub fn from_file(path: &Path) -> Result<Resolver, BtfError> {
        let btf = Btf::from_file(path).map_err(|e| BtfError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(Resolver { btf })
    }

    /// Byte offset of `member` in `struct strukt`, searching anonymous members too.
    pub fn offset(&self, strukt: &str, member: &str) -> Result<u32, BtfError> {
        let missing = || BtfError::Missing(format!("{strukt}.{member}"));
        let types = self
            .btf
            .resolve_types_by_name(strukt)
            .map_err(|_| missing())?;
        for t in types {
            if let Type::Struct(s) = t {
                if let Some(bits) = self.find_member(&s, member, 0) {
                    return Ok(bits / 8);
                }
            }
        }
        Err(missing())
    }

    fn find_member(&self, s: &btf_rs::Struct, member: &str, base_bits: u32) -> Option<u32> {
        for m in &s.members {
            let name = self.btf.resolve_name(m).unwrap_or_default();
            let off = base_bits + m.bit_offset();
            if name == member {
                return Some(off);
            }
            if name.is_empty() {
                // Anonymous struct/union: look inside.
                if let Ok(Type::Struct(inner) | Type::Union(inner)) = self.resolve_through(m) {
                    if let Some(found) = self.find_member(&inner, member, off) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }

    fn resolve_through(&self, m: &btf_rs::Member) -> Result<Type, btf_rs::Error> {
        let mut t = self.btf.resolve_chained_type(m)?;
        // Skip typedefs and qualifiers.
        for _ in 0..8 {
            match &t {
                Type::Typedef(x) => t = self.btf.resolve_chained_type(x)?,
                Type::Volatile(x) | Type::Const(x) | Type::Restrict(x) => {
                    t = self.btf.resolve_chained_type(x)?
                }
                _ => break,
            }
        }
        Ok(t)
    }

    /// Every offset the probes use. A missing member fails the whole set: the probes then run on
    /// helpers only and the startup log says which member was missing.
    /// Resolves every row of the ABI table (`tripline_common::KERNEL_OFFSET_SOURCES`): exactly the
    /// members the probes read. An optional member the kernel lacks stays 0 (the probe skips it).
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        let mut o = KernelOffsets {
            valid: 1,
            ..KernelOffsets::default()
        };
        for (field, st, member, required) in KERNEL_OFFSET_SOURCES {
            let v = match self.offset(st, member) {
                Ok(v) => v,
                Err(_) if !required => 0,
                Err(e) => return Err(e),
            };
            // Every source row has a slot (tested in tripline-common).
            if let Some(slot) = o.slot(field) {
                *slot = v;
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    #[test]
    fn resolves_offsets_on_this_kernel() {
        if !Path::new(VMLINUX).exists() {
            eprintln!("skipping: no {VMLINUX}");
            return;
        }
        let r = Resolver::from_file(Path::new(VMLINUX)).unwrap();
        let o = r.kernel_offsets().unwrap();
        assert_eq!(o.valid, 1);
        // sock_common starts with the address pair: daddr at 0, rcv_saddr at 4 on every kernel.
        assert_eq!(o.sk_daddr, 0);
        assert_eq!(o.sk_rcv_saddr, 4);
        assert_eq!(o.sk_dport, 12);
        assert_eq!(o.sk_num, 14);
        assert!(o.task_tgid > o.task_pid - 1 && o.task_tgid == o.task_pid + 4);
        assert!(o.cred_egid > o.cred_euid);
        assert!(r.offset("task_struct", "no_such_member").is_err());
    }
}
