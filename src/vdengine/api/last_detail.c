/* vd_engine_last_detail (vdengine.h): the failure detail base/detail.c
 * keeps per thread, offered beside the VirtDisk functions. */
#include "vdengine.h"

#include "base/detail.h"

const char *vd_engine_last_detail(void)
{
    return vd_detail_get();
}
