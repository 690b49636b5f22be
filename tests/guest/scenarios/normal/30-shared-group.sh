# pcie-pci-bridge 00:06.0 with pci-testdev 01:01.0 and nvme 01:02.0 behind it: one IOMMU group.
B=0000:00:06.0; T=0000:01:01.0; N=0000:01:02.0
G=$(group_of $T)
[ "$(group_of $N)" = "$G" ] && [ "$(group_of $B)" = "$G" ] || fail "bridge and devices are not in one group"
expect_driver $N nvme

# Refused without --group: the sibling is on a host driver. Nothing changes.
vt bind 01:01.0
expect_rc 1
expect_err "$N (nvme)"
expect_err "--group"
expect_out "refused"
expect_driver $T none
expect_override $T "(null)"
expect_driver $N nvme
expect_missing /run/vfiotool/devices/$T.json

# --group takes the whole group (the bridge is left alone) and the proof says viable.
vt --json bind --group 01:01.0
expect_rc 0
expect_out '"viable":true'
expect_out '"why":"group"'
expect_driver $T vfio-pci
expect_driver $N vfio-pci
expect_override $B "(null)"
expect_exists /dev/vfio/$G

# The sibling forced back to its host driver behind vfiotool's back: the kernel says not viable.
raw_restore $N
expect_driver $N nvme
vt --json bind --force 01:01.0
expect_rc 5
expect_out '"viable":false'
expect_out 'not viable'
expect_driver $T vfio-pci
expect_driver $N nvme

# Give everything back.
vt unbind 01:01.0
expect_rc 0
expect_driver $T none
expect_override $T "(null)"
vt unbind 01:02.0
expect_rc 0
expect_driver $N nvme
expect_override $N "(null)"
expect_missing /run/vfiotool/devices/$N.json
