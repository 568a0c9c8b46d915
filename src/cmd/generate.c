/* generate.c - `dptrain generate`: sampling text from a byte-level language model. */
#include "cmd/cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rng.h"
#include "cmd/cmd_load.h"
#include "dptrain/train.h"
#include "nn/sample.h"

typedef struct gen_args {
    const char *ckpt;
    const char *prompt;
    long length;
    double temperature;
    int top_k;
    unsigned long long seed;
} gen_args;

static int gen_number(const char *opt, const char *s, double lo, double hi, double *out,
                      dp_error *err) {
    char *end;
    double v = strtod(s, &end);
    if (*s == '\0' || *end || !(v >= lo && v <= hi))
        return dp_error_set(err, opt, "expected a number in [%g, %g], got '%s'", lo, hi, s);
    *out = v;
    return 0;
}

static int gen_parse(int argc, char **argv, gen_args *a, dp_error *err) {
    static const struct option longopts[] = {
        {"prompt", required_argument, NULL, 'p'},      {"length", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, 't'}, {"top-k", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 's'},        {NULL, 0, NULL, 0}};
    *a = (gen_args){.length = 200, .temperature = 1.0};
    opterr = 0;
    optind = 2; /* after "dptrain generate" */
    int ch;
    double v = 0.0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': a->prompt = optarg; break;
        case 'n':
            if (gen_number("--length", optarg, 0, 1e7, &v, err)) return -1;
            a->length = (long)v;
            break;
        case 't':
            if (gen_number("--temperature", optarg, 0, 1e6, &v, err)) return -1;
            a->temperature = v;
            break;
        case 'k':
            if (gen_number("--top-k", optarg, 0, 1e9, &v, err)) return -1;
            a->top_k = (int)v;
            break;
        case 's':
            if (gen_number("--seed", optarg, 0, 9007199254740992.0, &v, err)) return -1;
            a->seed = (unsigned long long)v;
            break;
        default:
            return dp_error_set(err, "usage",
                                "unknown or incomplete option '%s' (see dptrain --help)",
                                argv[optind - 1]);
        }
    }
    if (optind >= argc) return dp_error_set(err, "usage", "generate needs a checkpoint or run dir");
    if (optind + 1 < argc)
        return dp_error_set(err, "usage", "unexpected argument '%s'", argv[optind + 1]);
    a->ckpt = argv[optind];
    if (!a->prompt || !a->prompt[0])
        return dp_error_set(err, "--prompt", "generate needs a non-empty --prompt TEXT");
    return 0;
}

/* A byte-level language model: token ids in, next-token logits out at every
 * position, and causal, so that padding after the prompt changes nothing
 * before it. */
static int gen_check_lm(const dp_model *m, const dp_config *cfg, const char *path, dp_error *err) {
    if (cfg->n_layers < 1 || strcmp(cfg->layers[0].type, "embedding") != 0 || m->positions < 2 ||
        !m->fused || m->loss == DP_LOSS_BCE || m->classes != cfg->layers[0].input_dim)
        return dp_error_set(err, path,
                            "not a language model: generate needs token ids in (an embedding "
                            "first layer) and a softmax over the same vocabulary at every "
                            "position out");
    for (int i = 0; i < cfg->n_layers; i++) {
        const dp_layer_cfg *l = &cfg->layers[i];
        if ((!strcmp(l->type, "multi_head_attention") || !strcmp(l->type, "transformer_block")) &&
            !l->causal)
            return dp_error_set(err, path,
                                "layer %d (%s) is not causal: it sees later positions, so it "
                                "cannot generate text",
                                i, l->type);
    }
    if (m->classes < 256)
        return dp_error_set(err, path,
                            "the vocabulary has %d tokens; generate reads the prompt as bytes "
                            "and needs 256",
                            m->classes);
    return 0;
}

static int gen_load(const gen_args *a, dp_loaded *l, dp_error *err) {
    if (dp_load_checkpoint(l, a->ckpt, 0, 1, err)) return -1;
    if (gen_check_lm(&l->model, &l->cfg, l->path, err) == 0) return 0;
    dp_loaded_free(l);
    return -1;
}

/* The window is the last T tokens; shorter contexts sit at the start, padded
 * with zeros after them, and the logits are read at their last position. */
static void gen_run(const gen_args *a, dp_model *m) {
    int T = m->in_shape.dim[0], V = m->classes;
    size_t plen = strlen(a->prompt), n = plen;
    unsigned char *tok = DP_MALLOC(plen + (size_t)a->length + 1);
    memcpy(tok, a->prompt, plen);
    float *x = DP_MALLOC((size_t)T * sizeof *x), *scratch = DP_MALLOC((size_t)V * sizeof *scratch);
    fwrite(a->prompt, 1, plen, stdout);
    for (long i = 0; i < a->length; i++) {
        size_t len = n < (size_t)T ? n : (size_t)T, first = n - len;
        for (int t = 0; t < T; t++) x[t] = (size_t)t < len ? (float)tok[first + (size_t)t] : 0.0f;
        const float *logits = dp_model_forward(m, x, 1, NULL) + (len - 1) * (size_t)V;
        uint64_t key = dp_rng_make_key(a->seed, 0x6e7e, (uint64_t)i, 0);
        int next = dp_sample_token(logits, V, a->temperature, a->top_k, key, scratch);
        tok[n++] = (unsigned char)next;
        fputc(next, stdout);
    }
    fputc('\n', stdout);
    free(tok);
    free(x);
    free(scratch);
}

int dp_cmd_generate(int argc, char **argv) {
    gen_args a;
    dp_error err = {0};
    if (gen_parse(argc, argv, &a, &err)) {
        dp_error_print(&err);
        return DP_EXIT_USAGE;
    }
    dp_loaded l;
    if (gen_load(&a, &l, &err)) {
        dp_error_print(&err);
        return DP_EXIT_ERROR;
    }
    gen_run(&a, &l.model);
    dp_loaded_free(&l);
    return DP_EXIT_OK;
}
