# Not root: a clear message, exit 4, nothing touched (bind and unbind).
D=0000:00:08.0
grep -q '^nobody:' /etc/passwd 2>/dev/null || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
grep -q '^nogroup:' /etc/group 2>/dev/null || echo 'nogroup:x:65534:' >>/etc/group
su -s /bin/sh nobody -c "/bin/vfiotool bind 00:08.0" >/tmp/nr.out 2>/tmp/nr.err
RC=$?; ERR=$(cat /tmp/nr.err); cat /tmp/nr.err
expect_rc 4
expect_err "needs root"
expect_err "nothing was changed"
expect_driver $D none
expect_override $D "(null)"
expect_missing /run/vfiotool/devices/$D.json
# A dry run needs no root.
su -s /bin/sh nobody -c "/bin/vfiotool bind --dry-run 00:08.0" >/tmp/nr.out 2>/tmp/nr.err
RC=$?; ERR=$(cat /tmp/nr.err)
expect_rc 0
vt bind 00:08.0
expect_rc 0
su -s /bin/sh nobody -c "/bin/vfiotool unbind 00:08.0" >/tmp/nr.out 2>/tmp/nr.err
RC=$?; ERR=$(cat /tmp/nr.err)
expect_rc 4
expect_err "needs root"
expect_driver $D vfio-pci
vt unbind 00:08.0
expect_rc 0
expect_driver $D none
