/* N:M and the Hugging Face round trip for the token families, on every fixture of
 * tests/fixtures/hf:
 *  - pruning to 2:4, 2:8 and 1:4 makes every N:M-eligible weight N:M along its input dimension
 *    (checked here in storage coordinates: GPT-2's [in, out] weights per output column over M
 *    consecutive rows), keeps the magnitude top-N, and changes nothing else; an input dimension
 *    that is not a multiple of M is refused naming the tensor;
 *  - the fixtures' own N:M variants (pruned by tests/ref's nm_prune_) equal what nmf_model_prune
 *    makes of their dense twin, bit for bit;
 *  - families (.nmf) of every family round-trip, version 2 only for GPT-2;
 *  - HF folder -> nmf_hf_folder_write -> HF folder gives the same tensors (names, shapes, values,
 *    stored dtype) and a config.json that parses to the same config;
 *  - hostile inputs: tensors that disagree with the config, an output that is a file, a symlink,
 *    a non-empty or foreign folder, an unwritable parent: one clear error, nothing half-written. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sys/stat.h>

#include "io/io_internal.h"
#include "io_test_util.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"

static const char *const fixtures[] = {
    "bert_cls_pad",      "bert_cls_pad_2to8",    "bert_long_f16", "gpt2_lm",
    "gpt2_lm_2to4",      "gpt2_long_bf16",       "gpt2_model_t1", "llama_gqa6x2",
    "llama_gqa6x2_2to8", "llama_gqa6x2_sharded", "llama_gqa4x1_tied_bf16", "llama_mha5_t1_f16",
};
enum { NFIX = sizeof fixtures / sizeof fixtures[0] };
static const nmf_pattern patterns[] = {{2, 4}, {2, 8}, {1, 4}};
enum { NPAT = sizeof patterns / sizeof patterns[0] };

static const char *fixture(const char *name) {
    static char buf[4][4200];
    static int next;
    char *b = buf[next++ & 3];
    snprintf(b, sizeof buf[0], "%.4095s/%.64s", test_source_path("tests/fixtures/hf"), name);
    return b;
}

/* ---- scratch folders (rm -r of what the test made under tmp_dir()) ---- */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)ftw;
    if (flag == FTW_DP) rmdir(path);
    else unlink(path);
    return 0;
}
static void rm_tree(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* Entries of tmp_dir() named "*.tmp": temporary files or folders left behind. */
static int leftovers(void) {
    DIR *d = opendir(tmp_dir());
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        n += len > 4 && !strcmp(e->d_name + len - 4, ".tmp");
    }
    if (d) closedir(d);
    return n;
}

static float *dense_of(const nmf_tensor *t) {
    float *v = malloc(t->numel * sizeof *v);
    if (!v || nmf_tensor_dense(t, v) != NMF_OK) {
        fprintf(stderr, "dense_of(%s) failed\n", t->name);
        exit(1);
    }
    return v;
}

/* ---- pruning ------------------------------------------------------------------------------- */

/* got = src pruned to p: for every N:M-eligible row, per output o and group g of M consecutive
 * inputs, at most N non-zeros, each equal to the source value, the kept ones beating the dropped
 * ones (|w| larger, or equal and lower index); every other tensor bit-identical. Indexing is in
 * storage order from the table's in_axis, independent of the library's (out, in) view. */
static int check_pruned(const nmf_model_desc *d, const nmf_tensor_set *src, const nmf_tensor_set *got,
                        nmf_pattern p, const char *what) {
    int ok = got->count == src->count;
    for (size_t r = 0; r < d->count && ok; r++) {
        const nmf_param *row = &d->params[r];
        const nmf_param_kind *k = nmf_param_kind_of(d, row);
        const nmf_tensor *a = nmf_tensors_find(src, row->name), *b = nmf_tensors_find(got, row->name);
        if (!a || !b || a->ndim != b->ndim || a->numel != b->numel ||
            memcmp(a->shape, b->shape, sizeof a->shape)) {
            CHECK_MSG(0, "%s: tensor %s missing or reshaped", what, row->name);
            return 0;
        }
        float *va = dense_of(a), *vb = dense_of(b);
        if (!k->nm) {
            CHECK_MSG(ok = !b->nm && !memcmp(va, vb, a->numel * sizeof *va), "%s: %s changed", what, row->name);
        } else {
            ok = b->nm && b->nm->pattern.n == p.n && b->nm->pattern.m == p.m &&
                 b->nm_transposed == (k->in_axis == 0);
            CHECK_MSG(ok, "%s: %s is not held %d:%d along axis %d", what, row->name, p.n, p.m, k->in_axis);
            size_t in = (size_t)a->shape[k->in_axis], out = (size_t)a->shape[1 - k->in_axis];
            for (size_t o = 0; o < out && ok; o++)
                for (size_t g = 0; g < in / (size_t)p.m && ok; g++) {
                    size_t idx[NMF_NM_MAX_M];
                    int kept = 0, nonzero = 0;
                    for (int j = 0; j < p.m; j++) {
                        size_t i = g * (size_t)p.m + (size_t)j;
                        idx[j] = k->in_axis == 1 ? o * in + i : i * out + o;
                        kept += vb[idx[j]] != 0.0f;
                        nonzero += va[idx[j]] != 0.0f;
                        ok &= vb[idx[j]] == 0.0f || vb[idx[j]] == va[idx[j]];
                    }
                    ok &= kept == (nonzero < p.n ? nonzero : p.n);
                    for (int x = 0; x < p.m; x++) /* x kept, y dropped: x beats y */
                        for (int y = 0; y < p.m; y++)
                            if (vb[idx[x]] != 0.0f && vb[idx[y]] == 0.0f && va[idx[y]] != 0.0f)
                                ok &= fabsf(va[idx[x]]) > fabsf(va[idx[y]]) ||
                                      (fabsf(va[idx[x]]) == fabsf(va[idx[y]]) && x < y);
                    CHECK_MSG(ok, "%s: %s output %zu group %zu is not the %d:%d magnitude top-N",
                              what, row->name, o, g, p.n, p.m);
                }
        }
        free(va);
        free(vb);
    }
    return ok;
}

/* The first N:M-eligible row whose input dimension M does not divide; NULL if none. */
static const nmf_param *ragged_row(const nmf_model_desc *d, nmf_pattern p) {
    for (size_t r = 0; r < d->count; r++)
        if (nmf_param_kind_of(d, &d->params[r])->nm && d->params[r].cols % (size_t)p.m) return &d->params[r];
    return NULL;
}

static void test_prune_every_fixture(void) {
    int pruned = 0, refused = 0;
    for (int f = 0; f < NFIX; f++) {
        nmf_model_config c;
        nmf_tensor_set s;
        nmf_model_desc d;
        CHECK_OK(nmf_load_model(fixture(fixtures[f]), NULL, NULL, &c, &s));
        CHECK_OK(nmf_model_describe(&d, &c));
        for (int k = 0; k < NPAT; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s %d:%d", fixtures[f], patterns[k].n, patterns[k].m);
            nmf_tensor_set out;
            const nmf_param *ragged = ragged_row(&d, patterns[k]);
            if (ragged) { /* gpt2_model_t1: width 20 at M = 8 */
                CHECK_FAILS(nmf_model_prune(&c, &s, patterns[k], &out), NMF_ERR_SHAPE, ragged->name);
                refused++;
                continue;
            }
            CHECK_OK(nmf_model_prune(&c, &s, patterns[k], &out));
            CHECK_MSG(check_pruned(&d, &s, &out, patterns[k], what), "%s", what);
            CHECK_OK(nmf_model_check_tensors(&c, &out));
            /* the stored dtype travels (a BF16 source stays BF16 when written) */
            CHECK(nmf_tensors_stored_dtype(&out) == nmf_tensors_stored_dtype(&s));
            /* packing the pruned dense form again gives the same N:M tensors */
            nmf_tensor_set again;
            CHECK_OK(nmf_tensors_copy_dense(&out, &again));
            CHECK_OK(nmf_model_pack_nm(&c, &again, patterns[k]));
            for (size_t i = 0; i < out.count; i++) {
                const nmf_tensor *x = &out.items[i], *y = nmf_tensors_find(&again, x->name);
                CHECK(y && !x->nm == !y->nm && x->nm_transposed == y->nm_transposed);
                if (x->nm && y && y->nm)
                    CHECK(!memcmp(x->nm->values, y->nm->values,
                                  x->nm->rows * x->nm->groups * (size_t)patterns[k].n * sizeof(float)) &&
                          !memcmp(x->nm->pos, y->nm->pos, x->nm->rows * x->nm->groups * (size_t)patterns[k].n));
            }
            nmf_tensors_free(&again);
            nmf_tensors_free(&out);
            pruned++;
        }
        /* a dense weight that is not N:M is refused by pack_nm, naming it */
        nmf_tensor_set copy;
        CHECK_OK(nmf_tensors_copy_dense(&s, &copy));
        if (!strcmp(fixtures[f], "gpt2_lm"))
            CHECK_FAILS(nmf_model_pack_nm(&c, &copy, (nmf_pattern){1, 4}), NMF_ERR_INVALID_ARG,
                        "transformer.h.0.attn.c_attn.weight' is not 1:4 sparse");
        nmf_tensors_free(&copy);
        nmf_model_desc_free(&d);
        nmf_tensors_free(&s);
    }
    CHECK(pruned == NFIX * NPAT - 1 && refused == 1);
    printf("pruned %d fixture x pattern pairs (1 refused: ragged input)\n", pruned);
}

/* The fixtures' N:M variants: the same weights as their dense twin, pruned by tests/ref. Equal
 * value for value; the only bits that differ are the signs of dropped negative weights:
 * tests/ref writes w * mask, which is -0.0 there, while a packed N:M tensor stores no dropped
 * values and unpacks them as +0.0 (-0.0 == +0.0, and nothing downstream can tell). */
static void test_twins(void) {
    static const struct {
        const char *pruned, *dense;
        nmf_pattern p;
    } twins[] = {{"bert_cls_pad_2to8", "bert_cls_pad", {2, 8}},
                 {"gpt2_lm_2to4", "gpt2_lm", {2, 4}},
                 {"llama_gqa6x2_2to8", "llama_gqa6x2", {2, 8}}};
    for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++) {
        nmf_model_config c, c2;
        nmf_tensor_set dense, want, got;
        CHECK_OK(nmf_load_model(fixture(twins[i].dense), NULL, NULL, &c, &dense));
        CHECK_OK(nmf_load_model(fixture(twins[i].pruned), NULL, NULL, &c2, &want));
        CHECK_OK(nmf_model_prune(&c, &dense, twins[i].p, &got));
        CHECK(got.count == want.count);
        size_t differ = 0, linears = 0, signed_zeros = 0, dropped = 0;
        for (size_t k = 0; k < want.count; k++) {
            const nmf_tensor *w = &want.items[k], *g = nmf_tensors_find(&got, w->name);
            if (!g || g->numel != w->numel) {
                differ++;
                continue;
            }
            float *vw = dense_of(w), *vg = dense_of(g);
            int same = 1;
            for (size_t j = 0; j < w->numel; j++) {
                same &= vw[j] == vg[j];
                if (vw[j] == 0.0f && memcmp(&vw[j], &vg[j], sizeof *vw)) /* -0.0 vs +0.0 */
                    signed_zeros++, same &= signbit(vw[j]) && !signbit(vg[j]);
                else
                    same &= !memcmp(&vw[j], &vg[j], sizeof *vw);
                dropped += g->nm && vg[j] == 0.0f;
            }
            differ += !same;
            linears += g->nm != NULL;
            free(vw);
            free(vg);
        }
        CHECK_MSG(differ == 0 && linears > 0, "%s: %zu tensors differ from pruning %s", twins[i].pruned,
                  differ, twins[i].dense);
        CHECK(signed_zeros > 0 && signed_zeros < dropped); /* about half the dropped were negative */
        printf("%s = prune(%s): equal; %zu of %zu dropped weights are -0.0 in the fixture\n",
               twins[i].pruned, twins[i].dense, signed_zeros, dropped);
        nmf_tensors_free(&dense);
        nmf_tensors_free(&want);
        nmf_tensors_free(&got);
    }
}

/* ---- families ----------------------------------------------------------------------------- */

static void test_family_files(void) {
    for (int f = 0; f < NFIX; f++) {
        nmf_model_config c;
        nmf_tensor_set s;
        CHECK_OK(nmf_load_model(fixture(fixtures[f]), NULL, NULL, &c, &s));
        nmf_family fam;
        nmf_family_init(&fam);
        fam.config = c;
        nmf_tensor_set copy, pruned[2];
        const nmf_pattern ps[2] = {{2, 4}, {1, 4}}; /* every fixture's widths are multiples of 4 */
        CHECK_OK(nmf_tensors_copy_dense(&s, &copy));
        CHECK_OK(nmf_family_add(&fam, "dense", &copy));
        for (int k = 0; k < 2; k++) {
            CHECK_OK(nmf_model_prune(&c, &s, ps[k], &pruned[k])); /* kept for the comparison */
            nmf_tensor_set moved;
            CHECK_OK(nmf_model_prune(&c, &s, ps[k], &moved));
            CHECK_OK(nmf_family_add(&fam, k ? "1:4" : "2:4", &moved));
        }
        const char *path = tmp_path("family.nmf");
        nmf_write_options opt = {nmf_tensors_stored_dtype(&s)}; /* F16/BF16 values stay exact */
        CHECK_OK(nmf_family_write(path, &fam, &opt));
        size_t size;
        uint8_t *raw = read_bytes(path, &size);
        CHECK_MSG(raw[8] == (c.hf.model_type == NMF_HF_GPT2 ? 2 : 1), "%s: version %u", fixtures[f], raw[8]);
        free(raw);
        for (int k = 0; k < 3; k++) {
            const char *name = k == 0 ? "dense" : k == 1 ? "2:4" : "1:4";
            const nmf_tensor_set *want = k == 0 ? &s : &pruned[k - 1];
            nmf_model_config back;
            nmf_tensor_set got;
            CHECK_OK(nmf_load_model(path, name, NULL, &back, &got));
            char *a = nmf_model_config_to_json(&c), *b = nmf_model_config_to_json(&back);
            CHECK(a && b && !strcmp(a, b));
            free(a);
            free(b);
            CHECK(got.count == want->count);
            for (size_t i = 0; i < want->count; i++) {
                const nmf_tensor *w = &want->items[i], *g = nmf_tensors_find(&got, w->name);
                CHECK_MSG(g && !g->nm == !w->nm && g->nm_transposed == w->nm_transposed &&
                              g->stored_dtype == opt.value_dtype && g->numel == w->numel,
                          "%s %s %s", fixtures[f], name, w->name);
                if (!g || g->numel != w->numel) continue;
                float *vw = dense_of(w), *vg = dense_of(g);
                CHECK_MSG(!memcmp(vw, vg, w->numel * sizeof *vw), "%s %s %s values", fixtures[f], name, w->name);
                free(vw);
                free(vg);
            }
            nmf_tensors_free(&got);
        }
        nmf_tensors_free(&pruned[0]);
        nmf_tensors_free(&pruned[1]);
        nmf_family_free(&fam);
        nmf_tensors_free(&s);
    }
}

/* ---- HF folders --------------------------------------------------------------------------- */

/* Every field of config.json that nmf_hf_config_parse reads. */
static int same_hf_config(const nmf_hf_config *a, const nmf_hf_config *b) {
    return a->model_type == b->model_type && !strcmp(a->architecture, b->architecture) &&
           a->hidden_size == b->hidden_size && a->num_hidden_layers == b->num_hidden_layers &&
           a->num_attention_heads == b->num_attention_heads &&
           a->num_key_value_heads == b->num_key_value_heads && a->head_dim == b->head_dim &&
           a->intermediate_size == b->intermediate_size && a->vocab_size == b->vocab_size &&
           a->max_position_embeddings == b->max_position_embeddings &&
           a->type_vocab_size == b->type_vocab_size && a->norm_eps == b->norm_eps &&
           a->rope_theta == b->rope_theta && a->tie_word_embeddings == b->tie_word_embeddings &&
           a->hidden_act == b->hidden_act && a->attention_bias == b->attention_bias &&
           a->mlp_bias == b->mlp_bias && a->num_labels == b->num_labels;
}

/* The folder's raw tensors (names, shapes, values, stored dtypes) equal want's. */
static int same_folder_tensors(const nmf_tensor_set *want, const nmf_tensor_set *got, const char *what) {
    int ok = want->count == got->count;
    CHECK_MSG(ok, "%s: %zu tensors, want %zu", what, got->count, want->count);
    for (size_t i = 0; ok && i < want->count; i++) {
        const nmf_tensor *w = &want->items[i], *g = nmf_tensors_find(got, w->name);
        ok = g && g->ndim == w->ndim && !memcmp(g->shape, w->shape, sizeof g->shape) &&
             g->stored_dtype == w->stored_dtype && !g->nm;
        if (ok) {
            float *vw = dense_of(w), *vg = dense_of(g);
            ok = !memcmp(vw, vg, w->numel * sizeof *vw);
            free(vw);
            free(vg);
        }
        CHECK_MSG(ok, "%s: tensor %s differs (shape, dtype or values)", what, w->name);
    }
    return ok;
}

static void test_hf_round_trip(void) {
    char dir[600], nmf[600]; /* tmp_path's buffers rotate */
    snprintf(dir, sizeof dir, "%s", tmp_path("rt"));
    snprintf(nmf, sizeof nmf, "%s", tmp_path("rt.nmf"));
    for (int f = 0; f < NFIX; f++) {
        nmf_hf_config h0, h1;
        nmf_tensor_set raw0, raw1, s;
        nmf_model_config c, back;
        CHECK_OK(nmf_hf_folder_read(fixture(fixtures[f]), &h0, &raw0));
        CHECK_OK(nmf_load_model(fixture(fixtures[f]), NULL, NULL, &c, &s));
        rm_tree(dir);
        CHECK_OK(nmf_hf_folder_write(dir, &c, &s, NULL)); /* default: the source's dtype */
        CHECK(count_dir_entries(dir) == 2); /* config.json + model.safetensors, shards merged */
        CHECK_OK(nmf_hf_folder_read(dir, &h1, &raw1));
        CHECK_MSG(same_hf_config(&h0, &h1), "%s: config.json differs", fixtures[f]);
        CHECK(same_folder_tensors(&raw0, &raw1, fixtures[f]));
        const char *fmt = nmf_tensors_get_meta(&raw1, "format");
        CHECK(fmt && !strcmp(fmt, "pt")); /* transformers refuses safetensors without it */
        /* loaded back, it is the same model: head, prefix and pooler from the names */
        nmf_tensor_set s2;
        CHECK_OK(nmf_load_model(dir, NULL, NULL, &back, &s2));
        char *a = nmf_model_config_to_json(&c), *b = nmf_model_config_to_json(&back);
        CHECK_MSG(a && b && !strcmp(a, b), "%s: %s vs %s", fixtures[f], a, b);
        free(a);
        free(b);
        nmf_tensors_free(&s2);
        /* a chosen dtype: f32 values of the BF16/F16 fixtures are exact in f32 */
        rm_tree(dir);
        nmf_hf_write_options f32 = {NMF_DTYPE_F32, 0, 0};
        CHECK_OK(nmf_hf_folder_write(dir, &c, &s, &f32));
        nmf_tensors_free(&raw1);
        CHECK_OK(nmf_hf_folder_read(dir, &h1, &raw1));
        CHECK(nmf_tensors_stored_dtype(&raw1) == NMF_DTYPE_F32 && raw1.count == raw0.count);
        nmf_tensors_free(&raw1);

        /* pruned: .nmf family -> candidate -> folder holds the candidate's dense values */
        nmf_tensor_set pr, cand;
        CHECK_OK(nmf_model_prune(&c, &s, (nmf_pattern){2, 4}, &pr));
        nmf_family fam;
        nmf_family_init(&fam);
        fam.config = c;
        nmf_tensor_set moved;
        CHECK_OK(nmf_tensors_copy_dense(&pr, &moved));
        CHECK_OK(nmf_model_pack_nm(&c, &moved, (nmf_pattern){2, 4}));
        CHECK_OK(nmf_family_add(&fam, "2:4", &moved));
        nmf_write_options wo = {nmf_tensors_stored_dtype(&s)};
        CHECK_OK(nmf_family_write(nmf, &fam, &wo));
        nmf_family_free(&fam);
        CHECK_OK(nmf_load_model(nmf, "2:4", NULL, &back, &cand));
        rm_tree(dir);
        CHECK_OK(nmf_hf_folder_write(dir, &back, &cand, NULL));
        CHECK_OK(nmf_hf_folder_read(dir, &h1, &raw1));
        CHECK(same_hf_config(&h0, &h1));
        nmf_tensor_set want;
        CHECK_OK(nmf_tensors_copy_dense(&pr, &want));
        char what[96];
        snprintf(what, sizeof what, "%s 2:4 via .nmf", fixtures[f]);
        CHECK(same_folder_tensors(&want, &raw1, what));
        nmf_tensors_free(&want);
        nmf_tensors_free(&raw1);
        nmf_tensors_free(&cand);
        nmf_tensors_free(&pr);
        nmf_tensors_free(&raw0);
        nmf_tensors_free(&s);
    }
    rm_tree(dir);
    CHECK(leftovers() == 0);
}

/* ---- hostile inputs and outputs ------------------------------------------------------------- */

static void test_disagreeing_tensors(void) {
    nmf_model_config gpt2, llama;
    nmf_tensor_set g, l;
    CHECK_OK(nmf_load_model(fixture("gpt2_lm"), NULL, NULL, &gpt2, &g));
    CHECK_OK(nmf_load_model(fixture("llama_gqa6x2"), NULL, NULL, &llama, &l));
    char dir[600];
    snprintf(dir, sizeof dir, "%s", tmp_path("hostile"));
    rm_tree(dir);
    /* a family whose config says gpt2 but whose tensors are a LLaMA's */
    nmf_family fam;
    nmf_family_init(&fam);
    fam.config = gpt2;
    nmf_tensor_set copy;
    CHECK_OK(nmf_tensors_copy_dense(&l, &copy));
    CHECK_OK(nmf_family_add(&fam, "dense", &copy));
    char path[600];
    snprintf(path, sizeof path, "%s", tmp_path("liar.nmf"));
    CHECK_OK(nmf_family_write(path, &fam, NULL)); /* the container does not judge */
    nmf_family_free(&fam);
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_FAILS(nmf_load_model(path, NULL, NULL, &c, &s), NMF_ERR_NOT_FOUND, "transformer.wte.weight' missing");
    CHECK_FAILS(nmf_hf_folder_write(dir, &gpt2, &l, NULL), NMF_ERR_NOT_FOUND, "transformer.wte.weight");
    CHECK(access(dir, F_OK) != 0);
    /* one tensor of the wrong shape: a Conv1D weight stored [out, in] */
    nmf_tensor_set bad;
    CHECK_OK(nmf_tensors_copy_dense(&g, &bad));
    nmf_tensor *t = nmf_tensors_find(&bad, "transformer.h.1.attn.c_attn.weight");
    int64_t swap = t->shape[0];
    t->shape[0] = t->shape[1], t->shape[1] = swap;
    CHECK_FAILS(nmf_hf_folder_write(dir, &gpt2, &bad, NULL), NMF_ERR_SHAPE, "transformer.h.1.attn.c_attn.weight");
    CHECK(access(dir, F_OK) != 0);
    nmf_tensors_free(&bad);
    /* an N:M Conv1D weight grouped along the wrong axis (what a v1 writer would have stored) */
    CHECK_OK(nmf_tensors_copy_dense(&g, &bad));
    t = nmf_tensors_find(&bad, "transformer.h.0.attn.c_proj.weight"); /* square [D, D] */
    nmf_nm_matrix m;
    CHECK_OK(nmf_nm_pack(&m, t->data, (size_t)t->shape[0], (size_t)t->shape[1], (nmf_pattern){2, 4}, 0));
    nmf_tensors_remove(&bad, "transformer.h.0.attn.c_proj.weight");
    CHECK_OK(nmf_tensors_add_nm(&bad, "transformer.h.0.attn.c_proj.weight", &m, NULL));
    CHECK_FAILS(nmf_model_check_tensors(&gpt2, &bad), NMF_ERR_FORMAT,
                "c_proj.weight' is N:M along axis 1, but its input dimension is axis 0");
    CHECK_FAILS(nmf_hf_folder_write(dir, &gpt2, &bad, NULL), NMF_ERR_FORMAT, "c_proj.weight");
    nmf_tensors_free(&bad);
    /* a ViT has no HF folder form */
    nmf_model_config vit;
    nmf_model_config_default(&vit);
    CHECK_FAILS(nmf_hf_folder_write(dir, &vit, &g, NULL), NMF_ERR_UNSUPPORTED, "'vit' model");
    CHECK(access(dir, F_OK) != 0 && leftovers() == 0);
    nmf_tensors_free(&g);
    nmf_tensors_free(&l);
}

static void test_output_targets(void) {
    nmf_model_config c;
    nmf_tensor_set s;
    CHECK_OK(nmf_load_model(fixture("gpt2_model_t1"), NULL, NULL, &c, &s));
    nmf_hf_write_options force = {NMF_DTYPE_F32, 1, 0};
    /* a file */
    const char *file = tmp_path("out_file");
    write_bytes(file, "keep", 4);
    CHECK_FAILS(nmf_hf_folder_write(file, &c, &s, NULL), NMF_ERR_IO, "not a folder");
    CHECK_FAILS(nmf_hf_folder_write(file, &c, &s, &force), NMF_ERR_IO, "not a folder");
    size_t n;
    uint8_t *b = read_bytes(file, &n);
    CHECK(n == 4 && !memcmp(b, "keep", 4));
    free(b);
    /* a path under a file, and under a missing folder */
    char under[600];
    snprintf(under, sizeof under, "%s/model", file);
    CHECK_FAILS(nmf_hf_folder_write(under, &c, &s, NULL), NMF_ERR_IO, "Not a directory");
    snprintf(under, sizeof under, "%s/missing/model", tmp_dir());
    CHECK_FAILS(nmf_hf_folder_write(under, &c, &s, NULL), NMF_ERR_IO, "temporary folder");
    /* a parent we cannot write: a read-only folder, or (root writes anywhere) /proc */
    const char *ro = tmp_path("ro"), *target;
    char inside[600];
    mkdir(ro, 0755);
    if (geteuid() != 0) {
        chmod(ro, 0555);
        snprintf(inside, sizeof inside, "%s/model", ro);
        target = inside;
    } else {
        target = "/proc/nmformer_test_model";
    }
    CHECK_FAILS(nmf_hf_folder_write(target, &c, &s, NULL), NMF_ERR_IO, "cannot create a temporary folder");
    CHECK(count_dir_entries(ro) == 0);
    chmod(ro, 0755);
    rmdir(ro);
    /* a symlink to a folder */
    const char *real = tmp_path("real"), *link = tmp_path("link");
    mkdir(real, 0755);
    symlink(real, link);
    CHECK_FAILS(nmf_hf_folder_write(link, &c, &s, &force), NMF_ERR_IO, "symbolic link");
    CHECK(count_dir_entries(real) == 0);
    unlink(link);
    /* an empty folder is filled; its mode is kept */
    chmod(real, 0750);
    CHECK_OK(nmf_hf_folder_write(real, &c, &s, NULL));
    struct stat sb;
    CHECK(stat(real, &sb) == 0 && (sb.st_mode & 0777) == 0750 && count_dir_entries(real) == 2);
    /* non-empty: refused without force; with force only a model folder */
    CHECK_FAILS(nmf_hf_folder_write(real, &c, &s, NULL), NMF_ERR_IO, "not empty");
    const char *other = tmp_path("other");
    rm_tree(other);
    mkdir(other, 0755);
    char p[700];
    snprintf(p, sizeof p, "%s/notes.txt", other);
    write_bytes(p, "mine", 4);
    CHECK_FAILS(nmf_hf_folder_write(other, &c, &s, &force), NMF_ERR_IO, "holds no config.json");
    snprintf(p, sizeof p, "%s/config.json", other);
    write_bytes(p, "{}", 2);
    snprintf(p, sizeof p, "%s/sub", other);
    mkdir(p, 0755);
    CHECK_FAILS(nmf_hf_folder_write(other, &c, &s, &force), NMF_ERR_IO, "holds 'sub'");
    CHECK(count_dir_entries(other) == 3);
    rm_tree(other);
    /* force on a model folder: replaced whole (a stale shard goes too) */
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", real);
    write_bytes(p, "stale", 5);
    nmf_tensor_set pr;
    CHECK_OK(nmf_model_prune(&c, &s, (nmf_pattern){1, 4}, &pr));
    CHECK_OK(nmf_hf_folder_write(real, &c, &pr, &force));
    CHECK(count_dir_entries(real) == 2 && access(p, F_OK) != 0);
    nmf_hf_config h;
    nmf_tensor_set raw, want;
    CHECK_OK(nmf_hf_folder_read(real, &h, &raw));
    CHECK_OK(nmf_tensors_copy_dense(&pr, &want));
    CHECK(same_folder_tensors(&want, &raw, "forced"));
    CHECK(stat(real, &sb) == 0 && (sb.st_mode & 0777) == 0750);
    nmf_tensors_free(&raw);
    /* the same where the filesystem cannot exchange two folders: aside, in, old deleted */
    nmf_io_dir_no_exchange = 1;
    write_bytes(p, "stale", 5);
    CHECK_OK(nmf_hf_folder_write(real, &c, &pr, &force));
    nmf_io_dir_no_exchange = 0;
    CHECK(count_dir_entries(real) == 2 && access(p, F_OK) != 0 && leftovers() == 0);
    CHECK_OK(nmf_hf_folder_read(real, &h, &raw));
    CHECK(same_folder_tensors(&want, &raw, "forced, no exchange"));
    nmf_tensors_free(&raw);
    nmf_tensors_free(&want);
    nmf_tensors_free(&pr);
    rm_tree(real);
    CHECK(leftovers() == 0);
    nmf_tensors_free(&s);
}

int main(void) {
    test_prune_every_fixture();
    test_twins();
    test_family_files();
    test_hf_round_trip();
    test_disagreeing_tensors();
    test_output_targets();
    rm_tree(tmp_dir());
    return test_finish("hf_nm");
}
