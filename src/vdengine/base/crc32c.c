/* CRC-32C, fast enough that checksumming an opened VHDX's two 4 KiB headers
 * and 64 KiB region table costs a few microseconds.
 *
 * Three implementations of the same raw update (no pre/post inversion):
 *   - x86-64 with SSE4.2 (checked at run time): the CRC32 instruction on
 *     three independent streams at once.  One stream is bound by the
 *     instruction's 3-cycle latency; three streams fill its 1-per-cycle
 *     throughput.  The three partial CRCs are joined by multiplying each by
 *     x^(8n) mod P (a CRC is linear: crc(A || B) = crc(A) * x^(8|B|) xor
 *     crc(B) for a zero initial state), through per-constant byte tables.
 *   - AArch64 with the CRC extension (checked at compile time).
 *   - portable C: slicing-by-8, eight bytes per step through eight tables.
 *
 * Bit order: CRC-32C is reflected, so in a 32-bit state bit 31 is the
 * coefficient of x^0 and bit 0 that of x^31; multiplying by x is a right
 * shift that folds the polynomial back in when bit 0 falls off. */
#include "base/crc32c.h"

#include <pthread.h>
#include <string.h>

#include "base/endian.h"

/* VD_CRC32C_PORTABLE_ONLY builds the C path alone, so tests can hold the
 * hardware paths equal to it on the same machine. */
#if !defined(VD_CRC32C_PORTABLE_ONLY)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VD_CRC32C_X86 1
#include <nmmintrin.h>
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#define VD_CRC32C_ARM 1
#include <arm_acle.h>
#endif
#endif

#define VD_CRC32C_POLY 0x82F63B78u   /* 0x1EDC6F41 bit-reversed */

/* Stream lengths of the three-way loop: long rounds for the 64 KiB region
 * table, short ones for 4 KiB headers and the tail of anything. */
#define VD_CRC32C_LONG_STREAM  4096u
#define VD_CRC32C_SHORT_STREAM  256u

#ifndef VD_CRC32C_ARM
typedef struct vd_crc32c_shift_table {
    uint32_t byte_products[4][256];   /* (b << 8j) * x^(8n) mod P */
} vd_crc32c_shift_table;

static uint32_t vd_crc32c_slices[8][256];
#ifdef VD_CRC32C_X86
static vd_crc32c_shift_table vd_crc32c_shift_long;       /* x^(8 * LONG)  */
static vd_crc32c_shift_table vd_crc32c_shift_long_x2;    /* x^(16 * LONG) */
static vd_crc32c_shift_table vd_crc32c_shift_short;
static vd_crc32c_shift_table vd_crc32c_shift_short_x2;
#endif
static pthread_once_t vd_crc32c_tables_once = PTHREAD_ONCE_INIT;

#ifdef VD_CRC32C_X86
/* a * b mod P, both in the reflected representation. */
static uint32_t vd_crc32c_multiply(uint32_t a, uint32_t b)
{
    uint32_t product = 0;
    for (uint32_t power_bit = 0x80000000u; power_bit != 0; power_bit >>= 1) {
        if (a & power_bit)
            product ^= b;
        b = (b & 1u) ? (b >> 1) ^ VD_CRC32C_POLY : b >> 1;
    }
    return product;
}

/* x^(8 * bytes) mod P: the effect of `bytes` zero bytes on a state, i.e.
 * the byte table applied to x^0 that many times. */
static uint32_t vd_crc32c_zero_bytes_power(size_t bytes)
{
    uint32_t power = 0x80000000u;   /* x^0 */
    for (size_t i = 0; i < bytes; i++)
        power = vd_crc32c_slices[0][power & 0xFFu] ^ (power >> 8);
    return power;
}

/* Multiplication by a constant is linear in the multiplicand, so a table
 * entry is the XOR of the entries of its single bits. */
static void vd_crc32c_build_shift_table(vd_crc32c_shift_table *table, uint32_t constant)
{
    for (unsigned lane = 0; lane < 4; lane++) {
        uint32_t *row = table->byte_products[lane];
        row[0] = 0;
        for (unsigned value = 1; value < 256; value++) {
            unsigned lowest = value & (0u - value);
            if (value == lowest)
                row[value] = vd_crc32c_multiply((uint32_t)value << (8 * lane), constant);
            else
                row[value] = row[value ^ lowest] ^ row[lowest];
        }
    }
}

static uint32_t vd_crc32c_shift(const vd_crc32c_shift_table *table, uint32_t state)
{
    return table->byte_products[0][state & 0xFFu] ^ table->byte_products[1][(state >> 8) & 0xFFu]
         ^ table->byte_products[2][(state >> 16) & 0xFFu] ^ table->byte_products[3][state >> 24];
}
#endif

static void vd_crc32c_build_tables(void)
{
    for (uint32_t value = 0; value < 256; value++) {
        uint32_t state = value;
        for (int bit = 0; bit < 8; bit++)
            state = (state & 1u) ? (state >> 1) ^ VD_CRC32C_POLY : state >> 1;
        vd_crc32c_slices[0][value] = state;
    }
    for (uint32_t value = 0; value < 256; value++) {
        for (int slice = 1; slice < 8; slice++) {
            uint32_t previous = vd_crc32c_slices[slice - 1][value];
            vd_crc32c_slices[slice][value] = (previous >> 8) ^ vd_crc32c_slices[0][previous & 0xFFu];
        }
    }
#ifdef VD_CRC32C_X86
    vd_crc32c_build_shift_table(&vd_crc32c_shift_long,
                                vd_crc32c_zero_bytes_power(VD_CRC32C_LONG_STREAM));
    vd_crc32c_build_shift_table(&vd_crc32c_shift_long_x2,
                                vd_crc32c_zero_bytes_power(2 * VD_CRC32C_LONG_STREAM));
    vd_crc32c_build_shift_table(&vd_crc32c_shift_short,
                                vd_crc32c_zero_bytes_power(VD_CRC32C_SHORT_STREAM));
    vd_crc32c_build_shift_table(&vd_crc32c_shift_short_x2,
                                vd_crc32c_zero_bytes_power(2 * VD_CRC32C_SHORT_STREAM));
#endif
}

static uint32_t vd_crc32c_portable(uint32_t state, const uint8_t *bytes, size_t length)
{
    while (length > 0 && ((uintptr_t)bytes & 7u) != 0) {
        state = vd_crc32c_slices[0][(state ^ *bytes++) & 0xFFu] ^ (state >> 8);
        length--;
    }
    while (length >= 8) {
        uint32_t low = state ^ vd_load_le32(bytes);
        uint32_t high = vd_load_le32(bytes + 4);
        state = vd_crc32c_slices[7][low & 0xFFu] ^ vd_crc32c_slices[6][(low >> 8) & 0xFFu]
              ^ vd_crc32c_slices[5][(low >> 16) & 0xFFu] ^ vd_crc32c_slices[4][low >> 24]
              ^ vd_crc32c_slices[3][high & 0xFFu] ^ vd_crc32c_slices[2][(high >> 8) & 0xFFu]
              ^ vd_crc32c_slices[1][(high >> 16) & 0xFFu] ^ vd_crc32c_slices[0][high >> 24];
        bytes += 8;
        length -= 8;
    }
    while (length-- > 0)
        state = vd_crc32c_slices[0][(state ^ *bytes++) & 0xFFu] ^ (state >> 8);
    return state;
}
#endif

#ifdef VD_CRC32C_X86
__attribute__((target("sse4.2")))
static uint32_t vd_crc32c_sse42_rounds(uint32_t state, const uint8_t **cursor, size_t *length,
                                       size_t stream, const vd_crc32c_shift_table *shift,
                                       const vd_crc32c_shift_table *shift_x2)
{
    const uint8_t *bytes = *cursor;
    while (*length >= 3 * stream) {
        uint64_t first = state, second = 0, third = 0;
        for (size_t i = 0; i < stream; i += 8) {
            uint64_t a, b, c;
            memcpy(&a, bytes + i, 8);
            memcpy(&b, bytes + stream + i, 8);
            memcpy(&c, bytes + 2 * stream + i, 8);
            first = _mm_crc32_u64(first, a);
            second = _mm_crc32_u64(second, b);
            third = _mm_crc32_u64(third, c);
        }
        state = vd_crc32c_shift(shift_x2, (uint32_t)first) ^ vd_crc32c_shift(shift, (uint32_t)second)
              ^ (uint32_t)third;
        bytes += 3 * stream;
        *length -= 3 * stream;
    }
    *cursor = bytes;
    return state;
}

__attribute__((target("sse4.2")))
static uint32_t vd_crc32c_sse42(uint32_t state, const uint8_t *bytes, size_t length)
{
    state = vd_crc32c_sse42_rounds(state, &bytes, &length, VD_CRC32C_LONG_STREAM,
                                   &vd_crc32c_shift_long, &vd_crc32c_shift_long_x2);
    state = vd_crc32c_sse42_rounds(state, &bytes, &length, VD_CRC32C_SHORT_STREAM,
                                   &vd_crc32c_shift_short, &vd_crc32c_shift_short_x2);
    uint64_t wide = state;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = _mm_crc32_u64(wide, word);
        bytes += 8;
        length -= 8;
    }
    state = (uint32_t)wide;
    while (length-- > 0)
        state = _mm_crc32_u8(state, *bytes++);
    return state;
}
#endif

#ifdef VD_CRC32C_ARM
static uint32_t vd_crc32c_arm(uint32_t state, const uint8_t *bytes, size_t length)
{
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        state = __crc32cd(state, word);
        bytes += 8;
        length -= 8;
    }
    while (length-- > 0)
        state = __crc32cb(state, *bytes++);
    return state;
}
#endif

uint32_t vd_crc32c_extend(uint32_t crc, const void *data, size_t length)
{
    const uint8_t *bytes = data;
    uint32_t state = ~crc;
#if defined(VD_CRC32C_ARM)
    state = vd_crc32c_arm(state, bytes, length);
#else
    pthread_once(&vd_crc32c_tables_once, vd_crc32c_build_tables);
#if defined(VD_CRC32C_X86)
    if (__builtin_cpu_supports("sse4.2"))
        state = vd_crc32c_sse42(state, bytes, length);
    else
#endif
        state = vd_crc32c_portable(state, bytes, length);
#endif
    return ~state;
}

uint32_t vd_crc32c(const void *data, size_t length)
{
    return vd_crc32c_extend(0, data, length);
}
