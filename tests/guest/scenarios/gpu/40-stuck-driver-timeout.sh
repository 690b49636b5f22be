# A driver whose remove() does not return (slowremove, hold=1, on edu 00:03.0): `bind --timeout 3`
# returns within a few seconds of the timeout, not when the driver lets go, with exit 6; it names
# the blocked write and what holds the device, says what state the device will be in and what to
# do. Once remove() returns, the device is in exactly that state, and unbind gives it back.
D=0000:00:03.0
P=/sys/module/slowremove/parameters
insmod /lib/modules/extra/slowremove.ko hold=1 || fail "insmod slowremove failed"
expect_driver $D slowremove
# The driver lets go by itself after 40 s, so an old vfiotool that waits for it still ends.
( sleep 40; echo 0 > $P/hold ) &
releaser=$!
t0=$(now_cs)
vt bind --timeout 3 00:03.0
t1=$(now_cs)
took=$(( (t1 - t0) / 100 ))
note "bind --timeout 3 took $(( t1 - t0 ))0 ms; in_remove=$(cat $P/in_remove)"
[ "$(cat $P/in_remove)" = 1 ] || fail "remove() already returned: the test proves nothing"
[ $took -le 8 ] || fail "bind returned ${took} s after it started, not within a few seconds of the 3 s timeout"
expect_rc 6
expect_out "still blocked in the kernel"
expect_err "$SYS/$D/driver/unbind"
expect_err "still blocked after 3"
expect_err "slowremove"
expect_err "no driver and driver_override vfio-pci"
expect_err "vfiotool unbind $D"
expect_err "vfiotool bind $D"
expect_exists $(record_of $D)
# A second run while remove() still blocks: refused at once (the group stays locked), no hang.
t0=$(now_cs)
vt unbind 00:03.0
t1=$(now_cs)
note "unbind during remove() took $(( (t1 - t0) / 100 )) s"
[ $(( (t1 - t0) / 100 )) -le 5 ] || fail "unbind during remove() hung"
expect_rc 4
expect_err "locked"
expect_err "a write to $D still blocked in the kernel"
# Let the driver go; the device must now be in the state bind described.
echo 0 > $P/hold
kill $releaser 2>/dev/null
i=0
while [ "$(cat $P/in_remove)" = 1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
expect_driver $D none
expect_override $D vfio-pci
grep -q '"driver": "slowremove"' $(record_of $D) || fail "record lacks slowremove"
# What the message offered: finish the bind (the original driver stays on record) ...
vt bind 00:03.0
expect_rc 0 "finishing the bind after remove() returned"
expect_out "kept from an earlier run"
expect_driver $D vfio-pci
grep -q '"driver": "slowremove"' $(record_of $D) || fail "finishing the bind lost slowremove from the record"
# ... and give it back.
vt unbind 00:03.0
expect_rc 0
expect_driver $D slowremove
expect_override $D "(null)"
expect_missing $(record_of $D)
