# kill -9 at any point of a bind, then `vfiotool unbind --all`: every device is back on its
# original driver with driver_override clear and no record left, whatever step the kill hit.
D=0000:00:05.0   # nvme
expect_driver $D nvme
for delay in 0 0.01 0.03 0.06 0.1 0.2 0.4 0.8 1.5; do
  /bin/vfiotool bind 00:05.0 >/tmp/k.out 2>/tmp/k.err &
  p=$!
  sleep $delay
  kill -9 $p 2>/dev/null
  wait $p
  note "killed after ${delay}s: driver $(driver_of $D), override $(override_of $D), record $([ -e $(record_of $D) ] && echo yes || echo no)"
  # A write the killed run left in flight finishes in its writer child; give it a moment.
  sleep 0.2
  vt unbind --all
  expect_rc 0 "unbind --all after a kill at ${delay}s"
  expect_driver $D nvme
  expect_override $D "(null)"
  expect_missing $(record_of $D)
done
vt unbind --all
expect_rc 0
expect_out "nothing to give back"
