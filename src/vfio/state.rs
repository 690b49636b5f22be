//! Bind records under `/run/vfiotool/devices/BDF.json`: the driver and driver_override a device
//! had before `bind`, so `unbind` (and a rollback) can give it back. Written atomically before
//! the first sysfs write to that device; removed once the device is back. `/run` is a tmpfs, so
//! records do not outlive a reboot, and neither does the binding they describe.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::host::Host;
use crate::error::{Error, Result};
use crate::pci::address::PciAddress;

/// What a device had before vfiotool touched it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    pub address: String,
    /// Driver bound before `bind` (None: no driver).
    pub driver: Option<String>,
    /// driver_override before `bind` (None: clear).
    pub driver_override: Option<String>,
}

pub const RECORD_SCHEMA: &str = "vfiotool.bind-record/1";

pub fn dir(host: &Host) -> PathBuf {
    host.path("/run/vfiotool/devices")
}

pub fn path(host: &Host, addr: &PciAddress) -> PathBuf {
    dir(host).join(format!("{addr}.json"))
}

/// Whether `addr` has a record. A stat that fails for another reason than "not found" is an
/// error naming the file: an unreadable record never counts as "none".
pub fn exists(host: &Host, addr: &PciAddress) -> std::result::Result<bool, crate::error::PathError> {
    let p = path(host, addr);
    p.try_exists().map_err(|source| crate::error::PathError {
        path: p.clone(),
        action: "looking up the bind record",
        source,
    })
}

/// The record for `addr`, if any. A corrupt record is an error (it names the file to remove).
pub fn load(host: &Host, addr: &PciAddress) -> Result<Option<Record>> {
    let p = path(host, addr);
    let text = match fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&p, "read bind record", &e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::bad_input(format!("{}: not a bind record ({e}); remove it", p.display())))
}

/// Write the record atomically (temp file, fsync, rename).
pub fn save(host: &Host, rec: &Record) -> Result<PathBuf> {
    let addr = PciAddress::parse(&rec.address).map_err(|e| Error::bad_input(e.to_string()))?;
    let d = dir(host);
    fs::create_dir_all(&d).map_err(|e| Error::io(&d, "create directory", &e))?;
    let p = path(host, &addr);
    let json = serde_json::to_vec_pretty(rec).map_err(|e| Error::system(e.to_string()))?;
    crate::fsutil::atomic_write(&p, &json, true)?;
    Ok(p)
}

/// Every device that has a record, sorted (`unbind --all`). Entries that are not records of a
/// PCI address are left alone.
pub fn recorded(host: &Host) -> Result<Vec<PciAddress>> {
    let d = dir(host);
    let names = crate::pci::sysfs::dir_names(&d).map_err(Error::from)?;
    let mut out: Vec<PciAddress> = names
        .iter()
        .filter_map(|n| n.strip_suffix(".json"))
        .filter_map(|n| PciAddress::parse(n).ok())
        .collect();
    out.sort();
    Ok(out)
}

pub fn remove(host: &Host, addr: &PciAddress) -> Result<()> {
    let p = path(host, addr);
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&p, "remove bind record", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_remove_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let host = Host::at(t.path());
        let a = PciAddress::new(0, 1, 0, 0);
        assert_eq!(load(&host, &a).unwrap(), None);
        let rec = Record {
            schema: RECORD_SCHEMA.into(),
            address: a.to_string(),
            driver: Some("nvme".into()),
            driver_override: None,
        };
        let p = save(&host, &rec).unwrap();
        assert!(p.ends_with("run/vfiotool/devices/0000:01:00.0.json"));
        assert_eq!(load(&host, &a).unwrap(), Some(rec));
        remove(&host, &a).unwrap();
        assert_eq!(load(&host, &a).unwrap(), None);
        fs::write(&p, "{").unwrap();
        assert!(load(&host, &a).unwrap_err().message.contains("remove it"));
    }
}
