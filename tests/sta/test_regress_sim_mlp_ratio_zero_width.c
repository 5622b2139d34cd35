/* Regression (issue 15): `nmformer sim` died with SIGFPE on a ViT whose config says
 * "mlp_ratio": 1e-9. dim * mlp_ratio rounds to an MLP width of 0, the config was accepted, the
 * safetensors reader takes 0-element tensors, and the simulator divided by the width. Now the
 * config is refused with one clear line, by the library and by every command. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nmformer/config.h"
#include "nmformer/desc.h"
#include "nmformer/io.h"
#include "test.h"

/* A dim-8 ViT whose MLP tensors have width 0, with the config that implies it. */
static void write_zero_width_model(const char *path) {
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.img_size = 4;
    c.patch = 2;
    c.dim = 8;
    c.depth = 1;
    c.heads = 1;
    c.mlp_ratio = 1.0f; /* specs for a valid twin; the MLP dims are zeroed below */
    c.num_classes = 3;
    nmf_model_desc d;
    CHECK_OK(nmf_model_describe(&d, &c));
    nmf_tensor_set set;
    nmf_tensors_init(&set);
    for (size_t i = 0; i < d.count; i++) {
        nmf_param p = d.params[i];
        if (strstr(p.name, "mlp.fc1")) p.shape[0] = 0;     /* [H, D], [H] */
        if (strstr(p.name, "mlp.fc2.weight")) p.shape[1] = 0; /* [D, H] */
        CHECK_OK(nmf_tensors_add_dense(&set, p.name, p.ndim, p.shape, NULL, NULL));
    }
    nmf_model_desc_free(&d);
    c.mlp_ratio = 1e-9f;
    char *json = nmf_model_config_to_json(&c);
    CHECK(json != NULL);
    CHECK_OK(nmf_tensors_set_meta(&set, NMF_CONFIG_META_KEY, json));
    free(json);
    CHECK_OK(nmf_safetensors_write(path, &set, NMF_DTYPE_F32));
    nmf_tensors_free(&set);
}

int main(void) {
    /* the library: validation refuses the zero width and says why */
    nmf_model_config c;
    nmf_model_config_default(&c);
    c.mlp_ratio = 1e-9f;
    CHECK_STATUS(nmf_model_config_validate(&c), NMF_ERR_INVALID_ARG);
    CHECK_MSG(strstr(nmf_last_error(), "MLP width of 0") != NULL, "%s", nmf_last_error());
    c.mlp_ratio = 1.0f / 64.0f; /* dim 64: width 1, the smallest valid one */
    CHECK_OK(nmf_model_config_validate(&c));
    CHECK_STATUS(nmf_model_config_from_json("{\"mlp_ratio\": 1e-9}", &c), NMF_OK);
    CHECK_STATUS(nmf_model_config_validate(&c), NMF_ERR_INVALID_ARG);

    /* every command that reads the file: exit 1 with one line, never a signal */
    const char *cli = getenv("NMF_CLI");
    if (!cli) {
        fprintf(stderr, "NMF_CLI not set\n");
        return 1;
    }
    char dir[] = "/tmp/nmf_regress_mlp_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char model[256], err[256], cmd[2048];
    snprintf(model, sizeof model, "%s/m.safetensors", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    write_zero_width_model(model);
    const char *cmds[] = {"sim", "convert"};
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        snprintf(cmd, sizeof cmd, "'%s' %s '%s'%s%s%s >/dev/null 2>'%s'", cli, cmds[k], model,
                 k ? " '" : "", k ? dir : "", k ? "/out.nmf'" : "", err);
        int status = system(cmd);
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s: status %d", cmds[k], status);
        FILE *f = fopen(err, "r");
        char line[1024] = "", extra[8];
        if (f) {
            if (!fgets(line, sizeof line, f)) line[0] = 0;
            CHECK_MSG(!fgets(extra, sizeof extra, f), "%s: more than one stderr line", cmds[k]);
            fclose(f);
        }
        CHECK_MSG(strstr(line, "MLP width of 0") != NULL, "%s: stderr '%s'", cmds[k], line);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_finish("regress_sim_mlp_ratio_zero_width");
}
