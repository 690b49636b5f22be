# A shared group (pcie-pci-bridge with an edu and an nvme): the edu forced onto vfio-pci while its
# sibling stays on nvme. vfio-pci binds it and its cdev appears, but VFIO_DEVICE_BIND_IOMMUFD fails
# with EPERM and nothing in the kernel log; bind names the sibling and its driver, and rolls back.
D=0000:01:01.0
S=0000:01:02.0
expect_driver $S nvme
expect_driver $D none
vt bind 01:01.0 --backend iommufd --force
expect_rc 5
expect_out "VFIO_DEVICE_BIND_IOMMUFD (resets the device) on $D: failed (Operation not permitted"
expect_err "group sibling $S of IOMMU group $(group_of $D) is on its host driver nvme"
expect_err "vfiotool bind $D --group"
expect_err "rolled back"
expect_driver $D none
expect_driver $S nvme
# The fix it names works: the whole group through one iommufd.
vt bind 01:01.0 --backend iommufd --group
expect_rc 0
expect_out "through iommufd"
expect_driver $S vfio-pci
vt unbind 01:01.0
expect_rc 0
expect_driver $D none
vt unbind 01:02.0
expect_rc 0
expect_driver $S nvme
