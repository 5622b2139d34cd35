/* The STA schedule of the token families: the op lists of BERT, GPT-2 and LLaMA lowered onto the
 * accelerator's units, in prefill (T tokens) and decode (one token against a cache of T). Checks
 * the op counts, the MACs of every product op against the model's own sizes (computed here from
 * the config, not from the parameter table), the key/value cache traffic, and that the simulator's
 * invariants hold. */
#include <string.h>

#include "nmformer/desc.h"
#include "nmformer/sta.h"
#include "test.h"

/* The block's products for a config, as HF's modules compute them: (out, in) of each linear. */
static int block_linears(const nmf_model_config *c, int64_t out[8], int64_t in[8]) {
    const nmf_hf_config *h = &c->hf;
    const int64_t D = h->hidden_size, I = h->intermediate_size, KV = (int64_t)h->num_key_value_heads * h->head_dim;
    int n = 0;
#define L(o, i) (out[n] = (o), in[n] = (i), n++)
    if (!strcmp(c->arch, "bert")) L(D, D), L(D, D), L(D, D), L(D, D), L(I, D), L(D, I);
    else if (!strcmp(c->arch, "gpt2")) L(3 * D, D), L(D, D), L(I, D), L(D, I);
    else L(D, D), L(KV, D), L(KV, D), L(D, D), L(I, D), L(I, D), L(D, I);
#undef L
    return n;
}

static nmf_sta_config ample(void) {
    nmf_sta_config c;
    nmf_sta_config_default(&c);
    c.act_buf_kib = 8192;
    c.score_buf_kib = 1024;
    return c;
}

static void check_family(const char *shape, nmf_pattern p, int T) {
    nmf_model_config c;
    CHECK_OK(nmf_model_shape_config(shape, &c));
    const nmf_hf_config *h = &c.hf;
    const int decoder = strcmp(c.arch, "bert") != 0;
    const int64_t D = h->hidden_size, heads = h->num_attention_heads, hd = h->head_dim;
    const int64_t KV = (int64_t)h->num_key_value_heads * hd;
    int64_t out[8], in[8];
    const int nlin = block_linears(&c, out, in);
    for (int phase = 0; phase < (decoder ? 2 : 1); phase++) {
        nmf_sta_schedule s;
        CHECK_OK(nmf_sta_schedule_build(&s, &c, NULL, p, T, (nmf_sta_phase)phase));
        const int64_t rows = phase ? 1 : T, keys = phase ? T + 1 : T;
        CHECK(s.tokens == T && s.phase == (nmf_sta_phase)phase);
        /* ops: the block's ops + 2 for the attention's qk and softmax, per layer, + stem + tail */
        int n_stem, n_block, n_tail;
        nmf_model_stem_ops(&c, &n_stem);
        nmf_model_block_ops(&c, &n_block);
        nmf_model_tail_ops(&c, &n_tail);
        CHECK_MSG(s.op_count == (size_t)(n_stem + h->num_hidden_layers * (n_block + 2) + n_tail),
                  "%s: %zu ops", shape, s.op_count);
        /* every product op of a block: the model's sizes; sparse exactly when p is N:M */
        uint64_t want_block = 0, got_block = 0;
        int linear_ops = 0, attn_groups = 0;
        for (size_t i = 0; i < s.op_count; i++) {
            const nmf_sta_op *o = &s.ops[i];
            if (o->block < 0 || o->kind == NMF_STA_OP_VECTOR) continue;
            if (o->attn_group >= 0) {
                if (o->kind == NMF_STA_OP_SOFTMAX) {
                    CHECK(o->rows == rows && o->k == keys && o->batch == heads);
                    continue;
                }
                const int qk = strstr(o->name, ".qk") != NULL;
                attn_groups += qk;
                CHECK_MSG(o->batch == heads && o->rows == rows &&
                              (qk ? o->cols == keys && o->k == hd : o->cols == hd && o->k == keys),
                          "%s %s: %lldx%lldx%lld", shape, o->name, (long long)o->rows,
                          (long long)o->cols, (long long)o->k);
                continue;
            }
            const int j = linear_ops++ % nlin; /* the block's linears come in table order */
            CHECK_MSG(o->rows == rows && o->cols == out[j] && o->k == in[j] &&
                          o->kind == (p.n ? NMF_STA_OP_SPARSE : NMF_STA_OP_DENSE) &&
                          o->pattern.n == p.n && o->pattern.m == p.m && o->weight_from_dram,
                      "%s %s: %lldx%lldx%lld", shape, o->name, (long long)o->rows, (long long)o->cols,
                      (long long)o->k);
            want_block += (uint64_t)(rows * out[j] * in[j]) * (uint64_t)(p.n ? p.n : 1) /
                          (uint64_t)(p.n ? p.m : 1);
        }
        CHECK(linear_ops == nlin * h->num_hidden_layers && attn_groups == h->num_hidden_layers);
        /* simulate: useful MACs of the block products, attention and the tail add up */
        nmf_sta_config hw = ample();
        nmf_sta_result r;
        CHECK_OK(nmf_sta_simulate(&hw, &s, 0, &r));
        uint64_t attn = 0, tail = 0, sum = 0, cache_read = 0, kv_write = 0;
        for (size_t i = 0; i < s.op_count; i++) {
            const nmf_sta_op *o = &s.ops[i];
            const nmf_sta_op_result *x = &r.ops[i];
            CHECK(x->cycles == x->busy + x->fill + x->stall);
            sum += x->cycles;
            if (o->block < 0) tail += x->useful_macs;
            else if (o->attn_group >= 0) attn += x->useful_macs;
            else got_block += x->useful_macs;
            if (o->attn_group >= 0 && o->kind == NMF_STA_OP_DENSE) cache_read += x->act_read_bytes;
            if (o->block >= 0 && o->out >= 0 && s.tensors[o->out].in_dram) kv_write += x->act_write_bytes;
        }
        CHECK(sum == r.total.cycles);
        CHECK_MSG(got_block == want_block, "%s %s: block MACs %llu, want %llu", shape,
                  nmf_sta_phase_name((nmf_sta_phase)phase), (unsigned long long)got_block,
                  (unsigned long long)want_block);
        CHECK(attn == (uint64_t)h->num_hidden_layers * 2 * (uint64_t)(heads * rows * keys * hd));
        /* the tail: the LM head on the last position (V x D), or BERT's pooler (D x D) */
        uint64_t want_tail = decoder ? (uint64_t)(h->vocab_size * D) : h->pooler ? (uint64_t)(D * D) : 0;
        CHECK_MSG(tail == want_tail, "%s: tail MACs %llu, want %llu", shape, (unsigned long long)tail,
                  (unsigned long long)want_tail);
        CHECK(r.total.cycles >= r.total.compute_lower_bound && r.total.cycles >= r.total.dram_lower_bound);
        if (decoder && phase == 1) /* every layer reads its T + 1 cached keys and values (int8) */
            CHECK_MSG(cache_read >= (uint64_t)h->num_hidden_layers * 2 * (uint64_t)(keys * KV),
                      "%s decode: attention read %llu bytes", shape, (unsigned long long)cache_read);
        if (decoder && phase == 0) /* prefill writes them */
            CHECK_MSG(kv_write >= (uint64_t)h->num_hidden_layers * 2 * (uint64_t)(T * KV),
                      "%s prefill: cache written %llu bytes", shape, (unsigned long long)kv_write);
        nmf_sta_result_free(&r);
        nmf_sta_schedule_free(&s);
    }
}

int main(void) {
    const nmf_pattern dense = {0, 0}, p28 = {2, 8}, p18 = {1, 8};
    check_family("bert-base", dense, 128);
    check_family("bert-base", p28, 128);
    check_family("gpt2", dense, 128);
    check_family("gpt2", p28, 128);
    check_family("gpt2", p18, 37);
    check_family("llama-small", p28, 128);
    check_family("llama-small", dense, 64);

    /* decode against a cache costs less than the prefill of the same T, and less with 1:8 than
     * dense (the weights are the traffic) */
    nmf_model_config c;
    CHECK_OK(nmf_model_shape_config("gpt2", &c));
    nmf_sta_config hw;
    nmf_sta_config_default(&hw);
    double ms[2][2];
    for (int phase = 0; phase < 2; phase++)
        for (int k = 0; k < 2; k++) {
            nmf_sta_schedule s;
            nmf_sta_result r;
            CHECK_OK(nmf_sta_schedule_build(&s, &c, NULL, k ? p18 : dense, 128, (nmf_sta_phase)phase));
            CHECK_OK(nmf_sta_simulate(&hw, &s, 0, &r));
            ms[phase][k] = r.total.time_ms;
            nmf_sta_result_free(&r);
            nmf_sta_schedule_free(&s);
        }
    CHECK(ms[1][0] < ms[0][0] && ms[1][1] < ms[0][1] && ms[1][1] < ms[1][0] && ms[0][1] < ms[0][0]);

    /* the default T is 128; refused: decode of an encoder, more positions than the model has */
    nmf_sta_schedule s;
    CHECK_OK(nmf_sta_schedule_build(&s, &c, NULL, dense, 0, NMF_STA_DECODE));
    CHECK(s.tokens == 128);
    nmf_sta_schedule_free(&s);
    CHECK_STATUS(nmf_sta_schedule_build(&s, &c, NULL, dense, 1024, NMF_STA_DECODE), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "max_position_embeddings"));
    CHECK_OK(nmf_sta_schedule_build(&s, &c, NULL, dense, 1023, NMF_STA_DECODE));
    nmf_sta_schedule_free(&s);
    nmf_model_config bert;
    CHECK_OK(nmf_model_shape_config("bert-base", &bert));
    CHECK_STATUS(nmf_sta_schedule_build(&s, &bert, NULL, dense, 16, NMF_STA_DECODE), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "decoders"));
    CHECK_STATUS(nmf_sta_schedule_build(&s, &bert, NULL, dense, 513, NMF_STA_PREFILL), NMF_ERR_INVALID_ARG);
    CHECK_STATUS(nmf_sta_schedule_build(&s, &bert, NULL, (nmf_pattern){3, 2}, 16, NMF_STA_PREFILL),
                 NMF_ERR_INVALID_ARG);
    /* the ViT keeps its schedule: deit-small through the same entry point equals the old one */
    nmf_model_config v;
    CHECK_OK(nmf_model_shape_config("deit-small", &v));
    nmf_sta_schedule a, b;
    CHECK_OK(nmf_sta_schedule_build(&a, &v, NULL, p28, 0, NMF_STA_PREFILL));
    CHECK_OK(nmf_sta_schedule_synthetic(&b, &v, p28, 0));
    CHECK(a.op_count == b.op_count && a.op_count == 1 + 12 * 12 + 2 && a.tokens == 197);
    for (size_t i = 0; i < a.op_count && i < b.op_count; i++)
        CHECK(!strcmp(a.ops[i].name, b.ops[i].name) && a.ops[i].rows == b.ops[i].rows &&
              a.ops[i].cols == b.ops[i].cols && a.ops[i].k == b.ops[i].k);
    CHECK(!strcmp(a.ops[2].name, "blocks.0.attn.qkv") && !strcmp(a.ops[3].name, "blocks.0.attn.qk") &&
          !strcmp(a.ops[5].name, "blocks.0.attn.av"));
    nmf_sta_schedule_free(&a);
    CHECK_STATUS(nmf_sta_schedule_build(&a, &v, NULL, p28, 0, NMF_STA_DECODE), NMF_ERR_INVALID_ARG);
    nmf_sta_schedule_free(&b);
    return test_finish("schedule_lm");
}
