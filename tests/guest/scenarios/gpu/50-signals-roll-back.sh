# SIGINT, SIGTERM and SIGHUP (a dropped SSH session) during a slow bind (slowremove's remove()
# takes 3 s) roll back to the original driver: exit 5, on slowremove, override clear, no record.
# kill -9 in the middle leaves the record; `vfiotool unbind` then gives the device back.
D=0000:00:03.0
P=/sys/module/slowremove/parameters
[ -d $P ] || insmod /lib/modules/extra/slowremove.ko || fail "insmod slowremove failed"
echo 0 > $P/hold
echo 3000 > $P/delay_ms
expect_driver $D slowremove
for sig in INT TERM HUP; do
  /bin/vfiotool bind 00:03.0 >/tmp/sig.out 2>/tmp/sig.err &
  p=$!
  sleep 1
  [ "$(cat $P/in_remove)" = 1 ] || fail "SIG$sig: the bind was not inside remove() after 1 s"
  kill -$sig $p
  wait $p
  RC=$?; ERR=$(cat /tmp/sig.err)
  echo "SIG$sig during the unbind: exit $RC"; cat /tmp/sig.out /tmp/sig.err
  expect_rc 5 "SIG$sig during a slow bind"
  expect_err "interrupted by a signal"
  expect_err "rolled back"
  expect_driver $D slowremove
  expect_override $D "(null)"
  expect_missing $(record_of $D)
done

/bin/vfiotool bind 00:03.0 >/tmp/k.out 2>/tmp/k.err &
p=$!
sleep 1
kill -9 $p
wait $p
echo "kill -9 during the unbind: exit $?"
i=0
while [ "$(cat $P/in_remove)" = 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
note "after kill -9: driver $(driver_of $D), override $(override_of $D)"
expect_exists $(record_of $D)
vt unbind 00:03.0
expect_rc 0
expect_driver $D slowremove
expect_override $D "(null)"
expect_missing $(record_of $D)
echo 0 > $P/delay_ms
