# Fail closed: a guard input that cannot be read refuses the bind and names the path; it is never
# taken as "not in use". A FIFO bind-mounted over /proc/net/route (the default-route guard's input)
# stands for any read error; --force does not override it.
D=0000:00:05.0   # nvme
expect_driver $D nvme
mkfifo /tmp/route.fifo
mount --bind /tmp/route.fifo /proc/net/route || fail "cannot bind-mount over /proc/net/route"
vt bind --force 00:05.0
FORCED=$RC
vt bind 00:05.0
umount /proc/net/route
expect_rc 1 "refused"
expect_err "/proc/net/route"
expect_err "refusing"
[ "$FORCED" = 1 ] || fail "--force overrode an unreadable guard (exit $FORCED)"
expect_driver $D nvme
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
