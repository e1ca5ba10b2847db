/*
 * faultshim.c - LD_PRELOAD library that makes the Nth allocation or the Nth
 * write, fsync or rename of a process fail, as SQLite's and curl's test suites
 * do, to prove that every failure point gives a clear error and loses nothing.
 *
 * Nothing fails until the program arms the shim (basira_fault_arm, looked up
 * with dlsym so that the program runs unchanged without it). Then calls are
 * counted, and the one numbered BASIRA_FAULT_N fails (allocation: NULL with
 * ENOMEM; I/O: -1 with errno BASIRA_FAULT_ERRNO, ENOSPC by default), as do, with
 * BASIRA_FAULT_STICKY=1, all later ones (a disk that stays full). What is counted
 * is chosen by BASIRA_FAULT_KIND: "alloc" (malloc, calloc, realloc) or "io"
 * (write, pwrite, pwrite64, writev, fsync, fdatasync, ftruncate, rename).
 * basira_fault_count() tells how many calls were counted since arming, so that
 * a driver knows when N has gone past the last fault point. "disk" is a disk with
 * BASIRA_FAULT_FREE bytes left: writes past them fail with ENOSPC, unlink gives a
 * file's bytes back, basira_fault_add_free() frees more.
 *
 * In "disk" mode only writes to regular files count (a full disk does not stop a
 * pipe or a socket).
 *
 * A program that does not arm the shim itself (the real `basira serve`) is driven
 * from outside through a control file: with BASIRA_FAULT_CONTROL=PATH a thread of
 * the shim reads PATH every 50 ms, applies it and deletes it (so the driver knows
 * it was applied): "disk N" arms the disk kind with N bytes left, "free N" gives N
 * more bytes, "off" disarms.
 *
 * Allocations made from inside libcrypto are not counted: SQLCipher 4.5's OpenSSL
 * provider does not check the HMAC context it allocates for every page, and
 * crashes (SIGSEGV in SHA1_Update) when that allocation fails - found by this
 * shim, outside Basira's code; BASIRA_FAULT_LIBCRYPTO=1 counts them anyway.
 * BASIRA_FAULT_EXEMPT=libdnnl.so,libstdc++.so,libgomp.so (names, comma-separated)
 * leaves out those libraries' allocations as well: oneDNN throws std::bad_alloc when
 * malloc fails, and its C API lets the exception end the process; libgomp aborts.
 *
 * Test code only: the counters are process-wide state by nature.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <link.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

static atomic_int armed;
static atomic_long free_bytes;
static int kind_disk;
static atomic_long counted;
static long fail_at = -1;
static int kind_alloc, kind_io, sticky, fault_errno = ENOSPC;
/* Libraries whose allocations are not counted, and where they are mapped. */
#define EXEMPT_MAX 8
static char exempt_name[EXEMPT_MAX][64];
static uintptr_t exempt_lo[EXEMPT_MAX], exempt_hi[EXEMPT_MAX];
static int nexempt;

static int find_exempt(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int e = 0; e < nexempt; e++) {
        if (!info->dlpi_name || !strstr(info->dlpi_name, exempt_name[e]))
            continue;
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            if (ph->p_type != PT_LOAD)
                continue;
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (!exempt_lo[e] || lo < exempt_lo[e])
                exempt_lo[e] = lo;
            if (hi > exempt_hi[e])
                exempt_hi[e] = hi;
        }
    }
    return 0;
}

/* libcrypto (unless BASIRA_FAULT_LIBCRYPTO=1), then each name of BASIRA_FAULT_EXEMPT. */
static void set_exempt(void)
{
    nexempt = 0;
    memset(exempt_lo, 0, sizeof exempt_lo);
    memset(exempt_hi, 0, sizeof exempt_hi);
    const char *c = getenv("BASIRA_FAULT_LIBCRYPTO");
    if (!(c && !strcmp(c, "1")))
        snprintf(exempt_name[nexempt++], sizeof exempt_name[0], "libcrypto.so");
    const char *x = getenv("BASIRA_FAULT_EXEMPT");
    while (x && *x && nexempt < EXEMPT_MAX) {
        size_t n = strcspn(x, ",");
        if (n && n < sizeof exempt_name[0]) {
            memcpy(exempt_name[nexempt], x, n);
            exempt_name[nexempt++][n] = 0;
        }
        x += n + (x[n] == ',');
    }
    dl_iterate_phdr(find_exempt, NULL);
}

static int exempt(const void *caller)
{
    for (int e = 0; e < nexempt; e++)
        if ((uintptr_t)caller >= exempt_lo[e] && (uintptr_t)caller < exempt_hi[e])
            return 1;
    return 0;
}

void basira_fault_arm(int on);
long basira_fault_count(void);
void basira_fault_add_free(long bytes);

void basira_fault_add_free(long bytes)
{
    atomic_fetch_add(&free_bytes, bytes);
}

/* The "disk" kind: 1 when n more bytes to fd do not fit (the write must fail). */
static int no_room(int fd, size_t n)
{
    if (!atomic_load(&armed) || !kind_disk)
        return 0;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    long left = atomic_load(&free_bytes);
    if ((long)n > left)
        return 1;
    atomic_fetch_sub(&free_bytes, (long)n);
    return 0;
}

void basira_fault_arm(int on)
{
    if (on) {
        const char *n = getenv("BASIRA_FAULT_N"), *k = getenv("BASIRA_FAULT_KIND");
        const char *e = getenv("BASIRA_FAULT_ERRNO"), *s = getenv("BASIRA_FAULT_STICKY");
        fail_at = n ? atol(n) : -1;
        kind_alloc = k && !strcmp(k, "alloc");
        kind_io = k && !strcmp(k, "io");
        kind_disk = k && !strcmp(k, "disk");
        const char *fr = getenv("BASIRA_FAULT_FREE");
        atomic_store(&free_bytes, fr ? atol(fr) : 0);
        sticky = s && !strcmp(s, "1");
        fault_errno = e && !strcmp(e, "EIO") ? EIO : ENOSPC;
        set_exempt();
        atomic_store(&counted, 0);
    }
    atomic_store(&armed, on);
}

long basira_fault_count(void)
{
    return atomic_load(&counted);
}

/* 1 when this call (from caller) must fail. */
static int hit(int is_alloc, const void *caller)
{
    if (!atomic_load(&armed) || (is_alloc ? !kind_alloc : !kind_io))
        return 0;
    if (is_alloc && exempt(caller))
        return 0;
    long n = atomic_fetch_add(&counted, 1) + 1;
    return fail_at > 0 && (n == fail_at || (sticky && n > fail_at));
}

void *malloc(size_t n)
{
    if (hit(1, __builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (hit(1, __builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    if (hit(1, __builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, n);
}

#define NEXT(name, type) ((type)dlsym(RTLD_NEXT, name))
/* The I/O wrappers: fail when this is the call to fail, else call the real one. */
#define IO_FAULT()                                                                                 \
    do {                                                                                           \
        if (hit(0, NULL)) {                                                                        \
            errno = fault_errno;                                                                   \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

ssize_t write(int fd, const void *b, size_t n)
{
    if (no_room(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    IO_FAULT();
    return NEXT("write", ssize_t(*)(int, const void *, size_t))(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (no_room(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    IO_FAULT();
    return NEXT("pwrite", ssize_t(*)(int, const void *, size_t, off_t))(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
{
    if (no_room(fd, n)) {
        errno = ENOSPC;
        return -1;
    }
    IO_FAULT();
    return NEXT("pwrite64", ssize_t(*)(int, const void *, size_t, off_t))(fd, b, n, off);
}

ssize_t writev(int fd, const struct iovec *v, int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += v[i].iov_len;
    if (no_room(fd, total)) {
        errno = ENOSPC;
        return -1;
    }
    IO_FAULT();
    return NEXT("writev", ssize_t(*)(int, const struct iovec *, int))(fd, v, n);
}

int fsync(int fd)
{
    IO_FAULT();
    return NEXT("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    IO_FAULT();
    return NEXT("fdatasync", int (*)(int))(fd);
}

int ftruncate(int fd, off_t len)
{
    IO_FAULT();
    return NEXT("ftruncate", int (*)(int, off_t))(fd, len);
}

int ftruncate64(int fd, off_t len)
{
    IO_FAULT();
    return NEXT("ftruncate64", int (*)(int, off_t))(fd, len);
}

int rename(const char *a, const char *b)
{
    IO_FAULT();
    return NEXT("rename", int (*)(const char *, const char *))(a, b);
}

/* The control file's commands (see the top of this file). */
static void apply_control(const char *cmd)
{
    long v = 0;
    if (sscanf(cmd, "disk %ld", &v) == 1) {
        atomic_store(&armed, 0);
        kind_alloc = kind_io = 0;
        kind_disk = 1;
        atomic_store(&free_bytes, v);
        atomic_store(&armed, 1);
    } else if (sscanf(cmd, "free %ld", &v) == 1) {
        atomic_fetch_add(&free_bytes, v);
    } else if (!strncmp(cmd, "off", 3)) {
        atomic_store(&armed, 0);
    }
}

static void *control_thread(void *arg)
{
    const char *path = arg;
    typedef ssize_t (*read_fn)(int, void *, size_t);
    typedef int (*unlink_fn)(const char *);
    read_fn rd = NEXT("read", read_fn);
    unlink_fn rm = NEXT("unlink", unlink_fn);
    for (;;) {
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char buf[128];
        ssize_t n = rd(fd, buf, sizeof buf - 1);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        apply_control(buf);
        rm(path);
    }
    return NULL;
}

__attribute__((constructor)) static void start_control(void)
{
    const char *path = getenv("BASIRA_FAULT_CONTROL");
    if (!path || !*path)
        return;
    /* The thread takes no signal: the program's own handling (a signalfd) must get them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t th;
    if (pthread_create(&th, NULL, control_thread, (void *)path) == 0)
        pthread_detach(th);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

int unlink(const char *path)
{
    struct stat sb;
    int had = atomic_load(&armed) && kind_disk && stat(path, &sb) == 0;
    int r = NEXT("unlink", int (*)(const char *))(path);
    if (r == 0 && had)
        atomic_fetch_add(&free_bytes, (long)sb.st_size);
    return r;
}
