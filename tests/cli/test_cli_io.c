/* The convert / prune / info commands end to end (through the nmformer binary, NMF_CLI):
 *  - the round trip: PyTorch safetensors -> prune --pattern P -> .nmf -> convert back ->
 *    every tensor bit-equal to the PyTorch-masked tensor, for every pattern;
 *  - a family (dense + 4:8 + 2:8 + 1:8) is smaller than the four files written separately, and
 *    `info --json` shows the sharing; --add builds the same file incrementally;
 *  - f16 storage, config flags, and clear one-line failures on bad input. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../io/io_test_util.h"
#include "../tensor_compare.h"

static const char *cli(void) {
    const char *c = getenv("NMF_CLI");
    return c ? c : "./nmformer";
}

/* Runs `nmformer ARGS` with stdout to out.txt and stderr to err.txt in the temp dir; returns the
 * exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
    char args[3072], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out.txt' 2>'%s/err.txt'", cli(), args, tmp_dir(),
             tmp_dir());
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *slurp(const char *name) {
    size_t n;
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmp_dir(), name);
    return (char *)read_bytes(path, &n); /* NUL-terminated by nmf_read_file */
}

/* The command failed with exactly one line on stderr that contains needle. */
static void check_one_line_error(int rc, const char *needle) {
    char *err = slurp("err.txt");
    size_t lines = 0;
    for (char *p = err; *p; p++) lines += *p == '\n';
    CHECK_MSG(rc != 0 && lines == 1 && strstr(err, needle), "rc %d, stderr '%s', want '%s'", rc,
              err, needle);
    free(err);
}

static off_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Every tensor of `got` equals `want` bit for bit (values converted through dt first). */
static int same_tensors(const char *got_path, const char *want_path, nmf_dtype dt) {
    nmf_tensor_set a, b;
    int ok = 1;
    if (nmf_safetensors_read(got_path, &a) != NMF_OK) return 0;
    if (nmf_safetensors_read(want_path, &b) != NMF_OK) {
        nmf_tensors_free(&a);
        return 0;
    }
    ok = a.count == b.count;
    for (size_t i = 0; ok && i < b.count; i++) {
        const nmf_tensor *w = &b.items[i], *g = nmf_tensors_find(&a, w->name);
        if (!g || g->numel != w->numel || g->ndim != w->ndim) {
            fprintf(stderr, "%s: tensor %s missing or misshapen\n", got_path, w->name);
            ok = 0;
            break;
        }
        for (size_t k = 0; k < w->numel; k++) {
            float v = w->data[k];
            if (dt == NMF_DTYPE_F16) v = nmf_f16_to_f32(nmf_f32_to_f16(v));
            if (memcmp(&v, &g->data[k], 4)) {
                fprintf(stderr, "%s: %s[%zu] = %.9g, want %.9g\n", got_path, w->name, k,
                        g->data[k], v);
                ok = 0;
                break;
            }
        }
    }
    nmf_tensors_free(&a);
    nmf_tensors_free(&b);
    return ok;
}

static const char *const PATTERNS[] = {"2:8", "1:4", "2:4", "4:8", "1:8", "1:16", "3:32"};
#define NPAT (sizeof PATTERNS / sizeof PATTERNS[0])

static const char *masked_fixture(const char *pattern) {
    static char rel[128];
    char p[16];
    snprintf(p, sizeof p, "%s", pattern);
    *strchr(p, ':') = '-';
    snprintf(rel, sizeof rel, "tests/fixtures/vit_tiny_%s.safetensors", p);
    return test_source_path(rel);
}

static void round_trip(const char *src) {
    for (size_t k = 0; k < NPAT; k++) {
        const char *nmf = tmp_path("p.nmf"), *back = tmp_path("back.safetensors");
        CHECK(run("prune '%s' '%s' --pattern %s --no-dense", src, nmf, PATTERNS[k]) == 0);
        CHECK(run("convert '%s' '%s'", nmf, back) == 0);
        CHECK_MSG(same_tensors(back, masked_fixture(PATTERNS[k]), NMF_DTYPE_F32), "pattern %s",
                  PATTERNS[k]);
        /* the linears really are stored N:M */
        nmf_family f;
        CHECK_OK(nmf_family_read(nmf, &f));
        CHECK(f.count == 1 && !strcmp(f.models[0].name, PATTERNS[k]));
        const nmf_tensor *t = f.count ? nmf_tensors_find(&f.models[0].tensors, "blocks.1.mlp.fc2.weight") : NULL;
        CHECK(t && t->nm);
        nmf_family_free(&f);
        /* the PyTorch-masked file itself converts to a packed candidate and back */
        CHECK(run("convert '%s' '%s' --model %s", masked_fixture(PATTERNS[k]), nmf, PATTERNS[k]) == 0);
        CHECK(run("convert '%s' '%s' --model %s", nmf, back, PATTERNS[k]) == 0);
        CHECK(same_tensors(back, masked_fixture(PATTERNS[k]), NMF_DTYPE_F32));
    }
    /* all seven in one family, each candidate converted back by name */
    const char *all = tmp_path("all.nmf"), *back = tmp_path("back.safetensors");
    CHECK(run("prune '%s' '%s' --pattern 2:8,1:4,2:4,4:8,1:8,1:16,3:32", src, all) == 0);
    for (size_t k = 0; k < NPAT; k++) {
        CHECK(run("convert '%s' '%s' --model %s", all, back, PATTERNS[k]) == 0);
        CHECK_MSG(same_tensors(back, masked_fixture(PATTERNS[k]), NMF_DTYPE_F32), "family %s",
                  PATTERNS[k]);
    }
    CHECK(run("convert '%s' '%s' --model dense", all, back) == 0);
    CHECK(same_tensors(back, src, NMF_DTYPE_F32));
    /* f16 storage: values are the f16 rounding of the masked ones */
    CHECK(run("prune '%s' '%s' --pattern 2:8 --dtype f16", src, all) == 0);
    CHECK(run("convert '%s' '%s' --model 2:8", all, back) == 0);
    CHECK(same_tensors(back, masked_fixture("2:8"), NMF_DTYPE_F16));
    /* safetensors output of a single pattern */
    CHECK(run("prune '%s' '%s' --pattern 1:16", src, back) == 0);
    CHECK(same_tensors(back, masked_fixture("1:16"), NMF_DTYPE_F32));
}

static void family_sizes(const char *src) {
    const char *fam = tmp_path("fam.nmf");
    CHECK(run("prune '%s' '%s' --pattern 4:8,2:8,1:8", src, fam) == 0);
    CHECK(run("convert '%s' '%s'", src, tmp_path("dense.nmf")) == 0);
    off_t separate = file_size(tmp_path("dense.nmf"));
    const char *pats[3] = {"4:8", "2:8", "1:8"};
    for (int k = 0; k < 3; k++) {
        CHECK(run("prune '%s' '%s' --pattern %s --no-dense", src, tmp_path("one.nmf"), pats[k]) == 0);
        separate += file_size(tmp_path("one.nmf"));
    }
    off_t family = file_size(fam);
    printf("family dense+4:8+2:8+1:8: %lld bytes; four separate .nmf files: %lld bytes; dense "
           "safetensors: %lld bytes\n",
           (long long)family, (long long)separate, (long long)file_size(src));
    CHECK(family > 0 && family < separate);

    /* --add builds the same file step by step */
    const char *inc = tmp_path("inc.nmf");
    CHECK(run("prune '%s' '%s' --pattern 4:8", src, inc) == 0);
    CHECK(run("prune '%s' '%s' --pattern 2:8,1:8 --add", src, inc) == 0);
    nmf_family fa, fb; /* the same candidates, tensors and values (payload order may differ:
                          the streamed prune places them tensor by tensor) */
    CHECK_OK(nmf_family_read(fam, &fa));
    CHECK_OK(nmf_family_read(inc, &fb));
    CHECK(fa.count == 4 && fb.count == 4);
    for (size_t m = 0; m < fa.count && m < fb.count; m++)
        CHECK(!strcmp(fa.models[m].name, fb.models[m].name) &&
              nmf_test_same_tensors(&fa.models[m].tensors, &fb.models[m].tensors, 1));
    nmf_family_free(&fa);
    nmf_family_free(&fb);
    CHECK(run("prune '%s' '%s' --pattern 2:8 --add", src, inc) == 1);
    check_one_line_error(1, "already holds a model named '2:8'");
    /* --add keeps the family's stored dtype (the whole file is rewritten) */
    const char *half = tmp_path("half.nmf");
    CHECK(run("prune '%s' '%s' --pattern 4:8 --dtype bf16", src, half) == 0);
    CHECK(run("prune '%s' '%s' --pattern 2:8 --add", src, half) == 0);
    nmf_family hf;
    nmf_family_layout hl;
    CHECK_OK(nmf_family_read_layout(half, &hf, &hl));
    size_t bf16 = 0;
    for (size_t k = 0; k < hl.count; k++) bf16 += hl.items[k].dtype == NMF_DTYPE_BF16;
    CHECK(hf.count == 3 && hl.count > 0 && bf16 == hl.count);
    nmf_family_layout_free(&hl);
    nmf_family_free(&hf);

    /* info --json shows the sharing */
    CHECK(run("info '%s' --json", fam) == 0);
    char *text = slurp("out.txt");
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK(j != NULL);
    if (!j) return;
    const cJSON *models = cJSON_GetObjectItem(j, "models"), *shared = cJSON_GetObjectItem(j, "shared");
    CHECK(cJSON_GetArraySize(models) == 4);
    CHECK(cJSON_GetArraySize(shared) == 24); /* everything but the 8 block linears */
    double shared_bytes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, shared) {
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(e, "models")) == 4);
        shared_bytes += cJSON_GetObjectItem(e, "bytes")->valuedouble;
    }
    CHECK(cJSON_GetObjectItem(j, "bytes_saved_by_sharing")->valuedouble == 3 * shared_bytes);
    CHECK(cJSON_GetObjectItem(j, "file_bytes")->valuedouble == (double)family);
    const int bits[4] = {0, 7, 5, 3};
    int i = 0;
    cJSON_ArrayForEach(e, models) {
        const cJSON *t;
        int linears = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(e, "tensors")) {
            const cJSON *b = cJSON_GetObjectItem(t, "code_bits_per_group");
            /* roles from the model description: N:M-eligible exactly for the block linears */
            const char *tn = cJSON_GetObjectItem(t, "name")->valuestring;
            const cJSON *role = cJSON_GetObjectItem(t, "role"), *nm = cJSON_GetObjectItem(t, "nm_eligible");
            int block_linear = strstr(tn, "blocks.") && strstr(tn, ".weight") && !strstr(tn, "norm");
            CHECK(cJSON_IsString(role) && cJSON_IsBool(nm) && cJSON_IsTrue(nm) == block_linear);
            CHECK(!strcmp(role->valuestring, block_linear                 ? "linear weight"
                                             : strstr(tn, "norm")          ? (strstr(tn, ".weight") ? "norm weight" : "norm bias")
                                             : !strcmp(tn, "head.weight")  ? "head weight"
                                             : !strcmp(tn, "head.bias")    ? "head bias"
                                             : !strcmp(tn, "cls_token")    ? "cls"
                                             : !strcmp(tn, "pos_embed")    ? "position"
                                             : strstr(tn, "patch_embed.proj.weight") ? "embedding"
                                                                           : "bias"));
            if (!strstr(cJSON_GetObjectItem(t, "name")->valuestring, ".weight") ||
                !strstr(cJSON_GetObjectItem(t, "name")->valuestring, "blocks.") ||
                strstr(cJSON_GetObjectItem(t, "name")->valuestring, "norm"))
                continue;
            linears++;
            if (i == 0)
                CHECK(cJSON_IsNull(b));
            else
                CHECK(cJSON_IsNumber(b) && b->valueint == bits[i]);
            CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(t, "shared_with")) == 0);
        }
        CHECK(linears == 8);
        i++;
    }
    cJSON_Delete(j);
    CHECK(run("info '%s'", fam) == 0);
    text = slurp("out.txt");
    CHECK(strstr(text, "sharing saves") && strstr(text, "model '1:8'"));
    free(text);
    CHECK(run("info '%s'", src) == 0);
}

static void config_flags(const char *src) {
    nmf_tensor_set s, bare;
    CHECK_OK(nmf_safetensors_read(src, &s));
    nmf_tensors_init(&bare);
    for (size_t i = 0; i < s.count; i++)
        CHECK_OK(nmf_tensors_add_dense(&bare, s.items[i].name, s.items[i].ndim, s.items[i].shape,
                                       s.items[i].data, NULL));
    const char *nometa = tmp_path("nometa.safetensors");
    CHECK_OK(nmf_safetensors_write(nometa, &bare, NMF_DTYPE_F32));
    nmf_tensors_free(&s);
    nmf_tensors_free(&bare);
    const char *out = tmp_path("flags.nmf");
    check_one_line_error(run("convert '%s' '%s'", nometa, out), "no nmformer.config metadata");
    /* info does not invent a config for a file without one */
    CHECK(run("info '%s'", nometa) == 0);
    char *text = slurp("out.txt");
    CHECK(strstr(text, "config: none") != NULL);
    free(text);
    CHECK(run("info '%s' --json", nometa) == 0);
    text = slurp("out.txt");
    cJSON *j = cJSON_Parse(text);
    CHECK(j && cJSON_IsNull(cJSON_GetObjectItem(j, "config")));
    cJSON_Delete(j);
    free(text);
    CHECK(run("info '%s' --json", src) == 0);
    text = slurp("out.txt");
    j = cJSON_Parse(text);
    const cJSON *dim = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), "dim");
    CHECK(dim && dim->valueint == 32);
    cJSON_Delete(j);
    free(text);
    const char *flags = "--img-size 28 --patch 7 --in-chans 1 --dim 32 --depth 2 --heads 2 "
                        "--mlp-ratio 2 --classes 10";
    CHECK(run("convert '%s' '%s' %s", nometa, out, flags) == 0);
    CHECK(run("convert '%s' '%s'", out, tmp_path("back.safetensors")) == 0);
    CHECK(same_tensors(tmp_path("back.safetensors"), src, NMF_DTYPE_F32));
    check_one_line_error(run("convert '%s' '%s' %s --depth 3", nometa, out, flags),
                         "'blocks.2.norm1.weight' missing");
    check_one_line_error(run("prune '%s' '%s' --pattern 2:8 --img-size 28 --patch 7 --in-chans 1 "
                             "--dim 32 --depth 2 --heads 2 --mlp-ratio 4 --classes 10",
                             nometa, out),
                         "blocks.0.mlp.fc1.weight' has shape [64,32], config expects [128,32]");
    check_one_line_error(run("convert '%s' '%s' --dim abc", nometa, out), "--dim 'abc'");
    /* a family whose tensors do not fit its config: the error names the input, not the output */
    nmf_family fam;
    nmf_family_init(&fam);
    CHECK_OK(nmf_safetensors_read(src, &s));
    CHECK_OK(nmf_model_config_from_json(nmf_tensors_get_meta(&s, NMF_CONFIG_META_KEY), &fam.config));
    fam.config.depth = 3;
    CHECK_OK(nmf_family_add(&fam, "dense", &s));
    const char *mismatched = tmp_path("mismatched.nmf");
    CHECK_OK(nmf_family_write(mismatched, &fam, NULL));
    nmf_family_free(&fam);
    check_one_line_error(run("convert '%s' '%s'", mismatched, out),
                         "mismatched.nmf: tensor 'blocks.2.norm1.weight' missing)");
}

static void failures(const char *src) {
    char out[600]; /* kept: tmp_path's buffers rotate */
    snprintf(out, sizeof out, "%s", tmp_path("x.nmf"));
    for (const char *const *c = (const char *const[]){"convert", "prune", "info", NULL}; *c; c++) {
        CHECK(run("%s", *c) == 2);
        CHECK(run("%s --bogus", *c) == 2);
    }
    /* every command and subcommand has --help (usage on stdout, exit 0) */
    for (const char *const *c = (const char *const[]){"", "convert", "prune", "info", "run", "eval",
                                                      "train", "sim", "bench", "bench gemm",
                                                      "bench model", NULL};
         *c; c++) {
        CHECK_MSG(run("%s --help", *c) == 0, "'%s --help'", *c);
        char *text = slurp("out.txt");
        CHECK_MSG(strstr(text, "usage: nmformer") != NULL, "'%s --help'", *c);
        free(text);
    }
    /* usage errors of the dispatcher are one line too */
    check_one_line_error(run("%s", ""), "need a command");
    check_one_line_error(run("frobnicate"), "unknown command 'frobnicate'");
    check_one_line_error(run("bench"), "need gemm or model");
    check_one_line_error(run("bench frobnicate"), "unknown benchmark 'frobnicate'");
    check_one_line_error(run("prune '%s' '%s' --pattern 4:4", src, out), "4:4");
    check_one_line_error(run("prune '%s' '%s' --pattern 5:64", src, out), "5:64");
    check_one_line_error(run("prune '%s' '%s' --pattern 3:24", src, out), "blocks.0.attn.qkv.weight");
    check_one_line_error(run("prune '%s' '%s' --pattern 2:8,1:8", src, tmp_path("x.safetensors")),
                         "one pattern");
    check_one_line_error(run("prune '%s' '%s' --pattern 2:8 --dtype f64", src, out), "f64");
    check_one_line_error(run("convert '%s' '%s' --model 2:8", src, out), "is not 2:8 sparse");
    check_one_line_error(run("convert '%s' x.bin", src), "x.bin");
    CHECK(run("prune '%s' '%s' --pattern 4:8,2:8", src, out) == 0);
    check_one_line_error(run("convert '%s' '%s'", out, tmp_path("x.safetensors")),
                         "pick one with --model (dense, 4:8, 2:8)");
    check_one_line_error(run("convert '%s' '%s' --model 1:8", out, tmp_path("x.safetensors")),
                         "no model '1:8' (available: dense, 4:8, 2:8)");
    check_one_line_error(run("info '%s'", tmp_path("missing.nmf")), "missing.nmf");
    check_one_line_error(run("prune '%s' '%s' --pattern 1:8 --add", src, tmp_path("missing.nmf")),
                         "missing.nmf");
    /* a damaged family: every command refuses it with one line, and the old output survives */
    size_t n;
    uint8_t *raw = read_bytes(out, &n);
    write_bytes(tmp_path("trunc.nmf"), raw, n - 100);
    raw[n - 200] ^= 0x10;
    write_bytes(tmp_path("flip.nmf"), raw, n);
    free(raw);
    check_one_line_error(run("info '%s'", tmp_path("trunc.nmf")), "truncated");
    check_one_line_error(run("info '%s'", tmp_path("flip.nmf")), "CRC mismatch");
    check_one_line_error(run("convert '%s' '%s' --model dense", tmp_path("flip.nmf"), out), "CRC mismatch");
    check_one_line_error(run("prune '%s' '%s' --pattern 1:8 --add", src, tmp_path("flip.nmf")),
                         "CRC mismatch");
    nmf_family f;
    CHECK_OK(nmf_family_read(out, &f));
    nmf_family_free(&f);
    /* damaged safetensors input */
    raw = read_bytes(src, &n);
    write_bytes(tmp_path("trunc.safetensors"), raw, n - 3);
    raw[3] = 0x7f; /* header length far beyond the file */
    write_bytes(tmp_path("hlen.safetensors"), raw, n);
    free(raw);
    check_one_line_error(run("info '%s'", tmp_path("trunc.safetensors")), "outside the data");
    check_one_line_error(run("prune '%s' '%s' --pattern 2:8", tmp_path("trunc.safetensors"), out),
                         "outside the data");
    check_one_line_error(run("convert '%s' '%s'", tmp_path("hlen.safetensors"), out),
                         "header length");
    CHECK_OK(nmf_family_read(out, &f)); /* still the old, intact file */
    nmf_family_free(&f);
    /* damaged .npy input of `run`: one line naming the problem, no output written */
    const char *y = tmp_path("y.npy");
    check_one_line_error(run("run '%s' --input '%s' --output '%s'", src,
                             test_source_path("tests/fixtures/npy/f8.npy"), y),
                         "npy dtype '<f8' is not supported");
    raw = read_bytes(test_source_path("tests/fixtures/npy/f4_v1.npy"), &n);
    write_bytes(tmp_path("trunc.npy"), raw, n - 5);
    raw[6] = 7; /* version 7.0 */
    write_bytes(tmp_path("v7.npy"), raw, n);
    free(raw);
    check_one_line_error(run("run '%s' --input '%s' --output '%s'", src, tmp_path("trunc.npy"), y),
                         "truncated");
    check_one_line_error(run("run '%s' --input '%s' --output '%s'", src, tmp_path("v7.npy"), y),
                         "version 7.0");
    CHECK(access(y, F_OK) != 0);
    /* a name with a newline inside the file still gives a one-line error */
    const char *hdr = "{\"bad\\nname\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}";
    uint8_t buf[128] = {0};
    size_t hl = strlen(hdr);
    buf[0] = (uint8_t)hl;
    memcpy(buf + 8, hdr, hl);
    write_bytes(tmp_path("nl.safetensors"), buf, 8 + hl + 8);
    check_one_line_error(run("info '%s'", tmp_path("nl.safetensors")), "tensor 'bad?name'");
}

int main(void) {
    const char *src = test_source_path("tests/fixtures/vit_tiny.safetensors");
    static char src_copy[4096];
    snprintf(src_copy, sizeof src_copy, "%s", src);
    round_trip(src_copy);
    family_sizes(src_copy);
    config_flags(src_copy);
    failures(src_copy);
    rm_tmp_dir();
    return test_finish("cli_io");
}
