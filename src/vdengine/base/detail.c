/* The per-thread failure detail (detail.h): one fixed buffer per thread,
 * so recording never allocates and never fails, even when the failure
 * being described is running out of memory. */
#include "base/detail.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char vd_detail_text[VD_DETAIL_CAPACITY];

void vd_detail_clear(void)
{
    vd_detail_text[0] = '\0';
}

static void vd_detail_format(const char *format, va_list arguments)
{
    if (vsnprintf(vd_detail_text, sizeof vd_detail_text, format, arguments) < 0)
        vd_detail_text[0] = '\0';
}

void vd_detail_set(const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vd_detail_format(format, arguments);
    va_end(arguments);
}

uint32_t vd_fail(uint32_t code, const char *format, ...)
{
    va_list arguments;
    va_start(arguments, format);
    vd_detail_format(format, arguments);
    va_end(arguments);
    return code;
}

uint32_t vd_detail_wrap(uint32_t code, const char *format, ...)
{
    char inner[VD_DETAIL_CAPACITY];
    memcpy(inner, vd_detail_text, sizeof inner);
    va_list arguments;
    va_start(arguments, format);
    vd_detail_format(format, arguments);
    va_end(arguments);
    /* Appended by hand: the text is cut at the capacity on purpose. */
    static const char separator[] = ": ";
    size_t used = strlen(vd_detail_text);
    for (size_t i = 0; inner[0] != '\0' && i < sizeof separator - 1 && used + 1 < sizeof vd_detail_text; i++)
        vd_detail_text[used++] = separator[i];
    for (size_t i = 0; inner[0] != '\0' && inner[i] != '\0' && used + 1 < sizeof vd_detail_text; i++)
        vd_detail_text[used++] = inner[i];
    vd_detail_text[used] = '\0';
    return code;
}

const char *vd_detail_get(void)
{
    return vd_detail_text[0] != '\0' ? vd_detail_text : NULL;
}
