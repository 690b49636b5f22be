# SIGINT, SIGTERM and SIGHUP (a dropped SSH session) during a slow bind (slowremove's remove()
# takes 3 s) roll back to the original driver: exit 5, on slowremove, override clear, no record.
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

echo 0 > $P/delay_ms
