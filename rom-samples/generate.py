#!/usr/bin/env python3
"""Builds vfiotool's test ROMs from scratch: no vendor code, no third-party firmware.

Every image here is synthetic: a tiny x86 stub, and a minimal PE32+ "driver" that names the GOP
(or UGA) protocol GUID. The EFI-compressed samples use the EDK2 compressor from PyPI's
`uefi-firmware` (an independent implementation of the UEFI compression algorithm), so the
project's own decoder is checked against it every time the samples are read.

    python3 rom-samples/generate.py [OUTDIR]          # default: the directory of this script
    python3 rom-samples/generate.py --big OUT.rom     # a 1 MiB ROM for the benchmarks

The output is deterministic: tests regenerate the samples and compare them byte for byte.
"""
import random
import struct
import sys
from pathlib import Path

from uefi_firmware import efi_compressor

GOP_GUID = struct.pack("<IHH8s", 0x9042A9DE, 0x23DC, 0x4A38, bytes([0x96, 0xFB, 0x7A, 0xDE, 0xD0, 0x80, 0x51, 0x6A]))
UGA_GUID = struct.pack("<IHH8s", 0x982C298B, 0xF4FA, 0x41CB, bytes([0xB8, 0x38, 0x77, 0xAA, 0x68, 0x8F, 0xB8, 0x39]))
MACHINE_X64, MACHINE_EBC = 0x8664, 0x0EBC
BLOCK = 512


def pad(data, size, fill=b"\0"):
    assert len(data) <= size, (len(data), size)
    return data + fill * (size - len(data))


def round_up(n, unit=BLOCK):
    return (n + unit - 1) // unit * unit


def pcir(vendor, device, class_code, image_len, code_type, last, revision=3, device_list_ptr=0):
    """A 0x18-byte PCI Data Structure."""
    return b"PCIR" + struct.pack(
        "<HHHHB3sHHBBH",
        vendor, device, device_list_ptr, 0x18, revision,
        class_code.to_bytes(3, "little"),
        image_len // BLOCK, 1, code_type, 0x80 if last else 0, 0,
    )


def npde(version, subimage_len, last):
    """NVIDIA's NPDE record with the UEFI version at +0x0C."""
    return b"NPDE" + struct.pack("<HHHBBI", 0x100, 0x10, subimage_len // BLOCK, 0x80 if last else 0, 0, version)


def fix_checksum(image):
    """Make the bytes sum to 0 by setting the last byte."""
    image = bytearray(image)
    image[-1] = (-sum(image[:-1])) & 0xFF
    return bytes(image)


def x86_image(vendor, device, class_code, size, last, text=b"vfiotool sample VGA BIOS", device_list=None):
    """A legacy image: 55AA, init size, a `retf` entry stub, PCIR at 0x40, some text. With
    `device_list`, a PCIR 3.0 device list (u16 ids, 0-terminated) follows the PCIR record."""
    head = bytearray(0x40)
    head[0:2] = b"\x55\xaa"
    head[2] = size // BLOCK
    head[3] = 0xCB  # retf: the init entry returns at once
    head[0x18:0x1A] = struct.pack("<H", 0x40)
    if device_list is None:
        body = bytes(head) + pcir(vendor, device, class_code, size, 0, last)
    else:
        ids = struct.pack("<%dH" % (len(device_list) + 1), *device_list, 0)
        body = bytes(head) + pcir(vendor, device, class_code, size, 0, last, device_list_ptr=0x18) + ids
    body += b"IBM VIDEO " + text
    return fix_checksum(pad(body, size))


def minimal_pe(machine, subsystem, payload):
    """A PE32+ image with one section holding `payload`."""
    file_align = 0x200
    raw = pad(payload, round_up(len(payload), file_align))
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x40)
    coff = struct.pack("<HHIIIHH", machine, 1, 0, 0, 0, 0xF0, 0x2022)
    opt = bytearray(0xF0)
    struct.pack_into("<HBB", opt, 0, 0x20B, 1, 0)
    struct.pack_into("<III", opt, 4, len(raw), 0, 0)  # code, initialized, uninitialized sizes
    struct.pack_into("<II", opt, 16, 0x1000, 0x1000)  # entry point, base of code
    struct.pack_into("<Q", opt, 24, 0)  # image base
    struct.pack_into("<II", opt, 32, 0x1000, file_align)
    struct.pack_into("<I", opt, 56, 0x1000 + round_up(len(raw), 0x1000))  # size of image
    struct.pack_into("<I", opt, 60, 0x200)  # size of headers
    struct.pack_into("<HH", opt, 68, subsystem, 0)
    struct.pack_into("<I", opt, 108, 16)  # number of data directories
    section = struct.pack("<8sIIIIIIHHI", b".text", len(payload), 0x1000, len(raw), 0x200, 0, 0, 0, 0, 0x60000020)
    headers = pad(bytes(dos) + b"PE\0\0" + coff + bytes(opt) + section, 0x200)
    return headers + raw


def driver_payload(rng, guids, strings, size):
    """Code-like filler (so compression has work to do), the protocol GUIDs and strings."""
    words = [b"mov", b"push", b"call", b"ret", b"GraphicsOutput", b"Blt", b"QueryMode", b"SetMode", b"\0\0\0\0"]
    out = bytearray(b"\xc3")
    for g in guids:
        out += g
    for s in strings:
        out += s.encode("utf-16-le") + b"\0\0"
    while len(out) < size:
        if rng.random() < 0.6:
            out += rng.choice(words)
        else:
            out += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 12)))
    return bytes(out[:size])


def efi_image(vendor, device, class_code, machine, driver, compressed, last, npde_version=None):
    """An EFI image: header, PCIR at 0x1C, optional NPDE at 0x40, the driver at 0x60."""
    data = driver
    if compressed:
        data = efi_compressor.EfiCompress(driver, len(driver))
    pe_offset = 0x60
    size = round_up(pe_offset + len(data))
    head = bytearray(0x1C)
    head[0:2] = b"\x55\xaa"
    struct.pack_into("<HIHHH", head, 2, size // BLOCK, 0x0EF1, 11, machine, 1 if compressed else 0)
    struct.pack_into("<HH", head, 0x16, pe_offset, 0x1C)
    body = bytes(head) + pcir(vendor, device, class_code, size, 3, last)
    body = pad(body, 0x40)
    if npde_version is not None:
        body += npde(npde_version, size, last)
    body = pad(body, pe_offset) + data
    return fix_checksum(pad(body, size))


def samples():
    rng = random.Random(20261124)
    gop_driver = minimal_pe(MACHINE_X64, 11, driver_payload(rng, [GOP_GUID], ["vfiotool sample GOP X64 Driver Rev.1.2.3.4"], 24000))
    uga_driver = minimal_pe(MACHINE_EBC, 11, driver_payload(rng, [UGA_GUID], ["vfiotool sample UGA EBC driver"], 20000))
    nv_driver = minimal_pe(MACHINE_X64, 11, driver_payload(rng, [GOP_GUID], ["vfiotool sample NVIDIA-style GPU UEFI Driver"], 24000))
    net_driver = minimal_pe(MACHINE_X64, 11, driver_payload(rng, [GOP_GUID], ["vfiotool sample network driver"], 16000))
    vga = (0x1234, 0x1111, 0x030000)
    nv = (0x10DE, 0x1C82, 0x030000)

    x86_last = x86_image(*vga, 0x8000, last=True)
    x86_more = x86_image(*vga, 0x8000, last=False)
    out = {}
    out["x86-only.rom"] = x86_last
    out["x86-efi-gop.rom"] = x86_more + efi_image(*vga, MACHINE_X64, gop_driver, False, True)
    out["x86-efi-gop-compressed.rom"] = x86_more + efi_image(*vga, MACHINE_X64, gop_driver, True, True)
    out["efi-uga-ebc.rom"] = x86_more + efi_image(*vga, MACHINE_EBC, uga_driver, True, True)
    out["efi-after-last.rom"] = x86_last + efi_image(*vga, MACHINE_X64, gop_driver, True, True)
    bad = bytearray(x86_last)
    bad[0x100] ^= 0x5A
    out["bad-checksum.rom"] = bytes(bad)
    full = x86_more + efi_image(*vga, MACHINE_X64, gop_driver, True, True)
    out["truncated.rom"] = full[: len(x86_more) + 0x1000]
    out["net-efi.rom"] = x86_image(0x8086, 0x100E, 0x020000, 0x4000, last=False, text=b"vfiotool sample PXE") + efi_image(
        0x8086, 0x100E, 0x020000, MACHINE_X64, net_driver, False, True
    )
    nv_x86 = x86_image(*nv, 0x8000, last=False, text=b"vfiotool sample NVIDIA-style VGA BIOS")
    nv_efi = efi_image(*nv, MACHINE_X64, nv_driver, True, True, npde_version=0x30012)
    nvgi = bytearray(0x600)
    nvgi[0:4] = b"NVGI"
    struct.pack_into("<I", nvgi, 0x14, 0x600)
    # A stray 55AA in the header must not be taken for the first image.
    nvgi[0x400:0x402] = b"\x55\xaa"
    out["nvidia-nvgi.rom"] = bytes(nvgi) + nv_x86 + nv_efi
    # Pascal-style: the image at 0xa00, which the NVGI offset field (u32 at 0x14) also names.
    out["nvidia-pascal-style.rom"] = nvgi_header(0xA00, 0xA00) + nv_x86 + nv_efi
    # Turing-style: the image at 0x4600, but the offset field holds 0x24 (as in real Turing dumps),
    # and a firmware image of code type 0xe0 (FWSEC-like) follows the EFI image and ends the chain.
    tu_x86 = x86_image(0x10DE, 0x1F82, 0x030000, 0x8000, last=False, text=b"vfiotool sample Turing-style VGA BIOS")
    tu_efi = efi_image(0x10DE, 0x1F82, 0x030000, MACHINE_X64, nv_driver, True, False, npde_version=0x5000B)
    out["nvidia-turing-style.rom"] = nvgi_header(0x4600, 0x24) + tu_x86 + tu_efi + firmware_image(0x10DE, 0x1F82, 0xE0)

    # Ampere-style: the EFI image's PCIR class is 000000 (EDK2 never reads it); vendor and device
    # zero too, as some Ampere/Ada ROMs have them.
    ga_x86 = x86_image(0x10DE, 0x2489, 0x030000, 0x8000, last=False, text=b"vfiotool sample Ampere-style VGA BIOS")
    ga_efi = efi_image(0x0000, 0x0000, 0x000000, MACHINE_X64, nv_driver, True, True, npde_version=0x60010)
    out["nvidia-ampere-style.rom"] = ga_x86 + ga_efi
    # Blackwell-style (RTX 5060 Ti dump): 0x34200 bytes of non-image data without an NVGI header,
    # two NVIDIA firmware images (code type 0xe0) before the x86 image, the EFI image class 0,
    # and a second copy of the chain after the last-image flag.
    gb_fw = firmware_image(0x10DE, 0x2D04, 0xE0, last=False)
    gb_x86 = x86_image(0x10DE, 0x2D04, 0x030000, 0x8000, last=False, text=b"vfiotool sample Blackwell-style VGA BIOS")
    gb_efi = efi_image(0x10DE, 0x2D04, 0x000000, MACHINE_X64, nv_driver, True, True, npde_version=0xA0012)
    chain = gb_fw + gb_fw + gb_x86 + gb_efi
    out["nvidia-blackwell-style.rom"] = junk_prefix(rng, 0x34200) + chain + chain
    # A romfile for another board variant: the x86 image is for 10de:2484 (the card is 10de:2489).
    out["mismatched-ids.rom"] = x86_image(0x10DE, 0x2484, 0x030000, 0x8000, last=False) + efi_image(
        0x10DE, 0x2484, 0x030000, MACHINE_X64, nv_driver, True, True, npde_version=0x60010
    )
    # PCIR 3.0 device list naming 2489 and 2486 on an image whose PCIR device is 2484.
    out["pcir3-device-list.rom"] = x86_image(0x10DE, 0x2484, 0x030000, 0x8000, last=True, device_list=[0x2489, 0x2486])
    return out


def junk_prefix(rng, size):
    """Non-image bytes (no NVGI, no 512-aligned 55AA), like the firmware area of newer dumps."""
    data = bytearray(rng.getrandbits(8) for _ in range(size))
    data[0:4] = b"\x4e\x56\xff\xff"
    for off in range(0, size, BLOCK):
        if data[off:off + 2] == b"\x55\xaa":
            data[off] = 0
    return bytes(data)


def nvgi_header(size, offset_field):
    """An NVIDIA flash-tool header of `size` bytes whose u32 at 0x14 holds `offset_field`."""
    head = bytearray(size)
    head[0:4] = b"NVGI"
    struct.pack_into("<I", head, 0x14, offset_field)
    return bytes(head)


def firmware_image(vendor, device, code_type, size=0x1000, last=True):
    """A non-x86, non-EFI image (NVIDIA's 0x70/0xe0 firmware images): 55AA, PCIR, last flag."""
    head = bytearray(0x40)
    head[0:2] = b"\x55\xaa"
    head[2] = size // BLOCK
    head[0x18:0x1A] = struct.pack("<H", 0x40)
    body = bytes(head) + pcir(vendor, device, 0x030000, size, code_type, last) + b"vfiotool sample firmware image"
    return fix_checksum(pad(body, size))


def big_rom():
    """About 1 MiB: an x86 image, a large compressed GOP driver, and 0xff padding to 1 MiB."""
    rng = random.Random(1)
    driver = minimal_pe(MACHINE_X64, 11, driver_payload(rng, [GOP_GUID], ["vfiotool bench GOP X64 Driver Rev.9.9"], 600_000))
    rom = x86_image(0x1234, 0x1111, 0x030000, 0x10000, last=False) + efi_image(
        0x1234, 0x1111, 0x030000, MACHINE_X64, driver, True, True
    )
    return pad(rom, max(1 << 20, len(rom)), b"\xff")


def main(argv):
    if len(argv) == 3 and argv[1] == "--big":
        Path(argv[2]).write_bytes(big_rom())
        return 0
    outdir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    outdir.mkdir(parents=True, exist_ok=True)
    for name, data in samples().items():
        (outdir / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
