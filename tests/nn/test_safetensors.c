/*
 * test_safetensors.c - the safetensors reader and writer (src/nn/safetensors.c):
 * exact bytes of the writer, round trips, every validation rule of the reader on
 * hand-made hostile files, truncations and byte flips, F16/BF16/F64 conversion,
 * atomic saving, and agreement with an independent Python implementation of the
 * format (tests/nn/st_read.py) in both directions.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/safetensors.h"
#include "test.h"

static char tmpdir[64];

static void path_in_tmp(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

/* A file made of an 8-byte length, the given header (unpadded) and data bytes. */
static unsigned char *make_file(const char *header, const void *data, size_t datalen, size_t *len)
{
    size_t n = strlen(header);
    *len = 8 + n + datalen;
    unsigned char *b = malloc(*len ? *len : 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, header, n);
    if (datalen)
        memcpy(b + 8 + n, data, datalen);
    return b;
}

/* Parse header+data and expect BASIRA_E_MODEL with msg_part in the message. */
static void expect_bad(const char *header, size_t datalen, const char *msg_part)
{
    unsigned char zeros[256] = {0};
    size_t len;
    unsigned char *b = make_file(header, zeros, datalen, &len);
    nn_st_file *f = (nn_st_file *)1;
    basira_error err;
    basira_error_clear(&err);
    basira_code rc = nn_st_parse(b, len, &f, &err);
    CHECK_MSG(rc == BASIRA_E_MODEL, "header %s: rc %d", header, (int)rc);
    CHECK(f == NULL);
    CHECK_MSG(strstr(err.message, msg_part) != NULL, "header %s: message \"%s\" lacks \"%s\"",
              header, err.message, msg_part);
    nn_st_free(f);
    free(b);
}

static void test_writer_exact_bytes(void)
{
    /* What the reference writer produces for {"b": [2], "a": scalar} with metadata. */
    nn_st_writer *w = nn_st_writer_new();
    float b[2] = {1.5f, -2.0f}, a = 3.0f;
    int64_t shape_b[1] = {2};
    basira_error err;
    CHECK(!nn_st_writer_add_f32(w, "b", shape_b, 1, b, &err));
    CHECK(!nn_st_writer_add_f32(w, "a", NULL, 0, &a, &err));
    CHECK(!nn_st_writer_set_meta(w, "k", "v", &err));
    unsigned char *buf;
    size_t len;
    CHECK(!nn_st_writer_to_buffer(w, &buf, &len, &err));
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[],"
                      "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                      "\"data_offsets\":[4,12]}}";
    size_t n = strlen(hdr), padded = (n + 7) / 8 * 8;
    CHECK_EQ_INT(len, 8 + padded + 12);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | buf[i];
    CHECK_EQ_INT(hl, padded);
    CHECK(hl % 8 == 0);
    CHECK(!memcmp(buf + 8, hdr, n));
    for (size_t i = n; i < padded; i++)
        CHECK(buf[8 + i] == ' ');
    /* Little-endian float32: 3.0f = 0x40400000, 1.5f = 0x3fc00000, -2.0f = 0xc0000000. */
    const unsigned char want[12] = {0, 0, 0x40, 0x40, 0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0};
    CHECK(!memcmp(buf + 8 + padded, want, 12));
    free(buf);
    nn_st_writer_free(w);
}

static void test_roundtrip(void)
{
    nn_st_writer *w = nn_st_writer_new();
    float big[3 * 4 * 5];
    for (int i = 0; i < 60; i++)
        big[i] = (float)i * 0.25f - 7.0f;
    float one = 42.0f;
    int64_t s_big[3] = {3, 4, 5}, s_empty[2] = {0, 7}, s_one[4] = {1, 1, 1, 1};
    basira_error err;
    CHECK(!nn_st_writer_add_f32(w, "z.weight", s_big, 3, big, &err));
    CHECK(!nn_st_writer_add_f32(w, "empty", s_empty, 2, NULL, &err));
    CHECK(!nn_st_writer_add_f32(w, "a.one", s_one, 4, &one, &err));
    CHECK(!nn_st_writer_set_meta(w, "architecture", "{\"x\": [1, 2]}", &err));
    CHECK(!nn_st_writer_set_meta(w, "names", "نمش / grain de beauté", &err));
    CHECK(!nn_st_writer_set_meta(w, "names", "replaced", &err));
    unsigned char *buf;
    size_t len;
    CHECK(!nn_st_writer_to_buffer(w, &buf, &len, &err));
    nn_st_writer_free(w);

    nn_st_file *f;
    CHECK(!nn_st_parse(buf, len, &f, &err));
    CHECK_EQ_INT(nn_st_count(f), 3);
    /* Sorted by name, so data order is a.one, empty, z.weight. */
    CHECK_STR(nn_st_at(f, 0)->name, "a.one");
    CHECK_STR(nn_st_at(f, 2)->name, "z.weight");
    const nn_st_tensor *t = nn_st_find(f, "z.weight");
    CHECK(t && t->dtype == NN_ST_F32 && t->ndim == 3 && t->shape[2] == 5 && t->numel == 60);
    float back[60];
    CHECK(t && !nn_st_to_f32(t, back, &err));
    CHECK(!memcmp(back, big, sizeof big));
    t = nn_st_find(f, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[1] == 7);
    CHECK(nn_st_find(f, "missing") == NULL);
    CHECK(nn_st_find(f, "__metadata__") == NULL);
    CHECK_STR(nn_st_meta_get(f, "architecture"), "{\"x\": [1, 2]}");
    CHECK_STR(nn_st_meta_get(f, "names"), "replaced");
    CHECK(nn_st_meta_get(f, "nope") == NULL);
    nn_st_free(f);
    free(buf);

    /* A file without tensors nor metadata is valid: "{}" padded. */
    w = nn_st_writer_new();
    CHECK(!nn_st_writer_to_buffer(w, &buf, &len, &err));
    CHECK_EQ_INT(len, 16);
    CHECK(!nn_st_parse(buf, len, &f, &err));
    CHECK_EQ_INT(nn_st_count(f), 0);
    CHECK(json_object_size(nn_st_metadata(f)) == 0);
    nn_st_free(f);
    free(buf);
    nn_st_writer_free(w);
}

static void test_writer_rejects(void)
{
    nn_st_writer *w = nn_st_writer_new();
    float x[2] = {0};
    int64_t s[1] = {2}, neg[1] = {-1};
    basira_error err;
    CHECK(!nn_st_writer_add_f32(w, "x", s, 1, x, &err));
    CHECK(nn_st_writer_add_f32(w, "x", s, 1, x, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "twice") != NULL);
    CHECK(nn_st_writer_add_f32(w, "__metadata__", s, 1, x, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(nn_st_writer_add_f32(w, "", s, 1, x, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(nn_st_writer_add_f32(w, "n", neg, 1, x, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(nn_st_writer_add_f32(w, "d", s, 9, x, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(nn_st_writer_add_f32(w, "nodata", s, 1, NULL, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(nn_st_writer_set_meta(w, "bad", "\xff\xfe", &err) == BASIRA_E_INVALID_ARGUMENT);
    nn_st_writer_free(w);
}

static void test_reader_rejects(void)
{
    /* Not even a length. */
    unsigned char tiny[5] = {1, 0, 0, 0, 0};
    nn_st_file *f;
    basira_error err;
    CHECK(nn_st_parse(tiny, sizeof tiny, &f, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "too short") != NULL);
    /* Length beyond the file and beyond the limit. */
    unsigned char hdr[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(nn_st_parse(hdr, sizeof hdr, &f, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "truncated") != NULL);
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    CHECK(nn_st_parse(huge, sizeof huge, &f, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "limit") != NULL);

    const char *e = "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]";
    char h[512];
    /* Well-formedness. */
    expect_bad("[1,2]", 0, "not a JSON object");
    expect_bad("{\"a\":", 0, "not valid JSON");
    expect_bad("{} x", 0, "not valid JSON");
    expect_bad("{\"a\":1,\"a\":2}", 0, "not valid JSON");
    expect_bad("{\"\xc3\x28\":1}", 0, "not valid JSON");
    expect_bad("{\"a\\u0000b\":1}", 0, "not valid JSON");
    expect_bad("{\"a\":[]}", 0, "not an object");
    /* Metadata. */
    expect_bad("{\"__metadata__\":[1]}", 0, "\"__metadata__\" is not an object");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "metadata value \"k\" is not a string");
    expect_bad("{\"__metadata__\":{\"k\":{\"a\":\"b\"}}}", 0, "not a string");
    /* Entries. */
    snprintf(h, sizeof h, "{\"t\":{%s,\"extra\":1}}", e);
    expect_bad(h, 8, "exactly");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "exactly");
    expect_bad("{\"t\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "unknown dtype");
    expect_bad("{\"t\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
               "dimension 0 of tensor \"t\"");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", 8,
               "dimension 0");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8, "not a list");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
               8, "at most 8");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,8]}}",
               8, "too large");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
               "\"data_offsets\":[0,8]}}",
               8, "not valid JSON");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
               "data_offsets");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
               "data_offsets");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need 12");
    expect_bad("{\"t\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "need 4");
    /* Layout of the data: overlap, gap, trailing bytes, not starting at 0. */
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "overlaps");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
               12, "gap");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap");
    expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
               "4 bytes at the end");
    expect_bad("{}", 1, "1 bytes at the end");
    /* The same two tensors in the right layout are accepted (so the cases above fail for
     * the reason they test). */
    size_t len;
    unsigned char zeros[12] = {0};
    unsigned char *b = make_file("{\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                                 "\"t\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
                                 zeros, 8, &len);
    CHECK(!nn_st_parse(b, len, &f, &err));
    CHECK_STR(nn_st_at(f, 0)->name, "t");
    nn_st_free(f);
    free(b);
}

static void test_conversions(void)
{
    /* F16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800, +inf = 0x7c00, smallest subnormal = 1. */
    const unsigned char f16[10] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x00, 0x7c, 0x01, 0x00};
    /* BF16: 1.0 = 0x3f80, -3.0 = 0xc040. */
    const unsigned char bf16[4] = {0x80, 0x3f, 0x40, 0xc0};
    /* F64: 0.1 and 1e300 (saturates to +inf as float). */
    double d[2] = {0.1, 1e300};
    unsigned char data[10 + 4 + 16];
    memcpy(data, f16, 10);
    memcpy(data + 10, bf16, 4);
    memcpy(data + 14, d, 16);
    size_t len;
    unsigned char *b =
        make_file("{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
                  "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[10,14]},"
                  "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[14,30]},"
                  "\"i\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[30,30]}}",
                  data, sizeof data, &len);
    nn_st_file *f;
    basira_error err;
    CHECK(!nn_st_parse(b, len, &f, &err));
    float out[5];
    CHECK(!nn_st_to_f32(nn_st_find(f, "h"), out, &err));
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f && isinf(out[3]) && out[3] > 0);
    CHECK_NEAR(out[4], 5.960464477539063e-08, 1e-15);
    CHECK(!nn_st_to_f32(nn_st_find(f, "b"), out, &err));
    CHECK(out[0] == 1.0f && out[1] == -3.0f);
    CHECK(!nn_st_to_f32(nn_st_find(f, "d"), out, &err));
    CHECK(out[0] == 0.1f && isinf(out[1]));
    CHECK(nn_st_to_f32(nn_st_find(f, "i"), out, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "I64") != NULL);
    nn_st_free(f);
    free(b);
}

/* Every prefix of a valid file and every single-byte change of its header: an error or
 * a valid parse, never a crash (ASan/UBSan watch this in the sanitizer build). */
/* The half h by arithmetic (not bit shuffling), and a NaN's bits as the format keeps them. */
static uint32_t f16_reference_bits(uint16_t h)
{
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, bits;
    if (e == 31)
        return sign | 0x7f800000u | ((uint32_t)m << 13);
    float v = e ? ldexpf(1.0f + (float)m / 1024.0f, e - 15) : ldexpf((float)m, -24);
    memcpy(&bits, &v, sizeof bits);
    return sign | bits;
}

/*
 * Every one of the 65,536 halves, converted as a tensor: in code order (the NaNs from
 * 0x7c01 send the rest to the one-at-a-time path), and with the NaNs left out (every
 * other value through the eight-at-a-time path where the processor has one), each with a
 * tail that is not a whole block.
 */
static void test_f16_every_value(void)
{
    enum { N = 65536 + 3 };
    unsigned char *raw = malloc(2 * N);
    uint16_t *want = malloc(sizeof *want * N);
    float *out = malloc(sizeof *out * N);
    CHECK(raw && want && out);
    for (int pass = 0; pass < 2 && raw && want && out; pass++) {
        size_t n = 0;
        for (uint32_t h = 0; h < N; h++) {
            uint16_t v = (uint16_t)(h & 0xffff);
            if (pass == 1 && (v & 0x7fff) > 0x7c00)
                continue;
            want[n] = v;
            raw[2 * n] = (unsigned char)(v & 0xff);
            raw[2 * n + 1] = (unsigned char)(v >> 8);
            n++;
        }
        nn_st_tensor t;
        memset(&t, 0, sizeof t);
        t.dtype = NN_ST_F16;
        t.numel = n;
        t.data = raw;
        t.nbytes = 2 * n;
        basira_error err;
        CHECK(!nn_st_to_f32(&t, out, &err));
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t got;
            memcpy(&got, out + i, sizeof got);
            wrong += got != f16_reference_bits(want[i]);
        }
        CHECK(wrong == 0);
    }
    free(raw);
    free(want);
    free(out);
}

static void test_truncations_and_flips(void)
{
    nn_st_writer *w = nn_st_writer_new();
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {2, 3};
    basira_error err;
    nn_st_writer_add_f32(w, "w", s, 2, v, &err);
    nn_st_writer_add_f32(w, "v", s, 1, v, &err);
    nn_st_writer_set_meta(w, "m", "x", &err);
    unsigned char *buf;
    size_t len;
    CHECK(!nn_st_writer_to_buffer(w, &buf, &len, &err));
    nn_st_writer_free(w);
    nn_st_file *f;
    int bad = 0;
    for (size_t l = 0; l < len; l++) {
        unsigned char *copy = malloc(l ? l : 1); /* exact size: ASan sees any overread */
        memcpy(copy, buf, l);
        if (nn_st_parse(copy, l, &f, &err) != BASIRA_E_MODEL)
            bad++;
        free(copy);
    }
    CHECK_EQ_INT(bad, 0);
    size_t hl = buf[0] | (size_t)buf[1] << 8;
    int ok = 0, rejected = 0;
    for (size_t i = 0; i < 8 + hl; i++) {
        for (int x = 1; x < 256; x <<= 1) {
            unsigned char *copy = malloc(len);
            memcpy(copy, buf, len);
            copy[i] ^= (unsigned char)x;
            basira_code rc = nn_st_parse(copy, len, &f, &err);
            if (rc == BASIRA_OK) {
                ok++;
                float out[6];
                for (size_t k = 0; k < nn_st_count(f); k++)
                    if (nn_st_at(f, k)->numel <= 6)
                        nn_st_to_f32(nn_st_at(f, k), out, &err);
                nn_st_free(f);
            } else {
                rejected += rc == BASIRA_E_MODEL;
            }
            free(copy);
        }
    }
    CHECK_EQ_INT(ok + rejected, (int)(8 + hl) * 8);
    CHECK(rejected > ok); /* most flips break the format */
    free(buf);
}

static void test_files(void)
{
    char path[256], tmp[300];
    basira_error err;
    nn_st_file *f;
    path_in_tmp(path, sizeof path, "m.safetensors");
    nn_st_writer *w = nn_st_writer_new();
    float v[3] = {0.5f, 1.5f, -2.5f};
    int64_t s[1] = {3};
    nn_st_writer_add_f32(w, "v", s, 1, v, &err);
    CHECK(!nn_st_writer_save(w, path, &err));
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed away */
    CHECK(!nn_st_read_file(path, &f, &err));
    float out[3];
    CHECK(f && !nn_st_to_f32(nn_st_find(f, "v"), out, &err) && out[2] == -2.5f);
    nn_st_free(f);
    /* Saving over an existing file replaces it. */
    v[2] = 7.0f;
    CHECK(!nn_st_writer_save(w, path, &err));
    CHECK(!nn_st_read_file(path, &f, &err));
    CHECK(f && !nn_st_to_f32(nn_st_find(f, "v"), out, &err) && out[2] == 7.0f);
    nn_st_free(f);
    /* A folder that does not exist: an I/O error naming the path, nothing left behind. */
    char nodir[300];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/m.safetensors", tmpdir);
    CHECK(nn_st_writer_save(w, nodir, &err) == BASIRA_E_IO);
    CHECK(strstr(err.message, "no/such/dir") != NULL);
    nn_st_writer_free(w);

    CHECK(nn_st_read_file(nodir, &f, &err) == BASIRA_E_NOT_FOUND);
    CHECK(f == NULL);
    CHECK(nn_st_read_file(tmpdir, &f, &err) == BASIRA_E_IO); /* a folder */
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty.safetensors", tmpdir);
    FILE *e = fopen(empty, "w");
    fclose(e);
    CHECK(nn_st_read_file(empty, &f, &err) == BASIRA_E_EMPTY_FILE);
    unlink(empty);
}

/* 1 when /usr/bin/python3 has numpy (the independent reader needs it). */
static int have_python_numpy(void)
{
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

static void test_python_reads_c(void)
{
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (!src || !have_python_numpy()) {
        fprintf(stderr, "  (skipped: no BASIRA_SOURCE_DIR or no numpy in /usr/bin/python3)\n");
        return;
    }
    char path[256], cmd[1024];
    path_in_tmp(path, sizeof path, "c.safetensors");
    nn_st_writer *w = nn_st_writer_new();
    float a[24];
    for (int i = 0; i < 24; i++)
        a[i] = (float)i / 8.0f;
    int64_t s[4] = {2, 3, 2, 2};
    basira_error err;
    nn_st_writer_add_f32(w, "layer.weight", s, 4, a, &err);
    nn_st_writer_add_f32(w, "b", s, 1, a + 5, &err);
    nn_st_writer_set_meta(w, "architecture", "{\"family\": \"résnet\"}", &err);
    CHECK(!nn_st_writer_save(w, path, &err));
    nn_st_writer_free(w);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/nn/st_read.py %s", src, path);
    FILE *p = popen(cmd, "r");
    json_error_t jerr;
    json_t *j = p ? json_loadf(p, 0, &jerr) : NULL;
    CHECK(p && pclose(p) == 0);
    CHECK_MSG(j != NULL, "python output not JSON: %s", jerr.text);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "metadata"), "architecture")),
              "{\"family\": \"résnet\"}");
    json_t *t = json_object_get(json_object_get(j, "tensors"), "layer.weight");
    CHECK_NEAR(json_real_value(json_object_get(t, "sum")), 276.0 / 8.0, 1e-9);
    CHECK_EQ_INT(json_integer_value(json_array_get(json_object_get(t, "shape"), 3)), 2);
    t = json_object_get(json_object_get(j, "tensors"), "b");
    CHECK_NEAR(json_real_value(json_object_get(t, "first")), 5.0 / 8.0, 1e-9);
    CHECK_NEAR(json_real_value(json_object_get(t, "sum")), (5 + 6) / 8.0, 1e-9);
    json_decref(j);
}

static void test_c_reads_python(void)
{
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (!src || !have_python_numpy()) {
        fprintf(stderr, "  (skipped: no BASIRA_SOURCE_DIR or no numpy in /usr/bin/python3)\n");
        return;
    }
    const char *dts[3] = {"F32", "F16", "BF16"};
    for (int k = 0; k < 3; k++) {
        char path[256], cmd[2048];
        path_in_tmp(path, sizeof path, "py.safetensors");
        snprintf(cmd, sizeof cmd,
                 "cd %s/tests/nn && /usr/bin/python3 -c \"import numpy as np, st_read; "
                 "st_read.write('%s', {'x': np.arange(12, dtype=np.float32).reshape(3, 4) / 4, "
                 "'s': np.float32(-1.5)}, {'note': 'py'}, dtype='%s')\"",
                 src, path, dts[k]);
        CHECK(system(cmd) == 0);
        nn_st_file *f;
        basira_error err;
        CHECK_MSG(!nn_st_read_file(path, &f, &err), "%s: %s", dts[k], err.message);
        if (!f)
            continue;
        const nn_st_tensor *x = nn_st_find(f, "x");
        float out[12];
        CHECK(x && x->ndim == 2 && x->shape[0] == 3 && x->shape[1] == 4);
        CHECK(x && !strcmp(nn_st_dtype_name(x->dtype), dts[k]));
        CHECK(x && !nn_st_to_f32(x, out, &err));
        for (int i = 0; i < 12; i++)
            CHECK(out[i] == (float)i / 4.0f); /* exact in all three dtypes */
        const nn_st_tensor *s = nn_st_find(f, "s");
        CHECK(s && s->ndim == 0 && !nn_st_to_f32(s, out, &err) && out[0] == -1.5f);
        CHECK_STR(nn_st_meta_get(f, "note"), "py");
        nn_st_free(f);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basira-st-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_writer_exact_bytes);
    RUN(test_roundtrip);
    RUN(test_writer_rejects);
    RUN(test_reader_rejects);
    RUN(test_conversions);
    RUN(test_f16_every_value);
    RUN(test_truncations_and_flips);
    RUN(test_files);
    RUN(test_python_reads_c);
    RUN(test_c_reads_python);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
