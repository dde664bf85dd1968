/* JSON output for the C test harnesses. */
#ifndef VD_TEST_JSON_PRINT_H
#define VD_TEST_JSON_PRINT_H

#include <stdio.h>

/* Prints `value` as a JSON string (null for NULL), escaping what JSON
 * requires; bytes above 0x7F pass through, so UTF-8 stays UTF-8. */
static void print_json_string(const char *value)
{
    if (value == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

#endif
