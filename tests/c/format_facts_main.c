/* Prints the format facts the facade takes from the extension, straight
 * from the engine's format headers, as one JSON object: signatures as
 * text, sizes as numbers, the VHDX system metadata items as GUID strings
 * (the bytes are stored in Windows layout: Data1..Data3 little-endian). */
#include <stdint.h>
#include <stdio.h>

#include "formats/vhd/vhd_format.h"
#include "formats/vhdx/vhdx_format.h"

static const uint8_t items[][16] = {
    VD_VHDX_GUID_FILE_PARAMETERS, VD_VHDX_GUID_VIRTUAL_DISK_SIZE, VD_VHDX_GUID_PAGE83_DATA,
    VD_VHDX_GUID_LOGICAL_SECTOR_SIZE, VD_VHDX_GUID_PHYSICAL_SECTOR_SIZE,
    VD_VHDX_GUID_PARENT_LOCATOR,
};

static void guid(const uint8_t b[16])
{
    printf("\"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\"",
           b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12],
           b[13], b[14], b[15]);
}

int main(void)
{
    printf("{\"vhd_footer_cookie\": \"%.*s\", \"vhd_footer_size\": %u, "
           "\"vhd_maximum_size\": %llu,\n",
           (int)VD_VHD_COOKIE_SIZE, VD_VHD_FOOTER_COOKIE, VD_VHD_FOOTER_SIZE,
           (unsigned long long)VD_VHD_MAX_SIZE);
    printf(" \"vhdx_file_signature\": \"%.*s\", \"vhdx_maximum_size\": %llu, "
           "\"vhdx_minimum_block_size\": %llu, \"vhdx_maximum_block_size\": %llu, "
           "\"vhdx_maximum_metadata_item_size\": %llu,\n \"vhdx_system_metadata_items\": [",
           (int)VD_VHDX_SIGNATURE_SIZE, VD_VHDX_SIGNATURE,
           (unsigned long long)VD_VHDX_MAX_VIRTUAL_SIZE,
           (unsigned long long)VD_VHDX_MIN_BLOCK_SIZE,
           (unsigned long long)VD_VHDX_MAX_BLOCK_SIZE,
           (unsigned long long)VD_VHDX_METADATA_MAX_ITEM_LENGTH);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        if (i > 0)
            printf(", ");
        guid(items[i]);
    }
    printf("]}\n");
    return 0;
}
