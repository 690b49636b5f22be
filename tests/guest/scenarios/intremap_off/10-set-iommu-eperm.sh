# No interrupt remapping: the group is viable but VFIO_SET_IOMMU fails with EPERM. bind must say
# why, name the fix and the risk of allow_unsafe_interrupts, and roll back (exit 5).
D=0000:00:05.0
G=$(group_of $D)
expect_driver $D nvme
vt bind 00:05.0
expect_rc 5
expect_err "interrupt remapping"
expect_err "allow_unsafe_interrupts"
expect_err "rolled back"
expect_driver $D nvme
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
expect_missing /dev/vfio/$G
vt --json bind 00:03.0
expect_rc 5
expect_out '"rolled_back":true'
expect_driver 0000:00:03.0 none
