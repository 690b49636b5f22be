# ROM dumps through sysfs and through VFIO equal the files QEMU was given with romfile=.
S=0000:00:03.0   # edu, rom-samples/x86-efi-gop.rom
P=0000:00:04.0   # pci-testdev, Debian's efi-e1000.rom
X=0000:00:07.0   # edu, a ROM with no 55AA
vt rom dump 00:03.0 -o /tmp/s.rom
expect_rc 0
expect_same_file /tmp/s.rom /roms/sample.rom
cat $SYS/$S/rom >/dev/null 2>&1 && fail "the rom attribute is still enabled after the dump"
vt rom dump 00:04.0 -o /tmp/p.rom
expect_rc 0
expect_same_file /tmp/p.rom /roms/ipxe.rom
vt --json rom dump 00:04.0
expect_rc 0
expect_out '"schema":"vfiotool.rom-dump/1"'
expect_out '"bar_size":262144'
# An existing output is not replaced without --force.
vt rom dump 00:03.0 -o /tmp/p.rom
expect_rc 2
expect_same_file /tmp/p.rom /roms/ipxe.rom
# --via vfio needs vfio-pci.
vt rom dump 00:04.0 --via vfio -o /tmp/v.rom
expect_rc 2
expect_err "bind it first"
expect_missing /tmp/v.rom

vt bind 00:04.0
expect_rc 0
vt rom dump 00:04.0 --via vfio -o /tmp/pv.rom
expect_rc 0
expect_out "0xFF padding"
expect_same_file /tmp/pv.rom /roms/ipxe.rom
vt unbind 00:04.0
expect_rc 0
vt bind 00:03.0
expect_rc 0
vt rom dump 00:03.0 --via vfio -o /tmp/sv.rom
expect_rc 0
expect_same_file /tmp/sv.rom /roms/sample.rom
vt unbind 00:03.0
expect_rc 0
expect_driver $S none

# No 55AA: the kernel answers EIO; the dump fails cleanly and writes nothing.
vt rom dump 00:07.0 -o /tmp/x.rom
expect_rc 3
expect_err "no valid ROM"
expect_missing /tmp/x.rom
cat $SYS/$X/rom >/dev/null 2>&1 && fail "the rom attribute is still enabled after a failed dump"
vt bind 00:07.0
expect_rc 0
vt rom dump 00:07.0 --via vfio -o /tmp/xv.rom
expect_rc 3
expect_err "no valid ROM"
expect_missing /tmp/xv.rom
vt unbind 00:07.0
expect_rc 0
ls /tmp/.vfiotool-* 2>/dev/null && fail "a temporary file was left behind"
true
