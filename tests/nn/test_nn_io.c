/*
 * test_nn_io.c - networks and checkpoints as files (src/nn/io.c): save/load round
 * trips with metadata, every way a model file can disagree with its architecture,
 * SHA-256 identity, and --resume reproducing an uninterrupted run bit for bit.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/fs.h"
#include "nn/internal.h"
#include "nn/optim_internal.h"
#include "nn/safetensors.h"
#include "test.h"

static char tmpdir[64];

static const char *TINY_ARCH =
    "{\"family\": \"test\", \"input\": [2, 4, 4], \"num_classes\": 3, \"layers\": ["
    "{\"name\": \"conv1\", \"type\": \"conv\", \"out_channels\": 4, \"kernel\": 3, "
    "\"padding\": 1, \"bias\": true},"
    "{\"name\": \"bn1\", \"type\": \"batchnorm\"},"
    "{\"name\": \"act1\", \"type\": \"relu\"},"
    "{\"name\": \"pool\", \"type\": \"gap\"},"
    "{\"name\": \"fc\", \"type\": \"fc\", \"out_features\": 3}], \"output\": \"fc\"}";

/* The same with dropout, whose random masks must also resume exactly. */
static const char *TINY_DROPOUT_ARCH =
    "{\"family\": \"test\", \"input\": [2, 4, 4], \"num_classes\": 3, \"layers\": ["
    "{\"name\": \"conv1\", \"type\": \"conv\", \"out_channels\": 4, \"kernel\": 3, "
    "\"padding\": 1, \"bias\": true},"
    "{\"name\": \"bn1\", \"type\": \"batchnorm\"},"
    "{\"name\": \"act1\", \"type\": \"relu\"},"
    "{\"name\": \"pool\", \"type\": \"gap\"},"
    "{\"name\": \"drop\", \"type\": \"dropout\", \"p\": 0.5},"
    "{\"name\": \"fc\", \"type\": \"fc\", \"out_features\": 3}], \"output\": \"fc\"}";

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static basira_net *tiny_net_of(const char *arch, uint64_t seed)
{
    basira_net *net = NULL;
    basira_error err;
    if (basira_net_new(arch, seed, &net, &err))
        fprintf(stderr, "basira_net_new: %s\n", err.message);
    return net;
}

static basira_net *tiny_net(uint64_t seed)
{
    basira_net *net = NULL;
    basira_error err;
    if (basira_net_new(TINY_ARCH, seed, &net, &err))
        fprintf(stderr, "basira_net_new: %s\n", err.message);
    return net;
}

/* Rewrite a safetensors file through a callback that may drop/alter tensors. */
typedef int (*edit_fn)(const char *name, float *vals, size_t n, int64_t *shape, int *ndim);

static void rewrite(const char *in, const char *out, edit_fn edit, const char *extra_name,
                    const char *drop_meta)
{
    nn_st_file *f;
    basira_error err;
    if (nn_st_read_file(in, &f, &err)) {
        fprintf(stderr, "rewrite: %s\n", err.message);
        return;
    }
    nn_st_writer *w = nn_st_writer_new();
    float **bufs = calloc(nn_st_count(f) + 1, sizeof *bufs);
    for (size_t i = 0; i < nn_st_count(f); i++) {
        const nn_st_tensor *t = nn_st_at(f, i);
        bufs[i] = malloc((t->numel + 1) * sizeof(float));
        nn_st_to_f32(t, bufs[i], &err);
        int64_t shape[NN_ST_MAX_DIMS];
        int ndim = t->ndim;
        memcpy(shape, t->shape, sizeof shape);
        if (edit && !edit(t->name, bufs[i], t->numel, shape, &ndim))
            continue;
        nn_st_writer_add_f32(w, t->name, shape, ndim, bufs[i], &err);
    }
    float one = 1.0f;
    if (extra_name)
        nn_st_writer_add_f32(w, extra_name, NULL, 0, &one, &err);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)nn_st_metadata(f), k, v)
    {
        if (!drop_meta || strcmp(k, drop_meta))
            nn_st_writer_set_meta(w, k, json_string_value(v), &err);
    }
    if (nn_st_writer_save(w, out, &err))
        fprintf(stderr, "rewrite: %s\n", err.message);
    nn_st_writer_free(w);
    for (size_t i = 0; i < nn_st_count(f); i++)
        free(bufs[i]);
    free(bufs);
    nn_st_free(f);
}

static void test_save_load_roundtrip(void)
{
    basira_net *net = tiny_net(3);
    if (!net)
        return;
    /* Non-default running statistics must survive too. */
    const nn_param *rm = nn_net_param_find(net, "bn1.running_mean");
    for (size_t i = 0; i < rm->numel; i++)
        nn_net_params(net)[rm->offset + i] = 0.5f + (float)i;
    json_t *meta = basira_net_metadata(net);
    json_object_set_new(meta, "classes",
                        json_string("[{\"code\": \"mel\", \"fr\": \"mélanome\"}]"));
    json_object_set_new(meta, "temperature", json_string("1.37"));
    char path[256];
    tmp_path(path, sizeof path, "model.safetensors");
    basira_error err;
    CHECK_MSG(!basira_net_save(net, path, &err), "%s", err.message);

    basira_net *back = NULL;
    CHECK_MSG(!basira_net_load(path, &back, &err), "%s", err.message);
    if (!back) {
        basira_net_free(net);
        return;
    }
    CHECK_EQ_INT(nn_net_numel(back), nn_net_numel(net));
    CHECK(!memcmp(nn_net_params(back), nn_net_params(net), nn_net_numel(net) * sizeof(float)));
    CHECK_STR(json_string_value(json_object_get(basira_net_metadata(back), "temperature")), "1.37");
    CHECK_STR(json_string_value(json_object_get(basira_net_metadata(back), "classes")),
              "[{\"code\": \"mel\", \"fr\": \"mélanome\"}]");
    CHECK(json_object_get(basira_net_metadata(back), "architecture") == NULL);
    CHECK(json_equal((json_t *)basira_net_arch(back), (json_t *)basira_net_arch(net)));
    CHECK_EQ_INT(basira_net_num_classes(back), 3);

    /* The file's layout: one tensor per parameter and buffer, sorted, and the metadata. */
    nn_st_file *f;
    CHECK(!nn_st_read_file(path, &f, &err));
    CHECK_EQ_INT(nn_st_count(f), nn_net_param_count(net));
    CHECK(nn_st_find(f, "bn1.running_var") && nn_st_find(f, "conv1.weight")->ndim == 4);
    CHECK(nn_st_meta_get(f, "architecture") != NULL);
    nn_st_free(f);

    /* Same model, same bytes: the SHA-256 is the model's identity. */
    char path2[256], h1[65], h2[65], h3[65];
    tmp_path(path2, sizeof path2, "model2.safetensors");
    CHECK(!basira_net_save(back, path2, &err));
    CHECK(!basira_file_sha256(path, h1, &err));
    CHECK(!basira_file_sha256(path2, h2, &err));
    CHECK_STR(h1, h2);
    CHECK_EQ_INT(strlen(h1), 64);
    nn_net_params(back)[0] += 1.0f;
    CHECK(!basira_net_save(back, path2, &err));
    CHECK(!basira_file_sha256(path2, h3, &err));
    CHECK(strcmp(h1, h3) != 0);

    /* Load from memory gives the same net. */
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    rewind(fp);
    unsigned char *buf = malloc((size_t)len);
    CHECK(fread(buf, 1, (size_t)len, fp) == (size_t)len);
    fclose(fp);
    basira_net *mem = NULL;
    CHECK(!basira_net_load_buffer(buf, (size_t)len, &mem, &err));
    CHECK(mem &&
          !memcmp(nn_net_params(mem), nn_net_params(net), nn_net_numel(net) * sizeof(float)));
    basira_net_free(mem);
    /* Every truncation is refused cleanly. */
    int bad = 0;
    for (long l = 0; l < len; l += 7) {
        mem = NULL;
        if (basira_net_load_buffer(buf, (size_t)l, &mem, &err) != BASIRA_E_MODEL || mem)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(buf);

    /* A non-string metadata value cannot be saved (the format allows only strings). */
    json_object_set_new(basira_net_metadata(net), "bad", json_integer(3));
    CHECK(basira_net_save(net, path2, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "bad") != NULL);
    basira_net_free(back);
    basira_net_free(net);
}

static int drop_fc_bias(const char *name, float *v, size_t n, int64_t *shape, int *ndim)
{
    return strcmp(name, "fc.bias") != 0;
}

static int reshape_fc(const char *name, float *v, size_t n, int64_t *shape, int *ndim)
{
    if (!strcmp(name, "fc.weight")) {
        int64_t t = shape[0];
        shape[0] = shape[1];
        shape[1] = t;
    }
    return 1;
}

static int nan_in_bn(const char *name, float *v, size_t n, int64_t *shape, int *ndim)
{
    if (!strcmp(name, "bn1.weight"))
        v[n - 1] = NAN;
    return 1;
}

static void expect_load_error(const char *path, const char *part)
{
    basira_net *net = (basira_net *)1;
    basira_error err;
    basira_error_clear(&err);
    CHECK_MSG(basira_net_load(path, &net, &err) == BASIRA_E_MODEL, "%s: %s", path, err.message);
    CHECK(net == NULL);
    CHECK_MSG(strstr(err.message, part) != NULL, "message \"%s\" lacks \"%s\"", err.message, part);
}

static void test_load_rejects(void)
{
    basira_net *net = tiny_net(5);
    if (!net)
        return;
    char good[256], bad[256];
    tmp_path(good, sizeof good, "good.safetensors");
    tmp_path(bad, sizeof bad, "bad.safetensors");
    basira_error err;
    CHECK(!basira_net_save(net, good, &err));
    basira_net_free(net);

    rewrite(good, bad, drop_fc_bias, NULL, NULL);
    expect_load_error(bad, "\"fc.bias\" is missing");
    rewrite(good, bad, reshape_fc, NULL, NULL);
    expect_load_error(bad, "\"fc.weight\" has shape [4, 3] but the architecture needs [3, 4]");
    rewrite(good, bad, NULL, "fc.extra", NULL);
    expect_load_error(bad, "\"fc.extra\" is not part of the architecture");
    rewrite(good, bad, nan_in_bn, NULL, NULL);
    expect_load_error(bad, "\"bn1.weight\" holds a value that is not a finite number");
    rewrite(good, bad, NULL, NULL, "architecture");
    expect_load_error(bad, "no \"architecture\"");

    /* An architecture that does not parse is a model error that says why. */
    nn_st_writer *w = nn_st_writer_new();
    nn_st_writer_set_meta(w, "architecture", "{\"input\": [3, 8, 8], \"layers\": []}", &err);
    CHECK(!nn_st_writer_save(w, bad, &err));
    nn_st_writer_free(w);
    expect_load_error(bad, "invalid architecture");

    /* Not a file at all, and garbage. */
    char none[256];
    tmp_path(none, sizeof none, "none.safetensors");
    net = (basira_net *)1;
    CHECK(basira_net_load(none, &net, &err) == BASIRA_E_NOT_FOUND && net == NULL);
    FILE *fp = fopen(bad, "wb");
    fputs("GIF89a not a model at all", fp);
    fclose(fp);
    expect_load_error(bad, "model file");
    CHECK(basira_file_sha256(none, bad, &err) == BASIRA_E_NOT_FOUND);
}

/* A tensor of member 1 dropped, a stray "member3." tensor (of a 3-member file), a bad count. */
static int drop_member1_fc(const char *name, float *v, size_t n, int64_t *shape, int *ndim)
{
    return strcmp(name, "member1.fc.bias") != 0;
}

static void expect_ensemble_error(const char *path, const char *part)
{
    basira_net *nets[BASIRA_NET_MAX_MEMBERS];
    int n = 7;
    basira_error err;
    basira_error_clear(&err);
    CHECK_MSG(basira_net_load_ensemble(path, nets, &n, &err) == BASIRA_E_MODEL, "%s: %s", path,
              err.message);
    CHECK_EQ_INT(n, 0);
    for (int i = 0; i < BASIRA_NET_MAX_MEMBERS; i++)
        CHECK(nets[i] == NULL);
    CHECK_MSG(strstr(err.message, part) != NULL, "message \"%s\" lacks \"%s\"", err.message, part);
}

static void test_ensemble(void)
{
    const char *OTHER_ARCH =
        "{\"family\": \"test\", \"input\": [2, 4, 4], \"num_classes\": 3, \"layers\": ["
        "{\"name\": \"conv1\", \"type\": \"conv\", \"out_channels\": 6, \"kernel\": 3, "
        "\"padding\": 1, \"bias\": true},"
        "{\"name\": \"act1\", \"type\": \"relu\"},"
        "{\"name\": \"pool\", \"type\": \"gap\"},"
        "{\"name\": \"fc\", \"type\": \"fc\", \"out_features\": 3}], \"output\": \"fc\"}";
    basira_net *in[3] = {tiny_net(3), tiny_net(4), tiny_net_of(OTHER_ARCH, 5)};
    if (!in[0] || !in[1] || !in[2])
        goto out;
    json_object_set_new(basira_net_metadata(in[0]), "basira", json_string("{\"m\": 0}"));
    /* Only member 0's metadata is the file's: member 1's is not written. */
    json_object_set_new(basira_net_metadata(in[1]), "other", json_string("x"));
    char path[256], bad[256];
    tmp_path(path, sizeof path, "ensemble.safetensors");
    tmp_path(bad, sizeof bad, "ensemble-bad.safetensors");
    basira_error err;
    CHECK_MSG(!basira_net_save_ensemble((const basira_net *const *)in, 3, path, &err), "%s",
              err.message);

    /* Read back: three members with their own architectures and weights. */
    basira_net *back[BASIRA_NET_MAX_MEMBERS];
    int n = 0;
    CHECK_MSG(!basira_net_load_ensemble(path, back, &n, &err), "%s", err.message);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < n && n == 3; i++) {
        CHECK(json_equal((json_t *)basira_net_arch(back[i]), (json_t *)basira_net_arch(in[i])));
        CHECK(nn_net_numel(back[i]) == nn_net_numel(in[i]) &&
              !memcmp(nn_net_params(back[i]), nn_net_params(in[i]),
                      nn_net_numel(in[i]) * sizeof(float)));
    }
    if (n == 3) {
        CHECK_STR(json_string_value(json_object_get(basira_net_metadata(back[0]), "basira")),
                  "{\"m\": 0}");
        CHECK(json_object_size(basira_net_metadata(back[1])) == 0);
        CHECK(json_object_get(basira_net_metadata(back[0]), "ensemble") == NULL);
    }
    basira_net_free_ensemble(back, n);
    /* The layout: member 0 under its own names, the others prefixed, and the count. */
    nn_st_file *f;
    CHECK(!nn_st_read_file(path, &f, &err));
    CHECK(nn_st_find(f, "conv1.weight") && nn_st_find(f, "member1.bn1.running_var") &&
          nn_st_find(f, "member2.conv1.weight")->shape[0] == 6);
    CHECK_STR(nn_st_meta_get(f, "ensemble"), "3");
    CHECK(nn_st_meta_get(f, "member2.architecture") && !nn_st_meta_get(f, "other"));
    nn_st_free(f);

    /* A single net is an ensemble of one; an ensemble is not one net. */
    basira_net *one = NULL;
    CHECK(!basira_net_save(in[0], bad, &err));
    CHECK(!basira_net_load_ensemble(bad, back, &n, &err) && n == 1);
    basira_net_free_ensemble(back, n);
    CHECK(basira_net_load(path, &one, &err) == BASIRA_E_MODEL && !one);
    CHECK(strstr(err.message, "ensemble of 3") != NULL);
    /* Training starts from member 0 when asked by name, and is told how many there were. */
    int members = 0;
    CHECK_MSG(!basira_net_load_first(path, &one, &members, &err), "%s", err.message);
    CHECK_EQ_INT(members, 3);
    CHECK(one && nn_net_numel(one) == nn_net_numel(in[0]) &&
          !memcmp(nn_net_params(one), nn_net_params(in[0]), nn_net_numel(in[0]) * sizeof(float)));
    CHECK(one && json_equal((json_t *)basira_net_arch(one), (json_t *)basira_net_arch(in[0])));
    basira_net_free(one);
    one = NULL;
    CHECK(!basira_net_load_first(bad, &one, &members, &err) && one && members == 1);
    basira_net_free(one);
    one = NULL;
    CHECK(!basira_net_load_first(path, &one, NULL, &err) && one);
    basira_net_free(one);
    CHECK(basira_net_load_first(path, NULL, &members, &err) == BASIRA_E_INVALID_ARGUMENT);

    /* Damaged ensembles are refused whole, naming what is wrong. */
    rewrite(path, bad, drop_member1_fc, NULL, NULL);
    expect_ensemble_error(bad, "\"member1.fc.bias\" is missing");
    /* Member 0 intact is not enough: a file damaged anywhere is not trained from. */
    basira_net *stale = tiny_net(9);
    one = stale; /* what the caller had there is not its to free: it is set to NULL */
    members = 7;
    CHECK(basira_net_load_first(bad, &one, &members, &err) == BASIRA_E_MODEL && !one &&
          members == 0);
    basira_net_free(stale);
    rewrite(path, bad, NULL, "member3.fc.bias", NULL);
    expect_ensemble_error(bad, "\"member3.fc.bias\" is not part of the architecture");
    rewrite(path, bad, NULL, "member1.fc.extra", NULL);
    expect_ensemble_error(bad, "\"member1.fc.extra\" is not part of the architecture");
    rewrite(path, bad, NULL, NULL, "member2.architecture");
    expect_ensemble_error(bad, "no \"member2.architecture\"");
    /* Without the count the members are stray tensors of a single net. */
    rewrite(path, bad, NULL, NULL, "ensemble");
    expect_ensemble_error(bad, "is not part of the architecture");

    /* Members that do not take the same input or give the same outputs cannot be saved. */
    basira_net *odd = tiny_net_of("{\"family\": \"test\", \"input\": [2, 4, 4], \"num_classes\": "
                                  "2, \"layers\": [{\"name\": \"pool\", \"type\": \"gap\"},"
                                  "{\"name\": \"fc\", \"type\": \"fc\", \"out_features\": 2}], "
                                  "\"output\": \"fc\"}",
                                  6);
    const basira_net *pair[2] = {in[0], odd};
    CHECK(odd && basira_net_save_ensemble(pair, 2, bad, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "member 1") != NULL);
    CHECK(basira_net_save_ensemble((const basira_net *const *)in, 0, bad, &err) ==
          BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_net_save_ensemble((const basira_net *const *)in, BASIRA_NET_MAX_MEMBERS + 1, bad,
                                   &err) == BASIRA_E_INVALID_ARGUMENT);
    basira_net_free(odd);
out:
    for (int i = 0; i < 3; i++)
        basira_net_free(in[i]);
}

/* A model re-saved in half precision by the independent Python writer loads, converted. */
static void test_load_half_precision(void)
{
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (!src || system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "  (skipped: no BASIRA_SOURCE_DIR or no numpy in /usr/bin/python3)\n");
        return;
    }
    basira_net *net = tiny_net(8);
    if (!net)
        return;
    char f32[256], half[256], cmd[1024];
    tmp_path(f32, sizeof f32, "f32.safetensors");
    tmp_path(half, sizeof half, "half.safetensors");
    basira_error err;
    CHECK(!basira_net_save(net, f32, &err));
    const char *dts[2] = {"F16", "BF16"};
    const double tol[2] = {1.0 / 1024, 1.0 / 128}; /* relative precision of each */
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "cd %s/tests/nn && /usr/bin/python3 -c \"import st_read; t, m = "
                 "st_read.read('%s'); st_read.write('%s', t, m, dtype='%s')\"",
                 src, f32, half, dts[k]);
        CHECK(system(cmd) == 0);
        basira_net *h = NULL;
        CHECK_MSG(!basira_net_load(half, &h, &err), "%s: %s", dts[k], err.message);
        if (!h)
            continue;
        double worst = 0;
        for (size_t i = 0; i < nn_net_numel(net); i++) {
            double a = nn_net_params(net)[i], b = nn_net_params(h)[i];
            worst = fmax(worst, fabs(a - b) / fmax(fabs(a), 1e-4));
        }
        CHECK_MSG(worst <= tol[k], "%s: relative error %g", dts[k], worst);
        basira_net_free(h);
    }
    basira_net_free(net);
}

/* The writer's half precision: known roundings (ties to even, subnormals, overflow), every
 * half value through the reader and back, then a net saved with "storage": "F16". */
static void test_save_half_precision(void)
{
    static const struct {
        float f;
        uint16_t h;
    } known[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.1f, 0x2e66},
        {65504.0f, 0x7bff},
        {65520.0f, 0x7c00},
        {1e9f, 0x7c00},
        {0x1p-24f, 0x0001},
        {0x1p-25f, 0x0000},
        {0x1.8p-25f, 0x0001},
        {0x1p-14f, 0x0400},
        {0x1.ffcp-15f, 0x0400},
        {1.0f + 0x1p-11f, 0x3c00},
        {1.0f + 0x3p-11f, 0x3c02},
        {-0.0f, 0x8000},
        {0x1p-30f, 0x0000},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        CHECK_MSG(nn_st_f32_to_f16(known[i].f) == known[i].h, "%a -> %04x, not %04x",
                  (double)known[i].f, nn_st_f32_to_f16(known[i].f), known[i].h);
    CHECK(nn_st_f32_to_f16(INFINITY) == 0x7c00 && nn_st_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((nn_st_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (nn_st_f32_to_f16(NAN) & 0x3ff));

    /* Every finite half, read by the reader as a float, converts back to itself. */
    enum { NH = 65536 };
    static unsigned char file[8 + 128 + 2 * NH];
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}";
    size_t hl = (strlen(hdr) + 7) / 8 * 8;
    memset(file, ' ', 8 + hl);
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, hdr, strlen(hdr));
    for (int i = 0; i < NH; i++) {
        file[8 + hl + 2 * i] = (unsigned char)(i & 0xff);
        file[8 + hl + 2 * i + 1] = (unsigned char)(i >> 8);
    }
    nn_st_file *f = NULL;
    static float all[NH];
    CHECK_EQ_INT(nn_st_parse(file, 8 + hl + 2 * NH, &f, NULL), BASIRA_OK);
    CHECK_EQ_INT(f ? nn_st_to_f32(nn_st_find(f, "h"), all, NULL) : BASIRA_E_INTERNAL, BASIRA_OK);
    nn_st_free(f);
    int bad = 0;
    for (int i = 0; i < NH; i++)
        if ((i & 0x7c00) != 0x7c00 || !(i & 0x3ff))
            bad += nn_st_f32_to_f16(all[i]) != (uint16_t)i;
    CHECK_MSG(bad == 0, "%d halves do not come back", bad);

    /* A net stored in half precision: every tensor F16 but one with a value half precision
     * cannot hold; the file about half the size; the weights those of the rounding. */
    basira_net *net = tiny_net(21);
    if (!net)
        return;
    const nn_param *rv = nn_net_param_find(net, "bn1.running_var");
    nn_net_params(net)[rv->offset] = 1e5f;
    nn_net_params_changed(net);
    char p32[256], p16[256], again[256];
    tmp_path(p32, sizeof p32, "w32.safetensors");
    tmp_path(p16, sizeof p16, "w16.safetensors");
    tmp_path(again, sizeof again, "w16b.safetensors");
    basira_error err;
    CHECK_EQ_INT(basira_net_save(net, p32, &err), BASIRA_OK);
    json_object_set_new(basira_net_metadata(net), BASIRA_NET_META_STORAGE, json_string("F16"));
    CHECK_EQ_INT(basira_net_save(net, p16, &err), BASIRA_OK);
    CHECK_EQ_INT(nn_st_read_file(p16, &f, &err), BASIRA_OK);
    int f16 = 0, f32 = 0;
    size_t data_bytes = 0;
    for (size_t i = 0; f && i < nn_st_count(f); i++) {
        const nn_st_tensor *t = nn_st_at(f, i);
        data_bytes += t->nbytes;
        f16 += t->dtype == NN_ST_F16;
        f32 += t->dtype == NN_ST_F32 && !strcmp(t->name, "bn1.running_var");
    }
    CHECK_MSG(f && f16 == (int)nn_st_count(f) - 1 && f32 == 1, "%d F16 of %zu", f16,
              f ? nn_st_count(f) : 0);
    nn_st_free(f);
    basira_net *h = NULL;
    CHECK_EQ_INT(basira_net_load(p16, &h, &err), BASIRA_OK);
    if (h) {
        int off = 0;
        for (size_t i = 0; i < nn_net_numel(net); i++) {
            float a = nn_net_params(net)[i], b = nn_net_params(h)[i];
            uint16_t ha = nn_st_f32_to_f16(a);
            off +=
                (i == rv->offset ? b != a
                                 : nn_st_f32_to_f16(b) != ha || fabsf(b - a) > fabsf(a) * 0x1p-11f);
        }
        CHECK_MSG(off == 0, "%d weights are not the rounding of the originals", off);
        /* The storage is carried by the loaded net: saved again, the same bytes. */
        CHECK_STR(
            json_string_value(json_object_get(basira_net_metadata(h), BASIRA_NET_META_STORAGE)),
            "F16");
        CHECK_EQ_INT(basira_net_save(h, again, &err), BASIRA_OK);
        unsigned char *x = NULL, *y = NULL;
        size_t nx = 0, ny = 0;
        CHECK(!basira_fs_read(p16, 1 << 20, &x, &nx, NULL) &&
              !basira_fs_read(again, 1 << 20, &y, &ny, NULL));
        CHECK(x && y && nx == ny && !memcmp(x, y, nx));
        free(x);
        free(y);
        basira_net_free(h);
    }
    /* Two bytes a weight, four for the tensor that stayed F32. */
    CHECK_EQ_INT((int)data_bytes, (int)(2 * nn_net_numel(net) + 2 * rv->numel));
    /* Any other storage is refused, and nothing is written. */
    unlink(again);
    json_object_set_new(basira_net_metadata(net), BASIRA_NET_META_STORAGE, json_string("F8"));
    CHECK_EQ_INT(basira_net_save(net, again, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(access(again, F_OK) != 0 && strstr(err.message, "storage"));
    /* numpy's own float16 rounding agrees, bit for bit (when numpy is there). */
    const char *src = getenv("BASIRA_SOURCE_DIR");
    if (src && system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "cd %s/tests/nn && /usr/bin/python3 -c \"import st_read, numpy as np, sys; "
                 "a, _ = st_read.read('%s'); b, _ = st_read.read('%s'); "
                 "sys.exit(any(k != 'bn1.running_var' and not np.array_equal("
                 "a[k].astype(np.float16).view(np.uint16), b[k].view(np.uint16)) for k in a))\"",
                 src, p32, p16);
        CHECK(system(cmd) == 0);
    }
    basira_net_free(net);
    unlink(p32);
    unlink(p16);
}

static void test_sha256_known(void)
{
    char path[256], hex[65];
    tmp_path(path, sizeof path, "abc.txt");
    FILE *fp = fopen(path, "wb");
    fputs("abc", fp);
    fclose(fp);
    basira_error err;
    CHECK(!basira_file_sha256(path, hex, &err));
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    fp = fopen(path, "wb");
    fclose(fp);
    CHECK(!basira_file_sha256(path, hex, &err));
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/*
 * A deterministic "training step" that needs no forward pass: gradient of
 * 0.5 * |p - target|^2 with a target that depends on the step, so the trajectory
 * depends on every bit of optimiser state.
 */
static void fake_grads(basira_net *net, long step)
{
    float *p = nn_net_params(net), *g = nn_net_grads(net);
    for (size_t i = 0; i < nn_net_param_count(net); i++) {
        const nn_param *pr = nn_net_param(net, i);
        for (size_t k = 0; k < pr->numel; k++) {
            size_t o = pr->offset + k;
            float target = (float)sin((double)(o + 1) * 0.37 + (double)step);
            g[o] = pr->trainable ? p[o] - target : 0.0f;
        }
        if (!pr->trainable) /* running statistics drift as in training */
            p[pr->offset] += 0.01f * (float)step;
    }
}

static void run_steps(basira_net *net, basira_optim *opt, long from, long to)
{
    basira_error err;
    for (long s = from; s < to; s++) {
        fake_grads(net, s);
        double lr = basira_lr_at(BASIRA_SCHED_COSINE, 0.05, s, 10, 2);
        if (basira_optim_step(opt, lr, &err))
            fprintf(stderr, "step: %s\n", err.message);
    }
}

static void resume_case(basira_optim_config cfg, const char *label)
{
    basira_error err;
    const long k = 3, total = 8;
    /* Uninterrupted. */
    basira_net *a = tiny_net(11);
    basira_optim *oa;
    CHECK(!basira_optim_new(a, &cfg, &oa, &err));
    run_steps(a, oa, 0, total);

    /* Interrupted after k steps, saved, loaded in a fresh net, continued. */
    basira_net *b = tiny_net(11);
    basira_optim *ob;
    CHECK(!basira_optim_new(b, &cfg, &ob, &err));
    run_steps(b, ob, 0, k);
    json_t *ts = json_pack("{s:i, s:i, s:s, s:f}", "epoch", 1, "step", (int)k, "rng",
                           "0x9e3779b97f4a7c15", "best_metric", 0.625);
    json_object_set_new(basira_net_metadata(b), "note", json_string("checkpoint test"));
    char path[256];
    tmp_path(path, sizeof path, "ckpt.safetensors");
    CHECK_MSG(!basira_checkpoint_save(b, ob, ts, path, &err), "%s", err.message);
    basira_optim_free(ob);
    basira_net_free(b);

    basira_net *c = NULL;
    basira_optim *oc = NULL;
    json_t *ts2 = NULL;
    CHECK_MSG(!basira_checkpoint_load(path, &c, &oc, &ts2, &err), "%s", err.message);
    if (c && oc && ts2) {
        CHECK(json_equal(ts, ts2));
        CHECK_EQ_INT(nn_optim_step_count(oc), k);
        CHECK_STR(json_string_value(json_object_get(basira_net_metadata(c), "note")),
                  "checkpoint test");
        CHECK(json_object_get(basira_net_metadata(c), "train_state") == NULL);
        const basira_optim_config *lc = nn_optim_config(oc);
        const basira_optim_config want = nn_optim_config_defaults(&cfg);
        CHECK(lc->kind == want.kind && lc->momentum == want.momentum &&
              lc->nesterov == want.nesterov && lc->beta1 == want.beta1 && lc->beta2 == want.beta2 &&
              lc->eps == want.eps && lc->weight_decay == want.weight_decay &&
              lc->ema_decay == want.ema_decay);
        run_steps(c, oc, k, total);
        size_t n = nn_net_numel(a);
        CHECK_MSG(!memcmp(nn_net_params(a), nn_net_params(c), n * sizeof(float)),
                  "%s: resumed weights differ from the uninterrupted run", label);
        nn_optim_state sa[3], sc[3];
        int na = nn_optim_states(oa, sa), nc = nn_optim_states(oc, sc);
        CHECK_EQ_INT(na, nc);
        for (int i = 0; i < na && i < nc; i++)
            CHECK_MSG(!memcmp(sa[i].data, sc[i].data, n * sizeof(float)),
                      "%s: state %s differs after resuming", label, sa[i].name);
    }
    json_decref(ts);
    json_decref(ts2);
    basira_optim_free(oc);
    basira_net_free(c);
    basira_optim_free(oa);
    basira_net_free(a);
}

static void test_resume_bit_exact(void)
{
    resume_case(
        (basira_optim_config){.kind = BASIRA_OPTIM_ADAMW, .weight_decay = 0.05, .ema_decay = 0.9},
        "adamw+ema");
    resume_case(
        (basira_optim_config){
            .kind = BASIRA_OPTIM_SGD, .momentum = 0.9, .nesterov = 1, .weight_decay = 1e-4},
        "sgd nesterov");
    resume_case((basira_optim_config){.kind = BASIRA_OPTIM_SGD, .ema_decay = 0.5}, "sgd+ema");
}

/* Real training steps: forward (batch statistics update the running ones), loss with
 * class weights and label smoothing, backward, clipping, AdamW + EMA. */
static void real_steps(basira_net *net, basira_optim *opt, long from, long to)
{
    enum { N = 4, K = 3 };
    float x[N * 2 * 4 * 4], logits[N * K], dlogits[N * K];
    const float cw[K] = {1.0f, 2.0f, 0.5f};
    int labels[N];
    basira_error err;
    for (long s = from; s < to; s++) {
        for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
            x[i] = (float)sin(0.7 * (double)i + 1.3 * (double)s);
        for (int i = 0; i < N; i++)
            labels[i] = (int)((i + s) % K);
        if (basira_net_forward(net, x, N, 1, logits, &err) ||
            (basira_softmax_xent(logits, labels, N, K, cw, 0.1f, dlogits, NULL),
             basira_net_backward(net, dlogits, &err))) {
            fprintf(stderr, "training step: %s\n", err.message);
            return;
        }
        basira_net_clip_grad(net, 1.0);
        if (basira_optim_step(opt, basira_lr_at(BASIRA_SCHED_ONECYCLE, 0.01, s, 6, 2), &err))
            fprintf(stderr, "step: %s\n", err.message);
    }
}

/*
 * What --resume relies on from the engine: the same weights and batch give the same
 * gradients, whether the training plan is fresh or has run before.
 */
static void test_backward_repeatable(void)
{
    basira_net *net = tiny_net(4);
    if (!net)
        return;
    size_t n = nn_net_numel(net);
    float *p0 = malloc(n * sizeof *p0), *g0 = malloc(n * sizeof *g0);
    memcpy(p0, nn_net_params(net), n * sizeof *p0);
    float x[4 * 2 * 4 * 4], logits[12], dlogits[12];
    int labels[4] = {0, 1, 2, 0};
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)sin(0.7 * (double)i);
    basira_error err;
    double worst = 0;
    const char *where = "";
    for (int rep = 0; rep < 2; rep++) {
        memcpy(nn_net_params(net), p0, n * sizeof *p0); /* running statistics too */
        basira_net_zero_grad(net);
        CHECK(!basira_net_forward(net, x, 4, 1, logits, &err));
        basira_softmax_xent(logits, labels, 4, 3, NULL, 0.0f, dlogits, NULL);
        CHECK(!basira_net_backward(net, dlogits, &err));
        if (rep == 0) {
            memcpy(g0, nn_net_grads(net), n * sizeof *g0);
            continue;
        }
        for (size_t i = 0; i < nn_net_param_count(net); i++) {
            const nn_param *p = nn_net_param(net, i);
            for (size_t k = 0; k < p->numel; k++) {
                double d = fabs(g0[p->offset + k] - nn_net_grads(net)[p->offset + k]);
                if (d > worst) {
                    worst = d;
                    where = p->name;
                }
            }
        }
    }
    CHECK_MSG(worst == 0, "second backward on the same plan differs by %g (%s)", worst, where);
    free(p0);
    free(g0);
    basira_net_free(net);
}

static void resume_real_training(const char *arch)
{
    basira_optim_config cfg = {.kind = BASIRA_OPTIM_ADAMW, .weight_decay = 0.05, .ema_decay = 0.8};
    basira_error err;
    basira_net *a = tiny_net_of(arch, 21), *b = tiny_net_of(arch, 21), *c = NULL;
    basira_optim *oa, *ob, *oc = NULL;
    CHECK(!basira_optim_new(a, &cfg, &oa, &err) && !basira_optim_new(b, &cfg, &ob, &err));
    real_steps(a, oa, 0, 6);
    real_steps(b, ob, 0, 3);
    char path[256];
    tmp_path(path, sizeof path, "real.ckpt");
    CHECK(!basira_checkpoint_save(b, ob, NULL, path, &err));
    CHECK_MSG(!basira_checkpoint_load(path, &c, &oc, NULL, &err), "%s", err.message);
    if (c && oc) {
        real_steps(c, oc, 3, 6);
        size_t n = nn_net_numel(a);
        /* The weights did move (so the comparison means something)... */
        CHECK(memcmp(nn_net_params(a), nn_net_params(b), n * sizeof(float)) != 0);
        /* ...and the resumed run ends exactly where the uninterrupted one does. */
        CHECK(!memcmp(nn_net_params(a), nn_net_params(c), n * sizeof(float)));
        nn_optim_state sa[3], sc[3];
        int na = nn_optim_states(oa, sa);
        CHECK_EQ_INT(na, nn_optim_states(oc, sc));
        for (int i = 0; i < na; i++)
            CHECK_MSG(!memcmp(sa[i].data, sc[i].data, n * sizeof(float)), "state %s differs",
                      sa[i].name);
    }
    basira_optim_free(oa);
    basira_optim_free(ob);
    basira_optim_free(oc);
    basira_net_free(a);
    basira_net_free(b);
    basira_net_free(c);
}

static void test_resume_real_training(void)
{
    resume_real_training(TINY_ARCH);
}

static void test_resume_real_training_with_dropout(void)
{
    resume_real_training(TINY_DROPOUT_ARCH);
}

static int drop_exp_avg(const char *name, float *v, size_t n, int64_t *shape, int *ndim)
{
    return strcmp(name, "optim.exp_avg.conv1.weight") != 0;
}

static void test_checkpoint_rejects(void)
{
    basira_net *net = tiny_net(2);
    basira_optim_config cfg = {.kind = BASIRA_OPTIM_ADAMW, .ema_decay = 0.99};
    basira_optim *opt;
    basira_error err;
    CHECK(!basira_optim_new(net, &cfg, &opt, &err));
    char ck[256], bad[256], model[256];
    tmp_path(ck, sizeof ck, "c.safetensors");
    tmp_path(bad, sizeof bad, "cbad.safetensors");
    tmp_path(model, sizeof model, "m.safetensors");
    CHECK(!basira_checkpoint_save(net, opt, NULL, ck, &err));
    CHECK(!basira_net_save(net, model, &err));

    basira_net *n2 = NULL;
    basira_optim *o2 = NULL;
    json_t *ts = NULL;
    /* The empty training state is saved as {}. */
    CHECK(!basira_checkpoint_load(ck, &n2, NULL, &ts, &err));
    CHECK(json_is_object(ts) && json_object_size(ts) == 0);
    json_decref(ts);
    basira_net_free(n2);
    /* A model file is not a checkpoint; a checkpoint is not a model file. */
    CHECK(basira_checkpoint_load(model, &n2, &o2, &ts, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "train_state") != NULL && !n2 && !o2 && !ts);
    expect_load_error(ck, "is not part of the architecture");

    rewrite(ck, bad, drop_exp_avg, NULL, NULL);
    CHECK(basira_checkpoint_load(bad, &n2, &o2, &ts, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "\"optim.exp_avg.conv1.weight\" is missing") != NULL);
    rewrite(ck, bad, NULL, "optim.exp_avg.bn1.running_mean", NULL);
    CHECK(basira_checkpoint_load(bad, &n2, &o2, &ts, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "optim.exp_avg.bn1.running_mean") != NULL);
    rewrite(ck, bad, NULL, NULL, "optim");
    CHECK(basira_checkpoint_load(bad, &n2, &o2, &ts, &err) == BASIRA_E_MODEL);
    CHECK(strstr(err.message, "not part of the architecture") != NULL);

    /* Malformed optimiser settings and training state. */
    nn_st_file *f;
    CHECK(!nn_st_read_file(ck, &f, &err));
    const char *variants[][2] = {
        {"optim", "{\"kind\": \"adam\"}"},
        {"optim", "not json"},
        {"optim", "{\"kind\": \"sgd\", \"momentum\": 2, \"nesterov\": false, \"beta1\": 0, "
                  "\"beta2\": 0, \"eps\": 0, \"weight_decay\": 0, \"ema_decay\": 0, \"step\": 1}"},
        {"train_state", "[1, 2]"},
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        nn_st_writer *w = nn_st_writer_new();
        float **bufs = calloc(nn_st_count(f), sizeof *bufs);
        for (size_t i = 0; i < nn_st_count(f); i++) {
            const nn_st_tensor *t = nn_st_at(f, i);
            bufs[i] = malloc((t->numel + 1) * sizeof(float));
            nn_st_to_f32(t, bufs[i], &err);
            nn_st_writer_add_f32(w, t->name, t->shape, t->ndim, bufs[i], &err);
        }
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)nn_st_metadata(f), k, val)
            nn_st_writer_set_meta(w, k, json_string_value(val), &err);
        nn_st_writer_set_meta(w, variants[v][0], variants[v][1], &err);
        CHECK(!nn_st_writer_save(w, bad, &err));
        nn_st_writer_free(w);
        for (size_t i = 0; i < nn_st_count(f); i++)
            free(bufs[i]);
        free(bufs);
        CHECK_MSG(basira_checkpoint_load(bad, &n2, &o2, &ts, &err) == BASIRA_E_MODEL,
                  "variant %zu accepted", v);
        CHECK(!n2 && !o2 && !ts);
    }
    nn_st_free(f);

    /* A checkpoint without optimiser loads with *opt = NULL. */
    CHECK(!basira_checkpoint_save(net, NULL, NULL, ck, &err));
    o2 = (basira_optim *)1;
    CHECK(!basira_checkpoint_load(ck, &n2, &o2, NULL, &err));
    CHECK(n2 != NULL && o2 == NULL);
    basira_net_free(n2);
    /* The optimiser of another net is refused. */
    basira_net *other = tiny_net(2);
    CHECK(basira_checkpoint_save(other, opt, NULL, ck, &err) == BASIRA_E_INVALID_ARGUMENT);
    basira_net_free(other);
    basira_optim_free(opt);
    basira_net_free(net);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/basira-io-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_save_load_roundtrip);
    RUN(test_load_rejects);
    RUN(test_load_half_precision);
    RUN(test_save_half_precision);
    RUN(test_ensemble);
    RUN(test_sha256_known);
    RUN(test_resume_bit_exact);
    RUN(test_backward_repeatable);
    RUN(test_resume_real_training);
    RUN(test_resume_real_training_with_dropout);
    RUN(test_checkpoint_rejects);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary();
}
