//! Per passthrough candidate (a GPU that is not the boot GPU, or a device on vfio-pci): can it
//! be reset between VM runs, will it come back from D3cold, and where do its BARs sit
//! (64-bit above 4 GiB, resizable BAR: is Above-4G decoding on?).
//!
//! Facts: sysfs `reset_method` (5.15+; vendor-reset works only with `device_specific`
//! first), `d3cold_allowed`, `power_state`, vfio-pci's `disable_idle_d3`, `resource`, the
//! config space's extended capabilities (Resizable BAR = ID 0x0015, readable past 256 bytes as
//! root), and the kernel log.

use crate::host::devfacts::{self, Bar};
use crate::pci::device::Device;
use crate::pci::sysfs;

use super::facts::*;
use super::*;

pub(super) fn checks(root: &HostRoot, f: &Facts) -> Vec<Check> {
    let cands = candidates(f);
    vec![
        reset(root, f, &cands),
        d3cold(root, f, &cands),
        bars(root, &cands),
    ]
}

/// GPUs that are not the boot GPU, and every endpoint already on vfio-pci.
fn candidates(f: &Facts) -> Vec<&Device> {
    f.devices()
        .filter(|d| !d.bridge)
        .filter(|d| (d.is_display() && d.boot_vga != Some(true)) || d.driver.as_deref() == Some("vfio-pci"))
        .collect()
}

fn none_msg(id: &'static str) -> Check {
    ok(
        id,
        false,
        "no passthrough candidate (no GPU besides the boot GPU, nothing on vfio-pci)",
    )
}

fn reset(root: &HostRoot, f: &Facts, cands: &[&Device]) -> Check {
    let id = "reset";
    if cands.is_empty() {
        return none_msg(id);
    }
    let vendor_reset = root.sysfs.module_dir("vendor_reset").exists();
    let new_kernel = f.version.is_some_and(|v| v >= (5, 15));
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for d in cands {
        let methods = &d.reset_methods;
        let a = d.address;
        if let Some(fam) = devfacts::amd_reset_bug_family(d.vendor_id, d.device_id) {
            let first = methods.first().map(String::as_str);
            if !vendor_reset {
                problems.push(format!("{a} is an AMD {fam}: it has the reset bug (it comes back dead after a VM used it) and vendor-reset is not loaded"));
                fixes.push(format!("install vendor-reset (dkms), modprobe vendor-reset, then echo device_specific > /sys/bus/pci/devices/{a}/reset_method"));
            } else if new_kernel && first != Some("device_specific") {
                problems.push(format!("{a} is an AMD {fam}: vendor-reset is loaded but reset_method starts with {} (5.15+ kernels use device_specific only when it comes first)", first.unwrap_or("nothing")));
                fixes.push(format!("echo device_specific > /sys/bus/pci/devices/{a}/reset_method (a udev rule or tmpfiles.d line keeps it across boots)"));
            } else {
                notes.push(format!("{a} AMD {fam} with vendor-reset"));
            }
            continue;
        }
        if methods.is_empty() {
            // 5.15+ shows reset_method only for devices that have a reset method at all
            // (pci_dev_reset_method_attr_is_visible); older kernels have no such file.
            let file = root.sysfs.device_attr(&a, "reset_method").exists();
            if file || f.version.is_some_and(|v| v >= (5, 15)) {
                problems.push(format!(
                    "{a} has no reset method: it keeps its state between VM runs"
                ));
                fixes.push(format!("nothing to set: pass {a} only to one VM run per host boot, or reset the slot by removing and rescanning it"));
            } else {
                notes.push(format!(
                    "{a} reset methods unknown (no reset_method file before 5.15)"
                ));
            }
            continue;
        }
        let only_bus = methods.iter().all(|m| m == "bus" || m == "cxl_bus");
        if only_bus {
            // A secondary bus reset resets everything behind the parent bridge.
            let others: Vec<String> = f
                .devices()
                .filter(|o| {
                    o.address.domain == a.domain
                        && o.address.bus == a.bus
                        && o.address.slot() != a.slot()
                        && !o.bridge
                })
                .map(|o| format!("{} ({})", o.address, o.driver.as_deref().unwrap_or("no driver")))
                .collect();
            if !others.is_empty() {
                problems.push(format!(
                    "{a} can only be reset by a bus reset, which would also reset {}: libvirt refuses (\"not doing bus reset\") and QEMU skips it",
                    others.join(", ")
                ));
                fixes.push(format!(
                    "move {a} to a slot of its own, or pass the other devices on that bus to the same VM"
                ));
                continue;
            }
        }
        notes.push(format!("{a} {}", methods.join(" ")));
    }
    if problems.is_empty() {
        ok(id, false, format!("reset methods: {}", notes.join("; ")))
    } else {
        warn(id, false, problems.join("; "), fixes.join("\n"))
    }
}

fn d3cold(root: &HostRoot, f: &Facts, cands: &[&Device]) -> Check {
    let id = "d3cold";
    if cands.is_empty() {
        return none_msg(id);
    }
    let idle = devfacts::module_param(root, "vfio_pci", "disable_idle_d3");
    let log = f.klog.lines();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for d in cands {
        let a = d.address;
        let state = devfacts::attr(root, &a, "power_state");
        let allowed = devfacts::d3cold_allowed(root, &a);
        let text = a.to_string();
        let stuck = log
            .iter()
            .find(|l| l.contains(&text) && l.contains("Unable to change power state from D3cold"));
        if let Some(l) = stuck {
            problems.push(format!("{a} did not come back from D3cold: {l}"));
        } else if state.as_deref() == Some("D3cold") {
            problems.push(format!("{a} is in D3cold now"));
        } else {
            notes.push(format!(
                "{a} d3cold_allowed={}{}",
                allowed.map_or("?", |b| if b { "1" } else { "0" }),
                state.map(|s| format!(" power_state={s}")).unwrap_or_default()
            ));
        }
    }
    let idle_note = format!(
        "vfio-pci disable_idle_d3={}",
        idle.as_deref().unwrap_or("? (vfio-pci not loaded)")
    );
    if problems.is_empty() {
        return ok(id, false, format!("{}; {idle_note}", notes.join("; ")));
    }
    let addrs: Vec<String> = cands.iter().map(|d| d.address.to_string()).collect();
    warn(
        id,
        false,
        format!("{}; {idle_note}", problems.join("; ")),
        format!(
            "keep them out of D3cold: echo 0 > /sys/bus/pci/devices/<addr>/d3cold_allowed for {}\nand add options vfio-pci disable_idle_d3=1 to /etc/modprobe.d/vfio.conf, then {}",
            addrs.join(", "),
            super::initramfs::rebuild_command(root)
        ),
    )
}

/// The Resizable BAR extended capability (ID 0x0015) in a config space longer than 256 bytes.
pub(crate) fn has_rebar(config: &[u8]) -> bool {
    let mut off = 0x100usize;
    for _ in 0..64 {
        let Some(h) = config.get(off..off + 4) else {
            return false;
        };
        let h = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if h == 0 || h == u32::MAX {
            return false;
        }
        if h & 0xffff == 0x0015 {
            return true;
        }
        let next = ((h >> 20) & 0xffc) as usize;
        if next < 0x100 || next <= off {
            return false;
        }
        off = next;
    }
    false
}

fn rebar(root: &HostRoot, d: &Device) -> Option<bool> {
    // resourceN_resize (6.x) exists only for devices with the capability.
    if (0..6).any(|i| {
        root.sysfs
            .device_attr(&d.address, &format!("resource{i}_resize"))
            .exists()
    }) {
        return Some(true);
    }
    let cfg = sysfs::read_bytes(&root.sysfs.device_attr(&d.address, "config"), 4096).ok()??;
    (cfg.len() > 0x100).then(|| has_rebar(&cfg))
}

fn mib(b: &Bar) -> String {
    let s = b.size();
    if s >= 1 << 30 {
        format!("{} GiB", s >> 30)
    } else {
        format!("{} MiB", s >> 20)
    }
}

fn bars(root: &HostRoot, cands: &[&Device]) -> Check {
    let id = "bars";
    let gpus: Vec<&&Device> = cands.iter().filter(|d| d.is_display()).collect();
    if gpus.is_empty() {
        return ok(id, false, "no GPU to pass through");
    }
    const GIB4: u64 = 1 << 32;
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    for d in gpus {
        let a = d.address;
        let bars = devfacts::bars(root, &a);
        let big: Vec<&Bar> = bars.iter().filter(|b| b.is_64bit() && b.prefetchable()).collect();
        if bars.is_empty() {
            notes.push(format!("{a} BARs unknown (no resource file)"));
            continue;
        }
        let rb = rebar(root, d);
        let above = big.iter().filter(|b| b.start >= GIB4).count();
        let desc: Vec<String> = big
            .iter()
            .map(|b| {
                format!(
                    "BAR {} {} {}",
                    b.index,
                    mib(b),
                    if b.start >= GIB4 {
                        "above 4 GiB"
                    } else {
                        "below 4 GiB"
                    }
                )
            })
            .collect();
        let rb_text = match rb {
            Some(true) => ", resizable BAR",
            Some(false) => "",
            None => "",
        };
        if !big.is_empty() && above == 0 && (rb == Some(true) || big.iter().any(|b| b.size() >= 256 << 20)) {
            problems.push(format!(
                "{a}: {}{rb_text}: every 64-bit BAR is placed below 4 GiB, so Above 4G Decoding is probably off in the firmware (resizable BAR needs it, and a large BAR may not fit)",
                desc.join(", ")
            ));
        } else if !big.is_empty() {
            notes.push(format!("{a}: {}{rb_text}", desc.join(", ")));
        } else {
            notes.push(format!("{a}: 32-bit BARs only"));
        }
    }
    if problems.is_empty() {
        ok(id, false, notes.join("; "))
    } else {
        problems.extend(notes);
        warn(
            id,
            false,
            problems.join("; "),
            "enable \"Above 4G Decoding\" (and \"Resizable BAR\"/\"Re-Size BAR Support\" if wanted) in the firmware setup; with a BAR over 16 GiB give the VM a larger 64-bit MMIO window (OVMF: -fw_cfg opt/ovmf/X-PciMmio64Mb=65536)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebar_capability_walk() {
        let mut cfg = vec![0u8; 4096];
        // 0x100: AER (0x0001) -> next 0x150; 0x150: ReBAR (0x0015), end.
        cfg[0x100..0x104].copy_from_slice(&(0x0001u32 | (1 << 16) | (0x150 << 20)).to_le_bytes());
        cfg[0x150..0x154].copy_from_slice(&(0x0015u32 | (1 << 16)).to_le_bytes());
        assert!(has_rebar(&cfg));
        cfg[0x150] = 0x0b;
        assert!(!has_rebar(&cfg));
        // A loop back to itself ends.
        cfg[0x100..0x104].copy_from_slice(&(0x0001u32 | (0x100 << 20)).to_le_bytes());
        assert!(!has_rebar(&cfg));
        assert!(!has_rebar(&cfg[..256]));
    }
}
