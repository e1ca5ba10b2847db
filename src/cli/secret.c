/*
 * secret.c - where the `basira` program gets the database key and passwords:
 * a key file, the environment (BASIRA_DB_PASSPHRASE) or the terminal. The
 * store itself never prompts nor reads the environment.
 */
#include "basira/fs.h"
#include "cli.h"
#include "core/i18n.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

basira_code basira_cli_prompt_secret(const char *prompt, const char *again_prompt, char *buf,
                                     size_t bufsz, basira_error *err)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("no terminal to ask on; give the secret in a file or the "
                                    "environment"));
    char again[1024];
    basira_code rc = BASIRA_OK;
    for (int round = 0; round < (again_prompt ? 2 : 1) && !rc; round++) {
        const char *p = round ? again_prompt : prompt;
        char *dst = round ? again : buf;
        size_t dstsz = round ? sizeof again : bufsz;
        struct termios old, quiet;
        int have_tc = tcgetattr(fd, &old) == 0;
        if (write(fd, p, strlen(p)) < 0)
            rc = basira_error_setm(err, BASIRA_E_IO, N_("cannot use the terminal"));
        if (have_tc) {
            /* No echo: the secret must not appear on screen or in scrollback. */
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(fd, TCSAFLUSH, &quiet);
        }
        size_t n = 0;
        char c;
        while (!rc && read(fd, &c, 1) == 1 && c != '\n') {
            if (n + 1 < dstsz)
                dst[n++] = c;
        }
        dst[n] = '\0';
        if (have_tc)
            tcsetattr(fd, TCSAFLUSH, &old);
        if (write(fd, "\n", 1) < 0)
            rc = basira_error_setm(err, BASIRA_E_IO, N_("cannot use the terminal"));
        if (!rc && n == 0)
            rc = basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("nothing was typed"));
    }
    close(fd);
    if (!rc && again_prompt && strcmp(buf, again))
        rc = basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT, N_("the two entries differ"));
    sodium_memzero(again, sizeof again);
    return rc;
}

basira_code basira_cli_key_resolve(const char *key_file, int confirm, char *buf, size_t bufsz,
                                   basira_store_key *out, basira_error *err)
{
    memset(out, 0, sizeof *out);
    if (key_file) {
        out->key_file = key_file;
        return BASIRA_OK;
    }
    const char *env = getenv("BASIRA_DB_PASSPHRASE");
    if (env && *env) {
        if (strlen(env) >= bufsz)
            return basira_error_setm(err, BASIRA_E_LIMIT, N_("BASIRA_DB_PASSPHRASE is too long"));
        snprintf(buf, bufsz, "%s", env);
        out->passphrase = buf;
        return BASIRA_OK;
    }
    if (!isatty(STDIN_FILENO))
        return basira_error_setm(err, BASIRA_E_INVALID_ARGUMENT,
                                 N_("no database key: give --key-file FILE, set "
                                    "BASIRA_DB_PASSPHRASE, or run on a terminal to be asked"));
    basira_code rc = basira_cli_prompt_secret(
        _("Database passphrase: "), confirm ? _("Repeat the passphrase: ") : NULL, buf, bufsz, err);
    if (!rc)
        out->passphrase = buf;
    return rc;
}

int basira_cli_first_line(const char *file, char *buf, size_t bufsz)
{
    unsigned char *d = NULL;
    size_t len = 0;
    basira_error e;
    if (!file || basira_fs_read(file, 65536, &d, &len, &e)) {
        fprintf(stderr, _("basira: cannot read %s\n"), file ? file : "?");
        return -1;
    }
    snprintf(buf, bufsz, "%s", d ? (char *)d : "");
    sodium_memzero(d, len);
    free(d);
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}
