# The legacy group node held open by another process (a VM on the old interface, here a sleep
# with /dev/vfio/N open): the cdev bind fails with EBUSY; bind names the process.
D=0000:00:03.0
raw_bind_vfio $D
expect_driver $D vfio-pci
G=$(group_of $D)
sleep 600 3<>/dev/vfio/$G &
HOLDER=$!
sleep 1
vt bind 00:03.0 --backend iommufd
expect_rc 5
expect_out "VFIO_DEVICE_BIND_IOMMUFD (resets the device) on $D: failed (Device or resource busy"
expect_err "another process owns IOMMU group $G: sleep (pid $HOLDER) has /dev/vfio/$G open"
kill $HOLDER
wait $HOLDER 2>/dev/null
vt bind 00:03.0 --backend iommufd
expect_rc 0
raw_restore $D
expect_driver $D none
