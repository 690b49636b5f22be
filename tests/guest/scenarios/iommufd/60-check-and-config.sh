# check reports the kernel's iommufd and cdev support and that the installed QEMU has the backend; config --iommufd prints QEMU's iommufd
# backend form, and for libvirt a note when the installed libvirt cannot ask for it (the guest has
# no libvirt).
vt --json check
expect_out '"id":"iommufd","status":"ok"'
expect_out 'the kernel has iommufd and the VFIO device cdev (/dev/iommu present, vfio-dev class present'
# This machine carries QEMU 10 (bookworm-backports): its `-object help` lists iommufd.
expect_out '"id":"iommufd_qemu","status":"ok"'
expect_out 'has the iommufd backend'
expect_out '"id":"iommufd_libvirt","status":"skipped"'
vt config 00:03.0 --for qemu --iommufd
expect_rc 0
expect_out "-object iommufd,id=iommufd0"
expect_out "vfio-pci,host=0000:00:03.0,bus=vfio-rp0,addr=00.0,iommufd=iommufd0"
expect_out "iommufd backend: needs QEMU 9.0+"
vt config 00:03.0 --for libvirt --iommufd
expect_rc 0
expect_out "has no iommufd attribute"
expect_no_out "  <driver iommufd='yes'/>"
vt config 00:03.0 --for proxmox --iommufd
expect_rc 2
