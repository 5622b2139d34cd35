/* nmformer sim end to end: a small N:M model written to an .nmf family, simulated from its real
 * positions with functional mode on; --json keys; --trace; synthetic shapes; errors. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nmformer/io.h"
#include "nmformer/sta.h"
#include "nmformer/desc.h"
#include "test.h"

static char *run(const char *cmd, int *status) {
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 1 << 16, len = 0, n;
    char *out = malloc(cap);
    while (out && (n = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) {
            char *t = realloc(out, cap *= 2);
            if (!t) break;
            out = t;
        }
    }
    if (out) out[len] = 0;
    *status = pclose(p);
    return out;
}

static void make_family(const char *path) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 12;
    c.patch = 4;
    c.in_chans = 1;
    c.dim = 32;
    c.depth = 2;
    c.heads = 2;
    c.mlp_ratio = 2.0f;
    c.num_classes = 4;
    nmf_model_desc desc;
    CHECK_OK(nmf_model_describe(&desc, &c));
    const nmf_param *specs = desc.params;
    const size_t count = desc.count;
    nmf_tensor_set set;
    nmf_tensors_init(&set);
    unsigned long long s = 3;
    for (size_t i = 0; i < count; i++) {
        size_t n = 1;
        for (int d = 0; d < specs[i].ndim; d++) n *= (size_t)specs[i].shape[d];
        float *w = malloc(n * sizeof *w);
        for (size_t k = 0; k < n; k++)
            w[k] = strstr(specs[i].name, "norm") && strstr(specs[i].name, "weight") ? 1.0f
                                                                                     : 0.2f * test_rand_float(&s);
        if (nmf_param_kind_of(&desc, &specs[i])->nm) {
            nmf_nm_matrix nm;
            CHECK_OK(nmf_nm_pack(&nm, w, (size_t)specs[i].shape[0], (size_t)specs[i].shape[1],
                                 (nmf_pattern){2, 8}, 0));
            CHECK_OK(nmf_tensors_add_nm(&set, specs[i].name, &nm, NULL));
        } else {
            CHECK_OK(nmf_tensors_add_dense(&set, specs[i].name, specs[i].ndim, specs[i].shape, w, NULL));
        }
        free(w);
    }
    nmf_model_desc_free(&desc);
    nmf_family f;
    nmf_family_init(&f);
    f.config = c;
    CHECK_OK(nmf_family_add(&f, "2:8", &set));
    nmf_write_options opt = {NMF_DTYPE_F32};
    CHECK_OK(nmf_family_write(path, &f, &opt));
    nmf_family_free(&f);
    nmf_tensors_free(&set);
}

int main(void) {
    const char *cli = getenv("NMF_CLI");
    if (!cli) {
        fprintf(stderr, "NMF_CLI not set\n");
        return 1;
    }
    char dir[] = "/tmp/nmf_sta_cli_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char model[256], trace[256], bad[256], cmd[8192];
    snprintf(model, sizeof model, "%s/m.nmf", dir);
    snprintf(trace, sizeof trace, "%s/trace.json", dir);
    snprintf(bad, sizeof bad, "%s/bad.ini", dir);
    make_family(model);
    const char *hw = test_source_path("configs/hw/mid.ini");
    char hwpath[4096];
    snprintf(hwpath, sizeof hwpath, "%s", hw);
    int status;

    snprintf(cmd, sizeof cmd, "'%s' sim '%s' --model 2:8 --hw '%s' --json --trace '%s'", cli, model,
             hwpath, trace);
    char *out = run(cmd, &status);
    CHECK_MSG(status == 0, "%s -> %d", cmd, status);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    CHECK(j != NULL);
    if (j) {
        cJSON *config = cJSON_GetObjectItem(j, "config"), *ops = cJSON_GetObjectItem(j, "ops");
        cJSON *total = cJSON_GetObjectItem(j, "total");
        CHECK(cJSON_IsObject(config) && cJSON_IsArray(ops) && cJSON_IsObject(total));
        CHECK(cJSON_GetArraySize(ops) == 2 + 2 * 12 + 1);
        const char *op_keys[] = {"name", "kind", "cycles", "useful_macs", "stall_cycles", "dram_bytes"};
        int sparse = 0;
        double sum = 0, last_start = 0;
        cJSON *op;
        cJSON_ArrayForEach(op, ops) {
            for (size_t k = 0; k < 6; k++) CHECK(cJSON_GetObjectItem(op, op_keys[k]) != NULL);
            const char *kind = cJSON_GetStringValue(cJSON_GetObjectItem(op, "kind"));
            CHECK(kind && (!strcmp(kind, "sparse") || !strcmp(kind, "dense") ||
                           !strcmp(kind, "softmax") || !strcmp(kind, "vector")));
            sparse += kind && !strcmp(kind, "sparse");
            /* the unit of each op (the report's timeline rows): softmax and vector ops on their
             * own units, products on the engine; ops start in schedule order (qk, softmax and av
             * share the start of their attention slices, which run head by head) */
            const char *unit = cJSON_GetStringValue(cJSON_GetObjectItem(op, "unit"));
            CHECK(unit && kind);
            if (unit && kind)
                CHECK_MSG(!strcmp(unit, !strcmp(kind, "softmax") ? "softmax unit"
                                        : !strcmp(kind, "vector") ? "vector unit" : "engine"),
                          "%s on %s", kind, unit);
            double start = cJSON_GetNumberValue(cJSON_GetObjectItem(op, "start_cycle"));
            CHECK(start >= last_start);
            last_start = start;
            sum += cJSON_GetNumberValue(cJSON_GetObjectItem(op, "cycles"));
        }
        CHECK(sparse == 8);
        const char *tot_keys[] = {"cycles", "time_ms", "useful_macs", "mac_efficiency", "multipliers"};
        for (size_t k = 0; k < 5; k++) CHECK(cJSON_IsNumber(cJSON_GetObjectItem(total, tot_keys[k])));
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(total, "cycles")) == sum);
        CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(total, "multipliers")) == 4096);
        cJSON *eng = cJSON_GetObjectItem(config, "engine");
        CHECK(eng && cJSON_GetNumberValue(cJSON_GetObjectItem(eng, "dpus")) == 256);
        cJSON *fn = cJSON_GetObjectItem(j, "functional");
        CHECK(fn && cJSON_IsTrue(cJSON_GetObjectItem(fn, "bit_identical")));
        CHECK(cJSON_IsObject(cJSON_GetObjectItem(j, "resources")));
    }
    cJSON_Delete(j);
    free(out);
    /* the trace is JSON with events */
    {
        uint8_t *data = NULL;
        size_t size = 0;
        CHECK_OK(nmf_read_file(trace, 1 << 28, &data, &size));
        char *text = malloc(size + 1);
        if (text && data) {
            memcpy(text, data, size);
            text[size] = 0;
            cJSON *t = cJSON_Parse(text);
            CHECK(t && cJSON_GetArraySize(cJSON_GetObjectItem(t, "traceEvents")) > 30);
            cJSON_Delete(t);
        }
        free(text);
        free(data);
    }
    /* text output, synthetic shape */
    snprintf(cmd, sizeof cmd, "'%s' sim --shape deit-tiny --pattern 2:8 --hw '%s'", cli, hwpath);
    out = run(cmd, &status);
    CHECK(status == 0 && out && strstr(out, "total:") && strstr(out, "blocks.11.mlp.fc2"));
    free(out);
    /* errors: one line on stderr naming the key, non-zero exit */
    FILE *f = fopen(bad, "w");
    if (f) {
        fputs("[engine]\ndpus = -3\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "'%s' sim --shape deit-tiny --hw '%s' 2>&1 >/dev/null", cli, bad);
    out = run(cmd, &status);
    CHECK(status != 0 && out && strstr(out, "engine.dpus") && strchr(out, '\n') == strrchr(out, '\n'));
    free(out);
    /* an unwritable --trace fails before any report is printed (stdout stays empty) */
    snprintf(cmd, sizeof cmd, "'%s' sim --shape deit-tiny --trace '%s/no/such/dir/t.json' 2>/dev/null",
             cli, dir);
    out = run(cmd, &status);
    CHECK(status != 0 && out && out[0] == '\0');
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' sim --shape deit-huge 2>&1", cli);
    out = run(cmd, &status);
    CHECK(status != 0 && out && strstr(out, "deit-huge"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' sim --help", cli);
    out = run(cmd, &status);
    CHECK(status == 0 && out && strstr(out, "--hw"));
    free(out);
    unlink(model);
    unlink(trace);
    unlink(bad);
    rmdir(dir);
    return test_finish("sta_cli");
}
