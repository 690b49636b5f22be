//! The explanation and the fix for each cause, written from the host in front of us: which
//! driver holds the group's other devices, whether interrupt remapping is on, which framebuffer
//! holds the GPU's BAR, the memlock limit, the reset methods... When the log names a device or
//! group that this host does not have, the fix says so (the log comes from another machine or
//! from before a change) instead of guessing.

use crate::host::check::facts::{gather, Facts};
use crate::host::intremap::ir_chips;
use crate::host::{devfacts, HostRoot};
use crate::pci::address::PciAddress;
use crate::pci::device::Device;

use super::{CauseId, Found};

/// The host facts, read once per run.
pub struct Context<'a> {
    pub(crate) root: &'a HostRoot,
    pub(crate) facts: Facts,
}

impl<'a> Context<'a> {
    pub fn new(root: &'a HostRoot) -> Context<'a> {
        Context {
            root,
            facts: gather(root),
        }
    }

    fn device(&self, addr: &str) -> Option<&Device> {
        let a = PciAddress::parse(addr).ok()?;
        self.facts.devices().find(|d| d.address == a)
    }

    /// The first device the log names that this host has.
    fn named_device(&self, f: &Found) -> Option<&Device> {
        f.capture("addr")
            .into_iter()
            .chain(f.addresses.iter().map(String::as_str))
            .find_map(|a| self.device(a))
    }

    fn describe(d: &Device) -> String {
        format!(
            "{} [{:04x}:{:04x}] (driver {})",
            d.address,
            d.vendor_id,
            d.device_id,
            d.driver.as_deref().unwrap_or("none")
        )
    }

    fn not_here(&self, what: &str) -> String {
        format!(
            "{what} is not on this host{}: the log comes from another machine or from before a change; run vfiotool explain on the host that printed it",
            if self.root.is_live() { "" } else { " (the captured tree)" }
        )
    }
}

/// (explanation, fix) for one found cause.
pub fn explain_cause(f: &Found, ctx: &Context) -> (String, String) {
    match f.id {
        CauseId::NoIommu => no_iommu(ctx),
        CauseId::NoInterruptRemapping => no_interrupt_remapping(f, ctx),
        CauseId::Rmrr => rmrr(f, ctx),
        CauseId::GroupNotViable => group_not_viable(f, ctx),
        CauseId::VfioNotBound => vfio_not_bound(f, ctx),
        CauseId::DeviceBusy => device_busy(f, ctx),
        CauseId::BarReserve => bar_reserve(f, ctx),
        CauseId::DmaMapMemory => dma_map_memory(f, ctx),
        CauseId::ResetFailed => reset_failed(f, ctx),
        CauseId::RomProblem => rom_problem(f, ctx),
    }
}

fn no_iommu(ctx: &Context) -> (String, String) {
    let f = &ctx.facts;
    let expl = "the IOMMU is off (firmware VT-d/AMD-Vi disabled, or the kernel not told to use it), so devices have no IOMMU group and VFIO cannot isolate them".to_string();
    if f.iommu_active() {
        return (
            expl,
            format!(
                "this host has the IOMMU on now ({} groups): the log predates the change or comes from another host; run vfiotool check",
                f.group_count
            ),
        );
    }
    let off = ["intel_iommu=off", "amd_iommu=off", "iommu=off"]
        .into_iter()
        .find(|a| f.has_arg(a));
    let fix = match off {
        Some(arg) => f.boot.fix(&[f.iommu_on_arg()], &[arg]),
        None => format!(
            "enable VT-d (Intel) or IOMMU/AMD-Vi (AMD) in the firmware setup, then\n{}",
            f.boot.fix(&[f.iommu_on_arg(), "iommu=pt"], &[])
        ),
    };
    (expl, fix)
}

fn no_interrupt_remapping(found: &Found, ctx: &Context) -> (String, String) {
    let f = &ctx.facts;
    let mut expl = "VFIO_SET_IOMMU was refused with EPERM because the platform has no interrupt remapping; vfio_iommu_type1 refuses unless allow_unsafe_interrupts is set".to_string();
    if found.only_ambiguous {
        expl.push_str(" (\"Operation not permitted\" from attaching a group is also what an RMRR-locked device gives: look for \"RMRR\" in dmesg)");
    }
    let chips = f.interrupts.as_deref().map(ir_chips).unwrap_or_default();
    let unsafe_opt = "or, knowing a guest can then forge interrupts to the host: echo 'options vfio_iommu_type1 allow_unsafe_interrupts=1' > /etc/modprobe.d/vfio-unsafe.conf (then reload vfio_iommu_type1 or reboot)";
    let disabled_by = ["intremap=off", "nointremap"].into_iter().find(|a| f.has_arg(a));
    let fix = if let Some(arg) = disabled_by {
        format!(
            "{arg} on this host's command line turns remapping off:\n{}",
            f.boot.fix(&[], &[arg])
        )
    } else if !chips.is_empty() {
        format!(
            "this host has interrupt remapping on now ({} in /proc/interrupts): the log predates the change or comes from another host{}",
            chips.join(", "),
            if found.only_ambiguous { "; if it is this host, check dmesg for an RMRR message" } else { "" }
        )
    } else if f.allow_unsafe == Some(true) {
        "allow_unsafe_interrupts is already set on this host: the log predates it".to_string()
    } else {
        format!("enable interrupt remapping in the firmware setup (VT-d / x2APIC, AMD IOMMU), {unsafe_opt}")
    };
    (expl, fix)
}

fn rmrr(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "the firmware reserves memory for this device (an RMRR in the DMAR table, e.g. HPE iLO/shared-memory NIC features), and the Intel IOMMU driver refuses to hand such a device to a VM".to_string();
    let dev =
        ctx.named_device(found)
            .map(Context::describe)
            .unwrap_or_else(|| match found.addresses.first() {
                Some(a) => ctx.not_here(&format!("device {a}")),
                None => "the device named in the log".into(),
            });
    let relax = if ctx
        .facts
        .arg_value("intel_iommu")
        .is_some_and(|v| v.contains("relax_rmrr"))
    {
        "; intel_iommu=relax_rmrr is set, but only kernels with the relax-intel-rmrr patch honour it"
    } else {
        ""
    };
    let fix = format!(
        "{dev}{relax}\n\
         move the card to another slot (RMRRs usually cover onboard devices and some slots), or\n\
         turn off the firmware feature that reserves it (HPE ProLiant: \"HP Shared Memory features\" off for the slot/NIC with conrep), or\n\
         as a last resort run a kernel with the relax-intel-rmrr patch (github.com/Aterfax/relax-intel-rmrr)"
    );
    (expl, fix)
}

/// The group the log names (captured or via a named device).
fn group_of(found: &Found, ctx: &Context) -> Option<u32> {
    found
        .groups
        .first()
        .copied()
        .or_else(|| ctx.named_device(found).and_then(|d| d.iommu_group))
}

fn group_not_viable(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "a device in the IOMMU group is still on a host driver; VFIO only opens a group when every endpoint is on vfio-pci (or pci-stub) or has no driver; bridges do not count".to_string();
    let Some(g) = group_of(found, ctx) else {
        return (
            expl,
            "run vfiotool groups to see the group, then vfiotool bind <address> --group".into(),
        );
    };
    let Some(group) = ctx.facts.groups.groups.iter().find(|x| x.group == g) else {
        return (expl, ctx.not_here(&format!("IOMMU group {g}")));
    };
    let blockers: Vec<&Device> = group
        .endpoints()
        .filter(|d| {
            d.driver
                .as_deref()
                .is_some_and(|drv| !matches!(drv, "vfio-pci" | "pci-stub"))
        })
        .collect();
    if blockers.is_empty() {
        return (
            expl,
            format!("every endpoint of group {g} is on vfio-pci or driverless now: the VM should start; if not, run vfiotool bind with --group"),
        );
    }
    let list: Vec<String> = blockers.iter().map(|d| Context::describe(d)).collect();
    let crit: Vec<String> = group
        .host_critical
        .iter()
        .map(|h| format!("{} ({})", h.address, h.role))
        .collect();
    let mut fix = format!(
        "group {g} still has {}\nbind them too: vfiotool bind {} --group",
        list.join(", "),
        blockers[0].address
    );
    if !crit.is_empty() {
        fix.push_str(&format!(
            "\nbut the group also holds what the host needs: {}; passing it takes them from the host: move the card to a slot with its own group instead",
            crit.join(", ")
        ));
    }
    (expl, fix)
}

fn vfio_not_bound(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "/dev/vfio/N exists only while a device of group N is bound to vfio-pci: the device is still on its host driver, or vfio-pci is not loaded".to_string();
    let Some(g) = group_of(found, ctx) else {
        return (expl, "vfiotool bind <address>".into());
    };
    let Some(group) = ctx.facts.groups.groups.iter().find(|x| x.group == g) else {
        return (expl, ctx.not_here(&format!("IOMMU group {g}")));
    };
    let list: Vec<String> = group.endpoints().map(Context::describe).collect();
    let first = group
        .endpoints()
        .next()
        .map(|d| d.address.to_string())
        .unwrap_or_default();
    (
        expl,
        format!("group {g}: {}\nvfiotool bind {first} --group", list.join(", ")),
    )
}

/// Processes holding `/dev/vfio/<g>` (live host only: a log explains the host it came from).
fn holders(ctx: &Context, g: u32) -> Vec<String> {
    if !ctx.root.is_live() {
        return Vec::new();
    }
    crate::host::holders::of_nodes(ctx.root, &[format!("/dev/vfio/{g}")], 8)
        .iter()
        .map(|h| format!("pid {} ({})", h.pid, h.comm))
        .collect()
}

fn device_busy(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "another user holds the device or its group: a running VM (QEMU keeps /dev/vfio/N open), another tool, or a host driver that will not let go".to_string();
    if let (Some(drv), Some(dom)) = (found.capture("driver"), found.capture("domain")) {
        return (
            expl,
            format!("libvirt says driver {drv} / domain {dom} has it: virsh shutdown {dom} (or remove the hostdev from one of the two domains)"),
        );
    }
    if let Some(vmid) = found.capture("vmid") {
        return (
            expl,
            format!("Proxmox VM {vmid} has it: qm stop {vmid}, or map the device to one VM only"),
        );
    }
    let Some(g) = group_of(found, ctx) else {
        return (
            expl,
            "stop the VM that uses the device (virsh list / qm list), then retry".into(),
        );
    };
    let who = holders(ctx, g);
    let fix = if !who.is_empty() {
        format!(
            "/dev/vfio/{g} is open by {}: stop that VM or process",
            who.join(", ")
        )
    } else if ctx.root.is_live() {
        format!("nothing holds /dev/vfio/{g} now: the VM that held it has ended; start yours again")
    } else {
        format!("find who holds the group on that host: ls -l /proc/*/fd 2>/dev/null | grep /dev/vfio/{g}")
    };
    (expl, fix)
}

fn bar_reserve(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "another driver owns part of the GPU's memory BAR, nearly always the firmware framebuffer (efifb/simplefb/vesafb) of the boot GPU, so vfio-pci cannot reserve it".to_string();
    let f = &ctx.facts;
    let release = f.boot.fix(&["initcall_blacklist=sysfb_init"], &[]);
    let old_kernel = f.version.is_some_and(|v| v < (5, 15));
    let release = if old_kernel {
        release.replacen(
            "initcall_blacklist=sysfb_init",
            "video=efifb:off video=vesafb:off",
            1,
        )
    } else {
        release
    };
    let Some(dev) = ctx.named_device(found) else {
        let what = found.addresses.first().map(|a| format!("device {a}"));
        let head = what.map(|w| ctx.not_here(&w)).unwrap_or_default();
        return (
            expl,
            format!("{head}\nrelease the boot framebuffer:\n{release}")
                .trim_start()
                .to_string(),
        );
    };
    let fbs = f
        .iomem
        .as_deref()
        .map(devfacts::iomem_framebuffers)
        .unwrap_or_default();
    let bars = devfacts::bars(ctx.root, &dev.address);
    let hit: Vec<String> = fbs
        .iter()
        .filter_map(|(s, e, name)| {
            let b = bars.iter().find(|b| b.overlaps(*s, *e))?;
            Some(format!("{name} at {s:#x}-{e:#x} sits in BAR {}", b.index))
        })
        .collect();
    let who = if !hit.is_empty() {
        format!("{}: {}", dev.address, hit.join("; "))
    } else if dev.boot_vga == Some(true) {
        format!(
            "{} is the boot GPU{}",
            dev.address,
            if fbs.is_empty() {
                ""
            } else {
                " and a firmware framebuffer is active"
            }
        )
    } else {
        format!("{} is not the boot GPU and no framebuffer overlaps its BARs now (as root /proc/iomem shows real addresses)", dev.address)
    };
    (expl, format!("{who}\nrelease it at boot:\n{release}"))
}

/// `Max locked memory` of this process from /proc/self/limits (soft limit text).
fn memlock_limit(ctx: &Context) -> Option<String> {
    let text = ctx.root.read_proc("self/limits").ok().flatten()?;
    let line = text.lines().find(|l| l.starts_with("Max locked memory"))?;
    let soft = line.split_whitespace().nth(3)?;
    Some(if soft == "unlimited" {
        "unlimited".into()
    } else {
        soft.parse::<u64>().map(|b| format!("{} KiB", b / 1024)).ok()?
    })
}

fn mem_available(ctx: &Context) -> Option<u64> {
    let text = ctx.root.read_proc("meminfo").ok().flatten()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
}

fn dma_map_memory(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "VFIO pins all of the guest's RAM for DMA; pinning failed with ENOMEM: the QEMU process's locked-memory limit (RLIMIT_MEMLOCK) is lower than the guest RAM, or the host has not that much free memory".to_string();
    let mut facts = Vec::new();
    if let Some(l) = found.capture("limit").and_then(|v| v.parse::<u64>().ok()) {
        facts.push(format!("the log's limit was {} KiB", l / 1024));
    }
    if let Some(m) = memlock_limit(ctx) {
        facts.push(format!("this shell's memlock limit is {m}"));
    }
    if let Some(a) = mem_available(ctx) {
        facts.push(format!("MemAvailable {} MiB", a / 1024));
    }
    let fix = format!(
        "{}\nplain QEMU: ulimit -l unlimited before starting it (or LimitMEMLOCK=infinity in its systemd unit; docker: --ulimit memlock=-1)\nlibvirt and Proxmox raise the limit themselves for hostdev VMs: then the guest RAM is more than the host can pin: give the VM less memory or free some (hugepages count once)",
        if facts.is_empty() { "memlock limit not readable here".to_string() } else { facts.join("; ") }
    );
    (expl, fix)
}

fn reset_failed(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "the device did not come back from a reset or from a low-power state (D3cold), so the next VM start finds it dead: typical of GPUs without a working reset (AMD reset bug) and of devices idled into D3cold".to_string();
    let Some(dev) = ctx.named_device(found) else {
        let head = found
            .addresses
            .first()
            .map(|a| ctx.not_here(&format!("device {a}")))
            .unwrap_or_else(|| "the log names no device".into());
        return (
            expl,
            format!("{head}\nfor an AMD GPU: load vendor-reset and echo device_specific > /sys/bus/pci/devices/<addr>/reset_method; to stop D3cold: options vfio-pci disable_idle_d3=1"),
        );
    };
    let mut steps = vec![format!(
        "{}: reset methods {}",
        Context::describe(dev),
        if dev.reset_methods.is_empty() {
            "none listed".to_string()
        } else {
            dev.reset_methods.join(" ")
        }
    )];
    if let Some(fam) = devfacts::amd_reset_bug_family(dev.vendor_id, dev.device_id) {
        let loaded = ctx.root.sysfs.module_dir("vendor_reset").exists();
        steps.push(format!(
            "{fam} has the AMD reset bug: {}; then echo device_specific > /sys/bus/pci/devices/{}/reset_method (5.15+ kernels need it)",
            if loaded { "vendor-reset is loaded" } else { "install and load vendor-reset (modprobe vendor-reset)" },
            dev.address
        ));
    }
    if found.capture("state").is_some_and(|s| s == "D3cold")
        || devfacts::d3cold_allowed(ctx.root, &dev.address) == Some(true)
    {
        steps.push(format!(
            "keep it out of D3cold: echo 0 > /sys/bus/pci/devices/{}/d3cold_allowed, and options vfio-pci disable_idle_d3=1 in /etc/modprobe.d/vfio.conf (rebuild the initramfs)",
            dev.address
        ));
    }
    if found.capture("method").is_some_and(|m| m == "device_specific") {
        steps.push("the kernel has no device-specific reset for it: vendor-reset is not loaded or does not know this device ID".into());
    }
    (expl, steps.join("\n"))
}

fn rom_problem(found: &Found, ctx: &Context) -> (String, String) {
    let expl = "QEMU could not give the guest a usable option ROM: the device's ROM is unreadable or invalid (shadowed boot-GPU ROM, iGPU without a ROM BAR), or the romfile= path is wrong".to_string();
    if let Some(rom) = found.capture("romfile") {
        let path = ctx.root.path(rom);
        let state = match std::fs::metadata(&path) {
            Ok(m) if m.len() == 0 => format!("{rom} exists but is empty"),
            Ok(_) => format!(
                "{rom} exists here: check that the QEMU user can read it (AppArmor/SELinux for libvirt)"
            ),
            Err(_) => format!("{rom} does not exist on this host"),
        };
        return (
            expl,
            format!("{state}\nProxmox looks for romfile= relative to /usr/share/kvm/; libvirt <rom file='...'/> needs an absolute path\ncheck the file: vfiotool rom parse {rom}"),
        );
    }
    let Some(dev) = ctx.named_device(found) else {
        return (expl, "dump the ROM with vfiotool rom dump <address> -o gpu.rom, check it with vfiotool rom parse gpu.rom, pass it with romfile=".into());
    };
    let mut fix = Vec::new();
    if dev.vendor_id == 0x8086 && dev.is_display() {
        fix.push(format!("{} is an Intel iGPU: it has no ROM BAR, so the 0xaa55 message is expected; use an IGD ROM file only if the guest needs one", dev.address));
    } else if dev.boot_vga == Some(true) {
        fix.push(format!("{} is the boot GPU: its ROM is the shadowed copy; dump a clean ROM (vfiotool rom dump {0} -o gpu.rom, or from another boot GPU) and pass romfile=", dev.address));
    } else {
        fix.push(format!("vfiotool rom dump {} -o gpu.rom && vfiotool rom parse gpu.rom; if it is bad, pass a good file with romfile=, or rombar=0 to give none", dev.address));
    }
    (expl, fix.join("\n"))
}
