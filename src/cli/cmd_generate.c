/* nmformer generate MODEL --input ids.npy --tokens G --output seq.npy [options]
 * Continues token sequences with a causal LM (GPT-2, LLaMA): one prefill of the prompt into a
 * key/value cache, then one cached step per new token (nmf_lm_generate, lm.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/model_cli.h"
#include "nmformer/io.h"
#include "nmformer/lm.h"

static const char about[] =
    "Continues each prompt of a causal language model (GPT-2 or LLaMA with an LM head; a\n"
    "Hugging Face folder, a safetensors file or one candidate of an .nmf family) by G tokens.\n"
    "The prompt runs once (prefill) into a key/value cache; each new token is then one cached\n"
    "step, so the prefix is never recomputed. Prints prefill and decode tokens/s (on stderr\n"
    "when --output is -).\n";

static const char epilog[] =
    "memory: the cache holds keys and values of every layer for B sequences of N positions:\n"
    "  2 * layers * B * N * kv_heads * head_dim * 4 bytes (GPT-2 small, B = 1, N = 1024: 72 MiB;\n"
    "  the figure for the model at hand is printed with the results).\n";

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *input = NULL, *output = NULL, *name = NULL;
    long tokens = 0, top_k = 0, max_tokens = 0;
    int threads = 0, quiet = 0, json = 0;
    nmf_precision prec = NMF_PREC_COUNT; /* not given: the weights as stored */
    double temperature = 0.0;
    uint64_t seed = 0;
    const cli_opt opts[] = {
        CLI_STR("input", 'i', &input, "PATH", "prompt token ids, int64 or int32 .npy (B, T)\n"
                "(or one sequence (T)); - = stdin"),
        CLI_LONG("tokens", 'n', &tokens, 1, 1 << 24, "G", "new tokens per sequence (required)"),
        CLI_ALIAS("new-tokens", "tokens"),
        CLI_STR("output", 'o', &output, "PATH", "int64 .npy (B, T + G): each prompt followed by\n"
                "its new tokens; - = stdout"),
        CLI_STR("model", 'm', &name, "NAME", "candidate of a family file (dense, 2:8, ...)"),
        CLI_DOUBLE("temperature", 0, &temperature, 0.0, 1e6, "X", "0 (default): greedy, the highest logit (the\n"
                   "lowest id on ties); X > 0: sample from\nsoftmax(logits / X)"),
        CLI_LONG("top-k", 0, &top_k, 0, 1L << 30, "K", "with X > 0: sample among the K highest logits\n"
                 "(default 0: all)"),
        CLI_U64("seed", 0, &seed, "S", "sampling seed (default 0); the same seed gives\nthe same tokens"),
        CLI_LONG("max-tokens", 0, &max_tokens, 1, 1L << 30, "N", "positions the cache holds (default T + G; at\n"
                 "most max_position_embeddings)"),
        CLI_INT("threads", 'j', &threads, 1, 4096, "T", "threads (default: NMF_THREADS or all cores)"),
        CLI_FN("precision", 0, cli_parse_precision, &prec, "P",
               "f32: widen BF16/F16 weights to f32 at load;\nbf16, int8: the block linears' arithmetic\n"
               "(int8: N:M candidates only) (default: weights\nas stored)"),
        CLI_FLAG("quiet", 'q', &quiet, "no figures"),
        CLI_FLAG("json", 0, &json, "the figures as one JSON object"),
        CLI_END,
    };
    const cli_command cmd = {"generate", "MODEL --input ids.npy --tokens G --output seq.npy [options]",
                             about, opts, {&model_path}, epilog};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!model_path || !input || !output)
        return cli_usage_error("generate", "need MODEL, --input and --output (see --help)");
    if (!tokens)
        return cli_usage_error("generate", "need --tokens G, the new tokens per sequence (see --help)");
    if (top_k && temperature == 0.0)
        return cli_usage_error("generate", "--top-k samples, so it needs --temperature X > 0");
    if (threads) nmf_set_threads(threads);

    nmf_lm *lm = NULL; /* a family candidate is built layer by layer, at any precision */
    nmf_status st = model_cli_lm_load(&lm, model_path, name, NULL, prec);
    if (st) return cli_fail("generate", model_path, st);
    const nmf_model_config *c = nmf_lm_get_config(lm);
    if (c->hf.head != NMF_HF_HEAD_LM) {
        fprintf(stderr, "nmformer generate: %s: %s %s has no language-model head; generate needs "
                        "a causal LM (GPT2LMHeadModel, LlamaForCausalLM)\n", model_path, c->arch,
                c->hf.architecture[0] ? c->hf.architecture : "model");
        nmf_lm_free(lm);
        return 1;
    }

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
    if (st == NMF_OK && !quiet) {
        FILE *f = strcmp(output, "-") ? stdout : stderr;
        const size_t cache_tokens = max_tokens ? (size_t)max_tokens : T + G;
        const double cache_mib = (double)nmf_kv_cache_bytes(lm, B, cache_tokens) / (1024.0 * 1024.0);
        const double prefill_tps = stats.prefill_seconds > 0 ? (double)(B * T) / stats.prefill_seconds : 0.0;
        const double decode_tps =
            stats.decode_seconds > 0 ? (double)stats.decode_tokens / stats.decode_seconds : 0.0;
        const double step_ms = 1e3 * stats.decode_seconds / (double)(G > 1 ? G - 1 : 1);
        if (json) {
            fprintf(f, "{\"sequences\": %zu, \"prompt_tokens\": %zu, \"new_tokens\": %zu, "
                       "\"prefill_seconds\": %.6f, \"prefill_tokens_per_s\": %.3f, "
                       "\"decode_tokens\": %zu, \"decode_seconds\": %.6f, \"decode_tokens_per_s\": %.3f, "
                       "\"decode_ms_per_step\": %.4f, \"cache_positions\": %zu, \"cache_mib\": %.3f}\n",
                    B, T, G, stats.prefill_seconds, prefill_tps, stats.decode_tokens,
                    stats.decode_seconds, decode_tps, stats.decode_tokens ? step_ms : 0.0,
                    cache_tokens, cache_mib);
        } else {
            fprintf(f, "prefill: %zu x %zu prompt tokens in %.3f s (%.1f tokens/s)\n", B, T,
                    stats.prefill_seconds, prefill_tps);
            if (stats.decode_tokens)
                fprintf(f, "decode: %zu tokens in %.3f s (%.1f tokens/s, %.2f ms per step)\n",
                        stats.decode_tokens, stats.decode_seconds, decode_tps, step_ms);
            else
                fprintf(f, "decode: none (the one new token comes from the prefill)\n");
            fprintf(f, "cache: %zu sequences x %zu positions, %.2f MiB\n", B, cache_tokens, cache_mib);
        }
    }
    nmf_free(seq);
    nmf_id_array_free(&ids);
    nmf_lm_free(lm);
    return st ? cli_fail("generate", what, st) : 0;
}
