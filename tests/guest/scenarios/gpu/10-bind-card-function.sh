# `bind 01:00.0` on a GPU-like card: 01:00.0 on bochs-drm (with /dev/fb0) and its HDMI-audio-like
# 01:00.1 on snd_hda_intel share one IOMMU group. The other function of the same card is taken
# too (the output says they are one card) and the proof passes; `bind 01:00` does the same.
V=0000:01:00.0; A=0000:01:00.1
expect_driver $V bochs-drm
expect_driver $A snd_hda_intel
expect_exists /dev/fb0
G=$(group_of $V)
[ "$(group_of $A)" = "$G" ] || fail "the two functions are not in one IOMMU group"
note "group $G: $(ls /sys/kernel/iommu_groups/$G/devices | tr '\n' ' ')"

vt bind 01:00.0
expect_rc 0 "bind of one function of a card whose other function shares the group"
expect_out "another function of the same card"
expect_out "proof: group $G viable"
expect_driver $V vfio-pci
expect_driver $A vfio-pci
expect_exists /dev/vfio/$G
expect_missing /dev/fb0
grep -q '"driver": "bochs-drm"' $(record_of $V) || fail "record of $V lacks bochs-drm"
grep -q '"driver": "snd_hda_intel"' $(record_of $A) || fail "record of $A lacks snd_hda_intel"
vt unbind 01:00
expect_rc 0
expect_driver $V bochs-drm
expect_driver $A snd_hda_intel

vt bind 01:00
expect_rc 0 "bind of the slot"
expect_out "proof: group $G viable"
expect_driver $V vfio-pci
expect_driver $A vfio-pci
vt unbind 01:00
expect_rc 0
expect_driver $V bochs-drm
expect_driver $A snd_hda_intel
expect_exists /dev/fb0
