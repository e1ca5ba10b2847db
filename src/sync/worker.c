/*
 * worker.c - the background sync of `basira serve --hub URL`: a thread that
 * runs a round when the outbox grew (checked every poll_ms, a cheap local
 * query) or every idle_s seconds to pull replies; after a failure it waits
 * (1 s, doubling up to 60 s) and tries again. Stopping wakes it at once; a
 * round in flight finishes first (each request is bounded by its timeout).
 */
#include "basira/json.h"
#include "basira/store_sync.h"
#include "core/i18n.h"
#include "sync_internal.h"

#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct basira_sync_worker {
    basira_store *st;
    const basira_sync_options *o;
    int poll_ms, idle_s;
    FILE *log;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms unless stopped; returns 1 when asked to stop. */
static int nap(basira_sync_worker *w, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->stop && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
        ;
    int stop = w->stop;
    pthread_mutex_unlock(&w->lock);
    return stop;
}

static void *run(void *arg)
{
    basira_sync_worker *w = arg;
    int64_t seen = -1, last_round = 0;
    int backoff_ms = 0;
    while (!nap(w, backoff_ms ? backoff_ms : w->poll_ms)) {
        char v[32];
        int64_t acked =
            basira_store_sync_get(w->st, "acked_seq", v, sizeof v, NULL) ? 0 : strtoll(v, NULL, 10);
        int64_t count = 0, last = 0;
        if (basira_store_outbox_pending(w->st, acked, &count, &last, NULL))
            continue;
        int due = now_ms() - last_round >= (int64_t)w->idle_s * 1000;
        if (!backoff_ms && count == 0 && last == seen && !due)
            continue;
        basira_sync_report rep;
        basira_error err;
        basira_code rc = basira_sync_round(w->st, w->o, &rep, &err);
        last_round = now_ms();
        if (rc) {
            backoff_ms = backoff_ms ? (backoff_ms * 2 > 60000 ? 60000 : backoff_ms * 2) : 1000;
            if (w->log) {
                json_t *j =
                    json_pack("{s:s, s:s, s:s, s:i}", "event", "sync_failed", "code",
                              basira_code_name(rc), "message", err.message, "retry_ms", backoff_ms);
                basira_json_print_line(w->log, j);
                json_decref(j);
            }
            continue;
        }
        backoff_ms = 0;
        seen = last;
        if (w->log && (rep.pushed || rep.replies)) {
            json_t *j = json_pack("{s:s, s:I, s:I, s:I}", "event", "synced", "pushed",
                                  (json_int_t)rep.pushed, "replies", (json_int_t)rep.replies,
                                  "bytes_up", (json_int_t)rep.bytes_up);
            basira_json_print_line(w->log, j);
            json_decref(j);
        }
    }
    return NULL;
}

basira_code basira_sync_worker_start(basira_store *st, const basira_sync_options *o, int poll_ms,
                                     int idle_s, FILE *log, basira_sync_worker **out,
                                     basira_error *err)
{
    *out = NULL;
    basira_sync_worker *w = calloc(1, sizeof *w);
    if (!w)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    /* Here, in the starting thread: curl's global set-up must not race other threads. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    w->st = st;
    w->o = o;
    w->poll_ms = poll_ms > 0 ? poll_ms : 500;
    w->idle_s = idle_s > 0 ? idle_s : 30;
    w->log = log;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        free(w);
        return basira_error_set(err, BASIRA_E_INTERNAL, _("cannot start the sync thread"));
    }
    *out = w;
    return BASIRA_OK;
}

void basira_sync_worker_stop(basira_sync_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
