/* data_dtype.c - classifying x's stored type and filters, and converting x to float32. */
#include "data/data_dtype.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const xtype_names[] = {"float32", "float16", "uint8", "int8",
                                          "uint16",  "int16",   "int32"};
static const size_t xtype_sizes[] = {4, 2, 1, 1, 2, 2, 4};

const char *dp_xtype_name(dp_xtype t) {
    return xtype_names[t];
}

size_t dp_xtype_size(dp_xtype t) {
    return xtype_sizes[t];
}

/* IEEE half, little-endian, built once: HDF5 1.10 has no predefined half type.
 * pthread_once because a background reader may be the first to ask. */
static hid_t half_type = -1;
static pthread_once_t half_once = PTHREAD_ONCE_INIT;

static void half_make(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t >= 0 && H5Tset_fields(t, 15, 10, 5, 0, 10) >= 0 && H5Tset_size(t, 2) >= 0 &&
        H5Tset_ebias(t, 15) >= 0)
        half_type = t;
    else if (t >= 0) H5Tclose(t);
}

hid_t dp_xtype_mem_type(dp_xtype t) {
    switch (t) {
    case DP_X_F16: pthread_once(&half_once, half_make); return half_type;
    case DP_X_U8: return H5T_NATIVE_UINT8;
    case DP_X_I8: return H5T_NATIVE_INT8;
    case DP_X_U16: return H5T_NATIVE_UINT16;
    case DP_X_I16: return H5T_NATIVE_INT16;
    case DP_X_TOKENS: return H5T_NATIVE_INT32;
    default: return H5T_NATIVE_FLOAT;
    }
}

/* A float type laid out as IEEE half: sign bit 15, 5 exponent bits at 10 with
 * bias 15, 10 mantissa bits at 0, little-endian. */
static int is_ieee_half_le(hid_t t) {
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_size(t) != 2 || H5Tget_order(t) != H5T_ORDER_LE) return 0;
    if (H5Tget_fields(t, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    return spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
           H5Tget_ebias(t) == 15 && H5Tget_norm(t) == H5T_NORM_IMPLIED;
}

int dp_xtype_classify(hid_t t, dp_xtype *out, const char *where, dp_error *err) {
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    int is_signed = cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2;
    char got[48];
    if (cls == H5T_FLOAT && size == 4) *out = DP_X_F32;
    else if (cls == H5T_FLOAT && size == 2 && is_ieee_half_le(t)) *out = DP_X_F16;
    else if (cls == H5T_FLOAT && size == 2)
        return dp_error_set(err, where,
                            "expected " DP_XTYPES_ACCEPTED
                            ", got a float16 that is not little-endian IEEE half");
    else if (cls == H5T_INTEGER && size == 1) *out = is_signed ? DP_X_I8 : DP_X_U8;
    else if (cls == H5T_INTEGER && size == 2) *out = is_signed ? DP_X_I16 : DP_X_U16;
    else if (cls == H5T_INTEGER && size == 4 && is_signed) *out = DP_X_TOKENS;
    else {
        if (cls == H5T_INTEGER)
            snprintf(got, sizeof got, "%sint%zu", is_signed ? "" : "u", size * 8);
        else if (cls == H5T_FLOAT) snprintf(got, sizeof got, "float%zu", size * 8);
        else if (cls == H5T_STRING) snprintf(got, sizeof got, "string");
        else if (cls == H5T_COMPOUND) snprintf(got, sizeof got, "compound");
        else snprintf(got, sizeof got, "a non-numeric type");
        return dp_error_set(err, where, "expected " DP_XTYPES_ACCEPTED ", got %s", got);
    }
    return 0;
}

float dp_half_to_float(unsigned h) {
    unsigned sign = (h >> 15) & 1u, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    float v;
    if (e == 0) v = ldexpf((float)m, -24); /* zero or subnormal: m * 2^-24, exact */
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m | 0x400u), (int)e - 25); /* 1.m * 2^(e-15) */
    return sign ? -v : v;
}

/* One loop per stored type, backwards: value i's float (bytes [4i, 4i+4)) lies
 * at or past the raw bytes of every value before it, so nothing unread is
 * overwritten. Raw values are fetched by memcpy (x's bytes are floats to the
 * compiler). Integers and halves are exact in double; one rounding to float. */
#define XTYPE_LOOP(CTYPE, TO_DOUBLE) \
    for (size_t i = n; i-- > 0;) { \
        CTYPE raw; \
        memcpy(&raw, (const unsigned char *)x + i * sizeof raw, sizeof raw); \
        double v = TO_DOUBLE(raw); \
        x[i] = (float)(plain ? v : v * scale + offset); \
    }

#define AS_DOUBLE(r) ((double)(r))
#define HALF_DOUBLE(r) ((double)dp_half_to_float(r))

void dp_xtype_to_float(dp_xtype t, float *x, size_t n, double scale, double offset) {
    if (scale == 0) scale = 1;
    int plain = scale == 1 && offset == 0;
    switch (t) {
    case DP_X_U8: XTYPE_LOOP(uint8_t, AS_DOUBLE) break;
    case DP_X_I8: XTYPE_LOOP(int8_t, AS_DOUBLE) break;
    case DP_X_U16: XTYPE_LOOP(uint16_t, AS_DOUBLE) break;
    case DP_X_I16: XTYPE_LOOP(int16_t, AS_DOUBLE) break;
    case DP_X_F16: XTYPE_LOOP(uint16_t, HALF_DOUBLE) break;
    case DP_X_F32:
        if (!plain)
            for (size_t i = 0; i < n; i++) x[i] = (float)((double)x[i] * scale + offset);
        break;
    default: break; /* token ids are never scaled */
    }
}

int dp_data_check_filters(hid_t d, const char *where, dp_error *err) {
    hid_t p = H5Dget_create_plist(d);
    if (p < 0) return dp_error_set(err, where, "cannot read the dataset's creation properties");
    int n = H5Pget_nfilters(p), rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        unsigned flags = 0, cd[8], fconf = 0;
        size_t ncd = 8;
        char name[64] = "";
        H5Z_filter_t id =
            H5Pget_filter2(p, (unsigned)i, &flags, &ncd, cd, sizeof name, name, &fconf);
        if (id < 0) rc = dp_error_set(err, where, "cannot read filter %d of the dataset", i);
        else if (H5Zfilter_avail(id) <= 0)
            rc = dp_error_set(err, where,
                              "compressed with filter %s (%d), which this HDF5 library does not "
                              "have; rewrite the file with gzip (deflate) or no compression",
                              name[0] ? name : "unnamed", (int)id);
    }
    H5Pclose(p);
    return rc;
}
