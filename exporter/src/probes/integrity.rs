//! Verifies that tripline's own eBPF programs, links and maps are still loaded, attached and
//! unchanged: ids and tags recorded after attach, compared with what the kernel lists now
//! (BPF_PROG/LINK/MAP_GET_NEXT_ID through aya).
use std::collections::{BTreeMap, BTreeSet};

use aya::Ebpf;

use crate::tamper::{Reason, Tamper};

#[derive(Debug, Default, Clone)]
pub struct Integrity {
    /// program id → (program name, tag).
    programs: BTreeMap<u32, (String, u64)>,
    /// program id → number of links attaching it.
    links: BTreeMap<u32, usize>,
    /// Map ids our programs use.
    maps: BTreeSet<u32>,
}

impl Integrity {
    /// Records what is loaded and attached now (call after attach).
    pub fn capture(ebpf: &Ebpf) -> Integrity {
        let mut programs = BTreeMap::new();
        let mut maps = BTreeSet::new();
        for (name, p) in ebpf.programs() {
            let Ok(info) = p.info() else { continue };
            programs.insert(info.id(), (name.to_string(), info.tag()));
            if let Ok(Some(ids)) = info.map_ids() {
                maps.extend(ids);
            }
        }
        let links = count_links(&programs);
        Integrity {
            programs,
            links,
            maps,
        }
    }

    pub fn programs(&self) -> usize {
        self.programs.len()
    }

    /// Compares the kernel's view now with what was captured. Listing every program, link and map
    /// needs CAP_SYS_ADMIN; after the privilege drop only our own descriptors are asked (program ids
    /// and tags), which needs nothing.
    pub fn verify(&self, ebpf: &Ebpf) -> Vec<Tamper> {
        if matches!(aya::programs::loaded_programs().next(), Some(Err(_))) {
            return self.verify_own(ebpf);
        }
        let mut out = Vec::new();
        let mut now: BTreeMap<u32, u64> = BTreeMap::new();
        for info in aya::programs::loaded_programs().flatten() {
            if self.programs.contains_key(&info.id()) {
                now.insert(info.id(), info.tag());
            }
        }
        for (id, (name, tag)) in &self.programs {
            match now.get(id) {
                None => out.push(Tamper {
                    reason: Reason::program_missing,
                    detail: format!("eBPF program {name} (id {id}) is no longer loaded"),
                    gap: None,
                }),
                Some(t) if t != tag => out.push(Tamper {
                    reason: Reason::program_changed,
                    detail: format!(
                        "eBPF program {name} (id {id}) changed: tag {tag:016x} is now {t:016x}"
                    ),
                    gap: None,
                }),
                Some(_) => {}
            }
        }
        let links = count_links(&self.programs);
        for (id, n) in &self.links {
            let have = links.get(id).copied().unwrap_or(0);
            if have < *n {
                let name = self.programs.get(id).map(|p| p.0.as_str()).unwrap_or("?");
                out.push(Tamper {
                    reason: Reason::link_missing,
                    detail: format!(
                        "eBPF program {name} (id {id}) had {n} link(s) attaching it, now {have}"
                    ),
                    gap: None,
                });
            }
        }
        let maps: BTreeSet<u32> = aya::maps::loaded_maps()
            .flatten()
            .map(|m| m.id())
            .filter(|id| self.maps.contains(id))
            .collect();
        for id in self.maps.difference(&maps) {
            out.push(Tamper {
                reason: Reason::map_missing,
                detail: format!("eBPF map id {id} used by tripline's programs is gone"),
                gap: None,
            });
        }
        out
    }
}

impl Integrity {
    fn verify_own(&self, ebpf: &Ebpf) -> Vec<Tamper> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, p) in ebpf.programs() {
            let Ok(info) = p.info() else { continue };
            seen.insert(info.id());
            if let Some((_, tag)) = self.programs.get(&info.id()) {
                if *tag != info.tag() {
                    out.push(Tamper {
                        reason: Reason::program_changed,
                        detail: format!(
                            "eBPF program {name} (id {}) changed: tag {tag:016x} is now {:016x}",
                            info.id(),
                            info.tag()
                        ),
                        gap: None,
                    });
                }
            }
        }
        for (id, (name, _)) in &self.programs {
            if !seen.contains(id) {
                out.push(Tamper {
                    reason: Reason::program_missing,
                    detail: format!("eBPF program {name} (id {id}) is no longer loaded"),
                    gap: None,
                });
            }
        }
        out
    }
}

fn count_links(programs: &BTreeMap<u32, (String, u64)>) -> BTreeMap<u32, usize> {
    let mut links = BTreeMap::new();
    for l in aya::programs::loaded_links().flatten() {
        if programs.contains_key(&l.program_id()) {
            *links.entry(l.program_id()).or_insert(0) += 1;
        }
    }
    links
}
