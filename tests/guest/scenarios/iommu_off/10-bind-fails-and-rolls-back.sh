# intel_iommu=off: no groups, vfio-pci's probe fails (-22) although the drivers_probe write
# succeeds. bind must notice, roll back, and leave each device on its original driver (exit 5).
D=0000:00:05.0
[ -e $SYS/$D/iommu_group ] && fail "the IOMMU is on; this machine must boot with intel_iommu=off"
expect_driver $D nvme
vt bind 00:05.0
expect_rc 5 "failed and rolled back"
expect_err "vfio-pci did not bind"
expect_err "IOMMU"
expect_err "rolled back"
expect_out "rollback:"
expect_driver $D nvme
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
E=0000:00:03.0
vt --json bind 00:03.0
expect_rc 5
expect_out '"rolled_back":true'
expect_out '"viable":false'
expect_driver $E none
expect_override $E "(null)"
