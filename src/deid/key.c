/*
 * key.c - the national secret and what is derived from it: pseudonyms, UIDs, date shifts.
 *
 * Everything is HMAC-SHA-256 (libsodium) under the secret, with a distinct label per use
 * ("basira/patient/v1", "basira/uid/v1", ...) so that a pseudonym can never be confused
 * with a UID or a date shift derived from the same identifier. Without the secret nobody
 * can compute a pseudonym from a known patient identifier (a plain hash could be reversed
 * by trying every identifier); with it, every hospital computes the same one.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/deid.h"
#include "core/i18n.h"

struct basira_deid_key {
    size_t len;
    unsigned char bytes[BASIRA_DEID_SECRET_MAX];
};

basira_code basira_deid_key_new(const void *secret, size_t len, basira_deid_key **out,
                                basira_error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return basira_error_set(err, BASIRA_E_INTERNAL, NULL);
    if (len < BASIRA_DEID_SECRET_MIN || len > BASIRA_DEID_SECRET_MAX)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the secret must hold %d to %d bytes (got %zu)"),
                                BASIRA_DEID_SECRET_MIN, BASIRA_DEID_SECRET_MAX, len);
    basira_deid_key *k = calloc(1, sizeof *k);
    if (!k)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    memcpy(k->bytes, secret, len);
    k->len = len;
    *out = k;
    return BASIRA_OK;
}

basira_code basira_deid_key_load(const char *path, basira_deid_key **out, basira_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return basira_error_set(err, errno == ENOENT ? BASIRA_E_NOT_FOUND : BASIRA_E_IO,
                                _("cannot read the secret file %s: %s"), path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return basira_error_set(err, BASIRA_E_IO, _("the secret file %s is not a regular file"),
                                path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return basira_error_set(err, BASIRA_E_FORBIDDEN,
                                _("the secret file %s can be read by other users: make it "
                                  "private (chmod 600)"),
                                path);
    }
    unsigned char buf[BASIRA_DEID_SECRET_MAX + 2];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0)
        return basira_error_set(err, BASIRA_E_IO, _("cannot read the secret file %s: %s"), path,
                                strerror(errno));
    size_t len = (size_t)n;
    if (len && buf[len - 1] == '\n')
        len--;
    if (len && buf[len - 1] == '\r')
        len--;
    basira_code rc = basira_deid_key_new(buf, len, out, err);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

void basira_deid_key_free(basira_deid_key *k)
{
    if (!k)
        return;
    sodium_memzero(k, sizeof *k);
    free(k);
}

/* HMAC-SHA-256(secret, label 0 msg). */
static void keyed(const basira_deid_key *k, const char *label, const char *msg, size_t len,
                  unsigned char mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, k->bytes, k->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, strlen(label) + 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
}

/* The identifier as compared: leading/trailing spaces dropped, ASCII upper case. */
static basira_code normalise_id(const char *id, char *out, size_t size, basira_error *err)
{
    while (*id == ' ')
        id++;
    size_t n = strlen(id);
    while (n && id[n - 1] == ' ')
        n--;
    if (n == 0)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the patient identifier is empty"));
    if (n >= size)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the patient identifier is longer than %zu bytes"), size - 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (char)toupper((unsigned char)id[i]);
    out[n] = 0;
    return BASIRA_OK;
}

basira_code basira_pseudonym(const basira_deid_key *k, const char *patient_id,
                             char out[BASIRA_PSEUDONYM_MAX], basira_error *err)
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; /* Crockford: no I L O U */
    char id[256];
    basira_code rc = normalise_id(patient_id ? patient_id : "", id, sizeof id, err);
    if (rc)
        return rc;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    keyed(k, "basira/patient/v1", id, strlen(id), mac);
    /* 20 digits of 5 bits = the first 100 bits of the MAC. */
    memcpy(out, "BSR", 3);
    for (int i = 0; i < 20; i++) {
        int bit = i * 5, v = 0;
        for (int b = 0; b < 5; b++, bit++)
            v = (v << 1) | ((mac[bit / 8] >> (7 - bit % 8)) & 1);
        out[3 + i] = b32[v];
    }
    out[23] = 0;
    sodium_memzero(id, sizeof id);
    return BASIRA_OK;
}

basira_code basira_deid_uid(const basira_deid_key *k, const char *uid, char out[BASIRA_UID_MAX],
                            basira_error *err)
{
    size_t len = uid ? strlen(uid) : 0;
    while (len && (uid[len - 1] == ' ' || uid[len - 1] == 0))
        len--;
    if (len == 0 || len > 64)
        return basira_error_set(err, BASIRA_E_FORMAT, _("invalid UID '%s'"), uid ? uid : "");
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    keyed(k, "basira/uid/v1", uid, len, mac);
    /* The first 16 bytes as a big-endian 128-bit integer, in decimal (PS3.5 B.2, 2.25). */
    uint32_t w[4];
    for (int i = 0; i < 4; i++)
        w[i] = (uint32_t)mac[4 * i] << 24 | (uint32_t)mac[4 * i + 1] << 16 |
               (uint32_t)mac[4 * i + 2] << 8 | mac[4 * i + 3];
    char digits[48];
    int nd = 0;
    do {
        uint64_t rem = 0;
        for (int i = 0; i < 4; i++) {
            uint64_t cur = rem << 32 | w[i];
            w[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
        }
        digits[nd++] = (char)('0' + rem);
    } while (w[0] | w[1] | w[2] | w[3]);
    memcpy(out, "2.25.", 5);
    for (int i = 0; i < nd; i++)
        out[5 + i] = digits[nd - 1 - i];
    out[5 + nd] = 0;
    return BASIRA_OK;
}

int basira_deid_date_shift(const basira_deid_key *k, const char *patient_id)
{
    char id[256];
    if (normalise_id(patient_id ? patient_id : "", id, sizeof id, NULL))
        strcpy(id, "");
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    keyed(k, "basira/date-shift/v1", id, strlen(id), mac);
    uint32_t v = (uint32_t)mac[0] << 24 | (uint32_t)mac[1] << 16 | (uint32_t)mac[2] << 8 | mac[3];
    return 1 + (int)(v % 3652u);
}

/* Key of the re-identification table (reid.c): independent of every HMAC use above. */
basira_code deid_reid_key(const basira_deid_key *k, unsigned char out[32]);
basira_code deid_reid_key(const basira_deid_key *k, unsigned char out[32])
{
    static const char label[] = "basira/reid-table/v1";
    unsigned char key[crypto_generichash_KEYBYTES_MAX];
    /* BLAKE2b keys are at most 64 bytes: hash longer secrets down first. */
    crypto_generichash(key, sizeof key, k->bytes, k->len, NULL, 0);
    int r = crypto_generichash(out, 32, (const unsigned char *)label, sizeof label - 1, key,
                               sizeof key);
    sodium_memzero(key, sizeof key);
    return r ? BASIRA_E_INTERNAL : BASIRA_OK;
}
