/* fuzz_config.c - libFuzzer harness for the YAML config parser and --set.
 *
 * Each input is parsed twice: whole, as the config file; and, when it holds a
 * newline, with its first line as one `--set` override and the rest as the file.
 * Any crash, leak or undefined behaviour under ASan + UBSan is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(const char *text, size_t len, char *const *sets, int n_set) {
    dp_config cfg;
    dp_error err = {0};
    int rc = config_load_text(&cfg, "fuzz.yaml", text, len, sets, n_set, &err);
    /* A failure must say where and what; a success must leave a usable config. */
    if (rc != 0 && (!err.set || !err.what[0] || !err.where[0])) abort();
    if (rc == 0 && (cfg.text == NULL || cfg.n_layers < 1 || cfg.n_layers > DP_MAX_LAYERS ||
                    cfg.batch_size < 1 || cfg.input.ndim < 1 || cfg.input.ndim > DP_MAX_DIMS))
        abort();
    config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    load(text, size, NULL, 0);

    const char *nl = memchr(text, '\n', size);
    if (nl) {
        /* The override is a C string, as argv would give it: it ends at a NUL. */
        size_t first = (size_t)(nl - text);
        char *set = malloc(first + 1);
        memcpy(set, text, first);
        set[first] = '\0';
        char *sets[1] = {set};
        load(nl + 1, size - first - 1, sets, 1);
        free(set);
    }
    return 0;
}
