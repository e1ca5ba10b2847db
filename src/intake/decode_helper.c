/*
 * decode_helper.c - HEIC/AVIF photos are decoded in a separate, memory-limited
 * process (the basira-decode program, decode_main.c).
 *
 * Why: libheif hands the HEVC (libde265) or AV1 (dav1d, aom) bitstream to its
 * decoder, which allocates frames by the size written in the bitstream (HEVC
 * SPS, AV1 sequence header), not by the `ispe` box that libvips reports and
 * that intake's pixel limit and decode budget check. A 5 KB file whose ispe says
 * 100 x 100 can make the decoder allocate for 4096 x 4096 (435 MB) or 32768 x
 * 32768 (gigabytes); libheif 1.15 has no way to cap that. libvips notices the
 * lie ("bad image dimensions on decode") only after the frame was allocated.
 * So the decode happens in a child process under RLIMIT_DATA and RLIMIT_CPU:
 * the worst a hostile file can do is make that child fail.
 *
 * The child is started with posix_spawn (the node is threaded: no fork), talks
 * through one socket (send() with MSG_NOSIGNAL: a child that dies early cannot
 * kill the node with SIGPIPE), and is killed and reaped when the deadline
 * passes. Everything it answers is checked: the magic, the dimensions against
 * the header's and against max_side, the exact number of pixel bytes, its exit
 * status. Fail closed: anything unexpected is an error, never an image.
 */
/* posix_spawn_file_actions_addclosefrom_np needs _GNU_SOURCE (set for the whole build). */
#include "core/i18n.h"
#include "intake_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char intake_in_process[] = "(in process)";

static basira_code no_helper(basira_error *err)
{
    return basira_error_setm(err, BASIRA_E_UNSUPPORTED,
                             N_("HEIC and AVIF photos cannot be read on this node (its decoding "
                                "program is missing); send the photo as a JPEG"));
}

static basira_code helper_failed(basira_error *err)
{
    return basira_error_setm(err, BASIRA_E_CORRUPT,
                             N_("this HEIC or AVIF photo could not be decoded within the memory "
                                "and time allowed (it may be damaged or crafted); send the photo "
                                "as a JPEG"));
}

/* The helper's path in buf: the option, $BASIRA_DECODE_HELPER, or next to this program. */
static basira_code helper_path(const char *opt, char *buf, size_t size, basira_error *err)
{
    if (!opt)
        opt = getenv("BASIRA_DECODE_HELPER");
    if (opt) {
        if (!*opt || strlen(opt) >= size)
            return no_helper(err);
        memcpy(buf, opt, strlen(opt) + 1);
    } else {
        ssize_t n = readlink("/proc/self/exe", buf, size - 1);
        if (n <= 0)
            return no_helper(err);
        buf[n] = '\0';
        char *slash = strrchr(buf, '/');
        if (!slash || (size_t)(slash - buf) + 1 + sizeof BASIRA_DECODE_HELPER_NAME > size)
            return no_helper(err);
        memcpy(slash + 1, BASIRA_DECODE_HELPER_NAME, sizeof BASIRA_DECODE_HELPER_NAME);
    }
    if (access(buf, X_OK) != 0)
        return no_helper(err);
    return BASIRA_OK;
}

/* Milliseconds left until the deadline (0 when past it), for poll(). */
static int ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(deadline->tv_sec - now.tv_sec) * 1e3 +
                (double)(deadline->tv_nsec - now.tv_nsec) / 1e6;
    if (ms <= 0)
        return 0;
    return ms > INT_MAX ? INT_MAX : (int)ms + 1;
}

/* Where the bytes read from the child go: the header, then the pixels. */
typedef struct reply {
    intake_helper_header head;
    size_t head_got;
    uint8_t *rgb;
    size_t rgb_len, rgb_got;
    int overflow; /* the child sent more than it announced */
    int bad;      /* the header is invalid */
} reply;

/* Check a complete header and allocate the pixels it announces. */
static void header_done(reply *r, const basira_intake_options *o, int ow, int oh)
{
    const intake_helper_header *hd = &r->head;
    if (hd->magic != INTAKE_HELPER_MAGIC || hd->code < 0 || hd->code >= BASIRA_E_COUNT_) {
        r->bad = 1;
        return;
    }
    if (hd->code != BASIRA_OK)
        return;
    /* Upright, shrunk to max_side at most, never larger than the header said. */
    if (hd->width <= 0 || hd->height <= 0 || hd->width > o->max_side || hd->height > o->max_side ||
        hd->width > ow || hd->height > oh || hd->orig_width != ow || hd->orig_height != oh) {
        r->bad = 1;
        return;
    }
    r->rgb_len = (size_t)hd->width * (size_t)hd->height * 3;
    r->rgb = malloc(r->rgb_len);
    if (!r->rgb)
        r->bad = 1;
}

/* Take n bytes from the child. */
static void take(reply *r, const uint8_t *p, size_t n, const basira_intake_options *o, int ow,
                 int oh)
{
    if (r->head_got < sizeof r->head) {
        size_t k = sizeof r->head - r->head_got;
        if (k > n)
            k = n;
        memcpy((uint8_t *)&r->head + r->head_got, p, k);
        r->head_got += k;
        p += k;
        n -= k;
        if (r->head_got == sizeof r->head)
            header_done(r, o, ow, oh);
    }
    if (!n)
        return;
    if (r->bad || !r->rgb || n > r->rgb_len - r->rgb_got) {
        r->overflow = 1;
        return;
    }
    memcpy(r->rgb + r->rgb_got, p, n);
    r->rgb_got += n;
}

/*
 * Send the file and collect the answer until the child closes its end, the
 * deadline passes, or the answer is wrong. Returns 0 at end of file, -1 on a
 * timeout, -2 on any other failure.
 */
static int exchange(int fd, const uint8_t *data, size_t len, const basira_intake_options *o, int ow,
                    int oh, const struct timespec *deadline, reply *r)
{
    size_t sent = 0;
    uint8_t buf[65536];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        int t = ms_left(deadline);
        if (t == 0)
            return -1;
        int n = poll(&p, 1, t);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -2;
        if (n == 0)
            return -1;
        if (p.revents & POLLNVAL)
            return -2;
        if (sent < len && (p.revents & POLLOUT)) {
            ssize_t k = send(fd, data + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) {
                sent += (size_t)k;
                if (sent == len && shutdown(fd, SHUT_WR) != 0)
                    return -2;
            } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                /* The child stopped reading (it died, or refused the file early):
                 * what it said, if anything, is read below. */
                sent = len;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k == 0)
                return 0;
            if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return (p.revents & POLLHUP) ? 0 : -2;
            if (k > 0) {
                take(r, buf, (size_t)k, o, ow, oh);
                if (r->overflow)
                    return -2;
            }
        }
    }
}

/* Wait for the child to exit until the deadline; then kill it. Always reaps it. */
static int reap(pid_t pid, const struct timespec *deadline, int *status)
{
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid)
            return 0;
        if (w < 0 && errno != EINTR)
            return -1;
        if (w == 0 && ms_left(deadline) == 0)
            break;
        struct timespec nap = {0, 1000000}; /* 1 ms */
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 1;
}

static basira_code spawn(const char *path, char *const argv[], int child_fd, pid_t *pid,
                         basira_error *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    /* The child gets the socket as stdin and stdout, /dev/null as stderr, no other
     * descriptor, default signal handling and no blocked signal. */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGXCPU);
    int r = posix_spawn_file_actions_adddup2(&fa, child_fd, 0);
    if (!r)
        r = posix_spawn_file_actions_adddup2(&fa, child_fd, 1);
    if (!r)
        r = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (!r)
        r = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!r)
        r = posix_spawnattr_setsigmask(&attr, &none);
    if (!r)
        r = posix_spawnattr_setsigdefault(&attr, &dflt);
    if (!r)
        r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!r)
        r = posix_spawn(pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r)
        return basira_error_set(err, BASIRA_E_INTERNAL, _("cannot start %s: %s"), path,
                                strerror(r));
    return BASIRA_OK;
}

/* The refusal the child reported, in the parent's words (same codes as in process). */
static basira_code child_refused(basira_code code, basira_error *err)
{
    switch (code) {
    case BASIRA_E_LIMIT:
        return basira_error_setm(err, BASIRA_E_LIMIT,
                                 N_("the photo took too long to decode and was refused; send it "
                                    "as the camera took it"));
    case BASIRA_E_NOT_AN_IMAGE:
        return basira_error_setm(err, BASIRA_E_NOT_AN_IMAGE,
                                 N_("the colours of this image cannot be interpreted; send an "
                                    "ordinary colour photo"));
    case BASIRA_E_CORRUPT:
        return basira_error_setm(err, BASIRA_E_CORRUPT,
                                 N_("the photo is damaged or incomplete (perhaps the transfer was "
                                    "interrupted); send it again"));
    default:
        return helper_failed(err);
    }
}

basira_code intake_helper_decode(const void *data, size_t len, const basira_intake_options *o,
                                 int w, int h, int swap, size_t cost,
                                 const struct timespec *deadline, intake_helper_result *res,
                                 basira_error *err)
{
    char path[4096];
    basira_code rc = helper_path(o->decode_helper, path, sizeof path, err);
    if (rc)
        return rc;
    size_t memory =
        cost > SIZE_MAX - INTAKE_HELPER_BASE_BYTES ? SIZE_MAX : INTAKE_HELPER_BASE_BYTES + cost;
    char a[7][32];
    snprintf(a[0], sizeof a[0], "%zu", o->max_file_bytes);
    snprintf(a[1], sizeof a[1], "%llu", (unsigned long long)o->max_pixels);
    snprintf(a[2], sizeof a[2], "%d", o->min_side);
    snprintf(a[3], sizeof a[3], "%d", o->max_side);
    snprintf(a[4], sizeof a[4], "%zu", o->max_decode_bytes);
    /* Whole milliseconds: no decimal point, whatever the locale. */
    snprintf(a[5], sizeof a[5], "%.0f", ceil(o->max_seconds * 1000));
    snprintf(a[6], sizeof a[6], "%zu", memory);
    char *argv[] = {path, a[0], a[1], a[2], a[3], a[4], a[5], a[6], NULL};

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return basira_error_set(err, BASIRA_E_INTERNAL, _("cannot start %s: %s"), path,
                                strerror(errno));
    pid_t pid = 0;
    rc = spawn(path, argv, sv[1], &pid, err);
    close(sv[1]);
    if (rc) {
        close(sv[0]);
        return rc;
    }
    reply r = {.rgb = NULL};
    int ow = swap ? h : w, oh = swap ? w : h;
    int x = exchange(sv[0], data, len, o, ow, oh, deadline, &r);
    close(sv[0]);
    int status = 0;
    /* Once its answer is in, the child has only to exit: a short grace period. */
    struct timespec grace;
    intake_deadline_in(x == 0 ? 2.0 : 0.0, &grace);
    int killed = reap(pid, &grace, &status);
    int clean = x == 0 && killed == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                r.head_got == sizeof r.head && !r.bad;
    if (clean && r.head.code == BASIRA_OK && r.rgb_got == r.rgb_len) {
        res->width = r.head.width;
        res->height = r.head.height;
        res->orig_width = r.head.orig_width;
        res->orig_height = r.head.orig_height;
        res->rgb = r.rgb;
        return BASIRA_OK;
    }
    free(r.rgb);
    if (clean && r.head.code != BASIRA_OK)
        return child_refused((basira_code)r.head.code, err);
    if (x == -1)
        return child_refused(BASIRA_E_LIMIT, err);
    return helper_failed(err);
}
