/* test_lr_schedule.c - learning-rate schedules against independent transcriptions
 * of Keras 3's CosineDecay and ExponentialDecay (keras/src/optimizers/schedules/
 * learning_rate_schedule.py), the optimizer following them step by step, and
 * their config keys: values, defaults and errors placed at file:line:col. */
#include "dptrain/config.h"
#include "nn/optim.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- references, written from the Keras documentation's formulas ---- */

static double ref_cosine(double step, double init, double decay_steps, double alpha,
                         double warmup_target, double warmup_steps) {
    const double pi = acos(-1.0);
    double from = init;
    if (!isnan(warmup_target)) {
        if (step > warmup_steps + decay_steps) step = warmup_steps + decay_steps;
        if (step < warmup_steps) return init + (warmup_target - init) * step / warmup_steps;
        step -= warmup_steps;
        from = warmup_target;
    } else if (step > decay_steps) {
        step = decay_steps;
    }
    double c = 0.5 * (1 + cos(pi * step / decay_steps));
    return from * ((1 - alpha) * c + alpha);
}

static double ref_exponential(double step, double init, double decay_steps, double rate,
                              int staircase) {
    double p = step / decay_steps;
    return init * pow(rate, staircase ? floor(p) : p);
}

static dp_optim_cfg sgd_with(dp_lr_schedule s) {
    dp_optim_cfg c = {.kind = DP_OPTIM_SGD, .learning_rate = -1, .momentum = -1, .nesterov = -1};
    c.schedule = s;
    return c;
}

static void expect_rate(const dp_optim_cfg *c, long long step, double want) {
    double got = dp_optim_schedule_at(c, step);
    CU_ASSERT(fabs(got - want) <= 1e-13 * fabs(want) + 1e-300);
    if (!(fabs(got - want) <= 1e-13 * fabs(want) + 1e-300))
        printf("\n  step %lld: got %.17g want %.17g", step, got, want);
}

static void test_cosine_no_warmup(void) {
    dp_lr_schedule s = {.kind = DP_LR_COSINE_DECAY,
                        .initial_learning_rate = 0.1,
                        .decay_steps = 40,
                        .alpha = 0.2,
                        .warmup_target = NAN};
    dp_optim_cfg c = sgd_with(s);
    for (long long t = 0; t <= 60; t++) expect_rate(&c, t, ref_cosine(t, 0.1, 40, 0.2, NAN, 0));
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 0), 0.1, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 40), 0.02, 1e-15); /* alpha * initial */
    CU_ASSERT_EQUAL(dp_optim_schedule_at(&c, 40), dp_optim_schedule_at(&c, 1000));
    /* warmup_steps without warmup_target is ignored, as in Keras */
    c.schedule.warmup_steps = 10;
    for (long long t = 0; t <= 60; t++) expect_rate(&c, t, ref_cosine(t, 0.1, 40, 0.2, NAN, 0));
}

static void test_cosine_warmup(void) {
    dp_lr_schedule s = {.kind = DP_LR_COSINE_DECAY,
                        .initial_learning_rate = 0.0,
                        .decay_steps = 50,
                        .alpha = 0.0,
                        .warmup_target = 0.01,
                        .warmup_steps = 10};
    dp_optim_cfg c = sgd_with(s);
    for (long long t = 0; t <= 80; t++) expect_rate(&c, t, ref_cosine(t, 0.0, 50, 0.0, 0.01, 10));
    /* the edges, by hand */
    CU_ASSERT_EQUAL(dp_optim_schedule_at(&c, 0), 0.0);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 5), 0.005, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 9), 0.009, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 10), 0.01, 1e-15);  /* the decay's start */
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 35), 0.005, 1e-15); /* half way down */
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 60), 0.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 99), 0.0, 1e-15);
    /* a warmup from above, with a floor */
    c.schedule.initial_learning_rate = 0.03;
    c.schedule.alpha = 0.5;
    for (long long t = 0; t <= 80; t++) expect_rate(&c, t, ref_cosine(t, 0.03, 50, 0.5, 0.01, 10));
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 70), 0.005, 1e-15);
    /* warmup_target with no warmup steps: decay from the target at once */
    c.schedule.warmup_steps = 0;
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 0), 0.01, 1e-15);
}

static void test_exponential(void) {
    for (int staircase = 0; staircase < 2; staircase++) {
        dp_lr_schedule s = {.kind = DP_LR_EXPONENTIAL_DECAY,
                            .initial_learning_rate = 0.5,
                            .decay_steps = 7,
                            .decay_rate = 0.8,
                            .staircase = staircase};
        dp_optim_cfg c = sgd_with(s);
        for (long long t = 0; t <= 100; t++)
            expect_rate(&c, t, ref_exponential(t, 0.5, 7, 0.8, staircase));
        CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 14), 0.5 * 0.64, 1e-15);
    }
    dp_lr_schedule s = {.kind = DP_LR_EXPONENTIAL_DECAY,
                        .initial_learning_rate = 0.5,
                        .decay_steps = 7,
                        .decay_rate = 0.8,
                        .staircase = 1};
    dp_optim_cfg c = sgd_with(s);
    CU_ASSERT_EQUAL(dp_optim_schedule_at(&c, 6), 0.5);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_schedule_at(&c, 7), 0.4, 1e-15);
}

/* Plain sgd follows the schedule: step t moves p by -lr(t) g, lr(t) at the
 * optimizer's count before the step (Keras's `iterations`); an optimizer whose
 * count is restored (as from a checkpoint) continues it. */
static void test_optimizer_follows(void) {
    dp_lr_schedule s = {.kind = DP_LR_COSINE_DECAY,
                        .initial_learning_rate = 0.001,
                        .decay_steps = 20,
                        .warmup_target = 0.1,
                        .warmup_steps = 5};
    dp_optim_cfg c = sgd_with(s);
    dp_optim o, r;
    dp_error err = {0};
    CU_ASSERT_FATAL(dp_optim_init(&o, &c, 1, &err) == 0);
    CU_ASSERT_FATAL(dp_optim_init(&r, &c, 1, &err) == 0);
    float p[1] = {1.0f}, g[1] = {1.0f};
    for (int t = 0; t < 30; t++) {
        double lr = ref_cosine(t, 0.001, 20, 0, 0.1, 5);
        CU_ASSERT_DOUBLE_EQUAL(dp_optim_learning_rate(&o), lr, 1e-15);
        float before = p[0];
        dp_optim_step(&o, p, g, 1.0f);
        CU_ASSERT_EQUAL(p[0], before - (float)lr * 1.0f);
    }
    r.step = 17;
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_learning_rate(&r), ref_cosine(17, 0.001, 20, 0, 0.1, 5), 1e-15);
    dp_optim_free(&o);
    dp_optim_free(&r);
}

/* ---- config ---- */

#define NAME "t.yaml"
#define HEAD \
    "data: {path: d.h5}\n" \
    "model: {input: [4], layers: [{dense: {units: 1}}]}\n" \
    "loss: mse\n" \
    "train: {epochs: 1, batch_size: 8}\n"

static int load(dp_config *cfg, const char *text, char *const *sets, int n_set, dp_error *err) {
    dp_error_clear(err);
    return dp_config_load_text(cfg, NAME, text, strlen(text), sets, n_set, err);
}

/* Loads HEAD + opt (the optimizer, from line 5) and expects an error at the
 * first `at` in line 5 + line_in_opt, with `what` in the message. */
static void expect_error(const char *opt, int line_in_opt, const char *at, const char *what) {
    char text[2048], where[64];
    snprintf(text, sizeof text, "%s%s", HEAD, opt);
    const char *line = opt;
    for (int i = 0; i < line_in_opt; i++) line = strchr(line, '\n') + 1;
    snprintf(where, sizeof where, "%s:%d:%d", NAME, 5 + line_in_opt,
             (int)(strstr(line, at) - line) + 1);
    dp_config cfg;
    dp_error err;
    int rc = load(&cfg, text, NULL, 0, &err);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_STRING_EQUAL(err.where, where);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.what, what));
    CU_ASSERT_PTR_NULL(strchr(err.what, '\n')); /* one line */
    if (rc != -1 || strcmp(err.where, where) != 0 || !strstr(err.what, what))
        fprintf(stderr, "\n  expected %s: ...%s...\n  got      %s: %s\n", where, what, err.where,
                err.what);
    dp_config_free(&cfg);
}

static void test_config_values(void) {
    dp_config cfg;
    dp_error err;
    const char *text = HEAD "optimizer:\n"
                            "  name: adamw\n"
                            "  weight_decay: 0.01\n"
                            "  global_clipnorm: 1.5\n"
                            "  learning_rate:\n"
                            "    schedule: cosine_decay\n"
                            "    initial_learning_rate: 0.0\n"
                            "    decay_steps: 1000\n"
                            "    warmup_target: 0.002\n"
                            "    warmup_steps: 100\n";
    CU_ASSERT_FATAL(load(&cfg, text, NULL, 0, &err) == 0);
    const dp_optim_cfg *o = &cfg.optim;
    CU_ASSERT_EQUAL(o->kind, DP_OPTIM_ADAMW);
    CU_ASSERT_EQUAL(o->weight_decay, 0.01);
    CU_ASSERT_EQUAL(o->global_clipnorm, 1.5);
    CU_ASSERT_EQUAL(o->clipnorm, 0);
    CU_ASSERT_EQUAL(o->schedule.kind, DP_LR_COSINE_DECAY);
    CU_ASSERT_EQUAL(o->schedule.initial_learning_rate, 0.0);
    CU_ASSERT_EQUAL(o->schedule.decay_steps, 1000);
    CU_ASSERT_EQUAL(o->schedule.warmup_target, 0.002);
    CU_ASSERT_EQUAL(o->schedule.warmup_steps, 100);
    CU_ASSERT_EQUAL(o->schedule.alpha, 0);
    dp_optim opt;
    CU_ASSERT_FATAL(dp_optim_init(&opt, o, 4, &err) == 0);
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_learning_rate(&opt), 0.0, 1e-18);
    opt.step = 50;
    CU_ASSERT_DOUBLE_EQUAL(dp_optim_learning_rate(&opt), 0.001, 1e-15);
    dp_optim_free(&opt);
    dp_config_free(&cfg);

    /* Keras's defaults: warmup_target null (no warmup), alpha 0, staircase false;
     * a number is a constant rate; clipnorm null */
    text = HEAD "optimizer: {name: sgd, clipnorm: 2, learning_rate: {schedule: exponential_decay, "
                "initial_learning_rate: 0.1, decay_steps: 10, decay_rate: 0.5}}\n";
    CU_ASSERT_FATAL(load(&cfg, text, NULL, 0, &err) == 0);
    CU_ASSERT_EQUAL(cfg.optim.schedule.kind, DP_LR_EXPONENTIAL_DECAY);
    CU_ASSERT_EQUAL(cfg.optim.schedule.decay_rate, 0.5);
    CU_ASSERT_EQUAL(cfg.optim.schedule.staircase, 0);
    CU_ASSERT(isnan(cfg.optim.schedule.warmup_target));
    CU_ASSERT_EQUAL(cfg.optim.clipnorm, 2);
    dp_config_free(&cfg);
    text = HEAD "optimizer: {name: adam, learning_rate: 0.01, global_clipnorm: null}\n";
    CU_ASSERT_FATAL(load(&cfg, text, NULL, 0, &err) == 0);
    CU_ASSERT_EQUAL(cfg.optim.schedule.kind, DP_LR_CONSTANT);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, 0.01);
    CU_ASSERT_EQUAL(cfg.optim.global_clipnorm, 0);
    dp_config_free(&cfg);

    /* --set reaches inside the schedule, and can replace it with a number */
    char *sets[] = {"optimizer.learning_rate.decay_steps=77", "optimizer.learning_rate.alpha=0.25"};
    text = HEAD "optimizer: {name: adam, learning_rate: {schedule: cosine_decay, "
                "initial_learning_rate: 0.1, decay_steps: 10}}\n";
    CU_ASSERT_FATAL(load(&cfg, text, sets, 2, &err) == 0);
    CU_ASSERT_EQUAL(cfg.optim.schedule.decay_steps, 77);
    CU_ASSERT_EQUAL(cfg.optim.schedule.alpha, 0.25);
    dp_config_free(&cfg);
    char *number[] = {"optimizer.learning_rate=0.5"};
    CU_ASSERT_FATAL(load(&cfg, text, number, 1, &err) == 0);
    CU_ASSERT_EQUAL(cfg.optim.schedule.kind, DP_LR_CONSTANT);
    CU_ASSERT_EQUAL(cfg.optim.learning_rate, 0.5);
    dp_config_free(&cfg);
}

static void test_config_errors(void) {
    expect_error("optimizer: {name: adam, clipnorm: 1, global_clipnorm: 2}\n", 0, "global_clipnorm",
                 "clipnorm and global_clipnorm are both set; keep one of them");
    expect_error("optimizer:\n  name: sgd\n  global_clipnorm: 2\n  clipnorm: 1\n", 3, "clipnorm",
                 "both set");
    expect_error("optimizer: {name: adam, clipnorm: 0}\n", 0, "0}",
                 "optimizer.clipnorm: must be > 0");
    expect_error("optimizer: {name: adam, learning_rate: {schedule: cosine, "
                 "initial_learning_rate: 0.1, decay_steps: 5}}\n",
                 0, "cosine,", "unknown schedule 'cosine'");
    expect_error("optimizer: {name: adam, learning_rate: {schedule: cosine, "
                 "initial_learning_rate: 0.1, decay_steps: 5}}\n",
                 0, "cosine,", "cosine_decay");
    expect_error("optimizer:\n  name: adam\n  learning_rate:\n    schedule: cosine_decay\n"
                 "    initial_learning_rate: 0.1\n",
                 3, "schedule", "missing required key 'optimizer.learning_rate.decay_steps'");
    expect_error("optimizer:\n  name: adam\n  learning_rate:\n    schedule: exponential_decay\n"
                 "    initial_learning_rate: 0.1\n    decay_steps: 10\n",
                 3, "schedule", "'optimizer.learning_rate.decay_rate'");
    expect_error("optimizer:\n  name: adam\n  learning_rate:\n    initial_learning_rate: 0.1\n", 3,
                 "initial", "missing required key 'optimizer.learning_rate.schedule'");
    expect_error("optimizer:\n  name: adam\n  learning_rate:\n    schedule: cosine_decay\n"
                 "    initial_learning_rate: 0.1\n    decay_steps: 10\n    staircase: true\n",
                 6, "staircase", "staircase does not apply to cosine_decay");
    expect_error("optimizer:\n  name: adam\n  learning_rate:\n    schedule: cosine_decay\n"
                 "    initial_learning_rate: 0.1\n    decay_steps: 0\n",
                 5, "0", "optimizer.learning_rate.decay_steps: must be >= 1");
    expect_error("optimizer:\n  name: adam\n  learning_rate:\n    schedule: cosine_decay\n"
                 "    initial_learning_rate: 0.1\n    decay_steps: 10\n    decaysteps: 3\n",
                 6, "decaysteps", "did you mean 'decay_steps'");
    expect_error("optimizer: {name: adam, learning_rate: [0.1]}\n", 0, "[0.1]",
                 "expected a number or a mapping such as {schedule: cosine_decay");
    expect_error("optimizer: {name: adam, learning_rate: -1}\n", 0, "-1",
                 "optimizer.learning_rate: must be > 0");
    expect_error("optimizer: {name: adam, weight_decay: 0.1}\n", 0, "weight_decay",
                 "weight_decay does not apply to adam");
}

int main(void) {
    static const test_case cases[] = {
        {"cosine decay", test_cosine_no_warmup},
        {"cosine decay with warmup", test_cosine_warmup},
        {"exponential decay", test_exponential},
        {"the optimizer follows the schedule", test_optimizer_follows},
        {"config values", test_config_values},
        {"config errors", test_config_errors},
        {NULL, NULL},
    };
    return test_run_suite("lr_schedule", cases);
}
