/* A two-candidate .nmf family (dense-held and packed 2:8 versions of one pruned fixture) through
 * nmf_vit_load and the CLI: run --model picks the candidate, bench model measures every one,
 * an unknown --model is refused. */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nmformer/io.h"
#include "nmformer/model.h"
#include "test.h"

static const char *fixture(const char *name) {
    static char buf[4][4200];
    static int k = 0;
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/model/%s", name);
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s", test_source_path(rel));
    return buf[k];
}

static int is_block_linear(const char *name) {
    return strstr(name, "attn.qkv.weight") || strstr(name, "attn.proj.weight") ||
           strstr(name, "mlp.fc1.weight") || strstr(name, "mlp.fc2.weight");
}

static double max_err(const float *a, const float *b, size_t n) {
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e;
}

static int run_cli(const char *args, const char *out_path) {
    const char *cli = getenv("NMF_CLI");
    if (!cli) return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", cli, args, out_path);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

int main(void) {
    char dir[] = "/tmp/nmf_vit_family_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char fam_path[256], out_path[256], log_path[256];
    snprintf(fam_path, sizeof fam_path, "%s/fam.nmf", dir);
    snprintf(out_path, sizeof out_path, "%s/y.npy", dir);
    snprintf(log_path, sizeof log_path, "%s/log.txt", dir);

    nmf_tensor_set dense, packed;
    CHECK_OK(nmf_safetensors_read(fixture("vit_2to8.safetensors"), &dense));
    nmf_model_config c;
    nmf_model_config_default(&c);
    CHECK_OK(nmf_model_config_from_json(nmf_tensors_get_meta(&dense, NMF_CONFIG_META_KEY), &c));
    nmf_tensors_init(&packed);
    nmf_pattern p = {2, 8};
    for (size_t i = 0; i < dense.count; i++) {
        const nmf_tensor *t = &dense.items[i];
        if (is_block_linear(t->name)) {
            nmf_nm_matrix a;
            CHECK_OK(nmf_nm_pack(&a, t->data, (size_t)t->shape[0], (size_t)t->shape[1], p, 0));
            CHECK_OK(nmf_tensors_add_nm(&packed, t->name, &a, NULL));
            nmf_nm_free(&a);
        } else {
            CHECK_OK(nmf_tensors_add_dense(&packed, t->name, t->ndim, t->shape, t->data, NULL));
        }
    }
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = c;
    CHECK_OK(nmf_family_add(&fam, "dense", &dense));
    CHECK_OK(nmf_family_add(&fam, "2:8", &packed));
    nmf_write_options opt = {.value_dtype = NMF_DTYPE_F32};
    CHECK_OK(nmf_family_write(fam_path, &fam, &opt));
    nmf_family_free(&fam);
    nmf_tensors_free(&dense);
    nmf_tensors_free(&packed);
    if (test_failures) return test_finish("test_vit_family");

    nmf_array x = {0}, want = {0}, got = {0};
    CHECK_OK(nmf_npy_read(fixture("vit_2to8.input.npy"), &x));
    CHECK_OK(nmf_npy_read(fixture("vit_2to8.logits.npy"), &want));
    const char *names[] = {"dense", "2:8"};
    for (int i = 0; i < 2; i++) {
        nmf_vit *m = NULL;
        CHECK_OK(nmf_vit_load(&m, fam_path, names[i], NULL));
        if (!m) continue;
        float *logits = calloc(want.numel, sizeof(float));
        CHECK_OK(nmf_vit_forward(m, logits, x.data, (size_t)x.shape[0]));
        double e = max_err(logits, want.data, want.numel);
        CHECK_MSG(e <= 1e-4, "candidate %s: max abs err %.3g", names[i], e);
        free(logits);
        nmf_vit_free(m);
    }
    nmf_vit *m = NULL;
    CHECK(nmf_vit_load(&m, fam_path, NULL, NULL) != NMF_OK); /* two candidates: must choose */
    CHECK(m == NULL);
    CHECK_STATUS(nmf_vit_load(&m, fam_path, "1:8", NULL), NMF_ERR_NOT_FOUND);

    if (getenv("NMF_CLI")) {
        char args[2048];
        snprintf(args, sizeof args, "run '%s' --model 2:8 --input '%s' --output '%s' --batch 2",
                 fam_path, fixture("vit_2to8.input.npy"), out_path);
        CHECK(run_cli(args, log_path) == 0);
        CHECK_OK(nmf_npy_read(out_path, &got));
        CHECK(got.numel == want.numel);
        if (got.numel == want.numel) CHECK(max_err(got.data, want.data, want.numel) <= 1e-4);
        snprintf(args, sizeof args, "run '%s' --model 1:8 --input '%s' --output '%s/z.npy'",
                 fam_path, fixture("vit_2to8.input.npy"), dir);
        CHECK(run_cli(args, log_path) == 1);
        char *log = slurp(log_path);
        CHECK(log && strstr(log, "1:8") && strstr(log, "2:8")); /* names the available ones */
        free(log);
        snprintf(args, sizeof args, "bench model '%s' --quick --json", fam_path);
        CHECK(run_cli(args, log_path) == 0);
        log = slurp(log_path);
        CHECK(log && strstr(log, "\"candidate\": \"dense\"") && strstr(log, "\"candidate\": \"2:8\""));
        free(log);
    }
    nmf_array_free(&x);
    nmf_array_free(&want);
    nmf_array_free(&got);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_finish("test_vit_family");
}
