/* sha256.h — SHA-256 (FIPS 180-4) for checking weights and data files. */
#ifndef MM_SHA256_H
#define MM_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mm_sha256 {
    uint32_t h[8];
    uint64_t len;           /* bytes hashed so far */
    uint8_t buf[64];
    size_t nbuf;
} mm_sha256;

void mm_sha256_init(mm_sha256 *s);
void mm_sha256_update(mm_sha256 *s, const void *data, size_t n);
/* Writes 65 bytes: 64 lowercase hex digits and a NUL. */
void mm_sha256_hex(mm_sha256 *s, char *hex);
/* Hash a whole file. */
int mm_sha256_file(const char *path, char *hex, mm_err *err);

#endif
