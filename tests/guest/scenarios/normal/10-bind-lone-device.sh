# A device with no driver (QEMU edu at 00:03.0) in a group of its own: bind by short address,
# proof, record, unbind; then the slot form with --json --open-device.
D=0000:00:03.0
expect_driver $D none
G=$(group_of $D)
vt bind 00:03.0
expect_rc 0
expect_out "bound to vfio-pci and proven"
expect_out "VFIO_SET_IOMMU"
expect_driver $D vfio-pci
expect_override $D vfio-pci
expect_exists /dev/vfio/$G
expect_exists /run/vfiotool/devices/$D.json
grep -q '"driver": null' /run/vfiotool/devices/$D.json || fail "record does not say 'no driver': $(cat /run/vfiotool/devices/$D.json)"
vt unbind 00:03.0
expect_rc 0
expect_driver $D none
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
expect_missing /dev/vfio/$G

vt --json bind 00:03 --open-device
expect_rc 0
expect_out '"schema":"vfiotool.bind/1"'
expect_out '"viable":true'
expect_out '"num_regions":9'
expect_out '"rom_region_size":65536'
expect_driver $D vfio-pci
vt restore 0000:00:03
expect_rc 0
expect_driver $D none
expect_override $D "(null)"
