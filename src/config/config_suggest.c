/* config_suggest.c - "did you mean" for misspelt keys and names. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/config_internal.h"

#define SUGGEST_MAX_LEN 64

/* Optimal-string-alignment distance (Levenshtein plus adjacent transposition,
 * so "trian" is one edit from "train"), ignoring case because "ReLU" is a
 * plausible way to misspell "relu". */
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > SUGGEST_MAX_LEN || m > SUGGEST_MAX_LEN) return (size_t)-1;
    size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];
    for (size_t i = 0; i <= n; i++) d[i][0] = i;
    for (size_t j = 0; j <= m; j++) d[0][j] = j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* A shortened name ("act", "unit", "categorical") is a typo of what it starts. */
static int is_prefix_ci(const char *p, const char *s) {
    size_t n = strlen(p);
    return n >= 3 && strlen(s) > n && strncasecmp(p, s, n) == 0;
}

const char *dp_cfg_suggest(const char *word, const char *const *cands) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (const char *const *c = cands; *c; c++) {
        size_t d = edit_distance(word, *c);
        size_t longer = strlen(word) > strlen(*c) ? strlen(word) : strlen(*c);
        size_t limit = longer / 3 > 1 ? longer / 3 : 1;
        if (d <= limit && d < best_d) {
            best = *c;
            best_d = d;
        }
    }
    if (best) return best;
    for (const char *const *c = cands; *c; c++)
        if (is_prefix_ci(word, *c)) return *c;
    return NULL;
}

char *dp_cfg_join(const char *const *names, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (const char *const *c = names; *c && used < cap; c++) {
        int w = snprintf(buf + used, cap - used, "%s%s", c == names ? "" : ", ", *c);
        if (w < 0) break;
        used += (size_t)w;
    }
    return buf;
}

void dp_cfg_hint(char *msg, size_t cap, const char *word, const char *const *cands,
                 const char *what, int always_list) {
    size_t used = strlen(msg);
    const char *s = dp_cfg_suggest(word, cands);
    if (s && used < cap)
        used += (size_t)snprintf(msg + used, cap - used, " (did you mean '%s'?)", s);
    if ((!s || always_list) && used < cap) {
        char list[512];
        snprintf(msg + used, cap - used, "; valid %s: %s", what,
                 dp_cfg_join(cands, list, sizeof list));
    }
}
