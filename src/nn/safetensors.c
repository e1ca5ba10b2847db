/*
 * safetensors.c - reader and writer of the safetensors format (see safetensors.h).
 *
 * The reader's checks, in the order they run (each failure is BASIRA_E_MODEL with a
 * message naming the rule and, where there is one, the tensor):
 *   - at least 8 bytes; header length N <= NN_ST_MAX_HEADER and N <= bytes left;
 *   - the header is one well-formed UTF-8 JSON object with no duplicate keys
 *     (jansson validates UTF-8 and rejects NUL bytes inside strings);
 *   - "__metadata__", when present, is an object whose values are all strings;
 *   - every other entry is an object with exactly "dtype", "shape", "data_offsets";
 *     the dtype is one of the format's names; the shape has at most NN_ST_MAX_DIMS
 *     non-negative integer dimensions whose product (times the element size) does
 *     not overflow; data_offsets is two integers with begin <= end and
 *     end - begin == numel * element size;
 *   - sorted by offset, the tensors tile the byte buffer exactly: the first begins at
 *     0, each begins where the previous ends (so none overlap and there are no
 *     holes), the last ends at the end of the file. This is what the reference
 *     implementation requires too, and it means no byte of the file goes unchecked.
 */
#include "nn/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/i18n.h"

/* Indexed by nn_st_dtype; names as the format spells them. */
static const struct {
    const char *name;
    size_t size;
} dtypes[NN_ST_DTYPE_COUNT_] = {
    [NN_ST_BOOL] = {"BOOL", 1},       [NN_ST_U8] = {"U8", 1},           [NN_ST_I8] = {"I8", 1},
    [NN_ST_F8_E4M3] = {"F8_E4M3", 1}, [NN_ST_F8_E5M2] = {"F8_E5M2", 1}, [NN_ST_I16] = {"I16", 2},
    [NN_ST_U16] = {"U16", 2},         [NN_ST_F16] = {"F16", 2},         [NN_ST_BF16] = {"BF16", 2},
    [NN_ST_I32] = {"I32", 4},         [NN_ST_U32] = {"U32", 4},         [NN_ST_F32] = {"F32", 4},
    [NN_ST_F64] = {"F64", 8},         [NN_ST_I64] = {"I64", 8},         [NN_ST_U64] = {"U64", 8},
};

const char *nn_st_dtype_name(nn_st_dtype t)
{
    return (unsigned)t < NN_ST_DTYPE_COUNT_ ? dtypes[t].name : "?";
}

size_t nn_st_dtype_size(nn_st_dtype t)
{
    return (unsigned)t < NN_ST_DTYPE_COUNT_ ? dtypes[t].size : 0;
}

struct nn_st_file {
    json_t *header;         /* parsed header; tensor names point into its keys */
    json_t *metadata;       /* borrowed from header, or an owned empty object */
    int metadata_owned;     /* 1 when metadata is the empty object made here */
    unsigned char *owned;   /* file bytes when read by nn_st_read_file */
    nn_st_tensor *tensors;  /* by ascending offset */
    nn_st_tensor **by_name; /* sorted by name, for nn_st_find */
    size_t count;
};

/* ---- little-endian helpers ----------------------------------------------------- */

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
#endif

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- reader ---------------------------------------------------------------------- */

static int cmp_offset(const void *a, const void *b)
{
    const nn_st_tensor *x = a, *y = b;
    if (x->data != y->data)
        return x->data < y->data ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_name(const void *a, const void *b)
{
    const nn_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int parse_dtype(const char *s, nn_st_dtype *out)
{
    for (int i = 0; i < NN_ST_DTYPE_COUNT_; i++)
        if (!strcmp(s, dtypes[i].name)) {
            *out = (nn_st_dtype)i;
            return 0;
        }
    return -1;
}

/* Non-negative JSON integer, or -1. */
static json_int_t nonneg_int(const json_t *v)
{
    if (!json_is_integer(v))
        return -1;
    json_int_t i = json_integer_value(v);
    return i < 0 ? -1 : i;
}

/* Check one tensor entry; fills t except data (offsets kept in begin/end). */
static basira_code parse_entry(const char *name, const json_t *e, size_t datalen, nn_st_tensor *t,
                               uint64_t *begin, basira_error *err)
{
    if (!json_is_object(e))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: entry \"%s\" of the header is not an object"), name);
    const json_t *jd = json_object_get(e, "dtype");
    const json_t *js = json_object_get(e, "shape");
    const json_t *jo = json_object_get(e, "data_offsets");
    if (!jd || !js || !jo || json_object_size(e) != 3)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: tensor \"%s\" must have exactly \"dtype\", "
                                  "\"shape\" and \"data_offsets\""),
                                name);
    if (!json_is_string(jd) || parse_dtype(json_string_value(jd), &t->dtype))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: tensor \"%s\" has an unknown dtype"), name);
    if (!json_is_array(js) || json_array_size(js) > NN_ST_MAX_DIMS)
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model file: the shape of tensor \"%s\" is not a list of at most %d dimensions"),
            name, NN_ST_MAX_DIMS);
    t->ndim = (int)json_array_size(js);
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_int_t dim = nonneg_int(json_array_get(js, (size_t)d));
        if (dim < 0)
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("model file: dimension %d of tensor \"%s\" is not a non-negative integer"), d,
                name);
        if ((uint64_t)dim > SIZE_MAX || (dim && numel > SIZE_MAX / (size_t)dim))
            return basira_error_set(err, BASIRA_E_MODEL,
                                    _("model file: the shape of tensor \"%s\" is too large"), name);
        t->shape[d] = (int64_t)dim;
        numel *= (size_t)dim;
    }
    size_t esz = dtypes[t->dtype].size;
    if (numel > SIZE_MAX / esz)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: the shape of tensor \"%s\" is too large"), name);
    t->numel = numel;
    t->nbytes = numel * esz;
    json_int_t b, en;
    if (!json_is_array(jo) || json_array_size(jo) != 2 ||
        (b = nonneg_int(json_array_get(jo, 0))) < 0 ||
        (en = nonneg_int(json_array_get(jo, 1))) < 0 || b > en)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: the data_offsets of tensor \"%s\" are not two "
                                  "integers [begin, end] with 0 <= begin <= end"),
                                name);
    if ((uint64_t)en > datalen)
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model file: tensor \"%s\" ends at byte %lld but the data holds only %zu bytes "
              "(truncated file?)"),
            name, (long long)en, datalen);
    if ((uint64_t)(en - b) != (uint64_t)t->nbytes)
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model file: tensor \"%s\" has %lld bytes of data but its shape and dtype need %zu"),
            name, (long long)(en - b), t->nbytes);
    *begin = (uint64_t)b;
    return BASIRA_OK;
}

static basira_code check_metadata(const json_t *m, basira_error *err)
{
    if (!json_is_object(m))
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: \"__metadata__\" is not an object"));
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        if (!json_is_string(v))
            return basira_error_set(
                err, BASIRA_E_MODEL,
                _("model file: metadata value \"%s\" is not a string (the format allows only "
                  "strings)"),
                k);
    }
    return BASIRA_OK;
}

basira_code nn_st_parse(const void *buf, size_t len, nn_st_file **out, basira_error *err)
{
    const unsigned char *p = buf;
    *out = NULL;
    if (!buf || len < 8)
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model file: %zu bytes is too short for a safetensors file (at least 8 needed)"),
            buf ? len : 0);
    uint64_t n = le64(p);
    if (n > NN_ST_MAX_HEADER)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: header length %llu is over the limit of %llu bytes "
                                  "(not a safetensors file?)"),
                                (unsigned long long)n, (unsigned long long)NN_ST_MAX_HEADER);
    if (n > len - 8)
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model file: header length %llu is more than the %zu bytes after it (truncated "
              "file?)"),
            (unsigned long long)n, len - 8);
    if (n < 2 || p[8] != '{')
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: the header is not a JSON object"));
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: the header is not valid JSON: %s (byte %d)"),
                                jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return basira_error_set(err, BASIRA_E_MODEL,
                                _("model file: the header is not a JSON object"));
    }

    nn_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        json_decref(root);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    f->header = root;
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    uint64_t *begins = calloc(cap ? cap : 1, sizeof *begins);
    basira_code rc = BASIRA_OK;
    if (!f->tensors || !begins) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    const unsigned char *data = p + 8 + n;
    size_t datalen = len - 8 - (size_t)n;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = check_metadata(val, err)))
                goto fail;
            f->metadata = val;
            continue;
        }
        nn_st_tensor *t = &f->tensors[f->count];
        t->name = key;
        if ((rc = parse_entry(key, val, datalen, t, &begins[f->count], err)))
            goto fail;
        t->data = data + begins[f->count];
        f->count++;
    }
    free(begins);
    begins = NULL;

    /* The tensors must tile the data exactly (see the top of this file). */
    qsort(f->tensors, f->count, sizeof *f->tensors, cmp_offset);
    const unsigned char *expect = data;
    for (size_t i = 0; i < f->count; i++) {
        const nn_st_tensor *t = &f->tensors[i];
        if (t->data != expect) {
            rc = basira_error_set(
                err, BASIRA_E_MODEL,
                t->data < expect
                    ? _("model file: the data of tensor \"%s\" overlaps the previous tensor")
                    : _("model file: there is a gap of unused bytes before tensor \"%s\""),
                t->name);
            goto fail;
        }
        expect += t->nbytes;
    }
    if (expect != data + datalen) {
        rc = basira_error_set(err, BASIRA_E_MODEL,
                              _("model file: %zu bytes at the end of the file belong to no tensor"),
                              (size_t)(data + datalen - expect));
        goto fail;
    }

    f->by_name = calloc(f->count ? f->count : 1, sizeof *f->by_name);
    if (!f->by_name) {
        rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
        goto fail;
    }
    for (size_t i = 0; i < f->count; i++)
        f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->count, sizeof *f->by_name, cmp_name);

    if (!f->metadata) {
        f->metadata = json_object();
        f->metadata_owned = 1;
        if (!f->metadata) {
            rc = basira_error_set(err, BASIRA_E_NOMEM, NULL);
            goto fail;
        }
    }
    *out = f;
    return BASIRA_OK;
fail:
    free(begins);
    nn_st_free(f);
    return rc;
}

/* Files above this are refused before reading: no model of this engine comes near it. */
#define NN_ST_MAX_FILE ((off_t)4 << 30)

basira_code nn_st_read_file(const char *path, nn_st_file **out, basira_error *err)
{
    *out = NULL;
    if (!path)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no model file given"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return basira_error_set(err, errno == ENOENT ? BASIRA_E_NOT_FOUND : BASIRA_E_IO,
                                _("cannot open model file %s: %s"), path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return basira_error_set(err, BASIRA_E_IO, _("model file %s is not a regular file"), path);
    }
    if (st.st_size == 0) {
        close(fd);
        return basira_error_set(err, BASIRA_E_EMPTY_FILE, _("model file %s is empty"), path);
    }
    if (st.st_size > NN_ST_MAX_FILE) {
        close(fd);
        return basira_error_set(err, BASIRA_E_LIMIT,
                                _("model file %s is too large (%lld bytes, limit %lld)"), path,
                                (long long)st.st_size, (long long)NN_ST_MAX_FILE);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len);
    if (!buf) {
        close(fd);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            return basira_error_set(err, BASIRA_E_IO, _("cannot read model file %s: %s"), path,
                                    e ? strerror(e) : _("the file shrank while being read"));
        }
        got += (size_t)r;
    }
    close(fd);
    basira_code rc = nn_st_parse(buf, len, out, err);
    if (rc) {
        free(buf);
        return rc;
    }
    (*out)->owned = buf;
    return BASIRA_OK;
}

void nn_st_free(nn_st_file *f)
{
    if (!f)
        return;
    if (f->metadata_owned)
        json_decref(f->metadata);
    json_decref(f->header);
    free(f->tensors);
    free(f->by_name);
    free(f->owned);
    free(f);
}

size_t nn_st_count(const nn_st_file *f)
{
    return f ? f->count : 0;
}

const nn_st_tensor *nn_st_at(const nn_st_file *f, size_t i)
{
    return f && i < f->count ? &f->tensors[i] : NULL;
}

const nn_st_tensor *nn_st_find(const nn_st_file *f, const char *name)
{
    if (!f || !name || !f->count)
        return NULL;
    nn_st_tensor key = {.name = name};
    const nn_st_tensor *kp = &key;
    nn_st_tensor **hit = bsearch(&kp, f->by_name, f->count, sizeof *f->by_name, cmp_name);
    return hit ? *hit : NULL;
}

const json_t *nn_st_metadata(const nn_st_file *f)
{
    return f ? f->metadata : NULL;
}

const char *nn_st_meta_get(const nn_st_file *f, const char *key)
{
    return f ? json_string_value(json_object_get(f->metadata, key)) : NULL;
}

basira_code nn_st_to_f32(const nn_st_tensor *t, float *dst, basira_error *err)
{
    const unsigned char *s = t->data;
    switch (t->dtype) {
    case NN_ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (t->nbytes)
            memcpy(dst, s, t->nbytes);
#else
        for (size_t i = 0; i < t->numel; i++)
            dst[i] = f32_from_bits(le32(s + 4 * i));
#endif
        return BASIRA_OK;
    case NN_ST_F16:
        nn_half_to_f32(s, dst, t->numel);
        return BASIRA_OK;
    case NN_ST_BF16:
        for (size_t i = 0; i < t->numel; i++)
            dst[i] = f32_from_bits((uint32_t)(s[2 * i] | s[2 * i + 1] << 8) << 16);
        return BASIRA_OK;
    case NN_ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            uint64_t u = le64(s + 8 * i);
            double d;
            memcpy(&d, &u, sizeof d);
            /* Out-of-range double -> float conversion is undefined in C: saturate. */
            dst[i] = isnan(d)               ? (float)d
                     : d > (double)FLT_MAX  ? INFINITY
                     : d < -(double)FLT_MAX ? -INFINITY
                                            : (float)d;
        }
        return BASIRA_OK;
    default:
        return basira_error_set(
            err, BASIRA_E_MODEL,
            _("model file: tensor \"%s\" has dtype %s; only F32, F16, BF16 and F64 are supported"),
            t->name, nn_st_dtype_name(t->dtype));
    }
}

/* ---- writer ---------------------------------------------------------------------- */

typedef struct st_entry {
    char *name;
    nn_st_dtype dtype; /* NN_ST_F32 or NN_ST_F16 (converted from the floats when written) */
    int ndim;
    int64_t shape[NN_ST_MAX_DIMS];
    size_t numel;
    const float *data;
} st_entry;

struct nn_st_writer {
    st_entry *entries;
    size_t count, cap;
    json_t *meta;
};

nn_st_writer *nn_st_writer_new(void)
{
    nn_st_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->meta = json_object();
    if (!w->meta) {
        free(w);
        return NULL;
    }
    return w;
}

void nn_st_writer_free(nn_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->count; i++)
        free(w->entries[i].name);
    free(w->entries);
    json_decref(w->meta);
    free(w);
}

static basira_code add_entry(nn_st_writer *w, const char *name, const int64_t *shape, int ndim,
                             const float *data, nn_st_dtype dtype, basira_error *err)
{
    if (!w || !name || !*name || !strcmp(name, "__metadata__"))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("a tensor needs a name other than \"__metadata__\""));
    if (ndim < 0 || ndim > NN_ST_MAX_DIMS || (ndim && !shape))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("tensor \"%s\": a shape has 0 to %d dimensions"), name,
                                NN_ST_MAX_DIMS);
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] && numel > SIZE_MAX / 4 / (uint64_t)shape[d]))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("tensor \"%s\": invalid shape"), name);
        numel *= (size_t)shape[d];
    }
    if (numel && !data)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("tensor \"%s\" has no data"),
                                name);
    for (size_t i = 0; i < w->count; i++)
        if (!strcmp(w->entries[i].name, name))
            return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                    _("tensor \"%s\" is added twice"), name);
    if (w->count == w->cap) {
        size_t ncap = w->cap ? 2 * w->cap : 64;
        st_entry *ne = realloc(w->entries, ncap * sizeof *ne);
        if (!ne)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        w->entries = ne;
        w->cap = ncap;
    }
    st_entry *e = &w->entries[w->count];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        e->shape[d] = shape[d];
    e->numel = numel;
    e->data = data;
    e->dtype = dtype;
    w->count++;
    return BASIRA_OK;
}

basira_code nn_st_writer_add_f32(nn_st_writer *w, const char *name, const int64_t *shape, int ndim,
                                 const float *data, basira_error *err)
{
    return add_entry(w, name, shape, ndim, data, NN_ST_F32, err);
}

basira_code nn_st_writer_add_f16(nn_st_writer *w, const char *name, const int64_t *shape, int ndim,
                                 const float *data, basira_error *err)
{
    basira_code rc = add_entry(w, name, shape, ndim, data, NN_ST_F16, err);
    if (rc)
        return rc;
    const st_entry *e = &w->entries[w->count - 1];
    for (size_t i = 0; i < e->numel; i++)
        if (!(fabsf(data[i]) <= NN_ST_F16_MAX)) {
            free(w->entries[--w->count].name);
            return basira_error_set(err, BASIRA_E_LIMIT,
                                    _("tensor \"%s\": value %zu (%g) is outside half "
                                      "precision's range"),
                                    name, i, (double)data[i]);
        }
    return BASIRA_OK;
}

basira_code nn_st_writer_set_meta(nn_st_writer *w, const char *key, const char *value,
                                  basira_error *err)
{
    if (!w || !key || !value)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("metadata needs a key and a value"));
    json_t *s = json_string(value);
    if (!s)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("metadata value \"%s\" is not valid UTF-8"), key);
    if (json_object_set_new(w->meta, key, s))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("metadata key \"%s\" is not valid UTF-8"), key);
    return BASIRA_OK;
}

static int cmp_entry_ptr(const void *a, const void *b)
{
    const st_entry *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* The layout of a file about to be written: header bytes (padded) and tensor order. */
typedef struct st_plan {
    char *header; /* N bytes, padded with spaces */
    size_t header_len;
    const st_entry **order;
    size_t data_len;
} st_plan;

static void plan_free(st_plan *p)
{
    free(p->header);
    free(p->order);
}

static basira_code plan_make(const nn_st_writer *w, st_plan *p, basira_error *err)
{
    memset(p, 0, sizeof *p);
    p->order = calloc(w->count ? w->count : 1, sizeof *p->order);
    json_t *root = json_object();
    if (!p->order || !root)
        goto nomem;
    for (size_t i = 0; i < w->count; i++)
        p->order[i] = &w->entries[i];
    qsort(p->order, w->count, sizeof *p->order, cmp_entry_ptr);
    /* Like the reference writer, "__metadata__" comes first and only when non-empty. */
    if (json_object_size(w->meta) && json_object_set(root, "__metadata__", w->meta))
        goto nomem;
    size_t off = 0;
    for (size_t i = 0; i < w->count; i++) {
        const st_entry *e = p->order[i];
        json_t *shape = json_array();
        if (!shape)
            goto nomem;
        for (int d = 0; d < e->ndim; d++)
            json_array_append_new(shape, json_integer((json_int_t)e->shape[d]));
        size_t nb = e->numel * nn_st_dtype_size(e->dtype);
        json_t *t = json_pack("{s:s, s:o, s:[I, I]}", "dtype", nn_st_dtype_name(e->dtype), "shape",
                              shape, "data_offsets", (json_int_t)off, (json_int_t)(off + nb));
        if (!t || json_object_set_new(root, e->name, t))
            goto nomem;
        off += nb;
    }
    p->data_len = off;
    char *js = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    root = NULL;
    if (!js)
        goto nomem;
    size_t n = strlen(js);
    size_t padded = (n + 7) / 8 * 8;
    p->header = malloc(padded ? padded : 8);
    if (!p->header) {
        free(js);
        goto nomem;
    }
    memcpy(p->header, js, n);
    memset(p->header + n, ' ', padded - n);
    p->header_len = padded;
    free(js);
    return BASIRA_OK;
nomem:
    json_decref(root);
    plan_free(p);
    return basira_error_set(err, BASIRA_E_NOMEM, NULL);
}

/* Output of the writer: a memory buffer or a file descriptor. */
typedef struct st_sink {
    unsigned char *mem;
    size_t pos;
    int fd;
} st_sink;

static int sink_put(st_sink *s, const void *p, size_t n)
{
    if (s->mem) {
        memcpy(s->mem + s->pos, p, n);
        s->pos += n;
        return 0;
    }
    const unsigned char *c = p;
    while (n) {
        ssize_t r = write(s->fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The 8-byte length and the header. */
static int plan_emit(const st_plan *p, st_sink *s)
{
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)p->header_len >> (8 * i));
    if (sink_put(s, len8, 8) || sink_put(s, p->header, p->header_len))
        return -1;
    return 0;
}

static int emit_tensors(const st_plan *p, size_t count, st_sink *s)
{
    for (size_t i = 0; i < count; i++) {
        const st_entry *e = p->order[i];
        if (e->dtype == NN_ST_F16) {
            unsigned char chunk[4096];
            size_t k = 0;
            for (size_t j = 0; j < e->numel; j++) {
                uint16_t h = nn_st_f32_to_f16(e->data[j]);
                chunk[k++] = (unsigned char)(h & 0xffu);
                chunk[k++] = (unsigned char)(h >> 8);
                if (k == sizeof chunk || j + 1 == e->numel) {
                    if (sink_put(s, chunk, k))
                        return -1;
                    k = 0;
                }
            }
            continue;
        }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (e->numel && sink_put(s, e->data, e->numel * 4))
            return -1;
#else
        unsigned char chunk[4096];
        size_t k = 0;
        for (size_t j = 0; j < e->numel; j++) {
            uint32_t u;
            memcpy(&u, &e->data[j], 4);
            for (int b = 0; b < 4; b++)
                chunk[k++] = (unsigned char)(u >> (8 * b));
            if (k == sizeof chunk || j + 1 == e->numel) {
                if (sink_put(s, chunk, k))
                    return -1;
                k = 0;
            }
        }
#endif
    }
    return 0;
}

basira_code nn_st_writer_to_buffer(const nn_st_writer *w, unsigned char **buf, size_t *len,
                                   basira_error *err)
{
    *buf = NULL;
    *len = 0;
    st_plan p;
    basira_code rc = plan_make(w, &p, err);
    if (rc)
        return rc;
    size_t total = 8 + p.header_len + p.data_len;
    st_sink s = {.mem = malloc(total), .fd = -1};
    if (!s.mem) {
        plan_free(&p);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    plan_emit(&p, &s);
    emit_tensors(&p, w->count, &s);
    plan_free(&p);
    *buf = s.mem;
    *len = total;
    return BASIRA_OK;
}

basira_code nn_st_writer_save(const nn_st_writer *w, const char *path, basira_error *err)
{
    if (!w || !path || !*path)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("no output file given"));
    st_plan p;
    basira_code rc = plan_make(w, &p, err);
    if (rc)
        return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        plan_free(&p);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot create %s: %s"), tmp, strerror(errno));
        goto out;
    }
    st_sink s = {.fd = fd};
    if (plan_emit(&p, &s) || emit_tensors(&p, w->count, &s) || fsync(fd)) {
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd)) {
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path)) {
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot rename %s to %s: %s"), tmp, path,
                              strerror(errno));
        unlink(tmp);
        goto out;
    }
    /* Make the rename itself durable: fsync the folder that holds the file. */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
out:
    free(tmp);
    plan_free(&p);
    return rc;
}
