/* data_dtype.h - the stored types x may have, and their conversion to float32. */
#ifndef DPTRAIN_DATA_DTYPE_H
#define DPTRAIN_DATA_DTYPE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "data/data.h"
#include "dptrain/error.h"

/* Classifies the stored type t of an x dataset. Returns 0, or -1 with err set
 * (at where) naming the type and listing the accepted ones. */
int dp_xtype_classify(hid_t t, dp_xtype *out, const char *where, dp_error *err);

/* "uint8", "float16", ...: the type's name in messages. */
const char *dp_xtype_name(dp_xtype t);

/* Bytes per stored value. */
size_t dp_xtype_size(dp_xtype t);

/* The memory type to read a dataset of type t with: its raw values, so that no
 * HDF5 soft conversion runs. The caller must not close it. */
hid_t dp_xtype_mem_type(dp_xtype t);

/* In place: x starts with n raw values of type t (dp_xtype_size(t) bytes each)
 * and ends as n floats, each (float)(v * scale + offset) computed in double and
 * rounded once. float32 with scale 1 and offset 0 is left untouched (the same
 * bits as the file). A scale of 0 means 1 (an info zeroed by hand). */
void dp_xtype_to_float(dp_xtype t, float *x, size_t n, double scale, double offset);

/* Out of place, for rows read in one order and wanted in another: for i <
 * rows, raw row src[i] (w values of type t at raw + src[i] * w * size; i when
 * src is NULL) becomes float row dst[i * dst_stride] of out (i when dst is
 * NULL), each value as dp_xtype_to_float makes it. */
void dp_xtype_rows_to_float(dp_xtype t, const void *raw, const uint32_t *src, size_t rows, size_t w,
                            float *out, const uint64_t *dst, size_t dst_stride, double scale,
                            double offset);

/* 0 when every value of an integer type t, times scale plus offset, is a
 * finite float, so the reader can skip its check; 1 for float types, whose
 * files may hold NaN or Inf. */
int dp_xtype_may_overflow(dp_xtype t, double scale, double offset);

/* One IEEE half (bits h) as a float: exact, subnormals, infinities and NaN kept. */
float dp_half_to_float(unsigned h);

/* Checks every filter of dataset d's creation property list is available in
 * this HDF5 library. Returns 0, or -1 with err set naming the filter
 * ("lzf (32000)"). */
int dp_data_check_filters(hid_t d, const char *where, dp_error *err);

#endif
