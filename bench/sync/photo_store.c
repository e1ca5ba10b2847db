/*
 * photo_store.c - where the hub keeps photos: bytea rows in PostgreSQL against
 * a content-addressed folder whose hashes PostgreSQL holds (bench/sync/run_photos).
 *
 * Each way stores N photos of SIZE random (incompressible, like JPEG) bytes, one
 * durable transaction per photo as the hub does per batch, then reads them all
 * back. Prints one JSON line per way: photos/s stored, reads/s, bytes on disk.
 * Usage: photo_store CONNINFO FOLDER N SIZE
 */
#include <fcntl.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void must(PGresult *r, PGconn *c)
{
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        fprintf(stderr, "photo_store: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

int main(int argc, char **argv)
{
    if (argc != 5 || sodium_init() < 0)
        return 2;
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK)
        return fprintf(stderr, "photo_store: %s", PQerrorMessage(c)), 1;
    const char *dir = argv[2];
    int n = atoi(argv[3]);
    size_t size = (size_t)atol(argv[4]);
    unsigned char *photo = malloc(size);
    char(*sha)[65] = calloc((size_t)n, 65);
    must(PQexec(c, "DROP TABLE IF EXISTS bp_bytea, bp_files;"
                   "CREATE TABLE bp_bytea(sha256 text PRIMARY KEY, data bytea NOT NULL);"
                   "ALTER TABLE bp_bytea ALTER COLUMN data SET STORAGE EXTERNAL;"
                   "CREATE TABLE bp_files(sha256 text PRIMARY KEY, bytes int NOT NULL)"),
         c);
    for (int way = 0; way < 2; way++) {
        double t0 = now();
        for (int i = 0; i < n; i++) {
            randombytes_buf(photo, size);
            unsigned char h[32];
            crypto_hash_sha256(h, photo, size);
            sodium_bin2hex(sha[i], 65, h, 32);
            if (way == 0) {
                const char *v[] = {sha[i], (const char *)photo};
                int l[] = {0, (int)size}, f[] = {0, 1};
                must(PQexecParams(c, "INSERT INTO bp_bytea VALUES($1, $2)", 2, NULL, v, l, f, 0),
                     c);
            } else {
                /* Write, fsync, rename into place, fsync the folder; then the row. */
                char tmp[4200], path[4200], num[24];
                snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, sha[i]);
                snprintf(path, sizeof path, "%s/%s", dir, sha[i]);
                int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                if (fd < 0 || write(fd, photo, size) != (ssize_t)size || fsync(fd) || close(fd) ||
                    rename(tmp, path))
                    return perror("photo_store"), 1;
                int dfd = open(dir, O_RDONLY | O_DIRECTORY);
                fsync(dfd);
                close(dfd);
                snprintf(num, sizeof num, "%zu", size);
                const char *v[] = {sha[i], num};
                must(PQexecParams(c, "INSERT INTO bp_files VALUES($1, $2::int)", 2, NULL, v, NULL,
                                  NULL, 0),
                     c);
            }
        }
        double t_store = now() - t0;
        t0 = now();
        size_t got = 0;
        for (int i = 0; i < n; i++) {
            const char *v[] = {sha[i]};
            if (way == 0) {
                PGresult *r = PQexecParams(c, "SELECT data FROM bp_bytea WHERE sha256 = $1", 1,
                                           NULL, v, NULL, NULL, 1);
                got += (size_t)PQgetlength(r, 0, 0);
                PQclear(r);
            } else {
                PGresult *r = PQexecParams(c, "SELECT bytes FROM bp_files WHERE sha256 = $1", 1,
                                           NULL, v, NULL, NULL, 0);
                PQclear(r);
                char path[4200];
                snprintf(path, sizeof path, "%s/%s", dir, sha[i]);
                FILE *f = fopen(path, "rb");
                got += fread(photo, 1, size, f);
                fclose(f);
            }
        }
        double t_read = now() - t0;
        PGresult *r = PQexec(c, way == 0 ? "SELECT pg_total_relation_size('bp_bytea')"
                                         : "SELECT pg_total_relation_size('bp_files')");
        long long disk = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (way == 1)
            disk += (long long)n * (long long)((size + 4095) / 4096 * 4096);
        printf("{\"bench\": \"hub_photo_store\", \"way\": \"%s\", \"photos\": %d, \"bytes\": %zu, "
               "\"stored_per_s\": %.1f, \"read_per_s\": %.1f, \"disk_bytes_per_photo\": %lld, "
               "\"read_ok\": %s}\n",
               way == 0 ? "postgresql_bytea" : "content_addressed_folder", n, size, n / t_store,
               n / t_read, disk / n, got == (size_t)n * size ? "true" : "false");
    }
    must(PQexec(c, "DROP TABLE bp_bytea, bp_files"), c);
    PQfinish(c);
    free(photo);
    free(sha);
    return 0;
}
