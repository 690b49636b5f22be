//! Option ROM analysis: the image chain, PCIR and NPDE records, EFI images, EFI decompression,
//! PE headers, the GOP verdict, and the NVIDIA header cut.
//!
//! Everything here works on bytes already in memory. `rom/` never touches sysfs or devices (the
//! `vfio` and `pci` modules fetch the bytes); it never panics on any input, and every loop over
//! the data has a bound.

pub mod decompress;
pub mod reader;
