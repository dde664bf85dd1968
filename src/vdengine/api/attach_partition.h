/* Partition devices of a disk attached to the host (attach_partition.c);
 * vd_engine_attach_partition (vdengine.h) makes them. */
#ifndef VDENGINE_ATTACH_PARTITION_H
#define VDENGINE_ATTACH_PARTITION_H

#include <stdint.h>

#include "api/handle.h"

/* Unbinds every loop device bound to /dev/loop`base` and closes the
 * descriptors `disk` (NULL: none) holds of its partition devices.
 * SHARING_VIOLATION, with a detail, when one has a file system mounted;
 * the others are unbound all the same. */
uint32_t vd_partition_devices_detach(vd_disk *disk, int base);

#endif
