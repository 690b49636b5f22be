# No interrupt remapping: the cdev bind is refused with EPERM and nothing in the kernel log. bind
# reads the VT-d ecap (IR bit clear) and iommufd's allow_unsafe_interrupts, names the cause and the
# fix, and rolls back. Setting allow_unsafe_interrupts (the risky way out it names) lets it through.
D=0000:00:03.0
P=/sys/module/iommufd/parameters/allow_unsafe_interrupts
note "ecap $(cat /sys/class/iommu/dmar0/intel-iommu/ecap), allow_unsafe_interrupts $(cat $P)"
vt bind 00:03.0 --backend iommufd
expect_rc 5
expect_out "VFIO_DEVICE_BIND_IOMMUFD (resets the device) on $D: failed (Operation not permitted"
expect_err "interrupt remapping is off (dmar0 ecap"
expect_err "has IR bit 3 clear) and iommufd.allow_unsafe_interrupts is N"
expect_err "no intremap=off"
expect_err "rolled back"
expect_driver $D none
echo 1 > $P || fail "cannot set $P"
vt bind 00:03.0 --backend iommufd
expect_rc 0
expect_out "through iommufd"
echo 0 > $P
vt unbind 00:03.0
expect_rc 0
expect_driver $D none
