/* data_stats.c - per-column sums and standardization of rows held in memory. */
#include "data/data.h"

#include <float.h>
#include <math.h>

void dp_data_sum_columns(const dp_rows *r, size_t first, size_t count, double *sums) {
    size_t w = r->x_width;
    double *sum = sums, *sumsq = sums + w; /* [w], [w] */
    for (size_t i = first; i < first + count; i++) {
        const float *row = r->x + i * w; /* [w] */
        for (size_t j = 0; j < w; j++) {
            double v = row[j];
            sum[j] += v;
            sumsq[j] += v * v;
        }
    }
}

void dp_data_standardize(dp_rows *r, const float *mean, const float *std) {
    size_t w = r->x_width;
    for (size_t i = 0; i < r->n; i++) {
        float *row = r->x + i * w; /* [w] */
        for (size_t j = 0; j < w; j++) row[j] = (row[j] - mean[j]) / std[j];
    }
}

void dp_data_stats_from_sums(const double *sums, size_t n, size_t w, float *mean, float *std) {
    for (size_t j = 0; j < w; j++) {
        if (n == 0) {
            mean[j] = 0.0f;
            std[j] = 1.0f;
            continue;
        }
        double m = sums[j] / (double)n, ex2 = sums[w + j] / (double)n;
        double var = fmax(0.0, ex2 - m * m);
        /* sumsq/n - mean^2 leaves rounding noise of about n*eps*E[x^2] on a constant
         * column; that noise is a zero variance, as sklearn's constant-feature test
         * treats it, else a constant column would be blown up by 1/noise. */
        if (var <= (double)n * DBL_EPSILON * ex2) var = 0.0;
        mean[j] = (float)m;
        std[j] = (float)sqrt(var);
        if (std[j] == 0.0f) std[j] = 1.0f;
    }
}
