/* nmformer sim: the STA accelerator simulator (docs/STA.md).
 *
 *   nmformer sim MODEL [--hw HW.ini] [--model NAME] [--tokens T] [--json] [--trace out.json]
 *                [--functional | --no-functional] [--compare]
 *   nmformer sim --shape deit-small|bert-base|gpt2|... [--pattern 2:8] [--phase decode] ...     */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/model_cli.h"
#include "core/rng.h"
#include "nmformer/data.h"
#include "nmformer/desc.h"
#include "nmformer/model.h"
#include "nmformer/sta.h"

static const char about_format[] =
    "Runs every operation of a model (ViT, BERT, GPT-2, LLaMA) through the simulated N:M sparse\n"
    "accelerator (STA) and reports cycles, time, useful MACs, MAC efficiency, DRAM stalls, DRAM\n"
    "bytes per tensor, buffer occupancy and an FPGA resource estimate (docs/STA.md).\n"
    "Named shapes (--shape, no weights): %s.\n";

typedef struct {
    const char *model_path, *name, *hw_path, *shape, *trace, *data_dir, *pytorch;
    nmf_pattern pattern;
    nmf_sta_phase phase;
    int tokens, eval_images, threads;
    int json, functional, compare;
    cli_config_flags flags;
} sim_args;

/* ---- functional mode ------------------------------------------------------------------------ */

static uint64_t model_macs(const nmf_model_config *v) {
    uint64_t T = (uint64_t)nmf_vit_tokens(v), D = (uint64_t)v->dim, H = (uint64_t)nmf_vit_hidden(v);
    return (uint64_t)v->depth * (T * (4 * D * D + 2 * D * H) + 2 * T * T * D);
}

/* Picks the images (Fashion-MNIST when the model fits it, else random), runs the library's
 * verification (nmf_sta_verify) and reports it. Adds "functional" to extra. */
static int run_functional(const sim_args *a, const nmf_sta_config *hw, const nmf_model_config *v,
                          const nmf_tensor_set *tensors, cJSON *extra, FILE *txt) {
    const size_t img = (size_t)v->in_chans * (size_t)v->img_size * (size_t)v->img_size;
    const int classes = v->num_classes;
    /* calibration: the library's one definition (shared with run/eval --sta) */
    float *calib = NULL, *x = NULL;
    size_t ncal = 0;
    int fmnist = 0;
    nmf_dataset test = {0};
    int *labels = NULL;
    int rc = 1;
    nmf_sta_verify_result r;
    nmf_status st = nmf_sta_calibration_images(&calib, &ncal, &fmnist, v, a->data_dir);
    if (st) goto done;
    if (fmnist && nmf_dataset_load(&test, a->data_dir, NMF_SPLIT_TEST)) fmnist = 0;
    if (!fmnist && v->in_chans == 1 && v->img_size == 28 && classes >= NMF_FASHION_MNIST_CLASSES)
        fprintf(stderr, "nmformer sim: Fashion-MNIST not available (%s); %s on random images, no "
                        "accuracy\n", nmf_last_error(), ncal > 16 ? "evaluating" : "calibrating");
    size_t neval = fmnist ? (a->eval_images > 0 ? (size_t)a->eval_images : test.n) : 4;
    if (fmnist && neval > test.n) neval = test.n;
    x = malloc(neval * img * sizeof(float));
    labels = malloc(neval * sizeof(int));
    if (!x || !labels) {
        st = nmf_error(NMF_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (fmnist) {
        if ((st = nmf_dataset_batch(x, labels, &test, NULL, neval, v->mean, v->std))) goto done;
    } else {
        /* the random calibration images' stream continued (16 of them, seed 0x1234567) */
        uint64_t s = 0x1234567ULL;
        for (size_t i = 0; i < 16 * img; i++) (void)nmf_rng_normal(&s);
        for (size_t i = 0; i < neval * img; i++) x[i] = (float)nmf_rng_normal(&s);
    }
    /* f32 reference: the model module's forward (include/nmformer/model.h) */
    const char *f32_source = "nmf_vit_forward (model.h)";
    if ((st = nmf_sta_verify(&r, hw, v, tensors, calib, ncal, x, fmnist ? labels : NULL, neval)))
        goto done;
    const size_t mismatched = r.mismatched, correct_f32 = r.correct_f32, correct_fx = r.correct_fixed;
    const size_t agree = r.top1_agree;
    const double max_logit_err = r.max_abs_logit_error;
    cJSON *f = cJSON_AddObjectToObject(extra, "functional");
    cJSON_AddNumberToObject(f, "data_bits", hw->data_bits);
    cJSON_AddNumberToObject(f, "acc_bits", hw->acc_bits);
    cJSON_AddStringToObject(f, "weight_scale", nmf_sta_scale_name(hw->weight_scale));
    cJSON_AddStringToObject(f, "inputs", fmnist ? "fashion-mnist test split" : "random N(0,1) images");
    cJSON_AddNumberToObject(f, "images", (double)neval);
    cJSON_AddNumberToObject(f, "calibration_images", (double)ncal);
    cJSON_AddNumberToObject(f, "logits_mismatched_vs_reference", (double)mismatched);
    cJSON_AddBoolToObject(f, "bit_identical", mismatched == 0);
    cJSON_AddStringToObject(f, "f32_reference", f32_source);
    cJSON_AddNumberToObject(f, "max_abs_logit_error_vs_f32", max_logit_err);
    cJSON_AddNumberToObject(f, "top1_agreement_with_f32", (double)agree / (double)neval);
    if (fmnist) {
        cJSON_AddNumberToObject(f, "accuracy_f32", (double)correct_f32 / (double)neval);
        cJSON_AddNumberToObject(f, "accuracy_fixed", (double)correct_fx / (double)neval);
    }
    cJSON_AddNumberToObject(f, "wall_s", r.wall_s);
    cJSON_AddNumberToObject(f, "cpu_logits_mismatched_vs_simulator", (double)r.cpu_mismatched);
    cJSON_AddBoolToObject(f, "cpu_bit_identical", r.cpu_mismatched == 0);
    cJSON_AddNumberToObject(f, "simulator_images_per_s", r.sim_s > 0 ? (double)neval / r.sim_s : 0.0);
    cJSON_AddNumberToObject(f, "cpu_images_per_s", r.cpu_s > 0 ? (double)neval / r.cpu_s : 0.0);
    cJSON_AddNumberToObject(f, "cpu_threads", r.cpu_threads);
    if (txt) {
        fprintf(txt, "functional (int%d, acc %d bits, %s scales): %zu images (%s), logits of the "
                     "simulator vs the fixed-point reference: %s (%zu mismatched)\n",
                hw->data_bits, hw->acc_bits, nmf_sta_scale_name(hw->weight_scale), neval,
                fmnist ? "Fashion-MNIST test" : "random", mismatched ? "DIFFERENT" : "bit-identical",
                mismatched);
        if (fmnist)
            fprintf(txt, "  accuracy: f32 %.2f%% (%s), fixed point %.2f%% (drop %.2f points); "
                         "top-1 agreement %.2f%%, max |logit - f32| %.4f\n",
                    100.0 * (double)correct_f32 / (double)neval, f32_source,
                    100.0 * (double)correct_fx / (double)neval,
                    100.0 * ((double)correct_f32 - (double)correct_fx) / (double)neval,
                    100.0 * (double)agree / (double)neval, max_logit_err);
        else
            fprintf(txt, "  top-1 agreement with f32 %.2f%%, max |logit - f32| %.4f\n",
                    100.0 * (double)agree / (double)neval, max_logit_err);
        fprintf(txt, "  CPU fixed-point mode (run/eval --precision int8 --sta): %s (%zu mismatched); "
                     "%.0f images/s (%d threads) vs the simulator's %.0f images/s (1 thread)\n",
                r.cpu_mismatched ? "DIFFERENT" : "bit-identical to the simulator", r.cpu_mismatched,
                r.cpu_s > 0 ? (double)neval / r.cpu_s : 0.0, r.cpu_threads,
                r.sim_s > 0 ? (double)neval / r.sim_s : 0.0);
    }
    rc = mismatched || r.cpu_mismatched ? 1 : 0;
    if (r.cpu_mismatched)
        fprintf(stderr, "nmformer sim: the CPU's fixed-point logits differ from the simulator's on "
                        "%zu of %zu images\n", r.cpu_mismatched, neval);
    if (mismatched)
        fprintf(stderr, "nmformer sim: functional logits differ from the fixed-point reference on "
                        "%zu of %zu images\n", mismatched, neval);
done:
    if (st) rc = cli_fail("sim", "functional mode", st);
    nmf_dataset_free(&test);
    nmf_free(calib);
    free(x), free(labels);
    return rc;
}

/* ---- --compare ---------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *find_pytorch_script(const sim_args *a, char *buf, size_t size) {
    if (a->pytorch) return access(a->pytorch, R_OK) == 0 ? a->pytorch : NULL;
    const char *root = getenv("NMF_SOURCE_DIR");
    if (root) {
        snprintf(buf, size, "%s/bench/pytorch_vit.py", root);
        if (access(buf, R_OK) == 0) return buf;
    }
    snprintf(buf, size, "bench/pytorch_vit.py");
    if (access(buf, R_OK) == 0) return buf;
    char exe[3072];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, size, "%s/../bench/pytorch_vit.py", exe);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return NULL;
}

static void run_compare(const sim_args *a, const nmf_model_config *v, const nmf_tensor_set *tensors,
                        double sta_ms, cJSON *extra, FILE *txt) {
    cJSON *c = cJSON_AddObjectToObject(extra, "compare");
    cJSON_AddNumberToObject(c, "sta_ms", sta_ms);
    int threads = nmf_get_threads();
    cJSON_AddNumberToObject(c, "cpu_threads", threads);
    /* nmformer on this CPU */
    nmf_vit *m = NULL;
    nmf_status st = tensors ? nmf_vit_create(&m, v, tensors)
                            : nmf_vit_create_random(&m, v, a->pattern, 1);
    double cpu_ms = -1;
    char why[256] = "";
    if (st) {
        snprintf(why, sizeof why, "not measured: %s (%s)", nmf_strerror(st), nmf_last_error());
    } else {
        size_t img = (size_t)v->in_chans * (size_t)v->img_size * (size_t)v->img_size;
        float *x = malloc(img * sizeof(float)), *y = malloc((size_t)v->num_classes * sizeof(float));
        if (x && y) {
            uint64_t s = 99;
            for (size_t i = 0; i < img; i++) x[i] = (float)nmf_rng_normal(&s);
            int reps = model_macs(v) > 500000000ULL ? 3 : 10;
            double t[10];
            st = nmf_vit_forward(m, y, x, 1); /* warm-up */
            for (int r = 0; r < reps && !st; r++) {
                double t0 = nmf_now();
                st = nmf_vit_forward(m, y, x, 1);
                t[r] = nmf_now() - t0;
            }
            if (!st) {
                qsort(t, (size_t)reps, sizeof t[0], cmp_double);
                cpu_ms = 1e3 * t[reps / 2];
            } else {
                snprintf(why, sizeof why, "not measured: %s", nmf_last_error());
            }
        } else {
            snprintf(why, sizeof why, "not measured: out of memory");
        }
        free(x);
        free(y);
        nmf_vit_free(m);
    }
    if (cpu_ms > 0) {
        cJSON_AddNumberToObject(c, "nmformer_cpu_ms", cpu_ms);
        cJSON_AddNumberToObject(c, "speedup_vs_nmformer_cpu", cpu_ms / sta_ms);
    } else {
        cJSON_AddStringToObject(c, "nmformer_cpu", why);
    }
    /* PyTorch on this CPU (dense; the benchmark script times the DeiT shapes) */
    double torch_ms = -1;
    char twhy[4800] = "";
    char buf[4096];
    const char *script = find_pytorch_script(a, buf, sizeof buf);
    if (!a->shape) {
        snprintf(twhy, sizeof twhy, "not measured: bench/pytorch_vit.py times only the DeiT shapes "
                                    "(use --shape)");
    } else if (access("/usr/bin/python3", X_OK) != 0) {
        snprintf(twhy, sizeof twhy, "not measured: /usr/bin/python3 not installed");
    } else if (!script) {
        snprintf(twhy, sizeof twhy, "not measured: bench/pytorch_vit.py not found (--pytorch PATH)");
    } else {
        char cmd[4608];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 '%s' --shape %s --threads %d --batch 1 --reps 3 --json 2>/dev/null",
                 script, a->shape, threads);
        FILE *p = popen(cmd, "r");
        char *out = NULL;
        size_t len = 0, cap = 0;
        if (p) {
            char chunk[4096];
            size_t n;
            while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
                if (len + n + 1 > cap) {
                    cap = (len + n + 1) * 2;
                    char *t = realloc(out, cap);
                    if (!t) break;
                    out = t;
                }
                memcpy(out + len, chunk, n);
                len += n;
            }
            int status = pclose(p);
            if (out) out[len] = 0;
            cJSON *j = (status == 0 && out) ? cJSON_Parse(out) : NULL;
            cJSON *row = j ? cJSON_GetArrayItem(j, 0) : NULL;
            cJSON *lat = row ? cJSON_GetObjectItemCaseSensitive(row, "latency_ms") : NULL;
            if (cJSON_IsNumber(lat)) torch_ms = lat->valuedouble;
            else
                snprintf(twhy, sizeof twhy, "not measured: %s failed (python3-torch missing?)", script);
            cJSON_Delete(j);
        } else {
            snprintf(twhy, sizeof twhy, "not measured: cannot start /usr/bin/python3");
        }
        free(out);
    }
    if (torch_ms > 0) {
        cJSON_AddNumberToObject(c, "pytorch_cpu_ms", torch_ms);
        cJSON_AddNumberToObject(c, "speedup_vs_pytorch_cpu", torch_ms / sta_ms);
        cJSON_AddStringToObject(c, "pytorch_model", "dense (bench/pytorch_vit.py, random weights)");
    } else {
        cJSON_AddStringToObject(c, "pytorch_cpu", twhy);
    }
    if (txt) {
        fprintf(txt, "compare (batch 1, %d CPU threads; CPU timings are medians on this machine):\n", threads);
        fprintf(txt, "  STA (simulated)    %10.3f ms\n", sta_ms);
        if (cpu_ms > 0) fprintf(txt, "  nmformer CPU       %10.3f ms   STA speedup %.2fx\n", cpu_ms, cpu_ms / sta_ms);
        else fprintf(txt, "  nmformer CPU       %s\n", why);
        if (torch_ms > 0)
            fprintf(txt, "  PyTorch CPU        %10.3f ms   STA speedup %.2fx (PyTorch runs the dense model)\n",
                    torch_ms, torch_ms / sta_ms);
        else fprintf(txt, "  PyTorch CPU        %s\n", twhy);
    }
}

/* ---- main --------------------------------------------------------------------------------- */

/* What the token families do not have: the fixed-point datapath and --compare are the ViT's; the
 * decode phase is the decoders'. Returns 2 (message printed) or 0. */
static int check_token_options(const sim_args *a, const nmf_model_config *c) {
    if (!nmf_model_is_token(c)) {
        if (a->phase == NMF_STA_DECODE) {
            fprintf(stderr, "nmformer sim: --phase decode is for decoders (GPT-2, LLaMA), not a ViT\n");
            return 2;
        }
        return 0;
    }
    if (a->functional == 1 || a->compare) {
        fprintf(stderr, "nmformer sim: %s is for ViT models (the fixed-point datapath and the "
                        "PyTorch comparison cover the ViT only; docs/STA.md)\n",
                a->compare ? "--compare" : "--functional");
        return 2;
    }
    if (a->phase == NMF_STA_DECODE && c->hf.model_type == NMF_HF_BERT) {
        fprintf(stderr, "nmformer sim: --phase decode is for decoders (GPT-2, LLaMA), not BERT\n");
        return 2;
    }
    return 0;
}

static void add_resources(cJSON *extra, const nmf_sta_resources *r) {
    cJSON *o = cJSON_AddObjectToObject(extra, "resources");
    cJSON_AddStringToObject(o, "device", r->device->name);
    cJSON_AddStringToObject(o, "family", r->device->family);
    cJSON_AddNumberToObject(o, "dsp", (double)r->dsp);
    cJSON_AddNumberToObject(o, "lut", (double)r->lut);
    cJSON_AddNumberToObject(o, "ff", (double)r->ff);
    cJSON_AddNumberToObject(o, "bram36", (double)r->bram36);
    cJSON_AddNumberToObject(o, "uram", (double)r->uram);
    cJSON *av = cJSON_AddObjectToObject(o, "available");
    cJSON_AddNumberToObject(av, "dsp", r->device->dsp);
    cJSON_AddNumberToObject(av, "lut", (double)r->device->lut);
    cJSON_AddNumberToObject(av, "ff", (double)r->device->ff);
    cJSON_AddNumberToObject(av, "bram36", r->device->bram36);
    cJSON_AddNumberToObject(av, "uram", r->device->uram);
    cJSON *b = cJSON_AddObjectToObject(o, "lut_breakdown");
    cJSON_AddNumberToObject(b, "mux", (double)r->lut_mux);
    cJSON_AddNumberToObject(b, "adder_tree", (double)r->lut_adder);
    cJSON_AddNumberToObject(b, "accumulators_decode", (double)r->lut_acc);
    cJSON_AddNumberToObject(b, "softmax", (double)r->lut_softmax);
    cJSON_AddNumberToObject(b, "vector", (double)r->lut_vector);
    cJSON_AddNumberToObject(b, "control", (double)r->lut_control);
    cJSON_AddBoolToObject(o, "fits", r->fits);
    cJSON_AddStringToObject(o, "over", r->over);
}

static void print_resources(FILE *f, const nmf_sta_resources *r) {
    const nmf_sta_device *d = r->device;
    fprintf(f, "resources on %s (%s): DSP %lld/%d (%.0f%%), LUT %lld/%lld (%.0f%%; mux %lld, adder "
               "tree %lld), FF %lld/%lld (%.0f%%), BRAM36 %lld/%d (%.0f%%), URAM %lld/%d -> %s%s\n",
            d->name, d->family, (long long)r->dsp, d->dsp, 100.0 * (double)r->dsp / d->dsp,
            (long long)r->lut, (long long)d->lut, 100.0 * (double)r->lut / (double)d->lut,
            (long long)r->lut_mux, (long long)r->lut_adder, (long long)r->ff, (long long)d->ff,
            100.0 * (double)r->ff / (double)d->ff, (long long)r->bram36, d->bram36,
            100.0 * (double)r->bram36 / d->bram36, (long long)r->uram, d->uram,
            r->fits ? "fits" : "DOES NOT FIT: ", r->over);
}

static nmf_status parse_phase(const char *v, void *dest) {
    if (!strcmp(v, "prefill")) *(nmf_sta_phase *)dest = NMF_STA_PREFILL;
    else if (!strcmp(v, "decode")) *(nmf_sta_phase *)dest = NMF_STA_DECODE;
    else return nmf_error(NMF_ERR_INVALID_ARG, "expected prefill or decode");
    return NMF_OK;
}

static nmf_status parse_pattern(const char *v, void *dest) { return nmf_pattern_parse(v, dest); }

int cmd_sim(int argc, char **argv) {
    sim_args a;
    memset(&a, 0, sizeof a);
    a.functional = -1;
    a.eval_images = 1000;
    const cli_opt opts[] = {
        CLI_STR("hw", 0, &a.hw_path, "PATH", "design INI (configs/hw/*.ini); default: the\nbuilt-in mid-size design"),
        CLI_STR("model", 'm', &a.name, "NAME", "candidate of a family file (dense, 2:8, ...)"),
        CLI_STR("shape", 0, &a.shape, "NAME", "synthetic model of a named shape (no weights)"),
        CLI_FN("pattern", 'p', parse_pattern, &a.pattern, "N:M", "with --shape: N:M of every block linear\n"
               "(default dense); with a dense model file:\npack its block linears to N:M by magnitude"),
        CLI_INT("tokens", 0, &a.tokens, 1, 1 << 30, "T", "sequence length (default: the ViT's; 128 for\n"
                "token models); in the decode phase, the\npositions already in the key/value cache"),
        CLI_FN("phase", 0, parse_phase, &a.phase, "P", "token decoders (GPT-2, LLaMA): prefill\n(default: "
               "T tokens, the cache written to\nDRAM) or decode (one new token against a\ncache of T)"),
        CLI_FLAG("json", 0, &a.json, "one JSON object {config, model, ops, total,\nresources, ...}"),
        CLI_STR("trace", 0, &a.trace, "PATH", "Chrome-trace timeline (chrome://tracing,\nui.perfetto.dev)"),
        CLI_FLAG_SET("functional", 0, &a.functional, 1, "run the fixed-point datapath and compare with\n"
                     "the reference (ViT only; default on for ViTs\nwith weights and < 20M MACs per image)"),
        CLI_FLAG_SET("no-functional", 0, &a.functional, 0, "timing only"),
        CLI_INT("eval-images", 0, &a.eval_images, 0, 1 << 30, "N", "test images for the fixed-point accuracy\n"
                "(default 1000; 0: all)"),
        CLI_STR("data", 0, &a.data_dir, "DIR", "Fashion-MNIST IDX directory (default:\n$NMF_DATA_DIR or "
                NMF_FASHION_MNIST_DIR ")"),
        CLI_FLAG("compare", 0, &a.compare, "simulated latency next to nmformer's and\nPyTorch's CPU latency (ViT)"),
        CLI_STR("pytorch", 0, &a.pytorch, "PATH", "the PyTorch benchmark script (default:\nbench/pytorch_vit.py "
                "found via $NMF_SOURCE_DIR,\n./ or the executable's ../)"),
        CLI_INT("threads", 'j', &a.threads, 1, 4096, "T", "CPU threads for --compare and the f32 reference"),
        CLI_CONFIG_OPTS(&a.flags),
        CLI_END,
    };
    char shapes[512], about[2048];
    snprintf(about, sizeof about, about_format, cli_shape_names(shapes, sizeof shapes));
    const cli_command cmd = {"sim", "MODEL [options]\nnmformer sim --shape NAME [--pattern N:M] "
                             "[--phase prefill|decode] [options]", about, opts, {&a.model_path}, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    if (!a.model_path == !a.shape)
        return cli_usage_error("sim", "give either MODEL or --shape NAME (see --help)");
    if (a.threads) nmf_set_threads(a.threads);
    nmf_sta_config hw;
    nmf_sta_config_default(&hw);
    nmf_status st;
    if (a.hw_path && (st = nmf_sta_config_load(a.hw_path, &hw))) return cli_fail("sim", "--hw", st);
    nmf_model_config vit;
    nmf_tensor_set tensors, packed;
    nmf_tensors_init(&tensors);
    nmf_tensors_init(&packed);
    const nmf_tensor_set *weights = NULL;
    nmf_sta_schedule sched;
    memset(&sched, 0, sizeof sched);
    nmf_sta_result res;
    memset(&res, 0, sizeof res);
    cJSON *extra = cJSON_CreateObject();
    rc = 0;
    if (a.shape) {
        if (cli_config_flags_any(&a.flags)) {
            fprintf(stderr, "nmformer sim: config flags do not apply to --shape\n");
            rc = 2;
            goto out;
        }
        if ((st = nmf_model_shape_config(a.shape, &vit))) { /* an unknown name: a usage error */
            rc = cli_usage_error("sim", "--shape: %s", nmf_last_error());
            goto out;
        }
        if (a.functional == 1) {
            fprintf(stderr, "nmformer sim: --functional needs a model with weights (not --shape)\n");
            rc = 2;
            goto out;
        }
        a.functional = 0;
        if ((rc = check_token_options(&a, &vit))) goto out;
        if ((st = nmf_sta_schedule_build(&sched, &vit, NULL, a.pattern, (int)a.tokens, a.phase))) {
            rc = cli_fail("sim", a.shape, st);
            goto out;
        }
    } else {
        if ((st = cli_load_model(a.model_path, a.name, &a.flags, &vit, &tensors))) {
            rc = cli_fail("sim", a.model_path, st);
            goto out;
        }
        weights = &tensors;
        if (a.pattern.n) {
            if ((st = nmf_model_prune(&vit, &tensors, a.pattern, &packed))) {
                rc = cli_fail("sim", "--pattern", st);
                goto out;
            }
            weights = &packed;
        }
        if ((rc = check_token_options(&a, &vit))) goto out;
        if (nmf_model_is_token(&vit)) a.functional = 0;
        if ((st = nmf_sta_schedule_build(&sched, &vit, weights, (nmf_pattern){0, 0}, (int)a.tokens,
                                         a.phase))) {
            rc = cli_fail("sim", a.model_path, st);
            goto out;
        }
        if (a.functional < 0) a.functional = a.tokens == 0 && model_macs(&vit) < 20000000ULL;
        if (a.functional && a.tokens && a.tokens != nmf_vit_tokens(&vit)) {
            fprintf(stderr, "nmformer sim: --functional runs the model's own %d tokens, not --tokens %d\n",
                    nmf_vit_tokens(&vit), a.tokens);
            rc = 2;
            goto out;
        }
    }
    double t0 = nmf_now();
    if ((st = nmf_sta_simulate(&hw, &sched, a.trace != NULL, &res))) {
        rc = cli_fail("sim", "simulation", st);
        goto out;
    }
    double sim_s = nmf_now() - t0;
    cJSON_AddNumberToObject(extra, "simulation_wall_s", sim_s);
    nmf_sta_resources resources;
    if ((st = nmf_sta_estimate_resources(&hw, &resources))) {
        rc = cli_fail("sim", "resources", st);
        goto out;
    }
    add_resources(extra, &resources);
    /* before any report: an unwritable --trace path fails the command with nothing printed */
    if (a.trace && (st = nmf_sta_write_trace(a.trace, &hw, &sched, &res))) {
        rc = cli_fail("sim", a.trace, st);
        goto out;
    }
    FILE *txt = a.json ? NULL : stdout;
    if (txt) {
        if ((st = nmf_sta_report_text(stdout, &hw, &sched, &res))) {
            rc = cli_fail("sim", "report", st);
            goto out;
        }
        print_resources(stdout, &resources);
        printf("simulated in %.6f s (wall)\n", sim_s);
    }
    if (nmf_model_is_token(&vit)) { /* the figure a user of a token model compares */
        const double rows = sched.phase == NMF_STA_DECODE ? 1.0 : (double)sched.tokens;
        const double tps = res.total.time_ms > 0 ? 1e3 * rows / res.total.time_ms : 0.0;
        cJSON_AddNumberToObject(extra, "tokens_per_s", tps);
        if (txt)
            printf("%s: %.0f token%s in %.4f ms = %.1f tokens/s\n", nmf_sta_phase_name(sched.phase),
                   rows, rows == 1.0 ? "" : "s", res.total.time_ms, tps);
    }
    if (a.functional) rc = run_functional(&a, &hw, &vit, weights, extra, txt);
    if (a.compare) run_compare(&a, &vit, weights, res.total.time_ms, extra, txt);
    if (a.json) {
        char *text = nmf_sta_report_json(&hw, &sched, &res, extra);
        if (!text) {
            rc = cli_fail("sim", "json", NMF_ERR_NOMEM);
            goto out;
        }
        puts(text);
        free(text);
    }
out:
    cJSON_Delete(extra);
    nmf_sta_result_free(&res);
    nmf_sta_schedule_free(&sched);
    nmf_tensors_free(&packed);
    nmf_tensors_free(&tensors);
    return rc;
}
