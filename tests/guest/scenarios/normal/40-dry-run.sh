# --dry-run prints every sysfs write and ioctl and changes nothing.
D=0000:00:05.0
G=$(group_of $D)
expect_driver $D nvme
vt bind --dry-run 00:05.0
expect_rc 0
expect_out "driver_override: planned"
expect_out "$SYS/$D/driver/unbind: planned"
expect_out "drivers_probe: planned"
expect_out "VFIO_GROUP_GET_STATUS"
expect_out "VFIO_SET_IOMMU"
expect_out "nothing was changed"
expect_driver $D nvme
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
expect_missing /dev/vfio/$G
vt --json bind --dry-run --open-device 00:05
expect_rc 0
expect_out '"dry_run":true'
expect_out 'GET_DEVICE_FD'
expect_driver $D nvme
# unbind --dry-run of a bound device leaves it bound.
vt bind 00:05.0
expect_rc 0
vt unbind --dry-run 00:05.0
expect_rc 0
expect_out "planned"
expect_driver $D vfio-pci
vt unbind 00:05.0
expect_rc 0
expect_driver $D nvme
