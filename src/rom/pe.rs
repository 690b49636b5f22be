//! PE/COFF (and TE) headers of the driver inside an EFI image: just enough to check that the
//! machine and subsystem agree with the EFI image header and that the image is sane.

use serde::Serialize;

use super::reader::{OutOfBounds, Reader};

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

/// Why the headers of a driver could not be read. The messages name the field and its offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeError {
    /// A header field lies past the end of the data.
    #[error(transparent)]
    Cut(#[from] OutOfBounds),
    #[error("no MZ or VZ signature at 0x0 (found {0:02x} {1:02x})")]
    NoSignature(u8, u8),
    #[error("no \"PE\\0\\0\" signature at e_lfanew {0:#x}")]
    NoPeSignature(usize),
    #[error("optional.magic at {at:#x} is {value:#x}, not 0x10b or 0x20b")]
    OptionalMagic { at: usize, value: u16 },
    #[error("COFF.size_of_optional_header at {at:#x} is {size}, too small for the subsystem field")]
    OptionalHeaderTooSmall { at: usize, size: u16 },
}

/// Parse the headers at the start of `image`.
pub fn parse(image: &[u8]) -> Result<PeInfo, PeError> {
    let r = Reader::new(image);
    let magic = r.bytes("DOS/TE signature", 0, 2)?;
    if magic == b"VZ" {
        return parse_te(&r);
    }
    if magic != b"MZ" {
        return Err(PeError::NoSignature(magic[0], magic[1]));
    }
    let lfanew = r.u32("DOS.e_lfanew", 0x3C)? as usize;
    if r.bytes("PE signature", lfanew, 4)? != b"PE\0\0" {
        return Err(PeError::NoPeSignature(lfanew));
    }
    let coff = lfanew + 4;
    let machine = r.u16("COFF.machine", coff)?;
    let sections = r.u16("COFF.number_of_sections", coff + 2)?;
    let opt_size = r.u16("COFF.size_of_optional_header", coff + 16)?;
    let opt = coff + 20;
    let format = match r.u16("optional.magic", opt)? {
        0x10B => "pe32",
        0x20B => "pe32+",
        value => return Err(PeError::OptionalMagic { at: opt, value }),
    };
    // Subsystem sits at the same offset (68) in the PE32 and PE32+ optional headers.
    if usize::from(opt_size) < 70 {
        return Err(PeError::OptionalHeaderTooSmall {
            at: coff + 16,
            size: opt_size,
        });
    }
    Ok(PeInfo {
        format,
        machine,
        subsystem: r.u16("optional.subsystem", opt + 68)?,
        size_of_image: r.u32("optional.size_of_image", opt + 56)?,
        sections,
        entry_point: r.u32("optional.address_of_entry_point", opt + 16)?,
    })
}

fn parse_te(r: &Reader<'_>) -> Result<PeInfo, PeError> {
    Ok(PeInfo {
        format: "te",
        machine: r.u16("TE.machine", 2)?,
        sections: u16::from(r.u8("TE.number_of_sections", 4)?),
        subsystem: u16::from(r.u8("TE.subsystem", 5)?),
        entry_point: r.u32("TE.address_of_entry_point", 8)?,
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
        let e = parse(&pe).unwrap_err().to_string();
        assert!(e.starts_with("PE signature at 0xfffffff0"), "{e}");
        assert_eq!(
            parse(b"ZZ").unwrap_err().to_string(),
            "no MZ or VZ signature at 0x0 (found 5a 5a)"
        );
        assert!(parse(b"M")
            .unwrap_err()
            .to_string()
            .contains("DOS/TE signature at 0x0"));
        let mut bad_pe = minimal_pe(0x8664, 11);
        bad_pe[0x41] = b'X';
        assert_eq!(
            parse(&bad_pe).unwrap_err().to_string(),
            "no \"PE\\0\\0\" signature at e_lfanew 0x40"
        );
        let mut pe = minimal_pe(0x8664, 11);
        pe[0x58] = 0x99;
        assert_eq!(
            parse(&pe).unwrap_err(),
            PeError::OptionalMagic {
                at: 0x58,
                value: 0x299
            }
        );
    }
}
