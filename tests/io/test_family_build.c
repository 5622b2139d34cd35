/* Families built from one model (nmf_family_prune, nmf_family_from_model, nmf_family_select,
 * nmf_family_stored_dtype) and the info document (nmf_file_info_json): what the CLI's prune,
 * convert and info and the Python package all build on. */
#include <cjson/cJSON.h>
#include <string.h>

#include "io_test_util.h"
#include "nmformer/io.h"
#include "nmformer/model.h"

static const nmf_pattern P48 = {4, 8}, P28 = {2, 8};

/* Every tensor of a and b holds the same dense values. */
static int same_values(const nmf_tensor_set *a, const nmf_tensor_set *b) {
    if (a->count != b->count) return 0;
    int same = 1;
    for (size_t i = 0; same && i < a->count; i++) {
        const nmf_tensor *x = &a->items[i], *y = nmf_tensors_find(b, x->name);
        if (!y || y->numel != x->numel) return 0;
        float *u = malloc(x->numel * sizeof *u), *v = malloc(y->numel * sizeof *v);
        same = u && v && !nmf_tensor_dense(x, u) && !nmf_tensor_dense(y, v) &&
               !memcmp(u, v, x->numel * sizeof *u);
        free(u);
        free(v);
    }
    return same;
}

static size_t packed_count(const nmf_tensor_set *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++) n += s->items[i].nm != NULL;
    return n;
}

static void test_prune(const nmf_model_config *cfg, nmf_tensor_set *src) {
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = *cfg;
    nmf_dtype dt = NMF_DTYPE_COUNT;
    const nmf_pattern pats[2] = {P48, P28};
    CHECK_OK(nmf_family_prune(&fam, cfg, src, pats, 2, 1, &dt));
    CHECK(dt == NMF_DTYPE_F32);
    CHECK(fam.count == 3 && !strcmp(fam.models[0].name, "dense") &&
          !strcmp(fam.models[1].name, "4:8") && !strcmp(fam.models[2].name, "2:8"));
    CHECK(fam.count == 3 && same_values(&fam.models[0].tensors, src));
    CHECK(fam.count == 3 && packed_count(&fam.models[0].tensors) == 0);
    for (size_t k = 0; k < 2 && fam.count == 3; k++) { /* each candidate = nmf_model_prune */
        nmf_tensor_set want;
        CHECK_OK(nmf_model_prune(cfg, src, pats[k], &want));
        CHECK(same_values(&fam.models[k + 1].tensors, &want));
        CHECK(packed_count(&fam.models[k + 1].tensors) > 0);
        nmf_tensors_free(&want);
    }
    /* extending: a name already there, a pattern twice, another config: refused, nothing added */
    CHECK_FAILS(nmf_family_prune(&fam, cfg, src, &P28, 1, 0, NULL), NMF_ERR_INVALID_ARG,
                "already holds a model named '2:8'");
    const nmf_pattern twice[2] = {{1, 8}, {1, 8}};
    CHECK_FAILS(nmf_family_prune(&fam, cfg, src, twice, 2, 0, NULL), NMF_ERR_INVALID_ARG, "twice");
    nmf_model_config other = *cfg;
    other.num_classes += 1;
    CHECK_FAILS(nmf_family_prune(&fam, &other, src, twice, 1, 0, NULL), NMF_ERR_INVALID_ARG,
                "differs from the family's");
    CHECK(fam.count == 3);
    /* an extended family keeps its dtype; a new one takes the source's */
    for (size_t m = 0; m < fam.count; m++)
        for (size_t i = 0; i < fam.models[m].tensors.count; i++)
            fam.models[m].tensors.items[i].stored_dtype = NMF_DTYPE_BF16;
    CHECK(nmf_family_stored_dtype(&fam) == NMF_DTYPE_BF16);
    CHECK_OK(nmf_family_prune(&fam, cfg, src, &twice[0], 1, 0, &dt));
    CHECK(dt == NMF_DTYPE_BF16 && fam.count == 4 && !strcmp(fam.models[3].name, "1:8"));
    CHECK(nmf_family_stored_dtype(&fam) == NMF_DTYPE_F32); /* the new candidate is F32: mixed */
    nmf_family_free(&fam);

    nmf_family_init(&fam);
    fam.config = *cfg;
    for (size_t i = 0; i < src->count; i++) src->items[i].stored_dtype = NMF_DTYPE_F16;
    CHECK_OK(nmf_family_prune(&fam, cfg, src, &P28, 1, 0, &dt)); /* no dense */
    CHECK(dt == NMF_DTYPE_F16 && fam.count == 1 && !strcmp(fam.models[0].name, "2:8"));
    for (size_t i = 0; i < src->count; i++) src->items[i].stored_dtype = NMF_DTYPE_F32;
    nmf_family_free(&fam);
}

static void test_from_model_and_select(const nmf_model_config *cfg, const nmf_tensor_set *src) {
    nmf_tensor_set pruned, dense;
    CHECK_OK(nmf_model_prune(cfg, src, P28, &pruned));
    nmf_family fam;
    /* named by a pattern: stored packed; the tensors move in */
    nmf_tensor_set copy;
    CHECK_OK(nmf_tensors_copy_dense(&pruned, &copy));
    CHECK(packed_count(&copy) == 0);
    CHECK_OK(nmf_family_from_model(&fam, cfg, &copy, "2:8"));
    CHECK(copy.count == 0 && fam.count == 1 && !strcmp(fam.models[0].name, "2:8"));
    CHECK(fam.count == 1 && packed_count(&fam.models[0].tensors) == packed_count(&pruned));
    CHECK(fam.count == 1 && same_values(&fam.models[0].tensors, &pruned));
    nmf_family_free(&fam);
    /* the dense source is not 2:8 sparse: refused, the tensors stay with the caller */
    CHECK_OK(nmf_tensors_copy_dense(src, &dense));
    CHECK_FAILS(nmf_family_from_model(&fam, cfg, &dense, "2:8"), NMF_ERR_INVALID_ARG, "weight");
    CHECK(dense.count == src->count);
    nmf_family_free(&fam);
    /* a plain name: stored as it is; NULL: "dense" */
    CHECK_OK(nmf_family_from_model(&fam, cfg, &dense, "mine"));
    CHECK(fam.count == 1 && !strcmp(fam.models[0].name, "mine") &&
          packed_count(&fam.models[0].tensors) == 0);
    nmf_family_free(&fam);
    CHECK_OK(nmf_tensors_copy_dense(src, &dense));
    CHECK_OK(nmf_family_from_model(&fam, cfg, &dense, NULL));
    CHECK(fam.count == 1 && !strcmp(fam.models[0].name, "dense"));

    /* select: all checked; one kept; an unknown name and a broken candidate refused */
    CHECK_OK(nmf_family_add(&fam, "2:8", &pruned));
    CHECK_OK(nmf_family_select(&fam, NULL));
    CHECK(fam.count == 2);
    CHECK_FAILS(nmf_family_select(&fam, "1:8"), NMF_ERR_NOT_FOUND, "no model '1:8'");
    CHECK(fam.count == 2);
    CHECK_OK(nmf_family_select(&fam, "2:8"));
    CHECK(fam.count == 1 && !strcmp(fam.models[0].name, "2:8"));
    nmf_tensor_set broken;
    nmf_tensors_init(&broken);
    int64_t shape[1] = {3};
    float x[3] = {1, 2, 3};
    CHECK_OK(nmf_tensors_add_dense(&broken, "stray", 1, shape, x, NULL));
    CHECK_OK(nmf_family_add(&fam, "broken", &broken));
    nmf_clear_error();
    CHECK(nmf_family_select(&fam, "2:8") != NMF_OK && strstr(nmf_last_error(), "model 'broken'"));
    nmf_family_free(&fam);
    nmf_tensors_free(&pruned);
}

static const cJSON *get(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }
static double num(const cJSON *o, const char *key) { return cJSON_GetNumberValue(get(o, key)); }

static void test_info(const nmf_model_config *cfg, nmf_tensor_set *src) {
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = *cfg;
    CHECK_OK(nmf_family_prune(&fam, cfg, src, &P28, 1, 1, NULL));
    const char *path = tmp_path("fam.nmf");
    nmf_write_options opt = {NMF_DTYPE_F32};
    CHECK_OK(nmf_family_write(path, &fam, &opt));
    char *text = NULL;
    CHECK_OK(nmf_file_info_json(path, &text));
    cJSON *doc = text ? cJSON_Parse(text) : NULL;
    CHECK(doc != NULL);
    const cJSON *models = get(doc, "models"), *mo, *t;
    CHECK(cJSON_GetArraySize(models) == 2);
    CHECK(!strcmp(cJSON_GetStringValue(get(doc, "format")), "nmf"));
    CHECK(cJSON_IsObject(get(doc, "config")) && !get(doc, "model")); /* a ViT: no token object */
    double referenced = 0, shared_bytes = 0;
    size_t dense_rows = 0, nm_rows = 0;
    cJSON_ArrayForEach(mo, models) {
        double st = 0;
        cJSON_ArrayForEach(t, get(mo, "tensors")) {
            st += num(t, "stored_bytes");
            int packed = strcmp(cJSON_GetStringValue(get(t, "pattern")), "dense") != 0;
            nm_rows += packed;
            dense_rows += !packed;
            /* a packed tensor is an eligible block linear, stored smaller, with index codes */
            if (packed)
                CHECK(cJSON_IsTrue(get(t, "nm_eligible")) && num(t, "code_bits_per_group") == 5 &&
                      num(t, "stored_bytes") < num(t, "dense_f32_bytes"));
            else
                CHECK(cJSON_IsNull(get(t, "code_bits_per_group")) &&
                      num(t, "stored_bytes") == num(t, "dense_f32_bytes"));
        }
        CHECK(st == num(mo, "stored_bytes"));
        referenced += st;
    }
    CHECK(nm_rows == packed_count(&fam.models[1].tensors) && nm_rows > 0);
    CHECK(dense_rows == fam.models[0].tensors.count + fam.models[1].tensors.count - nm_rows);
    CHECK(referenced == num(doc, "referenced_bytes"));
    cJSON_ArrayForEach(t, get(doc, "shared")) { /* what pruning leaves alone: in both models */
        CHECK(cJSON_GetArraySize(get(t, "models")) == 2);
        shared_bytes += num(t, "bytes");
    }
    CHECK(cJSON_GetArraySize(get(doc, "shared")) == (int)(fam.models[0].tensors.count - nm_rows));
    CHECK(shared_bytes > 0 && shared_bytes == num(doc, "bytes_saved_by_sharing"));
    CHECK(num(doc, "payload_bytes") == referenced - shared_bytes);
    cJSON_Delete(doc);
    nmf_free(text);
    nmf_family_free(&fam);

    /* a safetensors model: one "dense" model, one payload per tensor, the file's size */
    CHECK_OK(nmf_file_info_json(test_source_path("tests/fixtures/vit_tiny.safetensors"), &text));
    doc = text ? cJSON_Parse(text) : NULL;
    CHECK(doc && cJSON_GetArraySize(get(doc, "models")) == 1 && num(doc, "payloads") == src->count &&
          num(doc, "bytes_saved_by_sharing") == 0 && num(doc, "file_bytes") > num(doc, "payload_bytes"));
    cJSON_Delete(doc);
    nmf_free(text);

    /* the kind comes from the contents (nmf_file_kind_detect): text is no model, whatever its name */
    write_bytes(tmp_path("x.txt"), "plain text, no model", 20);
    CHECK_FAILS(nmf_file_info_json(tmp_path("x.txt"), &text), NMF_ERR_FORMAT, "not a model file");
    CHECK(text == NULL);
    CHECK_REJECTS(nmf_file_info_json(tmp_path("missing.nmf"), &text));
    write_bytes(tmp_path("junk.nmf"), "not a family", 12);
    CHECK_REJECTS(nmf_file_info_json(tmp_path("junk.nmf"), &text));
    CHECK(text == NULL);
}

int main(void) {
    nmf_model_config cfg;
    nmf_tensor_set src;
    CHECK_OK(nmf_load_model(test_source_path("tests/fixtures/vit_tiny.safetensors"), NULL, NULL, &cfg, &src));
    test_prune(&cfg, &src);
    test_from_model_and_select(&cfg, &src);
    test_info(&cfg, &src);
    nmf_tensors_free(&src);
    rm_tmp_dir();
    return test_finish("family_build");
}
