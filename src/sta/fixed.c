/* Fixed-point arithmetic of the accelerator (docs/STA.md, "numbers"). These scalar functions ARE
 * the specification of the datapath's arithmetic: the functional simulator and the fixed-point
 * reference forward both call them, while their loops (tiles, multiplexers, lanes versus plain
 * dense loops) are written independently.
 *
 * (sat, shift_round, requant and div_round are defined inline in fx_internal.h, for the CPU's
 * fixed-point mode; these exports wrap them.)
 *
 *   rounding     round half up: floor(x / 2^s + 1/2)       (an adder and a shift in hardware)
 *   saturation   clamp to the signed range of the target width
 *   requantise   sat(round(acc * mult * 2^-shift)), mult a Q15 value in [2^14, 2^15)
 *   exp          2^(-u), u in Q16: integer part by right shift, fraction from a 257-entry table
 *                of round(2^15 * 2^(-i/256)) with linear interpolation on the low 8 bits */
#include <math.h>

#include "nmformer/sta.h"
#include "sta/fx_internal.h"

int64_t nmf_fx_sat(int64_t v, int bits) { return fx_sat(v, bits); }
int64_t nmf_fx_shift_round(int64_t v, int shift) { return fx_shift_round(v, shift); }
int64_t nmf_fx_div_round(int64_t a, int64_t b) { return fx_div_round(a, b); }

nmf_status nmf_fx_rq_from_real(double real, nmf_fx_rq *out) {
    if (!(real > 0) || !isfinite(real))
        return nmf_error(NMF_ERR_NUMERIC, "fixed point: scale ratio %g is not a positive number", real);
    int e;
    double f = frexp(real, &e); /* real = f * 2^e, f in [0.5, 1) */
    int64_t mult = (int64_t)floor(f * 32768.0 + 0.5);
    int shift = 15 - e;
    if (mult == 32768) {
        mult = 16384;
        shift--;
    }
    if (shift < 1 || shift > 62)
        return nmf_error(NMF_ERR_NUMERIC, "fixed point: scale ratio %g outside [2^-47, 2^14]", real);
    out->mult = (int32_t)mult;
    out->shift = shift;
    return NMF_OK;
}

int64_t nmf_fx_requant(int64_t acc, nmf_fx_rq rq, int bits) { return fx_requant(acc, rq, bits); }

int32_t nmf_fx_quantize(float x, float scale, int bits) {
    double v = (double)x / (double)scale;
    if (v != v) v = 0;
    double r = v >= 0 ? floor(v + 0.5) : -floor(-v + 0.5);
    double hi = (double)((1 << (bits - 1)) - 1), lo = -hi - 1;
    return (int32_t)(r > hi ? hi : r < lo ? lo : r);
}

uint64_t nmf_fx_isqrt(uint64_t v) {
    uint64_t res = 0, bit = UINT64_C(1) << 62;
    while (bit > v) bit >>= 2;
    while (bit) {
        if (v >= res + bit) {
            v -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

/* round(2^15 * 2^(-i/256)), i = 0..256 */
static const int32_t exp2_table[257] = {
    32768, 32679, 32591, 32503, 32415, 32327, 32240, 32153, 32066, 31979, 31893, 31806,
    31720, 31635, 31549, 31464, 31379, 31294, 31209, 31125, 31041, 30957, 30873, 30790,
    30706, 30623, 30541, 30458, 30376, 30293, 30212, 30130, 30048, 29967, 29886, 29805,
    29725, 29644, 29564, 29484, 29405, 29325, 29246, 29167, 29088, 29009, 28931, 28852,
    28774, 28697, 28619, 28542, 28464, 28388, 28311, 28234, 28158, 28082, 28006, 27930,
    27855, 27779, 27704, 27629, 27554, 27480, 27406, 27332, 27258, 27184, 27110, 27037,
    26964, 26891, 26818, 26746, 26674, 26601, 26530, 26458, 26386, 26315, 26244, 26173,
    26102, 26031, 25961, 25891, 25821, 25751, 25681, 25612, 25543, 25474, 25405, 25336,
    25268, 25199, 25131, 25063, 24995, 24928, 24860, 24793, 24726, 24659, 24593, 24526,
    24460, 24394, 24328, 24262, 24196, 24131, 24066, 24001, 23936, 23871, 23806, 23742,
    23678, 23614, 23550, 23486, 23423, 23359, 23296, 23233, 23170, 23108, 23045, 22983,
    22921, 22859, 22797, 22735, 22674, 22613, 22552, 22491, 22430, 22369, 22309, 22248,
    22188, 22128, 22068, 22009, 21949, 21890, 21831, 21772, 21713, 21654, 21595, 21537,
    21479, 21421, 21363, 21305, 21247, 21190, 21133, 21076, 21019, 20962, 20905, 20849,
    20792, 20736, 20680, 20624, 20568, 20513, 20457, 20402, 20347, 20292, 20237, 20182,
    20127, 20073, 20019, 19965, 19911, 19857, 19803, 19750, 19696, 19643, 19590, 19537,
    19484, 19431, 19379, 19326, 19274, 19222, 19170, 19118, 19066, 19015, 18963, 18912,
    18861, 18810, 18759, 18708, 18658, 18607, 18557, 18507, 18457, 18407, 18357, 18308,
    18258, 18209, 18160, 18110, 18061, 18013, 17964, 17915, 17867, 17819, 17770, 17722,
    17674, 17627, 17579, 17531, 17484, 17437, 17390, 17343, 17296, 17249, 17202, 17156,
    17109, 17063, 17017, 16971, 16925, 16879, 16834, 16788, 16743, 16697, 16652, 16607,
    16562, 16518, 16473, 16428, 16384,

};

int32_t nmf_fx_exp2_neg(uint64_t u) {
    uint64_t ip = u >> NMF_FX_EXP_FRAC;
    if (ip >= 16) return 0;
    uint32_t f = (uint32_t)(u & 0xFFFF), idx = f >> 8, frac = f & 0xFF;
    int32_t a = exp2_table[idx], b = exp2_table[idx + 1];
    int32_t v = a - (int32_t)((((int64_t)(a - b)) * frac + 128) >> 8);
    return (int32_t)fx_shift_round(v, (int)ip);
}
