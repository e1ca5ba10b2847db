/*
 * cmd_serve.c - `basira serve`: the clinic node (HTTP API over the encrypted store).
 *
 * Shutdown: SIGTERM and SIGINT are blocked in every thread (the server's
 * workers inherit the mask) and read from a signalfd by the main thread, so no
 * global flag is needed and no handler runs in the middle of a request. On a
 * signal the server stops accepting, lets requests in flight finish, and the
 * store is closed; every acknowledged write was already committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/image.h"
#include "basira/json.h"
#include "basira/release.h"
#include "basira/server.h"
#include "basira/site.h"
#include "basira/store.h"
#include "basira/sync.h"
#include "basira/triage.h"
#include "cli.h"
#include "serve_tls.h"
#include "core/i18n.h"

static void usage(FILE *f)
{
    fprintf(f, _("Usage: basira serve [options]\n"
                 "Run the clinic node: the HTTP API (/api/v1, described at "
                 "/api/v1/openapi.json) over the encrypted case store.\n\n"
                 "Options:\n"
                 "  --data DIR           data folder (default ./basira-data)\n"
                 "  --listen ADDR:PORT   address to listen on (default 127.0.0.1:8080; "
                 "[::1]:8080 for IPv6)\n"
                 "  --tls-cert FILE      HTTPS certificate (PEM), with --tls-key\n"
                 "  --tls-key FILE       HTTPS private key (PEM)\n"
                 "  --key-file FILE      database key file (else BASIRA_DB_PASSPHRASE, else "
                 "asked on the terminal)\n"
                 "  --threads N          requests handled at once (default 8)\n"
                 "  --model FILE         classifier model (default: the bundled model)\n"
                 "  --access-log FILE    JSON Lines access log (default: standard output)\n"
                 "  -h, --help           show this help\n\n"
                 "The first time, create an administrator: basira user add --data DIR --role "
                 "admin NAME.\n"
                 "Stop with Ctrl-C or SIGTERM: requests in flight finish, nothing acknowledged "
                 "is lost.\n"));
    fprintf(f, _("  --idle-logout MIN    sign users out after MIN minutes without activity "
                 "(default 15)\n"));
    fprintf(f, _("  --insecure-http      on an address other than loopback, serve plain HTTP "
                 "instead of HTTPS with the node's own certificate (DIR/tls)\n"));
    fprintf(f, _("  --audit-syslog       also send the audit trail's periodic checkpoints to "
                 "syslog\n"));
    fprintf(f, _("\nWith a regional hub (enrol first: basira sync --enrol TOKEN):\n"
                 "  --hub URL            send consented cases and fetch replies in the "
                 "background\n"
                 "  --max-kbps N         cap the link to the hub at N kilobits per second\n"
                 "  --originals POLICY   the stored original photos: auto (default: on request, "
                 "all on a good link), never or always\n"));
}

/* ---- the real analysis: the triage pipeline, photos decoded once and re-encoded without metadata
 * ---- */

/*
 * What the analysis of an upload uses: the pipeline and the node's photo budget. With
 * --model DIR (a node's folder of releases), a newly installed release replaces the
 * pipeline while the node runs (serve_reload): every analysis holds the read lock for
 * its whole run, the swap takes the write lock, so a request runs on one model from
 * start to end and the old one is freed only when no request uses it.
 */
typedef struct serve_analysis {
    basira_pipeline *pipe;
    basira_intake_options intake;
    pthread_rwlock_t swap;
    const char *model;               /* --model */
    const basira_triage_config *cfg; /* the site's thresholds */
    basira_store *st;                /* for the audit entry of a switch */
    char sha[65];                    /* SHA-256 of the model that runs */
    char failed[65];                 /* a release that did not load: not retried until it changes */
    struct stat current;             /* DIR/current.json as last seen */
} serve_analysis;

static basira_code analyze_locked(serve_analysis *sa, const void *data, size_t len,
                                  const basira_triage_request *req, basira_triage_result *out,
                                  basira_error *err)
{
    if (pthread_rwlock_rdlock(&sa->swap))
        return basira_error_set(err, BASIRA_E_INTERNAL, NULL);
    basira_code rc = basira_pipeline_analyze(sa->pipe, data, len, req, NULL, out, err);
    pthread_rwlock_unlock(&sa->swap);
    return rc;
}

/* The hash of the model a pipeline runs (its "model" object), into sha ("" if unknown). */
static void pipeline_sha(basira_pipeline *p, char sha[65])
{
    json_t *m = basira_pipeline_model_json(p);
    const char *s = json_string_value(json_object_get(m, "sha256"));
    snprintf(sha, 65, "%s", s ? s : "");
    json_decref(m);
}

/* Whether DIR/current.json changed since last seen (an install or a rollback renames it). */
static int current_changed(serve_analysis *sa)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/current.json", sa->model ? sa->model : "");
    if (!sa->model || stat(path, &sb) != 0)
        return 0;
    int changed =
        sb.st_ino != sa->current.st_ino || sb.st_mtim.tv_sec != sa->current.st_mtim.tv_sec ||
        sb.st_mtim.tv_nsec != sa->current.st_mtim.tv_nsec || sb.st_size != sa->current.st_size;
    sa->current = sb;
    return changed;
}

/*
 * Load the current release of --model DIR if it is not the one that runs, and swap it in
 * between requests; audited ("model_switch"). A release that does not load (its file no
 * longer verifies, damaged weights) changes nothing: the previous model keeps running.
 */
static void serve_reload(serve_analysis *sa)
{
    char path[4096], sha[65];
    basira_error e;
    struct stat sb;
    if (!sa->model || stat(sa->model, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return;
    basira_actor who = {"serve", "local"};
    char detail[600];
    basira_pipeline *np = NULL;
    basira_code rc = basira_release_current(sa->model, path, sizeof path, sha, &e);
    if (rc == BASIRA_E_NOT_FOUND || (!rc && (!strcmp(sha, sa->sha) || !strcmp(sha, sa->failed))))
        return;
    if (rc)
        snprintf(sha, sizeof sha, "unverified");
    if (!rc && !(rc = basira_pipeline_new(sa->model, sa->cfg, &np, &e))) {
        basira_pipeline_set_intake(np, &sa->intake);
        char now[65];
        pipeline_sha(np, now);
        if (pthread_rwlock_wrlock(&sa->swap)) { /* only EDEADLK: not this thread's lock */
            basira_pipeline_free(np);
            return;
        }
        basira_pipeline *old = sa->pipe;
        sa->pipe = np;
        pthread_rwlock_unlock(&sa->swap);
        basira_pipeline_free(old);
        snprintf(detail, sizeof detail, "from=%s to=%s", sa->sha, now);
        snprintf(sa->sha, sizeof sa->sha, "%s", now);
        sa->failed[0] = '\0';
        json_t *ev = json_pack("{s:s, s:s}", "event", "model_switch", "sha256", now);
        basira_json_print_line(stderr, ev);
        json_decref(ev);
        if (basira_store_audit_append(sa->st, &who, "model_switch", 0, "ok", detail, &e))
            basira_cli_report("serve", &e);
        return;
    }
    if (!strcmp(sha, sa->failed))
        return;
    snprintf(sa->failed, sizeof sa->failed, "%s", sha);
    fprintf(stderr,
            _("basira: warning: the current release of %s does not load (%s); the previous "
              "model keeps running\n"),
            sa->model, e.message);
    snprintf(detail, sizeof detail, "from=%s to=%s %.300s", sa->sha, sha, e.message);
    basira_error ae;
    if (basira_store_audit_append(sa->st, &who, "model_switch", 0, "failed", detail, &ae))
        basira_cli_report("serve", &ae);
}

static basira_code real_analyze(void *ctx, const void *data, size_t len,
                                const basira_history *history, basira_triage_result *out,
                                basira_error *err)
{
    serve_analysis *sa = ctx;
    basira_triage_request req = {.history = history, .force = 0};
    return analyze_locked(sa, data, len, &req, out, err);
}

static basira_code real_analyze_kind(void *ctx, const void *data, size_t len,
                                     const basira_history *history, basira_photo_kind kind,
                                     basira_triage_result *out, basira_error *err)
{
    serve_analysis *sa = ctx;
    basira_triage_request req = {.history = history, .force = 0, .photo_kind = kind};
    return analyze_locked(sa, data, len, &req, out, err);
}

static basira_code real_analyze_declared(void *ctx, const void *data, size_t len,
                                         const basira_history *history, basira_photo_kind kind,
                                         int confirmed, basira_triage_result *out,
                                         basira_error *err)
{
    serve_analysis *sa = ctx;
    basira_triage_request req = {
        .history = history, .force = 0, .photo_kind = kind, .kind_confirmed = confirmed};
    return analyze_locked(sa, data, len, &req, out, err);
}

/*
 * The access log names users, addresses and case numbers: readable by the
 * node's account only (0600), also when it already existed with wider rights.
 */
static FILE *open_private_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return NULL;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (S_ISCHR(st.st_mode))
        ; /* a device such as /dev/null: nothing is kept, nothing to restrict */
    else if (!S_ISREG(st.st_mode))
        e = EINVAL;
    else if ((st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) != 0)
        e = errno;
    if (e) {
        close(fd);
        errno = e;
        return NULL;
    }
    FILE *f = fdopen(fd, "a");
    if (!f)
        close(fd);
    return f;
}

static int parse_listen(const char *s, char *addr, size_t addrsz, long *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    size_t n = (size_t)(colon - s);
    const char *a = s;
    if (s[0] == '[') {
        if (colon[-1] != ']')
            return -1;
        a = s + 1;
        n -= 2;
    }
    if (n == 0 || n >= addrsz)
        return -1;
    memcpy(addr, a, n);
    addr[n] = '\0';
    return basira_cli_parse_long("--listen", colon + 1, 0, 65535, port);
}

/*
 * Parallelism comes from the HTTP workers (one photo each), so the network and
 * libvips must not each start a team of threads per photo: on 2 cores OpenMP's
 * spinning workers made 8 concurrent uploads 10x slower (3.5 vs 40 photos/s in
 * bench/serve). OpenMP reads OMP_NUM_THREADS when the library loads, before
 * main(), so when the operator has not chosen, set it and re-execute once.
 */
static void single_threaded_kernels(char **argv)
{
    if (getenv("OMP_NUM_THREADS"))
        return;
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    setenv("VIPS_CONCURRENCY", "1", 0);
    /* main() hands us argv + 1: the program's own argv starts one slot earlier. */
    execv("/proc/self/exe", argv - 1);
    /* Not fatal: the node works, only slower under concurrent uploads. */
}

/*
 * A site configuration that came from the hub while serving (the sync thread
 * wrote DIR/config.json): read back as a start would read it, the thresholds
 * for the photos analysed from now on (the one part that can be refused, and
 * then nothing changed), the clinic for the letters written from now on.
 */
typedef struct serve_live {
    const char *dir;
    basira_pipeline *pipe; /* NULL: analysis disabled */
    basira_server *srv;
} serve_live;

static basira_code apply_site_config(void *ctx, basira_error *err)
{
    const serve_live *l = ctx;
    basira_site_config site;
    basira_code rc = basira_site_config_load(l->dir, &site, err);
    if (!rc && l->pipe)
        rc = basira_pipeline_set_thresholds(l->pipe, &site.triage, err);
    if (!rc)
        rc = basira_server_set_clinic(l->srv, &site.clinic, err);
    basira_site_config_free(&site);
    return rc;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"key-file", required_argument, NULL, 'K'},
        {"threads", required_argument, NULL, 't'},
        {"model", required_argument, NULL, 'm'},
        {"access-log", required_argument, NULL, 'a'},
        {"audit-syslog", no_argument, NULL, 'S'},
        {"insecure-http", no_argument, NULL, 'I'},
        {"idle-logout", required_argument, NULL, 'L'},
        {"hub", required_argument, NULL, 'H'},
        {"max-kbps", required_argument, NULL, 'B'},
        {"originals", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    basira_sync_options sync_opts;
    basira_sync_options_init(&sync_opts);
    const char *dir = "./basira-data", *key_file = NULL, *model = NULL, *log_path = NULL;
    char addr[64] = "127.0.0.1";
    long port = 8080, threads = 8;
    int insecure_http = 0;
    char own_cert[4300] = "", own_key[4300] = "", fingerprint[96] = "";
    basira_server_config cfg;
    basira_server_config_default(&cfg);
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case 'd':
            dir = optarg;
            break;
        case 'l':
            if (parse_listen(optarg, addr, sizeof addr, &port)) {
                fprintf(stderr, _("basira: invalid --listen '%s' (expected ADDR:PORT)\n"), optarg);
                return BASIRA_EXIT_USAGE;
            }
            break;
        case 'c':
            cfg.tls_cert = optarg;
            break;
        case 'k':
            cfg.tls_key = optarg;
            break;
        case 'K':
            key_file = optarg;
            break;
        case 't':
            if (basira_cli_parse_long("--threads", optarg, 1, 64, &threads))
                return BASIRA_EXIT_USAGE;
            break;
        case 'm':
            model = optarg;
            break;
        case 'a':
            log_path = optarg;
            break;
        case 'L': {
            long minutes = 15;
            if (basira_cli_parse_long("--idle-logout", optarg, 1, 24 * 60, &minutes))
                return BASIRA_EXIT_USAGE;
            cfg.session_idle_s = minutes * 60;
            break;
        }
        case 'S':
            cfg.audit_syslog = 1;
            break;
        case 'I':
            insecure_http = 1;
            break;
        case 'H':
            sync_opts.hub_url = optarg;
            break;
        case 'B':
            if (basira_cli_parse_long("--max-kbps", optarg, 1, 10000000, &sync_opts.max_kbps))
                return BASIRA_EXIT_USAGE;
            break;
        case 'O':
            if (basira_cli_parse_originals(optarg, &sync_opts))
                return BASIRA_EXIT_USAGE;
            break;
        case 'h':
            usage(stdout);
            return BASIRA_EXIT_OK;
        default:
            return basira_cli_bad_option("serve", o, argv, usage);
        }
    }
    if (basira_cli_no_operands("serve", argc, argv))
        return BASIRA_EXIT_USAGE;
    if (!cfg.tls_cert != !cfg.tls_key) {
        fprintf(stderr, _("basira: HTTPS needs both --tls-cert and --tls-key\n"));
        return BASIRA_EXIT_USAGE;
    }
    single_threaded_kernels(argv);
    /*
     * Block the stop signals before any thread starts (the model's inference
     * thread, the HTTP workers): threads inherit the mask, so a signal can only
     * be read from the signalfd below and never kills a thread mid-request.
     */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP); /* look for a new model release now */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.listen_addr = addr;
    cfg.port = (uint16_t)port;
    cfg.threads = (unsigned)threads;

    /* DIR/config.json, read once: the clinic for the letters, the thresholds for the pipeline. */
    basira_error err;
    basira_site_config site;
    if (basira_site_config_load(dir, &site, &err)) {
        basira_cli_report(NULL, &err);
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }
    cfg.clinic_name = site.clinic.clinic_name;
    cfg.clinic_address = site.clinic.clinic_address;
    cfg.clinic_contact = site.clinic.clinic_contact;
    cfg.clinic_addressee = site.clinic.addressee;
    basira_store *st = NULL;
    if (basira_cli_open_store(dir, key_file, 0, &st)) {
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }
    /*
     * Phones on the clinic network: on any address but loopback, HTTPS by default,
     * with the node's own certificate when none is given; plain HTTP there only
     * with --insecure-http.
     */
    if (!serve_is_loopback(addr) && !cfg.tls_cert) {
        if (insecure_http) {
            fprintf(stderr,
                    _("basira: warning: plain HTTP on %s (--insecure-http): passwords and "
                      "patient data cross the network unencrypted\n"),
                    addr);
        } else if (serve_tls_ensure(dir, own_cert, own_key, sizeof own_cert, fingerprint, &err)) {
            basira_cli_report(dir, &err);
            basira_store_free(st);
            basira_site_config_free(&site);
            return BASIRA_EXIT_FAILED;
        } else {
            cfg.tls_cert = own_cert;
            cfg.tls_key = own_key;
        }
    }
    long users = 0;
    if (basira_store_user_count(st, &users, &err)) {
        basira_cli_report(dir, &err);
        basira_store_free(st);
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }
    if (users == 0) {
        fprintf(stderr,
                _("basira: %s has no active user yet. Create an administrator first:\n"
                  "  basira user add --data %s --role admin NAME\n"),
                dir, dir);
        basira_store_free(st);
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }

    basira_pipeline *pipe = NULL;
    basira_analyzer an = {NULL, NULL, NULL, NULL};
    /*
     * One memory budget for every photo decoded at once, sized to the machine
     * (image.h): eight 10000 x 10000 uploads at once used to take 2.7 GB.
     */
    serve_analysis sa = {.model = model, .cfg = &site.triage, .st = st};
    pthread_rwlockattr_t rwa;
    pthread_rwlockattr_init(&rwa);
    /* A swap must not wait behind a steady stream of analyses. */
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&sa.swap, &rwa)) {
        fprintf(stderr, _("basira: out of memory\n"));
        basira_store_free(st);
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }
    pthread_rwlockattr_destroy(&rwa);
    basira_intake_options_default(&sa.intake);
    if (basira_decode_budget_new(0, &sa.intake.budget, &err)) {
        basira_cli_report(NULL, &err);
        basira_store_free(st);
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }
    if (basira_pipeline_new(model, &site.triage, &pipe, &err)) {
        /* Cases, decisions and the audit trail still work without a model. */
        fprintf(stderr, _("basira: warning: photo analysis disabled (%s); uploads answer 503\n"),
                err.message);
    } else {
        basira_pipeline_set_intake(pipe, &sa.intake);
        sa.pipe = pipe;
        pipeline_sha(pipe, sa.sha);
        current_changed(&sa);
        an.analyze = real_analyze;
        an.analyze_kind = real_analyze_kind;
        an.analyze_declared = real_analyze_declared;
        an.ctx = &sa;
    }

    FILE *log = stdout;
    if (log_path && !(log = open_private_log(log_path))) {
        fprintf(stderr, _("basira: cannot open %s: %s\n"), log_path, strerror(errno));
        basira_pipeline_free(pipe);
        basira_decode_budget_free(sa.intake.budget);
        basira_store_free(st);
        basira_site_config_free(&site);
        return BASIRA_EXIT_FAILED;
    }
    cfg.access_log = log;

    int sfd = signalfd(-1, &stop, SFD_CLOEXEC);

    int status = BASIRA_EXIT_FAILED;
    basira_server *srv = NULL;
    if (sfd < 0) {
        fprintf(stderr, _("basira: cannot watch for signals: %s\n"), strerror(errno));
    } else if (basira_server_new(st, &an, &cfg, &srv, &err) || basira_server_start(srv, &err)) {
        basira_cli_report(NULL, &err);
    } else {
        json_t *ready = json_pack("{s:s, s:s, s:i, s:b, s:b}", "event", "listening", "address",
                                  addr, "port", (int)basira_server_port(srv), "tls",
                                  cfg.tls_cert != NULL, "analysis", an.analyze != NULL);
        basira_json_print_line(stderr, ready);
        json_decref(ready);
        if (fingerprint[0]) {
            char host[64], url[160];
            serve_pairing_host(addr, host, sizeof host);
            snprintf(url, sizeof url, strchr(host, ':') ? "https://[%s]:%u/" : "https://%s:%u/",
                     host, (unsigned)basira_server_port(srv));
            serve_tls_print_pairing(stderr, url, fingerprint);
        }
        /* Background sync with the regional hub: a round whenever the outbox grows. */
        basira_sync_worker *sync = NULL;
        sync_opts.data_dir = dir;
        serve_live live = {.dir = dir, .pipe = pipe, .srv = srv};
        sync_opts.site_config_changed = apply_site_config;
        sync_opts.site_config_ctx = &live;
        if (sync_opts.hub_url &&
            basira_sync_worker_start(st, &sync_opts, 250, 20, stderr, &sync, &err))
            basira_cli_report("sync", &err);
        /*
         * Until a stop signal: every 2 s (or at once on SIGHUP) a look at --model DIR's
         * current.json, which an install or rollback by sync replaces; a change loads it.
         */
        struct signalfd_siginfo si;
        ssize_t n = 0;
        for (;;) {
            struct pollfd pfd = {.fd = sfd, .events = POLLIN};
            int pr = poll(&pfd, 1, 2000);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                if (an.analyze && current_changed(&sa))
                    serve_reload(&sa);
                continue;
            }
            n = pr > 0 ? read(sfd, &si, sizeof si) : -1;
            if (n < 0 && errno == EINTR)
                continue;
            if (n == (ssize_t)sizeof si && si.ssi_signo == SIGHUP) {
                if (an.analyze) {
                    current_changed(&sa);
                    serve_reload(&sa);
                }
                continue;
            }
            break;
        }
        fprintf(stderr, _("basira: stopping (signal %u); finishing requests in flight\n"),
                n == (ssize_t)sizeof si ? si.ssi_signo : 0u);
        basira_sync_worker_stop(sync);
        basira_server_stop(srv, 15);
        status = BASIRA_EXIT_OK;
    }
    basira_server_free(srv);
    if (sfd >= 0)
        close(sfd);
    if (log != stdout)
        fclose(log);
    else
        fflush(stdout);
    basira_pipeline_free(sa.pipe ? sa.pipe : pipe);
    pthread_rwlock_destroy(&sa.swap);
    basira_decode_budget_free(sa.intake.budget);
    basira_store_free(st);
    basira_site_config_free(&site);
    return status;
}

const basira_command basira_cmd_serve = {"serve", N_("run the clinic node (HTTP API)"), run, usage};
