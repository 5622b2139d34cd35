/* The one shape table: every preset is a valid config with the documented sizes (ViT fields, or
 * for the token families their Hugging Face config with HF's defaults); the default and the
 * training presets come from it; the listing names every row once; unknown names are NOT_FOUND
 * with the known ones listed. */
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
    static const struct {
        const char *name, *arch;
        int hidden, layers, heads, kv, inter, vocab, positions, types;
        nmf_hf_head head;
        int tied, pooler;
        nmf_hf_act act;
        float eps;
        double theta;
        const char *prefix;
    } token[] = {
        {"bert-base", "bert", 768, 12, 12, 12, 3072, 30522, 512, 2, NMF_HF_HEAD_NONE, 1, 1,
         NMF_HF_ACT_GELU, 1e-12f, 0.0, ""},
        {"gpt2", "gpt2", 768, 12, 12, 12, 3072, 50257, 1024, 0, NMF_HF_HEAD_LM, 1, 0,
         NMF_HF_ACT_GELU_TANH, 1e-5f, 0.0, "transformer."},
        {"gpt2-medium", "gpt2", 1024, 24, 16, 16, 4096, 50257, 1024, 0, NMF_HF_HEAD_LM, 1, 0,
         NMF_HF_ACT_GELU_TANH, 1e-5f, 0.0, "transformer."},
        {"llama-1.1b", "llama", 2048, 22, 32, 4, 5632, 32000, 2048, 0, NMF_HF_HEAD_LM, 0, 0,
         NMF_HF_ACT_SILU, 1e-5f, 10000.0, "model."},
        {"llama-small", "llama", 768, 12, 12, 4, 2048, 32000, 2048, 0, NMF_HF_HEAD_LM, 0, 0,
         NMF_HF_ACT_SILU, 1e-5f, 10000.0, "model."},
    };
    for (size_t i = 0; i < sizeof token / sizeof token[0]; i++) {
        nmf_model_config c;
        memset(&c, 0x5a, sizeof c);
        CHECK_OK(nmf_model_shape_config(token[i].name, &c));
        CHECK_OK(nmf_model_config_validate(&c));
        const nmf_hf_config *h = &c.hf;
        CHECK_MSG(nmf_model_is_token(&c) && !strcmp(c.arch, token[i].arch) && c.dim == 0 &&
                      h->hidden_size == token[i].hidden && h->num_hidden_layers == token[i].layers &&
                      nmf_model_layers(&c) == token[i].layers &&
                      h->num_attention_heads == token[i].heads &&
                      h->num_key_value_heads == token[i].kv && h->head_dim == 64 &&
                      h->intermediate_size == token[i].inter && h->vocab_size == token[i].vocab &&
                      h->max_position_embeddings == token[i].positions &&
                      h->type_vocab_size == token[i].types && h->head == token[i].head &&
                      h->tie_word_embeddings == token[i].tied && h->pooler == token[i].pooler &&
                      h->hidden_act == token[i].act && h->norm_eps == token[i].eps &&
                      h->rope_theta == token[i].theta && !strcmp(h->prefix, token[i].prefix),
                  "%s", token[i].name);
    }
    /* the listing: every row once, ViTs and token families, then NULL */
    size_t listed = 0, vits = 0;
    for (const char *n; (n = nmf_model_shape_name(listed)) != NULL; listed++) {
        nmf_model_config c;
        CHECK_OK(nmf_model_shape_config(n, &c));
        vits += !nmf_model_is_token(&c);
        for (size_t j = 0; j < listed; j++) CHECK(strcmp(n, nmf_model_shape_name(j)));
    }
    CHECK(listed == sizeof want / sizeof want[0] + sizeof token / sizeof token[0]);
    CHECK(vits == sizeof want / sizeof want[0]);
    CHECK(!strcmp(nmf_model_shape_name(0), "vit-fmnist") && nmf_model_shape_name(listed + 5) == NULL);
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
          strstr(nmf_last_error(), "vit-fmnist") && strstr(nmf_last_error(), "llama-small"));
    CHECK_STATUS(nmf_model_shape_config(NULL, &e), NMF_ERR_NOT_FOUND);
    return test_finish("shapes");
}
