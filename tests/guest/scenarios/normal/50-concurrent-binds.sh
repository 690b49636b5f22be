# Two vfiotool runs on the same group at once: the flock lets one in; the other fails with
# "locked" (exit 4) or, if the first was already done, finds the devices bound. Never a mix.
T=0000:01:01.0; N=0000:01:02.0
locked=0
i=0
while [ $i -lt 4 ]; do
  i=$((i + 1))
  /bin/vfiotool bind --group 01:01.0 >/tmp/a.out 2>/tmp/a.err &
  pa=$!
  /bin/vfiotool bind --group 01:02.0 >/tmp/b.out 2>/tmp/b.err &
  pb=$!
  wait $pa; ra=$?
  wait $pb; rb=$?
  echo "round $i: exit $ra and $rb"
  cat /tmp/a.err /tmp/b.err
  for r in $ra $rb; do
    case $r in 0|4) ;; *) fail "a concurrent bind exited $r: $(cat /tmp/a.err /tmp/b.err)" ;; esac
  done
  [ $ra = 0 ] || [ $rb = 0 ] || fail "neither concurrent bind succeeded"
  if [ $ra = 4 ] || [ $rb = 4 ]; then
    grep -q "locked by another vfiotool run" /tmp/a.err /tmp/b.err || fail "exit 4 without the lock message"
    locked=$((locked + 1))
  fi
  expect_driver $T vfio-pci
  expect_driver $N vfio-pci
  vt unbind 01:01.0; expect_rc 0
  vt unbind 01:02.0; expect_rc 0
  expect_driver $T none
  expect_driver $N nvme
done
echo "lock refused the second run in $locked of 4 rounds"
