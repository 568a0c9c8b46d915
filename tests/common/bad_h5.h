/* bad_h5.h - the defective dataset files, in one table shared by the unit
 * tests (test_data.c), the bad-input and nodes MPI tests (make_bad_data) and
 * the fuzz corpus (scripts/fuzz.sh seeds fuzz_data with make_bad_data's files).
 *
 * Each case is a file <name>.h5 with one defect, the check that rejects it and
 * the error that check must give. */
#ifndef DPTRAIN_TESTS_BAD_H5_H
#define DPTRAIN_TESTS_BAD_H5_H

#include <hdf5.h>
#include <stddef.h>

/* Which check rejects a case. */
typedef enum bad_h5_check {
    BAD_H5_NONE = 0, /* nothing: a valid file (the control) */
    BAD_H5_INFO,     /* dp_data_read_info */
    BAD_H5_ROWS,     /* dp_data_read_rows of every /train row with 2 classes; info passes */
    BAD_H5_RUN,      /* only a training run (np 2, configs/seed.yaml); both reads pass */
} bad_h5_check;

typedef struct bad_h5_case {
    const char *name;                           /* the file is <name>.h5 */
    const char *about;                          /* what is wrong, as a test's name */
    int (*write)(const char *path, int latest); /* 0, or -1 if HDF5 failed */
    int latest; /* written in the latest file format (else the earliest) */
    bad_h5_check check;
    const char *ds;   /* INFO, ROWS: the error's where is "<path>:<ds>", or the path
                           alone when NULL */
    const char *what; /* INFO, ROWS: a fragment of the error's what */
    const char *run;  /* what dptrain's one error line says at np 2 with configs/seed.yaml
                           and data.path=<name>.h5, when not `what` (see bad_h5_run_error) */
} bad_h5_case;

/* Every case, ending with a NULL name. */
extern const bad_h5_case bad_h5_cases[];

/* The case called name, or NULL. */
const bad_h5_case *bad_h5_find(const char *name);

/* Writes case c as dir/<name>.h5; returns 0 or -1 (with a message on stderr). */
int bad_h5_write(const bad_h5_case *c, const char *dir);

/* The two fragments dptrain's one error line "<where>: <what>" has for c at np 2
 * with configs/seed.yaml: where_frag "<ds>: " (or "<name>.h5: " for the path
 * alone; "" when the error is not about the file) and what_frag (run, else
 * what; "" for a valid file). */
void bad_h5_run_error(const bad_h5_case *c, char *where_frag, size_t wn, char *what_frag, size_t n);

/* --- the writers' building blocks, also for valid files in the unit tests --- */

/* Value of x at (row, flat column) in split number s: distinct and exact in float32. */
float bad_h5_x_value(int s, size_t row, size_t col);
/* Integer label of a row: row % 3. */
int bad_h5_label_value(size_t row);
/* Float target k of a row. */
float bad_h5_target_value(size_t row, int k);

/* Creates (truncates) an HDF5 file in the earliest or the latest format, with
 * HDF5's automatic error printing off. Returns the file id or a negative value. */
hid_t bad_h5_create(const char *path, int latest);

/* Writes dataset `name` (intermediate groups created) of file type ftype from a
 * buffer of memory type mtype. Returns 0 or -1. */
int bad_h5_write_ds(hid_t f, const char *name, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *buf);

/* Writes /split/x [n, row...] of file type ftype from bad_h5_x_value(s, ...). */
int bad_h5_put_x(hid_t f, const char *split, int s, size_t n, int row_rank, const int *row,
                 hid_t ftype);

/* Writes /split/y: labels [n] (file type ftype, int32 when 0) when ycols == 0,
 * else float32 targets [n, ycols] (file type ftype, float32 when 0). */
int bad_h5_put_y(hid_t f, const char *split, size_t n, int ycols, hid_t ftype);

/* A chunked /train/x declaring dims [1, ...] (rank values) with nothing stored,
 * and /train/y [1]. */
int bad_h5_wide_x(const char *path, int latest, int rank, const hsize_t *dims);

#endif
