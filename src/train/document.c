/*
 * document.c - what `basira train` writes about a model: its figures as JSON and
 * the "basira" metadata document that the model module reads back.
 */
#include "basira/paths.h"
#include "train/trainer_internal.h"

#include <stdlib.h>
#include <string.h>

json_t *train_metrics_json(const trainer *t, const train_metrics *m)
{
    json_t *recall = json_object();
    for (int c = 0; c < t->k; c++)
        json_object_set_new(recall, t->ds.classes.c[c].code, jnum(m->recall[c]));
    json_t *j = json_object();
    json_object_set_new(j, "n", json_integer((json_int_t)m->n));
    json_object_set_new(j, "loss", jnum(m->loss));
    json_object_set_new(j, "accuracy", jnum(m->accuracy));
    json_object_set_new(j, "balanced_accuracy", jnum(m->balanced_accuracy));
    json_object_set_new(j, "auc_malignant", jnum(m->auc));
    json_object_set_new(j, "recall", recall);
    return j;
}

/* ---- the model's metadata ------------------------------------------------------------ */

json_t *train_split_json(const trainer *t)
{
    const train_dataset *ds = &t->ds;
    /* "given_by": the column that gave the parts (--split-col); absent when they were drawn. */
    return json_pack("{s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:[f,f,f], s:s?, s:s?}", "train",
                     (json_int_t)ds->count[0], "val", (json_int_t)ds->count[1], "test",
                     (json_int_t)ds->count[2], "groups", "train", (json_int_t)ds->groups[0], "val",
                     (json_int_t)ds->groups[1], "test", (json_int_t)ds->groups[2], "fractions",
                     t->o->split[0], t->o->split[1], t->o->split[2], "by", t->o->group_col,
                     "given_by", t->o->parts ? NULL : t->o->split_col);
}

/*
 * The "basira" metadata document (schema in triage.h), written with the model
 * module's own serialiser so that basira_model_info_from_json() reads it back.
 * Temperature 1 and the thresholds are placeholders until calibration on the
 * validation part sets them.
 */
json_t *train_model_document(const trainer *t, int epoch, const train_metrics *val)
{
    const basira_train_options *o = t->o;
    basira_model_info *mi = calloc(1, sizeof *mi);
    if (!mi)
        return NULL;
    snprintf(mi->name, sizeof mi->name, "%s", o->name ? o->name : "basira-derm");
    snprintf(mi->version, sizeof mi->version, "%s", o->version ? o->version : "0.1.0");
    mi->num_classes = t->k;
    for (int i = 0; i < t->k; i++) {
        const basira_class_info *c = &t->ds.classes.c[i];
        basira_model_class *m = &mi->classes[i];
        snprintf(m->code, sizeof m->code, "%s", c->code);
        snprintf(m->name_en, sizeof m->name_en, "%s", c->name_en);
        snprintf(m->name_fr, sizeof m->name_fr, "%s", c->name_fr);
        snprintf(m->name_ar, sizeof m->name_ar, "%s", c->name_ar);
        m->malignant = c->malignant;
        m->partition = c->partition;
    }
    mi->preprocess = t->pp;
    mi->temperature = 1.0;
    mi->malignant_slope = 1.0;
    mi->threshold_high = 0.40;
    mi->threshold_medium = 0.08;
    mi->tta = 1;
    json_t *doc = basira_model_info_to_json(mi);
    free(mi);
    if (!doc)
        return NULL;
    json_t *prov =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:o}", "data_set", o->csv_path, "images",
                  o->images_dir, "command_line", o->command_line ? o->command_line : "", "date",
                  t->date, "split", train_split_json(t), "seed", (json_int_t)o->seed, "software",
                  basira_version(), "training",
                  json_pack("{s:i, s:s, s:f}", "epoch", epoch + 1, "arch", train_arch_family(t),
                            "lr", o->lr));
    if (prov && val)
        json_object_set_new(prov, "validation", train_metrics_json(t, val));
    if (prov && o->contrastive > 0)
        json_object_set_new(prov, "pretraining",
                            json_pack("{s:s, s:f, s:i}", "method", "simclr", "temperature",
                                      o->contrastive, "outputs", t->out));
    if (!prov || json_object_set_new(doc, "provenance", prov)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

basira_code train_set_model_metadata(trainer *t, int epoch, const train_metrics *val,
                                     basira_error *err)
{
    json_t *doc = train_model_document(t, epoch, val);
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(doc);
    if (!s)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    int bad = json_object_set_new(basira_net_metadata(t->net), "basira", json_string(s));
    free(s);
    return bad ? basira_error_set(err, BASIRA_E_NOMEM, NULL) : BASIRA_OK;
}
