/* nmformer generate MODEL --input ids.npy --tokens G --output seq.npy [options]
 * Continues token sequences with a causal LM (GPT-2, LLaMA): one prefill of the prompt into a
 * key/value cache, then one cached step per new token (nmf_lm_generate, lm.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"

static const char usage_text[] =
    "usage: nmformer generate MODEL --input ids.npy --tokens G --output seq.npy [options]\n"
    "  Continues each prompt of a causal language model (GPT-2 or LLaMA with an LM head; a\n"
    "  Hugging Face folder, a .safetensors or one candidate of an .nmf family) by G tokens. The\n"
    "  prompt runs once (prefill) into a key/value cache; each new token is then one cached step,\n"
    "  so the prefix is never recomputed. Prints prefill and decode tokens/s.\n"
    "  --input PATH        prompt token ids, int64 or int32 .npy (B, T) (or one sequence (T));\n"
    "                      - = stdin\n"
    "  --tokens G          new tokens per sequence (>= 1; required)\n"
    "  --output PATH       int64 .npy (B, T + G): each prompt followed by its new tokens;\n"
    "                      - = stdout (the figures then go to stderr)\n"
    "  --model NAME        candidate of a family file (dense, 2:8, ...)\n"
    "  --temperature X     0 (default): greedy, the highest logit (the lowest id on ties);\n"
    "                      X > 0: sample from softmax(logits / X)\n"
    "  --top-k K           with X > 0: sample among the K highest logits (default 0: all)\n"
    "  --seed S            sampling seed (default 0); the same seed gives the same tokens\n"
    "  --max-tokens N      positions the cache holds (default T + G; at most the model's\n"
    "                      max_position_embeddings). T + G beyond it is an error.\n"
    "  --threads T         threads (default: NMF_THREADS or all cores)\n"
    "memory: the cache holds keys and values of every layer for B sequences of N positions:\n"
    "  2 * layers * B * N * kv_heads * head_dim * 4 bytes (GPT-2 small, B = 1, N = 1024: 72 MiB;\n"
    "  the figure for the model at hand is printed with the results).\n";

static int parse_double(const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) return 1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    if (!*s || *s == '-') return 1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return 1;
    *out = (uint64_t)v;
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *input = NULL, *output = NULL, *name = NULL;
    long tokens = 0, top_k = 0, max_tokens = 0, threads = 0;
    double temperature = 0.0;
    uint64_t seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        int has_value = i + 1 < argc;
        const char *v = has_value ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--input") && has_value) input = v;
        else if (!strcmp(a, "--output") && has_value) output = v;
        else if (!strcmp(a, "--model") && has_value) name = v;
        else if (!strcmp(a, "--tokens") && has_value) bad = model_cli_int(v, 1, 1L << 24, &tokens);
        else if (!strcmp(a, "--top-k") && has_value) bad = model_cli_int(v, 0, 1L << 30, &top_k);
        else if (!strcmp(a, "--max-tokens") && has_value) bad = model_cli_int(v, 1, 1L << 30, &max_tokens);
        else if (!strcmp(a, "--threads") && has_value) bad = model_cli_int(v, 1, 4096, &threads);
        else if (!strcmp(a, "--temperature") && has_value) bad = parse_double(v, 0.0, 1e6, &temperature);
        else if (!strcmp(a, "--seed") && has_value) bad = parse_u64(v, &seed);
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "nmformer generate: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        } else {
            if (model_path) {
                fprintf(stderr, "nmformer generate: unexpected argument '%s'\n", a);
                return 2;
            }
            model_path = a;
            continue;
        }
        if (bad) {
            fprintf(stderr, "nmformer generate: %s: bad value '%s' (see --help)\n", a, v);
            return 2;
        }
        i++;
    }
    if (!model_path || !input || !output) {
        fprintf(stderr, "nmformer generate: need MODEL, --input and --output (see --help)\n");
        return 2;
    }
    if (!tokens) {
        fprintf(stderr, "nmformer generate: need --tokens G, the new tokens per sequence (see --help)\n");
        return 2;
    }
    if (top_k && temperature == 0.0) {
        fprintf(stderr, "nmformer generate: --top-k samples, so it needs --temperature X > 0\n");
        return 2;
    }
    if (threads) nmf_set_threads((int)threads);

    nmf_model_config c;
    nmf_tensor_set tensors;
    nmf_status st = cli_load_model(model_path, name, NULL, &c, &tensors);
    if (st == NMF_OK && !nmf_model_is_token(&c)) {
        nmf_tensors_free(&tensors);
        fprintf(stderr, "nmformer generate: %s: a %s model classifies images; generate needs a "
                        "causal language model (GPT-2, LLaMA)\n", model_path, c.arch);
        return 1;
    }
    if (st == NMF_OK && c.hf.head != NMF_HF_HEAD_LM) {
        nmf_tensors_free(&tensors);
        fprintf(stderr, "nmformer generate: %s: %s %s has no language-model head; generate needs "
                        "a causal LM (GPT2LMHeadModel, LlamaForCausalLM)\n", model_path, c.arch,
                c.hf.architecture[0] ? c.hf.architecture : "model");
        return 1;
    }
    nmf_lm *lm = NULL;
    if (st == NMF_OK) st = nmf_lm_create(&lm, &c, &tensors);
    nmf_tensors_free(&tensors);
    if (st) return cli_fail("generate", model_path, st);

    nmf_id_array ids = {0};
    const char *what = input;
    int64_t *seq = NULL;
    size_t B = 0, T = 0, G = (size_t)tokens;
    st = nmf_npy_read_ids(input, &ids);
    if (st == NMF_OK && !((ids.ndim == 2 || ids.ndim == 1) && ids.numel > 0))
        st = nmf_error(NMF_ERR_SHAPE, "token ids of %d dimensions (%zu ids), expected [B,T]",
                       ids.ndim, ids.numel);
    if (st == NMF_OK) {
        B = ids.ndim == 2 ? (size_t)ids.shape[0] : 1;
        T = (size_t)ids.shape[ids.ndim - 1];
        seq = nmf_alloc(B * (T + G), sizeof *seq);
        if (!seq) st = nmf_error(NMF_ERR_NOMEM, "%zu x %zu output tokens", B, T + G);
    }
    nmf_generate_stats stats = {0};
    const nmf_sampling sampling = {(float)temperature, (int)top_k, seed};
    if (st == NMF_OK) {
        what = model_path;
        st = nmf_lm_generate(lm, seq, ids.data, B, T, G, &sampling, (size_t)max_tokens, &stats);
    }
    if (st == NMF_OK) {
        const int64_t shape[2] = {(int64_t)B, (int64_t)(T + G)};
        what = output;
        st = nmf_npy_write_ids(output, seq, 2, shape);
    }
    if (st == NMF_OK) {
        FILE *f = strcmp(output, "-") ? stdout : stderr;
        const size_t cache_tokens = max_tokens ? (size_t)max_tokens : T + G;
        const double cache_mib = (double)nmf_kv_cache_bytes(lm, B, cache_tokens) / (1024.0 * 1024.0);
        fprintf(f, "prefill: %zu x %zu prompt tokens in %.3f s (%.1f tokens/s)\n", B, T,
                stats.prefill_seconds,
                stats.prefill_seconds > 0 ? (double)(B * T) / stats.prefill_seconds : 0.0);
        if (stats.decode_tokens)
            fprintf(f, "decode: %zu tokens in %.3f s (%.1f tokens/s, %.2f ms per step)\n",
                    stats.decode_tokens, stats.decode_seconds,
                    stats.decode_seconds > 0 ? (double)stats.decode_tokens / stats.decode_seconds : 0.0,
                    1e3 * stats.decode_seconds / (double)(G > 1 ? G - 1 : 1));
        else
            fprintf(f, "decode: none (the one new token comes from the prefill)\n");
        fprintf(f, "cache: %zu sequences x %zu positions, %.2f MiB\n", B, cache_tokens, cache_mib);
    }
    nmf_free(seq);
    nmf_id_array_free(&ids);
    nmf_lm_free(lm);
    return st ? cli_fail("generate", what, st) : 0;
}
