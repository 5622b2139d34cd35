/* nmf_file_kind_detect (a model path's kind from its first bytes, never its name) and
 * nmf_env_check (every NMF_* variable the library reads, each by its own reader). */
#include <stdlib.h>

#include "io/io_test_util.h"
#include "test.h"

static nmf_file_kind kind_of(const char *path, nmf_status want) {
    nmf_file_kind k = NMF_FILE_NMF;
    CHECK_MSG(nmf_file_kind_detect(path, &k) == want, "%s: %s", path, nmf_last_error());
    return k;
}

static void file_kinds(void) {
    size_t n;
    uint8_t *st = read_bytes(test_source_path("tests/fixtures/vit_tiny.safetensors"), &n);
    /* the same bytes under every name are safetensors */
    for (const char *const *name = (const char *const[]){"a.safetensors", "a.nmf", "a.bin", "a", NULL};
         *name; name++) {
        write_bytes(tmp_path(*name), st, n);
        CHECK_MSG(kind_of(tmp_path(*name), NMF_OK) == NMF_FILE_SAFETENSORS, "%s", *name);
    }
    /* the .nmf magic (a real family: written by the library) under a safetensors name */
    nmf_tensor_set set;
    CHECK_OK(nmf_safetensors_read(tmp_path("a.bin"), &set));
    nmf_family fam;
    nmf_family_init(&fam);
    CHECK_OK(nmf_model_config_from_json(nmf_tensors_get_meta(&set, NMF_CONFIG_META_KEY), &fam.config));
    CHECK_OK(nmf_family_add(&fam, "dense", &set));
    nmf_write_options opt = {NMF_DTYPE_F32};
    CHECK_OK(nmf_family_write(tmp_path("fam.safetensors"), &fam, &opt));
    nmf_family_free(&fam);
    CHECK(kind_of(tmp_path("fam.safetensors"), NMF_OK) == NMF_FILE_NMF);
    /* and the loader follows the contents: the family named .safetensors loads as a family */
    nmf_model_config cfg;
    CHECK_OK(nmf_load_model(tmp_path("fam.safetensors"), "dense", NULL, &cfg, &set));
    nmf_tensors_free(&set);
    CHECK_OK(nmf_load_model(tmp_path("a.nmf"), NULL, NULL, &cfg, &set));
    nmf_tensors_free(&set);
    /* a folder is a Hugging Face model folder (its files are the folder reader's to check) */
    CHECK(kind_of(tmp_dir(), NMF_OK) == NMF_FILE_HF_FOLDER);
    /* wrong contents under a right name: FORMAT; 8 bytes of length then no '{'; short files */
    write_bytes(tmp_path("text.nmf"), "hello, world\n", 13);
    CHECK(kind_of(tmp_path("text.nmf"), NMF_ERR_FORMAT) == NMF_FILE_UNKNOWN);
    CHECK(strstr(nmf_last_error(), "text.nmf") && strstr(nmf_last_error(), "not a model file"));
    uint8_t head[9] = {2, 0, 0, 0, 0, 0, 0, 0, '['};
    write_bytes(tmp_path("bracket.safetensors"), head, sizeof head);
    kind_of(tmp_path("bracket.safetensors"), NMF_ERR_FORMAT);
    head[8] = '{';
    write_bytes(tmp_path("brace.safetensors"), head, sizeof head); /* the reader judges the rest */
    CHECK(kind_of(tmp_path("brace.safetensors"), NMF_OK) == NMF_FILE_SAFETENSORS);
    write_bytes(tmp_path("short.safetensors"), head, 8);
    kind_of(tmp_path("short.safetensors"), NMF_ERR_FORMAT);
    write_bytes(tmp_path("empty.nmf"), head, 0);
    kind_of(tmp_path("empty.nmf"), NMF_ERR_FORMAT);
    write_bytes(tmp_path("magic_only.nmf"), "\x89NMF\r\n\x1a\n", 8); /* the reader says truncated */
    CHECK(kind_of(tmp_path("magic_only.nmf"), NMF_OK) == NMF_FILE_NMF);
    kind_of(tmp_path("missing.nmf"), NMF_ERR_IO);
    CHECK(strstr(nmf_last_error(), "missing.nmf") != NULL);
    CHECK_STATUS(nmf_load_model(tmp_path("text.nmf"), NULL, NULL, &cfg, &set), NMF_ERR_FORMAT);
    CHECK_STATUS(nmf_file_kind_detect(NULL, &(nmf_file_kind){0}), NMF_ERR_INVALID_ARG);
    CHECK(!strcmp(nmf_file_kind_name(NMF_FILE_NMF), "nmf"));
    CHECK(!strcmp(nmf_file_kind_name(NMF_FILE_SAFETENSORS), "safetensors"));
    free(st);
}

/* each variable: good values pass, malformed ones fail naming the variable */
static void env(void) {
    static const struct {
        const char *name, *good[3], *bad[3];
    } vars[] = {
        {"NMF_THREADS", {"1", "16", ""}, {"abc", "0", "4x"}},
        {"NMF_ISA", {"scalar", "avx2", "avx512"}, {"foo", "AVX2", "sse"}},
        {"NMF_GEMM", {"openblas", "onednn", ""}, {"bar", "blas", " openblas"}},
        {"NMF_SPMM", {"panel", "tv", ""}, {"wide", "auto", "TV"}},
        {"NMF_DATA_DIR", {"/", ".", ""}, {"/nonexistent/nmf", "/etc/passwd", "/dev/null"}},
    };
    for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
        for (int i = 0; i < 3; i++) {
            setenv(vars[v].name, vars[v].good[i], 1);
            CHECK_MSG(nmf_env_check() == NMF_OK, "%s='%s': %s", vars[v].name, vars[v].good[i],
                      nmf_last_error());
            setenv(vars[v].name, vars[v].bad[i], 1);
            CHECK_MSG(nmf_env_check() == NMF_ERR_INVALID_ARG && strstr(nmf_last_error(), vars[v].name),
                      "%s='%s' accepted (%s)", vars[v].name, vars[v].bad[i], nmf_last_error());
        }
        unsetenv(vars[v].name);
    }
    CHECK_OK(nmf_env_check());
    /* the library itself falls back on a malformed value: NMF_THREADS=abc means all cores */
    setenv("NMF_THREADS", "abc", 1);
    CHECK(nmf_get_threads() >= 1);
    unsetenv("NMF_THREADS");
}

int main(void) {
    file_kinds();
    env();
    rm_tmp_dir();
    return test_finish("file_kind");
}
