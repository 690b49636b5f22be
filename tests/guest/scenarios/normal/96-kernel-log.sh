# intremap=on: check reads the kernel log and finds the remapping the kernel enabled; no IOMMU
# fault, no BAR conflict, no RMRR lock. explain on the guest's own dmesg finds exactly one known
# failure: 60-rom-dump read a device given a ROM without 55AA, and the kernel logged
# "Invalid PCI ROM header signature" for it (rom_problem); nothing else.
vt --json check
expect_out '"id":"kernel_log","status":"ok"'
expect_out '"id":"log_interrupt_remapping","status":"ok"'
expect_out 'Enabled IRQ remapping'
expect_out '"id":"iommu_faults","status":"ok"'
expect_out '"id":"log_bar_reserve","status":"ok"'
expect_out '"id":"log_rmrr","status":"ok"'
dmesg > /tmp/dmesg.txt
vt --json explain /tmp/dmesg.txt
if grep -q "Invalid PCI ROM header signature" /tmp/dmesg.txt; then
  expect_rc 0
  expect_out '"causes":[{"id":"rom_problem"'
  expect_no_out '"id":"no_iommu"'
  expect_no_out '"id":"no_interrupt_remapping"'
  expect_no_out '"id":"group_not_viable"'
else
  expect_rc 1
  expect_out '"causes":[]'
fi
# A device on vfio-pci is a passthrough candidate: reset, d3cold and bars read its real sysfs
# attributes (reset_method, d3cold_allowed, power_state, resource) and name it.
vt bind 00:03.0
expect_rc 0
vt --json check
# QEMU's edu device has no FLR, no PM reset and sits on the root bus: 6.1 shows no
# reset_method for it, which check reports as a device that cannot be reset.
expect_out '"id":"reset","status":"warn","message":"0000:00:03.0 has no reset method'
expect_out '"id":"d3cold","status":"ok"'
expect_out '0000:00:03.0 d3cold_allowed='
expect_out '"id":"bars","status":"ok","message":"no GPU to pass through"'
expect_out '"id":"stale_driver","status":"ok"'
expect_out '"id":"blacklist_lines","status":"ok"'
vt unbind 00:03.0
expect_rc 0
expect_driver 0000:00:03.0 none
