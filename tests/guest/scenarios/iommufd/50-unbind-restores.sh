# An nvme (a device on a real host driver) through iommufd with --backend auto, then unbind gives
# it back to nvme.
D=0000:00:05.0
expect_driver $D nvme
vt bind 00:05.0
expect_rc 0
expect_out "backend iommufd"
expect_driver $D vfio-pci
vt unbind 00:05.0
expect_rc 0
expect_driver $D nvme
expect_override $D "(null)"
expect_missing $(record_of $D)
