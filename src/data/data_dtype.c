/* data_dtype.c - classifying x's stored type and filters, and converting x to float32. */
#include "data/data_dtype.h"

#include <float.h>
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
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
    if (e == 0) { /* zero or subnormal: m * 2^-24, exact in float */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    if (e == 31) bits = sign | 0x7f800000u | (m << 13); /* inf, or NaN keeping its payload */
    else bits = sign | ((e + 112) << 23) | (m << 13);   /* rebias 15 -> 127 */
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Values per block: the raw values of a block are copied aside, then widened
 * into their floats, so each loop runs over arrays that do not overlap. */
enum { XTYPE_BLOCK = 4096 };

/* 8-bit values through a table of their 256 floats: the same (float)(v *
 * scale + offset) for each, computed once. */
static void widen8(const uint8_t *raw, float *x, size_t n, const float *table) {
    for (size_t i = 0; i < n; i++) x[i] = table[raw[i]];
}

static void widen16(const uint16_t *raw, float *x, size_t n, int is_signed, int plain, double scale,
                    double offset) {
    for (size_t i = 0; i < n; i++) {
        double v = is_signed ? (double)(int16_t)raw[i] : (double)raw[i];
        x[i] = (float)(plain ? v : v * scale + offset);
    }
}

static void widen_half(const uint16_t *raw, float *x, size_t n, int plain, double scale,
                       double offset) {
    for (size_t i = 0; i < n; i++) {
        float h = dp_half_to_float(raw[i]);
        x[i] = plain ? h : (float)((double)h * scale + offset);
    }
}

void dp_xtype_to_float(dp_xtype t, float *x, size_t n, double scale, double offset) {
    if (scale == 0) scale = 1;
    int plain = scale == 1 && offset == 0;
    if (t == DP_X_TOKENS) return; /* token ids are never scaled */
    if (t == DP_X_F32) {
        if (!plain)
            for (size_t i = 0; i < n; i++) x[i] = (float)((double)x[i] * scale + offset);
        return;
    }
    float table[256];
    if (t == DP_X_U8 || t == DP_X_I8)
        for (int v = 0; v < 256; v++) {
            double d = t == DP_X_I8 ? (double)(int8_t)(uint8_t)v : (double)v;
            table[v] = (float)(plain ? d : d * scale + offset);
        }
    /* Backwards by blocks: block [start, end)'s floats (bytes [4 start, 4 end))
     * lie at or past the raw bytes of every value before start, and its own
     * raw bytes are copied aside first, so nothing unread is overwritten. */
    size_t size = dp_xtype_size(t);
    const unsigned char *bytes = (const unsigned char *)x;
    uint16_t raw[XTYPE_BLOCK];
    for (size_t end = n; end > 0;) {
        size_t start = end > XTYPE_BLOCK ? end - XTYPE_BLOCK : 0, m = end - start;
        memcpy(raw, bytes + start * size, m * size);
        if (size == 1) widen8((const uint8_t *)raw, x + start, m, table);
        else if (t == DP_X_F16) widen_half(raw, x + start, m, plain, scale, offset);
        else widen16(raw, x + start, m, t == DP_X_I16, plain, scale, offset);
        end = start;
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

void dp_xtype_rows_to_float(dp_xtype t, const void *raw, const uint32_t *src, size_t rows, size_t w,
                            float *out, const uint64_t *dst, size_t dst_stride, double scale,
                            double offset) {
    if (scale == 0) scale = 1;
    int plain = scale == 1 && offset == 0;
    size_t size = dp_xtype_size(t);
    const unsigned char *bytes = raw;
    float table[256];
    if (t == DP_X_U8 || t == DP_X_I8)
        for (int v = 0; v < 256; v++) {
            double d = t == DP_X_I8 ? (double)(int8_t)(uint8_t)v : (double)v;
            table[v] = (float)(plain ? d : d * scale + offset);
        }
    for (size_t i = 0; i < rows; i++) {
        const unsigned char *r = bytes + (src ? (size_t)src[i] : i) * w * size;
        float *x = out + (dst ? (size_t)dst[i * dst_stride] : i) * w; /* [w] */
        if (t == DP_X_F32 || t == DP_X_TOKENS) {
            memcpy(x, r, w * sizeof(float));
            /* Token ids are never scaled; plain float32 keeps the file's bits. */
            if (t == DP_X_F32 && !plain)
                for (size_t j = 0; j < w; j++) x[j] = (float)((double)x[j] * scale + offset);
        } else if (size == 1) {
            widen8(r, x, w, table);
        } else {
            /* Two-byte values may sit at any offset of the raw buffer. */
            uint16_t h[XTYPE_BLOCK];
            for (size_t j0 = 0; j0 < w; j0 += XTYPE_BLOCK) {
                size_t m = w - j0 < XTYPE_BLOCK ? w - j0 : XTYPE_BLOCK;
                memcpy(h, r + j0 * 2, m * 2);
                if (t == DP_X_F16) widen_half(h, x + j0, m, plain, scale, offset);
                else widen16(h, x + j0, m, t == DP_X_I16, plain, scale, offset);
            }
        }
    }
}

int dp_xtype_may_overflow(dp_xtype t, double scale, double offset) {
    static const double largest[] = {0, 0, 255, 128, 65535, 32768, 0};
    if (t == DP_X_F32 || t == DP_X_F16 || t == DP_X_TOKENS) return t != DP_X_TOKENS;
    if (scale == 0) scale = 1;
    return !(largest[t] * fabs(scale) + fabs(offset) < (double)FLT_MAX);
}
