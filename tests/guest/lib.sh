# Assertion helpers for guest scenarios (busybox sh). A scenario is a plain script; the first
# failed expectation prints "@@FAIL <why>" and ends it with status 1. tests/guest.rs turns the
# markers into named test results.

SYS=/sys/bus/pci/devices

fail() {
  echo "@@FAIL $*"
  exit 1
}

note() {
  echo "## $*"
}

# vt ARGS...: run vfiotool; sets RC, OUT (stdout) and ERR (stderr) and shows all three.
vt() {
  /bin/vfiotool "$@" >/tmp/vt.out 2>/tmp/vt.err
  RC=$?
  OUT=$(cat /tmp/vt.out)
  ERR=$(cat /tmp/vt.err)
  echo "\$ vfiotool $* -> exit $RC"
  sed 's/^/  out| /' /tmp/vt.out
  sed 's/^/  err| /' /tmp/vt.err
}

expect_rc() {
  [ "$RC" = "$1" ] || fail "vfiotool exited $RC, expected $1${2:+ ($2)}; stderr: $ERR"
}

expect_out() {
  case "$OUT" in *"$1"*) ;; *) fail "stdout lacks '$1': $OUT" ;; esac
}

expect_err() {
  case "$ERR" in *"$1"*) ;; *) fail "stderr lacks '$1': $ERR" ;; esac
}

expect_no_out() {
  case "$OUT" in *"$1"*) fail "stdout unexpectedly has '$1': $OUT" ;; esac
}

# driver_of BDF: the bound driver's name, or "none".
driver_of() {
  if [ -L "$SYS/$1/driver" ]; then basename "$(readlink "$SYS/$1/driver")"; else echo none; fi
}

override_of() {
  cat "$SYS/$1/driver_override"
}

group_of() {
  basename "$(readlink "$SYS/$1/iommu_group")"
}

expect_driver() {
  d=$(driver_of "$1")
  [ "$d" = "$2" ] || fail "$1 is on driver '$d', expected '$2'"
}

expect_override() {
  o=$(override_of "$1")
  [ "$o" = "$2" ] || fail "$1 driver_override is '$o', expected '$2'"
}

expect_exists() {
  [ -e "$1" ] || fail "$1 does not exist"
}

expect_missing() {
  [ ! -e "$1" ] || fail "$1 exists but should not"
}

expect_same_file() {
  cmp "$1" "$2" >/dev/null 2>&1 || fail "$1 ($(wc -c <"$1" 2>/dev/null) bytes) differs from $2 ($(wc -c <"$2") bytes)"
}

# find_dev VENDOR DEVICE [N]: the N-th (1-based) function with these IDs, e.g. find_dev 0x1b36 0x0005
find_dev() {
  n=0
  for d in $SYS/*; do
    if [ "$(cat "$d/vendor")" = "$1" ] && [ "$(cat "$d/device")" = "$2" ]; then
      n=$((n + 1))
      if [ "$n" = "${3:-1}" ]; then basename "$d"; return 0; fi
    fi
  done
  return 1
}

# Plain sysfs rebind (no vfiotool), for setting up and for the benchmark baseline.
raw_bind_vfio() {
  echo vfio-pci >"$SYS/$1/driver_override"
  [ -L "$SYS/$1/driver" ] && echo "$1" >"$SYS/$1/driver/unbind"
  echo "$1" >/sys/bus/pci/drivers_probe
}

raw_restore() {
  echo >"$SYS/$1/driver_override"
  [ -L "$SYS/$1/driver" ] && echo "$1" >"$SYS/$1/driver/unbind"
  echo "$1" >/sys/bus/pci/drivers_probe
}

# now_cs: the guest's uptime in hundredths of a second.
now_cs() {
  cut -d' ' -f1 /proc/uptime | tr -d .
}

# record_of BDF: the path of vfiotool's bind record.
record_of() {
  echo "/run/vfiotool/devices/$1.json"
}

# start_qemu_from_config WHAT: start the VM that the command line in $OUT (the first line of a
# `config --for qemu` run that is not a `#` comment) describes, paused and daemonized; -daemonize
# returns 0 only once every -device is realised. The guest has no /dev/kvm, so the same arguments
# run under TCG. Sets Q to QEMU's pid; WHAT names the configuration when QEMU refuses it.
start_qemu_from_config() {
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
  [ "$QRC" = 0 ] || fail "QEMU refused $1 (exit $QRC): $(cat /tmp/qemu.log)"
  Q=$(cat /tmp/qemu.pid)
}

# stop_qemu: SIGTERM the QEMU of start_qemu_from_config and wait up to a minute for it to exit.
stop_qemu() {
  kill "$Q"
  i=0
  while kill -0 "$Q" 2>/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
  kill -0 "$Q" 2>/dev/null && fail "QEMU did not exit after SIGTERM"
}
