# What `vfiotool config --for qemu` prints starts a real VM inside the guest: QEMU (the host's
# binary) realises every -device, maps the VM's memory through the group's container and holds
# /dev/vfio/N; -daemonize returns 0 only once the machine is built. Then everything goes back.
S=0000:00:03.0   # edu with rom-samples/x86-efi-gop.rom: config picks OVMF
vt bind 00:03.0
expect_rc 0
expect_driver $S vfio-pci
G=$(group_of $S)

vt config 00:03.0 --for qemu --primary
expect_rc 0
expect_out "firmware ovmf, because the ROM of $S"
expect_out "file=/usr/share/OVMF/OVMF_CODE_4M.fd"
expect_out "# primary: on, because --primary"
expect_out " -vga none"
start_qemu_from_config "the configuration"
kill -0 "$Q" 2>/dev/null || fail "QEMU (pid $Q) is not running"
held=no
for fd in /proc/$Q/fd/*; do
  [ "$(readlink "$fd")" = "/dev/vfio/$G" ] && held=yes
done
[ "$held" = yes ] || fail "QEMU does not hold /dev/vfio/$G: $(ls -l /proc/$Q/fd)"
note "QEMU pid $Q holds /dev/vfio/$G"
stop_qemu
vt unbind 00:03.0
expect_rc 0
expect_driver $S none
