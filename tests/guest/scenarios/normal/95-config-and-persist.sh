# config reads the device's own ROM through sysfs and picks the firmware from its verdict;
# persist writes its boot-time files on the live root, and the override script it writes really
# makes the kernel bind the device to vfio-pci; --remove takes every file away again.
S=0000:00:03.0   # edu with rom-samples/x86-efi-gop.rom: a reachable GOP driver
P=0000:00:04.0   # pci-testdev with iPXE's efi-e1000.rom: not a display ROM
X=0000:00:07.0   # edu with a ROM that has no 55AA

vt config 00:03.0 --for proxmox --vmid 100
expect_rc 0
expect_out "firmware ovmf, because the ROM of $S: UEFI GOP driver reachable"
expect_out "hostpci0: $S,pcie=1"
expect_out "qm set 100 --machine q35 --bios ovmf --hostpci0 $S,pcie=1"
cat $SYS/$S/rom >/dev/null 2>&1 && fail "the rom attribute is still enabled after config read it"

vt --json config 00:04.0 --for qemu
expect_rc 0
expect_out '"firmware":"seabios"'
expect_out "vfio-pci,host=$P,bus=vfio-rp0,addr=00.0"

# A ROM the kernel refuses (no 55AA) still gets its configuration: OVMF assumed, said so, with
# how to supply a ROM (the real kernel's EIO on the sysfs read, not a fixture's).
vt config 00:07.0 --for libvirt
expect_rc 0
expect_out "could not be read"
expect_out "Input/output error"
expect_out "OVMF assumed"
expect_out "pass - -rom gpu.rom"
expect_out "<os firmware='efi'>"
cat $SYS/$X/rom >/dev/null 2>&1 && fail "the rom attribute is still enabled after config failed to read it"

vt config 00:07.0 --for libvirt --firmware ovmf
expect_rc 0
expect_out "<os firmware='efi'>"
expect_out "<address domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>"

vt persist 00:03.0 --dry-run
expect_rc 0
expect_out "would create /etc/modprobe.d/vfiotool.conf"
expect_missing /etc/modprobe.d/vfiotool.conf

vt persist 00:03.0
expect_rc 0
expect_exists /etc/modprobe.d/vfiotool.conf
expect_exists /usr/lib/vfiotool/vfio-pci-override.sh
grep -q "for dev in $S; do" /usr/lib/vfiotool/vfio-pci-override.sh || fail "the script does not name $S"

# What the modprobe install hook runs at boot: the script, then the probe.
expect_driver $S none
sh /usr/lib/vfiotool/vfio-pci-override.sh || fail "the override script failed"
expect_override $S vfio-pci
echo $S > /sys/bus/pci/drivers_probe
expect_driver $S vfio-pci
# Back to how it was, by hand (this was not a vfiotool bind).
echo > $SYS/$S/driver_override
echo $S > /sys/bus/pci/drivers/vfio-pci/unbind
expect_driver $S none

vt persist --remove
expect_rc 0
expect_missing /etc/modprobe.d/vfiotool.conf
expect_missing /usr/lib/vfiotool
expect_missing /etc/vfiotool
