# The same device proven through the legacy group/container path on the same kernel
# (VFIO_CONTAINER=y): both interfaces live side by side.
D=0000:00:03.0
vt bind 00:03.0 --backend legacy
expect_rc 0
expect_out "backend legacy"
expect_out "ioctl VFIO_GROUP_SET_CONTAINER on /dev/vfio/$(group_of $D): ok"
expect_out "ioctl VFIO_SET_IOMMU on /dev/vfio/vfio: ok (TYPE1v2)"
vt --json bind 00:03.0 --backend legacy
expect_out '"backend":"legacy"'
vt unbind 00:03.0
expect_rc 0
expect_driver $D none
