# Benchmark (reported, not asserted): vfiotool bind of nvme 00:05.0 (a proven-viable group)
# minus the bare sysfs writes for the same rebind, median of 20.
D=0000:00:05.0
now() {
  # Monotonic nanoseconds ("now at N nsecs" on line 3 of /proc/timer_list).
  sed -n '3{s/^now at \([0-9]*\) nsecs.*/\1/p;q}' /proc/timer_list
}
[ -n "$(now)" ] || fail "no clock: /proc/timer_list has no 'now at' line"
i=0
: >/tmp/bare; : >/tmp/tool; : >/tmp/start; : >/tmp/dry; : >/tmp/bb
while [ $i -lt 20 ]; do
  i=$((i + 1))
  t0=$(now); raw_bind_vfio $D; t1=$(now)
  [ "$(driver_of $D)" = vfio-pci ] || fail "bare rebind failed"
  raw_restore $D
  t2=$(now); /bin/vfiotool bind 00:05.0 >/dev/null 2>&1; rc=$?; t3=$(now)
  [ $rc = 0 ] || fail "vfiotool bind exited $rc"
  /bin/vfiotool unbind 00:05.0 >/dev/null 2>&1 || fail "unbind failed"
  t4=$(now); /bin/vfiotool --version >/dev/null; t5=$(now)
  /bin/vfiotool bind --dry-run 00:05.0 >/dev/null; t6=$(now)
  t7=$(now); /bin/busybox true; t8=$(now)
  echo $(( (t8 - t7) / 1000 )) >>/tmp/bb
  echo $(( (t5 - t4) / 1000 )) >>/tmp/start
  echo $(( (t6 - t5) / 1000 )) >>/tmp/dry
  echo $(( (t1 - t0) / 1000 )) >>/tmp/bare
  echo $(( (t3 - t2) / 1000 )) >>/tmp/tool
done
med() { sort -n "$1" | sed -n 10p; }
b=$(med /tmp/bare); t=$(med /tmp/tool)
echo "@@BENCH components: vfiotool --version (process start) median $(med /tmp/start) us; bind --dry-run (plan only) median $(med /tmp/dry) us; exec of static busybox median $(med /tmp/bb) us"
echo "@@BENCH bare sysfs rebind median ${b} us; vfiotool bind median ${t} us; overhead $((t - b)) us (20 runs, TCG guest)"
