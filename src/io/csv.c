/* csv.c — see csv.h. A small state machine over the bytes of the file. */
#include "io/csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char **v; size_t n, cap; } strvec;

static int sv_push(strvec *s, char *x)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        char **nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = x;
    return 0;
}

void mm_csv_free(mm_csv *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n_cols; i++) free(c->header ? c->header[i] : NULL);
    for (size_t i = 0; i < c->n_rows * c->n_cols; i++) free(c->cells[i]);
    free(c->header);
    free(c->cells);
    free(c->lines);
    free(c->file);
    free(c);
}

int mm_csv_parse(const char *text, size_t len, const char *name, mm_csv **out, mm_err *err)
{
    strvec cells = {0}, row = {0};
    int *lines = NULL;
    size_t n_lines_cap = 0, n_rows = 0, n_cols = 0;
    char **header = NULL;
    char *field = NULL;
    size_t flen = 0, fcap = 0;
    int line = 1, row_line = 1, rc = 0;
    size_t i = 0;
    if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
        (unsigned char)text[2] == 0xBF)
        i = 3;
    if (i >= len) return mm_err_set(err, MM_EFORMAT, "%s: empty CSV file (expected a header row)", name);
    int in_quotes = 0, field_started = 0;
    for (;; i++) {
        int eof = i >= len;
        char ch = eof ? '\n' : text[i];
        if (!eof && ch == 0) { rc = mm_err_set(err, MM_EFORMAT, "%s:%d: NUL byte in CSV", name, line); goto fail; }
        if (in_quotes && !eof) {
            if (ch == '"') {
                if (i + 1 < len && text[i + 1] == '"') { i++; }
                else { in_quotes = 0; continue; }
            } else if (ch == '\n') line++;
        } else if (in_quotes && eof) {
            rc = mm_err_set(err, MM_EFORMAT, "%s:%d: unterminated quoted field", name, row_line);
            goto fail;
        } else if (ch == '"' && !field_started) {
            in_quotes = 1;
            field_started = 1;
            continue;
        } else if (ch == ',' || ch == '\n' || ch == '\r') {
            if (ch == '\r' && i + 1 < len && text[i + 1] == '\n') continue;  /* CRLF: handle at \n */
            char *f = malloc(flen + 1);
            if (!f) goto oom;
            if (flen) memcpy(f, field, flen);
            f[flen] = 0;
            flen = 0;
            field_started = 0;
            if (sv_push(&row, f)) { free(f); goto oom; }
            if (ch == ',') continue;
            /* end of record */
            int blank = row.n == 1 && row.v[0][0] == 0;
            if (blank) {
                free(row.v[0]);
                row.n = 0;
            } else if (!header) {
                header = row.v;
                n_cols = row.n;
                row.v = NULL;
                row.n = row.cap = 0;
            } else {
                if (row.n != n_cols) {
                    rc = mm_err_set(err, MM_EFORMAT, "%s:%d: expected %zu fields as in the header, found %zu",
                                    name, row_line, n_cols, row.n);
                    goto fail;
                }
                for (size_t k = 0; k < row.n; k++)
                    if (sv_push(&cells, row.v[k])) { for (size_t j = k; j < row.n; j++) free(row.v[j]); row.n = 0; goto oom; }
                row.n = 0;
                if (n_rows == n_lines_cap) {
                    n_lines_cap = n_lines_cap ? n_lines_cap * 2 : 64;
                    int *nl = realloc(lines, n_lines_cap * sizeof *nl);
                    if (!nl) goto oom;
                    lines = nl;
                }
                lines[n_rows++] = row_line;
            }
            if (eof) break;
            line++;
            row_line = line;
            continue;
        } else {
            field_started = 1;
        }
        if (flen + 1 >= fcap) {
            fcap = fcap ? fcap * 2 : 64;
            char *nf = realloc(field, fcap);
            if (!nf) goto oom;
            field = nf;
        }
        field[flen++] = ch;
    }
    free(field);
    free(row.v);
    if (!header) { free(lines); free(cells.v); return mm_err_set(err, MM_EFORMAT, "%s: empty CSV file (expected a header row)", name); }
    mm_csv *c = calloc(1, sizeof *c);
    if (!c) { field = NULL; goto oom; }
    c->n_rows = n_rows;
    c->n_cols = n_cols;
    c->header = header;
    c->cells = cells.v;
    c->lines = lines;
    c->file = strdup(name);
    *out = c;
    return 0;
oom:
    rc = mm_err_set(err, MM_ENOMEM, "%s: out of memory reading CSV", name);
fail:
    free(field);
    for (size_t k = 0; k < row.n; k++) free(row.v[k]);
    free(row.v);
    for (size_t k = 0; k < cells.n; k++) free(cells.v[k]);
    free(cells.v);
    if (header) { for (size_t k = 0; k < n_cols; k++) free(header[k]); free(header); }
    free(lines);
    return rc;
}

int mm_csv_read(const char *path, mm_csv **out, mm_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return mm_err_set(err, MM_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return mm_err_set(err, MM_EIO, "%s: cannot seek", path); }
    long sz = ftell(f);
    rewind(f);
    if (sz < 0 || sz > (1L << 30)) { fclose(f); return mm_err_set(err, MM_EFORMAT, "%s: CSV larger than 1 GB", path); }
    char *buf = malloc((size_t)sz + 1);
    if (!buf) { fclose(f); return mm_err_set(err, MM_ENOMEM, "%s: out of memory", path); }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) { free(buf); return mm_err_set(err, MM_EIO, "%s: read error", path); }
    int rc = mm_csv_parse(buf, got, path, out, err);
    free(buf);
    return rc;
}

int mm_csv_col(const mm_csv *c, const char *name)
{
    for (size_t i = 0; i < c->n_cols; i++)
        if (!strcmp(c->header[i], name)) return (int)i;
    return -1;
}
