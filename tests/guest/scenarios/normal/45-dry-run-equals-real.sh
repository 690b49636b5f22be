# --dry-run goes through the real code path: the steps it prints for bind, unbind and persist
# are the steps the real run makes next (action, path, value, in order); only the result
# differs (planned / ok).
D=0000:00:05.0   # nvme
S=0000:00:03.0   # edu: persist target

# The steps of a vfiotool.bind/1 document: sysfs writes, records, checks and the proof's ioctls
# (the plan comes from the same attach sequence, so names and nodes match too).
steps_of() {
  echo "$OUT" | grep -oE '\{"action":"(write|record|module|check|ioctl)","target":"[^"]*"(,"value":"[^"]*")?' \
    | grep -v '"action":"check","target":"[0-9a-f:.]*"$'
}

expect_driver $D nvme
vt --json bind --dry-run 00:05.0
expect_rc 0
steps_of >/tmp/plan.bind
[ -s /tmp/plan.bind ] || fail "the dry run of bind printed no steps"
vt --json bind 00:05.0
expect_rc 0
steps_of >/tmp/real.bind
cmp /tmp/plan.bind /tmp/real.bind || fail "bind: dry run $(cat /tmp/plan.bind) != real $(cat /tmp/real.bind)"
expect_driver $D vfio-pci

vt --json unbind --dry-run 00:05.0
expect_rc 0
steps_of >/tmp/plan.unbind
[ -s /tmp/plan.unbind ] || fail "the dry run of unbind printed no steps"
expect_driver $D vfio-pci
vt --json unbind 00:05.0
expect_rc 0
steps_of >/tmp/real.unbind
cmp /tmp/plan.unbind /tmp/real.unbind || fail "unbind: dry run $(cat /tmp/plan.unbind) != real $(cat /tmp/real.unbind)"
expect_driver $D nvme

# persist: the file actions of the plan the dry run prints are the ones the real run makes.
files_of() {
  echo "$OUT" | grep -oE '"path":"[^"]*","action":"[a-z]*"|"action":"[a-z]*","path":"[^"]*"'
}
vt --json persist 00:03.0 --dry-run
expect_rc 0
files_of >/tmp/plan.persist
[ -s /tmp/plan.persist ] || fail "the dry run of persist printed no file actions"
vt --json persist 00:03.0
expect_rc 0
files_of >/tmp/real.persist
cmp /tmp/plan.persist /tmp/real.persist || fail "persist: dry run $(cat /tmp/plan.persist) != real $(cat /tmp/real.persist)"
vt persist --remove
expect_rc 0
expect_missing /etc/modprobe.d/vfiotool.conf
