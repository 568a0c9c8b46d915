/* fuzz_config.c - libFuzzer harness for the YAML config parser and --set.
 *
 * Each input is parsed whole, as the config file; and, when it holds a newline,
 * with its first line as one `--set` override and the rest as the file. When
 * several leading lines look like overrides ('=' before any ':'), they are also
 * applied together, up to MAX_SETS, so one override can build what the next
 * walks into. Any crash, leak or undefined behaviour under ASan + UBSan is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dptrain/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load(const char *text, size_t len, char *const *sets, int n_set) {
    dp_config cfg;
    dp_error err = {0};
    int rc = dp_config_load_text(&cfg, "fuzz.yaml", text, len, sets, n_set, &err);
    /* A failure must say where and what; a success must leave a usable config. */
    if (rc != 0 && (!err.set || !err.what[0] || !err.where[0])) abort();
    if (rc == 0 && (cfg.text == NULL || cfg.n_layers < 1 || cfg.n_layers > DP_MAX_LAYERS ||
                    cfg.batch_size < 1 || cfg.input.ndim < 1 || cfg.input.ndim > DP_MAX_DIMS))
        abort();
    dp_config_free(&cfg);
}

#define MAX_SETS 4

/* 1 if the line reads as KEY=VALUE rather than YAML: an '=' before any ':'. */
static int looks_like_set(const char *line, size_t n) {
    const char *eq = memchr(line, '=', n), *colon = memchr(line, ':', n);
    return eq && (!colon || eq < colon);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    load(text, size, NULL, 0);

    /* Overrides are C strings, as argv gives them: each ends at a NUL. */
    char *sets[MAX_SETS];
    int n_set = 0, settish = 1;
    size_t off = 0;
    while (n_set < MAX_SETS && off < size) {
        const char *nl = memchr(text + off, '\n', size - off);
        if (!nl) break;
        size_t len = (size_t)(nl - (text + off));
        if (n_set > 0 && !looks_like_set(text + off, len)) break;
        settish &= looks_like_set(text + off, len);
        sets[n_set] = malloc(len + 1);
        memcpy(sets[n_set], text + off, len);
        sets[n_set][len] = '\0';
        n_set++;
        off += len + 1;
        if (n_set == 1) load(text + off, size - off, sets, 1);
        if (!settish) break;
    }
    if (n_set > 1) load(text + off, size - off, sets, n_set);
    for (int i = 0; i < n_set; i++) free(sets[i]);
    return 0;
}
