# What `vfiotool config --for qemu --iommufd` prints starts a real VM inside the guest with QEMU 10
# (bookworm-backports; the host's 7.2 has no iommufd backend): QEMU opens /dev/iommu and the
# device's cdev, binds and attaches it, and -daemonize returns 0 only once the machine is built.
# While QEMU has the device, a second bind through the cdev is refused; then everything goes back.
S=0000:00:03.0
qemu-system-x86_64 --version | sed 's/^/## /'
vt bind 00:03.0 --backend iommufd
expect_rc 0
V=$(ls $SYS/$S/vfio-dev)
vt config 00:03.0 --for qemu --iommufd
expect_rc 0
start_qemu_from_config "the iommufd configuration"
held_iommu=no; held_cdev=no
for fd in /proc/$Q/fd/*; do
  case "$(readlink "$fd")" in
    /dev/iommu) held_iommu=yes ;;
    /dev/vfio/devices/$V) held_cdev=yes ;;
  esac
done
[ "$held_iommu" = yes ] && [ "$held_cdev" = yes ] || fail "QEMU does not hold /dev/iommu and /dev/vfio/devices/$V: $(ls -l /proc/$Q/fd)"
note "QEMU pid $Q holds /dev/iommu and /dev/vfio/devices/$V"
vt bind 00:03.0 --backend iommufd
expect_rc 5
expect_out "VFIO_DEVICE_BIND_IOMMUFD (resets the device) on $S: failed (Invalid argument"
expect_err "the device is already in use through its cdev: qemu-system-x86 (pid $Q) has /dev/vfio/devices/$V open"
stop_qemu
vt unbind 00:03.0
expect_rc 0
expect_driver $S none
