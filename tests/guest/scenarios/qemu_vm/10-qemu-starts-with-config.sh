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
# The guest has no /dev/kvm: the same arguments under TCG. The command line is the first line
# that is not a `#` comment.
ARGS=$(echo "$OUT" | grep -v '^#' | sed -n 1p | sed 's/accel=kvm/accel=tcg/')
[ -n "$ARGS" ] || fail "config printed no command line"
cd /tmp || fail "no /tmp"
cp /usr/share/OVMF/OVMF_VARS_4M.fd OVMF_VARS.fd || fail "no OVMF vars template in the guest"
eval "set -- $ARGS"
note "qemu-system-x86_64 $*"
qemu-system-x86_64 -nodefaults -display none -S -m 64 -monitor none -serial none \
  -daemonize -pidfile /tmp/qemu.pid "$@" >/tmp/qemu.log 2>&1
QRC=$?
sed 's/^/  qemu| /' /tmp/qemu.log
[ "$QRC" = 0 ] || fail "QEMU refused the configuration (exit $QRC): $(cat /tmp/qemu.log)"
Q=$(cat /tmp/qemu.pid)
kill -0 "$Q" 2>/dev/null || fail "QEMU (pid $Q) is not running"
held=no
for fd in /proc/$Q/fd/*; do
  [ "$(readlink "$fd")" = "/dev/vfio/$G" ] && held=yes
done
[ "$held" = yes ] || fail "QEMU does not hold /dev/vfio/$G: $(ls -l /proc/$Q/fd)"
note "QEMU pid $Q holds /dev/vfio/$G"
kill "$Q"
i=0
while kill -0 "$Q" 2>/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
kill -0 "$Q" 2>/dev/null && fail "QEMU did not exit after SIGTERM"
vt unbind 00:03.0
expect_rc 0
expect_driver $S none
