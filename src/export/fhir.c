/*
 * fhir.c - a case as a FHIR R4 Bundle (type "collection").
 *
 * Resources reference each other by "urn:uuid:" full URLs, as a collection
 * bundle may. The UUIDs are derived from the case (id, creation time,
 * pseudonymous reference) and the resource's role, so exporting a case twice
 * gives the same identifiers and a receiving system can recognise an update.
 *
 * Codes: standard terminologies where one fits (LOINC for the consent
 * category, HL7 v3 ActReason for the purposes of processing, SNOMED CT for the
 * referral, HL7 observation categories and interpretations); Basira's own
 * concepts (risk index, class codes of the model) use the "urn:basira:" systems
 * documented in docs/export.md.
 */
#include "basira/export.h"
#include "basira/paths.h"
#include "core/i18n.h"
#include "export/util.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SYS_PATIENT_REF "urn:basira:patient-ref"
#define SYS_USER "urn:basira:user"
#define SYS_CASE "urn:basira:case"
#define SYS_OBS "urn:basira:observation"
#define SYS_CLASS "urn:basira:class"
#define SYS_MODEL_SHA "urn:basira:model-sha256"

enum {
    R_PATIENT,
    R_CONSENT,
    R_PRACTITIONER,
    R_MEDIA,
    R_DEVICE,
    R_OBSERVATION,
    R_REQUEST,
    R_REPORT
};

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A version-4-shaped UUID URN from the case's identity and the resource's role. */
static void resource_urn(const json_t *c, int role, char out[64])
{
    char key[256];
    json_t *id = json_object_get(c, "id");
    snprintf(key, sizeof key, "basira|%lld|%s|%s|%d",
             json_is_integer(id) ? (long long)json_integer_value(id) : 0LL,
             ex_str(c, "created_at") ? ex_str(c, "created_at") : "",
             ex_str(c, "patient_ref") ? ex_str(c, "patient_ref") : "", role);
    uint64_t a = fnv1a(0xcbf29ce484222325ull, key);
    uint64_t b = fnv1a(a ^ 0x9e3779b97f4a7c15ull, key);
    snprintf(out, 64, "urn:uuid:%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffffu, (unsigned)a & 0xfffu,
             (unsigned)(0x8000u | ((b >> 48) & 0x3fffu)),
             (unsigned long long)(b & 0xffffffffffffull));
}

static json_t *ref(const char *urn)
{
    return json_pack("{s:s}", "reference", urn);
}

static json_t *coding(const char *system, const char *code, const char *display)
{
    return json_pack("{s:s, s:s, s:s*}", "system", system, "code", code, "display", display);
}

static json_t *concept(const char *system, const char *code, const char *display)
{
    return json_pack("{s:[o], s:s*}", "coding", coding(system, code, display), "text", display);
}

/* Append {"fullUrl", "resource"} to the bundle's entries; takes res. */
static int add_entry(json_t *entries, const char *urn, json_t *res)
{
    if (!res)
        return -1;
    return json_array_append_new(entries, json_pack("{s:s, s:o}", "fullUrl", urn, "resource", res));
}

/* A FHIR dateTime from the store's ISO time, or NULL when it is not one. */
static const char *fhir_time(const char *iso)
{
    if (!iso || strlen(iso) != 20 || strspn(iso, "0123456789-:TZ") != 20 || iso[10] != 'T')
        return NULL;
    return iso;
}

static const char *fhir_gender(const char *sex)
{
    static const char *const ok[] = {"female", "male", "other"};
    for (size_t i = 0; sex && i < 3; i++)
        if (!strcmp(sex, ok[i]))
            return ok[i];
    return "unknown";
}

static json_t *patient(const json_t *c)
{
    const char *pref = ex_str(c, "patient_ref");
    return json_pack("{s:s, s:[{s:s, s:s, s:s}], s:s}", "resourceType", "Patient", "identifier",
                     "use", "secondary", "system", SYS_PATIENT_REF, "value", pref ? pref : "",
                     "gender", fhir_gender(ex_str(c, "sex")));
}

static json_t *practitioner(const char *username)
{
    return json_pack("{s:s, s:[{s:s, s:s}]}", "resourceType", "Practitioner", "identifier",
                     "system", SYS_USER, "value", username);
}

static json_t *consent(const json_t *c, const char *patient_urn, const char *recorder_urn)
{
    const json_t *k = json_object_get(c, "consent");
    int care = json_is_true(json_object_get(k, "care"));
    int research = json_is_true(json_object_get(k, "research"));
    json_t *purposes = json_array();
    if (care)
        json_array_append_new(purposes, coding("http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                               "TREAT", "treatment"));
    if (research)
        json_array_append_new(purposes, coding("http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                               "HRESCH", "healthcare research"));
    json_t *provision =
        json_pack("{s:s, s:o}", "type", care ? "permit" : "deny", "purpose", purposes);
    if (recorder_urn)
        json_object_set_new(
            provision, "actor",
            json_pack("[{s:o, s:o}]", "role",
                      concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ENT",
                              "data entry person"),
                      "reference", ref(recorder_urn)));
    if (!research) {
        /* Research refused: say so explicitly, a nested deny for that purpose. */
        json_object_set_new(provision, "provision",
                            json_pack("[{s:s, s:[o]}]", "type", "deny", "purpose",
                                      coding("http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                             "HRESCH", "healthcare research")));
    }
    json_t *res =
        json_pack("{s:s, s:s, s:o, s:[o], s:o, s:o, s:o}", "resourceType", "Consent", "status",
                  care ? "active" : "rejected", "scope",
                  concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy",
                          "Privacy Consent"),
                  "category", concept("http://loinc.org", "59284-0", "Patient Consent"), "patient",
                  ref(patient_urn), "policyRule",
                  concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in"),
                  "provision", provision);
    if (res) {
        const char *at = fhir_time(ex_str(k, "recorded_at"));
        if (at)
            json_object_set_new(res, "dateTime", json_string(at));
    }
    return res;
}

static json_t *media(const json_t *c, const unsigned char *photo, size_t len, const char *mime,
                     const char *patient_urn)
{
    gchar *b64 = g_base64_encode(photo, len);
    if (!b64)
        return NULL;
    json_t *res = json_pack(
        "{s:s, s:s, s:o, s:o, s:{s:s, s:s, s:I}}", "resourceType", "Media", "status", "completed",
        "type", concept("http://terminology.hl7.org/CodeSystem/media-type", "image", "Image"),
        "subject", ref(patient_urn), "content", "contentType", mime ? mime : "image/jpeg", "data",
        b64, "size", (json_int_t)len);
    g_free(b64);
    const json_t *img = ex_report_image(c);
    const char *at = fhir_time(ex_str(img, "created_at"));
    if (res && at)
        json_object_set_new(res, "createdDateTime", json_string(at));
    const char *site = ex_str(c, "body_site");
    if (res && site && *site)
        json_object_set_new(res, "bodySite", json_pack("{s:s}", "text", site));
    return res;
}

static json_t *device(const json_t *model)
{
    const char *name = ex_str(model, "name"), *version = ex_str(model, "version");
    const char *sha = ex_str(model, "sha256");
    json_t *res =
        json_pack("{s:s, s:s, s:[{s:s, s:s}], s:{s:s}}", "resourceType", "Device", "status",
                  "active", "deviceName", "name", name ? name : "unknown", "type", "model-name",
                  "type", "text", "AI software: skin lesion triage (decision support)");
    if (res && version)
        json_object_set_new(res, "version", json_pack("[{s:s}]", "value", version));
    if (res && sha)
        json_object_set_new(res, "identifier",
                            json_pack("[{s:s, s:s}]", "system", SYS_MODEL_SHA, "value", sha));
    return res;
}

static const char *interpretation(const char *cat)
{
    /* v3 ObservationInterpretation: HH critical high, H high, N normal. */
    if (cat && !strcmp(cat, "high"))
        return "HH";
    if (cat && !strcmp(cat, "medium"))
        return "H";
    return "N";
}

static json_t *observation(const json_t *c, const json_t *res, const char *patient_urn,
                           const char *device_urn, const char *media_urn)
{
    const json_t *risk = json_object_get(res, "risk");
    double index = ex_num(risk, "index");
    const char *cat = ex_str(risk, "category");
    json_t *components = json_array();
    size_t i;
    json_t *cand;
    /* Every class probability, most likely first (candidates), then the rest. */
    json_t *probs = json_object_get(res, "probabilities");
    const char *code;
    json_t *pv;
    json_object_foreach(probs, code, pv)
    {
        if (!json_is_number(pv))
            continue;
        const char *display = NULL;
        json_array_foreach(json_object_get(res, "candidates"), i, cand)
        {
            if (ex_str(cand, "code") && !strcmp(ex_str(cand, "code"), code))
                display = ex_str(cand, "name");
        }
        json_array_append_new(components,
                              json_pack("{s:o, s:{s:f, s:s, s:s, s:s}}", "code",
                                        concept(SYS_CLASS, code, display), "valueQuantity", "value",
                                        json_number_value(pv), "unit", "probability", "system",
                                        "http://unitsofmeasure.org", "code", "1"));
    }
    if (cat)
        json_array_append_new(
            components,
            json_pack("{s:o, s:o}", "code", concept(SYS_OBS, "risk-category", "Risk category"),
                      "valueCodeableConcept", concept("urn:basira:risk-category", cat, cat)));
    const char *action = ex_str(risk, "action");
    json_t *o = json_pack(
        "{s:s, s:s, s:[o], s:o, s:o, s:o, s:[o], s:o}", "resourceType", "Observation", "status",
        "final", "category",
        concept("http://terminology.hl7.org/CodeSystem/observation-category", "imaging", "Imaging"),
        "code", concept(SYS_OBS, "risk-index", "Skin lesion risk index (0-100, AI)"), "subject",
        ref(patient_urn), "device", ref(device_urn), "interpretation",
        concept("http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                interpretation(cat), cat),
        "component", components);
    if (!o)
        return NULL;
    /* How the photo was taken (issue 11): the Observation's method. */
    const char *kind = ex_str(json_object_get(res, "modality"), "kind");
    if (kind && json_object_set_new(o, "method",
                                    concept("urn:basira:photo-kind", kind,
                                            !strcmp(kind, "dermoscopic")
                                                ? "Dermoscopic photograph"
                                                : "Clinical photograph (no dermatoscope)"))) {
        json_decref(o);
        return NULL;
    }
    if (media_urn)
        json_object_set_new(o, "derivedFrom", json_pack("[o]", ref(media_urn)));
    if (isfinite(index))
        json_object_set_new(o, "valueQuantity",
                            json_pack("{s:f, s:s, s:s, s:s}", "value", index, "unit", "/100",
                                      "system", "http://unitsofmeasure.org", "code", "1"));
    const char *at = fhir_time(ex_str(ex_report_image(c), "created_at"));
    if (at)
        json_object_set_new(o, "effectiveDateTime", json_string(at));
    if (action)
        json_object_set_new(o, "note", json_pack("[{s:s}]", "text", action));
    return o;
}

static json_t *service_request(const json_t *c, const char *cat, const char *patient_urn,
                               const char *obs_urn, const char *media_urn)
{
    const json_t *d = json_object_get(c, "decision");
    const char *referral = ex_str(d, "referral");
    const char *status = "draft", *intent = "proposal";
    if (referral && strcmp(referral, "none")) {
        intent = "order";
        status = !strcmp(referral, "completed") ? "completed" : "active";
    } else if (json_is_object(d)) {
        intent = "plan";
    }
    /* high -> urgent; medium -> routine with a note saying follow-up or remote review. */
    const char *priority = cat && !strcmp(cat, "high") ? "urgent" : "routine";
    json_t *sr = json_pack(
        "{s:s, s:s, s:s, s:s, s:[o], s:o, s:o}", "resourceType", "ServiceRequest", "status", status,
        "intent", intent, "priority", priority, "category",
        concept("http://snomed.info/sct", "3457005", "Patient referral"), "code",
        concept("http://snomed.info/sct", "394582007", "Dermatology"), "subject", ref(patient_urn));
    if (!sr)
        return NULL;
    json_object_set_new(sr, "reasonReference", json_pack("[o]", ref(obs_urn)));
    if (media_urn)
        json_object_set_new(sr, "supportingInfo", json_pack("[o]", ref(media_urn)));
    const char *at = fhir_time(ex_str(d, "decided_at"));
    if (!at)
        at = fhir_time(ex_str(c, "updated_at"));
    if (at)
        json_object_set_new(sr, "authoredOn", json_string(at));
    json_t *notes = json_array();
    if (cat && !strcmp(cat, "medium"))
        json_array_append_new(notes,
                              json_pack("{s:s}", "text",
                                        "Medium risk: scheduled follow-up or remote review by a "
                                        "dermatologist."));
    const char *reason = ex_str(d, "reason");
    if (reason && *reason)
        json_array_append_new(notes, json_pack("{s:s}", "text", reason));
    if (json_array_size(notes))
        json_object_set_new(sr, "note", notes);
    else
        json_decref(notes);
    return sr;
}

/*
 * One Provenance per clinician decision, oldest first: who (and their role)
 * decided what, when and why. Decisions are versions, never overwritten, so a
 * receiving system sees the dermatologist's "high, referral requested" even
 * after a later "low".
 */
static int add_provenances(json_t *entries, const json_t *c, const char *report_urn)
{
    const json_t *ds = json_object_get(c, "decisions");
    size_t i;
    json_t *d;
    json_array_foreach(ds, i, d)
    {
        const char *at = fhir_time(ex_str(d, "decided_at"));
        const char *who = ex_str(d, "decided_by");
        if (!at || !who)
            continue;
        char what[1200], urn[64];
        const char *reason = ex_str(d, "reason"), *note = ex_str(d, "note");
        snprintf(what, sizeof what, "Decision %zu: %s category %s, referral %s%s%s%s%s", i + 1,
                 strcmp(ex_str(d, "outcome") ? ex_str(d, "outcome") : "", "accepted")
                     ? "overridden to"
                     : "AI category accepted:",
                 ex_str(d, "category") ? ex_str(d, "category") : "?",
                 ex_str(d, "referral") ? ex_str(d, "referral") : "none", reason ? ". Reason: " : "",
                 reason ? reason : "", note ? ". Note: " : "", note ? note : "");
        char display[160];
        snprintf(display, sizeof display, "%s (%s)", who,
                 ex_str(d, "role") ? ex_str(d, "role") : "clinician");
        json_t *pv = json_pack(
            "{s:s, s:[o], s:s, s:[{s:o, s:{s:{s:s, s:s}, s:s}}], s:[{s:s}]}", "resourceType",
            "Provenance", "target", ref(report_urn), "recorded", at, "agent", "type",
            concept("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author",
                    "Author"),
            "who", "identifier", "system", SYS_USER, "value", who, "display", display, "reason",
            "text", what);
        resource_urn(c, 100 + (int)i, urn);
        if (add_entry(entries, urn, pv))
            return -1;
    }
    return 0;
}

static json_t *diagnostic_report(const json_t *c, const json_t *res, const char *cat,
                                 const char *patient_urn, const char *obs_urn,
                                 const char *media_urn)
{
    const json_t *d = json_object_get(c, "decision");
    char conclusion[1024];
    const char *outcome = ex_str(d, "outcome");
    snprintf(conclusion, sizeof conclusion, "Risk category: %s (%s). %s %s", cat ? cat : "unknown",
             outcome ? (strcmp(outcome, "accepted") ? "AI category overridden by the clinician"
                                                    : "AI category accepted by the clinician")
                     : "not yet reviewed by a clinician",
             ex_str(json_object_get(res, "risk"), "action")
                 ? ex_str(json_object_get(res, "risk"), "action")
                 : "",
             "Decision support, not a diagnosis.");
    json_t *r = json_pack(
        "{s:s, s:s, s:[o], s:o, s:o, s:s}", "resourceType", "DiagnosticReport", "status",
        outcome ? "final" : "preliminary", "category",
        concept("http://terminology.hl7.org/CodeSystem/v2-0074", "IMG", "Diagnostic Imaging"),
        "code", concept(SYS_OBS, "skin-lesion-triage", "Skin lesion photo triage"), "subject",
        ref(patient_urn), "conclusion", conclusion);
    if (!r)
        return NULL;
    json_t *cid = json_object_get(c, "id");
    if (json_is_integer(cid)) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)json_integer_value(cid));
        json_object_set_new(r, "identifier",
                            json_pack("[{s:s, s:s}]", "system", SYS_CASE, "value", v));
    }
    if (obs_urn)
        json_object_set_new(r, "result", json_pack("[o]", ref(obs_urn)));
    if (media_urn)
        json_object_set_new(r, "media", json_pack("[{s:o}]", "link", ref(media_urn)));
    const char *eff = fhir_time(ex_str(c, "created_at"));
    if (eff)
        json_object_set_new(r, "effectiveDateTime", json_string(eff));
    const char *issued = fhir_time(ex_str(c, "updated_at"));
    if (issued)
        json_object_set_new(r, "issued", json_string(issued));
    return r;
}

basira_code basira_fhir_bundle(const json_t *case_json, const unsigned char *photo, size_t len,
                               const char *photo_mime, json_t **bundle, basira_error *err)
{
    if (!bundle)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    *bundle = NULL;
    if (!json_is_object(case_json))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, _("the case is not a JSON object"));
    if (!ex_str(case_json, "patient_ref") || !*ex_str(case_json, "patient_ref"))
        return basira_error_set(err, BASIRA_E_FORMAT,
                                _("the case has no pseudonymous patient reference"));
    if (photo_mime && strncmp(photo_mime, "image/", 6))
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("the photo's media type must be an image type"));
    char u[8][64];
    for (int i = 0; i < 8; i++)
        resource_urn(case_json, i, u[i]);
    const json_t *res = ex_report_result(case_json);
    const char *cat = ex_final_category(case_json);
    const char *recorder = ex_str(json_object_get(case_json, "consent"), "recorded_by");
    int with_media = photo && len > 0;
    json_t *entries = json_array();
    int bad = !entries;
    bad = bad || add_entry(entries, u[R_PATIENT], patient(case_json));
    if (recorder && *recorder)
        bad = bad || add_entry(entries, u[R_PRACTITIONER], practitioner(recorder));
    bad = bad || add_entry(entries, u[R_CONSENT],
                           consent(case_json, u[R_PATIENT],
                                   recorder && *recorder ? u[R_PRACTITIONER] : NULL));
    if (with_media)
        bad = bad || add_entry(entries, u[R_MEDIA],
                               media(case_json, photo, len, photo_mime, u[R_PATIENT]));
    if (res) {
        bad = bad || add_entry(entries, u[R_DEVICE], device(json_object_get(res, "model")));
        bad = bad || add_entry(entries, u[R_OBSERVATION],
                               observation(case_json, res, u[R_PATIENT], u[R_DEVICE],
                                           with_media ? u[R_MEDIA] : NULL));
    }
    const json_t *decision = json_object_get(case_json, "decision");
    const char *referral = ex_str(decision, "referral");
    int wants_referral = referral && strcmp(referral, "none");
    /* A clinician who kept "high" but chose not to refer (with a reason) gets no referral
     * request in the bundle: it would contradict the decision. */
    int declined = json_is_object(decision) && cat && !strcmp(cat, "high") && !wants_referral;
    if (res && cat && (strcmp(cat, "low") || wants_referral) && !declined)
        bad = bad || add_entry(entries, u[R_REQUEST],
                               service_request(case_json, cat, u[R_PATIENT], u[R_OBSERVATION],
                                               with_media ? u[R_MEDIA] : NULL));
    bad = bad || add_entry(entries, u[R_REPORT],
                           diagnostic_report(case_json, res, cat, u[R_PATIENT],
                                             res ? u[R_OBSERVATION] : NULL,
                                             with_media ? u[R_MEDIA] : NULL));
    bad = bad || add_provenances(entries, case_json, u[R_REPORT]);
    char now[32];
    ex_iso_time((int64_t)time(NULL), now, sizeof now);
    json_t *b = bad ? NULL
                    : json_pack("{s:s, s:s, s:s, s:o}", "resourceType", "Bundle", "type",
                                "collection", "timestamp", now, "entry", entries);
    if (!b) {
        if (!bad)
            entries = NULL; /* json_pack took it even on failure */
        json_decref(entries);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    *bundle = b;
    return BASIRA_OK;
}
