/*
 * serve_proc.h - run the real `basira` program from a test: the CLI (run_cli)
 * and `basira serve` as a child process (start_server / stop_server). The
 * including test sets cli (the program), tmp, data and accesslog; serve_env,
 * when set, names "NAME=value" entries added to the environment of the server
 * (an LD_PRELOAD fault shim, say).
 */
#ifndef BASIRA_TEST_SERVE_PROC_H
#define BASIRA_TEST_SERVE_PROC_H

#include "http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *cli;
static char tmp[256], data[300], accesslog[300], keyf[300], pwf[300];
static const char *const *serve_env;

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline void write_file(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    chmod(path, 0600); /* key files readable by others are refused */
}

/* Run the CLI with args, stdin from /dev/null; returns the exit status, stderr in err_out. */
static inline int run_cli(char *err_out, size_t errsz, const char *const *args)
{
    char errpath[400];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        int ef = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(ef, 2);
        setsid(); /* no controlling terminal: never prompt */
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)cli;
        for (; args[n - 1] && n < 31; n++)
            argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(cli, argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (err_out) {
        FILE *f = fopen(errpath, "r");
        size_t k = f ? fread(err_out, 1, errsz - 1, f) : 0;
        err_out[k] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t l = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &l);
    close(fd);
    return ntohs(sa.sin_port);
}

typedef struct server_proc {
    pid_t pid;
    unsigned port;
    const char *scheme;
} server_proc;

/* Start `basira serve`; wait until /health answers. */
static inline int start_server(server_proc *sp, const char *key, const char *const *extra)
{
    sp->port = free_port();
    sp->scheme = "http";
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", sp->port);
    const char *args[24] = {"serve", "--data",       data,      "--key-file", key, "--listen",
                            listen,  "--access-log", accesslog, "--threads",  "4"};
    int n = 11;
    for (int i = 0; extra && extra[i] && n < 23; i++) {
        args[n++] = extra[i];
        if (!strcmp(extra[i], "--tls-cert"))
            sp->scheme = "https";
    }
    args[n] = NULL;
    sp->pid = fork();
    if (sp->pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        setsid();
        for (int i = 0; serve_env && serve_env[i]; i++)
            putenv((char *)serve_env[i]);
        char *argv[26];
        argv[0] = (char *)cli;
        for (int i = 0; i <= n; i++)
            argv[i + 1] = (char *)args[i];
        execv(cli, argv);
        _exit(127);
    }
    http_client c;
    http_init(&c, sp->scheme, sp->port);
    int up = 0;
    for (int i = 0; i < 300 && !up; i++) {
        if (http_req(&c, "GET", "/health", NULL, NULL, 0, 0) == 200)
            up = 1;
        else {
            int st;
            if (waitpid(sp->pid, &st, WNOHANG) == sp->pid) {
                sp->pid = 0;
                break;
            }
            sleep_ms(50);
        }
    }
    http_free(&c);
    return up ? 0 : -1;
}

static inline int stop_server(server_proc *sp, int sig)
{
    if (sp->pid <= 0)
        return -1;
    kill(sp->pid, sig);
    int st = 0;
    for (int i = 0; i < 400; i++) { /* 20 s */
        if (waitpid(sp->pid, &st, WNOHANG) == sp->pid) {
            sp->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(50);
    }
    kill(sp->pid, SIGKILL);
    waitpid(sp->pid, &st, 0);
    sp->pid = 0;
    return -2;
}

/*
 * A fresh folder /tmp/PREFIX-XXXXXX (tmp) with the paths of the tests: data (made by the
 * first `basira user add`), a random database key (keyf), a password file (pwf,
 * "password-123") and the access log; BASIRA_ARGON2_FAST set. 0 on success.
 */
static inline int serve_test_dirs(const char *prefix)
{
    setenv("BASIRA_ARGON2_FAST", "1", 1);
    snprintf(tmp, sizeof tmp, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(tmp))
        return -1;
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(keyf, sizeof keyf, "%s/db.key", tmp);
    snprintf(pwf, sizeof pwf, "%s/password.txt", tmp);
    snprintf(accesslog, sizeof accesslog, "%s/access.log", tmp);
    unsigned char k[32];
    FILE *r = fopen("/dev/urandom", "rb");
    size_t got = r ? fread(k, 1, sizeof k, r) : 0;
    if (r)
        fclose(r);
    if (got != sizeof k)
        return -1;
    write_file(keyf, k, sizeof k);
    write_file(pwf, "password-123\n", 13);
    return 0;
}

#endif
