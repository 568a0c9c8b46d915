/* test_optim.c - each optimizer against a scalar double-precision transcription of
 * the Keras 3 update rules (keras/src/optimizers/{sgd,adam,rmsprop}.py), plus
 * defaults, validation and state slots. */
#include "nn/optim.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { NP = 3, STEPS = 3 };

static const double p0[NP] = {0.5, -1.25, 2.0};
/* One gradient per step and parameter; signs and sizes vary so that momentum and
 * second-moment terms all matter. */
static const double grads[STEPS][NP] = {
    {0.1, -0.4, 2.0},
    {-0.3, -0.2, 1.5},
    {0.05, 0.9, -0.7},
};

/* Runs the implementation for STEPS steps from p0 and returns the parameters. */
static void run_impl(const dp_optim_cfg *cfg, float *p) {
    dp_optim o;
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_optim_init(&o, cfg, NP, &err) == 0);
    for (int i = 0; i < NP; i++) p[i] = (float)p0[i];
    for (int s = 0; s < STEPS; s++) {
        float g[NP];
        for (int i = 0; i < NP; i++) g[i] = (float)grads[s][i];
        dp_optim_step(&o, p, g, 1.0f);
    }
    CU_ASSERT_EQUAL(o.step, STEPS);
    dp_optim_free(&o);
}

/* Reference values are computed from the float-rounded inputs, so only the
 * arithmetic differs between reference and implementation. */
static double in(double v) {
    return (double)(float)v;
}

/* Relative 1e-6 on the parameters, and, since small learning rates would hide a
 * wrong update inside the parameter's magnitude, also on the displacement from p0
 * up to a few float ulps of the parameter. */
static void check_against(const float *p, const double *ref) {
    for (int i = 0; i < NP; i++) {
        double rel = fabs(p[i] - ref[i]) / fmax(fabs(ref[i]), 1e-3);
        CU_ASSERT(rel < 1e-6);
        double moved = p[i] - in(p0[i]), want = ref[i] - in(p0[i]);
        double ulp = nextafterf(fabsf(p[i]), INFINITY) - fabsf(p[i]);
        CU_ASSERT(fabs(moved - want) <= 1e-4 * fabs(want) + 3 * ulp);
        CU_ASSERT(fabs(want) > 1e-4); /* the case really moves the parameter */
        if (!(rel < 1e-6)) printf("\n  param %d: got %.9g want %.9g", i, p[i], ref[i]);
    }
}

/* sgd: p -= lr g */
static void test_sgd_plain(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    c.learning_rate = 0.1;
    float p[NP];
    run_impl(&c, p);
    double ref[NP];
    for (int i = 0; i < NP; i++) {
        ref[i] = in(p0[i]);
        for (int s = 0; s < STEPS; s++) ref[i] -= 0.1 * in(grads[s][i]);
    }
    check_against(p, ref);
}

/* sgd with momentum: m = mu m - lr g; p += m (or p += mu m - lr g for nesterov). */
static void sgd_momentum_case(int nesterov) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    c.learning_rate = 0.05;
    c.momentum = 0.9;
    c.nesterov = nesterov;
    float p[NP];
    run_impl(&c, p);
    double ref[NP];
    for (int i = 0; i < NP; i++) {
        double w = in(p0[i]), m = 0.0;
        for (int s = 0; s < STEPS; s++) {
            double g = in(grads[s][i]);
            m = 0.9 * m - 0.05 * g;
            if (nesterov) w = w + 0.9 * m - 0.05 * g;
            else w = w + m;
        }
        ref[i] = w;
    }
    check_against(p, ref);
}

static void test_sgd_momentum(void) {
    sgd_momentum_case(0);
}
static void test_sgd_nesterov(void) {
    sgd_momentum_case(1);
}

/* adam (Keras): t = step + 1, alpha = lr sqrt(1 - b2^t) / (1 - b1^t),
 * m += (g - m)(1 - b1), v += (g^2 - v)(1 - b2), p -= alpha m / (sqrt(v) + eps). */
static void adam_case(double lr, double b1, double b2, double eps, const dp_optim_cfg *c) {
    float p[NP];
    run_impl(c, p);
    double ref[NP];
    for (int i = 0; i < NP; i++) {
        double w = in(p0[i]), m = 0.0, v = 0.0;
        for (int s = 0; s < STEPS; s++) {
            double g = in(grads[s][i]);
            double t = s + 1;
            double alpha = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
            m = m + (g - m) * (1.0 - b1);
            v = v + (g * g - v) * (1.0 - b2);
            w = w - alpha * m / (sqrt(v) + eps);
        }
        ref[i] = w;
    }
    check_against(p, ref);
}

static void test_adam(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    c.learning_rate = 0.1;
    c.beta1 = 0.8;
    c.beta2 = 0.99;
    c.epsilon = 1e-2; /* large enough that eps matters in the comparison */
    adam_case(0.1, 0.8, 0.99, 1e-2, &c);
    /* With Keras's defaults. */
    dp_optim_cfg d = test_optim_cfg_unset(DP_OPTIM_ADAM);
    adam_case(0.001, 0.9, 0.999, 1e-7, &d);
}

/* rmsprop (Keras, centered = False): v = rho v + (1 - rho) g^2,
 * inc = lr g / sqrt(v + eps); momentum: mom = mu mom + inc, p -= mom; else p -= inc. */
static void rmsprop_case(double mu) {
    const double lr = 0.1, rho = 0.8, eps = 1e-2;
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_RMSPROP);
    c.learning_rate = lr;
    c.rho = rho;
    c.epsilon = eps;
    c.momentum = mu;
    float p[NP];
    run_impl(&c, p);
    double ref[NP];
    for (int i = 0; i < NP; i++) {
        double w = in(p0[i]), v = 0.0, mom = 0.0;
        for (int s = 0; s < STEPS; s++) {
            double g = in(grads[s][i]);
            v = rho * v + (1.0 - rho) * g * g;
            double inc = lr * g / sqrt(v + eps);
            if (mu > 0) {
                mom = mu * mom + inc;
                w -= mom;
            } else {
                w -= inc;
            }
        }
        ref[i] = w;
    }
    check_against(p, ref);
}

static void test_rmsprop(void) {
    rmsprop_case(0.0);
}
static void test_rmsprop_momentum(void) {
    rmsprop_case(0.7);
}

/* Keras 3 constructor defaults: SGD(0.01, momentum=0, nesterov=False),
 * Adam(0.001, 0.9, 0.999, epsilon=1e-7), RMSprop(0.001, rho=0.9, momentum=0,
 * epsilon=1e-7). */
static void test_defaults(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    dp_optim_fill_defaults(&c);
    CU_ASSERT_DOUBLE_EQUAL(c.learning_rate, 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.momentum, 0.0, 0);
    CU_ASSERT_EQUAL(c.nesterov, 0);

    c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    dp_optim_fill_defaults(&c);
    CU_ASSERT_DOUBLE_EQUAL(c.learning_rate, 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.beta1, 0.9, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.beta2, 0.999, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.epsilon, 1e-7, 1e-20);

    c = test_optim_cfg_unset(DP_OPTIM_RMSPROP);
    dp_optim_fill_defaults(&c);
    CU_ASSERT_DOUBLE_EQUAL(c.learning_rate, 0.001, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.rho, 0.9, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(c.momentum, 0.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.epsilon, 1e-7, 1e-20);

    /* Set fields are kept. */
    c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    c.learning_rate = 0.5;
    c.beta2 = 0.9;
    dp_optim_fill_defaults(&c);
    CU_ASSERT_DOUBLE_EQUAL(c.learning_rate, 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.beta2, 0.9, 0);
    CU_ASSERT_DOUBLE_EQUAL(c.beta1, 0.9, 1e-15);

    /* dp_optim_init applies them too. */
    dp_optim o;
    dp_error err = {0};
    c = test_optim_cfg_unset(DP_OPTIM_SGD);
    CU_ASSERT_FATAL(dp_optim_init(&o, &c, 4, &err) == 0);
    CU_ASSERT_DOUBLE_EQUAL(o.cfg.learning_rate, 0.01, 1e-15);
    dp_optim_free(&o);
}

static void expect_slots(dp_optim_cfg c, int n_slots, const char *s0, const char *s1) {
    dp_optim o;
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_optim_init(&o, &c, 5, &err) == 0);
    CU_ASSERT_EQUAL(o.n, 5);
    CU_ASSERT_EQUAL(o.step, 0);
    CU_ASSERT_EQUAL(o.n_slots, n_slots);
    const char *want[2] = {s0, s1};
    for (int s = 0; s < DP_OPTIM_MAX_SLOTS; s++) {
        if (s < n_slots) {
            CU_ASSERT_STRING_EQUAL(o.slot_names[s], want[s]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(o.slots[s]);
            for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(o.slots[s][i], 0.0f);
        } else {
            CU_ASSERT_PTR_NULL(o.slots[s]);
        }
    }
    dp_optim_free(&o);
    dp_optim_free(&o); /* idempotent */
}

static void test_slots(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    expect_slots(c, 0, NULL, NULL);
    c.momentum = 0.9;
    expect_slots(c, 1, "momentum", NULL);
    c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    expect_slots(c, 2, "m", "v");
    c = test_optim_cfg_unset(DP_OPTIM_RMSPROP);
    expect_slots(c, 1, "velocity", NULL);
    c.momentum = 0.5;
    expect_slots(c, 2, "velocity", "momentum");

    dp_optim zero;
    memset(&zero, 0, sizeof zero);
    dp_optim_free(&zero); /* safe on a zeroed struct */
}

static void expect_rejected(dp_optim_cfg c, const char *word) {
    dp_optim o;
    dp_error err = {0};
    CU_ASSERT(dp_optim_init(&o, &c, 3, &err) == -1);
    CU_ASSERT(err.set);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, word));
    dp_optim_free(&o);
}

static void test_validation(void) {
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    c.learning_rate = 0;
    expect_rejected(c, "learning_rate");
    c.learning_rate = NAN;
    expect_rejected(c, "learning_rate");
    c = test_optim_cfg_unset(DP_OPTIM_SGD);
    c.momentum = 1.5;
    expect_rejected(c, "momentum");
    c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    c.beta1 = 1.0;
    expect_rejected(c, "beta1");
    c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    c.beta2 = 2.0;
    expect_rejected(c, "beta2");
    c = test_optim_cfg_unset(DP_OPTIM_ADAM);
    c.epsilon = 0;
    expect_rejected(c, "epsilon");
    c = test_optim_cfg_unset(DP_OPTIM_RMSPROP);
    c.rho = 1.0;
    expect_rejected(c, "rho");
}

/* The gradient scale is applied as the gradient is read: a step on g with
 * scale s leaves the same bits as a step on the float products g*s with scale 1,
 * for every kind. A NaN or Inf scaled gradient, including one that only the
 * scale makes overflow, is reported. */
static void test_scale_and_nonfinite(void) {
    enum { N = 37 };
    const struct {
        dp_optim_kind kind;
        double momentum;
        int nesterov;
    } kinds[] = {
        {DP_OPTIM_SGD, 0, 0},     {DP_OPTIM_SGD, 0.9, 1},     {DP_OPTIM_ADAM, 0, 0},
        {DP_OPTIM_RMSPROP, 0, 0}, {DP_OPTIM_RMSPROP, 0.5, 0},
    };
    const float scale = 1.0f / 3.0f;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        dp_optim_cfg c = test_optim_cfg_unset(kinds[k].kind);
        if (kinds[k].momentum > 0) c.momentum = kinds[k].momentum, c.nesterov = kinds[k].nesterov;
        dp_optim a, b;
        dp_error err = {0};
        CU_ASSERT_FATAL(dp_optim_init(&a, &c, N, &err) == 0 && dp_optim_init(&b, &c, N, &err) == 0);
        float pa[N], pb[N], g[N], gs[N];
        for (int i = 0; i < N; i++) pa[i] = pb[i] = 0.1f * (float)(i - 18);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N; i++) {
                g[i] = (float)((i * 7 + step * 13) % 11) - 5.0f;
                gs[i] = g[i] * scale;
            }
            CU_ASSERT_EQUAL(dp_optim_step(&a, pa, g, scale), 0);
            CU_ASSERT_EQUAL(dp_optim_step(&b, pb, gs, 1.0f), 0);
        }
        ASSERT_SAME_FLOATS(pa, pb, N);
        for (int sl = 0; sl < a.n_slots; sl++) ASSERT_SAME_FLOATS(a.slots[sl], b.slots[sl], N);
        g[N - 1] = INFINITY;
        CU_ASSERT_EQUAL(dp_optim_step(&a, pa, g, scale), -1);
        g[N - 1] = NAN;
        CU_ASSERT_EQUAL(dp_optim_step(&b, pb, g, 1.0f), -1);
        g[N - 1] = 3e38f; /* finite, but twice it is not */
        CU_ASSERT_EQUAL(dp_optim_step(&b, pb, g, 1.0f), 0);
        CU_ASSERT_EQUAL(dp_optim_step(&b, pb, g, 2.0f), -1);
        dp_optim_free(&a);
        dp_optim_free(&b);
    }
}

/* Ranks sharing one parameter copy each update their own range: the ranges
 * together leave the same bits as one whole step, and a range update touches
 * nothing outside its range. */
static void test_ranges(void) {
    enum { N = 50, CUT = 16 };
    const dp_optim_kind kinds[] = {DP_OPTIM_SGD, DP_OPTIM_ADAM, DP_OPTIM_RMSPROP};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        dp_optim_cfg c = test_optim_cfg_unset(kinds[k]);
        if (kinds[k] != DP_OPTIM_ADAM) c.momentum = 0.5;
        dp_optim whole, lo, hi;
        dp_error err = {0};
        CU_ASSERT_FATAL(dp_optim_init(&whole, &c, N, &err) == 0 &&
                        dp_optim_init(&lo, &c, N, &err) == 0 &&
                        dp_optim_init(&hi, &c, N, &err) == 0);
        float pw[N], pr[N], g[N];
        for (int i = 0; i < N; i++) pw[i] = pr[i] = 0.05f * (float)(i - 25);
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N; i++) g[i] = (float)((i * 5 + step * 3) % 7) - 3.0f;
            float before_hi = pr[CUT];
            CU_ASSERT_EQUAL(dp_optim_step(&whole, pw, g, 0.5f), 0);
            CU_ASSERT_EQUAL(dp_optim_update_range(&lo, 0, CUT, pr, g, 0.5f), 0);
            CU_ASSERT_EQUAL(pr[CUT], before_hi);     /* outside the range: untouched */
            CU_ASSERT_EQUAL(lo.slots[0][CUT], 0.0f); /* nor its state */
            CU_ASSERT_EQUAL(dp_optim_update_range(&hi, CUT, N - CUT, pr + CUT, g + CUT, 0.5f), 0);
            dp_optim_end_step(&lo);
            dp_optim_end_step(&hi);
        }
        CU_ASSERT_EQUAL(lo.step, 3);
        ASSERT_SAME_FLOATS(pw, pr, N);
        for (int sl = 0; sl < whole.n_slots; sl++) {
            ASSERT_SAME_FLOATS(whole.slots[sl], lo.slots[sl], CUT);
            ASSERT_SAME_FLOATS(whole.slots[sl] + CUT, hi.slots[sl] + CUT, N - CUT);
        }
        /* A NaN is reported by the range that holds it only. */
        g[N - 1] = NAN;
        CU_ASSERT_EQUAL(dp_optim_update_range(&lo, 0, CUT, pr, g, 0.5f), 0);
        CU_ASSERT_EQUAL(dp_optim_update_range(&hi, CUT, N - CUT, pr + CUT, g + CUT, 0.5f), -1);
        dp_optim_free(&whole);
        dp_optim_free(&lo);
        dp_optim_free(&hi);
    }
}

/* A change of o->cfg.learning_rate between steps is used by the next step. */
static void test_learning_rate_change(void) {
    dp_optim o;
    dp_error err = {0};
    dp_optim_cfg c = test_optim_cfg_unset(DP_OPTIM_SGD);
    CU_ASSERT_FATAL(dp_optim_init(&o, &c, 1, &err) == 0);
    float p[1] = {1.0f}, g[1] = {2.0f};
    dp_optim_step(&o, p, g, 1.0f);
    o.cfg.learning_rate = 0.5;
    dp_optim_step(&o, p, g, 1.0f);
    CU_ASSERT_DOUBLE_EQUAL(p[0], 1.0 - 0.01 * 2 - 0.5 * 2, 1e-6);
    dp_optim_free(&o);
}

int main(void) {
    static const test_case cases[] = {
        {"sgd", test_sgd_plain},
        {"gradient scale read in, NaN and Inf reported", test_scale_and_nonfinite},
        {"ranges of one parameter copy", test_ranges},
        {"sgd momentum", test_sgd_momentum},
        {"sgd nesterov", test_sgd_nesterov},
        {"adam", test_adam},
        {"rmsprop", test_rmsprop},
        {"rmsprop momentum", test_rmsprop_momentum},
        {"keras defaults", test_defaults},
        {"state slots", test_slots},
        {"validation", test_validation},
        {"learning rate change between steps", test_learning_rate_change},
        {NULL, NULL},
    };
    return test_run_suite("optim", cases);
}
