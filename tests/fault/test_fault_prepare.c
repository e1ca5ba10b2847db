/*
 * test_fault_prepare.c - a lean prepare (basira_net_prepare_inference_lean) whose Nth
 * allocation fails, for every N, as test_fault_store.c does for the store. The lean
 * prepare gives the net's float32 values back layer after layer while it builds, so a
 * failure half-way must not leave a net that forwards on zeros. Each N runs in a child
 * (a crash is reported as such), which checks:
 *   - a clear error, or success with the reference output bit for bit;
 *   - after a failure with part of the values gone: the net says it is released and its
 *     forwards are refused with a message, never an output;
 *   - after a failure with the values whole: a plain prepare then gives the reference.
 * Both kinds of failure must occur, and the loop must reach an N past the last
 * allocation (success), or the test proves nothing.
 *
 * Run with LD_PRELOAD=libfaultshim.so; without it the test skips. BASIRA_FAULT_ONLY=N
 * runs that N alone, in the process itself (for a debugger). Only Basira's own
 * allocations are counted: oneDNN's (and libstdc++'s operator new, which it uses) throw
 * std::bad_alloc through its C API, which ends the process, and libgomp aborts (see
 * faultshim.c).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basira/nn.h"
#include "test.h"

typedef void (*arm_fn)(int);
typedef long (*count_fn)(void);

enum { CLASSES = 4, SIZE = 32 };

typedef struct {
    int rc;       /* of the lean prepare */
    int released; /* basira_net_values_released() after it */
    int ok;       /* every check of the child passed */
    long counted; /* allocations counted while armed */
    char what[600];
} outcome;

static char *arch(void)
{
    basira_arch_params p = {"mobilenetv2", SIZE, 0, CLASSES, 8, 5, 0.0};
    basira_error err;
    char *a = basira_arch_build(&p, &err);
    if (!a)
        fprintf(stderr, "arch: %s\n", err.message);
    return a;
}

static void input(float *x)
{
    uint64_t s = 7;
    for (int i = 0; i < 3 * SIZE * SIZE; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
}

static void child(int fd, long n, const char *a, const float *x, const float *ref, arm_fn arm,
                  count_fn count)
{
    alarm(60);
    outcome o;
    memset(&o, 0, sizeof o);
    basira_net *net;
    basira_error err;
    float out[CLASSES];
    if (basira_net_new(a, 1, &net, &err))
        _exit(3);
    char nbuf[32];
    snprintf(nbuf, sizeof nbuf, "%ld", n);
    setenv("BASIRA_FAULT_N", nbuf, 1);
    arm(1);
    o.rc = basira_net_prepare_inference_lean(net, 1, &err);
    arm(0);
    o.counted = count();
    o.released = basira_net_values_released(net);
    o.ok = 1;
    if (o.rc == BASIRA_OK) {
        if (!o.released || basira_net_forward(net, x, 1, 0, out, &err) ||
            memcmp(out, ref, sizeof out)) {
            o.ok = 0;
            snprintf(o.what, sizeof o.what, "success, but not released or another output");
        }
    } else if (!err.message[0]) {
        o.ok = 0;
        snprintf(o.what, sizeof o.what, "error %d without a message", o.rc);
    } else if (o.released) {
        basira_code frc = basira_net_forward(net, x, 1, 0, out, &err);
        if (frc != BASIRA_E_INVALID_ARGUMENT || !strstr(err.message, "load the model again")) {
            o.ok = 0;
            snprintf(o.what, sizeof o.what, "released net forwards: %d (%s)", frc, err.message);
        }
    } else {
        basira_code prc = basira_net_prepare_inference(net, 1, &err);
        if (prc || basira_net_forward(net, x, 1, 0, out, &err) || memcmp(out, ref, sizeof out)) {
            o.ok = 0;
            snprintf(o.what, sizeof o.what, "whole net, prepared again: %d (%s)", prc, err.message);
        }
    }
    basira_net_free(net);
    ssize_t w = write(fd, &o, sizeof o);
    _exit(w == (ssize_t)sizeof o ? 0 : 4);
}

int main(void)
{
    arm_fn arm = (arm_fn)dlsym(RTLD_DEFAULT, "basira_fault_arm");
    count_fn count = (count_fn)dlsym(RTLD_DEFAULT, "basira_fault_count");
    if (!arm || !count)
        TEST_SKIP("the fault shim is not preloaded (LD_PRELOAD=libfaultshim.so)");
    setenv("BASIRA_FAULT_KIND", "alloc", 1);
    setenv("BASIRA_FAULT_STICKY", "0", 1);
    setenv("BASIRA_FAULT_EXEMPT", "libstdc++.so,libgomp.so,libdnnl.so", 1);
    basira_nn_set_threads(1);
    char *a = arch();
    if (!a)
        return 1;
    /* The reference: a plain prepare of the same net, nothing failing. */
    static float x[3 * SIZE * SIZE];
    float ref[CLASSES];
    input(x);
    basira_net *net;
    basira_error err;
    if (basira_net_new(a, 1, &net, &err) || basira_net_prepare_inference(net, 1, &err) ||
        basira_net_forward(net, x, 1, 0, ref, &err)) {
        fprintf(stderr, "reference: %s\n", err.message);
        return 1;
    }
    basira_net_free(net);
    const char *only = getenv("BASIRA_FAULT_ONLY"); /* one N, in this process: for a debugger */
    if (only)
        child(-1, atol(only), a, x, ref, arm, count);
    int whole = 0, released = 0, done = 0;
    long n;
    for (n = 1; n <= 20000 && !done; n++) {
        int fds[2];
        if (pipe(fds))
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(fds[1], n, a, x, ref, arm, count);
        }
        close(fds[1]);
        outcome o;
        ssize_t got = read(fds[0], &o, sizeof o);
        close(fds[0]);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK_MSG(got == (ssize_t)sizeof o && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "allocation %ld failing: the child ended with status %d%s", n, st,
                  WIFSIGNALED(st) ? " (a signal)" : "");
        if (got != (ssize_t)sizeof o)
            break;
        CHECK_MSG(o.ok, "allocation %ld failing: %s", n, o.what);
        if (o.rc != BASIRA_OK && o.released)
            released++;
        else if (o.rc != BASIRA_OK)
            whole++;
        else
            done = o.counted < n; /* no allocation failed: past the last one */
    }
    fprintf(stderr,
            "lean prepare: %ld allocation points; %d failures left the net whole, %d left it "
            "released with its forwards refused\n",
            n - 2, whole, released);
    CHECK_MSG(done, "never got past the last allocation (%ld tried)", n - 1);
    CHECK_MSG(whole > 0 && released > 0, "whole %d, released %d: both kinds must occur", whole,
              released);
    free(a);
    return test_summary();
}
