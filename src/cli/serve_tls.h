/* serve_tls.h - `basira serve`'s own HTTPS certificate and phone pairing (serve_tls.c). */
#ifndef BASIRA_CLI_SERVE_TLS_H
#define BASIRA_CLI_SERVE_TLS_H

#include <stddef.h>
#include <stdio.h>

#include "basira/error.h"

/* 1 for 127.0.0.0/8 and ::1. */
int serve_is_loopback(const char *addr);

/*
 * The node's certificate and key, DIR/tls/cert.pem and key.pem (0600), made on
 * first use (ECDSA P-256, self-signed, every address of the machine); their
 * paths and the certificate's SHA-256 fingerprint ("AB:CD:...").
 */
basira_code serve_tls_ensure(const char *dir, char *cert, char *key, size_t pathsz,
                             char fingerprint[96], basira_error *err);

/* The address a phone should use: addr, or for 0.0.0.0 / :: the machine's first LAN address. */
void serve_pairing_host(const char *addr, char *out, size_t outsz);

/* Print the fingerprint and a QR code of url#sha256=FINGERPRINT for pairing phones. */
void serve_tls_print_pairing(FILE *f, const char *url, const char *fingerprint);

#endif
