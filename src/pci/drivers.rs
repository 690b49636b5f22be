//! The one table of host drivers that claim a passthrough GPU or its audio function, per vendor.
//! `check` (blacklists, stale drivers, the boot GPU's framebuffer) and `persist` (softdeps that
//! make vfio-pci load first) read it; a driver added here reaches all of them.

/// Display drivers per PCI vendor (NVIDIA, AMD, Intel): the in-tree and vendor modules that bind
/// to the GPU function. `nvidia_drm`, `nvidia_modeset` and `nvidiafb` sit on top of or beside
/// `nvidia`; `xe` is Intel's driver for Xe2+ GPUs (6.8+).
pub fn gpu_drivers(vendor: u16) -> &'static [&'static str] {
    match vendor {
        0x10de => &["nouveau", "nvidia", "nvidia_drm", "nvidia_modeset", "nvidiafb"],
        0x1002 => &["amdgpu", "radeon"],
        0x8086 => &["i915", "xe"],
        _ => &[],
    }
}

/// The HDMI/DP audio function's driver (class 04 03) on every vendor's card.
pub const AUDIO_DRIVERS: &[&str] = &["snd_hda_intel"];

/// DRM drivers that replace the firmware framebuffer when they bind to the boot GPU.
pub const DRM_DRIVERS: &[&str] = &["i915", "xe", "amdgpu", "radeon", "nouveau", "nvidia_drm"];

/// Every GPU or GPU-audio driver of the table.
pub fn is_gpu_driver(module: &str) -> bool {
    let m = module.replace('-', "_");
    [0x10de, 0x1002, 0x8086]
        .iter()
        .any(|v| gpu_drivers(*v).contains(&m.as_str()))
        || AUDIO_DRIVERS.contains(&m.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_every_vendor_driver() {
        assert!(is_gpu_driver("nvidia_drm") && is_gpu_driver("xe") && is_gpu_driver("snd-hda-intel"));
        assert!(!is_gpu_driver("nvme"));
        assert_eq!(gpu_drivers(0x1234), &[] as &[&str]);
    }
}
