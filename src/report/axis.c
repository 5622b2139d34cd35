/* Linear axes with round ticks: 1, 2 or 5 times a power of ten, the steps people read at a glance. */
#include "report/report_internal.h"

#include <math.h>
#include <string.h>

void rpt_ticks_nice(double lo, double hi, int target, rpt_ticks *t) {
    if (target < 1) target = 1;
    if (!(hi > lo)) { /* one value (or none): a range around it */
        double m = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
        lo -= m;
        hi = lo + 2 * m;
    }
    double raw = (hi - lo) / target;
    double mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag, step;
    if (r <= 1.0) step = mag;
    else if (r <= 2.0) step = 2 * mag;
    else if (r <= 5.0) step = 5 * mag;
    else step = 10 * mag;
    double a = floor(lo / step + 1e-9), b = ceil(hi / step - 1e-9);
    t->step = step;
    t->lo = a * step;
    t->hi = b * step;
    t->count = (int)(b - a) + 1;
}

double rpt_tick_at(const rpt_ticks *t, int i) {
    double v = t->lo + i * t->step;
    return fabs(v) < t->step * 1e-9 ? 0.0 : v; /* no "-0" or "1e-17" at zero */
}

void rpt_tick_label(char *buf, size_t n, double v, double step) {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 12) decimals = 12;
    snprintf(buf, n, "%.*f", decimals, v);
}
