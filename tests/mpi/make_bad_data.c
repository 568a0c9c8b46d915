/* make_bad_data.c - writes the defective dataset files of the shared table
 * (tests/common/bad_h5.c): for the bad-input and nodes tests, and as seeds of
 * the fuzz_data corpus (scripts/fuzz.sh).
 *
 * Usage: make_bad_data DIR [NAME...]   writes DIR/<name>.h5 for every case, or
 *                                       for the cases named
 *        make_bad_data --list          prints one line per case:
 *                                       name<TAB>check<TAB>where<TAB>what<TAB>about:
 *                                       check is none, info, rows or run; where
 *                                       and what are the fragments of dptrain's
 *                                       error line at np 2 with configs/seed.yaml
 *                                       (bad_h5_run_error), "-" when empty */
#include <stdio.h>
#include <string.h>

#include "bad_h5.h"

static const char *check_name(bad_h5_check k) {
    switch (k) {
    case BAD_H5_INFO: return "info";
    case BAD_H5_ROWS: return "rows";
    case BAD_H5_RUN: return "run";
    case BAD_H5_NONE: break;
    }
    return "none";
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (const bad_h5_case *c = bad_h5_cases; c->name; c++) {
            char where[256], what[512];
            bad_h5_run_error(c, where, sizeof where, what, sizeof what);
            printf("%s\t%s\t%s\t%s\t%s\n", c->name, check_name(c->check), where[0] ? where : "-",
                   what[0] ? what : "-", c->about);
        }
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: make_bad_data DIR [NAME...] | make_bad_data --list\n");
        return 2;
    }
    int rc = 0;
    if (argc == 2)
        for (const bad_h5_case *c = bad_h5_cases; c->name; c++) rc |= bad_h5_write(c, argv[1]) != 0;
    for (int i = 2; i < argc; i++) {
        const bad_h5_case *c = bad_h5_find(argv[i]);
        if (!c) {
            fprintf(stderr, "make_bad_data: no case '%s' (--list names them)\n", argv[i]);
            rc = 1;
        } else {
            rc |= bad_h5_write(c, argv[1]) != 0;
        }
    }
    return rc;
}
