# SIGTERM at different moments of a bind of nvme 00:05.0. Whatever the moment, the device ends
# in a consistent state: killed before any change (143: still on nvme, no record), interrupted
# during the bind (5: rolled back to nvme, "interrupted"), or finished first (0: on vfio-pci).
# At least one signal must land inside the bind, or the test proves nothing.
D=0000:00:05.0
now() {
  sed -n '3{s/^now at \([0-9]*\) nsecs.*/\1/p;q}' /proc/timer_list
}
# Spread the signals over the time one bind takes here (it varies with the build and the host).
t0=$(now); /bin/vfiotool bind 00:05.0 >/dev/null 2>&1; t1=$(now)
vt unbind 00:05.0
expect_rc 0
dur=$(( (t1 - t0) / 1000 ))
echo "one bind takes ${dur} us"
rolled=0; early=0; done_=0
k=0
while [ $k -lt 16 ]; do
  k=$((k + 1))
  us=$(( dur * k / 14 ))
  d=$(printf '%d.%06d' $((us / 1000000)) $((us % 1000000)))
  /bin/vfiotool bind 00:05.0 >/tmp/s.out 2>/tmp/s.err &
  p=$!
  sleep $d
  kill -TERM $p 2>/dev/null
  wait $p
  rc=$?
  echo "signal after ${d}s: exit $rc $(cat /tmp/s.err)"
  case $rc in
    143)
      early=$((early + 1))
      expect_driver $D nvme
      expect_override $D "(null)"
      expect_missing /run/vfiotool/devices/$D.json ;;
    5)
      rolled=$((rolled + 1))
      grep -q "interrupted by a signal" /tmp/s.err || fail "exit 5 without 'interrupted': $(cat /tmp/s.err)"
      grep -q "rolled back" /tmp/s.err || fail "exit 5 without 'rolled back'"
      expect_driver $D nvme
      expect_override $D "(null)"
      expect_missing /run/vfiotool/devices/$D.json ;;
    0)
      done_=$((done_ + 1))
      expect_driver $D vfio-pci
      vt unbind 00:05.0
      expect_rc 0
      expect_driver $D nvme ;;
    *) fail "bind killed by SIGTERM exited $rc: $(cat /tmp/s.err)" ;;
  esac
done
echo "killed before any change: $early, rolled back: $rolled, finished: $done_"
[ $rolled -gt 0 ] || fail "no SIGTERM landed inside a bind (timing); the rollback path was not exercised"
