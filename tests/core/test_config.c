/* Model config: JSON round trip, validation, tensor specs and checks. */
#include "nmformer/config.h"
#include "nmformer/desc.h"
#include "test.h"

int main(void) {
    nmf_model_config c, d;
    nmf_model_config_default(&c);
    CHECK_OK(nmf_model_config_validate(&c));
    CHECK(nmf_vit_tokens(&c) == 17 && nmf_vit_hidden(&c) == 128);
    char *json = nmf_model_config_to_json(&c);
    CHECK(json != NULL);
    memset(&d, 0, sizeof d);
    CHECK_OK(nmf_model_config_from_json(json, &d));
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    free(json);
    /* partial JSON keeps what was there */
    CHECK_OK(nmf_model_config_from_json("{\"dim\": 96, \"heads\": 3, \"unknown\": 1}", &d));
    CHECK(d.dim == 96 && d.heads == 3 && d.depth == c.depth);
    CHECK_STATUS(nmf_model_config_from_json("{\"dim\": \"x\"}", &d), NMF_ERR_FORMAT);
    CHECK_STATUS(nmf_model_config_from_json("{\"dim\": 1.5}", &d), NMF_ERR_FORMAT);
    CHECK_STATUS(nmf_model_config_from_json("[1,2]", &d), NMF_ERR_FORMAT);
    CHECK_STATUS(nmf_model_config_from_json("{\"dim\": ", &d), NMF_ERR_FORMAT);
    CHECK_STATUS(nmf_model_config_from_json("{\"dim\": 8} junk", &d), NMF_ERR_FORMAT);
    CHECK(d.dim == 96); /* failed parses change nothing */
    nmf_model_config bad = c;
    bad.heads = 5;
    CHECK_STATUS(nmf_model_config_validate(&bad), NMF_ERR_INVALID_ARG);
    bad = c, bad.patch = 5;
    CHECK_STATUS(nmf_model_config_validate(&bad), NMF_ERR_INVALID_ARG);
    bad = c, bad.mlp_ratio = 2.01f;
    CHECK_STATUS(nmf_model_config_validate(&bad), NMF_ERR_INVALID_ARG);
    bad = c, bad.std = 0;
    CHECK_STATUS(nmf_model_config_validate(&bad), NMF_ERR_INVALID_ARG);

    nmf_model_desc desc;
    CHECK_OK(nmf_model_describe(&desc, &c));
    const nmf_param *specs = desc.params;
    const size_t count = desc.count;
    CHECK(count == 8 + 12 * (size_t)c.depth);
    CHECK(!strcmp(specs[0].name, "cls_token"));
    CHECK(!strcmp(specs[6].name, "blocks.0.attn.qkv.weight") && nmf_param_kind_of(&desc, &specs[6])->nm &&
          specs[6].shape[0] == 192 && specs[6].shape[1] == 64);
    CHECK(!strcmp(specs[count - 2].name, "head.weight") && !nmf_param_kind_of(&desc, &specs[count - 2])->nm);

    nmf_tensor_set s;
    nmf_tensors_init(&s);
    for (size_t i = 0; i < count; i++)
        CHECK_OK(nmf_tensors_add_dense(&s, specs[i].name, specs[i].ndim, specs[i].shape, NULL, NULL));
    CHECK_OK(nmf_model_check_tensors(&c, &s));
    nmf_tensors_find(&s, "pos_embed")->shape[1] = 50;
    CHECK_STATUS(nmf_model_check_tensors(&c, &s), NMF_ERR_SHAPE);
    CHECK(strstr(nmf_last_error(), "pos_embed") != NULL);
    nmf_tensors_find(&s, "pos_embed")->shape[1] = 17;
    CHECK_OK(nmf_tensors_add_dense(&s, "extra.weight", 1, specs[0].shape, NULL, NULL));
    CHECK_STATUS(nmf_model_check_tensors(&c, &s), NMF_ERR_FORMAT);
    CHECK(strstr(nmf_last_error(), "extra.weight") != NULL);
    nmf_tensors_free(&s);
    nmf_tensors_init(&s);
    for (size_t i = 1; i < count; i++)
        CHECK_OK(nmf_tensors_add_dense(&s, specs[i].name, specs[i].ndim, specs[i].shape, NULL, NULL));
    CHECK_STATUS(nmf_model_check_tensors(&c, &s), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "cls_token") != NULL);
    nmf_tensors_free(&s);
    nmf_model_desc_free(&desc);
    return test_finish("core_config");
}
