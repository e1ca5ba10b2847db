/* progress.c - progress line of a training run. */
#include "train/progress.h"
#include "core/i18n.h"

#include <math.h>
#include <time.h>

void train_progress_init(train_progress *p, FILE *f, int tty)
{
    p->f = f;
    p->tty = tty;
    p->last = -1e300;
    p->line_open = 0;
    /* A terminal is redrawn smoothly; a log gets a line every half minute at most. */
    p->interval = tty ? 0.25 : 30.0;
}

void train_format_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, n, "%lds", t);
    else if (t < 3600)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
}

int train_progress_step(train_progress *p, double now, int epoch, int epochs, long step, long steps,
                        double loss, double images_per_s, double eta_s)
{
    if (!p->f || (now - p->last < p->interval && step != steps))
        return 0;
    p->last = now;
    char eta[32];
    train_format_duration(eta_s, eta, sizeof eta);
    if (p->tty) {
        char bar[21];
        int filled = steps > 0 ? (int)(20 * step / steps) : 0;
        for (int i = 0; i < 20; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[20] = '\0';
        /* \033[K clears what a longer previous line left behind. */
        fprintf(p->f, "\r");
        fprintf(p->f, _("epoch %d/%d [%s] step %ld/%ld loss %.4f %.1f img/s ETA %s"), epoch, epochs,
                bar, step, steps, loss, images_per_s, eta);
        fprintf(p->f, "\033[K");
        p->line_open = 1;
    } else {
        fprintf(p->f, _("epoch %d/%d step %ld/%ld loss %.4f %.1f img/s ETA %s"), epoch, epochs,
                step, steps, loss, images_per_s, eta);
        fputc('\n', p->f);
    }
    fflush(p->f);
    return 1;
}

void train_progress_break(train_progress *p)
{
    if (p->f && p->line_open) {
        fputc('\n', p->f);
        fflush(p->f);
    }
    p->line_open = 0;
}

double train_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double train_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
