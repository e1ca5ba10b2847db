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
 */
#include <math.h>
#include <stdlib.h>

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

basira_code basira_net_calibrate(basira_net *net, const float *x, int n, basira_error *err)
{
    if (!net || !x || n < 1 || n > 1 << 16)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (!net->prepared)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT,
                                _("calibration needs a network prepared for inference"));
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
        for (size_t t = 0; t < nt; t++) {
            net->act_max[t] = 0.0f;
            net->act_min[t] = INFINITY;
        }
    }
    float *logits = malloc((size_t)n * (size_t)net->num_classes * sizeof *logits);
    if (!logits)
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    /* The statistics come from the fp32 plan, whatever precision the net runs in. */
    int bf16 = net->infer_bf16, q = net->infer_int8;
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
