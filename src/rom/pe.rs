//! PE/COFF (and TE) headers of the driver inside an EFI image: just enough to check that the
//! machine and subsystem agree with the EFI image header and that the image is sane.

use serde::Serialize;

use super::reader::Reader;

/// What the PE headers say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeInfo {
    /// "pe32", "pe32+" or "te".
    pub format: &'static str,
    pub machine: u16,
    pub subsystem: u16,
    pub size_of_image: u32,
    pub sections: u16,
    pub entry_point: u32,
}

/// Parse the headers at the start of `image`. Errors name the field and its offset.
pub fn parse(image: &[u8]) -> Result<PeInfo, String> {
    let r = Reader::new(image);
    let magic = r.bytes("DOS/TE signature", 0, 2).map_err(|e| e.to_string())?;
    if magic == b"VZ" {
        return parse_te(&r);
    }
    if magic != b"MZ" {
        return Err(format!(
            "no MZ or VZ signature at 0x0 (found {:02x} {:02x})",
            magic[0], magic[1]
        ));
    }
    let lfanew = r.u32("DOS.e_lfanew", 0x3C).map_err(|e| e.to_string())? as usize;
    let sig = r.bytes("PE signature", lfanew, 4).map_err(|e| e.to_string())?;
    if sig != b"PE\0\0" {
        return Err(format!("no \"PE\\0\\0\" signature at e_lfanew {lfanew:#x}"));
    }
    let coff = lfanew + 4;
    let err = |e: super::reader::OutOfBounds| e.to_string();
    let machine = r.u16("COFF.machine", coff).map_err(err)?;
    let sections = r.u16("COFF.number_of_sections", coff + 2).map_err(err)?;
    let opt_size = r.u16("COFF.size_of_optional_header", coff + 16).map_err(err)?;
    let opt = coff + 20;
    let opt_magic = r.u16("optional.magic", opt).map_err(err)?;
    let format = match opt_magic {
        0x10B => "pe32",
        0x20B => "pe32+",
        other => {
            return Err(format!(
                "optional.magic at {opt:#x} is {other:#x}, not 0x10b or 0x20b"
            ))
        }
    };
    // Subsystem sits at the same offset (68) in the PE32 and PE32+ optional headers.
    if usize::from(opt_size) < 70 {
        return Err(format!(
            "COFF.size_of_optional_header at {:#x} is {opt_size}, too small for the subsystem field",
            coff + 16
        ));
    }
    let entry_point = r.u32("optional.address_of_entry_point", opt + 16).map_err(err)?;
    let size_of_image = r.u32("optional.size_of_image", opt + 56).map_err(err)?;
    let subsystem = r.u16("optional.subsystem", opt + 68).map_err(err)?;
    Ok(PeInfo {
        format,
        machine,
        subsystem,
        size_of_image,
        sections,
        entry_point,
    })
}

fn parse_te(r: &Reader<'_>) -> Result<PeInfo, String> {
    let err = |e: super::reader::OutOfBounds| e.to_string();
    Ok(PeInfo {
        format: "te",
        machine: r.u16("TE.machine", 2).map_err(err)?,
        sections: u16::from(r.u8("TE.number_of_sections", 4).map_err(err)?),
        subsystem: u16::from(r.u8("TE.subsystem", 5).map_err(err)?),
        entry_point: r.u32("TE.address_of_entry_point", 8).map_err(err)?,
        size_of_image: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ header: MZ, e_lfanew = 0x40, PE, COFF, optional header.
    pub fn minimal_pe(machine: u16, subsystem: u16) -> Vec<u8> {
        let mut v = vec![0u8; 0x40 + 4 + 20 + 240];
        v[0..2].copy_from_slice(b"MZ");
        v[0x3C..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        v[0x40..0x44].copy_from_slice(b"PE\0\0");
        v[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
        v[0x46..0x48].copy_from_slice(&1u16.to_le_bytes());
        v[0x54..0x56].copy_from_slice(&240u16.to_le_bytes());
        let opt = 0x58;
        v[opt..opt + 2].copy_from_slice(&0x20Bu16.to_le_bytes());
        v[opt + 56..opt + 60].copy_from_slice(&0x2000u32.to_le_bytes());
        v[opt + 68..opt + 70].copy_from_slice(&subsystem.to_le_bytes());
        v
    }

    #[test]
    fn reads_machine_subsystem_and_size() {
        let pe = parse(&minimal_pe(0x8664, 11)).unwrap();
        assert_eq!(
            (pe.format, pe.machine, pe.subsystem, pe.size_of_image),
            ("pe32+", 0x8664, 11, 0x2000)
        );
    }

    #[test]
    fn errors_name_field_and_offset() {
        let mut pe = minimal_pe(0x8664, 11);
        pe[0x3C..0x40].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let e = parse(&pe).unwrap_err();
        assert!(e.starts_with("PE signature at 0xfffffff0"), "{e}");
        assert!(parse(b"ZZ").unwrap_err().contains("no MZ or VZ signature"));
        assert!(parse(b"M").unwrap_err().contains("DOS/TE signature at 0x0"));
        let mut pe = minimal_pe(0x8664, 11);
        pe[0x58] = 0x99;
        assert!(parse(&pe)
            .unwrap_err()
            .contains("optional.magic at 0x58 is 0x299"));
    }
}
