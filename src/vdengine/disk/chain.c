/* Differencing chains: where a parent is, opening it, and the checks that
 * make sure it is the parent the child was made from.
 *
 * Where to look.  A child stores its parent's location in Windows terms:
 * a path relative to the child (".\base.vhdx", "..\dir\base.vhd"), a volume
 * path ("\\?\Volume{GUID}\dir\base.vhdx") and an absolute Win32 path
 * ("C:\dir\base.vhdx").  Windows searches them in that order ([MS-VHDX]
 * 2.6.2.6.3; the same order is used for the VHD W2ru/W2ku locators).  On
 * this host:
 *   - the relative path is joined to the directory of the path the child was
 *     opened by, with '\' read as '/', and normalised lexically ("." and
 *     ".." removed), as Win32 normalises paths before opening them;
 *   - a stored absolute path is tried only if, with '\' read as '/', it is
 *     a rooted path ("/srv/base.vhdx", as written on a POSIX host); drive
 *     letter, volume GUID and UNC paths cannot name a file here and are
 *     skipped (they still appear in the unresolved parent location list).
 * No other guess (file name in the child's directory, current directory) is
 * made: Windows makes none, and a guess could pick an unrelated file.
 *
 * Which file is right.  The parent's identifier must equal the one the
 * child recorded (VHD: header ParentUniqueId = parent footer UniqueId;
 * VHDX: parent_linkage = parent DataWriteGuid).  A file with another
 * identity does not stop the search: a later location may name the right
 * file (a stale relative path next to a correct absolute one); if none
 * matches, the answer is VHD_CHILD_PARENT_ID_MISMATCH.  The parent's virtual
 * size must equal the child's, since the child's reads fall through to it,
 * except for a VHDX child, which ResizeVirtualDisk resizes alone (as
 * Hyper-V does): its reads past the parent's end are zeros.
 * The VHD parent time stamp is not enforced: Windows writers leave it 0 in
 * places and it changes with copies that keep the identity.
 *
 * Cycles are found by file identity (st_dev, st_ino), so hard links and
 * symbolic links to a file already in the chain are caught too, before the
 * file is opened a second time. */
#define _GNU_SOURCE

#include "disk/chain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/detail.h"
#include "disk/driver.h"
#include "base/vd_errors.h"

typedef struct vd_file_identity {
    dev_t device;
    ino_t inode;
} vd_file_identity;

static int vd_identity_seen(const vd_file_identity *seen, uint32_t count,
                            const struct stat *info)
{
    for (uint32_t i = 0; i < count; i++) {
        if (seen[i].device == info->st_dev && seen[i].inode == info->st_ino)
            return 1;
    }
    return 0;
}

/* ---- stored Windows locations -> host paths ---------------------------- */

static int vd_is_separator(char c)
{
    return c == '/' || c == '\\';
}

static int vd_path_has_drive_letter(const char *path)
{
    char letter = path[0];
    return ((letter >= 'A' && letter <= 'Z') || (letter >= 'a' && letter <= 'z'))
           && path[1] == ':';
}

/* Lexical normalisation of an absolute path: empty and "." components are
 * dropped, ".." removes the component before it (and stays at the root).
 * The result is never longer than the input. */
static char *vd_path_normalize(const char *path)
{
    size_t length = strlen(path);
    char *out = malloc(length + 2);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    const char *cursor = path;
    while (*cursor != '\0') {
        while (*cursor == '/')
            cursor++;
        const char *end = cursor;
        while (*end != '\0' && *end != '/')
            end++;
        size_t component = (size_t)(end - cursor);
        if (component == 0 || (component == 1 && cursor[0] == '.')) {
            /* nothing to add */
        } else if (component == 2 && cursor[0] == '.' && cursor[1] == '.') {
            while (used > 0 && out[used - 1] != '/')
                used--;
            if (used > 0)
                used--;   /* the separator before the removed component */
        } else {
            out[used++] = '/';
            memcpy(out + used, cursor, component);
            used += component;
        }
        cursor = end;
    }
    if (used == 0)
        out[used++] = '/';
    out[used] = '\0';
    return out;
}

/* The first `directory_length` bytes of `directory`, a '/', and `stored`
 * with '\' read as '/', normalised; NULL when out of memory. */
static char *vd_host_path(const char *directory, size_t directory_length, const char *stored)
{
    size_t stored_length = strlen(stored);
    char *joined = malloc(directory_length + 1 + stored_length + 1);
    if (joined == NULL)
        return NULL;
    memcpy(joined, directory, directory_length);
    joined[directory_length] = '/';
    for (size_t i = 0; i <= stored_length; i++)
        joined[directory_length + 1 + i] = stored[i] == '\\' ? '/' : stored[i];
    char *normalized = vd_path_normalize(joined);
    free(joined);
    return normalized;
}

/* The host path a relative locator names, or NULL (with *status success)
 * when it cannot name a file here.  Rooted ("\dir\x") and drive-qualified
 * ("D:x") forms are relative to a Windows drive, not to the child. */
static char *vd_relative_candidate(const char *child_path, const char *stored, uint32_t *status)
{
    *status = VD_ERROR_SUCCESS;
    if (stored == NULL || stored[0] == '\0' || vd_is_separator(stored[0])
        || vd_path_has_drive_letter(stored) || child_path == NULL || child_path[0] != '/')
        return NULL;
    const char *slash = strrchr(child_path, '/');
    char *path = vd_host_path(child_path, (size_t)(slash - child_path), stored);
    if (path == NULL)
        *status = VD_ERROR_NOT_ENOUGH_MEMORY;
    return path;
}

/* The host path an absolute or volume locator names, or NULL (with *status
 * success) when it cannot name a file here: "\\?\C:\x", "\\?\Volume{...}\x",
 * "\\server\share\x" and "C:\x" are Windows namespaces; only a plain rooted
 * path ("/srv/x", or "\srv\x" as a POSIX host's path written the Windows
 * way) is a host path. */
static char *vd_absolute_candidate(const char *stored, uint32_t *status)
{
    *status = VD_ERROR_SUCCESS;
    if (stored == NULL || !vd_is_separator(stored[0]) || vd_is_separator(stored[1]))
        return NULL;
    char *path = vd_host_path("", 0, stored);
    if (path == NULL)
        *status = VD_ERROR_NOT_ENOUGH_MEMORY;
    return path;
}

void vd_parent_candidates_release(vd_parent_candidates *candidates)
{
    if (candidates == NULL)
        return;
    for (size_t i = 0; i < candidates->count; i++)
        free(candidates->paths[i]);
    candidates->count = 0;
}

static uint32_t vd_parent_candidates_add(vd_parent_candidates *out, char *path, uint32_t status)
{
    if (status != VD_ERROR_SUCCESS)
        return status;
    if (path != NULL)
        out->paths[out->count++] = path;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_parent_candidates_get(const vd_image *child, vd_parent_candidates *out)
{
    uint32_t status;
    char *path;
    memset(out, 0, sizeof *out);
    if (child == NULL)
        return VD_ERROR_INVALID_PARAMETER;

    path = vd_relative_candidate(child->file.path, child->parent.relative_path, &status);
    status = vd_parent_candidates_add(out, path, status);
    if (status == VD_ERROR_SUCCESS) {
        path = vd_absolute_candidate(child->parent.volume_path, &status);
        status = vd_parent_candidates_add(out, path, status);
    }
    if (status == VD_ERROR_SUCCESS) {
        path = vd_absolute_candidate(child->parent.absolute_path, &status);
        status = vd_parent_candidates_add(out, path, status);
    }
    if (status != VD_ERROR_SUCCESS)
        vd_parent_candidates_release(out);
    return status;
}

/* ---- opening one parent ------------------------------------------------ */

/* Formats whose images can be parents of some image. */
static int vd_driver_can_parent(const vd_format_driver *driver)
{
    return !driver->read_only;
}

/* Parses an opened parent file with the parser its signature names.  Any
 * failure is the parent's damage, reported as such; running out of memory
 * is not damage and keeps its own code. */
static uint32_t vd_parent_parse(vd_file *file, vd_image *parent)
{
    const vd_format_driver *driver = vd_format_driver_by_signature(file, NULL,
                                                                   vd_driver_can_parent);
    uint32_t status = driver != NULL ? driver->open(file, parent)
                                     : vd_fail(VD_ERROR_VIRTDISK_NOT_VIRTUAL_DISK,
                                               "it is no virtual disk a parent can be");
    if (status == VD_ERROR_SUCCESS || status == VD_ERROR_NOT_ENOUGH_MEMORY
        || status == VD_ERROR_OUTOFMEMORY)
        return status;
    return VD_ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT;
}

/* Of the outcomes of locations that did not work, the one that says most:
 * a file with the wrong identity, then a file we may not open, then none. */
static uint32_t vd_worse_miss(uint32_t current, uint32_t candidate)
{
    static const uint32_t order[] = {
        VD_ERROR_VHD_CHILD_PARENT_ID_MISMATCH,
        VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED,
        VD_ERROR_VHD_PARENT_VHD_NOT_FOUND,
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (current == order[i] || candidate == order[i])
            return order[i];
    }
    return current;
}

typedef struct vd_link_context {
    vd_file_identity *seen;   /* files already in the chain, child first */
    uint32_t seen_count;
    int writable;
} vd_link_context;

/* Tries one candidate path.  VD_ERROR_SUCCESS: `parent` is open and checked.
 * A "miss" code (NOT_FOUND, ACCESS_DENIED, ID_MISMATCH) lets the search go
 * on with the next location; anything else ends it. */

/* [MS-VHDX] 2.6.2.6: a parent matches when its DataWriteGuid equals the
 * child's parent_linkage or, if present, its parent_linkage2 (written while
 * a parent is being updated).  For VHD only the ParentUniqueId applies. */
static int vd_parent_matches(const vd_image *child, const vd_image *parent)
{
    const size_t size = sizeof parent->identifier.bytes;
    if (memcmp(parent->identifier.bytes, child->parent_identifier.bytes, size) == 0) {
        return 1;
    }
    return child->has_parent_identifier2
           && memcmp(parent->identifier.bytes, child->parent_identifier2.bytes, size) == 0;
}
/* Whether `child` may differ in size from its parent: a format whose
 * resize takes children reads zeros past the parent's end (driver.h). */
static int vd_child_size_free(const vd_image *child)
{
    const vd_format_driver *driver = vd_image_driver(child);
    return driver != NULL && driver->resizes_children;
}

static uint32_t vd_parent_try(const vd_image *child, const char *candidate,
                              vd_link_context *context, vd_image *parent,
                              vd_file_identity *identity)
{
    struct stat info;
    if (stat(candidate, &info) != 0) {
        if (errno == EACCES || errno == EPERM)
            return VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED;
        return VD_ERROR_VHD_PARENT_VHD_NOT_FOUND;
    }
    if (vd_identity_seen(context->seen, context->seen_count, &info))
        return vd_fail(VD_ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED, "parent %s is already in the chain",
                       candidate);

    vd_file file;
    uint32_t status = vd_file_open(&file, candidate, context->writable);
    if (status == VD_ERROR_FILE_NOT_FOUND || status == VD_ERROR_PATH_NOT_FOUND)
        return VD_ERROR_VHD_PARENT_VHD_NOT_FOUND;   /* gone since the stat */
    if (status == VD_ERROR_ACCESS_DENIED)
        return VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED;
    if (status == VD_ERROR_SHARING_VIOLATION && vd_detail_get() != NULL)
        return vd_detail_wrap(status, "parent %s", candidate);   /* the detail names its holder */
    if (status != VD_ERROR_SUCCESS)
        return status;

    /* The identity of what was opened, not of what was looked at. */
    if (fstat(file.fd, &info) != 0) {
        status = vd_error_from_errno(errno);
        vd_file_close(&file);
        return status;
    }
    if (vd_identity_seen(context->seen, context->seen_count, &info)) {
        vd_file_close(&file);
        return vd_fail(VD_ERROR_VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED, "parent %s is already in the chain",
                       candidate);
    }

    status = vd_parent_parse(&file, parent);
    if (status != VD_ERROR_SUCCESS) {
        vd_file_close(&file);
        return status == VD_ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT
                   ? vd_detail_wrap(status, "parent %s", candidate) : status;
    }
    if (!vd_parent_matches(child, parent)) {
        vd_image_release(parent);
        return VD_ERROR_VHD_CHILD_PARENT_ID_MISMATCH;
    }
    if (parent->virtual_size != child->virtual_size && !vd_child_size_free(child)) {
        uint64_t size = parent->virtual_size;
        vd_image_release(parent);
        return vd_fail(VD_ERROR_VHD_CHILD_PARENT_SIZE_MISMATCH,
                       "parent %s is %" PRIu64 " bytes, the child %" PRIu64, candidate, size, child->virtual_size);
    }
    identity->device = info.st_dev;
    identity->inode = info.st_ino;
    return VD_ERROR_SUCCESS;
}

static int vd_is_search_miss(uint32_t status)
{
    return status == VD_ERROR_VHD_PARENT_VHD_NOT_FOUND
           || status == VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED
           || status == VD_ERROR_VHD_CHILD_PARENT_ID_MISMATCH;
}

static uint32_t vd_parent_open(const vd_image *child, vd_link_context *context,
                               vd_image *parent, vd_file_identity *identity)
{
    vd_parent_candidates candidates;
    uint32_t status = vd_parent_candidates_get(child, &candidates);
    if (status != VD_ERROR_SUCCESS)
        return status;

    uint32_t outcome = VD_ERROR_VHD_PARENT_VHD_NOT_FOUND;
    size_t outcome_path = SIZE_MAX;   /* the location that gave `outcome` */
    for (size_t i = 0; i < candidates.count; i++) {
        status = vd_parent_try(child, candidates.paths[i], context, parent, identity);
        if (!vd_is_search_miss(status)) {
            outcome = status;
            break;
        }
        if (vd_worse_miss(outcome, status) != outcome || outcome_path == SIZE_MAX)
            outcome_path = i;
        outcome = vd_worse_miss(outcome, status);
    }
    if (outcome == VD_ERROR_VHD_PARENT_VHD_NOT_FOUND)
        vd_detail_set("the parent is at none of the %zu locations the child records", candidates.count);
    else if (outcome == VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED)
        vd_detail_set("parent %s may not be opened", candidates.paths[outcome_path]);
    else if (outcome == VD_ERROR_VHD_CHILD_PARENT_ID_MISMATCH)
        vd_detail_set("parent %s is not the disk the child was made from (its identifier differs)",
                      candidates.paths[outcome_path]);
    vd_parent_candidates_release(&candidates);
    return outcome;
}

/* ---- the chain --------------------------------------------------------- */

/* A parser reading absent sectors asks its parent for them without naming
 * the grandparent (it does not know it).  So each parent in a chain gets
 * ops that forward to its parser with its own parent filled in.  `ops` is
 * the first member: the ops pointer of an image leads back to its link. */
struct vd_chain_link {
    vd_format_ops ops;
    const vd_format_ops *inner;
    vd_image *parent;
};

static uint32_t vd_chain_link_read(vd_image *image, vd_image *parent, uint64_t offset,
                                   void *buffer, uint64_t length)
{
    (void)parent;
    const struct vd_chain_link *link = (const struct vd_chain_link *)image->ops;
    return link->inner->read(image, link->parent, offset, buffer, length);
}

static void vd_chain_link_release(vd_image *image)
{
    const struct vd_chain_link *link = (const struct vd_chain_link *)image->ops;
    image->ops = link->inner;
    if (image->ops != NULL && image->ops->release != NULL)
        image->ops->release(image);
}

/* Installs `links` (chain->count of them, zeroed) on the chain's images. */
static void vd_chain_link_with(vd_chain *chain, struct vd_chain_link *links)
{
    chain->links = links;
    for (uint32_t i = 0; i < chain->count; i++) {
        struct vd_chain_link *link = &chain->links[i];
        vd_image *image = &chain->images[i];
        /* The other ops stay the format's: a merge writes and flushes an
         * ancestor (disk/merge_copy.c) through them. */
        if (image->ops != NULL)
            link->ops = *image->ops;
        link->ops.read = vd_chain_link_read;
        link->ops.release = vd_chain_link_release;
        link->inner = image->ops;
        link->parent = i + 1 < chain->count ? &chain->images[i + 1] : NULL;
        image->ops = &link->ops;
    }
}

/* Installed once the chain is complete, when the images no longer move. */
static uint32_t vd_chain_link_all(vd_chain *chain)
{
    struct vd_chain_link *links = calloc(chain->count, sizeof *links);
    if (links == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    vd_chain_link_with(chain, links);
    return VD_ERROR_SUCCESS;
}

/* Gives every image of the chain its parser's own ops back. */
static void vd_chain_unlink(vd_chain *chain)
{
    for (uint32_t i = 0; chain->links != NULL && i < chain->count; i++)
        chain->images[i].ops = chain->links[i].inner;
    free(chain->links);
    chain->links = NULL;
}

void vd_chain_close(vd_chain *chain)
{
    if (chain == NULL)
        return;
    /* From the base down, the reverse of the opening order; each image gets
     * its parser's own ops back first, so releasing is what it always is. */
    while (chain->count > 0) {
        chain->count--;
        vd_image *image = &chain->images[chain->count];
        if (chain->links != NULL)
            image->ops = chain->links[chain->count].inner;
        vd_image_release(image);
    }
    free(chain->links);
    chain->links = NULL;
    free(chain->images);
    chain->images = NULL;
}

static uint32_t vd_chain_reserve(vd_chain *chain, uint32_t *capacity)
{
    if (chain->count < *capacity)
        return VD_ERROR_SUCCESS;
    uint32_t grown = *capacity == 0 ? 4 : *capacity * 2;
    if (grown > VD_CHAIN_MAX_DEPTH)
        grown = VD_CHAIN_MAX_DEPTH;
    vd_image *images = realloc(chain->images, (size_t)grown * sizeof *images);
    if (images == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    chain->images = images;
    *capacity = grown;
    return VD_ERROR_SUCCESS;
}

/* The image furthest from the child opened so far (the child itself while
 * the chain is empty). */
static const vd_image *vd_chain_last(const vd_image *child, const vd_chain *chain)
{
    return chain->count == 0 ? child : &chain->images[chain->count - 1];
}

uint32_t vd_chain_open(const vd_image *child, uint32_t writable_depth, vd_chain *chain)
{
    if (chain == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    chain->images = NULL;
    chain->links = NULL;
    chain->count = 0;
    if (child == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    if (!child->has_parent)
        return VD_ERROR_SUCCESS;

    /* One identity per image, the child included: 4 KiB at the limit. */
    vd_file_identity seen[VD_CHAIN_MAX_DEPTH];
    vd_link_context context = { seen, 0, 0 };
    struct stat info;
    if (child->file.fd >= 0 && fstat(child->file.fd, &info) == 0) {
        seen[0].device = info.st_dev;
        seen[0].inode = info.st_ino;
        context.seen_count = 1;
    }

    uint32_t capacity = 0;
    uint32_t status = VD_ERROR_SUCCESS;
    /* The image whose parent comes next is looked up afresh each time:
     * growing the array moves the images. */
    while (vd_chain_last(child, chain)->has_parent) {
        /* count + 1 images are open (the child included); one more would
         * go past the limit. */
        if (chain->count + 1 >= VD_CHAIN_MAX_DEPTH) {
            status = VD_ERROR_VIRTUAL_DISK_LIMITATION;
            break;
        }
        status = vd_chain_reserve(chain, &capacity);
        if (status != VD_ERROR_SUCCESS)
            break;
        /* The parent at chain index i is image number i + 1 from the child
         * (the child is number 0). */
        context.writable = chain->count + 1 < writable_depth;
        vd_image *parent = &chain->images[chain->count];
        memset(parent, 0, sizeof *parent);
        status = vd_parent_open(vd_chain_last(child, chain), &context, parent,
                                &seen[context.seen_count]);
        if (status != VD_ERROR_SUCCESS)
            break;
        context.seen_count++;
        chain->count++;
    }
    if (status == VD_ERROR_SUCCESS && chain->count > 0)
        status = vd_chain_link_all(chain);
    if (status != VD_ERROR_SUCCESS)
        vd_chain_close(chain);
    return status;
}

uint32_t vd_chain_open_again(const vd_chain *model, vd_chain *chain)
{
    chain->images = NULL;
    chain->links = NULL;
    chain->count = 0;
    if (model->count == 0)
        return VD_ERROR_SUCCESS;
    chain->images = calloc(model->count, sizeof *chain->images);
    if (chain->images == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    uint32_t status = VD_ERROR_SUCCESS;
    while (status == VD_ERROR_SUCCESS && chain->count < model->count) {
        const vd_file *opened = &model->images[chain->count].file;
        struct stat info;
        vd_file file = {
            .fd = opened->fd,
            .writable = opened->writable,
            .size = fstat(opened->fd, &info) == 0 ? (uint64_t)info.st_size : opened->size,
            .path = strdup(opened->path),
        };
        status = file.path != NULL ? vd_parent_parse(&file, &chain->images[chain->count])
                                   : VD_ERROR_NOT_ENOUGH_MEMORY;
        if (status == VD_ERROR_SUCCESS)
            chain->count++;
        else
            free(file.path);
    }
    if (status == VD_ERROR_SUCCESS)
        status = vd_chain_link_all(chain);
    if (status != VD_ERROR_SUCCESS)
        vd_chain_close(chain);
    return status;
}

uint32_t vd_chain_read(vd_image *child, vd_chain *chain, uint64_t offset, void *buffer,
                       uint64_t length)
{
    if (child == NULL || child->ops == NULL || child->ops->read == NULL)
        return VD_ERROR_INVALID_HANDLE;
    vd_image *parent = chain != NULL && chain->count > 0 ? chain->images : NULL;
    return child->ops->read(child, parent, offset, buffer, length);
}

uint32_t vd_parent_location_get(const vd_image *child, const vd_chain *chain,
                                vd_parent_location *out)
{
    memset(out, 0, sizeof *out);
    if (child == NULL)
        return VD_ERROR_INVALID_PARAMETER;
    if (!child->has_parent)
        return VD_ERROR_VHD_INVALID_TYPE;
    if (chain != NULL && chain->count > 0 && chain->images[0].file.path != NULL) {
        out->resolved = 1;
        out->paths[0] = chain->images[0].file.path;
        out->count = 1;
        return VD_ERROR_SUCCESS;
    }
    const char *stored[] = {
        child->parent.relative_path, child->parent.volume_path, child->parent.absolute_path,
    };
    for (size_t i = 0; i < sizeof stored / sizeof stored[0]; i++) {
        if (stored[i] != NULL && stored[i][0] != '\0')
            out->paths[out->count++] = stored[i];
    }
    return VD_ERROR_SUCCESS;
}

/* The file identities of the child and of every image in its chain, for
 * the cycle check of a parent added by hand; returns how many. */
static uint32_t vd_chain_identities(const vd_image *child, const vd_chain *chain,
                                    vd_file_identity *seen)
{
    uint32_t count = 0;
    struct stat info;
    for (uint32_t i = 0; i <= chain->count; i++) {
        const vd_image *image = i == 0 ? child : &chain->images[i - 1];
        if (image->file.fd >= 0 && fstat(image->file.fd, &info) == 0) {
            seen[count].device = info.st_dev;
            seen[count].inode = info.st_ino;
            count++;
        }
    }
    return count;
}

/* The chain grown by `parent`, which becomes its last image. */
static uint32_t vd_chain_append(vd_chain *chain, const vd_image *parent)
{
    struct vd_chain_link *links = calloc(chain->count + 1, sizeof *links);
    vd_image *images = links != NULL ? malloc((size_t)(chain->count + 1) * sizeof *images) : NULL;
    if (images == NULL) {
        free(links);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    vd_chain_unlink(chain);
    if (chain->count > 0)
        memcpy(images, chain->images, (size_t)chain->count * sizeof *images);
    images[chain->count] = *parent;
    free(chain->images);
    chain->images = images;
    chain->count++;
    vd_chain_link_with(chain, links);
    return VD_ERROR_SUCCESS;
}

uint32_t vd_chain_add(const vd_image *child, vd_chain *chain, const char *path,
                      vd_parent_check accepts)
{
    const vd_image *tail = vd_chain_last(child, chain);
    if (!tail->has_parent)
        return vd_fail(VD_ERROR_VHD_INVALID_TYPE,
                       "the last disk of the chain is no differencing disk: it takes no parent");
    if (chain->count + 1 >= VD_CHAIN_MAX_DEPTH)
        return vd_fail(VD_ERROR_VIRTUAL_DISK_LIMITATION, "the chain holds %u disks already",
                       VD_CHAIN_MAX_DEPTH);
    /* A path that names nothing fails with its own code, as a new parent
     * given to SetVirtualDiskInformation does. */
    struct stat info;
    if (stat(path, &info) != 0)
        return vd_error_from_errno(errno);

    vd_file_identity seen[VD_CHAIN_MAX_DEPTH];
    vd_link_context context = { seen, vd_chain_identities(child, chain, seen), 0 };
    vd_image parent;
    memset(&parent, 0, sizeof parent);
    vd_file_identity identity;
    uint32_t status = vd_parent_try(tail, path, &context, &parent, &identity);
    if (status == VD_ERROR_VHD_CHILD_PARENT_ID_MISMATCH)
        return vd_fail(status, "%s is not the disk the chain's last disk was made from "
                       "(its identifier differs)", path);
    if (status == VD_ERROR_VHD_PARENT_VHD_ACCESS_DENIED)
        return vd_fail(status, "parent %s may not be opened", path);
    if (status != VD_ERROR_SUCCESS)
        return status;
    status = accepts != NULL ? accepts(&parent, tail) : VD_ERROR_SUCCESS;
    if (status == VD_ERROR_SUCCESS)
        status = vd_chain_append(chain, &parent);
    if (status != VD_ERROR_SUCCESS)
        vd_image_release(&parent);
    return status;
}
