/* ref_predict.c - the predictions dptrain's own forward pass gives: rows
 * [0, N) of a split of an HDF5 dataset, standardized by the checkpoint's
 * statistics, through dp_model_predict, written as raw float32. The ONNX
 * test compares ONNX Runtime's output with these.
 *
 * usage: ref_predict CKPT DATA.h5 SPLIT N OUT.bin */
#include <stdio.h>
#include <stdlib.h>

#include "cmd/cmd_load.h"
#include "data/data.h"
#include "dptrain/model.h"

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: ref_predict CKPT DATA.h5 SPLIT N OUT.bin\n");
        return 2;
    }
    int n = atoi(argv[4]);
    dp_error err = {0};
    dp_loaded ld;
    dp_data_info info;
    dp_rows rows = {0};
    if (dp_load_checkpoint(&ld, argv[1], 0, n, &err) || dp_data_read_info(argv[2], &info, &err) ||
        dp_data_read_rows(&info, argv[3], 0, (size_t)n, 0, &rows, &err)) {
        dp_error_print(&err);
        return 1;
    }
    if (ld.st.n_features) dp_data_standardize(&rows, ld.st.mean, ld.st.std);
    const float *y = dp_model_predict(&ld.model, rows.x, n);
    FILE *f = fopen(argv[5], "wb");
    size_t k = (size_t)n * (size_t)dp_model_output_width(&ld.model);
    int rc = !f || fwrite(y, sizeof *y, k, f) != k || fclose(f) != 0;
    dp_data_rows_free(&rows);
    dp_loaded_free(&ld);
    return rc;
}
