# vfio-pci not loaded and modprobe cannot load it: bind says so (missing, or blacklisted with the
# file that does it), exits 4 and touches nothing.
D=0000:00:08.0
rmmod vfio-pci || fail "cannot unload vfio-pci (a device still bound?)"
vt bind 00:08.0
expect_rc 4
expect_err "modprobe vfio-pci failed"
expect_err "missing"
expect_driver $D none
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
mkdir -p /etc/modprobe.d
echo "blacklist vfio_pci" >/etc/modprobe.d/no-vfio.conf
vt --json bind 00:08.0
rm -f /etc/modprobe.d/no-vfio.conf
insmod /lib/modules/vfio-pci.ko || fail "cannot load vfio-pci again"
expect_rc 4
expect_out "blacklisted"
expect_out "/etc/modprobe.d/no-vfio.conf"
expect_driver $D none
vt bind 00:08.0
expect_rc 0
vt unbind 00:08.0
expect_rc 0
