/*
 * space.c - a full disk: reads and sign-in keep working, writes get a clear
 * "disk full", nothing acknowledged is lost.
 *
 * Every read of patient data and every sign-in writes an audit entry, so on a
 * truly full disk they would fail too (the node answered 500 to everything).
 * The store keeps DIR/space.reserve, RESERVE_BYTES of real blocks. The first
 * SQLITE_FULL (the write that found the disk full fails, and says so) switches
 * the store to "disk full" mode and deletes the reserve: the space it frees is
 * what the audit entries of reads, sign-ins and sessions use from then on. In
 * that mode the operations that add data (cases, photos, decisions, accounts)
 * are refused before they start (BASIRA_E_NO_SPACE, HTTP 507); each refusal
 * first tries to make the reserve again, and when that succeeds the disk has
 * room again and the store leaves the mode. A purge is allowed (it frees
 * space). The rule for read audits is therefore: always written, from the
 * reserve; none is buffered in memory, so none can be lost in a crash.
 */
#include "core/i18n.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RESERVE_FILE "space.reserve"
#define RESERVE_BYTES ((size_t)16 << 20)

static void reserve_path(const basira_store *st, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", st->dir, RESERVE_FILE);
}

/* Make the reserve (real blocks: zeros written, fsync'd); 0 on success. */
static int make_reserve(basira_store *st)
{
    char path[4200];
    reserve_path(st, path, sizeof path);
    if (access(path, F_OK) == 0)
        return 0;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    static const char zeros[65536];
    int ok = 1;
    for (size_t done = 0; ok && done < RESERVE_BYTES; done += sizeof zeros)
        ok = write(fd, zeros, sizeof zeros) == (ssize_t)sizeof zeros;
    ok = ok && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

void store_space_init(basira_store *st)
{
    if (make_reserve(st) != 0)
        atomic_store(&st->disk_full, 1);
}

void store_space_note_full(basira_store *st)
{
    if (atomic_exchange(&st->disk_full, 1))
        return;
    char path[4200];
    reserve_path(st, path, sizeof path);
    unlink(path);
}

basira_code store_space_for_write(basira_store *st, basira_error *err)
{
    if (!atomic_load(&st->disk_full))
        return BASIRA_OK;
    /* Room again? Making the reserve is the test; then writes are welcome. */
    pthread_mutex_lock(&st->lock);
    int room = make_reserve(st) == 0;
    pthread_mutex_unlock(&st->lock);
    if (room) {
        atomic_store(&st->disk_full, 0);
        return BASIRA_OK;
    }
    return basira_error_setm(err, BASIRA_E_NO_SPACE,
                             N_("the node's disk is full: nothing was recorded; reading cases "
                                "still works; ask the administrator to free space, then send it "
                                "again"));
}

int basira_store_disk_full(basira_store *st)
{
    return st ? atomic_load(&st->disk_full) : 0;
}
