/* onnx_export.c - the model as an ONNX graph, its file, and `dptrain export`. */
#include "onnx/onnx_export.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dptrain/train.h"
#include "dptrain_version.h"
#include "layers/layer.h"
#include "onnx/onnx_graph.h"
#include "onnx/onnx_layers.h"

/* A protobuf message cannot exceed 2 GiB; larger models would need ONNX's
 * external data files, which this exporter does not write. */
#define ONNX_MAX_BYTES ((size_t)2000 << 20)

/* x * data.scale + data.offset, as the data reader computes it: in double,
 * rounded once to float (Cast, Mul, Add, Cast), so the graph takes x in the
 * file's units (uint8 pixels as floats 0..255) and matches dptrain's bits. */
static const char *emit_scale(ox_graph *g, const dp_loaded *ld, const char *x) {
    double scale = ld->cfg.data_scale, offset = ld->cfg.data_offset;
    if ((scale == 1 || scale == 0) && offset == 0) return x;
    ox_scope(g, "scale");
    const char *d = ox_op(g, "Cast", x, NULL);
    ox_attr_int(g, ox_last(g), "to", OX_DOUBLE);
    if (scale != 1 && scale != 0) d = ox_op(g, "Mul", d, ox_scalar_f64(g, "scale", scale));
    if (offset != 0) d = ox_op(g, "Add", d, ox_scalar_f64(g, "offset", offset));
    const char *out = ox_op(g, "Cast", d, NULL);
    ox_attr_int(g, ox_last(g), "to", OX_FLOAT);
    return out;
}

/* The first nodes after the scale: x = (raw - mean) / std per input value, as the data
 * reader standardizes rows, with mean and std shaped like one row. */
static const char *emit_standardize(ox_graph *g, const dp_loaded *ld, const char *x,
                                    dp_error *err) {
    const dp_shape *in = &ld->model.in_shape;
    if (ld->st.n_features == 0) return x;
    if (ld->st.n_features != dp_shape_numel(in)) {
        dp_error_set(err, ld->path,
                     "the checkpoint's /data/mean has %zu values but the model input has %zu",
                     ld->st.n_features, dp_shape_numel(in));
        return NULL;
    }
    int64_t dims[DP_MAX_DIMS];
    for (int d = 0; d < in->ndim; d++) dims[d] = in->dim[d];
    ox_scope(g, "standardize");
    const char *mean = ox_init_f32(g, "mean", ld->st.mean, in->ndim, dims);
    const char *std = ox_init_f32(g, "std", ld->st.std, in->ndim, dims);
    return ox_op(g, "Div", ox_op(g, "Sub", x, mean), std);
}

/* Every layer in order, then the output activation the loss had taken over
 * (dp_model_predict applies it the same way). */
static const char *emit_layers(ox_graph *g, const dp_loaded *ld, const char *x, dp_error *err) {
    const dp_model *m = &ld->model;
    for (int i = 0; i < m->n_layers && x; i++) {
        const dp_layer *l = &m->layers[i];
        ox_emit_fn emit = ox_find_emitter(l->ops->type);
        if (!emit) {
            dp_error_set(err, ld->cfg.layers[i].where,
                         "layer %d (%s) cannot be exported to ONNX: the exporter has no form "
                         "for it",
                         i, l->ops->type);
            return NULL;
        }
        ox_scope(g, l->name);
        x = emit(g, l, &ld->cfg.layers[i], m->params + l->param_offset, x, err);
    }
    if (!x || !m->fused) return x;
    ox_scope(g, "output");
    return ox_emit_activation(g, m->loss == DP_LOSS_BCE ? DP_ACT_SIGMOID : DP_ACT_SOFTMAX, x);
}

/* The ModelProto around graph g with its input and output. */
static void fill_model(ox_graph *g, Onnx__ModelProto *model, Onnx__GraphProto *graph,
                       Onnx__ValueInfoProto *in, Onnx__ValueInfoProto *out, const dp_loaded *ld) {
    onnx__graph_proto__init(graph);
    graph->name = ox_strdup(g, "dptrain");
    graph->n_node = g->n_nodes, graph->node = g->nodes;
    graph->n_initializer = g->n_inits, graph->initializer = g->inits;
    graph->n_input = 1, graph->input = ox_alloc(g, sizeof *graph->input);
    graph->input[0] = in;
    graph->n_output = 1, graph->output = ox_alloc(g, sizeof *graph->output);
    graph->output[0] = out;
    char doc[512];
    snprintf(doc, sizeof doc, "exported by dptrain %s from %s (step %lld)", DPTRAIN_VERSION,
             ld->path, ld->st.global_step);
    graph->doc_string = ox_strdup(g, doc);

    Onnx__OperatorSetIdProto *opset = ox_alloc(g, sizeof *opset);
    onnx__operator_set_id_proto__init(opset);
    opset->domain = ox_strdup(g, "");
    opset->has_version = 1, opset->version = DP_ONNX_OPSET;
    onnx__model_proto__init(model);
    model->has_ir_version = 1, model->ir_version = DP_ONNX_IR_VERSION;
    model->n_opset_import = 1, model->opset_import = ox_alloc(g, sizeof *model->opset_import);
    model->opset_import[0] = opset;
    model->producer_name = ox_strdup(g, "dptrain");
    model->producer_version = ox_strdup(g, DPTRAIN_VERSION);
    model->graph = graph;
}

int dp_onnx_serialize(const dp_loaded *ld, uint8_t **buf, size_t *len, dp_error *err) {
    *buf = NULL, *len = 0;
    const dp_model *m = &ld->model;
    if (m->n_params > ONNX_MAX_BYTES / sizeof(float))
        return dp_error_set(err, ld->path,
                            "the model's %zu parameters exceed the 2 GiB a single ONNX file "
                            "holds",
                            m->n_params);
    ox_graph g = {0};
    int ids = ld->cfg.n_layers > 0 && strcmp(ld->cfg.layers[0].type, "embedding") == 0;
    /* Token ids are never scaled. */
    const char *x = emit_standardize(&g, ld, ids ? "input" : emit_scale(&g, ld, "input"), err);
    if (x) x = emit_layers(&g, ld, x, err);
    if (!x) {
        ox_graph_free(&g);
        return -1;
    }
    /* Named through an Identity, so the output is "predictions" even when the
     * last layers add no node (a final dropout). */
    ox_scope(&g, "output");
    const char *in_name[1] = {x};
    Onnx__NodeProto *id = ox_node(&g, "Identity", in_name, 1, 1);
    id->output[0] = ox_strdup(&g, "predictions");
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    fill_model(
        &g, &model, &graph,
        ox_value_info(&g, "input", ids ? OX_INT32 : OX_FLOAT, m->in_shape.ndim, m->in_shape.dim),
        ox_value_info(&g, "predictions", OX_FLOAT, m->out_shape.ndim, m->out_shape.dim), ld);
    size_t n = onnx__model_proto__get_packed_size(&model);
    int rc = 0;
    if (g.weight_bytes > ONNX_MAX_BYTES || n > ONNX_MAX_BYTES) {
        rc = dp_error_set(err, ld->path,
                          "the model's %zu MiB of weights exceed the 2 GiB a single ONNX file "
                          "holds",
                          g.weight_bytes >> 20);
    } else {
        *buf = malloc(n ? n : 1);
        if (!*buf) rc = dp_error_set(err, ld->path, "out of memory for %zu bytes of ONNX", n);
        else *len = onnx__model_proto__pack(&model, *buf);
    }
    ox_graph_free(&g);
    return rc;
}

/* dir of path ("." when it has none) into buf. */
static void dir_of(const char *path, char *buf, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, n, ".");
    else if (slash == path) snprintf(buf, n, "/");
    else snprintf(buf, n, "%.*s", (int)(slash - path), path);
}

/* Fails when path's directory does not exist or is not one. */
static int check_dir(const char *path, dp_error *err) {
    char dir[DP_PATH_MAX];
    struct stat sb;
    dir_of(path, dir, sizeof dir);
    if (stat(dir, &sb) != 0)
        return dp_error_set(err, path, "cannot write there: directory %s: %s", dir,
                            strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return dp_error_set(err, path, "cannot write there: %s is not a directory", dir);
    return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        buf += w, len -= (size_t)w;
    }
    return 0;
}

int dp_onnx_write_file(const char *path, const uint8_t *buf, size_t len, dp_error *err) {
    if (check_dir(path, err)) return -1;
    char tmp[DP_PATH_MAX + 64], dir[DP_PATH_MAX];
    const char *slash = strrchr(path, '/');
    /* Hidden and beside the target: the rename stays in one file system. */
    snprintf(tmp, sizeof tmp, "%.*s.%s.tmp-%ld", slash ? (int)(slash - path + 1) : 0, path,
             slash ? slash + 1 : path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) return dp_error_set(err, path, "cannot create %s: %s", tmp, strerror(errno));
    int rc = write_all(fd, buf, len) || fsync(fd) ? -1 : 0;
    int e = errno;
    if (close(fd) != 0 && !rc) rc = -1, e = errno;
    if (!rc && rename(tmp, path) != 0) rc = -1, e = errno;
    if (rc) {
        unlink(tmp);
        return dp_error_set(err, path, "cannot write the ONNX file: %s", strerror(e));
    }
    /* The rename itself reaches the disk with the directory. */
    dir_of(path, dir, sizeof dir);
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

typedef struct export_args {
    const char *ckpt, *onnx;
    int best;
} export_args;

static int export_parse(int argc, char **argv, export_args *a, dp_error *err) {
    static const struct option longopts[] = {{"onnx", required_argument, NULL, 'o'},
                                             {"best", no_argument, NULL, 'b'},
                                             {NULL, 0, NULL, 0}};
    memset(a, 0, sizeof *a);
    opterr = 0;
    optind = 2; /* after "dptrain export" */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': a->onnx = optarg; break;
        case 'b': a->best = 1; break;
        default:
            return dp_error_set(err, "usage",
                                "unknown or incomplete option '%s' (see dptrain --help)",
                                argv[optind - 1]);
        }
    }
    if (optind >= argc) return dp_error_set(err, "usage", "export needs a checkpoint or run dir");
    if (optind + 1 < argc)
        return dp_error_set(err, "usage", "unexpected argument '%s'", argv[optind + 1]);
    a->ckpt = argv[optind];
    if (!a->onnx || !a->onnx[0])
        return dp_error_set(err, "usage", "export needs --onnx OUT.onnx (the file to write)");
    return 0;
}

int dp_cmd_export(int argc, char **argv) {
    export_args a;
    dp_error err = {0};
    if (export_parse(argc, argv, &a, &err)) {
        dp_error_print(&err);
        return DP_EXIT_USAGE;
    }
    /* Before the checkpoint is read: a bad destination fails at once. */
    dp_loaded ld;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (check_dir(a.onnx, &err) || dp_load_checkpoint(&ld, a.ckpt, a.best, 1, &err)) {
        dp_error_print(&err);
        return DP_EXIT_ERROR;
    }
    int rc = dp_onnx_serialize(&ld, &buf, &len, &err) || dp_onnx_write_file(a.onnx, buf, len, &err);
    if (rc) dp_error_print(&err);
    else
        printf("wrote %s: %s, %zu parameters, opset %d, %zu bytes\n", a.onnx, ld.path,
               ld.model.n_params, DP_ONNX_OPSET, len);
    free(buf);
    dp_loaded_free(&ld);
    return rc ? DP_EXIT_ERROR : DP_EXIT_OK;
}
