/*
 * serve_tls.c - HTTPS for phones on the clinic network, without a certificate
 * authority: `basira serve` on an address other than loopback makes a
 * certificate on first start (DIR/tls/), prints its SHA-256 fingerprint and a QR
 * code of the address with that fingerprint, so that a phone is paired by
 * scanning it and checking the fingerprint its browser shows.
 *
 * The key is ECDSA P-256 (GnuTLS), kept 0600 in the data folder (itself 0700);
 * the certificate names every address of the machine and "basira.local", and is
 * valid for 825 days (the longest browsers accept). Delete DIR/tls to make a new
 * one; or give the operator's own with --tls-cert / --tls-key.
 */
#include "serve_tls.h"

#include "core/i18n.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int serve_is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

static int write_private(const char *path, const void *data, size_t len, mode_t mode)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    int ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Every address of the machine as a subjectAltName, and basira.local. */
static void add_names(gnutls_x509_crt_t crt)
{
    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "basira.local", 12,
                                         GNUTLS_FSAN_APPEND);
    struct ifaddrs *ifs = NULL, *i;
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        if (i->ifa_addr->sa_family == AF_INET) {
            const struct sockaddr_in *s = (const void *)i->ifa_addr;
            gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, &s->sin_addr, 4,
                                                 GNUTLS_FSAN_APPEND);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            const struct sockaddr_in6 *s = (const void *)i->ifa_addr;
            gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, &s->sin6_addr, 16,
                                                 GNUTLS_FSAN_APPEND);
        }
    }
    freeifaddrs(ifs);
}

static basira_code make_certificate(const char *cert, const char *key, basira_error *err)
{
    gnutls_x509_privkey_t pk = NULL;
    gnutls_x509_crt_t crt = NULL;
    unsigned char serial[16];
    gnutls_datum_t kp = {NULL, 0}, cp = {NULL, 0};
    basira_code rc = BASIRA_OK;
    time_t now = time(NULL);
    if (gnutls_x509_privkey_init(&pk) < 0 ||
        gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
        gnutls_x509_crt_init(&crt) < 0 || gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial) < 0) {
        rc = basira_error_set(err, BASIRA_E_INTERNAL, _("cannot make a TLS key"));
        goto out;
    }
    serial[0] &= 0x7f; /* a positive serial number */
    if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(crt, serial, sizeof serial) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, now + (time_t)825 * 86400) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "Basira clinic node",
                                      18) < 0 ||
        gnutls_x509_crt_set_key(crt, pk) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0) {
        rc = basira_error_set(err, BASIRA_E_INTERNAL, _("cannot make a TLS certificate"));
        goto out;
    }
    add_names(crt);
    if (gnutls_x509_crt_sign2(crt, crt, pk, GNUTLS_DIG_SHA256, 0) < 0 ||
        gnutls_x509_privkey_export2(pk, GNUTLS_X509_FMT_PEM, &kp) < 0 ||
        gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cp) < 0) {
        rc = basira_error_set(err, BASIRA_E_INTERNAL, _("cannot make a TLS certificate"));
        goto out;
    }
    if (write_private(key, kp.data, kp.size, 0600) || write_private(cert, cp.data, cp.size, 0644))
        rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), cert, strerror(errno));
out:
    if (kp.data) {
        gnutls_memset(kp.data, 0, kp.size);
        gnutls_free(kp.data);
    }
    gnutls_free(cp.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (pk)
        gnutls_x509_privkey_deinit(pk);
    return rc;
}

/* "AB:CD:..." SHA-256 of the certificate (DER). */
static basira_code fingerprint_of(const char *cert, char *out, size_t outsz, basira_error *err)
{
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;
    unsigned char fp[32];
    size_t fl = sizeof fp;
    basira_code rc = BASIRA_OK;
    if (gnutls_load_file(cert, &pem) < 0 || gnutls_x509_crt_init(&crt) < 0 ||
        gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fl) < 0 || fl != 32)
        rc = basira_error_set(err, BASIRA_E_FORMAT, _("%s is not a readable certificate"), cert);
    else if (outsz >= 96) {
        for (size_t i = 0; i < 32; i++)
            snprintf(out + 3 * i, outsz - 3 * i, i < 31 ? "%02X:" : "%02X", fp[i]);
    }
    if (crt)
        gnutls_x509_crt_deinit(crt);
    gnutls_free(pem.data);
    return rc;
}

basira_code serve_tls_ensure(const char *dir, char *cert, char *key, size_t pathsz,
                             char fingerprint[96], basira_error *err)
{
    char tlsdir[4200];
    snprintf(tlsdir, sizeof tlsdir, "%s/tls", dir);
    snprintf(cert, pathsz, "%s/cert.pem", tlsdir);
    snprintf(key, pathsz, "%s/key.pem", tlsdir);
    if (mkdir(tlsdir, 0700) != 0 && errno != EEXIST)
        return basira_error_set(err, BASIRA_E_IO, _("cannot create %s: %s"), tlsdir,
                                strerror(errno));
    basira_code rc = BASIRA_OK;
    if (access(cert, R_OK) != 0 || access(key, R_OK) != 0)
        rc = make_certificate(cert, key, err);
    if (!rc)
        rc = fingerprint_of(cert, fingerprint, 96, err);
    return rc;
}

void serve_pairing_host(const char *addr, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", addr);
    if (strcmp(addr, "0.0.0.0") && strcmp(addr, "::"))
        return;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct sockaddr_in *s = (const void *)i->ifa_addr;
        char buf[INET_ADDRSTRLEN];
        if ((ntohl(s->sin_addr.s_addr) >> 24) != 127 &&
            inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf)) {
            snprintf(out, outsz, "%s", buf);
            break;
        }
    }
    freeifaddrs(ifs);
}

void serve_tls_print_pairing(FILE *f, const char *url, const char *fingerprint)
{
    fprintf(f, _("basira: HTTPS certificate SHA-256 fingerprint: %s\n"), fingerprint);
    char text[400];
    snprintf(text, sizeof text, "%s#sha256=%s", url, fingerprint);
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_L, QR_MODE_8, 1);
    if (!q)
        return;
    fprintf(f, _("basira: to pair a phone, scan this code and check that its browser shows the "
                 "same fingerprint:\n"));
    /* Two modules per character (upper and lower half blocks), with a quiet zone. */
    int w = q->width, m = 2;
    for (int y = -m; y < w + m; y += 2) {
        for (int x = -m; x < w + m; x++) {
            int top = y >= 0 && y < w && x >= 0 && x < w && (q->data[y * w + x] & 1);
            int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w && (q->data[(y + 1) * w + x] & 1);
            /* Dark modules print as spaces on a light background (inverted), readable on
             * the usual dark terminal. */
            fputs(top && bot ? " " : top ? "\u2584" : bot ? "\u2580" : "\u2588", f);
        }
        fputc('\n', f);
    }
    QRcode_free(q);
}
