/* ptload.h — read PyTorch checkpoints (torch.save zip format) without Python.
 *
 * Matches torch.serialization's zip layout: a ZIP archive of stored entries
 * "<archive>/data.pkl" (pickle, protocol 2), "<archive>/data/<key>" (raw
 * little-endian storages) and "<archive>/version". The pickle is run by a
 * small safe interpreter that knows only the opcodes and globals that state
 * dicts use (OrderedDict, _rebuild_tensor(_v2), _rebuild_parameter, typed
 * storages); anything else is refused with an error naming it. Leaves out:
 * the legacy (pre-1.6) non-zip format (detected and refused with a hint),
 * TorchScript archives, compressed entries, quantised and sparse tensors.
 */
#ifndef MM_PTLOAD_H
#define MM_PTLOAD_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

#define MM_PT_MAX_DIM 8

/* Storage element type as stored in the file; data is always float32. */
typedef enum {
    MM_PT_F32 = 0, MM_PT_F64, MM_PT_F16, MM_PT_BF16,
    MM_PT_I64, MM_PT_I32, MM_PT_I16, MM_PT_I8, MM_PT_U8, MM_PT_BOOL
} mm_pt_dtype;

typedef struct mm_pt_tensor {
    const char *name;               /* state-dict key, e.g. "features.0.0.weight" */
    mm_pt_dtype dtype;              /* element type of the storage in the file */
    int ndim;                       /* 0 (scalar) .. MM_PT_MAX_DIM */
    int64_t shape[MM_PT_MAX_DIM];   /* sizes, outermost first */
    int64_t stride[MM_PT_MAX_DIM];  /* strides in elements, as saved */
    int64_t offset;                 /* storage offset in elements */
    size_t numel;                   /* product of shape (1 for a scalar) */
    const float *data;              /* (numel) row-major contiguous float32 copy
                                       (integers and half/double converted) */
} mm_pt_tensor;

typedef struct mm_pt mm_pt;         /* an opened checkpoint (opaque) */

/* Open a checkpoint: map the file, check the zip directory, run the pickle.
 * Tensors are not converted yet. Errors name the file and the entry or
 * opcode at fault; a legacy non-zip checkpoint is refused with the hint
 * to re-save it with a recent torch. *out is set only on success; free with
 * mm_pt_free. An mm_pt is not thread-safe while mm_pt_state_dict runs; the
 * tensors it returns are read-only and may be read from any thread. */
int mm_pt_open(const char *path, mm_pt **out, mm_err *err);

/* The same from bytes in memory (copied; `name` is used in messages). */
int mm_pt_open_memory(const void *data, size_t len, const char *name, mm_pt **out,
                      mm_err *err);

void mm_pt_free(mm_pt *pt);

/* Select the state dict and convert its tensors to float32. key NULL or ""
 * selects the top object (EfficientAT checkpoints); otherwise key is looked
 * up in the top dict ("model" for PANNs checkpoints, whose top object is
 * {"model": state_dict, "iteration": ..., ...}); dotted keys "a.b" descend.
 * Entries of the selected dict that are not tensors are skipped. Storage
 * bounds, shapes and strides are checked; errors name the tensor. Calling
 * it again replaces the previous selection (earlier tensor pointers become
 * invalid). Returns the number of tensors in *n (may be NULL). */
int mm_pt_state_dict(mm_pt *pt, const char *key, size_t *n, mm_err *err);

/* Tensors of the current selection, in file order (NULL if i out of range
 * or no selection). Valid until mm_pt_free or the next mm_pt_state_dict. */
size_t mm_pt_count(const mm_pt *pt);
const mm_pt_tensor *mm_pt_at(const mm_pt *pt, size_t i);
/* Tensor named `name`, or NULL. */
const mm_pt_tensor *mm_pt_find(const mm_pt *pt, const char *name);

/* Tensor `name` with exactly the given shape (ndim dims); on success
 * *data points at its float32 values. Missing tensors and shape mismatches
 * are errors such as "<file>: tensor 'classifier.5.weight': expected shape
 * [527, 512], got [10, 512]". */
int mm_pt_get(const mm_pt *pt, const char *name, int ndim, const int64_t *shape,
              const float **data, mm_err *err);

/* The file name given to mm_pt_open (for messages). */
const char *mm_pt_path(const mm_pt *pt);

const char *mm_pt_dtype_name(mm_pt_dtype t);

#endif
