# The kernel log as check reads it (/dev/kmsg, non-blocking): the earlier scenarios made
# vfio_iommu_type1 refuse a group ("No interrupt remapping support"), which check reports from
# the log; capture saves the log and --root reads the same finding back; explain, fed the
# guest's own dmesg, names the cause no_interrupt_remapping.
vt --json check
expect_out '"id":"kernel_log","status":"ok"'
expect_out '"id":"log_interrupt_remapping","status":"warn"'
expect_out 'No interrupt remapping support'
vt capture /tmp/cap-klog
expect_rc 0
[ -s /tmp/cap-klog/dev/kmsg ] || fail "capture wrote no dev/kmsg"
grep -q "No interrupt remapping support" /tmp/cap-klog/dev/kmsg || fail "the captured log lacks the refusal"
vt --json check --root /tmp/cap-klog
expect_out '"id":"log_interrupt_remapping","status":"warn"'
dmesg > /tmp/dmesg.txt
vt --json explain /tmp/dmesg.txt
expect_rc 0
expect_out '"id":"no_interrupt_remapping"'
