//! The host's PCI devices as sysfs shows them: addresses, device snapshots, IOMMU groups and
//! their isolation verdicts, names from `pci.ids`, kernel modules from `modules.alias`.
//!
//! Owns: every read of `/sys/bus/pci`, `/sys/kernel/iommu_groups` and `/sys/class/iommu`, through
//! a [`sysfs::SysfsRoot`] that can point at a captured or synthetic tree instead of `/sys`. It
//! also offers [`sysfs::write_attr`] (a single write that names the path in its error) for the
//! bind flow; deciding *what* to write is `vfio/`'s job, not this module's.
//! Must not: parse ROMs (`rom/`), issue ioctls (`vfio/ioctl.rs`), read `/proc` or `/etc`
//! (`host/`).
//!
//! Typical use:
//! ```no_run
//! use vfiotool::pci::{address::AddressSpec, groups::Groups, sysfs::SysfsRoot};
//! let root = SysfsRoot::live();
//! let groups = Groups::read(&root)?;
//! let spec = AddressSpec::parse("01:00").expect("valid address");
//! for g in &groups.groups {
//!     if g.devices.iter().any(|d| spec.matches(&d.address)) {
//!         println!("group {} is {}", g.group, g.verdict.name());
//!     }
//! }
//! # Ok::<(), vfiotool::error::PathError>(())
//! ```

pub mod address;
pub mod device;
pub mod drivers;
pub mod groups;
pub mod modules;
pub mod names;
pub mod sysfs;

pub use address::{AddressSpec, PciAddress, SlotAddress};
pub use device::Device;
pub use groups::{Groups, IommuGroup, Verdict};
pub use sysfs::SysfsRoot;
