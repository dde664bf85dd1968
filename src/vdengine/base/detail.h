/* Why the current call failed, in words: which structure of which image.
 *
 * Windows' contract is the Win32 code, and the engine keeps it; many
 * defects share one code (ERROR_FILE_CORRUPT covers about twenty VHDX
 * structures), so the failure site also records a sentence, as libvhdi and
 * qemu name the structure they rejected.  The text is per thread, like
 * errno: calls in other threads never see or overwrite it.  Each VirtDisk
 * entry point clears it when it starts, so after a call it is either empty
 * or the account of something that call met. */
#ifndef VDENGINE_DETAIL_H
#define VDENGINE_DETAIL_H

#include <inttypes.h>   /* PRIu64 and kin: details print on-disk fields */
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define VD_PRINTF_LIKE(format_index, first_argument) \
    __attribute__((format(printf, format_index, first_argument)))
#else
#define VD_PRINTF_LIKE(format_index, first_argument)
#endif

/* The longest detail kept, terminator included; longer text is cut. */
#define VD_DETAIL_CAPACITY 256

/* Forgets the calling thread's detail: the start of an entry point. */
void vd_detail_clear(void);

/* Records the calling thread's detail (printf format), replacing any
 * earlier one: the site nearest the failure that knows most speaks last,
 * and a caller adding context reads vd_detail_get() into its own text. */
void vd_detail_set(const char *format, ...) VD_PRINTF_LIKE(1, 2);

/* vd_detail_set, then returns `code`: a failure site reads
 *     return vd_fail(VD_ERROR_FILE_CORRUPT, "VHDX header 2 checksum mismatch");
 * so the code and its account cannot drift apart. */
uint32_t vd_fail(uint32_t code, const char *format, ...) VD_PRINTF_LIKE(2, 3);

/* Puts `context` (printf format) and ": " before the current detail, or
 * records it alone when there is none: a chain names the parent whose
 * structure failed.  Returns `code`. */
uint32_t vd_detail_wrap(uint32_t code, const char *format, ...) VD_PRINTF_LIKE(2, 3);

/* The calling thread's detail, or NULL when there is none.  Valid until the
 * thread's next vd_detail_* call. */
const char *vd_detail_get(void);

#endif
