/*
 * progress.h - internal: the live progress line of `basira train`.
 *
 * On a terminal one line is redrawn in place (carriage return) a few times a
 * second; in a log file (CI, nohup) a plain line is written now and then, so
 * logs stay readable and small.
 */
#ifndef BASIRA_TRAIN_PROGRESS_H
#define BASIRA_TRAIN_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef struct train_progress {
    FILE *f;
    int tty;
    double last;     /* time of the last print, seconds */
    int line_open;   /* a redrawn line is on screen without its newline */
    double interval; /* seconds between prints */
} train_progress;

/* Monotonic wall-clock seconds. */
double train_now_seconds(void);
/*
 * CPU time of the whole process: on a shared machine, images per CPU second is the
 * figure that compares configurations; images per wall second depends on the neighbours.
 */
double train_cpu_seconds(void);

void train_progress_init(train_progress *p, FILE *f, int tty);

/* "12s", "3m05s", "1h02m". */
void train_format_duration(double seconds, char *buf, size_t n);

/*
 * Report step (1-based) of steps in epoch (1-based) of epochs at time now (seconds,
 * any origin). Prints when the interval has passed or at the last step.
 * Returns 1 if something was printed.
 */
int train_progress_step(train_progress *p, double now, int epoch, int epochs, long step, long steps,
                        double loss, double images_per_s, double eta_s);

/* End a redrawn line so that the next output starts on a fresh line. */
void train_progress_break(train_progress *p);

#endif
