//! vfiotool: check a Linux host for VFIO PCI passthrough, bind devices to vfio-pci and prove the
//! group is usable, and analyse GPU option ROMs (image chain, EFI decompression, GOP verdict).
//!
//! The binary in `src/main.rs` is a thin shell around this library: it parses the command line
//! (`cli`), calls a command in `commands`, prints the report through `output`, and maps the
//! error kind (`error`) to the documented exit code.

// Only src/vfio/ioctl.rs and src/vfio/writer.rs (the fork of a sysfs writer) may use `unsafe`
// (each allows it for itself, each block with a SAFETY note).
#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod explain;
pub mod fsutil;
pub mod host;
pub mod output;
pub mod pci;
pub mod rom;
pub mod vfio;
