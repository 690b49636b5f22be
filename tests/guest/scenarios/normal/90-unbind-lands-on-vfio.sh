# vfio-pci claims the device's ID (new_id here; vfio-pci.ids= at boot does the same). A device
# bound by another tool (no vfiotool record) is unbound: the override is cleared, the kernel
# probes, the device lands on vfio-pci again, and unbind says why.
D=0000:00:03.0
raw_bind_vfio $D
expect_driver $D vfio-pci
expect_missing /run/vfiotool/devices/$D.json
echo "1234 11e8" >/sys/bus/pci/drivers/vfio-pci/new_id || fail "new_id write failed"
vt unbind 00:03.0
echo "1234 11e8" >/sys/bus/pci/drivers/vfio-pci/remove_id
expect_rc 0
expect_out "landed on vfio-pci again"
expect_out "vfio-pci.ids="
expect_driver $D vfio-pci
expect_override $D "(null)"
# Clean up every edu that new_id took (00:03.0 and 00:07.0).
for e in 0000:00:03.0 0000:00:07.0; do
  [ "$(driver_of $e)" = vfio-pci ] && echo $e >$SYS/$e/driver/unbind
  expect_driver $e none
done
