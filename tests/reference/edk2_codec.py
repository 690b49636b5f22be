#!/usr/bin/env python3
"""Reference EFI/Tiano (de)compression through EDK2's C code, as packaged in PyPI `uefi-firmware`.

Used by tests/decompress_reference.rs and benches/compare_decompress.py; it is the independent
implementation our decoder is checked against, so it must never fall back to anything else.

    edk2_codec.py check          exit 0 and print the module path when the reference is usable
    edk2_codec.py batch DIR      for each DIR/NAME.bin write NAME.bin.efi and NAME.bin.tiano
                                 (EfiCompress / TianoCompress output) and NAME.bin.efi.edk2 and
                                 NAME.bin.tiano.edk2 (EfiDecompress / TianoDecompress of those);
                                 for each DIR/NAME.efi-stream (a stream found elsewhere, e.g. in
                                 a ROM) write NAME.efi-stream.edk2, or NAME.efi-stream.err when
                                 EDK2 refuses it
"""
import os
import sys

MISSING = (
    "the EDK2 reference compressor (python3 module uefi_firmware.efi_compressor, PyPI "
    "uefi-firmware 1.16) is not available: run `bash tests/install-deps.sh`"
)


def load():
    try:
        import uefi_firmware.efi_compressor as codec  # noqa: PLC0415
    except ImportError as e:
        sys.exit(f"edk2_codec: {MISSING} ({e})")
    return codec


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def batch(codec, folder):
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            data = f.read()
        if name.endswith(".bin"):
            # The module's functions take the buffer and its length.
            efi = codec.EfiCompress(data, len(data))
            tiano = codec.TianoCompress(data, len(data))
            write(path + ".efi", efi)
            write(path + ".tiano", tiano)
            write(path + ".efi.edk2", codec.EfiDecompress(efi, len(efi)))
            write(path + ".tiano.edk2", codec.TianoDecompress(tiano, len(tiano)))
        elif name.endswith(".efi-stream"):
            try:
                write(path + ".edk2", codec.EfiDecompress(data, len(data)))
            except Exception as e:  # the module raises a bare Exception on refusal
                write(path + ".err", str(e).encode())


def main(argv):
    if len(argv) >= 2 and argv[1] == "check":
        print(load().__file__)
        return 0
    if len(argv) == 3 and argv[1] == "batch":
        batch(load(), argv[2])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
