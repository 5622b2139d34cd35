/* The one shape table: every preset is a valid config with the documented sizes; the default and
 * the training presets come from it; unknown names are NOT_FOUND with the known ones listed. */
#include "nmformer/config.h"
#include "nmformer/train.h"
#include "test.h"

int main(void) {
    static const struct {
        const char *name;
        int img, patch, chans, dim, depth, heads, hidden, classes, tokens;
    } want[] = {
        {"vit-fmnist", 28, 7, 1, 64, 4, 4, 128, 10, 17},
        {"vit-fmnist-full", 28, 7, 1, 128, 6, 4, 256, 10, 17},
        {"deit-tiny", 224, 16, 3, 192, 12, 3, 768, 1000, 197},
        {"deit-small", 224, 16, 3, 384, 12, 6, 1536, 1000, 197},
        {"deit-base", 224, 16, 3, 768, 12, 12, 3072, 1000, 197},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        nmf_model_config c;
        memset(&c, 0x5a, sizeof c);
        CHECK_OK(nmf_model_shape_config(want[i].name, &c));
        CHECK_OK(nmf_model_config_validate(&c));
        CHECK(!strcmp(c.arch, "vit") && c.img_size == want[i].img && c.patch == want[i].patch &&
              c.in_chans == want[i].chans && c.dim == want[i].dim && c.depth == want[i].depth &&
              c.heads == want[i].heads && nmf_vit_hidden(&c) == want[i].hidden &&
              c.num_classes == want[i].classes && nmf_vit_tokens(&c) == want[i].tokens);
        if (c.in_chans == 3) CHECK(c.mean == 0.45f && c.std == 0.226f); /* one ImageNet average */
        else CHECK(c.mean == 0.2860f && c.std == 0.3530f);
    }
    nmf_model_config d, e;
    nmf_model_config_default(&d);
    CHECK_OK(nmf_model_shape_config("vit-fmnist", &e));
    CHECK(!memcmp(&d, &e, sizeof d));
    /* the training presets take their model from the table */
    nmf_train_options o;
    CHECK_OK(nmf_train_options_preset(&o, "demo"));
    CHECK(!memcmp(&o.model, &e, sizeof e));
    CHECK_OK(nmf_train_options_preset(&o, "full"));
    CHECK_OK(nmf_model_shape_config("vit-fmnist-full", &e));
    CHECK(!memcmp(&o.model, &e, sizeof e));
    CHECK_STATUS(nmf_model_shape_config("deit-huge", &e), NMF_ERR_NOT_FOUND);
    CHECK(strstr(nmf_last_error(), "deit-huge") && strstr(nmf_last_error(), "deit-base") &&
          strstr(nmf_last_error(), "vit-fmnist"));
    CHECK_STATUS(nmf_model_shape_config(NULL, &e), NMF_ERR_NOT_FOUND);
    return test_finish("shapes");
}
