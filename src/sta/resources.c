/* FPGA resource estimate of a configured design (docs/STA.md, "resource model").
 *
 * A first-order, stated model, not a synthesis result:
 *   DSP   one DSP48E2 per multiplier (the operands of neighbouring multipliers are not shared in
 *         sparse mode, so int8 packing does not apply), 2 per DPU for the output requantiser
 *         (acc x Q15), 2 per softmax lane (exp interpolation, scale), 2 per vector lane.
 *   LUT   M:1 multiplexer of data_bits: ceil((max_m - 1) / 3) LUT6 per bit per multiplier (a LUT6
 *         is a 4:1 mux; +1 input for the dense bypass is absorbed); adder tree: one LUT per sum
 *         bit, level l of the tree has L / 2^(l+1) adders of 2*data_bits + l + 1 bits;
 *         accumulator + saturation 1.5 * acc_bits per DPU; position decoders L * max_m *
 *         ceil(log2 max_m) / 2 per DPU group of 16 (shared decode); softmax 220 per lane + 1500;
 *         vector 160 per lane + 1200; control, DDR4 controller and AXI 15000 per channel design.
 *   FF    multiplier pipeline 2*data_bits*mult_latency per multiplier, mux output data_bits,
 *         adder tree registers = adder LUTs, accumulators acc_bits per DPU, the activation window
 *         register (L * max_m * data_bits) replicated once per 16 DPUs for fan-out, softmax 300
 *         per lane, vector 200 per lane, control 20000.
 *   BRAM  BRAM36 = 4 KiB at 72 bits per port. Each buffer takes max(capacity / 4 KiB, read width
 *         / 72 bits): weight buffer D*L*(data_bits + max_m) bits per 16 cycles (weight register
 *         reload, NMF_STA_WEIGHT_RELOAD), act buffer
 *         act_banks * data_bits, out buffer D * acc_bits, score buffer softmax lanes * acc_bits;
 *         GELU table 2^data_bits * data_bits per pair of vector lanes. On devices with URAM the
 *         weight buffer goes to URAM (36 KiB, 72 bits per port). */
#include <stdio.h>
#include <string.h>

#include "nmformer/sta.h"
#include "sta/sta_internal.h"

static const nmf_sta_device devices[] = {
    {"xc7z020", "Zynq-7000", 220, 140, 0, 53200, 106400},
    {"xczu7ev", "Zynq UltraScale+", 1728, 312, 96, 230400, 460800},
    {"xczu9eg", "Zynq UltraScale+", 2520, 912, 0, 274080, 548160},
    {"xcku115", "Kintex UltraScale", 5520, 2160, 0, 663360, 1326720},
    {"xcvu9p", "Virtex UltraScale+", 6840, 2160, 960, 1182240, 2364480},
    {"xcvu13p", "Virtex UltraScale+", 12288, 2688, 1280, 1728000, 3456000},
    {"xcu250", "Alveo U250", 12288, 2688, 1280, 1728000, 3456000},
};

const nmf_sta_device *nmf_sta_devices(size_t *count) {
    if (count) *count = sizeof devices / sizeof devices[0];
    return devices;
}

const nmf_sta_device *nmf_sta_device_find(const char *name) {
    for (size_t i = 0; name && i < sizeof devices / sizeof devices[0]; i++)
        if (!strcmp(devices[i].name, name)) return &devices[i];
    return NULL;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static int64_t brams(int64_t bytes, int64_t width_bits) {
    return max64(cdiv(bytes, 4096), cdiv(width_bits, 72));
}

nmf_status nmf_sta_estimate_resources(const nmf_sta_config *c, nmf_sta_resources *o) {
    if (!c || !o) return nmf_error(NMF_ERR_INVALID_ARG, "sta resources: NULL argument");
    memset(o, 0, sizeof *o);
    o->device = nmf_sta_device_find(c->device);
    if (!o->device) return nmf_error(NMF_ERR_INVALID_ARG, "fpga.device: unknown device '%s'", c->device);
    const int64_t D = c->dpus, L = c->lanes_per_dpu, mults = D * L, b = c->data_bits;
    const int64_t P = c->softmax_lanes, V = c->vector_lanes, M = c->max_m;
    int logm = 0, logl = 0;
    while ((1 << logm) < M) logm++;
    while ((1 << logl) < L) logl++;

    o->dsp = mults + 2 * D + 2 * P + 2 * V;

    o->lut_mult = 0; /* multipliers are in DSPs */
    o->lut_mux = mults * b * cdiv(M - 1, 3);
    int64_t adder = 0;
    for (int l = 0; (1LL << l) < L; l++) adder += (L >> (l + 1)) * (2 * b + l + 1);
    o->lut_adder = D * adder;
    o->lut_acc = D * (c->acc_bits * 3 / 2) + cdiv(D, 16) * (L * M * logm / 2);
    o->lut_softmax = P * 220 + 1500;
    o->lut_vector = V * 160 + 1200;
    o->lut_control = 15000;
    o->lut = o->lut_mult + o->lut_mux + o->lut_adder + o->lut_acc + o->lut_softmax + o->lut_vector +
             o->lut_control;

    o->ff_pipeline = mults * (2 * b * c->mult_latency + b) + D * adder + D * c->acc_bits +
                     P * 300 + V * 200 + 20000;
    o->ff_window = cdiv(D, 16) * L * M * b;
    o->ff = o->ff_pipeline + o->ff_window;

    const int64_t slots = 1; /* capacities below already include both halves */
    (void)slots;
    int64_t wbytes = (int64_t)c->weight_buf_kib * 1024;
    /* a step's weights (worst case N = 1: max_m position bits per value) reload the DPUs' weight
     * registers every NMF_STA_WEIGHT_RELOAD cycles */
    int64_t wwidth = cdiv(mults * (b + M), NMF_STA_WEIGHT_RELOAD);
    if (o->device->uram > 0) {
        o->uram = max64(cdiv(wbytes, 36864), cdiv(wwidth, 72));
        o->bram_weight = 0;
    } else {
        o->bram_weight = brams(wbytes, wwidth);
    }
    o->bram_act = brams((int64_t)c->act_buf_kib * 1024, (int64_t)c->act_banks * b);
    o->bram_out = brams((int64_t)c->out_buf_kib * 1024, D * c->acc_bits);
    o->bram_score = brams((int64_t)c->score_buf_kib * 1024, P * c->acc_bits);
    o->bram_lut = cdiv(V, 2) * cdiv((1LL << b) * b, 32768);
    o->bram36 = o->bram_weight + o->bram_act + o->bram_out + o->bram_score + o->bram_lut;

    const nmf_sta_device *d = o->device;
    o->over[0] = 0;
    size_t n = 0;
#define OVER(cond, what)                                                                  \
    if (cond) n += (size_t)snprintf(o->over + n, sizeof o->over - n, "%s%s", n ? "," : "", what)
    OVER(o->dsp > d->dsp, "DSP");
    OVER(o->lut > d->lut, "LUT");
    OVER(o->ff > d->ff, "FF");
    OVER(o->bram36 > d->bram36, "BRAM");
    OVER(o->uram > d->uram, "URAM");
#undef OVER
    o->fits = o->over[0] == 0;
    return NMF_OK;
}
