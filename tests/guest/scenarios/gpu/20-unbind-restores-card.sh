# unbind gives each function back to its own original driver (bochs-drm and snd_hda_intel), the
# overrides are cleared, the records removed, and the framebuffer comes back.
V=0000:01:00.0; A=0000:01:00.1
vt bind 01:00
expect_rc 0
expect_driver $V vfio-pci
expect_driver $A vfio-pci
expect_missing /dev/fb0
vt unbind 01:00.0
expect_rc 0 "unbind of function 0"
expect_driver $V bochs-drm
expect_driver $A snd_hda_intel
expect_override $V "(null)"
expect_override $A "(null)"
expect_missing $(record_of $V)
expect_missing $(record_of $A)
expect_exists /dev/fb0
grep -q bochs /proc/fb || fail "/proc/fb does not list the bochs framebuffer: $(cat /proc/fb)"
