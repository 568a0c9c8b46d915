/* test_optim_clip.c - clipnorm and global_clipnorm against a double-precision
 * transcription of Keras's clip_by_norm / clip_by_global_norm, and AdamW against
 * Keras 3's formula (decay variable -= lr * weight_decay * variable, then Adam). */
#include "nn/optim.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Three tensors of a flat arena of N: [0, 5), [5, 12), [12, 16). */
enum { N = 16, NT = 3, STEPS = 4 };
static const size_t t_off[NT] = {0, 5, 12}, t_len[NT] = {5, 7, 4};

static void init(dp_optim *o, const dp_optim_cfg *c) {
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_optim_init(o, c, N, &err) == 0);
    dp_optim_set_tensors(o, NT, t_off, t_len);
}

/* A gradient whose tensors have norms of different sizes: the second is large. */
static void gradient(int step, float *g) {
    for (int i = 0; i < N; i++) {
        double big = i >= 5 && i < 12 ? 4.0 : 0.3;
        g[i] = (float)(big * sin(1.7 * i + 0.9 * step + 0.3));
    }
}

/* Keras: per tensor, g * c / max(norm, c); for the global limit, every g by
 * c / max(global norm, c). In double, from the float gradient times scale. */
static void reference_clip(const float *g, float scale, double clipnorm, double global,
                           double *out) {
    double total = 0, ss[NT];
    for (int t = 0; t < NT; t++) {
        ss[t] = 0;
        for (size_t i = t_off[t]; i < t_off[t] + t_len[t]; i++) {
            double x = (double)g[i] * scale;
            ss[t] += x * x;
        }
        total += ss[t];
    }
    for (int t = 0; t < NT; t++) {
        double f = 1;
        if (clipnorm > 0) f = clipnorm / fmax(sqrt(ss[t]), clipnorm);
        if (global > 0) f = global / fmax(sqrt(total), global);
        for (size_t i = t_off[t]; i < t_off[t] + t_len[t]; i++) out[i] = (double)g[i] * scale * f;
    }
}

/* Plain sgd with learning rate 1 moves each parameter by minus its clipped
 * gradient: the displacement is compared with the reference's. */
static void clip_case(double clipnorm, double global, int expect_clipped) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    c.learning_rate = 1.0;
    c.clipnorm = clipnorm;
    c.global_clipnorm = global;
    dp_optim o;
    init(&o, &c);
    CU_ASSERT(dp_optim_clips(&o));
    const float scale = 0.5f;
    int clipped = 0;
    for (int step = 0; step < STEPS; step++) {
        float p[N] = {0}, g[N];
        double want[N];
        gradient(step, g);
        reference_clip(g, scale, clipnorm, global, want);
        CU_ASSERT_EQUAL(dp_optim_step(&o, p, g, scale), 0);
        for (int i = 0; i < N; i++) {
            CU_ASSERT(fabs(-p[i] - want[i]) <= 1e-6 * fabs(want[i]) + 1e-12);
            if (!(fabs(-p[i] - want[i]) <= 1e-6 * fabs(want[i]) + 1e-12))
                printf("\n  step %d elem %d: moved %.9g want %.9g", step, i, -p[i], want[i]);
            clipped |= fabs(want[i] - (double)g[i] * scale) > 1e-3 * fabs((double)g[i] * scale);
        }
    }
    CU_ASSERT_EQUAL(clipped, expect_clipped); /* the case really clips, or really does not */
    dp_optim_free(&o);
}

static void test_clipnorm(void) {
    clip_case(1.0, 0, 1); /* the second tensor's norm is about 5, the others' under 1 */
    clip_case(0.05, 0, 1);
}

static void test_global_clipnorm(void) {
    clip_case(0, 2.0, 1);
    clip_case(0, 0.01, 1);
}

/* The norms returned: global, over all tensors. */
static void test_norm_value(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    c.global_clipnorm = 1.0;
    dp_optim o;
    init(&o, &c);
    float g[N];
    gradient(0, g);
    double ss = 0;
    for (int i = 0; i < N; i++) ss += (double)(g[i] * 0.25f) * (double)(g[i] * 0.25f);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_clip_prepare(&o, g, 0.25f), sqrt(ss), 1e-12 * sqrt(ss));
    CU_ASSERT_EQUAL(o.clip[0], o.clip[2]);
    CU_ASSERT_DOUBLE_EQUAL(o.clip[0], 1.0 / sqrt(ss), 1e-6 / sqrt(ss));
    dp_optim_free(&o);
}

/* For every kind, a clipped step on g leaves the bits of an unclipped step on
 * the rescaled gradient g * scale * factor, the factors computed here from the
 * reference norms; and a limit above every norm leaves the bits of no clipping. */
static void test_clipped_equals_rescaled(void) {
    const dp_optim_kind kinds[] = {DP_OPTIM_SGD, DP_OPTIM_ADAM, DP_OPTIM_RMSPROP, DP_OPTIM_ADAMW};
    const float scale = 1.0f / 3.0f;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int global = 0; global < 2; global++) {
            dp_optim_cfg c = test_optim_cfg_unset(kinds[k]);
            if (kinds[k] == DP_OPTIM_SGD) c.momentum = 0.9;
            dp_optim_cfg plain = c, loose = c;
            if (global) c.global_clipnorm = 0.5, loose.global_clipnorm = 1e6;
            else c.clipnorm = 0.3, loose.clipnorm = 1e6;
            dp_optim a, b, l;
            init(&a, &c);
            init(&b, &plain);
            init(&l, &loose);
            float pa[N], pb[N], pl[N], pn[N], g[N], gr[N];
            dp_optim n;
            init(&n, &plain);
            for (int i = 0; i < N; i++) pa[i] = pb[i] = pl[i] = pn[i] = 0.1f * (float)(i - 8);
            int clipped = 0, kept = 0;
            for (int step = 0; step < STEPS; step++) {
                gradient(step, g);
                double ss[NT], total = 0;
                for (int t = 0; t < NT; t++) {
                    ss[t] = 0;
                    for (size_t i = t_off[t]; i < t_off[t] + t_len[t]; i++)
                        ss[t] += (double)(g[i] * scale) * (double)(g[i] * scale);
                    total += ss[t];
                }
                for (int t = 0; t < NT; t++) {
                    double norm = global ? sqrt(total) : sqrt(ss[t]);
                    double limit = global ? c.global_clipnorm : c.clipnorm;
                    float f = norm > limit ? (float)(limit / norm) : 1.0f;
                    clipped += norm > limit;
                    kept += !(norm > limit);
                    for (size_t i = t_off[t]; i < t_off[t] + t_len[t]; i++)
                        gr[i] = g[i] * scale * f;
                }
                CU_ASSERT_EQUAL(dp_optim_step(&a, pa, g, scale), 0);
                CU_ASSERT_EQUAL(dp_optim_step(&b, pb, gr, 1.0f), 0);
                CU_ASSERT_EQUAL(dp_optim_step(&l, pl, g, scale), 0);
                CU_ASSERT_EQUAL(dp_optim_step(&n, pn, g, scale), 0);
            }
            ASSERT_SAME_FLOATS(pa, pb, N);
            for (int s = 0; s < a.n_slots; s++) ASSERT_SAME_FLOATS(a.slots[s], b.slots[s], N);
            /* per tensor, some tensors are clipped and some are not */
            CU_ASSERT(clipped > 0 && (global || kept > 0));
            ASSERT_SAME_FLOATS(pl, pn, N);
            ASSERT_DIFFERENT_BYTES(pa, pn, sizeof pa);
            dp_optim_free(&a);
            dp_optim_free(&b);
            dp_optim_free(&l);
            dp_optim_free(&n);
        }
    }
}

/* Ranks sharing a copy each update a range, cut anywhere (inside tensors too),
 * after computing the factors from the whole gradient: the bits of one step. */
static void test_clip_ranges(void) {
    const size_t cuts[] = {0, 3, 9, 13, N};
    for (int global = 0; global < 2; global++) {
        dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_ADAM);
        if (global) c.global_clipnorm = 0.5;
        else c.clipnorm = 0.3;
        dp_optim whole, part;
        init(&whole, &c);
        init(&part, &c);
        float pw[N], pr[N], g[N];
        for (int i = 0; i < N; i++) pw[i] = pr[i] = 0.2f * (float)(i - 7);
        for (int step = 0; step < STEPS; step++) {
            gradient(step, g);
            CU_ASSERT_EQUAL(dp_optim_step(&whole, pw, g, 0.5f), 0);
            dp_optim_clip_prepare(&part, g, 0.5f);
            for (int r = 3; r >= 0; r--) /* any order */
                CU_ASSERT_EQUAL(dp_optim_update_range(&part, cuts[r], cuts[r + 1] - cuts[r],
                                                      pr + cuts[r], g + cuts[r], 0.5f),
                                0);
            dp_optim_end_step(&part);
        }
        ASSERT_SAME_FLOATS(pw, pr, N);
        for (int s = 0; s < whole.n_slots; s++)
            ASSERT_SAME_FLOATS(whole.slots[s], part.slots[s], N);
        dp_optim_free(&whole);
        dp_optim_free(&part);
    }
}

/* A NaN or Inf gradient is still reported with clipping on (the factor stays 1
 * so the bad value reaches the check). */
static void test_clip_nonfinite(void) {
    for (int global = 0; global < 2; global++) {
        for (int inf = 0; inf < 2; inf++) {
            dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
            if (global) c.global_clipnorm = 0.5;
            else c.clipnorm = 0.5;
            dp_optim o;
            init(&o, &c);
            float p[N] = {0}, g[N];
            gradient(0, g);
            g[7] = inf ? INFINITY : NAN;
            CU_ASSERT_EQUAL(dp_optim_step(&o, p, g, 1.0f), -1);
            dp_optim_free(&o);
        }
    }
}

/* Keras 3 AdamW, in double: variable -= variable * wd * lr, then Adam with
 * bias-corrected alpha = lr sqrt(1 - b2^t) / (1 - b1^t). */
static void adamw_reference(double lr, double wd, double b1, double b2, double eps, double *p) {
    double m[N] = {0}, v[N] = {0};
    for (int step = 0; step < STEPS; step++) {
        float g[N];
        gradient(step, g);
        double t = step + 1, alpha = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
        for (int i = 0; i < N; i++) {
            p[i] -= p[i] * wd * lr;
            m[i] += ((double)g[i] - m[i]) * (1 - b1);
            v[i] += ((double)g[i] * g[i] - v[i]) * (1 - b2);
            p[i] -= m[i] * alpha / (sqrt(v[i]) + eps);
        }
    }
}

static void adamw_case(double lr, double wd, const dp_optim_cfg *c) {
    dp_optim o;
    init(&o, c);
    CU_ASSERT_EQUAL(o.n_slots, 2);
    float p[N];
    double ref[N], ref_nodecay[N];
    for (int i = 0; i < N; i++) p[i] = (float)(ref[i] = ref_nodecay[i] = 2.0 * cos(0.7 * i));
    for (int step = 0; step < STEPS; step++) {
        float g[N];
        gradient(step, g);
        CU_ASSERT_EQUAL(dp_optim_step(&o, p, g, 1.0f), 0);
    }
    adamw_reference(lr, wd, 0.9, 0.999, 1e-7, ref);
    adamw_reference(lr, 0, 0.9, 0.999, 1e-7, ref_nodecay);
    for (int i = 0; i < N; i++) {
        double moved = p[i] - 2.0 * cos(0.7 * i), want = ref[i] - 2.0 * cos(0.7 * i);
        CU_ASSERT(fabs(moved - want) <= 1e-4 * fabs(want) + 1e-6);
        /* the decay is visible: without it the parameter ends elsewhere */
        CU_ASSERT(fabs(ref[i] - ref_nodecay[i]) > 50 * (fabs(moved - want) + 1e-9));
        if (!(fabs(moved - want) <= 1e-4 * fabs(want) + 1e-6))
            printf("\n  param %d: got %.9g want %.9g", i, p[i], ref[i]);
    }
    dp_optim_free(&o);
}

static void test_adamw(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_ADAMW);
    adamw_case(0.001, 0.004, &c); /* Keras's defaults, filled in by init */
    c.learning_rate = 0.05;
    c.weight_decay = 0.5;
    adamw_case(0.05, 0.5, &c);
}

/* AdamW with a zero decay is Adam, bit for bit. */
static void test_adamw_zero_decay(void) {
    dp_optim_cfg cw = test_optim_cfg_unset(DP_OPTIM_ADAMW),
                 ca = test_optim_cfg_unset(DP_OPTIM_ADAM);
    cw.weight_decay = 0;
    dp_optim a, w;
    init(&a, &ca);
    init(&w, &cw);
    float pa[N], pw[N];
    for (int i = 0; i < N; i++) pa[i] = pw[i] = (float)i - 3.5f;
    for (int step = 0; step < STEPS; step++) {
        float g[N];
        gradient(step, g);
        dp_optim_step(&a, pa, g, 1.0f);
        dp_optim_step(&w, pw, g, 1.0f);
    }
    ASSERT_SAME_FLOATS(pa, pw, N);
    dp_optim_free(&a);
    dp_optim_free(&w);
}

/* Both limits at once are refused, as Keras raises. */
static void test_both_refused(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    c.clipnorm = 1;
    c.global_clipnorm = 1;
    dp_optim o;
    dp_error err = {0};
    CU_ASSERT_EQUAL(dp_optim_init(&o, &c, N, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, "clipnorm and global_clipnorm are both set"));
    dp_optim_free(&o);
}

int main(void) {
    static const test_case cases[] = {
        {"clipnorm per tensor", test_clipnorm},
        {"global_clipnorm", test_global_clipnorm},
        {"the global norm", test_norm_value},
        {"clipped step = step on the rescaled gradient; inactive = unclipped bits",
         test_clipped_equals_rescaled},
        {"ranges with clipping", test_clip_ranges},
        {"NaN and Inf reported with clipping", test_clip_nonfinite},
        {"adamw against keras", test_adamw},
        {"adamw without decay is adam", test_adamw_zero_decay},
        {"clipnorm and global_clipnorm refused together", test_both_refused},
        {NULL, NULL},
    };
    return test_run_suite("optim_clip", cases);
}
