/*
 * profile.c - the report of `basira train --profile` (see profile.h).
 */
#include "train/profile.h"

#include "core/i18n.h"

void train_phases_add(train_phases *ph, double forward, double loss, double backward,
                      double optimiser, double prepare, double wait, int batch)
{
    ph->steps++;
    ph->images += batch;
    ph->forward += forward;
    ph->loss += loss;
    ph->backward += backward;
    ph->optimiser += optimiser;
    ph->prepare += prepare;
    ph->wait += wait;
}

static void phase(FILE *f, const char *name, double s, double total, long steps)
{
    fprintf(f, "  %-28s %9.1f ms/step %6.1f%%\n", name, 1e3 * s / (double)steps,
            total > 0 ? 100 * s / total : 0);
}

void train_profile_print(FILE *f, const basira_net *net, const train_phases *ph, int threads)
{
    if (!f || ph->steps < 1) {
        if (f)
            fprintf(f, _("profile: the epoch had too few steps to measure\n"));
        return;
    }
    double total = ph->forward + ph->loss + ph->backward + ph->optimiser + ph->wait;
    fprintf(f,
            _("profile of %ld training steps (the first step of the epoch not counted), "
              "%.1f images/s:\n"),
            ph->steps, total > 0 ? (double)ph->images / total : 0);
    phase(f, _("forward"), ph->forward, total, ph->steps);
    phase(f, _("loss"), ph->loss, total, ph->steps);
    phase(f, _("backward"), ph->backward, total, ph->steps);
    phase(f, _("optimiser"), ph->optimiser, total, ph->steps);
    phase(f, _("waiting for data"), ph->wait, total, ph->steps);
    fprintf(f,
            _("  data loading and augmentation: %.1f ms/step on its own thread, in the "
              "shadow of the step (%.0f%% of it)%s\n"),
            1e3 * ph->prepare / (double)ph->steps, total > 0 ? 100 * ph->prepare / total : 0,
            ph->wait > 0.05 * total ? _(": the network waits for data") : "");
    basira_nn_peak peak;
    basira_error err;
    if (basira_nn_peak_measure(threads, &peak, &err)) {
        fprintf(f, "%s\n", err.message);
        return;
    }
    basira_net_profile_print(net, &peak, basira_net_precision(net) == BASIRA_PRECISION_BF16, f);
}
