#include "nmformer/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/env.h"
#include "kernels/ops_internal.h" /* nmf_cpu_has_vnni512 */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static nmf_isa detect_isa(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NMF_ISA_SCALAR;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return NMF_ISA_SCALAR;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return NMF_ISA_SCALAR; /* OS must save XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NMF_ISA_SCALAR;
    int avx2 = (b >> 5) & 1;
    int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
        avx512vl = (b >> 31) & 1;
    /* AVX-512 needs opmask, ZMM_Hi256 and Hi16_ZMM state enabled by the OS (bits 5,6,7) */
    if (avx512f && avx512dq && avx512bw && avx512vl && fma && (xcr0 & 0xe0) == 0xe0)
        return NMF_ISA_AVX512;
    if (avx2 && fma) return NMF_ISA_AVX2;
    return NMF_ISA_SCALAR;
}

/* AVX512_VNNI (cpuid 7.0 ecx bit 11) and AVX512_VBMI (bit 1), on top of the AVX-512 level */
static int detect_vnni512(void) {
    unsigned int a, b, c, d;
    if (detect_isa() != NMF_ISA_AVX512 || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return ((c >> 11) & 1) && ((c >> 1) & 1);
}
#else
static nmf_isa detect_isa(void) { return NMF_ISA_SCALAR; }
static int detect_vnni512(void) { return 0; }
#endif

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};
_Static_assert(sizeof(isa_names) / sizeof(isa_names[0]) == NMF_ISA_COUNT, "isa_names");

const char *nmf_isa_name(nmf_isa isa) {
    return (unsigned)isa < NMF_ISA_COUNT ? isa_names[isa] : "unknown";
}

nmf_isa nmf_cpu_best_isa(void) {
    static int detected = -1;
    if (detected < 0) detected = (int)detect_isa();
    return (nmf_isa)detected;
}

int nmf_cpu_has_vnni512(void) {
    static int detected = -1;
    if (detected < 0) detected = detect_vnni512();
    return detected;
}

static int active_isa = -1;

void nmf_set_isa(nmf_isa isa) {
    nmf_isa best = nmf_cpu_best_isa();
    active_isa = (int)(isa > best ? best : isa);
}

nmf_status nmf_env_isa(int *isa) {
    const char *env = getenv("NMF_ISA");
    *isa = -1;
    if (!env || !*env) return NMF_OK;
    for (int i = 0; i < NMF_ISA_COUNT; i++)
        if (strcmp(env, isa_names[i]) == 0) {
            *isa = i;
            return NMF_OK;
        }
    return nmf_error(NMF_ERR_INVALID_ARG, "NMF_ISA='%s': expected scalar, avx2 or avx512", env);
}

nmf_isa nmf_active_isa(void) {
    if (active_isa < 0) {
        nmf_isa best = nmf_cpu_best_isa(), want = best;
        int forced;
        if (nmf_env_isa(&forced) != NMF_OK)
            fprintf(stderr, "nmformer: warning: %s; using %s\n", nmf_last_error(), isa_names[best]);
        else if (forced > (int)best) /* a valid name this CPU cannot run: not an error */
            fprintf(stderr, "nmformer: warning: NMF_ISA=%s not supported by this CPU; using %s\n",
                    isa_names[forced], isa_names[best]);
        else if (forced >= 0)
            want = (nmf_isa)forced;
        active_isa = (int)want;
    }
    return (nmf_isa)active_isa;
}

double nmf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
