/* CHS geometry for the VHD footer, by the algorithm of the VHD
 * specification's appendix "CHS Calculation".
 *
 * The geometry only matters to BIOS-era guests and to readers that derive
 * the size from it; the algorithm picks 17, 31, 63 or 255 sectors per track
 * and the fewest heads that keep cylinders below 1024 where it can, and
 * rounds down, so C*H*S*512 may be a little less than the disk. */
#include "formats/vhd/vhd_format.h"

#define VD_CHS_MAX_SECTORS (65535u * 16u * 255u)   /* 65535 cylinders, 16 heads, 255 spt */
#define VD_CHS_ATA_SECTORS (65535u * 16u * 63u)    /* largest geometry with 63 spt */

void vd_vhd_chs(uint64_t size, uint16_t *cylinders, uint8_t *heads, uint8_t *sectors)
{
    uint64_t total = size / VD_VHD_SECTOR_SIZE;
    if (total > VD_CHS_MAX_SECTORS)
        total = VD_CHS_MAX_SECTORS;

    uint32_t sectors_per_track;
    uint32_t head_count;
    uint32_t cylinder_times_heads;
    if (total >= VD_CHS_ATA_SECTORS) {
        sectors_per_track = 255;
        head_count = 16;
        cylinder_times_heads = (uint32_t)(total / sectors_per_track);
    } else {
        sectors_per_track = 17;
        cylinder_times_heads = (uint32_t)(total / sectors_per_track);
        head_count = (cylinder_times_heads + 1023) / 1024;
        if (head_count < 4)
            head_count = 4;
        if (cylinder_times_heads >= head_count * 1024 || head_count > 16) {
            sectors_per_track = 31;
            head_count = 16;
            cylinder_times_heads = (uint32_t)(total / sectors_per_track);
        }
        if (cylinder_times_heads >= head_count * 1024) {
            sectors_per_track = 63;
            head_count = 16;
            cylinder_times_heads = (uint32_t)(total / sectors_per_track);
        }
    }
    *cylinders = (uint16_t)(cylinder_times_heads / head_count);
    *heads = (uint8_t)head_count;
    *sectors = (uint8_t)sectors_per_track;
}
