/* netparams.c — the shared training keys of mlp and cnn1d as table rows
 * (see netparams.h). Ranges as scikit-learn / PyTorch accept them, bounded
 * where a larger value can only be a mistake. */
#include "learn/netparams.h"

#include <stddef.h>
#include <string.h>

_Static_assert(sizeof(mm_adam_wd_mode) == sizeof(int) && sizeof(mm_lr_schedule) == sizeof(int) &&
               sizeof(mm_train_monitor) == sizeof(int), "choice rows store enums as int");

int mm_net_parse_batch_size(const mm_param *row, const mm_cfg *map, void *field, mm_err *err)
{
    size_t *f = field;
    if (!map) { *f = (size_t)row->def; return 0; }
    const char *s;
    long v;
    int rc = mm_cfg_get_str(map, "batch_size", NULL, &s, err);
    if (rc || !s) return rc;
    if (!strcmp(s, "auto")) { *f = 0; return 0; }
    if ((rc = mm_cfg_get_int(map, "batch_size", 0, 1, 1L << 24, &v, err))) {
        char w[600];
        return mm_err_set(err, MM_EINVAL, "%s: key 'batch_size': expected 'auto' or an integer >= 1, got '%s'",
                          mm_cfg_where(mm_cfg_child(map, "batch_size"), w, sizeof w), s);
    }
    *f = (size_t)v;
    return 0;
}

static const char *const WD_MODES[] = {"l2", "decoupled", NULL};
static const char *const SCHEDULES[] = {"constant", "step", "cosine", NULL};
static const char *const MONITORS[] = {"val_loss", "val_accuracy", NULL};

#define TP(f) offsetof(mm_train_params, f)
const mm_param mm_net_train_rows[] = {
    {"batch_size", MM_PARAM_CUSTOM, TP(batch_size), .parse = mm_net_parse_batch_size, .def = 0, .def_text = "auto",
     .type_text = "int", .range_text = "'auto' (min(200, n)) or an integer in [1, 16777216]", .help = "rows per step"},
    {"beta_1", MM_PARAM_DOUBLE, TP(adam.beta1), 0, 0.999999999, .def = 0.9, .range_text = "a number in [0, 1)", .help = "Adam's first-moment decay"},
    {"beta_2", MM_PARAM_DOUBLE, TP(adam.beta2), 0, 0.999999999, .def = 0.999, .range_text = "a number in [0, 1)", .help = "Adam's second-moment decay"},
    {"epsilon", MM_PARAM_DOUBLE, TP(adam.eps), 1e-30, 1, .def = 1e-8, .help = "Adam's denominator floor"},
    {"weight_decay", MM_PARAM_DOUBLE, TP(adam.weight_decay), 0, 10, .def = 0, .help = "Adam weight decay"},
    {"weight_decay_mode", MM_PARAM_CHOICE, TP(adam.wd_mode), .def = 0, .choices = WD_MODES,
     .help = "l2: PyTorch Adam's coupled decay; decoupled: AdamW"},
    {"alpha", MM_PARAM_DOUBLE, TP(alpha), 0, 1e6, .def = 0,
     .help = "scikit-learn's L2 penalty alpha/(2B) sum W^2 over kernels"},
    {"lr_schedule", MM_PARAM_CHOICE, TP(schedule), .def = 0, .choices = SCHEDULES,
     .help = "step: lr gamma^floor(epoch/step_size); cosine: down to lr_min"},
    {"step_size", MM_PARAM_SIZE, TP(step_size), 1, 1000000, .def = 10, .help = "epochs per step (lr_schedule: step)"},
    {"gamma", MM_PARAM_DOUBLE, TP(gamma), 0, 10, .def = 0.1, .help = "step factor (lr_schedule: step)"},
    {"lr_min", MM_PARAM_DOUBLE, TP(lr_min), 0, 10, .def = 0,
     .help = "floor of the cosine schedule, at most the learning rate"},
    {"early_stopping", MM_PARAM_BOOL, TP(early_stopping), .def = 0,
     .help = "stop on the validation part and restore the best epoch"},
    {"validation_fraction", MM_PARAM_DOUBLE, TP(validation_fraction), 0.01, 0.9, .def = 0.1,
     .help = "carved (stratified, seeded) when early stopping gets no validation part"},
    {"monitor", MM_PARAM_CHOICE, TP(monitor), .def = 1, .choices = MONITORS, .help = "what early stopping watches"},
    {"tol", MM_PARAM_DOUBLE, TP(tol), 0, 1e9, .def = 1e-4, .help = "minimum improvement that resets the patience"},
    {"restore_best", MM_PARAM_BOOL, TP(restore_best), .def = 1,
     .help = "with early stopping: keep the best epoch's parameters"},
    {"shuffle", MM_PARAM_BOOL, TP(shuffle), .def = 1, .help = "reshuffle the rows every epoch"},
    {"label_smoothing", MM_PARAM_DOUBLE, TP(label_smoothing), 0, 0.99, .def = 0, .help = "label smoothing"},
    {"class_weight", MM_PARAM_CUSTOM, TP(balanced), .parse = mm_param_parse_class_weight, .def_text = "none",
     .type_text = "string", .range_text = "balanced or none", .help = "balanced: class weights n / (k n_c)"},
    {NULL},
};
#undef TP

int mm_net_train_check(const mm_train_params *p, const mm_cfg *map, mm_err *err)
{
    char w[600];
    if (p->schedule == MM_LR_COSINE && p->lr_min > p->adam.lr)
        return mm_err_set(err, MM_EINVAL, "%s: key 'lr_min': %g is above the learning rate %g",
                          mm_cfg_where(mm_cfg_child(map, "lr_min"), w, sizeof w), p->lr_min, p->adam.lr);
    return 0;
}
