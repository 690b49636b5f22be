# The iommufd backend is an arm of the one attach sequence: with --backend auto on this kernel the
# dry run of bind prints the cdev steps (/dev/iommu, IOAS, find/open/BIND/ATTACH per device, info,
# ROM region, DETACH) and the real run makes the same steps (action, target, value, in order).
D=0000:00:05.0   # nvme

steps_of() {
  echo "$OUT" | grep -oE '\{"action":"(write|record|module|check|ioctl)","target":"[^"]*"(,"value":"[^"]*")?' \
    | grep -v '"action":"check","target":"[0-9a-f:.]*"$'
}

expect_driver $D nvme
vt --json bind --dry-run 00:05.0
expect_rc 0
steps_of >/tmp/plan.bind
grep -q 'VFIO_DEVICE_BIND_IOMMUFD' /tmp/plan.bind || fail "the dry run planned no cdev bind: $(cat /tmp/plan.bind)"
vt --json bind 00:05.0
expect_rc 0
expect_out '"backend":"iommufd"'
steps_of >/tmp/real.bind
cmp /tmp/plan.bind /tmp/real.bind || fail "bind: dry run $(cat /tmp/plan.bind) != real $(cat /tmp/real.bind)"
expect_driver $D vfio-pci
vt unbind 00:05.0
expect_rc 0
expect_driver $D nvme
