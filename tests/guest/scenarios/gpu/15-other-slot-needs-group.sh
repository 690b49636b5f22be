# Behind a pcie-pci-bridge (one group): a two-function card at 02:01 (edu, no driver) and an
# e1000 at 02:02.0. `bind 02:01.0` takes 02:01.1 as part of the card, but 02:02.0 is another
# slot on a host driver: still refused without --group, nothing changed.
C0=0000:02:01.0; C1=0000:02:01.1; N=0000:02:02.0
G=$(group_of $C0)
[ "$(group_of $C1)" = "$G" ] && [ "$(group_of $N)" = "$G" ] || fail "the bridge's devices are not in one group"
expect_driver $N e1000
vt bind 02:01.0
expect_rc 1
expect_err "$N (e1000)"
expect_err "--group"
expect_driver $C0 none
expect_driver $C1 none
expect_driver $N e1000
expect_override $C0 "(null)"
expect_missing $(record_of $C0)
vt bind --group 02:01.0
expect_rc 0
expect_out "proof: group $G viable"
expect_driver $C0 vfio-pci
expect_driver $C1 vfio-pci
expect_driver $N vfio-pci
vt unbind 02:01
expect_rc 0
vt unbind 02:02.0
expect_rc 0
expect_driver $C0 none
expect_driver $C1 none
expect_driver $N e1000
expect_override $N "(null)"
