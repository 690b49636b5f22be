//! `rom extract`: take a ROM apart. Every image (reachable or not) becomes its own file, every
//! EFI driver is decompressed into a `.efi` PE file, and a manifest lists them. This module only
//! decides names and contents; `commands::rom_build` writes the directory atomically.

use serde::Serialize;

use super::{analyze, efi, RomAnalysis, RomError};

/// The JSON schema name of the manifest.
pub const SCHEMA: &str = "vfiotool.rom-extract/1";
/// The manifest's file name inside the output directory.
pub const MANIFEST: &str = "manifest.json";

/// One file to write: its name in the output directory and its bytes.
#[derive(Debug, Clone)]
pub struct OutFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The EFI part of a manifest entry.
#[derive(Debug, Clone, Serialize)]
pub struct EfiEntry {
    pub machine: u16,
    pub machine_name: &'static str,
    pub subsystem: u16,
    pub subsystem_name: &'static str,
    pub compressed: bool,
    /// The decompressed driver (a PE file), when it could be read.
    pub driver_file: Option<String>,
    pub driver_size: Option<usize>,
    /// Why there is no driver file.
    pub driver_error: Option<String>,
}

/// One image in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ImageEntry {
    pub index: usize,
    pub file: String,
    pub offset: usize,
    /// Bytes in the file (the PCIR image length, or less when the ROM is truncated).
    pub size: usize,
    pub code_type: u8,
    pub code_type_name: &'static str,
    pub vendor_id: u16,
    pub device_id: u16,
    pub class_code: u32,
    pub last: bool,
    pub reachable: bool,
    pub truncated: bool,
    pub checksum_ok: bool,
    pub efi: Option<EfiEntry>,
}

/// What came before the first image (an NVIDIA dump header), kept as its own file.
#[derive(Debug, Clone, Serialize)]
pub struct PrefixEntry {
    pub file: String,
    pub kind: &'static str,
    pub bytes: usize,
}

/// The manifest (`vfiotool.rom-extract/1`), written as `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub schema: &'static str,
    pub input: String,
    pub size: usize,
    pub prefix: Option<PrefixEntry>,
    pub images: Vec<ImageEntry>,
    /// Bytes after the end of the last image found (padding in most dumps); not extracted.
    pub trailing_bytes: usize,
    /// The firmware verdict of the input ("ovmf", "seabios", "none").
    pub firmware: &'static str,
}

/// The files and the manifest for `bytes` (named `input` in the manifest).
pub fn extract(bytes: &[u8], input: &str) -> Result<(Manifest, Vec<OutFile>, RomAnalysis), RomError> {
    let analysis = analyze(bytes)?;
    let mut files = Vec::new();
    let prefix = analysis.prefix.as_ref().map(|p| {
        let file = format!("prefix-{}.bin", p.kind);
        files.push(OutFile {
            name: file.clone(),
            bytes: bytes[..analysis.prefix_bytes].to_vec(),
        });
        PrefixEntry {
            file,
            kind: p.kind,
            bytes: p.bytes,
        }
    });
    let mut images = Vec::new();
    let mut end = analysis.prefix_bytes;
    for image in &analysis.images {
        let stop = image.offset.saturating_add(image.length).min(bytes.len());
        let data = &bytes[image.offset.min(stop)..stop];
        end = end.max(stop);
        let stem = format!(
            "{:02}-{}-{:04x}-{:04x}{}",
            image.index,
            image.code_type_name,
            image.vendor_id,
            image.device_id,
            if image.reachable { "" } else { "-unreachable" }
        );
        let file = format!("{stem}.rom");
        files.push(OutFile {
            name: file.clone(),
            bytes: data.to_vec(),
        });
        let efi = image.efi.as_ref().map(|e| {
            let (driver_file, driver_size, driver_error) = match efi::driver_bytes(data) {
                Ok(driver) => {
                    let name = format!("{stem}-{}.efi", e.machine_name);
                    let size = driver.len();
                    files.push(OutFile {
                        name: name.clone(),
                        bytes: driver.into_owned(),
                    });
                    (Some(name), Some(size), None)
                }
                Err(why) => (None, None, Some(why.to_string())),
            };
            EfiEntry {
                machine: e.machine,
                machine_name: e.machine_name,
                subsystem: e.subsystem,
                subsystem_name: e.subsystem_name,
                compressed: e.compressed,
                driver_file,
                driver_size,
                driver_error,
            }
        });
        images.push(ImageEntry {
            index: image.index,
            file,
            offset: image.offset,
            size: data.len(),
            code_type: image.code_type,
            code_type_name: image.code_type_name,
            vendor_id: image.vendor_id,
            device_id: image.device_id,
            class_code: image.class_code,
            last: image.last,
            reachable: image.reachable,
            truncated: image.truncated,
            checksum_ok: image.checksum_ok,
            efi,
        });
    }
    let manifest = Manifest {
        schema: SCHEMA,
        input: input.to_string(),
        size: bytes.len(),
        prefix,
        images,
        trailing_bytes: bytes.len().saturating_sub(end),
        firmware: analysis.verdict.firmware,
    };
    Ok((manifest, files, analysis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rom::build::tests::{efi_pe, x86_image};
    use crate::rom::build::{build, BuildRequest, Part, PartKind};

    #[test]
    fn names_carry_index_type_and_ids_and_drivers_come_out_whole() {
        let pe = efi_pe(0x8664, 11, true);
        let req = BuildRequest {
            parts: vec![
                Part::new(PartKind::Image, "x86", x86_image(0x1002, 0x67df, 2)),
                Part::new(PartKind::Efi, "pe", pe.clone()),
            ],
            compress: true,
            ..BuildRequest::default()
        };
        let built = build(&req).unwrap();
        let (m, files, _) = extract(&built.output, "t.rom").unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "00-x86-1002-67df.rom",
                "01-efi-1002-67df.rom",
                "01-efi-1002-67df-x64.efi"
            ]
        );
        assert_eq!(files[2].bytes, pe);
        assert_eq!(m.images[1].efi.as_ref().unwrap().driver_size, Some(pe.len()));
        assert!(m.images[1].last && !m.images[0].last);
        assert_eq!(m.trailing_bytes, 0);
    }

    #[test]
    fn refuses_what_is_not_a_rom() {
        assert!(extract(b"", "e").is_err());
        assert!(extract(&[0u8; 4096], "z").is_err());
    }
}
