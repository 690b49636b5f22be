# A lone device (edu, its own IOMMU group) proven through iommufd and the VFIO device cdev:
# /dev/iommu, IOMMU_IOAS_ALLOC, the cdev found through vfio-dev/, BIND, ATTACH, GET_INFO, DETACH.
# --backend auto picks the cdev on this kernel; rom dump --via vfio reads the ROM region through
# the cdev and through the legacy group, byte for byte the same.
D=0000:00:03.0
expect_exists /dev/iommu
expect_driver $D none
vt bind 00:03.0 --backend iommufd
expect_rc 0
expect_out "backend iommufd"
expect_out "ioctl VFIO_DEVICE_BIND_IOMMUFD (resets the device) on 0000:00:03.0: ok (devid"
expect_out "ioctl VFIO_DEVICE_ATTACH_IOMMUFD_PT on 0000:00:03.0: ok (IOAS"
expect_out "ioctl VFIO_DEVICE_DETACH_IOMMUFD_PT on 0000:00:03.0: ok"
expect_out "bound to vfio-pci and proven"
expect_driver $D vfio-pci
V=$(ls $SYS/$D/vfio-dev)
note "cdev $V ($(cat $SYS/$D/vfio-dev/$V/dev)), group $(group_of $D)"
expect_exists /dev/vfio/devices/$V
vt --json bind 00:03.0
expect_rc 0
expect_out '"backend":"iommufd"'
expect_out "\"cdev\":\"$V\""
vt rom dump 00:03.0 --via vfio --backend iommufd -o /tmp/rom-cdev.bin
expect_rc 0
expect_out "backend iommufd"
vt rom dump 00:03.0 --via vfio --backend legacy -o /tmp/rom-legacy.bin
expect_rc 0
expect_out "backend legacy"
expect_same_file /tmp/rom-cdev.bin /tmp/rom-legacy.bin
expect_same_file /tmp/rom-cdev.bin /roms/sample.rom
vt unbind 00:03.0
expect_rc 0
expect_driver $D none
expect_override $D "(null)"
