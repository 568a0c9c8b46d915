/* ckpt_h5.h - (private) HDF5 helpers shared by ckpt_write.c and ckpt_read.c. */
#ifndef DPTRAIN_CKPT_H5_H
#define DPTRAIN_CKPT_H5_H

#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "ckpt/ckpt.h"

typedef struct ckpt_h5_msg {
    char *buf;
    size_t n;
} ckpt_h5_msg;

static inline herr_t ckpt_h5_walk(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    ckpt_h5_msg *m = data;
    if (m->buf[0] == '\0' && e->desc && e->desc[0]) snprintf(m->buf, m->n, " (HDF5: %s)", e->desc);
    return 0;
}

/* Writes " (HDF5: <most specific message>)" of the current error stack into buf
 * (empty when the stack is empty) and clears the stack. Printing is off, so this
 * is the only way the library's reason reaches the user. */
static inline const char *ckpt_h5_detail(char *buf, size_t n) {
    ckpt_h5_msg m = {buf, n};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, ckpt_h5_walk, &m);
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

static inline void ckpt_h5_quiet(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* File access: STRONG close so an error path that forgets an id still releases
 * the file; locking kept but ignored where the file system lacks it (Lustre, NFS). */
static inline hid_t ckpt_h5_fapl(void) {
    hid_t p = H5Pcreate(H5P_FILE_ACCESS);
    if (p < 0) return H5P_DEFAULT;
    H5Pset_fclose_degree(p, H5F_CLOSE_STRONG);
#if H5_VERSION_GE(1, 10, 7)
    H5Pset_file_locking(p, 1, 1);
#endif
    return p;
}

static inline void ckpt_h5_close_plist(hid_t p) {
    if (p != H5P_DEFAULT && p >= 0) H5Pclose(p);
}

/* Checks that the model's views and the optimizer fit their arenas, so neither
 * writer nor reader can run past a buffer when handed an inconsistent model. */
static inline int ckpt_check_layout(const dp_model *m, const dp_optim *o, const char *where,
                                    dp_error *err) {
    if (m->n_layers < 0 || m->n_layers > DP_MAX_LAYERS)
        return dp_error_set(err, where, "model has %d layers (at most %d)", m->n_layers,
                            DP_MAX_LAYERS);
    if (m->n_params > 0 && !m->params)
        return dp_error_set(err, where, "model has no parameter arena");
    for (int i = 0; i < m->n_layers; i++) {
        const dp_layer *l = &m->layers[i];
        if (l->name[0] == '\0' || strchr(l->name, '/') || !strcmp(l->name, "."))
            return dp_error_set(err, where, "layer %d has an unusable name '%s'", i, l->name);
        if (l->n_params < 0 || l->n_params > DP_LAYER_MAX_PARAMS)
            return dp_error_set(err, where, "layer %s has %d parameter tensors", l->name,
                                l->n_params);
        if (l->n_params > 0 &&
            (l->param_offset > m->n_params || l->param_count > m->n_params - l->param_offset))
            return dp_error_set(err, where, "layer %s parameters lie outside the arena", l->name);
        for (int p = 0; p < l->n_params; p++) {
            const dp_param_view *v = &l->params[p];
            int bad_shape = v->shape.ndim < 0 || v->shape.ndim > DP_MAX_DIMS;
            for (int d = 0; !bad_shape && d < v->shape.ndim; d++) bad_shape = v->shape.dim[d] < 0;
            if (bad_shape || v->name[0] == '\0' || strchr(v->name, '/') ||
                v->numel != dp_shape_numel(&v->shape) || v->offset > l->param_count ||
                v->numel > l->param_count - v->offset)
                return dp_error_set(err, where, "parameter %s/%s has an inconsistent view", l->name,
                                    v->name);
        }
    }
    if (!o) return 0;
    if (o->n != m->n_params)
        return dp_error_set(err, where, "optimizer holds %zu parameters, the model %zu", o->n,
                            m->n_params);
    if (o->n_slots < 0 || o->n_slots > DP_OPTIM_MAX_SLOTS)
        return dp_error_set(err, where, "optimizer has %d state slots", o->n_slots);
    for (int k = 0; k < o->n_slots; k++)
        if (!o->slot_names[k] || !o->slot_names[k][0] || strchr(o->slot_names[k], '/') ||
            (o->n > 0 && !o->slots[k]))
            return dp_error_set(err, where, "optimizer state slot %d is not set up", k);
    return 0;
}

#endif
