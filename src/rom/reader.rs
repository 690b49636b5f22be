//! A small bounds-checked little-endian reader over untrusted bytes.
//!
//! Every read names the field it was reading, so an error says what was read and where
//! ("PCIR.image_length at 0x1c: needs 2 bytes, ROM ends at 0x1d") instead of "invalid".

use std::fmt;

/// A read that ran past the end of the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfBounds {
    pub field: &'static str,
    pub offset: usize,
    pub wanted: usize,
    pub available: usize,
}

impl fmt::Display for OutOfBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:#x}: needs {} byte(s), data ends at {:#x}",
            self.field, self.offset, self.wanted, self.available
        )
    }
}

impl std::error::Error for OutOfBounds {}

/// Bounds-checked view of a byte slice. Offsets are absolute within the slice.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn bytes(&self, field: &'static str, offset: usize, len: usize) -> Result<&'a [u8], OutOfBounds> {
        offset
            .checked_add(len)
            .and_then(|end| self.data.get(offset..end))
            .ok_or(OutOfBounds {
                field,
                offset,
                wanted: len,
                available: self.data.len(),
            })
    }

    pub fn u8(&self, field: &'static str, offset: usize) -> Result<u8, OutOfBounds> {
        Ok(self.bytes(field, offset, 1)?[0])
    }

    pub fn u16(&self, field: &'static str, offset: usize) -> Result<u16, OutOfBounds> {
        let b = self.bytes(field, offset, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&self, field: &'static str, offset: usize) -> Result<u32, OutOfBounds> {
        let b = self.bytes(field, offset, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The sub-slice `offset..offset+len`, clamped to the end of the data (for images that the
    /// file truncates: the caller reports the truncation, the analysis goes on with what is there).
    pub fn clamped(&self, offset: usize, len: usize) -> &'a [u8] {
        let start = offset.min(self.data.len());
        let end = offset.saturating_add(len).min(self.data.len());
        &self.data[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_rejects_past_end() {
        let r = Reader::new(&[0x55, 0xaa, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(r.u16("sig", 0).unwrap(), 0xaa55);
        assert_eq!(r.u32("x", 2).unwrap(), 0x0403_0201);
        let e = r.u32("PCIR.vendor", 4).unwrap_err();
        assert_eq!((e.offset, e.wanted, e.available), (4, 4, 6));
        assert_eq!(
            e.to_string(),
            "PCIR.vendor at 0x4: needs 4 byte(s), data ends at 0x6"
        );
        assert!(r.bytes("huge", usize::MAX, 2).is_err());
        assert_eq!(r.clamped(4, 100), &[0x03, 0x04]);
        assert_eq!(r.clamped(100, 4), &[] as &[u8]);
    }
}
