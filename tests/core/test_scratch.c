/* Per-thread scratch (core/scratch.h): aligned, reused while big enough, grown when not, a
 * nested take gets a buffer of its own, each thread has its own, a thread's buffer is freed
 * when it exits (under ASan's leak check this test would report it otherwise). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/scratch.h"
#include "test.h"

static int aligned(const void *p) { return ((uintptr_t)p & 63) == 0; }

static void *worker(void *arg) {
    void *main_buf = arg;
    unsigned char *p = nmf_scratch_take(1 << 20);
    CHECK(p != NULL && aligned(p) && (void *)p != main_buf);
    if (p) memset(p, 0xAB, 1 << 20); /* all of it is ours (ASan: no overflow) */
    nmf_scratch_give(p);
    return p;
}

int main(void) {
    unsigned char *a = nmf_scratch_take(1000);
    CHECK(a != NULL && aligned(a));
    if (a) memset(a, 1, 1000);
    /* held: a nested take gets another buffer, which its give frees */
    unsigned char *nested = nmf_scratch_take(100);
    CHECK(nested != NULL && nested != a && aligned(nested));
    if (nested) memset(nested, 2, 100);
    nmf_scratch_give(nested);
    nmf_scratch_give(a);
    /* given back: the same buffer again while it is big enough */
    unsigned char *b = nmf_scratch_take(500);
    CHECK(b == a);
    nmf_scratch_give(b);
    unsigned char *c = nmf_scratch_take(1000);
    CHECK(c == a);
    nmf_scratch_give(c);
    /* grown: a buffer of the new size (the old one freed) */
    unsigned char *d = nmf_scratch_take(1 << 22);
    CHECK(d != NULL && aligned(d));
    if (d) memset(d, 3, 1 << 22);
    nmf_scratch_give(d);
    unsigned char *e = nmf_scratch_take(1 << 21);
    CHECK(e == d);
    nmf_scratch_give(e);
    /* another thread: its own buffer, freed when it exits */
    pthread_t t;
    void *theirs = NULL;
    CHECK(pthread_create(&t, NULL, worker, d) == 0);
    CHECK(pthread_join(t, &theirs) == 0);
    CHECK(theirs != NULL && theirs != d);
    nmf_scratch_give(NULL); /* nothing */
    /* too large to be had */
    CHECK(nmf_scratch_take(SIZE_MAX - 10) == NULL);
    unsigned char *f = nmf_scratch_take(10); /* the failed take held nothing */
    CHECK(f != NULL);
    nmf_scratch_give(f);
    return test_finish("scratch");
}
