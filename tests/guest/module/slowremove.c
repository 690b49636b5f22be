// SPDX-License-Identifier: GPL-2.0
/*
 * slowremove: a PCI driver for QEMU's edu device (1234:11e8) whose remove() blocks, so the
 * vfiotool guest tests meet a slow or stuck unbind on the real kernel (as nvidia or amdgpu do
 * when something still holds the GPU).
 *
 * remove() waits until delay_ms have passed AND hold is 0, checking every 20 ms, so a test can
 * make it "forever" (hold=1) and release it later by writing 0 to
 * /sys/module/slowremove/parameters/hold. in_remove reads 1 while a remove() is running.
 * Built at test time against Debian's linux-headers package (tests/guest.rs).
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/delay.h>
#include <linux/jiffies.h>

static unsigned int delay_ms;
module_param(delay_ms, uint, 0644);
MODULE_PARM_DESC(delay_ms, "how long remove() blocks, in ms");

static bool hold;
module_param(hold, bool, 0644);
MODULE_PARM_DESC(hold, "while 1, remove() keeps blocking (write 0 to let it return)");

static int in_remove;
module_param(in_remove, int, 0444);
MODULE_PARM_DESC(in_remove, "1 while a remove() is running");

static const struct pci_device_id slowremove_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ 0 }
};
MODULE_DEVICE_TABLE(pci, slowremove_ids);

static int slowremove_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret = pci_enable_device(pdev);

	if (ret)
		return ret;
	dev_info(&pdev->dev, "slowremove: bound (delay_ms=%u hold=%d)\n", delay_ms, hold);
	return 0;
}

static void slowremove_remove(struct pci_dev *pdev)
{
	unsigned long start = jiffies;

	WRITE_ONCE(in_remove, 1);
	dev_info(&pdev->dev, "slowremove: remove() starts blocking\n");
	/* Bounded by the test's own timeouts; READ_ONCE because sysfs may change them meanwhile. */
	while (READ_ONCE(hold) ||
	       time_before(jiffies, start + msecs_to_jiffies(READ_ONCE(delay_ms))))
		msleep(20);
	pci_disable_device(pdev);
	dev_info(&pdev->dev, "slowremove: remove() returns after %u ms\n",
		 jiffies_to_msecs(jiffies - start));
	WRITE_ONCE(in_remove, 0);
}

static struct pci_driver slowremove_driver = {
	.name = "slowremove",
	.id_table = slowremove_ids,
	.probe = slowremove_probe,
	.remove = slowremove_remove,
};
module_pci_driver(slowremove_driver);

MODULE_DESCRIPTION("PCI driver for QEMU edu whose remove() blocks (vfiotool tests)");
MODULE_LICENSE("GPL");
