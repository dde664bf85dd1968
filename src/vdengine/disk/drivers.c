/* The format registry (driver.h). */
#include "disk/driver.h"

const vd_format_driver *const vd_format_drivers[] = {
    &vd_vhdx_driver,
    &vd_vhd_driver,
    &vd_iso_driver,
};

const size_t vd_format_driver_count = sizeof vd_format_drivers / sizeof vd_format_drivers[0];

const vd_format_driver *vd_format_driver_of(uint32_t device)
{
    for (size_t i = 0; i < vd_format_driver_count; i++) {
        if (vd_format_drivers[i]->device == device)
            return vd_format_drivers[i];
    }
    return NULL;
}

const vd_format_driver *vd_format_driver_by_signature(const vd_file *file,
                                                      const vd_format_driver *except,
                                                      int (*accept)(const vd_format_driver *))
{
    for (size_t i = 0; i < vd_format_driver_count; i++) {
        const vd_format_driver *driver = vd_format_drivers[i];
        if (driver != except && (accept == NULL || accept(driver)) && driver->probe(file))
            return driver;
    }
    return NULL;
}
