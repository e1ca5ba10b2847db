/*
 * quant.c - int8 post-training quantisation of prepared inference.
 *
 * Calibration (basira_net_calibrate) runs the fp32 prepared plan on sample inputs and
 * records, for every tensor a fused op writes, its largest magnitude and its minimum.
 * An int8 plan then runs each convolution (not the depthwise ones, see layer_conv.c) on
 * 8-bit integers through oneDNN's x8s8s32x
 * kernels (VNNI where the processor has it):
 *   - its input is quantised on the fly by a scaled reorder: u8 with scale 255/max when
 *     calibration never saw it negative (after a ReLU), else s8 with 127/max;
 *   - its folded weights are quantised per output channel, s8 with 127/max|w_o|;
 *   - the s32 accumulator is scaled back to float by per-channel output scales, the
 *     bias (in the accumulator's units) added, then the fused residual sum and activation;
 *     so every tensor between layers stays float32 and the layers that are not
 *     convolutions (pooling, fc, concat) run as in fp32.
 * The ranges are saved with the model (nn_calib_to_json, in the file's metadata), so that
 * a model calibrated once on validation images runs in int8 at load without them.
 */
#include <math.h>
#include <stdlib.h>

#include <jansson.h>

#include "core/i18n.h"
#include "nn/exec.h"

void nn_calib_scan(basira_net *net, int t, const float *v, size_t n)
{
    float amax = net->act_max[t], mn = net->act_min[t];
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(v[i]);
        if (a > amax)
            amax = a;
        if (v[i] < mn)
            mn = v[i];
    }
    net->act_max[t] = amax;
    net->act_min[t] = mn;
}

void nn_quant_src(const basira_net *net, int t, float *scale, int *is_unsigned)
{
    float amax = net->act_max[t];
    *is_unsigned = net->act_min[t] >= 0.0f;
    float levels = *is_unsigned ? 255.0f : 127.0f;
    *scale = amax > 0.0f && isfinite(amax) ? levels / amax : 1.0f;
}

int8_t *nn_quant_weights(const float *w, const float *b, int out_ch, size_t per, float sx,
                         float *oscale, float *bias_q)
{
    int8_t *q = malloc((size_t)out_ch * per);
    if (!q)
        return NULL;
    for (int o = 0; o < out_ch; o++) {
        const float *wo = w + (size_t)o * per;
        float m = 0.0f;
        for (size_t k = 0; k < per; k++)
            m = fmaxf(m, fabsf(wo[k]));
        float sw = m > 0.0f ? 127.0f / m : 1.0f;
        for (size_t k = 0; k < per; k++) {
            long r = lrintf(wo[k] * sw);
            q[(size_t)o * per + k] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
        }
        oscale[o] = 1.0f / (sx * sw);
        bias_q[o] = b[o] * sx * sw;
    }
    return q;
}

dnnl_status_t nn_mk_qreorder(nn_plan *p, dnnl_engine_t eng, const dnnl_memory_desc_t *from,
                             const dnnl_memory_desc_t *to, float scale, nn_cvt *c)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    c->prim = NULL;
    c->mem = NULL;
    dnnl_status_t s = dnnl_primitive_attr_create(&attr);
    if (!s)
        s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale);
    if (!s)
        s = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (!s)
        s = nn_keep_pd(p, pd);
    else
        return s;
    if (!s)
        s = nn_mk_prim(p, pd, &c->prim);
    if (!s)
        s = nn_mk_mem(p, eng, to, 1, &c->mem);
    return s;
}

int basira_nn_int8_fast(void)
{
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core_vnni) ==
               (unsigned)dnnl_cpu_isa_avx512_core_vnni ||
           (isa & (unsigned)dnnl_cpu_isa_avx2_vnni) == (unsigned)dnnl_cpu_isa_avx2_vnni;
}

/* The range arrays, allocated on first use; reset = 1 empties them (no value seen). */
static basira_code calib_arrays(basira_net *net, int reset, basira_error *err)
{
    size_t nt = (size_t)net->nlayers + 1;
    if (!net->act_max) {
        net->act_max = malloc(nt * sizeof *net->act_max);
        net->act_min = malloc(nt * sizeof *net->act_min);
        if (!net->act_max || !net->act_min) {
            free(net->act_max);
            free(net->act_min);
            net->act_max = net->act_min = NULL;
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
        }
        reset = 1;
    }
    if (reset)
        for (size_t t = 0; t < nt; t++) {
            net->act_max[t] = 0.0f;
            net->act_min[t] = INFINITY;
        }
    return BASIRA_OK;
}

int basira_net_int8_calibrated(const basira_net *net)
{
    return net && net->calibrated;
}

basira_code basira_net_calibrate(basira_net *net, const float *x, int n, basira_error *err)
{
    if (!net || !x || n < 1 || n > 1 << 16)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!net->prepared)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("calibration needs a network prepared for inference"));
    /* Ranges measured on other weights (before an EMA swap, a reload) are not added to. */
    basira_code arc = calib_arrays(net, net->calib_stale, err);
    if (arc)
        return arc;
    net->calib_stale = 0;
    float *logits = malloc((size_t)n * (size_t)net->num_classes * sizeof *logits);
    if (!logits)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    /* The statistics come from the fp32 plan, whatever precision the net runs in. */
    int bf16 = net->infer_bf16, q = net->infer_int8;
    if ((bf16 || q) && net->values_released) {
        free(logits);
        return nn_net_released_error(err); /* the fp32 plan would need the weights */
    }
    if (bf16 || q) {
        nn_plan_free(net->plan_eval);
        net->plan_eval = NULL;
        net->infer_bf16 = net->infer_int8 = 0;
    }
    net->calib_on = 1;
    basira_code rc = basira_net_forward(net, x, n, 0, logits, err);
    net->calib_on = 0;
    if (bf16 || q) {
        nn_plan_free(net->plan_eval);
        net->plan_eval = NULL;
        net->infer_bf16 = bf16;
        net->infer_int8 = q;
    }
    free(logits);
    if (!rc)
        net->calibrated = 1;
    return rc;
}

/*
 * {"version": 1, "tensors": N, "max": [N numbers], "min": [N numbers or null]}: per tensor
 * (0 the input, i + 1 the output of layer i) the largest |value| and the smallest value
 * seen; null for a tensor calibration never saw (one a fused op absorbs). The numbers
 * are written with 9 significant digits, which float32 survives exactly.
 */
char *nn_calib_to_json(const basira_net *net, int *nomem)
{
    *nomem = 0;
    if (!net || !net->calibrated || net->calib_stale || !net->act_max)
        return NULL;
    json_t *o = json_object(), *mx = json_array(), *mn = json_array();
    int bad = !o || !mx || !mn;
    for (int t = 0; !bad && t <= net->nlayers; t++) {
        bad = json_array_append_new(mx, json_real((double)net->act_max[t])) ||
              json_array_append_new(
                  mn, isfinite(net->act_min[t]) ? json_real((double)net->act_min[t]) : json_null());
    }
    if (!bad)
        bad = json_object_set_new(o, "version", json_integer(1)) ||
              json_object_set_new(o, "tensors", json_integer(net->nlayers + 1)) ||
              json_object_set(o, "max", mx) || json_object_set(o, "min", mn);
    char *s = bad ? NULL : json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(mx);
    json_decref(mn);
    json_decref(o);
    *nomem = s == NULL;
    return s;
}

basira_code nn_calib_from_json(basira_net *net, const char *text, basira_error *err)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    json_t *mx = json_object_get(o, "max"), *mn = json_object_get(o, "min");
    size_t nt = (size_t)net->nlayers + 1;
    int ok = json_is_object(o) && json_integer_value(json_object_get(o, "version")) == 1 &&
             json_integer_value(json_object_get(o, "tensors")) == (json_int_t)nt &&
             json_array_size(mx) == nt && json_array_size(mn) == nt;
    for (size_t t = 0; ok && t < nt; t++) {
        json_t *a = json_array_get(mx, t), *b = json_array_get(mn, t);
        double m = json_number_value(a);
        /* A range never seen is max 0, min null; a seen one has -max <= min <= max. */
        ok = json_is_number(a) && isfinite(m) && m >= 0 && m < 3.4e38 &&
             (json_is_null(b) ? m == 0
                              : json_is_number(b) && fabs(json_number_value(b)) <= m * 1.000001);
    }
    basira_code rc = ok ? calib_arrays(net, 1, err)
                        : basira_error_set(err, BASIRA_E_MODEL,
                                           _("model file: its int8 calibration does not fit "
                                             "the architecture (calibrate the model again)"));
    for (size_t t = 0; !rc && t < nt; t++) {
        json_t *b = json_array_get(mn, t);
        net->act_max[t] = (float)json_number_value(json_array_get(mx, t));
        net->act_min[t] = json_is_null(b) ? INFINITY : (float)json_number_value(b);
    }
    if (!rc) {
        net->calibrated = 1;
        net->calib_stale = 0;
    }
    json_decref(o);
    return rc;
}
