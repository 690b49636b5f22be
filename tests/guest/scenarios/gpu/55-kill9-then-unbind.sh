# kill -9 in the middle of a slow bind (slowremove's remove() takes 3 s): the device is left
# half-way, with its record; `vfiotool unbind` then gives it back to its original driver.
D=0000:00:03.0
P=/sys/module/slowremove/parameters
[ -d $P ] || insmod /lib/modules/extra/slowremove.ko || fail "insmod slowremove failed"
echo 0 > $P/hold
echo 3000 > $P/delay_ms
expect_driver $D slowremove
/bin/vfiotool bind 00:03.0 >/tmp/k.out 2>/tmp/k.err &
p=$!
sleep 1
[ "$(cat $P/in_remove)" = 1 ] || fail "the bind was not inside remove() after 1 s"
kill -9 $p
wait $p
echo "kill -9 during the unbind: exit $?"
i=0
while [ "$(cat $P/in_remove)" = 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
note "after kill -9: driver $(driver_of $D), override $(override_of $D)"
expect_driver $D none
expect_override $D vfio-pci
expect_exists $(record_of $D)
vt unbind 00:03.0
expect_rc 0
expect_driver $D slowremove
expect_override $D "(null)"
expect_missing $(record_of $D)
echo 0 > $P/delay_ms
