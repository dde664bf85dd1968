/* The server process of a permanent attach the engine serves
 * (api/attach_export.h): with PERMANENT_LIFETIME the export must outlive
 * the handle and the process that made it, as the Windows disk does, so a
 * detached process of its own holds the image, serves the export and
 * keeps its loop device bound, until a DetachVirtualDisk from any process
 * unbinds the loop and ends it, or a reboot. */
#ifndef VDENGINE_ATTACH_SERVER_H
#define VDENGINE_ATTACH_SERVER_H

#include "api/attach_export.h"

/* Starts the server of `disk`: on success the loop device is bound (no
 * autoclear), binding->server_pid names the server and binding->device_fd
 * is -1 (the server holds nothing of the device open).  The caller holds
 * the records lock, and records the attach. */
uint32_t vd_attach_server_start(vd_disk *disk, const vd_attach_view *view,
                                vd_attach_binding *binding);

/* Ends the server `pid` once its loop device is unbound, and waits until it
 * is gone, so that the image is closed (and its lock released) when the
 * detach returns.  A server that is gone already is no error. */
void vd_attach_server_end(long pid);

#endif
