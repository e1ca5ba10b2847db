/*
 * test_deid.c - the parts of src/deid under the pydicom checker (check_deid.py): the
 * generated profile table, keys, pseudonyms and UIDs, the re-identification table, and
 * DCMTK's reading of every truncation and of corrupted copies of a small DICOM file
 * (never a crash, never an output file).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/deid.h"
#include "deid/profile.h"
#include "test.h"

static const char secret[] = "a-national-secret-for-the-tests-0123";

static basira_deid_key *key(const char *s)
{
    basira_deid_key *k = NULL;
    basira_error err;
    CHECK(basira_deid_key_new(s, strlen(s), &k, &err) == BASIRA_OK);
    return k;
}

static void test_profile_table(void)
{
    /* Rows of PS3.15 2024e Table E.1-1, as the standard gives them. */
    CHECK(deid_profile_num_rules >= 600);
    const deid_rule *r = deid_profile_find(0x0010, 0x0010); /* Patient's Name */
    CHECK(r && r->basic == DEID_Z);
    r = deid_profile_find(0x0010, 0x0020); /* Patient ID */
    CHECK(r && r->basic == DEID_ZD);
    r = deid_profile_find(0x0008, 0x0050); /* Accession Number */
    CHECK(r && r->basic == DEID_Z);
    r = deid_profile_find(0x0020, 0x000D); /* Study Instance UID */
    CHECK(r && r->basic == DEID_U && r->uids == DEID_OPT_K);
    r = deid_profile_find(0x0008, 0x0020); /* Study Date */
    CHECK(r && r->basic == DEID_Z && r->modified_dates == DEID_OPT_C);
    r = deid_profile_find(0x0010, 0x0040); /* Patient's Sex */
    CHECK(r && r->patient_chars == DEID_OPT_K);
    r = deid_profile_find(0x0008, 0x1030); /* Study Description */
    CHECK(r && r->basic == DEID_X && r->descriptors == DEID_OPT_C);
    r = deid_profile_find(0x6002, 0x3000); /* Overlay Data, (60xx,3000) */
    CHECK(r && r->basic == DEID_X && r->group_mask == 0xFF00);
    r = deid_profile_find(0x5004, 0x1234); /* Curve Data, (50xx,xxxx) */
    CHECK(r && r->basic == DEID_X);
    CHECK(deid_profile_find(0x0028, 0x0010) == NULL); /* Rows: not in the table */
    CHECK(deid_profile_find(0x7FE0, 0x0010) == NULL); /* Pixel Data */
    /* Sorted, so that the binary search is right. */
    for (size_t i = 1; i < deid_profile_num_rules; i++) {
        const deid_rule *a = &deid_profile_rules[i - 1], *b = &deid_profile_rules[i];
        CHECK(((uint32_t)a->group << 16 | a->element) <= ((uint32_t)b->group << 16 | b->element));
    }
    CHECK(deid_is_private(0x0009) && deid_is_private(0x0029) && !deid_is_private(0x0010));
    CHECK(!deid_is_private(0x0001) && !deid_is_private(0xFFFF));
}

static void test_pseudonyms(void)
{
    basira_deid_key *k = key(secret), *k2 = key("another-secret-another-country-42");
    basira_error err;
    basira_deid_key *weak = NULL;
    CHECK(basira_deid_key_new("short", 5, &weak, &err) == BASIRA_E_INVALID_ARGUMENT);
    CHECK(weak == NULL);
    char a[BASIRA_PSEUDONYM_MAX], b[BASIRA_PSEUDONYM_MAX], c[BASIRA_PSEUDONYM_MAX];
    CHECK(basira_pseudonym(k, "MA-1234567", a, &err) == BASIRA_OK);
    CHECK(basira_pseudonym(k, "  ma-1234567 ", b, &err) == BASIRA_OK);
    CHECK_STR(a, b);
    CHECK(strlen(a) == 23 && !strncmp(a, "BSR", 3));
    CHECK(basira_pseudonym(k, "MA-1234568", c, &err) == BASIRA_OK);
    CHECK(strcmp(a, c) != 0);
    CHECK(basira_pseudonym(k2, "MA-1234567", c, &err) == BASIRA_OK);
    CHECK(strcmp(a, c) != 0);
    CHECK(basira_pseudonym(k, "   ", c, &err) == BASIRA_E_INVALID_ARGUMENT);
    /* UIDs: 2.25.<decimal>, at most 64 characters, stable, keyed. */
    char u1[BASIRA_UID_MAX], u2[BASIRA_UID_MAX], u3[BASIRA_UID_MAX];
    CHECK(basira_deid_uid(k, "1.2.840.113619.2.1.1.322987881.621.736170080.681", u1, &err) == 0);
    CHECK(basira_deid_uid(k, "1.2.840.113619.2.1.1.322987881.621.736170080.681", u2, &err) == 0);
    CHECK(basira_deid_uid(k2, "1.2.840.113619.2.1.1.322987881.621.736170080.681", u3, &err) == 0);
    CHECK_STR(u1, u2);
    CHECK(strcmp(u1, u3) != 0);
    CHECK(!strncmp(u1, "2.25.", 5) && strlen(u1) <= 64 &&
          strspn(u1 + 5, "0123456789") == strlen(u1 + 5));
    CHECK(u1[5] != '0' || u1[6] == 0); /* no leading zero (PS3.5 9.1) */
    CHECK(basira_deid_uid(k, "", u1, &err) == BASIRA_E_FORMAT);
    for (int i = 0; i < 50; i++) {
        char id[32];
        snprintf(id, sizeof id, "P%d", i);
        int s = basira_deid_date_shift(k, id);
        CHECK(s >= 1 && s <= 3652);
        CHECK(s == basira_deid_date_shift(k, id));
    }
    basira_deid_key_free(k);
    basira_deid_key_free(k2);
}

static char tmpdir[] = "/tmp/basira-test-deid-XXXXXX";

static void write_file(const char *path, const void *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
    close(fd);
    chmod(path, (mode_t)mode);
}

static void test_secret_file(void)
{
    char p[256];
    basira_deid_key *k = NULL;
    basira_error err;
    snprintf(p, sizeof p, "%s/secret", tmpdir);
    write_file(p, "0123456789abcdef0123\n", 21, 0644);
    CHECK(basira_deid_key_load(p, &k, &err) == BASIRA_E_FORBIDDEN); /* readable by others */
    chmod(p, 0600);
    CHECK(basira_deid_key_load(p, &k, &err) == BASIRA_OK);
    basira_deid_key *same = key("0123456789abcdef0123"); /* the newline is not the secret */
    char a[BASIRA_PSEUDONYM_MAX], b[BASIRA_PSEUDONYM_MAX];
    basira_pseudonym(k, "X", a, &err);
    basira_pseudonym(same, "X", b, &err);
    CHECK_STR(a, b);
    basira_deid_key_free(k);
    basira_deid_key_free(same);
    write_file(p, "tiny\n", 5, 0600);
    CHECK(basira_deid_key_load(p, &k, &err) == BASIRA_E_INVALID_ARGUMENT);
    snprintf(p, sizeof p, "%s/missing", tmpdir);
    CHECK(basira_deid_key_load(p, &k, &err) == BASIRA_E_NOT_FOUND);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *d = malloc(*len);
    if (d && fread(d, 1, *len, f) != *len) {
        free(d);
        d = NULL;
    }
    fclose(f);
    return d;
}

static void test_malformed(void)
{
    char seed[512];
    snprintf(seed, sizeof seed, "%s/fuzz/corpus/dicom/explicit-le.dcm",
             getenv("BASIRA_SOURCE_DIR") ? getenv("BASIRA_SOURCE_DIR") : ".");
    size_t len = 0;
    unsigned char *data = read_all(seed, &len);
    CHECK_MSG(data != NULL, "cannot read %s", seed);
    if (!data)
        return;
    basira_deid_key *k = key(secret);
    basira_deid_options o;
    basira_deid_options_default(&o);
    basira_deid_result res;
    basira_error err;
    CHECK(basira_deid_dicom_buffer(data, len, k, &o, &res, &err) == BASIRA_OK);
    /* Every truncation: an error (most) or a complete shorter data set, never a crash. */
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        basira_code rc = basira_deid_dicom_buffer(data, n, k, &o, &res, &err);
        CHECK(rc == BASIRA_OK || rc == BASIRA_E_FORMAT || rc == BASIRA_E_FORBIDDEN);
        refused += rc != BASIRA_OK;
        if (rc == BASIRA_OK)
            CHECK(!strncmp(res.pseudonym, "BSR", 3));
    }
    CHECK_MSG(refused > (int)len / 2, "only %d of %zu truncations refused", refused, len);
    /* A truncated file on disk: an error, and no output nor partial file. */
    char in[256], out[256], partial[300];
    snprintf(in, sizeof in, "%s/truncated.dcm", tmpdir);
    snprintf(out, sizeof out, "%s/out.dcm", tmpdir);
    snprintf(partial, sizeof partial, "%s.partial", out);
    write_file(in, data, len - 3, 0600);
    CHECK(basira_deid_dicom_file(in, out, k, &o, &res, &err) == BASIRA_E_FORMAT);
    CHECK(access(out, F_OK) != 0 && access(partial, F_OK) != 0);
    CHECK(strstr(err.message, "truncated.dcm") != NULL);
    /* Corrupted bytes (a seeded walk): no crash. */
    unsigned char *copy = malloc(len);
    uint32_t x = 12345;
    for (int round = 0; copy && round < 400; round++) {
        memcpy(copy, data, len);
        for (int j = 0; j < 4; j++) {
            x = x * 1664525u + 1013904223u;
            copy[(x >> 8) % len] = (unsigned char)(x >> 24);
        }
        basira_code rc = basira_deid_dicom_buffer(copy, len, k, &o, &res, &err);
        CHECK(rc == BASIRA_OK || err.message[0]);
    }
    free(copy);
    /* The whole file de-identifies, and the output refuses to be overwritten. */
    write_file(in, data, len, 0600);
    CHECK(basira_deid_dicom_file(in, out, k, &o, &res, &err) == BASIRA_OK);
    CHECK_EQ_INT(res.private_removed, 2); /* the private creator and its element */
    CHECK(basira_deid_check_file(out, NULL, &err) == BASIRA_OK);
    CHECK(basira_deid_check_file(in, NULL, &err) == BASIRA_E_FORBIDDEN);
    CHECK(basira_deid_dicom_file(in, out, k, &o, &res, &err) == BASIRA_E_CONFLICT);
    free(data);
    basira_deid_key_free(k);
}

static void test_reid_table(void)
{
    basira_deid_key *k = key(secret), *other = key("another-secret-another-country-42");
    basira_deid_result r[2];
    memset(r, 0, sizeof r);
    strcpy(r[0].pseudonym, "BSR00000000000000000001");
    strcpy(r[0].patient_id, "MA-1234567");
    strcpy(r[0].patient_name, "Alaoui^Sara");
    strcpy(r[1].pseudonym, "BSR00000000000000000002");
    strcpy(r[1].patient_id, "MA-7654321");
    char path[256];
    snprintf(path, sizeof path, "%s/reid.table", tmpdir);
    basira_error err;
    CHECK(basira_reid_table_add(path, k, &r[0], 1, &err) == BASIRA_OK);
    CHECK(basira_reid_table_add(path, k, &r[1], 1, &err) == BASIRA_OK); /* appends */
    char *text = NULL;
    size_t tlen = 0;
    FILE *mem = open_memstream(&text, &tlen);
    CHECK(basira_reid_table_dump(path, k, mem, &err) == BASIRA_OK);
    fclose(mem);
    CHECK(text && strstr(text, "MA-1234567") && strstr(text, "Alaoui^Sara") &&
          strstr(text, "MA-7654321"));
    free(text);
    size_t len = 0;
    unsigned char *raw = read_all(path, &len);
    CHECK(raw && !memmem(raw, len, "MA-1234567", 10));
    mem = open_memstream(&text, &tlen);
    CHECK(basira_reid_table_dump(path, other, mem, &err) == BASIRA_E_WRONG_KEY);
    fclose(mem);
    CHECK(!text || !strstr(text, "MA-"));
    free(text);
    /* One byte changed: refused, not misread. */
    raw[len - 5] ^= 1;
    write_file(path, raw, len, 0600);
    mem = open_memstream(&text, &tlen);
    CHECK(basira_reid_table_dump(path, k, mem, &err) != BASIRA_OK);
    fclose(mem);
    free(text);
    free(raw);
    CHECK(basira_path_inside(path, tmpdir) == 1);
    CHECK(basira_path_inside("/etc/x.table", tmpdir) == 0);
    basira_deid_key_free(k);
    basira_deid_key_free(other);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    RUN(test_profile_table);
    RUN(test_pseudonyms);
    RUN(test_secret_file);
    RUN(test_malformed);
    RUN(test_reid_table);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd))
        return 1;
    return test_summary();
}
