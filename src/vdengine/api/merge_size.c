/* The merge target's size (merge_size.h).
 *
 * A VHDX child may differ in size from its parent (ResizeVirtualDisk
 * resizes it alone, as Hyper-V does); the chain then shows the child's
 * size.  MergeVirtualDisk's parent comes to represent the same data the
 * child held (its Remarks), and [MS-VHDX] 2.6.1.2 moves every
 * IsVirtualDisk metadata item from the child to the parent on a merge,
 * Virtual Disk Size among them (2.6.2.2).  So the target takes the
 * source's size, larger or smaller, before the sectors are copied, and
 * after the merge it reads byte for byte what the chain read.
 *
 * One rerunnable step.  The size change goes through the target format's
 * resize slot, which writes it crash safely, and changes nothing the chain
 * shows: a grown target reads zeros past its old end, where the chain read
 * zeros already (a child's reads past its parent's end); a shrunk target
 * loses only what lay past the source's end, which the chain never showed.
 * So after an interruption between the size change and the copy the chain
 * opens and reads what it read, and a new run finds the sizes equal and
 * copies.
 *
 * What a shrink may drop.  ResizeVirtualDisk never cuts a partition without
 * ALLOW_UNSAFE_VIRTUAL_SIZE; a merge has no such flag.  The partitions that
 * count are those of the content the target will hold: the merged range's,
 * read through the source.  When that content has an MBR or GPT whose
 * partitions (and a GPT's backup room) end within the source's size, the
 * target's sectors past it belong to no partition of the merged disk and go.
 * Without such a table (none, or one naming sectors past the source's end)
 * nothing shows that they are free: the merge is refused with
 * VHD_RESIZE_WOULD_TRUNCATE_DATA, and the caller who wants them gone
 * shrinks the target first with ALLOW_UNSAFE_VIRTUAL_SIZE.
 *
 * Formats.  A VHD grows but never shrinks, and a differencing VHD is never
 * resized (api/resize.c); a VHD child's size must equal its parent's
 * (chain.c), so a chain of VHDs never differs in size.  What can differ
 * is a VHDX child of a VHD parent: the parent grows to it (a fixed or
 * dynamic VHD, up to 2040 GiB), anything else is
 * VHD_CHILD_PARENT_SIZE_MISMATCH, as is a range whose image next to the
 * target is a VHD, which could no longer open on a target of another
 * size. */
#include "api/merge_size.h"

#include "base/detail.h"
#include "base/vd_errors.h"
#include "disk/driver.h"
#include "disk/partition_end.h"

/* The merged range's view: the source read with its parent. */
typedef struct vd_merge_view {
    vd_image *source;
    vd_image *source_parent;
} vd_merge_view;

static uint32_t vd_merge_view_read(void *context, uint64_t offset, void *buffer, uint64_t length)
{
    const vd_merge_view *view = context;
    return view->source->ops->read(view->source, view->source_parent, offset, buffer, length);
}

/* Why the target's format cannot take `size`; NULL when it can. */
static const char *vd_merge_size_refusal(const vd_image *target, uint64_t size)
{
    const vd_format_driver *driver = vd_image_driver(target);
    if (driver == NULL || driver->resize == NULL)
        return "its format is never resized";
    if (target->subtype == VD_SUBTYPE_DIFFERENCING && !driver->resizes_children)
        return "a differencing image of its format is never resized";
    if (size < target->virtual_size && !driver->can_shrink)
        return "its format cannot shrink";
    if (size > driver->max_virtual_size)
        return "its format holds no disk that large";
    return NULL;
}

/* Whether `child` opens on a parent of another size (chain.c). */
static int vd_merge_size_free(const vd_image *child)
{
    const vd_format_driver *driver = vd_image_driver(child);
    return driver != NULL && driver->resizes_children;
}

/* A smaller source: whether the target's sectors past it are free. */
static uint32_t vd_merge_shrink_check(vd_image *source, vd_image *source_parent, uint64_t current)
{
    vd_merge_view reader = { source, source_parent };
    vd_partition_view view = { vd_merge_view_read, &reader, source->logical_sector_size,
                               source->virtual_size };
    uint64_t end = 0;
    uint32_t status = vd_partition_view_end(&view, &end);
    if (status == VD_ERROR_NOT_FOUND)
        return vd_fail(VD_ERROR_VHD_RESIZE_WOULD_TRUNCATE_DATA,
                       "the merged disk is %" PRIu64 " bytes, the target %" PRIu64 ", and no partition "
                       "table shows the target's last %" PRIu64 " bytes free; shrink the target with "
                       "ALLOW_UNSAFE_VIRTUAL_SIZE first to let them go",
                       source->virtual_size, current, current - source->virtual_size);
    return status;
}

uint32_t vd_merge_size_check(vd_image *source, vd_image *source_parent, const vd_image *target,
                             const vd_image *child)
{
    uint64_t size = source->virtual_size, current = target->virtual_size;
    if (size == current)
        return VD_ERROR_SUCCESS;
    const char *refusal = vd_merge_size_refusal(target, size);
    if (refusal != NULL)
        return vd_fail(VD_ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH,
                       "the merged disk is %" PRIu64 " bytes, the target %" PRIu64 ", and the target "
                       "cannot take that size: %s", size, current, refusal);
    if (child->virtual_size != size && !vd_merge_size_free(child))
        return vd_fail(VD_ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH,
                       "the merged disk is %" PRIu64 " bytes, the target %" PRIu64 "; the image whose "
                       "parent the target is would no longer open on a target of that size",
                       size, current);
    return size < current ? vd_merge_shrink_check(source, source_parent, current) : VD_ERROR_SUCCESS;
}

uint64_t vd_merge_size_work(const vd_image *target, uint64_t size)
{
    return size > target->virtual_size ? size - target->virtual_size : target->virtual_size - size;
}

uint32_t vd_merge_size_apply(vd_image *target, uint64_t size, struct vd_operation *operation)
{
    if (size == target->virtual_size)
        return VD_ERROR_SUCCESS;
    vd_resize_request request = { .new_size = size, .operation = operation };
    return vd_image_driver(target)->resize(target, &request);
}
