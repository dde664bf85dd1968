/* Differencing chains: finding, opening and checking the parents of a
 * differencing image, and reporting where its parent is.
 *
 * A chain holds the ancestors of one child image, nearest first.  The child
 * itself stays with whoever opened it (the handle), so opening a disk with
 * OPEN_VIRTUAL_DISK_FLAG_NO_PARENTS simply means not building a chain. */
#ifndef VDENGINE_CHAIN_H
#define VDENGINE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "disk/image.h"

/* Images in one chain, the child included.  Deeper chains are refused with
 * VD_ERROR_VIRTUAL_DISK_LIMITATION: real chains (checkpoint trees) stay far
 * below this, and the bound keeps a crafted loop of distinct files from
 * holding descriptors without end. */
#define VD_CHAIN_MAX_DEPTH 256u

struct vd_chain_link;

typedef struct vd_chain {
    /* images[0] is the child's parent, images[i + 1] the parent of
     * images[i]; the last one has no parent.  Each image's read op knows
     * its own ancestors, so a parser reads from the parent it is handed
     * with parent->ops->read(parent, NULL, ...). */
    vd_image *images;
    struct vd_chain_link *links;   /* the read ops that add the ancestors */
    uint32_t count;
} vd_chain;

/* Opens every ancestor of `child` (a differencing image whose file is open)
 * into `chain`.  `writable_depth` is OPEN_VIRTUAL_DISK_PARAMETERS V1
 * RWDepth: the number of images, counting the child as the first, that are
 * opened read-write; ancestors beyond it are opened read-only, which is all
 * reading needs (a merge needs its targets writable).
 *
 * Returns VD_ERROR_SUCCESS with an empty chain for a child without parent.
 * On failure the chain is empty and nothing needs releasing.  The codes:
 *   VHD_PARENT_VHD_NOT_FOUND         no stored location names an existing file;
 *   VHD_PARENT_VHD_ACCESS_DENIED     a parent exists but cannot be opened;
 *   VHD_CHILD_PARENT_ID_MISMATCH     files were found, none with the identity
 *                                    the child records for its parent;
 *   VHD_CHILD_PARENT_SIZE_MISMATCH   the parent's virtual size differs (a
 *                                    VHDX child may differ: driver.h's
 *                                    resizes_children);
 *   VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED  a file occurs twice in the chain;
 *   VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT the parent file was opened but is
 *                                    no image its parsers accept, or reading
 *                                    it failed;
 *   VIRTUAL_DISK_LIMITATION          more than VD_CHAIN_MAX_DEPTH images;
 *   SHARING_VIOLATION and other host errors on a parent file unchanged.
 * Each applies to whichever link of the chain it occurs at. */
uint32_t vd_chain_open(const vd_image *child, uint32_t writable_depth, vd_chain *chain);

/* AddVirtualDiskParent: opens the image at `path` (an absolute host path)
 * read-only, without its own parents, and puts it at the end of `chain`,
 * as the parent of the image furthest from `child`.  It must be that
 * image's parent as the resolver would accept it: the identifier the image
 * records, the same virtual size, no file twice in the chain.  The codes:
 *   VHD_INVALID_TYPE  the furthest image is no differencing image;
 *   the path's own open code (2, 3, ...) when it names nothing;
 *   VHD_CHILD_PARENT_ID_MISMATCH, VHD_CHILD_PARENT_SIZE_MISMATCH,
 *   VHD_DIFFERENCING_CHAIN_CYCLE_DETECTED, VHD_PARENT_VHD_ACCESS_DENIED,
 *   VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT as vd_chain_open gives them;
 *   VIRTUAL_DISK_LIMITATION  the chain would exceed VD_CHAIN_MAX_DEPTH;
 *   whatever `accepts` (when not NULL) answers other than success, asked
 *   with the opened parent and the image it would be the parent of: the
 *   caller's rules on formats (the driver table, which the chain does not
 *   use, so that it can be tested with parsers of its own).
 * On failure the chain is as it was. */
typedef uint32_t (*vd_parent_check)(const vd_image *parent, const vd_image *child);
uint32_t vd_chain_add(const vd_image *child, vd_chain *chain, const char *path,
                      vd_parent_check accepts);

/* The ancestors `model` holds, parsed again on the very descriptors its
 * images have open (the same open file descriptions, so the sharing locks
 * they hold stay held), each with fresh format state: how a process that
 * inherited them (a permanent export's server, api/attach_server.c)
 * builds a chain of its own without taking the locks again.  Only plain
 * fields of `model` are read.  A parse failure is
 * VD_ERROR_VHD_DIFFERENCING_CHAIN_ERROR_IN_PARENT; on failure the chain is
 * empty and the descriptors parsed by then are closed with it. */
uint32_t vd_chain_open_again(const vd_chain *model, vd_chain *chain);

/* Releases every ancestor; safe on a zeroed or already closed chain. */
void vd_chain_close(vd_chain *chain);

/* Reads virtual disk content of `child` through its chain (empty chain: the
 * child alone, parent sectors read as the child's parser decides). */
uint32_t vd_chain_read(vd_image *child, vd_chain *chain, uint64_t offset, void *buffer,
                       uint64_t length);

/* The host paths tried for the parent of `child`, in the order tried:
 * relative path (against the directory of the child's path), then the
 * absolute-looking stored paths.  See chain.c for which stored forms can
 * name a file on this host.  Strings are malloc'd. */
#define VD_PARENT_CANDIDATES_MAX 3u
typedef struct vd_parent_candidates {
    char *paths[VD_PARENT_CANDIDATES_MAX];
    size_t count;
} vd_parent_candidates;

uint32_t vd_parent_candidates_get(const vd_image *child, vd_parent_candidates *out);
void vd_parent_candidates_release(vd_parent_candidates *candidates);

/* GET_VIRTUAL_DISK_INFO_PARENT_LOCATION.  Resolved (the chain holds the
 * parent): one path, the parent's host path.  Unresolved (opened without
 * parents): the locations stored in the child, as stored, in the order
 * Windows searches them (relative, volume, absolute), empty ones left out;
 * the caller joins them into the MULTI_SZ Windows returns.  A child that is
 * not a differencing image gives VD_ERROR_VHD_INVALID_TYPE. */
typedef struct vd_parent_location {
    int resolved;
    const char *paths[VD_PARENT_CANDIDATES_MAX];   /* borrowed from child/chain */
    size_t count;
} vd_parent_location;

uint32_t vd_parent_location_get(const vd_image *child, const vd_chain *chain,
                                vd_parent_location *out);

#endif
