# With a group bound to vfio-pci and interrupt remapping on, check runs the definitive test:
# VFIO_SET_IOMMU on that group succeeds. No device fd is opened (no reset).
D=0000:00:03.0
expect_driver $D none
vt check
expect_out "ok   interrupt_remapping"
expect_out "not tested: no group bound to vfio-pci"
vt bind 00:03.0
expect_rc 0
vt check
expect_out "ok   interrupt_remapping  working: VFIO_SET_IOMMU succeeded on group"
vt unbind 00:03.0
expect_rc 0
expect_driver $D none
