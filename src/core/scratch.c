/* Per-thread scratch (core/scratch.h). The buffer is found through a thread-local pointer; a
 * pthread key whose destructor frees it is set the first time a thread allocates one, so the
 * worker threads of OpenMP or of a caller's pool give their buffers back when they exit. */
#include "core/scratch.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    void *buf;
    size_t cap;
    int held;
} scratch;

static _Thread_local scratch *mine;
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void release(void *p) {
    scratch *s = p;
    free(s->buf);
    free(s);
}
static void make_key(void) { key_ok = pthread_key_create(&key, release) == 0; }

static scratch *get(void) {
    if (mine) return mine;
    pthread_once(&key_once, make_key);
    scratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (!key_ok || pthread_setspecific(key, s) != 0) { /* nothing would free it: none kept */
        free(s);
        return NULL;
    }
    return mine = s;
}

static void *aligned_bytes(size_t bytes) {
    if (bytes == 0) bytes = 1;
    if (bytes > SIZE_MAX - 63) return NULL;
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

void *nmf_scratch_take(size_t bytes) {
    scratch *s = get();
    if (!s || s->held) return aligned_bytes(bytes); /* no arena, or nested: a buffer of its own */
    if (s->cap < bytes) {
        free(s->buf);
        s->cap = 0;
        s->buf = aligned_bytes(bytes);
        if (!s->buf) return NULL;
        s->cap = bytes;
    }
    s->held = 1;
    return s->buf;
}

void nmf_scratch_give(void *p) {
    if (!p) return;
    scratch *s = mine;
    if (s && s->held && p == s->buf) s->held = 0;
    else free(p);
}
