/* check_mismatch.c - runs dp_comm_find_mismatch with one rank (argv[1], or none
 * when -1) holding a different value; prints what every rank found. */
#include <stdio.h>
#include <stdlib.h>

#include "core/comm.h"

int main(int argc, char **argv) {
    dp_comm c;
    if (dp_comm_init(&c, &argc, &argv)) return 1;
    int odd = argc > 1 ? atoi(argv[1]) : -1;
    uint64_t value = 0x1234abcdULL + (c.rank == odd ? 1 : 0);
    int found = dp_comm_find_mismatch(&c, value);
    printf("rank %d found %d\n", c.rank, found);
    dp_comm_finalize(&c);
    return 0;
}
