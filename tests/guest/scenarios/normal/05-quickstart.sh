# The README's quick start, run on the real kernel: check -> groups -> rom dump -> rom parse ->
# bind -> config -> unbind. Its output is what the README shows.
S=0000:00:03.0   # edu with rom-samples/x86-efi-gop.rom
vt check
expect_out "ok   iommu"
expect_out "ok   interrupt_remapping"
vt groups
expect_rc 0
expect_out "IOMMU group"
vt rom dump 00:03.0 -o /tmp/qs.rom
expect_rc 0
vt rom parse /tmp/qs.rom
expect_rc 0
expect_out "OVMF (q35) will show pre-boot output"
vt bind 00:03.0
expect_rc 0
expect_driver $S vfio-pci
vt config 00:03.0 --for qemu --rom /tmp/qs.rom
expect_rc 0
expect_out "vfio-pci,host=$S"
vt unbind 00:03.0
expect_rc 0
expect_driver $S none
