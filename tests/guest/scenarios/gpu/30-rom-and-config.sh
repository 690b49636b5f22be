# The card's ROM (QEMU romfile= rom-samples/x86-efi-gop.rom) dumps to the same bytes, and the
# VM configuration for one of its functions names both (the whole card, as bind takes it).
V=0000:01:00.0; A=0000:01:00.1
vt rom dump 01:00.0 -o /tmp/card.rom
expect_rc 0
expect_same_file /tmp/card.rom /roms/sample.rom
expect_driver $V bochs-drm
vt config 01:00.0 --for qemu
expect_rc 0
expect_out "host=$V"
expect_out "host=$A"
expect_no_out "also holds"
vt config 01:00.0 --for proxmox --vmid 100
expect_rc 0
expect_out "hostpci0: 0000:01:00,"
