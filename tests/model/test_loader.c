/* The one loader with explicit config overrides: they complete a file without config metadata,
 * must agree with a file's own config (a contradiction is an error naming the key, never a silent
 * override), and the config used travels with the tensors. */
#include "nmformer/io.h"
#include "test.h"

int main(void) {
    char with[4096], without[4096];
    snprintf(with, sizeof with, "%s", test_source_path("tests/fixtures/model/vit_dense_small.safetensors"));
    snprintf(without, sizeof without, "%s",
             test_source_path("tests/fixtures/model/vit_dense_small.noconfig.safetensors"));
    nmf_model_config c, file;
    nmf_tensor_set t;
    CHECK_OK(nmf_load_model_with(with, NULL, NULL, NULL, &file, &t));
    nmf_tensors_free(&t);

    /* the file's own config: agreeing values are fine, a different one is an error naming it */
    nmf_config_overrides o = {0};
    o.dim = file.dim, o.heads = file.heads, o.mlp_ratio = file.mlp_ratio;
    CHECK_OK(nmf_load_model_with(with, NULL, NULL, &o, &c, &t));
    CHECK(!memcmp(&c, &file, sizeof c));
    nmf_tensors_free(&t);
    o.dim = file.dim * 2;
    CHECK_STATUS(nmf_load_model_with(with, NULL, NULL, &o, &c, &t), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "dim") && strstr(nmf_last_error(), "contradicts") &&
          strstr(nmf_last_error(), "vit_dense_small.safetensors"));
    CHECK(t.count == 0);
    memset(&o, 0, sizeof o);
    o.mlp_ratio = file.mlp_ratio + 1.0f;
    CHECK_STATUS(nmf_load_model_with(with, NULL, NULL, &o, &c, &t), NMF_ERR_INVALID_ARG);
    CHECK(strstr(nmf_last_error(), "mlp_ratio") != NULL);

    /* no metadata: nothing given is an error; the overrides complete the defaults */
    CHECK_STATUS(nmf_load_model_with(without, NULL, NULL, NULL, &c, &t), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "nmformer.config") != NULL);
    nmf_config_overrides full = {file.img_size, file.patch, file.in_chans, file.dim, file.depth,
                                 file.heads, file.num_classes, file.mlp_ratio};
    CHECK_OK(nmf_load_model_with(without, NULL, NULL, &full, &c, &t));
    CHECK(c.dim == file.dim && c.depth == file.depth && c.num_classes == file.num_classes);
    /* ... and the config used is now the tensors' metadata */
    nmf_model_config meta;
    nmf_model_config_default(&meta);
    CHECK(nmf_tensors_get_meta(&t, NMF_CONFIG_META_KEY) != NULL);
    CHECK_OK(nmf_model_config_from_json(nmf_tensors_get_meta(&t, NMF_CONFIG_META_KEY), &meta));
    CHECK(!memcmp(&meta, &c, sizeof c));
    nmf_tensors_free(&t);
    /* overrides that do not fit the tensors fail on the tensor, naming it */
    full.num_classes = file.num_classes + 1;
    CHECK_STATUS(nmf_load_model_with(without, NULL, NULL, &full, &c, &t), NMF_ERR_SHAPE);
    CHECK(strstr(nmf_last_error(), "head") != NULL);
    /* a fallback config is what the overrides complete */
    full.num_classes = file.num_classes;
    nmf_config_overrides just_classes = {0};
    just_classes.num_classes = file.num_classes;
    nmf_model_config fb = file;
    fb.num_classes = 1;
    CHECK_OK(nmf_load_model_with(without, NULL, &fb, &just_classes, &c, &t));
    CHECK(!memcmp(&c, &file, sizeof c));
    nmf_tensors_free(&t);
    return test_finish("loader");
}
