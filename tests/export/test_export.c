/*
 * test_export.c - the referral letter (checked with poppler's pdfinfo,
 * pdftotext and pdffonts), the FHIR bundle's structure, the CSV/JSON export,
 * and what happens with bad input. The letters are kept as test artefacts in
 * <build>/tests/export/artefacts/.
 */
#include "basira/export.h"
#include "basira/i18n.h"
#include "core/catalog.h"
#include "fixtures.h"
#include "test.h"

#include <glib.h>
#include <sys/stat.h>
#include <time.h>

static char artefacts[4096];
/* The synthetic photo every test uses (made once in main). */
static unsigned char *g_photo;
static size_t g_plen;

static void setup_artefacts(void)
{
    const char *b = getenv("BASIRA_BUILD_DIR");
    snprintf(artefacts, sizeof artefacts, "%s/tests/export/artefacts", b && *b ? b : ".");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", artefacts);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot create %s\n", artefacts);
}

static int have_poppler(void)
{
    return system("command -v pdftotext >/dev/null 2>&1 && command -v pdffonts >/dev/null 2>&1 "
                  "&& command -v pdfinfo >/dev/null 2>&1") == 0;
}

/* Run a command and return its standard output (malloc'd), or NULL. */
static char *run(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    if (pclose(f) != 0) {
        free(buf);
        return NULL;
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Make a letter, save it as artefacts/<name>.pdf, return its path in path. */
static int make_letter(const json_t *c, const unsigned char *photo, size_t plen, const char *lang,
                       const char *name, char *path, size_t n)
{
    basira_report_info info = {"Centre de santé Al Amal — Fès", "12 rue des Érables, 30000 Fès",
                               "+212 5 35 00 00 00", 1795000000, NULL};
    unsigned char *pdf = NULL;
    size_t len = 0;
    basira_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    basira_code rc = basira_report_pdf(c, photo, plen, lang, &info, &pdf, &len, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "  %s: %zu bytes in %.1f ms\n", name, len,
            (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    CHECK_MSG(rc == BASIRA_OK, "%s: %s", name, err.message);
    if (rc)
        return -1;
    CHECK(len > 1000);
    CHECK(!memcmp(pdf, "%PDF-", 5));
    snprintf(path, n, "%s/%s.pdf", artefacts, name);
    int w = write_file(path, pdf, len);
    free(pdf);
    CHECK(w == 0);
    return w;
}

static int pages_of(const char *path)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "pdfinfo '%s'", path);
    char *out = run(cmd);
    int pages = -1;
    const char *p = out ? strstr(out, "Pages:") : NULL;
    if (p)
        pages = atoi(p + 6);
    free(out);
    return pages;
}

static char *text_of(const char *path, int layout)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "pdftotext -enc UTF-8 %s '%s' -", layout ? "-layout" : "", path);
    return run(cmd);
}

/* Every font line of pdffonts says "emb yes"; returns the number of fonts, -1 if one is not. */
static int embedded_fonts(const char *path, char **listing)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "pdffonts '%s'", path);
    char *out = run(cmd);
    *listing = out;
    if (!out)
        return -1;
    /* Header (2 lines), then: name type encoding emb sub uni object ID. */
    int fonts = 0;
    char *save = NULL, *copy = strdup(out);
    char *line = strtok_r(copy, "\n", &save);
    for (int i = 0; line; line = strtok_r(NULL, "\n", &save), i++) {
        if (i < 2)
            continue;
        fonts++;
        /* Types are one or two words ("CID TrueType", "Type 1C"): count from the end. */
        char *f[16];
        int k = 0;
        char *s2 = NULL;
        for (char *tok = strtok_r(line, " ", &s2); tok && k < 16; tok = strtok_r(NULL, " ", &s2))
            f[k++] = tok;
        /* ... emb sub uni objnum gen: emb is the fifth token from the end. */
        if (k < 6 || strcmp(f[k - 5], "yes")) {
            fonts = -1;
            break;
        }
    }
    free(copy);
    return fonts;
}

static void test_letter_fr(void)
{
    json_t *c = fixture_case(12, "PT-2026-0042", "high", 81, "overridden", "requested",
                             "Lésion asymétrique évolutive; vue par le médecin généraliste.");
    char path[4200];
    if (make_letter(c, g_photo, g_plen, "fr", "letter-fr", path, sizeof path) == 0 &&
        have_poppler()) {
        CHECK_EQ_INT(pages_of(path), 1);
        char *t = text_of(path, 0);
        CHECK(t != NULL);
        if (t) {
            CHECK_MSG(strstr(t, "Aide à la décision, pas un diagnostic") != NULL, "%s", t);
            CHECK(strstr(t, "PT-2026-0042") != NULL);
            CHECK(strstr(t, "Centre de santé Al Amal") != NULL); /* accents intact */
            CHECK(strstr(t, "Lésion asymétrique évolutive") != NULL);
            CHECK(strstr(t, "Mélanome") != NULL); /* class name in the letter's language */
            CHECK(strstr(t, "81 / 100") != NULL); /* risk index */
            CHECK(strstr(t, "basira-derm 1.2.0") != NULL);
            CHECK(strstr(t, "dos, omoplate gauche") != NULL);
            CHECK(strstr(t, "58") != NULL);
        }
        free(t);
        char *fonts = NULL;
        int n = embedded_fonts(path, &fonts);
        CHECK_MSG(n >= 1, "fonts not all embedded:\n%s", fonts ? fonts : "(pdffonts failed)");
        free(fonts);
        /* The photo is in the letter, embedded as the JPEG made from the upload. */
        char cmd[4400];
        snprintf(cmd, sizeof cmd, "pdfimages -list '%s' | tail -n +3", path);
        char *imgs = run(cmd);
        int lines = 0;
        for (const char *q = imgs; q && *q; q++)
            lines += *q == '\n';
        CHECK_MSG(imgs && lines == 1 && strstr(imgs, "jpeg"), "expected one JPEG image:\n%s",
                  imgs ? imgs : "(pdfimages failed)");
        free(imgs);
    }
    json_decref(c);
}

/*
 * Issue 10 item 6: every field in the letter's language (a body-site code in
 * French), the referring clinician and the addressee, all decisions, and no
 * contradiction: a high category the clinician did not refer is never printed as
 * "priority referral".
 */
static void test_letter_decisions(void)
{
    json_t *c = fixture_case(14, "PT-2026-0044", "high", 74, "overridden", "none",
                             "Nævus connu, stable depuis 10 ans (photos comparées).");
    json_object_set_new(c, "body_site", json_string("upper arm left"));
    json_t *ds = json_array();
    json_array_append_new(ds, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "version", 1,
                                        "decided_by", "dr.bennani", "role", "dermatologist",
                                        "decided_at", "2026-11-21T10:00:00Z", "outcome", "accepted",
                                        "category", "high", "referral", "requested", "reason",
                                        "réseau atypique"));
    json_t *last = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "version", 2, "decided_by",
                             "dr.amrani", "role", "gp", "decided_at", "2026-11-22T10:05:00Z",
                             "outcome", "overridden", "category", "high", "referral", "none",
                             "reason", "Nævus connu, stable depuis 10 ans (photos comparées).");
    json_array_append(ds, last);
    json_object_set_new(c, "decisions", ds);
    json_object_set_new(c, "decision", last);
    char path[4200];
    for (int k = 0; k < 2; k++) {
        const char *lang = k ? "ar" : "fr";
        if (make_letter(c, g_photo, g_plen, lang, k ? "letter-decisions-ar" : "letter-decisions-fr",
                        path, sizeof path) ||
            !have_poppler())
            continue;
        CHECK_EQ_INT(pages_of(path), 1);
        char *t = text_of(path, 0);
        CHECK(t != NULL);
        if (t && !k) {
            CHECK_MSG(strstr(t, "bras gauche") != NULL, "body site not in French:\n%s", t);
            CHECK(strstr(t, "upper arm") == NULL);
            CHECK(strstr(t, "Service de dermatologie") != NULL); /* the addressee */
            CHECK(strstr(t, "dr.bennani") != NULL);              /* referring clinician */
            CHECK(strstr(t, "dr.amrani") != NULL);
            CHECK(strstr(t, "réseau") != NULL); /* the earlier decision stays */
            CHECK(strstr(t, "stable depuis 10 ans") != NULL);
            CHECK_MSG(strstr(t, "Orientation prioritaire") == NULL,
                      "high, not referred, yet 'priority referral' printed:\n%s", t);
            CHECK(strstr(t, "+212 5 35 00 00 00") != NULL); /* contact */
        }
        if (t && k) {
            CHECK_MSG(strstr(t, "dr.bennani") && strstr(t, "PT-2026-0044"), "%s", t);
            CHECK(strstr(t, "upper arm") == NULL);
        }
        free(t);
    }
    json_decref(last);
    json_decref(c);
}

static void test_letter_ar(void)
{
    json_t *c = fixture_case(13, "PT-2026-0043", "medium", 22, "accepted", "none", NULL);
    char path[4200];
    if (make_letter(c, g_photo, g_plen, "ar", "letter-ar", path, sizeof path) == 0 &&
        have_poppler()) {
        CHECK_EQ_INT(pages_of(path), 1);
        char *t = text_of(path, 0);
        CHECK(t != NULL);
        if (t) {
            /*
             * Arabic words as real letters: "السوابق" (history, a heading) and
             * "قرار" (decision, in the disclaimer).
             */
            CHECK_MSG(strstr(t, "السوابق") && strstr(t, "قرار"), "no Arabic words in:\n%s", t);
            CHECK(strstr(t, "PT-2026-0043") != NULL);
            CHECK(strstr(t, "Aide à la décision") == NULL);
        }
        free(t);
        char *fonts = NULL;
        int n = embedded_fonts(path, &fonts);
        CHECK_MSG(n >= 1, "fonts not all embedded:\n%s", fonts ? fonts : "(pdffonts failed)");
        CHECK_MSG(fonts && strstr(fonts, "NotoSansArabic"), "no Arabic font:\n%s",
                  fonts ? fonts : "");
        free(fonts);
        /*
         * Right-to-left layout: the title's right edge sits at the right margin
         * in Arabic, its left edge at the left margin in French (bounding boxes
         * from pdftotext -bbox-layout).
         */
        char cmd[4400];
        snprintf(cmd, sizeof cmd,
                 "pdftotext -bbox-layout '%s' - | grep -m1 '<block' | sed -E "
                 "'s/.*xMin=\"([0-9.]+)\".*xMax=\"([0-9.]+)\".*/\\1 \\2/'",
                 path);
        char *bb = run(cmd);
        double xmin = -1, xmax = -1;
        CHECK(bb && sscanf(bb, "%lf %lf", &xmin, &xmax) == 2);
        CHECK_MSG(xmax > 595.0 - 42.0 - 3.0 && xmin > 200.0, "first block at %g..%g", xmin, xmax);
        free(bb);
    }
    json_decref(c);
}

/* The non-neoplastic primary-care rule (issue 11) is printed while no clinician has decided. */
static void test_letter_primary_care(void)
{
    json_t *c = fixture_case(14, "PT-2026-0044", "low", 4, NULL, NULL, NULL);
    json_t *res = json_object_get(json_array_get(json_object_get(c, "images"), 1), "result");
    json_object_set_new(res, "primary_care",
                        json_pack("{s:b, s:f, s:f, s:i}", "applies", 1,
                                  "non_neoplastic_probability", 0.9, "threshold", 0.8,
                                  "refer_after_weeks", 4));
    char path[4200];
    for (int applies = 1; applies >= 0; applies--) {
        json_object_set_new(json_object_get(res, "primary_care"), "applies", json_boolean(applies));
        if (make_letter(c, g_photo, g_plen, "fr", applies ? "letter-pc" : "letter-nopc", path,
                        sizeof path) ||
            !have_poppler())
            break;
        char *t = text_of(path, 0);
        CHECK(t != NULL);
        if (t)
            CHECK_MSG(!strstr(t, "Soins primaires") == !applies &&
                          !strstr(t, "immunod") == !applies,
                      "applies %d:\n%s", applies, t);
        free(t);
    }
    json_decref(c);
}

static void test_letter_en_without_photo(void)
{
    json_t *c = fixture_case(14, "PT-2026-0044", NULL, 0, NULL, NULL, NULL);
    char path[4200];
    if (make_letter(c, NULL, 0, "en", "letter-en-nophoto", path, sizeof path) == 0 &&
        have_poppler()) {
        CHECK_EQ_INT(pages_of(path), 1);
        char *t = text_of(path, 0);
        CHECK(t && strstr(t, "No photo was analysed"));
        CHECK(t && strstr(t, "No clinician decision has been recorded yet."));
        CHECK(t && strstr(t, "Decision support, not a diagnosis"));
        free(t);
    }
    json_decref(c);
}

/* Hostile content: huge strings, wrong types, markup: still one page, no crash. */
static void test_letter_hostile(void)
{
    json_t *c = fixture_case(15, "<b>&amp;</b>", "high", 250, "overridden", "sent", NULL);
    char *big = malloc(20001);
    memset(big, 'W', 20000);
    big[20000] = '\0';
    for (int i = 50; i < 20000; i += 51)
        big[i] = ' ';
    json_object_set_new(c, "body_site", json_string(big));
    json_object_set_new(json_object_get(c, "decision"), "reason", json_string(big));
    json_object_set_new(c, "age", json_string("not a number"));
    json_object_set_new(c, "history", json_integer(3));
    json_object_set_new(c, "sex", json_integer(1));
    free(big);
    char path[4200];
    if (make_letter(c, NULL, 0, "ar", "letter-hostile", path, sizeof path) == 0 && have_poppler()) {
        CHECK_EQ_INT(pages_of(path), 1);
        char *t = text_of(path, 0);
        CHECK(t && strstr(t, "<b>&amp;</b>")); /* shown as typed, not interpreted as markup */
        CHECK(t && strstr(t, "100 / 100"));    /* an out-of-range index is clamped */
        free(t);
    }
    json_decref(c);
}

static void test_letter_errors(void)
{
    json_t *c = fixture_case(16, "PT-1", "low", 3, NULL, NULL, NULL);
    unsigned char *pdf = (unsigned char *)"x";
    size_t len = 7;
    basira_error err;
    CHECK_EQ_INT(basira_report_pdf(c, NULL, 0, "de", NULL, &pdf, &len, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(pdf == NULL && len == 0);
    CHECK(strstr(err.message, "de") != NULL);
    CHECK_EQ_INT(basira_report_pdf(c, NULL, 0, NULL, NULL, &pdf, &len, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    json_t *arr = json_array();
    CHECK_EQ_INT(basira_report_pdf(arr, NULL, 0, "fr", NULL, &pdf, &len, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    json_decref(arr);
    /* A damaged g_photo is an error, never a letter silently without its picture. */
    const unsigned char junk[] = "this is not an image at all, just some bytes";
    CHECK(basira_report_pdf(c, junk, sizeof junk, "fr", NULL, &pdf, &len, &err) != BASIRA_OK);
    CHECK(pdf == NULL);
    CHECK(err.message[0] != '\0');
    json_decref(c);
}

/* ---- FHIR ---- */

static json_t *entry_of(const json_t *bundle, const char *type, const char **full_url)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(bundle, "entry"), i, e)
    {
        json_t *r = json_object_get(e, "resource");
        const char *t = json_string_value(json_object_get(r, "resourceType"));
        if (t && !strcmp(t, type)) {
            if (full_url)
                *full_url = json_string_value(json_object_get(e, "fullUrl"));
            return r;
        }
    }
    return NULL;
}

/* Every {"reference": ...} in v points at a fullUrl of the bundle. */
static int refs_resolve(const json_t *bundle, const json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (!strcmp(k, "reference") && json_is_string(x)) {
                int found = 0;
                size_t i;
                json_t *e;
                json_array_foreach(json_object_get(bundle, "entry"), i, e)
                {
                    const char *u = json_string_value(json_object_get(e, "fullUrl"));
                    if (u && json_string_value(x) && !strcmp(u, json_string_value(x)))
                        found = 1;
                }
                if (!found)
                    return 0;
            } else if (!refs_resolve(bundle, x)) {
                return 0;
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!refs_resolve(bundle, x))
                return 0;
        }
    }
    return 1;
}

static void test_fhir(void)
{
    json_t *c = fixture_case(21, "PT-2026-0100", "high", 77, "accepted", "requested", NULL);
    json_t *b = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_fhir_bundle(c, g_photo, g_plen, "image/jpeg", &b, &err), BASIRA_OK);
    CHECK_STR(json_string_value(json_object_get(b, "resourceType")), "Bundle");
    CHECK_STR(json_string_value(json_object_get(b, "type")), "collection");
    const char *types[] = {"Patient", "Consent",     "Practitioner",   "Media",
                           "Device",  "Observation", "ServiceRequest", "DiagnosticReport"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        CHECK_MSG(entry_of(b, types[i], NULL) != NULL, "no %s", types[i]);
    CHECK(refs_resolve(b, b));
    /* Every decision is a Provenance of the report, with who, role and reason. */
    int prov = 0, saw_first = 0;
    size_t pi;
    json_t *pe;
    json_array_foreach(json_object_get(b, "entry"), pi, pe)
    {
        json_t *r = json_object_get(pe, "resource");
        if (strcmp(json_string_value(json_object_get(r, "resourceType")), "Provenance"))
            continue;
        prov++;
        const char *why = json_string_value(
            json_object_get(json_array_get(json_object_get(r, "reason"), 0), "text"));
        const char *who = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(r, "agent"), 0), "who"), "display"));
        saw_first |=
            why && strstr(why, "first look") && who && !strcmp(who, "dr.bennani (dermatologist)");
    }
    CHECK_EQ_INT(prov, 2);
    CHECK(saw_first);
    /* High kept without referral (with a reason): no referral request contradicts it. */
    json_t *nr = fixture_case(22, "PT-2026-0101", "high", 77, "overridden", "none", "stable 10 y");
    json_t *nb = NULL;
    CHECK_EQ_INT(basira_fhir_bundle(nr, g_photo, g_plen, "image/jpeg", &nb, &err), BASIRA_OK);
    CHECK(entry_of(nb, "ServiceRequest", NULL) == NULL);
    CHECK(entry_of(nb, "DiagnosticReport", NULL) != NULL);
    json_decref(nb);
    json_decref(nr);
    /* Patient: pseudonymous identifier only. */
    json_t *pat = entry_of(b, "Patient", NULL);
    CHECK(json_object_get(pat, "name") == NULL);
    CHECK(json_object_get(pat, "birthDate") == NULL);
    CHECK_STR(json_string_value(
                  json_object_get(json_array_get(json_object_get(pat, "identifier"), 0), "value")),
              "PT-2026-0100");
    /* Consent: both purposes. */
    char *cs = json_dumps(entry_of(b, "Consent", NULL), 0);
    CHECK(cs && strstr(cs, "\"TREAT\"") && strstr(cs, "\"HRESCH\"") && !strstr(cs, "\"deny\""));
    free(cs);
    /* Media: the exact g_photo bytes. */
    json_t *content = json_object_get(entry_of(b, "Media", NULL), "content");
    CHECK_STR(json_string_value(json_object_get(content, "contentType")), "image/jpeg");
    gsize dlen = 0;
    guchar *dec = g_base64_decode(json_string_value(json_object_get(content, "data")), &dlen);
    CHECK(dec && dlen == g_plen && !memcmp(dec, g_photo, g_plen));
    g_free(dec);
    /* Observation: index, 7 class probabilities + category, device reference. */
    const char *dev_url = NULL;
    entry_of(b, "Device", &dev_url);
    json_t *obs = entry_of(b, "Observation", NULL);
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(obs, "valueQuantity"), "value")),
               77, 1e-9);
    CHECK_EQ_INT(json_array_size(json_object_get(obs, "component")), 8);
    CHECK(dev_url &&
          !strcmp(json_string_value(json_object_get(json_object_get(obs, "device"), "reference")),
                  dev_url));
    /* ServiceRequest: urgent for high risk, an order once the clinician asked for it. */
    json_t *sr = entry_of(b, "ServiceRequest", NULL);
    CHECK_STR(json_string_value(json_object_get(sr, "priority")), "urgent");
    CHECK_STR(json_string_value(json_object_get(sr, "intent")), "order");
    CHECK_STR(json_string_value(json_object_get(entry_of(b, "DiagnosticReport", NULL), "status")),
              "final");
    /* Same case, same ids. */
    json_t *b2 = NULL;
    CHECK_EQ_INT(basira_fhir_bundle(c, g_photo, g_plen, NULL, &b2, &err), BASIRA_OK);
    const char *u1 = NULL, *u2 = NULL;
    entry_of(b, "Patient", &u1);
    entry_of(b2, "Patient", &u2);
    CHECK(u1 && u2 && !strcmp(u1, u2));
    json_decref(b2);
    json_decref(b);
    json_decref(c);

    /* Medium: routine with a note; low: no referral; research refused: explicit deny. */
    c = fixture_case(22, "PT-2026-0101", "medium", 20, NULL, NULL, NULL);
    json_object_set_new(json_object_get(c, "consent"), "research", json_false());
    CHECK_EQ_INT(basira_fhir_bundle(c, NULL, 0, NULL, &b, &err), BASIRA_OK);
    sr = entry_of(b, "ServiceRequest", NULL);
    CHECK_STR(json_string_value(json_object_get(sr, "priority")), "routine");
    CHECK(json_array_size(json_object_get(sr, "note")) == 1);
    CHECK(entry_of(b, "Media", NULL) == NULL);
    cs = json_dumps(entry_of(b, "Consent", NULL), 0);
    CHECK(cs && strstr(cs, "\"deny\""));
    free(cs);
    CHECK(refs_resolve(b, b));
    CHECK_STR(json_string_value(json_object_get(entry_of(b, "DiagnosticReport", NULL), "status")),
              "preliminary");
    json_decref(b);
    json_decref(c);
    c = fixture_case(23, "PT-2026-0102", "low", 4, "accepted", "none", NULL);
    CHECK_EQ_INT(basira_fhir_bundle(c, NULL, 0, NULL, &b, &err), BASIRA_OK);
    CHECK(entry_of(b, "ServiceRequest", NULL) == NULL);
    json_decref(b);
    json_decref(c);

    /* Bad input. */
    CHECK_EQ_INT(basira_fhir_bundle(NULL, NULL, 0, NULL, &b, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(b == NULL);
    c = json_pack("{s:i}", "id", 1);
    CHECK_EQ_INT(basira_fhir_bundle(c, NULL, 0, NULL, &b, &err), BASIRA_E_FORMAT);
    json_decref(c);
    c = fixture_case(24, "PT-X", "high", 90, NULL, NULL, NULL);
    CHECK_EQ_INT(basira_fhir_bundle(c, g_photo, g_plen, "text/html", &b, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    json_decref(c);
}

/* ---- CSV / JSON ---- */

static int count_records(const char *csv)
{
    /* Records end with CRLF outside quotes. */
    int n = 0, q = 0;
    for (const char *p = csv; *p; p++) {
        if (*p == '"')
            q = !q;
        else if (!q && p[0] == '\r' && p[1] == '\n')
            n++;
    }
    return n;
}

static void test_csv(void)
{
    json_t *arr = json_array();
    json_array_append_new(arr, fixture_case(31, "=HYPERLINK(\"http://x\")", "high", 80,
                                            "overridden", "sent", "a, \"quoted\"\nnote"));
    json_array_append_new(arr, fixture_case(32, "PT-32", NULL, 0, NULL, NULL, NULL));
    json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:f}", "id", (json_int_t)33,
                                         "patient_ref", "@SUM(A1)", "ai_risk", "low",
                                         "ai_risk_index", 7.0)); /* a worklist summary */
    json_array_append_new(arr, json_string("not a case"));       /* ignored */
    char *out = NULL;
    size_t len = 0;
    basira_error err;
    CHECK_EQ_INT(basira_export_cases(arr, "csv", &out, &len, &err), BASIRA_OK);
    CHECK(out && strlen(out) == len);
    if (out) {
        CHECK(!strncmp(out, "case_id,patient_ref,age,sex,body_site,status,", 45));
        CHECK_EQ_INT(count_records(out), 4); /* header + 3 cases */
        /* Formula injection neutralised, quotes doubled, newline kept inside quotes. */
        CHECK(strstr(out, "\r\n31,\"'=HYPERLINK(\"\"http://x\"\")\",58,female,") != NULL);
        CHECK(strstr(out, ",\"a, \"\"quoted\"\"\nnote\",sent,") != NULL);
        CHECK(strstr(out, "\r\n33,\"'@SUM(A1)\",,,,,,,,,,,,,,7,low,") != NULL);
        CHECK(strstr(out, ",mel,0.5600,nv,") != NULL);
        CHECK(strstr(out, "\"dos, omoplate gauche\"") != NULL);
        /* Every record has as many fields as the header. */
        int fields = 0, q = 0, header_fields = -1, bad = 0;
        for (const char *p = out; *p; p++) {
            if (*p == '"')
                q = !q;
            else if (!q && *p == ',')
                fields++;
            else if (!q && *p == '\r') {
                if (header_fields < 0)
                    header_fields = fields;
                else if (fields != header_fields)
                    bad = 1;
                fields = 0;
            }
        }
        CHECK(!bad && header_fields == 31);
    }
    free(out);
    CHECK_EQ_INT(basira_export_cases(arr, "json", &out, &len, &err), BASIRA_OK);
    json_t *doc = out ? json_loads(out, 0, NULL) : NULL;
    CHECK_STR(json_string_value(json_object_get(doc, "format")), "basira-cases");
    CHECK_EQ_INT(json_array_size(json_object_get(doc, "cases")), 4);
    CHECK(json_equal(json_array_get(json_object_get(doc, "cases"), 0), json_array_get(arr, 0)));
    json_decref(doc);
    free(out);
    out = (char *)"x";
    CHECK_EQ_INT(basira_export_cases(arr, "xlsx", &out, &len, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK(out == NULL && strstr(err.message, "xlsx"));
    CHECK_EQ_INT(basira_export_cases(json_object_get(json_array_get(arr, 0), "consent"), "csv",
                                     &out, &len, &err),
                 BASIRA_E_INVALID_ARGUMENT);
    CHECK(basira_export_content_type("csv") && !basira_export_content_type("pdf"));
    json_decref(arr);
    /* An empty export is just the header. */
    arr = json_array();
    CHECK_EQ_INT(basira_export_cases(arr, "csv", &out, &len, &err), BASIRA_OK);
    CHECK(out && count_records(out) == 1);
    free(out);
    json_decref(arr);
}

static void test_report_image(void)
{
    json_t *c = fixture_case(41, "PT-41", "high", 60, NULL, NULL, NULL);
    int64_t id = -1;
    CHECK_EQ_INT(basira_case_report_image(c, &id, NULL), BASIRA_OK);
    CHECK_EQ_INT(id, 4); /* the accepted photo, not the rejected quality event */
    json_object_set_new(json_array_get(json_object_get(c, "images"), 1), "photo_stored",
                        json_false()); /* purged by retention */
    CHECK_EQ_INT(basira_case_report_image(c, &id, NULL), BASIRA_OK);
    CHECK_EQ_INT(id, 0);
    json_decref(c);
    c = fixture_case(42, "PT-42", NULL, 0, NULL, NULL, NULL);
    CHECK_EQ_INT(basira_case_report_image(c, &id, NULL), BASIRA_OK);
    CHECK_EQ_INT(id, 0);
    CHECK_EQ_INT(basira_case_report_image(json_object_get(c, "id"), &id, NULL),
                 BASIRA_E_INVALID_ARGUMENT);
    json_decref(c);
}

/* ---- the per-document catalogue ---- */

static void test_catalog(void)
{
    basira_catalog *cat = NULL;
    basira_error err;
    CHECK_EQ_INT(basira_catalog_open("fr", &cat, &err), BASIRA_OK);
    CHECK_MSG(cat != NULL, "French catalogue not found (is the build's locale/ built?)");
    CHECK_STR(basira_catalog_tr(cat, "Patient"), "Patient");
    CHECK_STR(basira_catalog_tr(cat, "Body site:"), "Localisation :" /* narrow no-break space */);
    CHECK_STR(basira_catalog_tr(cat, "no such message, surely"), "no such message, surely");
    basira_catalog_free(cat);
    CHECK_EQ_INT(basira_catalog_open("xx", &cat, &err), BASIRA_E_INVALID_ARGUMENT);
    CHECK_EQ_INT(basira_catalog_open("en", &cat, &err), BASIRA_OK);
    CHECK(cat == NULL);
    CHECK_STR(basira_catalog_tr(NULL, "Body site:"), "Body site:");
    /* Damaged catalogues: refused, or entries pointing outside ignored. */
    unsigned char bad[28] = {0xde, 0x12, 0x04, 0x95};
    CHECK_EQ_INT(basira_catalog_parse(bad, 10, &cat, &err), BASIRA_E_CORRUPT);
    CHECK_EQ_INT(
        basira_catalog_parse((const unsigned char *)"0123456789abcdef0123456789ab", 28, &cat, &err),
        BASIRA_E_CORRUPT);
    /* Little-endian magic, 1 string, tables at 28 and 36, entries pointing far away. */
    unsigned char mo[44] = {0xde, 0x12, 0x04, 0x95, 0, 0, 0,  0, 1, 0,
                            0,    0,    28,   0,    0, 0, 36, 0, 0, 0};
    mo[28] = 5;
    mo[32] = 0xff;
    mo[33] = 0xff;
    mo[36] = 5;
    mo[40] = 0xf0;
    CHECK_EQ_INT(basira_catalog_parse(mo, sizeof mo, &cat, &err), BASIRA_OK);
    CHECK_STR(basira_catalog_tr(cat, "hello"), "hello");
    basira_catalog_free(cat);
    mo[8] = 0xff; /* a string count the tables cannot hold */
    CHECK_EQ_INT(basira_catalog_parse(mo, sizeof mo, &cat, &err), BASIRA_E_CORRUPT);
}

int main(void)
{
    basira_i18n_init(NULL);
    setup_artefacts();
    if (fixture_photo(&g_photo, &g_plen)) {
        fprintf(stderr, "cannot make the test photo\n");
        return 1;
    }
    if (!have_poppler())
        fprintf(stderr, "note: poppler-utils missing; PDFs are made but not inspected\n");
    RUN(test_catalog);
    RUN(test_letter_fr);
    RUN(test_letter_ar);
    RUN(test_letter_decisions);
    RUN(test_letter_en_without_photo);
    RUN(test_letter_primary_care);
    RUN(test_letter_hostile);
    RUN(test_letter_errors);
    RUN(test_fhir);
    RUN(test_csv);
    RUN(test_report_image);
    free(g_photo);
    return test_summary();
}
