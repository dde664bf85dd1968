/* Test harness for scsi.c: opens an image through OpenVirtualDisk and runs
 * one CDB through vd_scsi_execute.
 *
 *   scsi_main PATH ro|rw CDBHEX in|out|none LENGTH [DATAHEX]
 *
 * prints {"status", "sense", "transferred", "data"} with bytes in hex; for
 * "out" the data buffer is DATAHEX repeated to LENGTH bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/handle.h"
#include "scsi/scsi.h"
#include "vdengine.h"
#include "wide_path.h"

static size_t unhex(const char *text, uint8_t *out, size_t room)
{
    size_t n = 0;
    while (text[0] && text[1] && n < room) {
        unsigned int byte;
        if (sscanf(text, "%2x", &byte) != 1)
            break;
        out[n++] = (uint8_t)byte;
        text += 2;
    }
    return n;
}

static void print_hex(const uint8_t *bytes, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++)
        printf("%02x", bytes[i]);
    putchar('"');
}

int main(int argc, char **argv)
{
    if (argc < 6)
        return 2;
    int writable = strcmp(argv[2], "rw") == 0;
    HANDLE handle = NULL;
    DWORD open = open_path(argv[1], writable ? VIRTUAL_DISK_ACCESS_ALL : VIRTUAL_DISK_ACCESS_READ,
                           NULL, &handle);
    if (open != 0) {
        printf("{\"open\": %u}\n", (unsigned)open);
        return 0;
    }
    uint8_t cdb[32];
    vd_scsi_request request = {0};
    request.cdb = cdb;
    request.cdb_length = (uint32_t)unhex(argv[3], cdb, sizeof cdb);
    request.direction = strcmp(argv[4], "in") == 0 ? VD_SCSI_DATA_IN
                      : strcmp(argv[4], "out") == 0 ? VD_SCSI_DATA_OUT : VD_SCSI_DATA_NONE;
    request.data_length = (uint32_t)strtoul(argv[5], NULL, 0);
    uint8_t *data = calloc(1, request.data_length + 1u);
    if (data == NULL)
        return 2;
    if (argc > 6 && request.direction == VD_SCSI_DATA_OUT) {
        uint8_t pattern[64];
        size_t n = unhex(argv[6], pattern, sizeof pattern);
        for (uint32_t i = 0; n > 0 && i < request.data_length; i++)
            data[i] = pattern[i % n];
    }
    request.data = request.direction == VD_SCSI_DATA_NONE ? NULL : data;
    vd_scsi_response response;
    vd_disk *disk = vd_handle_acquire(handle);
    vd_scsi_execute(disk, &request, &response);
    vd_handle_release(handle);
    printf("{\"status\": %u, \"sense\": ", (unsigned)response.status);
    print_hex(response.sense, response.sense_length);
    printf(", \"transferred\": %u, \"data\": ", (unsigned)response.transferred);
    print_hex(data, request.direction == VD_SCSI_DATA_IN ? response.transferred : 0);
    puts("}");
    vd_engine_close_handle(handle);
    free(data);
    return 0;
}
