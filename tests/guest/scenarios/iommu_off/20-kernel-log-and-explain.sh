# intel_iommu=off: the kernel log has no remapping message and no fault; explain, fed the
# guest's own dmesg after the failed bind of 10-, names the cause no_iommu (vfio-pci's probe
# failed with -22: no IOMMU group).
vt --json check
expect_out '"id":"kernel_log","status":"ok"'
expect_out '"id":"iommu_faults","status":"ok"'
expect_out '"id":"log_rmrr","status":"ok"'
dmesg > /tmp/dmesg.txt
grep -q "failed with error -22" /tmp/dmesg.txt || fail "no vfio-pci probe failure in dmesg"
vt --json explain /tmp/dmesg.txt
expect_rc 0
expect_out '"id":"no_iommu"'
