/*
 * checkpoint.c - the audit trail's head, written outside the database.
 *
 * Inside the database the chain catches an edited, inserted or deleted entry, but
 * someone holding the database key can delete the oldest entries and move the
 * stored anchor, or cut the newest ones and move the head, and the chain still
 * verifies. Two defences close that:
 *
 *   - every purge records the anchor it sets in its own (chained) entry, so an
 *     anchor that differs from the one the latest purge recorded - or an anchor
 *     with no purge at all - is tampering;
 *   - checkpoints: the head (id and hash) and the anchor, appended as one line to
 *     DIR/audit-checkpoints.jsonl with a keyed BLAKE2b MAC, periodically by the
 *     node, after each purge and after each successful `basira audit verify`.
 *     Verification compares the trail with the latest checkpoint: a head behind
 *     it (entries cut from the end), an entry that no longer has the recorded
 *     hash (a rewritten trail), or an anchor that moved back is tampering.
 *
 * The MAC key is derived from the database key: it stops a checkpoint being
 * edited or brought from another node by someone without the key. Against
 * someone with the key and write access to the data folder, what protects is a
 * copy elsewhere: the node can also send each checkpoint to syslog (serve
 * --audit-syslog), and the file is append-only text meant to be copied off the
 * machine.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECKPOINT_FILE "audit-checkpoints.jsonl"
#define CHECKPOINT_MAX_BYTES ((long)64 << 20)

void store_checkpoint_key(basira_store *st, const unsigned char db_key[32])
{
    static const char ctx[] = "basira audit checkpoint v1";
    crypto_generichash(st->checkpoint_key, sizeof st->checkpoint_key, (const unsigned char *)ctx,
                       sizeof ctx - 1, db_key, 32);
}

static void mac_of(const basira_store *st, const basira_audit_checkpoint *c, char out[65])
{
    char text[400];
    int n = snprintf(text, sizeof text, "v1|%lld|%" PRId64 "|%s|%" PRId64 "|%s", (long long)c->at,
                     c->head_id, c->head_hash, c->anchor_id, c->anchor_hash);
    unsigned char mac[32];
    crypto_generichash(mac, sizeof mac, (const unsigned char *)text,
                       (unsigned long long)(n > 0 ? n : 0), st->checkpoint_key,
                       sizeof st->checkpoint_key);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static void checkpoint_path(const basira_store *st, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", st->dir, CHECKPOINT_FILE);
}

basira_code store_checkpoint_append(basira_store *st, const basira_audit_checkpoint *c,
                                    basira_error *err)
{
    char path[4200], mac[65], line[600];
    checkpoint_path(st, path, sizeof path);
    mac_of(st, c, mac);
    int n = snprintf(line, sizeof line,
                     "{\"v\":1,\"at\":%lld,\"head_id\":%" PRId64 ",\"head_hash\":\"%s\","
                     "\"anchor_id\":%" PRId64 ",\"anchor_hash\":\"%s\",\"mac\":\"%s\"}\n",
                     (long long)c->at, c->head_id, c->head_hash, c->anchor_id, c->anchor_hash, mac);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write the audit checkpoint %s: %s"),
                                 path, strerror(errno));
    ssize_t w = write(fd, line, (size_t)n);
    int e = w == n ? 0 : (w < 0 ? errno : ENOSPC);
    if (!e && fsync(fd) != 0)
        e = errno;
    close(fd);
    if (e)
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot write the audit checkpoint %s: %s"),
                                 path, strerror(e));
    return BASIRA_OK;
}

basira_code store_checkpoint_latest(basira_store *st, basira_audit_checkpoint *out, int *found,
                                    basira_error *err)
{
    char path[4200];
    checkpoint_path(st, path, sizeof path);
    *found = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return BASIRA_OK;
        return basira_error_setm(err, BASIRA_E_IO, N_("cannot read %s: %s"), path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || sb.st_size > CHECKPOINT_MAX_BYTES) {
        fclose(f);
        return basira_error_setm(err, BASIRA_E_LIMIT, N_("%s is too large"), path);
    }
    char line[1024];
    long lineno = 0;
    basira_code rc = BASIRA_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
        basira_audit_checkpoint c;
        memset(&c, 0, sizeof c);
        const char *hh = json_string_value(json_object_get(j, "head_hash"));
        const char *ah = json_string_value(json_object_get(j, "anchor_hash"));
        const char *mac = json_string_value(json_object_get(j, "mac"));
        char want[65];
        int ok = j && hh && ah && mac && strlen(hh) == 64 && strlen(ah) == 64 &&
                 json_is_integer(json_object_get(j, "head_id")) &&
                 json_is_integer(json_object_get(j, "anchor_id")) &&
                 json_is_integer(json_object_get(j, "at"));
        if (ok) {
            c.at = (int64_t)json_integer_value(json_object_get(j, "at"));
            c.head_id = (int64_t)json_integer_value(json_object_get(j, "head_id"));
            c.anchor_id = (int64_t)json_integer_value(json_object_get(j, "anchor_id"));
            snprintf(c.head_hash, sizeof c.head_hash, "%s", hh);
            snprintf(c.anchor_hash, sizeof c.anchor_hash, "%s", ah);
            mac_of(st, &c, want);
            ok = strlen(mac) == 64 && sodium_memcmp(mac, want, 64) == 0;
        }
        json_decref(j);
        if (!ok)
            rc = basira_error_setm(err, BASIRA_E_TAMPERED,
                                   N_("the audit checkpoint file %s was altered (line %ld does not "
                                      "carry a valid signature)"),
                                   path, lineno);
        else if (!*found || c.head_id >= out->head_id) {
            *out = c;
            *found = 1;
        }
    }
    fclose(f);
    return rc;
}
