/*
 * deid.c - the PS3.15 Annex E Basic Application Level Confidentiality Profile on a DICOM
 * file read by DCMTK (dcm.h), with the options of basira_deid_options.
 *
 * Order of work, and why:
 *   1. read the whole file (a lazy or truncated element would be a half-read file);
 *   2. refuse what may carry burned-in text: the profile removes identifying attributes,
 *      not identifying pixels;
 *   3. collect the identifiers (patient ID, names, accession...) before changing anything:
 *      they key the pseudonym and the date shift and are what Clean Descriptors scrubs;
 *   4. walk every element, sequences included, last index first (so that removals do not
 *      move what is still to visit), and apply the rule of Table E.1-1 (profile_table.c,
 *      generated from the standard) as modified by the chosen options; private attributes
 *      go unless listed as safe; UIDs outside the standard's own root are remapped even
 *      where the table does not list them, and person names it does not list are emptied
 *      (a name is identifying wherever it is);
 *   5. record what was done: Patient Identity Removed YES, De-identification Method and its
 *      Code Sequence (0012,0064), Longitudinal Temporal Information Modified;
 *   6. write to a partial file, read it back, then rename: a file is de-identified entirely
 *      or not written.
 * Pixel data is never decoded nor touched, so it stays byte-identical.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basira/deid.h"
#include "core/i18n.h"
#include "deid/dcm.h"
#include "deid/pixels.h"
#include "deid/profile.h"

#define MAX_TERMS 48
#define MAX_SAFE 256

typedef struct safe_private {
    uint16_t group;
    uint8_t element; /* within the block */
    char creator[65];
} safe_private;

typedef struct ctx {
    const basira_deid_key *key;
    const basira_deid_options *o;
    basira_deid_result *res;
    int shift_days;
    char *terms[MAX_TERMS]; /* identifying strings scrubbed by Clean Descriptors */
    int n_terms;
    safe_private safe[MAX_SAFE];
    int n_safe;
    deid_pixel_rules pixel_rules;
    const deid_pixel_rule *clean; /* the pixel rule applied to this file, or NULL */
} ctx;

void basira_deid_options_default(basira_deid_options *o)
{
    memset(o, 0, sizeof *o);
}

/* ---- the options' inputs ------------------------------------------------------------ */

static basira_code load_safe_private(ctx *c, const char *path, basira_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return basira_error_set(err, BASIRA_E_IO, _("cannot read %s: %s"), path, strerror(errno));
    char line[256];
    int lineno = 0;
    basira_code rc = BASIRA_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        s[strcspn(s, "\r\n")] = 0;
        if (!*s || *s == '#')
            continue;
        unsigned g, e;
        char creator[65];
        int used = 0;
        if (c->n_safe == MAX_SAFE)
            rc = basira_error_set(err, BASIRA_E_LIMIT,
                                  _("%s: more than %d safe private attributes"), path, MAX_SAFE);
        else if (sscanf(s, "%4x,%64[^,],%2x%n", &g, creator, &e, &used) != 3 || s[used] ||
                 !(g & 1) || e > 0xFF)
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("%s:%d: expected GGGG,CREATOR,EE (odd group, private creator, "
                                    "element within the block, in hex)"),
                                  path, lineno);
        else {
            safe_private *p = &c->safe[c->n_safe++];
            p->group = (uint16_t)g;
            p->element = (uint8_t)e;
            snprintf(p->creator, sizeof p->creator, "%s", creator);
        }
    }
    fclose(f);
    return rc;
}

static void add_term(ctx *c, const char *s)
{
    /* Pieces of at least 2 characters: names split at '^', '=' and spaces. */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, "^= \\,", &save); t;
         t = strtok_r(NULL, "^= \\,", &save)) {
        if (strlen(t) < 2 || c->n_terms == MAX_TERMS)
            continue;
        c->terms[c->n_terms] = strdup(t);
        if (c->terms[c->n_terms])
            c->n_terms++;
    }
}

static void free_terms(ctx *c)
{
    for (int i = 0; i < c->n_terms; i++)
        free(c->terms[i]);
    c->n_terms = 0;
}

/* Replace every case-insensitive occurrence of a term by 'X's (same length). */
static void scrub(const ctx *c, char *s)
{
    for (int t = 0; t < c->n_terms; t++) {
        size_t n = strlen(c->terms[t]);
        for (char *p = s; (p = strcasestr(p, c->terms[t])) != NULL; p += n)
            memset(p, 'X', n);
    }
}

/* ---- values ------------------------------------------------------------------------ */

static int vr_is(const deid_elem *e, const char *vr)
{
    return e->vr[0] == vr[0] && e->vr[1] == vr[1];
}

/* A non-identifying dummy of the element's VR (PS3.15 E.3.1 D), or NULL: empty it. */
static const char *dummy(const deid_elem *e)
{
    if (vr_is(e, "DA"))
        return "19000101";
    if (vr_is(e, "TM"))
        return "000000";
    if (vr_is(e, "DT"))
        return "19000101000000";
    if (vr_is(e, "DS") || vr_is(e, "IS"))
        return "0";
    if (vr_is(e, "AS"))
        return "000Y";
    if (vr_is(e, "CS"))
        return "ANONYMIZED";
    if (vr_is(e, "AE") || vr_is(e, "SH") || vr_is(e, "LO") || vr_is(e, "PN") || vr_is(e, "ST") ||
        vr_is(e, "LT") || vr_is(e, "UT") || vr_is(e, "UC"))
        return "ANONYMIZED";
    return NULL;
}

/* Days from 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

/* Shift the YYYYMMDD at s (8 characters) back by days; 0, or -1 when it is not a date. */
static int shift_date8(char *s, int days)
{
    for (int i = 0; i < 8; i++)
        if (!isdigit((unsigned char)s[i]))
            return -1;
    long y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    unsigned m = (unsigned)((s[4] - '0') * 10 + (s[5] - '0'));
    unsigned d = (unsigned)((s[6] - '0') * 10 + (s[7] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    civil_from_days(days_from_civil(y, m, d) - days, &y, &m, &d);
    if (y < 0 || y > 9999)
        return -1;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%04ld%02u%02u", y, m % 100, d % 100);
    memcpy(s, tmp, 8);
    return 0;
}

/* Every value of a DA or DT (multi-valued, ranges "A-B") moved back; -1 if any is not a date. */
static int shift_dates(char *v, int days)
{
    for (char *p = v; *p;) {
        while (*p == '\\' || *p == '-' || *p == ' ')
            p++;
        if (!*p)
            break;
        if (strlen(p) < 8 || shift_date8(p, days))
            return -1;
        p += 8;
        while (*p && *p != '\\' && *p != '-')
            p++;
    }
    return 0;
}

static basira_code remap_uids(ctx *c, deid_node *n, size_t i, const char *value, basira_error *err)
{
    char out[1024] = "";
    size_t used = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", value);
    for (char *save = NULL, *t = strtok_r(buf, "\\", &save); t; t = strtok_r(NULL, "\\", &save)) {
        char uid[BASIRA_UID_MAX];
        basira_code rc = basira_deid_uid(c->key, t, uid, err);
        if (rc)
            return rc;
        int w = snprintf(out + used, sizeof out - used, "%s%s", used ? "\\" : "", uid);
        if (w < 0 || (size_t)w >= sizeof out - used)
            return basira_error_set(err, BASIRA_E_LIMIT, _("too many UIDs in one attribute"));
        used += (size_t)w;
    }
    c->res->uids++;
    return deid_node_set_string(n, i, out, err);
}

/* ---- the walk ----------------------------------------------------------------------- */

typedef enum { A_KEEP, A_REMOVE, A_EMPTY, A_DUMMY, A_UID, A_SHIFT, A_CLEAN, A_RECURSE } act;

static int is_standard_uid(const char *v)
{
    return !strncmp(v, "1.2.840.10008.", 14);
}

static act decide(const ctx *c, const deid_rule *r, const deid_elem *e)
{
    if (!r) {
        if (e->is_sequence)
            return A_RECURSE;
        if (vr_is(e, "UI"))
            return A_UID; /* kept only if in the standard's root: see apply() */
        if (vr_is(e, "PN"))
            return A_EMPTY;
        return A_KEEP;
    }
    const basira_deid_options *o = c->o;
    if (o->retain_modified_dates && r->modified_dates == DEID_OPT_C &&
        (vr_is(e, "DA") || vr_is(e, "DT") || vr_is(e, "TM")))
        return vr_is(e, "TM") ? A_KEEP : A_SHIFT;
    if (o->retain_patient_chars && r->patient_chars == DEID_OPT_K)
        return A_KEEP;
    if ((o->retain_patient_chars && r->patient_chars == DEID_OPT_C) ||
        (o->clean_descriptors && r->descriptors == DEID_OPT_C))
        return e->is_sequence ? A_RECURSE : e->is_string ? A_CLEAN : A_REMOVE;
    switch (r->basic) {
    case DEID_X:
        return A_REMOVE;
    case DEID_Z:
    case DEID_XZ:
        return A_EMPTY;
    case DEID_D:
    case DEID_XD:
    case DEID_ZD:
    case DEID_XZD:
        /* A dummy sequence cannot be made up: an empty one is the safe equivalent. */
        return e->is_sequence ? A_EMPTY : A_DUMMY;
    case DEID_U:
        return e->is_sequence ? A_RECURSE : A_UID;
    case DEID_XZU:
        return e->is_sequence ? A_RECURSE : A_UID;
    }
    return A_REMOVE;
}

static basira_code walk(ctx *c, deid_node *n, int depth, basira_error *err);

static int safe_private_kept(const ctx *c, deid_node *n, const deid_elem *e)
{
    if (!c->n_safe)
        return 0;
    uint16_t block = e->element >> 8;
    char *creator = NULL;
    if (e->element >= 0x0010 && e->element <= 0x00FF) {
        /* A private creator stays when some attribute of its block may stay. */
        if (deid_node_get_tag(n, e->group, e->element, &creator, NULL))
            return 0;
        int keep = 0;
        for (int i = 0; i < c->n_safe && !keep; i++)
            keep = c->safe[i].group == e->group && !strcmp(c->safe[i].creator, creator);
        free(creator);
        return keep;
    }
    if (block < 0x10 || deid_node_get_tag(n, e->group, block, &creator, NULL))
        return 0;
    int keep = 0;
    for (int i = 0; i < c->n_safe && !keep; i++)
        keep = c->safe[i].group == e->group && c->safe[i].element == (e->element & 0xFF) &&
               !strcmp(c->safe[i].creator, creator);
    free(creator);
    return keep;
}

static basira_code apply(ctx *c, deid_node *n, size_t i, const deid_elem *e, int depth,
                         basira_error *err)
{
    if (deid_is_private(e->group)) {
        if (safe_private_kept(c, n, e))
            return BASIRA_OK;
        c->res->private_removed++;
        return deid_node_remove(n, i, err);
    }
    /* Pixel data and the group lengths are not the profile's business. */
    if ((e->group == 0x7FE0 && e->element == 0x0010) || e->element == 0x0000)
        return BASIRA_OK;
    /* Patient ID and Name become the pseudonym (Z/D and Z allow a dummy): record_method()
     * writes them, whatever VR or value they had. */
    if (depth == 0 && e->group == 0x0010 && (e->element == 0x0020 || e->element == 0x0010)) {
        c->res->replaced++;
        return deid_node_remove(n, i, err);
    }
    const deid_rule *rule = deid_profile_find(e->group, e->element);
    /* An attribute whose VR is still unknown (UN: not in DCMTK's dictionary) cannot be
     * interpreted, so it cannot be shown to be harmless: it goes. */
    if (!rule && vr_is(e, "UN")) {
        c->res->removed++;
        return deid_node_remove(n, i, err);
    }
    act a = decide(c, rule, e);
    if (a == A_RECURSE || (a == A_KEEP && e->is_sequence)) {
        for (size_t k = 0; k < e->items; k++) {
            deid_node *item = deid_node_item(n, i, k);
            basira_code rc = item ? walk(c, item, depth + 1, err) : BASIRA_OK;
            if (rc)
                return rc;
        }
        return BASIRA_OK;
    }
    if (a == A_KEEP || e->length == 0)
        return a == A_REMOVE ? (c->res->removed++, deid_node_remove(n, i, err)) : BASIRA_OK;
    char *v = NULL;
    basira_code rc = BASIRA_OK;
    switch (a) {
    case A_REMOVE:
        c->res->removed++;
        return deid_node_remove(n, i, err);
    case A_EMPTY:
        c->res->emptied++;
        return deid_node_empty(n, i, err);
    case A_DUMMY: {
        const char *d = dummy(e);
        if (vr_is(e, "UI"))
            break; /* handled as a UID below */
        c->res->replaced++;
        return d ? deid_node_set_string(n, i, d, err) : deid_node_empty(n, i, err);
    }
    default:
        break;
    }
    if (!e->is_string) /* a UID, date or text rule on a binary value: nothing safe to keep */
        return (c->res->emptied++, deid_node_empty(n, i, err));
    if ((rc = deid_node_string(n, i, &v, err)))
        return rc;
    if (a == A_UID || a == A_DUMMY) {
        if (is_standard_uid(v) && (a != A_DUMMY))
            rc = BASIRA_OK; /* SOP classes, transfer syntaxes, coding schemes: not identifying */
        else
            rc = remap_uids(c, n, i, v, err);
    } else if (a == A_SHIFT) {
        if (shift_dates(v, c->shift_days)) {
            c->res->emptied++;
            rc = deid_node_empty(n, i, err);
        } else {
            c->res->shifted++;
            rc = deid_node_set_string(n, i, v, err);
        }
    } else if (a == A_CLEAN) {
        scrub(c, v);
        c->res->cleaned++;
        rc = deid_node_set_string(n, i, v, err);
    }
    free(v);
    return rc;
}

static basira_code walk(ctx *c, deid_node *n, int depth, basira_error *err)
{
    if (depth > 64)
        return basira_error_set(err, BASIRA_E_LIMIT, _("sequences nested more than 64 deep"));
    for (size_t i = deid_node_count(n); i-- > 0;) {
        deid_elem e;
        if (deid_node_elem(n, i, &e))
            continue;
        basira_code rc = apply(c, n, i, &e, depth, err);
        if (rc)
            return rc;
    }
    return BASIRA_OK;
}

/* ---- one file ----------------------------------------------------------------------- */

static char *get(deid_node *n, uint16_t g, uint16_t e)
{
    char *v = NULL;
    return deid_node_get_tag(n, g, e, &v, NULL) ? NULL : v;
}

/*
 * What the pseudonym is keyed on: the Patient ID (a national identifier, so that two
 * hospitals agree); without one, the name and birth date; without a name either, the study
 * (each such study is then its own unknown patient). NULL when there is nothing at all.
 */
static char *patient_identity(deid_node *ds, const char *pid, const char *name)
{
    char buf[512];
    if (pid && strspn(pid, " ") < strlen(pid))
        return strdup(pid);
    if (name && strspn(name, " ^") < strlen(name)) {
        char *birth = get(ds, 0x0010, 0x0030);
        snprintf(buf, sizeof buf, "name:%s|%s", name, birth ? birth : "");
        free(birth);
        return strdup(buf);
    }
    char *study = get(ds, 0x0020, 0x000D);
    if (!study)
        return NULL;
    snprintf(buf, sizeof buf, "study:%s", study);
    free(study);
    return strdup(buf);
}

static void copy_out(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* The Study and SOP Instance UIDs of the data set, for the re-identification table. */
static void copy_uids(deid_node *ds, char study[BASIRA_UID_MAX], char sop[BASIRA_UID_MAX])
{
    char *v = get(ds, 0x0020, 0x000D);
    copy_out(study, BASIRA_UID_MAX, v);
    free(v);
    v = get(ds, 0x0008, 0x0018);
    copy_out(sop, BASIRA_UID_MAX, v);
    free(v);
}

/* Burned-in text: refuse unless declared absent (or the steward vouches for the device). */
static basira_code check_burned_in(const ctx *c, deid_node *ds, int *cleanable, basira_error *err)
{
    *cleanable = 0;
    char *burned = get(ds, 0x0028, 0x0301), *faces = get(ds, 0x0028, 0x0302);
    char *modality = get(ds, 0x0008, 0x0060), *sop = get(ds, 0x0008, 0x0016);
    basira_code rc = BASIRA_OK;
    int declared_no = burned && !strncmp(burned, "NO", 2);
    if (burned && !strncmp(burned, "YES", 3))
        rc = (*cleanable = 1,
              basira_error_set(err, BASIRA_E_FORBIDDEN,
                               _("the image has burned-in annotation (Burned In Annotation YES): "
                                 "its pixels may show the patient's identity")));
    else if (faces && !strncmp(faces, "YES", 3))
        rc = basira_error_set(err, BASIRA_E_FORBIDDEN,
                              _("the image shows recognisable visual features (a face)"));
    else if (!declared_no && !c->o->allow_burned_in &&
             ((modality && (!strncmp(modality, "US", 2) || !strncmp(modality, "OT", 2))) ||
              (sop && !strncmp(sop, "1.2.840.10008.5.1.4.1.1.7", 25))))
        rc = (*cleanable = 1,
              basira_error_set(err, BASIRA_E_FORBIDDEN,
                               _("ultrasound, secondary capture and other images without Burned "
                                 "In Annotation NO may carry burned-in text: refused (after "
                                 "checking the device, use --allow-burned-in or a pixel rule)")));
    free(burned);
    free(faces);
    free(modality);
    free(sop);
    return rc;
}

static basira_code record_method(const ctx *c, deid_node *ds, basira_error *err)
{
    const basira_deid_options *o = c->o;
    char method[64 + 1];
    snprintf(method, sizeof method, "Basira PS3.15 %s%s%s%s", "2024e Basic",
             o->retain_modified_dates ? " ModDates" : "", o->retain_patient_chars ? " PatChar" : "",
             o->clean_descriptors ? " CleanDesc" : "");
    basira_code rc = deid_node_put_tag(ds, 0x0010, 0x0010, c->res->pseudonym, err);
    if (!rc)
        rc = deid_node_put_tag(ds, 0x0010, 0x0020, c->res->pseudonym, err);
    if (!rc)
        rc = deid_node_put_tag(ds, 0x0012, 0x0062, "YES", err);
    if (!rc)
        rc = deid_node_put_tag(ds, 0x0012, 0x0063, method, err);
    /* (0012,0064) De-identification Method Code Sequence: CID 7050 codes. */
    if (!rc)
        rc = deid_node_add_code(ds, 0x0012, 0x0064, "113100", "DCM",
                                "Basic Application Confidentiality Profile", err);
    if (!rc && o->retain_modified_dates)
        rc = deid_node_add_code(ds, 0x0012, 0x0064, "113107", "DCM",
                                "Retain Longitudinal Temporal Information Modified Dates Option",
                                err);
    if (!rc && o->retain_patient_chars)
        rc = deid_node_add_code(ds, 0x0012, 0x0064, "113108", "DCM",
                                "Retain Patient Characteristics Option", err);
    if (!rc && o->clean_descriptors)
        rc = deid_node_add_code(ds, 0x0012, 0x0064, "113105", "DCM", "Clean Descriptors Option",
                                err);
    if (!rc && o->safe_private_list)
        rc = deid_node_add_code(ds, 0x0012, 0x0064, "113111", "DCM", "Retain Safe Private Option",
                                err);
    if (!rc && c->clean)
        rc =
            deid_node_add_code(ds, 0x0012, 0x0064, "113101", "DCM", "Clean Pixel Data Option", err);
    if (!rc && c->clean)
        rc = deid_node_put_tag(ds, 0x0028, 0x0301, "NO", err);
    if (!rc)
        rc = deid_node_put_tag(ds, 0x0028, 0x0303,
                               o->retain_modified_dates ? "MODIFIED" : "REMOVED", err);
    return rc;
}

/* The file meta information: only what identifies the sender goes (the rest DCMTK rebuilds). */
static basira_code clean_meta(deid_node *meta, basira_error *err)
{
    if (!meta)
        return BASIRA_OK;
    for (size_t i = deid_node_count(meta); i-- > 0;) {
        deid_elem e;
        if (deid_node_elem(meta, i, &e))
            continue;
        if (e.group == 0x0002 &&
            (e.element == 0x0016 || e.element == 0x0017 || e.element == 0x0018 ||
             e.element == 0x0100 || e.element == 0x0102)) {
            basira_code rc = deid_node_remove(meta, i, err);
            if (rc)
                return rc;
        }
    }
    return BASIRA_OK;
}

static basira_code deid_loaded(deid_dcm *d, const basira_deid_key *k, const basira_deid_options *o,
                               basira_deid_result *res, basira_error *err)
{
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    c->key = k;
    c->o = o;
    c->res = res;
    deid_node *ds = deid_dcm_dataset(d);
    basira_code rc = o->safe_private_list ? load_safe_private(c, o->safe_private_list, err) : 0;
    if (!rc && o->pixel_rules)
        rc = deid_pixel_rules_load(o->pixel_rules, &c->pixel_rules, err);
    int cleanable = 0;
    if (!rc)
        rc = check_burned_in(c, ds, &cleanable, err);
    /* Burned-in text where a rule of the steward says where it is: cleaned, not refused. */
    if (rc == BASIRA_E_FORBIDDEN && cleanable &&
        (c->clean = deid_pixel_rules_match(&c->pixel_rules, ds)) != NULL) {
        basira_error_clear(err);
        rc = deid_pixel_rule_apply(c->clean, d, err);
    }
    char *pid = NULL, *name = NULL, *identity = NULL;
    if (!rc) {
        pid = get(ds, 0x0010, 0x0020);
        name = get(ds, 0x0010, 0x0010);
        identity = patient_identity(ds, pid, name);
        deid_node *meta = deid_dcm_meta(d);
        char *media = meta ? get(meta, 0x0002, 0x0002) : NULL;
        if (media && !strcmp(media, "1.2.840.10008.1.3.10"))
            rc = basira_error_set(err, BASIRA_E_UNSUPPORTED,
                                  _("a DICOMDIR is an index of media, not an image: "
                                    "de-identify the files it lists"));
        else if (!identity)
            rc = basira_error_set(err, BASIRA_E_FORMAT,
                                  _("the file has no Patient ID, Patient's Name or Study Instance "
                                    "UID: no pseudonym can be derived"));
        free(media);
    }
    if (!rc)
        rc = basira_pseudonym(k, identity, res->pseudonym, err);
    if (!rc) {
        copy_out(res->patient_id, sizeof res->patient_id, pid);
        copy_out(res->patient_name, sizeof res->patient_name, name);
        copy_uids(ds, res->study_uid, res->sop_uid);
        c->shift_days = basira_deid_date_shift(k, identity);
        /* What Clean Descriptors scrubs from free text. */
        static const uint16_t ident[][2] = {
            {0x0010, 0x0010}, {0x0010, 0x0020}, {0x0010, 0x1000}, {0x0010, 0x1001},
            {0x0010, 0x0030}, {0x0008, 0x0050}, {0x0008, 0x0080}, {0x0008, 0x0090},
            {0x0010, 0x1060}, {0x0008, 0x1050}, {0x0008, 0x1070}, {0x0010, 0x2154},
            {0x0010, 0x1040}, {0x0020, 0x0010},
        };
        for (size_t i = 0; i < sizeof ident / sizeof ident[0]; i++) {
            char *t = get(ds, ident[i][0], ident[i][1]);
            if (t)
                add_term(c, t);
            free(t);
        }
    }
    free(pid);
    free(name);
    free(identity);
    if (!rc)
        rc = walk(c, ds, 0, err);
    if (!rc)
        rc = clean_meta(deid_dcm_meta(d), err);
    if (!rc)
        rc = record_method(c, ds, err);
    if (!rc)
        copy_uids(ds, res->new_study_uid, res->new_sop_uid);
    free_terms(c);
    free(c);
    return rc;
}

static basira_code not_dicom(const char *what, basira_error *err)
{
    char reason[BASIRA_ERROR_MESSAGE_MAX];
    snprintf(reason, sizeof reason, "%s", err ? err->message : "");
    return basira_error_set(err, BASIRA_E_FORMAT,
                            _("%s is not a DICOM file that can be read completely (%s)"), what,
                            reason);
}

basira_code basira_deid_dicom_buffer(const void *data, size_t len, const basira_deid_key *k,
                                     const basira_deid_options *o, basira_deid_result *res,
                                     basira_error *err)
{
    memset(res, 0, sizeof *res);
    deid_dcm *d = NULL;
    if (deid_dcm_load_buffer(data, len, &d, err))
        return not_dicom(_("the data"), err);
    basira_code rc = deid_loaded(d, k, o, res, err);
    deid_dcm_free(d);
    return rc;
}

basira_code basira_deid_dicom_file(const char *in, const char *out, const basira_deid_key *k,
                                   const basira_deid_options *o, basira_deid_result *res,
                                   basira_error *err)
{
    memset(res, 0, sizeof *res);
    struct stat st;
    if (stat(in, &st) || !S_ISREG(st.st_mode))
        return basira_error_set(err, BASIRA_E_NOT_FOUND, _("%s: no such file"), in);
    /* DCMTK reads the whole file into memory: the budget is the file's size. */
    if ((uint64_t)st.st_size > BASIRA_DEID_MAX_FILE)
        return basira_error_set(err, BASIRA_E_LIMIT, _("%s is larger than %d MiB"), in,
                                (int)(BASIRA_DEID_MAX_FILE >> 20));
    if (!lstat(out, &st))
        return basira_error_set(err, BASIRA_E_CONFLICT,
                                _("%s already exists: it is never overwritten"), out);
    deid_dcm *d = NULL;
    if (deid_dcm_load_file(in, &d, err))
        return not_dicom(in, err);
    basira_code rc = deid_loaded(d, k, o, res, err);
    char partial[4096];
    if (!rc && snprintf(partial, sizeof partial, "%s.partial", out) >= (int)sizeof partial)
        rc = basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("path too long: %s"), out);
    if (!rc) {
        rc = deid_dcm_save_file(d, partial, err);
        /* Read back what was written: a file DCMTK cannot read again is not delivered. */
        deid_dcm *check = NULL;
        if (!rc && deid_dcm_load_file(partial, &check, err))
            rc = not_dicom(partial, err);
        deid_dcm_free(check);
        if (!rc && rename(partial, out))
            rc = basira_error_set(err, BASIRA_E_IO, _("cannot write %s: %s"), out, strerror(errno));
        if (rc)
            unlink(partial);
    }
    deid_dcm_free(d);
    return rc;
}

basira_code basira_deid_check_file(const char *path, char pseudonym[BASIRA_PSEUDONYM_MAX],
                                   basira_error *err)
{
    deid_dcm *d = NULL;
    if (deid_dcm_load_file(path, &d, err))
        return not_dicom(path, err);
    deid_node *ds = deid_dcm_dataset(d);
    char *removed = get(ds, 0x0012, 0x0062), *pid = get(ds, 0x0010, 0x0020);
    int ok =
        removed && !strcmp(removed, "YES") && pid && strlen(pid) == 23 && !strncmp(pid, "BSR", 3);
    /* The method code sequence must name the Basic Profile. */
    int coded = 0;
    for (size_t i = 0; ok && i < deid_node_count(ds); i++) {
        deid_elem e;
        if (deid_node_elem(ds, i, &e))
            continue;
        if (deid_is_private(e.group))
            ok = 0;
        if (e.group == 0x0012 && e.element == 0x0064)
            for (size_t k = 0; k < e.items; k++) {
                deid_node *item = deid_node_item(ds, i, k);
                char *code = item ? get(item, 0x0008, 0x0100) : NULL;
                coded |= code && !strcmp(code, "113100");
                free(code);
            }
    }
    ok = ok && coded;
    if (ok && pseudonym)
        snprintf(pseudonym, BASIRA_PSEUDONYM_MAX, "%s", pid);
    free(removed);
    free(pid);
    deid_dcm_free(d);
    if (!ok)
        return basira_error_set(err, BASIRA_E_FORBIDDEN,
                                _("%s is not de-identified by 'basira anonymize' (Patient "
                                  "Identity Removed, pseudonym, method code or private "
                                  "attributes): it is not sent"),
                                path);
    return BASIRA_OK;
}
