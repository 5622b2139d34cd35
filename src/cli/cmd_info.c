/* nmformer info: what a model file holds and what it costs. The library builds the report
 * (nmf_file_info_json); --json prints it, the text mode lays the same document out as tables. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"

static const char about[] =
    "Describes a .nmf family, a safetensors model or a Hugging Face model folder (told\n"
    "apart by their contents): for BERT, GPT-2 and LLaMA the family, architecture, layers,\n"
    "heads, kv heads and vocabulary; per model and per tensor the shape, N:M pattern,\n"
    "stored dtype, index-code bits per group and bytes stored vs dense f32; totals per\n"
    "candidate; tensors shared between candidates and the bytes saved.\n"
    "--verify checks the stored bytes instead: every payload of an .nmf (zero padding,\n"
    "CRC-32, and the index codes of every N:M payload decoded and checked), every tensor\n"
    "of a safetensors file or model folder read (they hold no checksum); one line per bad\n"
    "tensor on stdout ('bad: model M, tensor T: why'), then a summary; exit status 1 when\n"
    "any tensor is bad.\n";

/* Field accessors: the document comes from the library, so a missing field reads as 0 / "". */
static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}
static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}
static unsigned long long u64(const cJSON *o, const char *key) { return (unsigned long long)num(o, key); }
static double ratio(double st, double de) { return de ? st / de : 0.0; }

static void shape_text(const cJSON *shape, char *buf, size_t size) {
    size_t at = (size_t)snprintf(buf, size, "[");
    int d = 0;
    for (const cJSON *x = shape ? shape->child : NULL; x && at < size; x = x->next, d++)
        at += (size_t)snprintf(buf + at, size - at, d ? ",%lld" : "%lld", (long long)x->valuedouble);
    if (at < size) snprintf(buf + at, size - at, "]");
}

/* A token model's shape in one line, from the "model" object. */
static void token_summary(const cJSON *m) {
    const char *head = str(m, "head"), *arch = str(m, "arch"), *family = str(m, "family");
    const char *architecture = str(m, "architecture"), *prefix = str(m, "prefix");
    const char *head_text = !strcmp(head, "none") ? "none (hidden states)" : !strcmp(head, "lm") ? "LM" : head;
    printf("model: %s (%s, %s%s%s): %d layers, hidden %d, %d heads, %d kv heads, head_dim %d, "
           "intermediate %d, vocab %d, positions %d, head %s%s\n",
           family[0] ? family : arch, arch, architecture[0] ? architecture : "no architectures",
           prefix[0] ? ", names under " : "", prefix, (int)num(m, "layers"), (int)num(m, "hidden"),
           (int)num(m, "heads"), (int)num(m, "kv_heads"), (int)num(m, "head_dim"),
           (int)num(m, "intermediate"), (int)num(m, "vocab"), (int)num(m, "positions"), head_text,
           !strcmp(head, "lm") ? (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "tied"))
                                       ? " (tied to the embedding)" : " (untied)")
                               : "");
}

/* How many tensors (of every model) use each payload: refs[payload], npayloads + 1 entries. */
static size_t *payload_refs(const cJSON *models, size_t npayloads) {
    size_t *refs = calloc(npayloads + 1, sizeof *refs);
    const cJSON *mo, *t;
    if (!refs) return NULL;
    cJSON_ArrayForEach(mo, models) {
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(mo, "tensors")) {
            size_t p = (size_t)num(t, "payload");
            refs[p < npayloads ? p : npayloads]++;
        }
    }
    return refs;
}

static int print_text(const cJSON *doc) {
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(doc, "models");
    const cJSON *shared = cJSON_GetObjectItemCaseSensitive(doc, "shared");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    int count = cJSON_GetArraySize(models);
    size_t npayloads = (size_t)u64(doc, "payloads");
    size_t *refs = payload_refs(models, npayloads);
    if (!refs) return 1;
    char *cfg_text = cJSON_IsObject(cfg) ? cJSON_PrintUnformatted(cfg) : NULL;
    printf("%s: %s, %llu bytes, %d model%s\nconfig: %s\n", str(doc, "file"), str(doc, "format"),
           u64(doc, "file_bytes"), count, count == 1 ? "" : "s",
           cfg_text ? cfg_text : "none (no valid nmformer.config metadata)");
    free(cfg_text);
    if (cJSON_IsObject(model)) token_summary(model);
    const cJSON *mo, *t;
    int width = 28; /* the tensor column fits the longest name (HF names are long) */
    cJSON_ArrayForEach(mo, models) {
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(mo, "tensors")) {
            size_t n = strlen(str(t, "name"));
            if (n > (size_t)width) width = n > 200 ? 200 : (int)n;
        }
    }
    cJSON_ArrayForEach(mo, models) {
        const cJSON *dp = cJSON_GetObjectItemCaseSensitive(mo, "default_precision");
        if (cJSON_IsString(dp))
            printf("\nmodel '%s' (default precision %s)\n", str(mo, "name"), dp->valuestring);
        else
            printf("\nmodel '%s'\n", str(mo, "name"));
        printf("  %-*s %-14s %-7s %-5s %8s %10s %11s %7s  %s\n", width, "tensor", "shape", "pattern",
               "dtype", "bits/grp", "stored B", "dense f32 B", "ratio", "shared");
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(mo, "tensors")) {
            char shape[64], bits[16];
            shape_text(cJSON_GetObjectItemCaseSensitive(t, "shape"), shape, sizeof shape);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "code_bits_per_group");
            if (cJSON_IsNumber(b))
                snprintf(bits, sizeof bits, "%d", b->valueint);
            else
                snprintf(bits, sizeof bits, "-");
            printf("  %-*s %-14s %-7s %-5s %8s %10llu %11llu %7.3f  %s\n", width, str(t, "name"), shape,
                   str(t, "pattern"), str(t, "dtype"), bits, u64(t, "stored_bytes"),
                   u64(t, "dense_f32_bytes"), ratio(num(t, "stored_bytes"), num(t, "dense_f32_bytes")),
                   refs[(size_t)num(t, "payload") < npayloads ? (size_t)num(t, "payload") : npayloads] > 1
                       ? "yes" : "");
        }
        double st = num(mo, "stored_bytes"), de = num(mo, "dense_f32_bytes");
        printf("  total: %llu bytes stored vs %llu dense f32 (%.3fx, %.2f bits/weight)\n",
               u64(mo, "stored_bytes"), u64(mo, "dense_f32_bytes"), ratio(st, de), 32.0 * ratio(st, de));
    }
    if (count > 1) { /* the candidates side by side */
        printf("\ncandidates:\n");
        cJSON_ArrayForEach(mo, models) {
            double st = num(mo, "stored_bytes"), de = num(mo, "dense_f32_bytes");
            printf("  %-8s %12llu bytes  %.3fx dense f32  %.2f bits/weight\n", str(mo, "name"),
                   u64(mo, "stored_bytes"), ratio(st, de), 32.0 * ratio(st, de));
        }
    }
    int nshared = cJSON_GetArraySize(shared);
    printf("\npayloads: %llu distinct, %llu bytes; the models reference %llu bytes; sharing saves "
           "%llu bytes (%d payloads shared)\n",
           u64(doc, "payloads"), u64(doc, "payload_bytes"), u64(doc, "referenced_bytes"),
           u64(doc, "bytes_saved_by_sharing"), nshared);
    if (nshared) {
        printf("shared tensors:\n");
        cJSON_ArrayForEach(t, shared) {
            printf("  %-*s %8llu bytes  models:", width, str(t, "tensor"), u64(t, "bytes"));
            const cJSON *name;
            cJSON_ArrayForEach(name, cJSON_GetObjectItemCaseSensitive(t, "models")) printf(" %s", name->valuestring);
            printf("\n");
        }
    }
    free(refs);
    return 0;
}

static void print_problem(const nmf_verify_problem *p, void *user) {
    (void)user;
    if (p->tensor)
        printf("bad: model %s, tensor %s: %s\n", p->model, p->tensor, p->detail);
    else
        printf("bad: %s\n", p->detail);
}

/* info --verify: the library checks, the CLI prints each bad tensor and the verdict. */
static int verify(const char *path) {
    size_t bad = 0;
    nmf_status st = nmf_file_verify(path, print_problem, NULL, &bad);
    if (st) return cli_fail("info", path, st);
    printf("%s: every stored tensor checked, none bad\n", path);
    return 0;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0, check = 0;
    const cli_opt opts[] = {
        CLI_FLAG("json", 0, &json, "machine-readable output on stdout"),
        CLI_FLAG("verify", 0, &check, "check every stored payload (see above)"),
        CLI_END,
    };
    const cli_command cmd = {"info", "FILE [--json | --verify]", about, opts, {&path}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!path) return cli_usage_error("info", "need FILE (see --help)");
    if (check && json) return cli_usage_error("info", "--verify prints text only");
    if (check) return verify(path);
    char *text;
    nmf_status st = nmf_file_info_json(path, &text);
    if (st) return cli_fail("info", path, st);
    if (json) {
        printf("%s\n", text);
        free(text);
        return 0;
    }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (!doc) return cli_fail("info", path, NMF_ERR_NOMEM);
    rc = print_text(doc);
    cJSON_Delete(doc);
    return rc ? cli_fail("info", path, NMF_ERR_NOMEM) : 0;
}
