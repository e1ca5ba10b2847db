/*
 * raw_db.h - for the store's tests: open the database behind the store's back,
 * as an insider holding the key file would (SQLCipher with the raw key).
 */
#ifndef BASIRA_TEST_RAW_DB_H
#define BASIRA_TEST_RAW_DB_H

#include <sodium.h>
#include <sqlcipher/sqlite3.h>
#include <stdio.h>

static inline sqlite3 *raw_open(const char *dir, const char *key_file)
{
    unsigned char buf[4096], key[32];
    FILE *f = fopen(key_file, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    crypto_generichash(key, 32, buf, n, NULL, 0);
    char hex[65], pragma[128], path[700];
    sodium_bin2hex(hex, sizeof hex, key, 32);
    snprintf(pragma, sizeof pragma, "PRAGMA key = \"x'%s'\"", hex);
    snprintf(path, sizeof path, "%s/basira.db", dir);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    sqlite3_exec(db, pragma, NULL, NULL, NULL);
    return db;
}

#endif
