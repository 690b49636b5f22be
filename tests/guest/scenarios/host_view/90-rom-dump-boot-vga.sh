# The boot VGA (QEMU std VGA at 00:02.0, boot_vga=1): the sysfs ROM is the shadow copy the BIOS
# left at 0xC0000. rom dump reads and analyses it and says that it is the shadow copy.
V=0000:00:02.0
[ "$(cat $SYS/$V/boot_vga)" = 1 ] || fail "$V is not the boot VGA"
vt rom dump 00:02.0 -o /tmp/vga.rom
expect_rc 0
expect_out "boot GPU (boot_vga=1)"
expect_out "shadow copy"
[ -s /tmp/vga.rom ] || fail "no ROM written"
cat $SYS/$V/rom >/dev/null 2>&1 && fail "the rom attribute is still enabled after the dump"
vt --json rom dump 00:02.0
expect_rc 0
expect_out '"firmware":"seabios"'
true
