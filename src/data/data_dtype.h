/* data_dtype.h - the stored types x may have, and their conversion to float32. */
#ifndef DPTRAIN_DATA_DTYPE_H
#define DPTRAIN_DATA_DTYPE_H

#include <hdf5.h>
#include <stddef.h>

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

/* One IEEE half (bits h) as a float: exact, subnormals, infinities and NaN kept. */
float dp_half_to_float(unsigned h);

/* Checks every filter of dataset d's creation property list is available in
 * this HDF5 library. Returns 0, or -1 with err set naming the filter
 * ("lzf (32000)"). */
int dp_data_check_filters(hid_t d, const char *where, dp_error *err);

#endif
