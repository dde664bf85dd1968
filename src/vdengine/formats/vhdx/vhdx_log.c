/* VHDX log: entry validation, active sequence search, replay ([MS-VHDX] 2.3).
 *
 * The log is read into memory once (it lies inside the file, so the
 * allocation is bounded by what the file holds); all work after that is on
 * that buffer, and every loop is bounded by the log length:
 *
 *   1. Scan.  Every 4 KiB position may start an entry.  An entry is valid
 *      when its header says "loge", its length is a non-zero multiple of
 *      4 KiB no longer than the log, its sequence number is not zero, it
 *      carries the header's LogGuid, every descriptor is "desc" or "zero"
 *      with the entry's sequence number, every data sector is "data" with
 *      the two halves of that number, and its CRC-32C (over the whole entry,
 *      checksum field zero) matches.  Entries may wrap around the end of the
 *      circular log.  Writers put entries one after another, so no valid
 *      entry begins inside another (its first sector would have been
 *      overwritten): the scan jumps over each valid entry it finds.
 *   2. Active sequence (2.3.2, 2.3.3).  A sequence is a run of valid entries
 *      laid end to end in the log with sequence numbers rising by one; it is
 *      usable when its last entry (the head) names the run's first entry in
 *      its Tail field.  The active sequence is the usable one whose head has
 *      the highest sequence number; stale entries of earlier runs are normal
 *      and ignored.
 *   3. Replay.  Entries are applied in order, each descriptor in order: a
 *      data descriptor writes one 4 KiB sector (its 8 leading bytes, the
 *      data sector's 4084 payload bytes, its 4 trailing bytes), a zero
 *      descriptor writes zeros.  An entry whose FlushedFileOffset exceeds
 *      the file size means the file lost data the log relied on; after an
 *      entry the file is at least LastFileOffset long. */
#define _POSIX_C_SOURCE 200809L

#include "formats/vhdx/vhdx_log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/detail.h"
#include "base/crc32c.h"
#include "base/endian.h"
#include "base/vd_errors.h"
#include "formats/vhdx/vhdx_format.h"

/* No valid VHDX reaches this size: 64 TiB of payload plus its BAT, sector
 * bitmaps, metadata and log stay far below it.  Bounding replayed offsets by
 * it keeps every sum below 2^64 and refuses a LastFileOffset that would
 * grow the file absurdly. */
#define VD_VHDX_MAX_FILE_SIZE (UINT64_C(1) << 47)

/* Validating a damaged candidate costs its claimed length; a log where such
 * costs add up past this many times its length is refused rather than
 * scanned quadratically.  Real logs spend about one log length in total. */
#define VD_VHDX_LOG_CHECK_BUDGET_FACTOR 4u

/* Zero descriptors may name any length; writing them costs what they cover
 * inside the file.  A sequence whose zeros add up to more than this many
 * times the file (and its log) is refused: real ones zero a few blocks. */
#define VD_VHDX_ZERO_WORK_FACTOR 4u

typedef struct vd_vhdx_log_entry {
    uint64_t position;              /* byte offset of the entry in the log */
    uint64_t sequence;
    uint64_t flushed_file_offset;
    uint64_t last_file_offset;
    uint32_t sectors;               /* EntryLength / 4 KiB */
    uint32_t tail;
    uint32_t descriptor_count;
    uint32_t descriptor_sectors;
} vd_vhdx_log_entry;

typedef struct vd_vhdx_extent {
    uint64_t file_offset;
    uint64_t length;
    const uint8_t *data;            /* one rebuilt 4 KiB sector, NULL for zeros */
} vd_vhdx_extent;

struct vd_vhdx_replay {
    uint8_t *log;                   /* the log; data sectors rebuilt in place */
    vd_vhdx_extent *extents;
    size_t extent_count;
    uint64_t file_size;
    uint64_t lowest;                /* every extent lies in [lowest, highest) */
    uint64_t highest;
};

typedef struct vd_vhdx_log_view {
    uint8_t *bytes;
    uint64_t length;
    const uint8_t *guid;
    uint64_t check_budget;          /* bytes of candidates still allowed */
} vd_vhdx_log_view;

static uint8_t *vd_vhdx_log_sector(const vd_vhdx_log_view *log, uint64_t position, uint64_t index)
{
    return log->bytes + (position + index * VD_VHDX_LOG_SECTOR_SIZE) % log->length;
}

static uint8_t *vd_vhdx_log_descriptor(const vd_vhdx_log_view *log, const vd_vhdx_log_entry *entry,
                                       uint32_t index)
{
    uint64_t slot = (uint64_t)index + VD_VHDX_LOG_HEADER_DESCRIPTOR_SLOTS;
    return vd_vhdx_log_sector(log, entry->position, slot / VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR)
         + (slot % VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR) * VD_VHDX_LOG_DESCRIPTOR_SIZE;
}

/* CRC-32C of the entry with its checksum field taken as zero; the entry's
 * bytes may continue at the start of the log. */
static uint32_t vd_vhdx_log_entry_checksum(const vd_vhdx_log_view *log, uint64_t position,
                                           uint64_t length)
{
    static const uint8_t zero_field[4];
    const uint8_t *start = log->bytes + position;
    uint32_t crc = vd_crc32c(start, VD_VHDX_LOG_ENTRY_CHECKSUM_OFFSET);
    crc = vd_crc32c_extend(crc, zero_field, sizeof zero_field);
    uint64_t after_field = VD_VHDX_LOG_ENTRY_CHECKSUM_OFFSET + sizeof zero_field;
    uint64_t contiguous = log->length - position < length ? log->length - position : length;
    crc = vd_crc32c_extend(crc, start + after_field, (size_t)(contiguous - after_field));
    if (contiguous < length)
        crc = vd_crc32c_extend(crc, log->bytes, (size_t)(length - contiguous));
    return crc;
}

static int vd_vhdx_log_descriptors_valid(const vd_vhdx_log_view *log, const vd_vhdx_log_entry *entry)
{
    uint32_t data_sectors = 0;
    for (uint32_t i = 0; i < entry->descriptor_count; i++) {
        const uint8_t *descriptor = vd_vhdx_log_descriptor(log, entry, i);
        if (vd_load_le64(descriptor + VD_VHDX_LOG_DESC_SEQUENCE_OFFSET) != entry->sequence)
            return 0;
        uint64_t file_offset = vd_load_le64(descriptor + VD_VHDX_LOG_DESC_FILE_OFFSET_OFFSET);
        if (file_offset % VD_VHDX_LOG_SECTOR_SIZE != 0)
            return 0;
        if (memcmp(descriptor, VD_VHDX_LOG_ZERO_SIGNATURE, 4) == 0) {
            uint64_t zero_length = vd_load_le64(descriptor + VD_VHDX_LOG_ZERO_LENGTH_OFFSET);
            if (zero_length == 0 || zero_length % VD_VHDX_LOG_SECTOR_SIZE != 0)
                return 0;
            continue;
        }
        if (memcmp(descriptor, VD_VHDX_LOG_DATA_DESC_SIGNATURE, 4) != 0)
            return 0;
        if ((uint64_t)entry->descriptor_sectors + data_sectors >= entry->sectors)
            return 0;   /* the entry is too short for its data sectors */
        const uint8_t *data = vd_vhdx_log_sector(log, entry->position,
                                                 (uint64_t)entry->descriptor_sectors + data_sectors);
        if (memcmp(data, VD_VHDX_LOG_DATA_SIGNATURE, 4) != 0
            || vd_load_le32(data + VD_VHDX_LOG_DATA_SEQUENCE_HIGH_OFFSET) != (uint32_t)(entry->sequence >> 32)
            || vd_load_le32(data + VD_VHDX_LOG_DATA_SEQUENCE_LOW_OFFSET) != (uint32_t)entry->sequence)
            return 0;
        data_sectors++;
    }
    return 1;
}

/* 1 when a valid entry starts at `position` (filling *entry), 0 when not,
 * -1 when the check budget is spent. */
static int vd_vhdx_log_entry_parse(vd_vhdx_log_view *log, uint64_t position, vd_vhdx_log_entry *entry)
{
    const uint8_t *header = log->bytes + position;
    if (memcmp(header, VD_VHDX_LOG_ENTRY_SIGNATURE, 4) != 0)
        return 0;
    uint32_t length = vd_load_le32(header + VD_VHDX_LOG_ENTRY_LENGTH_OFFSET);
    if (length == 0 || length % VD_VHDX_LOG_SECTOR_SIZE != 0 || length > log->length)
        return 0;
    entry->position = position;
    entry->sequence = vd_load_le64(header + VD_VHDX_LOG_ENTRY_SEQUENCE_OFFSET);
    entry->sectors = length / VD_VHDX_LOG_SECTOR_SIZE;
    entry->tail = vd_load_le32(header + VD_VHDX_LOG_ENTRY_TAIL_OFFSET);
    entry->descriptor_count = vd_load_le32(header + VD_VHDX_LOG_ENTRY_DESC_COUNT_OFFSET);
    entry->flushed_file_offset = vd_load_le64(header + VD_VHDX_LOG_ENTRY_FLUSHED_OFFSET);
    entry->last_file_offset = vd_load_le64(header + VD_VHDX_LOG_ENTRY_LAST_OFFSET);
    if (entry->sequence == 0
        || memcmp(header + VD_VHDX_LOG_ENTRY_LOG_GUID_OFFSET, log->guid, 16) != 0)
        return 0;
    uint64_t descriptor_sectors = ((uint64_t)entry->descriptor_count + VD_VHDX_LOG_HEADER_DESCRIPTOR_SLOTS
                                   + VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR - 1)
                                / VD_VHDX_LOG_DESCRIPTORS_PER_SECTOR;
    if (descriptor_sectors > entry->sectors)
        return 0;
    entry->descriptor_sectors = (uint32_t)descriptor_sectors;

    if (log->check_budget < length)
        return -1;
    log->check_budget -= length;
    if (!vd_vhdx_log_descriptors_valid(log, entry))
        return 0;
    uint32_t stored = vd_load_le32(header + VD_VHDX_LOG_ENTRY_CHECKSUM_OFFSET);
    return vd_vhdx_log_entry_checksum(log, position, length) == stored;
}

/* The valid entries, in log order. */
static uint32_t vd_vhdx_log_scan(vd_vhdx_log_view *log, vd_vhdx_log_entry **entries_out, size_t *count_out)
{
    size_t capacity = (size_t)(log->length / VD_VHDX_LOG_SECTOR_SIZE);
    vd_vhdx_log_entry *entries = malloc(capacity * sizeof *entries);
    if (entries == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    size_t count = 0;
    uint64_t position = 0;
    while (position < log->length) {
        int found = vd_vhdx_log_entry_parse(log, position, &entries[count]);
        if (found < 0) {
            free(entries);
            return vd_fail(VD_ERROR_FILE_CORRUPT, "the log's entries need more checksum work than a log of"
                           " its size can hold");
        }
        if (found) {
            position += (uint64_t)entries[count].sectors * VD_VHDX_LOG_SECTOR_SIZE;
            count++;
        } else {
            position += VD_VHDX_LOG_SECTOR_SIZE;
        }
    }
    *entries_out = entries;
    *count_out = count;
    return VD_ERROR_SUCCESS;
}

/* Index of the entry starting at `position`, or SIZE_MAX. */
static size_t vd_vhdx_log_find(const vd_vhdx_log_entry *entries, size_t count, uint64_t position)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (entries[middle].position < position)
            low = middle + 1;
        else
            high = middle;
    }
    return low < count && entries[low].position == position ? low : SIZE_MAX;
}

static size_t vd_vhdx_log_next(const vd_vhdx_log_view *log, const vd_vhdx_log_entry *entries,
                               size_t count, size_t index)
{
    const vd_vhdx_log_entry *entry = &entries[index];
    uint64_t next = (entry->position + (uint64_t)entry->sectors * VD_VHDX_LOG_SECTOR_SIZE) % log->length;
    size_t found = vd_vhdx_log_find(entries, count, next);
    if (found == SIZE_MAX || entries[found].sequence != entry->sequence + 1)
        return SIZE_MAX;
    return found;
}

typedef struct vd_vhdx_log_rank {
    uint64_t sequence;
    size_t index;
} vd_vhdx_log_rank;

static int vd_vhdx_log_rank_descending(const void *left, const void *right)
{
    uint64_t a = ((const vd_vhdx_log_rank *)left)->sequence;
    uint64_t b = ((const vd_vhdx_log_rank *)right)->sequence;
    return (a < b) - (a > b);
}

/* Finds the active sequence: *first is the index of its first entry and
 * *head of its last, or *head = SIZE_MAX when there is none. */
static uint32_t vd_vhdx_log_active(const vd_vhdx_log_view *log, const vd_vhdx_log_entry *entries,
                                   size_t count, size_t *first, size_t *head)
{
    *head = SIZE_MAX;
    if (count == 0)
        return VD_ERROR_SUCCESS;
    vd_vhdx_log_rank *ranks = malloc(count * sizeof *ranks);
    if (ranks == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    for (size_t i = 0; i < count; i++) {
        ranks[i].sequence = entries[i].sequence;
        ranks[i].index = i;
    }
    qsort(ranks, count, sizeof *ranks, vd_vhdx_log_rank_descending);

    /* A walk visits entries of strictly rising sequence numbers, so each
     * is at most `count` steps; the total is bounded the same way as the
     * scan's checksum work. */
    uint64_t steps_left = (uint64_t)count * 8 + 64;
    uint32_t status = VD_ERROR_SUCCESS;
    for (size_t r = 0; r < count && *head == SIZE_MAX; r++) {
        size_t candidate = ranks[r].index;
        uint32_t tail = entries[candidate].tail;
        if (tail % VD_VHDX_LOG_SECTOR_SIZE != 0 || tail >= log->length)
            continue;
        size_t start = vd_vhdx_log_find(entries, count, tail);
        size_t walk = start;
        while (walk != SIZE_MAX && walk != candidate) {
            if (entries[walk].sequence >= entries[candidate].sequence || steps_left == 0) {
                walk = SIZE_MAX;
                break;
            }
            steps_left--;
            walk = vd_vhdx_log_next(log, entries, count, walk);
        }
        if (walk == candidate) {
            *first = start;
            *head = candidate;
        } else if (steps_left == 0) {
            status = vd_fail(VD_ERROR_FILE_CORRUPT, "the log's sequences are too tangled to find the active one");
            break;
        }
    }
    free(ranks);
    return status;
}

static int vd_vhdx_ranges_overlap(uint64_t a_start, uint64_t a_length, uint64_t b_start, uint64_t b_length)
{
    return a_start < b_start + b_length && b_start < a_start + a_length;
}

typedef struct vd_vhdx_replay_limits {
    uint64_t log_offset;
    uint64_t log_length;
    uint64_t file_size;             /* grows entry by entry */
    uint64_t written_size;          /* the file's end as the writes so far leave it */
    uint64_t zero_work;             /* bytes of zeros a replay into the file writes */
    uint64_t zero_work_limit;
} vd_vhdx_replay_limits;

/* Turns one entry's descriptors into extents, checking where they write. */
static uint32_t vd_vhdx_replay_add_entry(vd_vhdx_replay *replay, const vd_vhdx_log_view *log,
                                         const vd_vhdx_log_entry *entry, vd_vhdx_replay_limits *limits)
{
    if (entry->flushed_file_offset > limits->file_size)
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "log entry %" PRIu64 " says the file was flushed at %" PRIu64 " bytes, but it is %" PRIu64,
                       entry->sequence, entry->flushed_file_offset, limits->file_size);
    if (entry->last_file_offset > VD_VHDX_MAX_FILE_SIZE)
        return vd_fail(VD_ERROR_FILE_CORRUPT, "log entry %" PRIu64 " makes the file larger than VHDX allows",
                       entry->sequence);
    uint64_t writable_end = limits->file_size > entry->last_file_offset ? limits->file_size
                                                                         : entry->last_file_offset;
    uint32_t data_sectors = 0;
    for (uint32_t i = 0; i < entry->descriptor_count; i++) {
        const uint8_t *descriptor = vd_vhdx_log_descriptor(log, entry, i);
        vd_vhdx_extent *extent = &replay->extents[replay->extent_count];
        extent->file_offset = vd_load_le64(descriptor + VD_VHDX_LOG_DESC_FILE_OFFSET_OFFSET);
        if (memcmp(descriptor, VD_VHDX_LOG_ZERO_SIGNATURE, 4) == 0) {
            extent->length = vd_load_le64(descriptor + VD_VHDX_LOG_ZERO_LENGTH_OFFSET);
            extent->data = NULL;
        } else {
            uint8_t *sector = vd_vhdx_log_sector(log, entry->position,
                                                 (uint64_t)entry->descriptor_sectors + data_sectors);
            data_sectors++;
            memcpy(sector, descriptor + VD_VHDX_LOG_DESC_LEADING_OFFSET, VD_VHDX_LOG_LEADING_BYTES);
            memcpy(sector + VD_VHDX_LOG_SECTOR_SIZE - VD_VHDX_LOG_TRAILING_BYTES,
                   descriptor + VD_VHDX_LOG_DESC_TRAILING_OFFSET, VD_VHDX_LOG_TRAILING_BYTES);
            extent->length = VD_VHDX_LOG_SECTOR_SIZE;
            extent->data = sector;
        }
        if (extent->file_offset > VD_VHDX_MAX_FILE_SIZE || extent->length > VD_VHDX_MAX_FILE_SIZE
            || extent->file_offset + extent->length > writable_end
            || extent->file_offset < VD_VHDX_REGION_TABLE1_OFFSET
            || vd_vhdx_ranges_overlap(extent->file_offset, extent->length, limits->log_offset,
                                      limits->log_length))
            return vd_fail(VD_ERROR_FILE_CORRUPT,
                           "log entry %" PRIu64 " descriptor %" PRIu32 " writes %" PRIu64 " bytes at offset %" PRIu64
                           ", into the headers, the log or past the file's end", entry->sequence, i,
                           extent->length, extent->file_offset);
        uint64_t extent_end = extent->file_offset + extent->length;
        if (extent->data != NULL) {
            if (extent_end > limits->written_size)
                limits->written_size = extent_end;
        } else if (extent->file_offset < limits->written_size) {
            /* vd_vhdx_replay_apply writes zeros only below the file's end;
             * past it, the final extension reads as zeros anyway. */
            uint64_t inside = (extent_end < limits->written_size ? extent_end : limits->written_size)
                            - extent->file_offset;
            limits->zero_work += inside;
            if (limits->zero_work > limits->zero_work_limit)
                return vd_fail(VD_ERROR_FILE_CORRUPT, "the log's zero descriptors write more than a log of its"
                               " size can describe");
        }
        if (replay->extent_count == 0 || extent->file_offset < replay->lowest)
            replay->lowest = extent->file_offset;
        if (extent->file_offset + extent->length > replay->highest)
            replay->highest = extent->file_offset + extent->length;
        replay->extent_count++;
    }
    if (limits->file_size < entry->last_file_offset) {
        uint64_t aligned = (entry->last_file_offset + VD_VHDX_ALIGNMENT - 1) / VD_VHDX_ALIGNMENT
                         * VD_VHDX_ALIGNMENT;
        limits->file_size = aligned;
    }
    return VD_ERROR_SUCCESS;
}

static uint32_t vd_vhdx_replay_build(vd_vhdx_replay *replay, const vd_vhdx_log_view *log,
                                     const vd_vhdx_log_entry *entries, size_t count, size_t first,
                                     size_t head, vd_vhdx_replay_limits *limits)
{
    uint64_t descriptors = 0;
    size_t index = first;
    for (size_t walked = 0; walked < count; walked++) {
        descriptors += entries[index].descriptor_count;
        if (index == head)
            break;
        index = vd_vhdx_log_next(log, entries, count, index);
    }
    replay->extents = malloc((size_t)(descriptors ? descriptors : 1) * sizeof *replay->extents);
    if (replay->extents == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    index = first;
    for (size_t walked = 0; walked < count; walked++) {
        uint32_t status = vd_vhdx_replay_add_entry(replay, log, &entries[index], limits);
        if (status != VD_ERROR_SUCCESS)
            return status;
        if (index == head)
            break;
        index = vd_vhdx_log_next(log, entries, count, index);
    }
    replay->file_size = limits->file_size;
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_log_load(const vd_file *file, uint64_t log_offset, uint32_t log_length,
                          const uint8_t log_guid[16], vd_vhdx_replay **replay_out)
{
    *replay_out = NULL;
    if (log_length < VD_VHDX_LOG_SECTOR_SIZE || log_length % VD_VHDX_LOG_SECTOR_SIZE != 0
        || log_offset > file->size || log_length > file->size - log_offset)
        return vd_fail(VD_ERROR_FILE_CORRUPT,
                       "the log (%" PRIu32 " bytes at offset %" PRIu64 ") is not whole 4 KiB sectors inside the file",
                       log_length, log_offset);

    if (log_length > VD_VHDX_LOG_REPLAY_MAX)
        return vd_fail(VD_ERROR_NOT_SUPPORTED,
                       "the log to replay is %" PRIu32 " bytes; the engine replays logs of up to %" PRIu32,
                       log_length, VD_VHDX_LOG_REPLAY_MAX);

    vd_vhdx_replay *replay = calloc(1, sizeof *replay);
    if (replay == NULL)
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    replay->log = malloc(log_length);
    if (replay->log == NULL) {
        free(replay);
        return VD_ERROR_NOT_ENOUGH_MEMORY;
    }
    uint32_t status = vd_file_read(file, log_offset, replay->log, log_length);
    if (status != VD_ERROR_SUCCESS) {
        vd_vhdx_replay_free(replay);
        return status == VD_ERROR_HANDLE_EOF ? vd_fail(VD_ERROR_FILE_CORRUPT, "the file ends inside the log")
                                             : status;
    }

    vd_vhdx_log_view log = { replay->log, log_length, log_guid,
                             (uint64_t)log_length * VD_VHDX_LOG_CHECK_BUDGET_FACTOR };
    vd_vhdx_log_entry *entries = NULL;
    size_t count = 0, first = 0, head = SIZE_MAX;
    status = vd_vhdx_log_scan(&log, &entries, &count);
    if (status == VD_ERROR_SUCCESS)
        status = vd_vhdx_log_active(&log, entries, count, &first, &head);
    if (status == VD_ERROR_SUCCESS && head != SIZE_MAX) {
        vd_vhdx_replay_limits limits = { log_offset, log_length, file->size, file->size, 0,
                                         (file->size + log_length) * VD_VHDX_ZERO_WORK_FACTOR };
        status = vd_vhdx_replay_build(replay, &log, entries, count, first, head, &limits);
    }
    free(entries);
    if (status != VD_ERROR_SUCCESS || head == SIZE_MAX) {
        vd_vhdx_replay_free(replay);
        return status;
    }
    *replay_out = replay;
    return VD_ERROR_SUCCESS;
}

uint64_t vd_vhdx_replay_file_size(const vd_vhdx_replay *replay)
{
    return replay->file_size;
}

void vd_vhdx_replay_overlay(const vd_vhdx_replay *replay, uint64_t offset, uint8_t *buffer, size_t length)
{
    if (replay == NULL || length == 0)
        return;
    uint64_t end = offset + length;
    if (end <= replay->lowest || offset >= replay->highest)
        return;
    /* Later writes win, so the extents are laid in replay order. */
    for (size_t i = 0; i < replay->extent_count; i++) {
        const vd_vhdx_extent *extent = &replay->extents[i];
        uint64_t from = extent->file_offset > offset ? extent->file_offset : offset;
        uint64_t extent_end = extent->file_offset + extent->length;
        uint64_t to = extent_end < end ? extent_end : end;
        if (from >= to)
            continue;
        uint8_t *target = buffer + (from - offset);
        if (extent->data != NULL)
            memcpy(target, extent->data + (from - extent->file_offset), (size_t)(to - from));
        else
            memset(target, 0, (size_t)(to - from));
    }
}

static uint32_t vd_vhdx_write_zeros(const vd_file *file, uint64_t offset, uint64_t length)
{
    static const uint8_t zeros[64 * 1024];
    while (length > 0) {
        size_t chunk = length < sizeof zeros ? (size_t)length : sizeof zeros;
        uint32_t status = vd_file_write(file, offset, zeros, chunk);
        if (status != VD_ERROR_SUCCESS)
            return status;
        offset += chunk;
        length -= chunk;
    }
    return VD_ERROR_SUCCESS;
}

uint32_t vd_vhdx_replay_apply(const vd_vhdx_replay *replay, vd_file *file)
{
    for (size_t i = 0; i < replay->extent_count; i++) {
        const vd_vhdx_extent *extent = &replay->extents[i];
        uint64_t end = extent->file_offset + extent->length;
        uint32_t status = VD_ERROR_SUCCESS;
        if (extent->data != NULL) {
            status = vd_file_write(file, extent->file_offset, extent->data, (size_t)extent->length);
            if (status == VD_ERROR_SUCCESS && end > file->size)
                file->size = end;
        } else if (extent->file_offset < file->size) {
            uint64_t inside_end = end < file->size ? end : file->size;
            status = vd_vhdx_write_zeros(file, extent->file_offset, inside_end - extent->file_offset);
        }
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    if (file->size < replay->file_size) {
        uint32_t status = vd_file_set_size(file, replay->file_size);
        if (status != VD_ERROR_SUCCESS)
            return status;
    }
    return vd_file_flush(file);
}

void vd_vhdx_replay_free(vd_vhdx_replay *replay)
{
    if (replay == NULL)
        return;
    free(replay->extents);
    free(replay->log);
    free(replay);
}
