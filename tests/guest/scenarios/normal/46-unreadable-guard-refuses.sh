# Fail closed: a guard input that cannot be read refuses the bind and names the path; it is never
# taken as "not in use". A FIFO in place of the default-route guard's input stands for any read
# error. /proc/net is a link to /proc/self/net, and the kernel drops mounts on the entries below
# it, so a directory holding a FIFO named `route` is bind-mounted over /proc/PID/net of the shell
# that then execs vfiotool (same pid). --force does not override the refusal.
D=0000:00:05.0   # nvme
expect_driver $D nvme
[ -e /run/vfiotool/devices/$D.json ] && fail "a record is left from an earlier scenario"
mkdir -p /tmp/fakenet
mkfifo /tmp/fakenet/route
run_blind() {
  sh -c 'mount --bind /tmp/fakenet /proc/$$/net || exit 99; exec /bin/vfiotool "$@"' vt "$@" \
    >/tmp/vt.out 2>/tmp/vt.err
  RC=$?
  OUT=$(cat /tmp/vt.out)
  ERR=$(cat /tmp/vt.err)
  echo "\$ vfiotool $* (route unreadable) -> exit $RC"
  sed 's/^/  out| /' /tmp/vt.out
  sed 's/^/  err| /' /tmp/vt.err
  [ "$RC" = 99 ] && fail "cannot bind-mount over /proc/PID/net"
}
run_blind bind --force 00:05.0
expect_rc 1 "--force does not override an unreadable guard"
expect_err "/net/route"
expect_err "refusing"
run_blind bind 00:05.0
expect_rc 1 "refused"
expect_err "refusing"
expect_driver $D nvme
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
# The same bind with the route readable goes through.
vt bind 00:05.0
expect_rc 0
vt unbind 00:05.0
expect_rc 0
expect_driver $D nvme
