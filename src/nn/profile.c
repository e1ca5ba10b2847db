/*
 * profile.c - where a net's time goes: per-layer wall time, arithmetic and bytes
 * moved, the processor's peak (the roofline), and the table printed from them.
 *
 * The executor calls nn_profile_add() after each op while profiling is on (oneDNN's
 * CPU primitives run synchronously, so the wall time around one is its time). The
 * FLOP counts are exact for convolutions and fc (2 per multiply-add; backward is
 * data + weights, twice the forward); for the memory-bound layers they are a few
 * operations per element, which is all the roofline needs. Bytes are an estimate:
 * every tensor an op reads or writes once (weights included), so a layer whose
 * FLOP per byte is below the machine's is bound by memory.
 */
#include "nn/exec.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <oneapi/dnnl/dnnl_debug.h>

#include "core/i18n.h"
#include "core/memory.h"

double nn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *type_name(nn_ltype t)
{
    static const char *const names[] = {
        [NN_CONV] = "conv",       [NN_BN] = "batchnorm", [NN_RELU] = "relu",
        [NN_RELU6] = "relu6",     [NN_SILU] = "silu",    [NN_MAXPOOL] = "maxpool",
        [NN_AVGPOOL] = "avgpool", [NN_GAP] = "gap",      [NN_FC] = "fc",
        [NN_DROPOUT] = "dropout", [NN_ADD] = "add",      [NN_CONCAT] = "concat",
    };
    return names[t];
}

static double md_bytes(const dnnl_memory_desc_t *md)
{
    return (double)dnnl_memory_desc_get_size(md);
}

void nn_profile_add(basira_net *net, const nn_plan *p, int i, int bwd, double seconds)
{
    const nn_layer *l = &net->layers[i];
    const nn_op *op = &p->op[i];
    basira_layer_profile *r = &net->prof[i];
    if (!r->type) {
        snprintf(r->name, sizeof r->name, "%s", l->name);
        r->type = type_name(l->type);
    }
    r->fused = op->out - (i + 1);
    const nn_tensor *in = &p->t[p->t[l->inputs[0]].owner];
    double in_b = 0, out_b = md_bytes(&p->t[op->out].md);
    for (int k = 0; k < l->ninputs; k++)
        in_b += md_bytes(&p->t[p->t[l->inputs[k]].owner].md);
    double out_elems = (double)p->n * l->c * l->h * l->w;
    double w_b = 0, flop = 0;
    if ((l->type == NN_CONV || l->type == NN_FC) && l->param0 >= 0)
        w_b = 4.0 * (double)(net->params[l->param0].numel + (l->bias ? (size_t)l->out_ch : 0));
    switch (l->type) {
    case NN_CONV:
        flop = 2.0 * out_elems * (double)(in->md.dims[1] / l->groups) * l->kh * l->kw;
        break;
    case NN_FC: {
        double in_f = 1;
        for (int d = 1; d < in->md.ndims; d++)
            in_f *= (double)in->md.dims[d];
        flop = 2.0 * (double)p->n * in_f * l->out_ch;
        out_elems = (double)p->n * l->out_ch;
        break;
    }
    case NN_BN:
        flop = (bwd ? 8.0 : 5.0) * out_elems;
        break;
    case NN_MAXPOOL:
    case NN_AVGPOOL:
        flop = out_elems * l->kh * l->kw;
        break;
    case NN_GAP:
        flop = (double)p->n * l->c * (double)in->md.dims[2] * (double)in->md.dims[3];
        break;
    case NN_ADD:
        flop = out_elems * (l->ninputs - 1);
        break;
    case NN_CONCAT:
        break;
    default: /* activations, dropout */
        flop = out_elems;
        break;
    }
    if (bwd) {
        int has_data = l->inputs[0] != 0;
        if (l->type == NN_CONV || l->type == NN_FC)
            flop *= has_data ? 2.0 : 1.0;
        r->bwd_calls++;
        r->bwd_s += seconds;
        r->bwd_flop += flop;
        r->bwd_bytes += (has_data ? 2 : 1) * in_b + out_b + 2 * w_b;
    } else {
        r->fwd_calls++;
        r->fwd_s += seconds;
        r->fwd_flop += flop;
        r->fwd_bytes += in_b + out_b + w_b;
    }
}

basira_code basira_net_profile_enable(basira_net *net, int on, basira_error *err)
{
    if (!net)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    if (on && !net->prof) {
        net->prof = calloc((size_t)net->nlayers, sizeof *net->prof);
        if (!net->prof)
            return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    net->prof_on = on && net->prof;
    return BASIRA_OK;
}

void basira_net_profile_reset(basira_net *net)
{
    if (net && net->prof)
        memset(net->prof, 0, (size_t)net->nlayers * sizeof *net->prof);
}

size_t basira_net_profile(const basira_net *net, basira_layer_profile *out, size_t max)
{
    size_t n = 0;
    for (int i = 0; net && net->prof && i < net->nlayers; i++) {
        const basira_layer_profile *r = &net->prof[i];
        if (!r->fwd_calls && !r->bwd_calls)
            continue;
        if (out && n < max)
            out[n] = *r;
        n++;
    }
    return n;
}

/* Nominal clock of the processor in GHz (0 when the system does not say). */
static double nominal_ghz(void)
{
    double mhz = 0;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency", "r");
    if (f) {
        double khz = 0;
        if (fscanf(f, "%lf", &khz) == 1)
            mhz = khz / 1000.0;
        fclose(f);
    }
    f = mhz > 0 ? NULL : fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "cpu MHz", 7) && sscanf(strchr(line, ':') + 1, "%lf", &mhz) == 1)
            break;
    if (f)
        fclose(f);
    return mhz / 1000.0;
}

basira_code basira_nn_peak_measure(int threads, basira_nn_peak *out, basira_error *err)
{
    if (!out || threads < 1)
        return basira_error_set(err, BASIRA_E_INVALID_ARGUMENT, NULL);
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    /* FLOP per cycle and core: two 512-bit FMA units (16 floats x 2 x 2); AVX-512 BF16
     * doubles it (vdpbf16ps), AMX's tile multiply does 1024 bf16 FLOP per cycle. */
    double fp32 = 16, bf16;
    if ((isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core)
        fp32 = 64;
    else if ((isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2)
        fp32 = 32;
    bf16 = fp32;
    if ((isa & (unsigned)dnnl_cpu_isa_avx512_core_amx) == (unsigned)dnnl_cpu_isa_avx512_core_amx)
        bf16 = 1024;
    else if ((isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
             (unsigned)dnnl_cpu_isa_avx512_core_bf16)
        bf16 = 128;
    double ghz = nominal_ghz();
    out->ghz = ghz > 0 ? ghz : 2.0;
    out->fp32_flops = fp32 * out->ghz * 1e9 * threads;
    out->bf16_flops = bf16 * out->ghz * 1e9 * threads;
    out->isa = dnnl_cpu_isa2str((dnnl_cpu_isa_t)isa);
    /* Bandwidth: best of three parallel copies of 64 MiB (read + write). */
    size_t n = ((size_t)64 << 20) / sizeof(float);
    float *a = aligned_alloc(64, n * sizeof *a), *b = aligned_alloc(64, n * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return basira_error_set(err, BASIRA_E_NOMEM, NULL);
    }
    memset(a, 1, n * sizeof *a);
    memset(b, 0, n * sizeof *b);
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = nn_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t k = 0; k < n; k++)
            b[k] = a[k] * 1.0001f;
        best = fmin(best, nn_now() - t0);
    }
    out->bytes_per_s = 2.0 * (double)n * sizeof(float) / best;
    free(a);
    free(b);
    return BASIRA_OK;
}

void basira_net_profile_print(const basira_net *net, const basira_nn_peak *peak, int bf16, FILE *f)
{
    size_t n = basira_net_profile(net, NULL, 0);
    basira_layer_profile *r = n ? malloc(n * sizeof *r) : NULL;
    if (!r)
        return;
    basira_net_profile(net, r, n);
    double total = 0, flop = 0;
    for (size_t i = 0; i < n; i++) {
        total += r[i].fwd_s + r[i].bwd_s;
        flop += r[i].fwd_flop + r[i].bwd_flop;
    }
    double pk = bf16 ? peak->bf16_flops : peak->fp32_flops;
    double ridge = pk / peak->bytes_per_s; /* FLOP per byte where compute takes over */
    fprintf(f,
            _("peak %.0f GFLOP/s (%s, %s, %.2f GHz nominal), memory %.1f GB/s measured: "
              "compute-bound above %.1f FLOP/byte\n"),
            pk * 1e-9, bf16 ? "bf16" : "fp32", peak->isa, peak->ghz, peak->bytes_per_s * 1e-9,
            ridge);
    fprintf(f, "%-34s %-9s %8s %8s %6s %8s %6s %7s  %s\n", _("layer"), _("type"), _("fwd ms"),
            _("bwd ms"), _("share"), "GFLOP/s", _("peak"), _("FLOP/B"), _("bound"));
    double rest_s = 0, rest_flop = 0;
    int rest_n = 0;
    for (size_t i = 0; i < n; i++) {
        const basira_layer_profile *x = &r[i];
        double s = x->fwd_s + x->bwd_s, fl = x->fwd_flop + x->bwd_flop;
        if (total > 0 && s < 0.005 * total) {
            rest_s += s;
            rest_flop += fl;
            rest_n++;
            continue;
        }
        double by = x->fwd_bytes + x->bwd_bytes, ai = by > 0 ? fl / by : 0;
        char name[48];
        snprintf(name, sizeof name, x->fused ? "%.30s+%d" : "%.34s", x->name, x->fused);
        fprintf(f, "%-34s %-9s %8.3f %8.3f %5.1f%% %8.1f %5.1f%% %7.1f  %s\n", name, x->type,
                x->fwd_calls ? 1e3 * x->fwd_s / (double)x->fwd_calls : 0,
                x->bwd_calls ? 1e3 * x->bwd_s / (double)x->bwd_calls : 0,
                total > 0 ? 100 * s / total : 0, s > 0 ? 1e-9 * fl / s : 0,
                s > 0 ? 100 * fl / s / pk : 0, ai, ai >= ridge ? _("compute") : _("memory"));
    }
    if (rest_n)
        fprintf(f, _("%d smaller layers: %.1f%% of the time, %.1f GFLOP/s\n"), rest_n,
                total > 0 ? 100 * rest_s / total : 0, rest_s > 0 ? 1e-9 * rest_flop / rest_s : 0);
    fprintf(f, _("all layers: %.1f ms, %.1f GFLOP/s (%.1f%% of peak)\n"), 1e3 * total,
            total > 0 ? 1e-9 * flop / total : 0, total > 0 ? 100 * flop / total / pk : 0);
    free(r);
}
