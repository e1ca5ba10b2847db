/* test_fs.c - core/fs: capped reads, safe joins, atomic and durable writes. */
#include "basira/fs.h"
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void put(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
}

/* Files in dir whose name starts with prefix (temporary files left behind). */
static int count_prefix(const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_read_caps(void)
{
    basira_error err;
    char p[512];
    unsigned char *data = NULL;
    size_t len = 0;
    put("ten.txt", "0123456789");
    snprintf(p, sizeof p, "%s/ten.txt", dir);
    CHECK_EQ_INT(basira_fs_read(p, 10, &data, &len, &err), BASIRA_OK);
    CHECK_EQ_INT(len, 10);
    CHECK(data && !memcmp(data, "0123456789", 11)); /* NUL-terminated */
    free(data);
    CHECK_EQ_INT(basira_fs_read(p, 9, &data, &len, &err), BASIRA_E_LIMIT);
    CHECK(data == NULL);
    put("empty.txt", "");
    snprintf(p, sizeof p, "%s/empty.txt", dir);
    CHECK_EQ_INT(basira_fs_read(p, 10, &data, &len, &err), BASIRA_OK);
    CHECK_EQ_INT(len, 0);
    free(data);
    snprintf(p, sizeof p, "%s/absent.txt", dir);
    CHECK_EQ_INT(basira_fs_read(p, 10, &data, &len, &err), BASIRA_E_NOT_FOUND);
    CHECK(strstr(err.message, "absent.txt") != NULL);
    /* A folder is refused; a device is read only up to the cap (/dev/zero never ends). */
    CHECK_EQ_INT(basira_fs_read(dir, 10, &data, &len, &err), BASIRA_E_IO);
    CHECK_EQ_INT(basira_fs_read("/dev/zero", 100000, &data, &len, &err), BASIRA_E_LIMIT);
    CHECK(data == NULL);
    CHECK_EQ_INT(basira_fs_read("/dev/null", 10, &data, &len, &err), BASIRA_OK);
    CHECK_EQ_INT(len, 0);
    free(data);
    /* A FIFO nobody writes to does not hang: it reads as empty. */
    snprintf(p, sizeof p, "%s/fifo", dir);
    CHECK_EQ_INT(mkfifo(p, 0600), 0);
    CHECK_EQ_INT(basira_fs_read(p, 10, &data, &len, &err), BASIRA_OK);
    CHECK_EQ_INT(len, 0);
    free(data);
}

static void test_join(void)
{
    basira_error err;
    char out[64];
    static const char *const good[] = {"a.jpg", "a/b.jpg", "x..y.jpg", ".hidden", "a/./b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_MSG(basira_fs_join("/d", good[i], out, sizeof out, &err) == BASIRA_OK, "%s", good[i]);
    CHECK_STR(out, "/d/a/./b");
    static const char *const bad[] = {"",     "/etc/passwd", "..",       "../x",  "a/../../x",
                                      "a/..", "a\\..\\b",    "a\nb.jpg", "a/../b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(basira_fs_join("/d", bad[i], out, sizeof out, &err) == BASIRA_E_FORMAT, "'%s'",
                  bad[i]);
    char longname[100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_EQ_INT(basira_fs_join("/d", longname, out, sizeof out, &err), BASIRA_E_INVALID_ARGUMENT);
}

static void test_find_image(void)
{
    basira_error err;
    char out[512];
    put("ISIC_1.jpg", "x");
    put("ISIC_2.png", "x");
    CHECK_EQ_INT(basira_fs_find_image(dir, "ISIC_1", out, sizeof out, &err), BASIRA_OK);
    CHECK(strstr(out, "/ISIC_1.jpg") != NULL);
    CHECK_EQ_INT(basira_fs_find_image(dir, "ISIC_2", out, sizeof out, &err), BASIRA_OK);
    CHECK(strstr(out, "/ISIC_2.png") != NULL);
    CHECK_EQ_INT(basira_fs_find_image(dir, "ISIC_1.jpg", out, sizeof out, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_fs_find_image(dir, "ISIC_3", out, sizeof out, &err), BASIRA_E_NOT_FOUND);
    CHECK_EQ_INT(basira_fs_find_image(dir, "", out, sizeof out, &err), BASIRA_E_FORMAT);
    CHECK_EQ_INT(basira_fs_find_image(dir, "../ISIC_1", out, sizeof out, &err), BASIRA_E_FORMAT);
}

static void test_atomic_write(void)
{
    basira_error err;
    char p[512];
    unsigned char *data = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/salt.json", dir);
    CHECK_EQ_INT(basira_fs_write_atomic(p, "first", 5, 0600, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_fs_write_atomic(p, "second", 6, 0600, &err), BASIRA_OK);
    CHECK_EQ_INT(basira_fs_read(p, 100, &data, &len, &err), BASIRA_OK);
    CHECK(len == 6 && !memcmp(data, "second", 6));
    free(data);
    struct stat st;
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_EQ_INT(count_prefix("salt.json."), 0); /* no temporary file left */

    /* A writer that gives up leaves the old contents, and no temporary file. */
    basira_fs_atomic a;
    CHECK_EQ_INT(basira_fs_atomic_open(p, 0644, &a, &err), BASIRA_OK);
    fputs("half-written", a.f);
    basira_fs_atomic_abort(&a);
    CHECK_EQ_INT(basira_fs_read(p, 100, &data, &len, &err), BASIRA_OK);
    CHECK(len == 6 && !memcmp(data, "second", 6));
    free(data);
    CHECK_EQ_INT(count_prefix("salt.json."), 0);

    /* Streaming writer; the new mode applies. */
    CHECK_EQ_INT(basira_fs_atomic_open(p, 0644, &a, &err), BASIRA_OK);
    fputs("third", a.f);
    CHECK_EQ_INT(basira_fs_atomic_commit(&a, &err), BASIRA_OK);
    basira_fs_atomic_abort(&a); /* harmless after commit */
    CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644 && st.st_size == 5);

    /* A folder that does not exist: an error naming the file, nothing created. */
    snprintf(p, sizeof p, "%s/no-such-folder/x.json", dir);
    CHECK_EQ_INT(basira_fs_write_atomic(p, "x", 1, 0600, &err), BASIRA_E_IO);
    CHECK(strstr(err.message, "x.json") != NULL);
    /* The target is a folder: the rename fails, the temporary file is removed. */
    snprintf(p, sizeof p, "%s/sub", dir);
    CHECK_EQ_INT(mkdir(p, 0700), 0);
    put("sub/keep", "k");
    CHECK_EQ_INT(basira_fs_write_atomic(p, "x", 1, 0600, &err), BASIRA_E_IO);
    CHECK_EQ_INT(count_prefix("sub."), 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/basira-fs-test-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    RUN(test_read_caps);
    RUN(test_join);
    RUN(test_find_image);
    RUN(test_atomic_write);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
