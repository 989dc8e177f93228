/* csv.h — RFC 4180 CSV reading (quoted fields, doubled quotes, CRLF).
 *
 * The whole file is read into rows of fields. The first row is the header.
 * Every row must have as many fields as the header; a ragged row is an
 * error naming its line. A UTF-8 BOM is skipped. Files are limited to 1 GB.
 */
#ifndef MM_CSV_H
#define MM_CSV_H

#include <stddef.h>
#include "core/err.h"

typedef struct mm_csv {
    size_t n_rows;        /* data rows, header excluded */
    size_t n_cols;
    char **header;        /* (n_cols) */
    char **cells;         /* (n_rows, n_cols) row-major */
    int *lines;           /* (n_rows) 1-based line where each row starts */
    char *file;           /* name used in messages */
} mm_csv;

int mm_csv_read(const char *path, mm_csv **out, mm_err *err);
/* Parse from memory; `name` is used in messages. */
int mm_csv_parse(const char *text, size_t len, const char *name, mm_csv **out, mm_err *err);
void mm_csv_free(mm_csv *c);
/* Column index by header name, or -1. */
int mm_csv_col(const mm_csv *c, const char *name);
static inline const char *mm_csv_cell(const mm_csv *c, size_t row, size_t col)
{
    return c->cells[row * c->n_cols + col];
}

#endif
