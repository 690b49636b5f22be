# list / groups / check on the real kernel's sysfs (q35 + intel-iommu,intremap=on), then capture
# the tree and print it on the console: tests/fixtures/host/import-guest-capture.sh turns it into
# the checked-in fixture tests/fixtures/host/guest-host_view.
vt list 00:02.0
expect_rc 0
expect_out "00:02.0 VGA compatible controller [0300]"
expect_out "Boot VGA: yes"
expect_out "ROM: yes"
vt --json list --class gpu
expect_rc 0
expect_out '"address":"0000:00:02.0"'
expect_out '"boot_vga":true'
vt list 00:06
expect_rc 0
expect_out "Bridge"
vt groups
expect_rc 0
# pcie-pci-bridge 00:06.0 with two devices behind it: one group, shared by two slots.
expect_out "shared by 2 slots: 01:01, 01:02"
# pcie-pci-bridge 00:07.0 with one device: only the bridge shares its group.
expect_out "isolated except bridges"
vt --json groups
expect_rc 0
expect_out '"schema":"vfiotool.groups/1"'
expect_out '"verdict":"shared"'
expect_out '"verdict":"isolated_except_bridges"'
# The guest has no /dev/kvm, so check fails on kvm; the IOMMU side must be all ok.
vt check
expect_rc 1
expect_out "FAIL kvm"
expect_out "ok   iommu"
expect_out "intel_iommu=on set"
expect_out "ok   interrupt_remapping  enabled (IR-"
expect_out "ok   vfio_modules"
vt capture /tmp/cap
expect_rc 0
expect_out "captured 12 PCI devices"
echo "@@ARTIFACT host_view"
tar -C /tmp/cap -cf - . | gzip -c | base64
echo "@@ARTIFACT_END"
