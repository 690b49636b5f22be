# intel-iommu,intremap=off: check must fail interrupt_remapping (no IR- chips, ecap IR clear);
# with a group bound to vfio-pci, the definitive VFIO_SET_IOMMU test must be refused.
vt check
expect_rc 1
expect_out "ok   iommu"
expect_out "FAIL interrupt_remapping  not available"
expect_out "EPERM"
expect_out "not tested: no group bound to vfio-pci"
vt --json check
expect_out '"id":"interrupt_remapping","status":"fail"'
expect_out '"ready":false'
# Bind the driverless edu device by hand (not through vfiotool bind, which rolls back).
D=0000:00:03.0
echo vfio-pci > $SYS/$D/driver_override
echo $D > /sys/bus/pci/drivers_probe
expect_driver $D vfio-pci
vt check
expect_rc 1
expect_out "VFIO_SET_IOMMU refused on group"
echo $D > /sys/bus/pci/drivers/vfio-pci/unbind
echo > $SYS/$D/driver_override
expect_driver $D none
vt capture /tmp/cap
expect_rc 0
echo "@@ARTIFACT intremap_off"
tar -C /tmp/cap -cf - . | gzip -c | base64
echo "@@ARTIFACT_END"
