# A device with a real host driver (nvme at 00:05.0): bind takes it from nvme, unbind gives it
# back to nvme with driver_override clear.
D=0000:00:05.0
expect_driver $D nvme
expect_override $D "(null)"
G=$(group_of $D)
vt bind 0000:00:05.0
expect_rc 0
expect_out "nvme -> vfio-pci"
expect_driver $D vfio-pci
expect_exists /dev/vfio/$G
grep -q '"driver": "nvme"' /run/vfiotool/devices/$D.json || fail "record lacks nvme: $(cat /run/vfiotool/devices/$D.json)"
# Binding again is a no-op that still proves the group.
vt bind 00:05.0
expect_rc 0
expect_out "already on vfio-pci"
vt unbind 00:05.0
expect_rc 0
expect_driver $D nvme
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
expect_missing /dev/vfio/$G
# Unbinding a device vfiotool never bound changes nothing.
vt unbind 00:05.0
expect_rc 0
expect_out "not bound by vfiotool"
expect_driver $D nvme
