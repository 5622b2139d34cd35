/* Reports of a simulation: text table, one JSON object, Chrome trace (chrome://tracing,
 * https://ui.perfetto.dev). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/io.h"
#include "nmformer/sta.h"
#include "sta/sta_internal.h"

/* The unit that executes an op: one row of the trace and the "unit" of each op in the JSON. */
static const char *const unit_names[] = {"engine", "softmax unit", "vector unit", "DRAM"};
static int op_unit(nmf_sta_op_kind k) {
    return k == NMF_STA_OP_SOFTMAX ? 1 : k == NMF_STA_OP_VECTOR ? 2 : 0;
}

static double pct(uint64_t a, uint64_t b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static double op_efficiency(const nmf_sta_config *c, const nmf_sta_op_result *o) {
    return o->cycles ? (double)o->useful_macs / ((double)nmf_sta_multipliers(c) * (double)o->cycles)
                     : 0.0;
}

nmf_status nmf_sta_report_text(FILE *f, const nmf_sta_config *c, const nmf_sta_schedule *s,
                               const nmf_sta_result *r) {
    char *ini = nmf_sta_config_to_ini(c);
    if (!ini) return nmf_error(NMF_ERR_NOMEM, "sta report: out of memory");
    fprintf(f, "# resolved configuration\n%s\n", ini);
    free(ini);
    char pat[16] = "dense/mixed";
    if (s->pattern.n) nmf_pattern_format(s->pattern, pat, sizeof pat);
    const nmf_model_config *m = &s->vit;
    if (nmf_model_is_token(m)) {
        char phase[64];
        if (s->phase == NMF_STA_DECODE)
            snprintf(phase, sizeof phase, "decode of 1 token against a cache of %d", s->tokens);
        else snprintf(phase, sizeof phase, "prefill of %d tokens", s->tokens);
        fprintf(f, "# model: %s, hidden %d, layers %d, heads %d (kv %d), intermediate %d, vocab %d; "
                   "%s, block linears %s\n",
                m->arch, m->hf.hidden_size, m->hf.num_hidden_layers, m->hf.num_attention_heads,
                m->hf.num_key_value_heads, m->hf.intermediate_size, m->hf.vocab_size, phase, pat);
    }
    else
        fprintf(f, "# model: dim %d, depth %d, heads %d, tokens %d, block linears %s\n", m->dim,
                m->depth, m->heads, s->tokens, pat);
    sta_buffers b;
    sta_buffers_of(c, &b);
    fprintf(f, "%-24s %-7s %11s %10s %10s %13s %6s %10s %10s %5s %5s %5s\n", "op", "kind", "cycles",
            "stall", "fetch", "useful_macs", "eff%", "rd_KiB", "wr_KiB", "wbuf%", "abuf%", "obuf%");
    for (size_t i = 0; i < s->op_count; i++) {
        const nmf_sta_op_result *o = &r->ops[i];
        fprintf(f, "%-24s %-7s %11llu %10llu %10llu %13llu %6.1f %10.1f %10.1f %5.0f %5.0f %5.0f\n",
                s->ops[i].name, nmf_sta_op_kind_name(s->ops[i].kind), (unsigned long long)o->cycles,
                (unsigned long long)o->stall, (unsigned long long)o->conflict,
                (unsigned long long)o->useful_macs, 100.0 * op_efficiency(c, o),
                (double)o->dram_read / 1024.0, (double)o->dram_write / 1024.0,
                pct(o->weight_buf_peak, b.weight_slot), pct(o->act_buf_peak, b.act_slot),
                pct(o->out_buf_peak, b.out_slot));
    }
    const nmf_sta_total *t = &r->total;
    fprintf(f,
            "total: %llu cycles = %.4f ms at %g MHz; useful MACs %llu on %d multipliers: MAC "
            "efficiency %.2f%%\n"
            "       busy %llu, fill %llu, DRAM stall %llu cycles; DRAM read %.2f MiB, written "
            "%.2f MiB (bandwidth lower bound %llu cycles, compute lower bound %llu cycles)\n",
            (unsigned long long)t->cycles, t->time_ms, c->freq_mhz,
            (unsigned long long)t->useful_macs, nmf_sta_multipliers(c), 100.0 * t->mac_efficiency,
            (unsigned long long)t->busy, (unsigned long long)t->fill, (unsigned long long)t->stall,
            (double)t->dram_read / 1048576.0, (double)t->dram_write / 1048576.0,
            (unsigned long long)t->dram_lower_bound, (unsigned long long)t->compute_lower_bound);
    return NMF_OK;
}

static cJSON *config_json(const nmf_sta_config *c) {
    cJSON *root = cJSON_CreateObject(), *sec = NULL;
    const char *cur = "";
    for (size_t i = 0; i < sta_config_key_count(); i++) {
        const char *section, *key, *str;
        int is_string;
        double num;
        sta_config_key(c, i, &section, &key, &is_string, &num, &str);
        if (strcmp(cur, section)) {
            sec = cJSON_AddObjectToObject(root, section);
            cur = section;
        }
        if (is_string) cJSON_AddStringToObject(sec, key, str);
        else cJSON_AddNumberToObject(sec, key, num);
    }
    cJSON_AddNumberToObject(root, "multipliers", nmf_sta_multipliers(c));
    return root;
}

/* Activation bytes read by an op, attributed to its non-resident input tensors. */
static void add_tensor_bytes(cJSON *obj, const char *name, uint64_t bytes) {
    if (!bytes) return;
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (old) cJSON_SetNumberValue(old, old->valuedouble + (double)bytes);
    else cJSON_AddNumberToObject(obj, name, (double)bytes);
}

char *nmf_sta_report_json(const nmf_sta_config *c, const nmf_sta_schedule *s,
                          const nmf_sta_result *r, void *extra_cjson) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddItemToObject(root, "config", config_json(c));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    const nmf_model_config *m = &s->vit;
    cJSON_AddStringToObject(model, "arch", m->arch);
    if (nmf_model_is_token(m)) {
        cJSON_AddNumberToObject(model, "hidden", m->hf.hidden_size);
        cJSON_AddNumberToObject(model, "layers", m->hf.num_hidden_layers);
        cJSON_AddNumberToObject(model, "heads", m->hf.num_attention_heads);
        cJSON_AddNumberToObject(model, "kv_heads", m->hf.num_key_value_heads);
        cJSON_AddNumberToObject(model, "intermediate", m->hf.intermediate_size);
        cJSON_AddNumberToObject(model, "vocab", m->hf.vocab_size);
    } else {
        cJSON_AddNumberToObject(model, "dim", m->dim);
        cJSON_AddNumberToObject(model, "depth", m->depth);
        cJSON_AddNumberToObject(model, "heads", m->heads);
        cJSON_AddNumberToObject(model, "mlp_hidden", nmf_vit_hidden(m));
        cJSON_AddNumberToObject(model, "num_classes", m->num_classes);
    }
    cJSON_AddStringToObject(model, "phase", nmf_sta_phase_name(s->phase));
    cJSON_AddNumberToObject(model, "tokens", s->tokens); /* decode: the cached positions */
    char pat[16] = "dense/mixed";
    if (s->pattern.n) nmf_pattern_format(s->pattern, pat, sizeof pat);
    cJSON_AddStringToObject(model, "pattern", pat);
    cJSON *tens = cJSON_AddArrayToObject(model, "resident_tensors");
    for (size_t i = 0; i < s->tensor_count; i++)
        if (s->tensors[i].resident) cJSON_AddItemToArray(tens, cJSON_CreateString(s->tensors[i].name));
    const double mults = (double)nmf_sta_multipliers(c);
    cJSON *ops = cJSON_AddArrayToObject(root, "ops");
    for (size_t i = 0; i < s->op_count; i++) {
        const nmf_sta_op *op = &s->ops[i];
        const nmf_sta_op_result *o = &r->ops[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", op->name);
        cJSON_AddStringToObject(j, "kind", nmf_sta_op_kind_name(op->kind));
        cJSON_AddStringToObject(j, "unit", unit_names[op_unit(op->kind)]);
        if (op->kind == NMF_STA_OP_SPARSE) {
            nmf_pattern_format(op->pattern, pat, sizeof pat);
            cJSON_AddStringToObject(j, "pattern", pat);
        }
        cJSON *shape = cJSON_AddArrayToObject(j, "shape"); /* batch, rows, cols, k */
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(op->batch));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)op->rows));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)op->cols));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)op->k));
        cJSON_AddNumberToObject(j, "start_cycle", (double)o->start);
        cJSON_AddNumberToObject(j, "cycles", (double)o->cycles);
        cJSON_AddNumberToObject(j, "time_us", (double)o->cycles / c->freq_mhz);
        cJSON_AddNumberToObject(j, "busy_cycles", (double)o->busy);
        cJSON_AddNumberToObject(j, "fill_cycles", (double)o->fill);
        cJSON_AddNumberToObject(j, "stall_cycles", (double)o->stall);
        cJSON_AddNumberToObject(j, "fetch_cycles", (double)o->conflict);
        cJSON_AddNumberToObject(j, "useful_macs", (double)o->useful_macs);
        cJSON_AddNumberToObject(j, "elements", (double)o->elements);
        cJSON_AddNumberToObject(j, "mac_efficiency",
                                o->cycles ? (double)o->useful_macs / (mults * (double)o->cycles) : 0.0);
        cJSON_AddNumberToObject(j, "dram_bytes", (double)(o->dram_read + o->dram_write));
        cJSON_AddNumberToObject(j, "dram_read_bytes", (double)o->dram_read);
        cJSON_AddNumberToObject(j, "dram_write_bytes", (double)o->dram_write);
        cJSON *rd = cJSON_AddObjectToObject(j, "dram_read_by_tensor");
        char wn[96];
        if (op->weight_from_dram) {
            snprintf(wn, sizeof wn, "%s.weight", op->name);
            add_tensor_bytes(rd, wn, o->weight_bytes);
            snprintf(wn, sizeof wn, "%s.weight.metadata", op->name);
            add_tensor_bytes(rd, wn, o->meta_bytes);
        }
        int nin = 0;
        for (int k = 0; k < NMF_STA_MAX_OP_INPUTS; k++)
            if (op->in[k] >= 0 && !s->tensors[op->in[k]].resident &&
                (k == 0 || op->in[k] != op->in[0]))
                nin++;
        for (int k = 0; k < NMF_STA_MAX_OP_INPUTS && nin; k++)
            if (op->in[k] >= 0 && !s->tensors[op->in[k]].resident &&
                (k == 0 || op->in[k] != op->in[0]))
                add_tensor_bytes(rd, s->tensors[op->in[k]].name, o->act_read_bytes / (uint64_t)nin);
        cJSON *wr = cJSON_AddObjectToObject(j, "dram_write_by_tensor");
        if (op->out >= 0) add_tensor_bytes(wr, s->tensors[op->out].name, o->act_write_bytes);
        cJSON *occ = cJSON_AddObjectToObject(j, "buffer_peak_bytes");
        cJSON_AddNumberToObject(occ, "weight", (double)o->weight_buf_peak);
        cJSON_AddNumberToObject(occ, "act", (double)o->act_buf_peak);
        cJSON_AddNumberToObject(occ, "out", (double)o->out_buf_peak);
        cJSON_AddNumberToObject(occ, "score", (double)o->score_buf_peak);
        cJSON_AddNumberToObject(j, "tiles", (double)o->tiles);
        cJSON_AddItemToArray(ops, j);
    }
    const nmf_sta_total *t = &r->total;
    cJSON *tot = cJSON_AddObjectToObject(root, "total");
    cJSON_AddNumberToObject(tot, "cycles", (double)t->cycles);
    cJSON_AddNumberToObject(tot, "time_ms", t->time_ms);
    cJSON_AddNumberToObject(tot, "useful_macs", (double)t->useful_macs);
    cJSON_AddNumberToObject(tot, "mac_efficiency", t->mac_efficiency);
    cJSON_AddNumberToObject(tot, "multipliers", mults);
    cJSON_AddNumberToObject(tot, "busy_cycles", (double)t->busy);
    cJSON_AddNumberToObject(tot, "fill_cycles", (double)t->fill);
    cJSON_AddNumberToObject(tot, "stall_cycles", (double)t->stall);
    cJSON_AddNumberToObject(tot, "dram_read_bytes", (double)t->dram_read);
    cJSON_AddNumberToObject(tot, "dram_write_bytes", (double)t->dram_write);
    cJSON_AddNumberToObject(tot, "dram_lower_bound_cycles", (double)t->dram_lower_bound);
    cJSON_AddNumberToObject(tot, "compute_lower_bound_cycles", (double)t->compute_lower_bound);
    if (extra_cjson) {
        cJSON *extra = extra_cjson, *it = extra->child;
        while (it) {
            cJSON *next = it->next;
            cJSON *item = cJSON_DetachItemViaPointer(extra, it);
            cJSON_AddItemToObject(root, item->string, item);
            it = next;
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

nmf_status nmf_sta_write_trace(const char *path, const nmf_sta_config *c,
                               const nmf_sta_schedule *s, const nmf_sta_result *r) {
    char *buf = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&buf, &size);
    if (!m) return nmf_error(NMF_ERR_NOMEM, "%s: cannot build trace", path);
    fprintf(m, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    for (int u = 0; u < 4; u++)
        fprintf(m, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,\"args\":{\"name\":\"%s\"}},\n",
                u, unit_names[u]);
    /* one span per op on its unit, then every tile and transfer */
    for (size_t i = 0; i < s->op_count; i++) {
        const nmf_sta_op_result *o = &r->ops[i];
        int unit = op_unit(s->ops[i].kind);
        fprintf(m,
                "{\"name\":\"%s\",\"cat\":\"op\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":%.4f,"
                "\"dur\":%.4f,\"args\":{\"cycles\":%llu,\"stall\":%llu,\"useful_macs\":%llu}},\n",
                s->ops[i].name, unit, (double)o->start / c->freq_mhz,
                (double)o->cycles / c->freq_mhz, (unsigned long long)o->cycles,
                (unsigned long long)o->stall, (unsigned long long)o->useful_macs);
    }
    for (size_t i = 0; i < r->event_count; i++) {
        const nmf_sta_event *e = &r->events[i];
        const char *name = e->op < s->op_count ? s->ops[e->op].name : "?";
        fprintf(m, "{\"name\":\"%s%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":0,\"tid\":%d,\"ts\":%.4f,"
                   "\"dur\":%.4f},\n",
                name, e->unit == 3 ? (e->is_write ? " store" : " load") : "",
                e->unit == 3 ? "dram" : "compute", e->unit, (double)e->begin / c->freq_mhz,
                (double)(e->end - e->begin) / c->freq_mhz);
    }
    fprintf(m, "{\"name\":\"end\",\"ph\":\"i\",\"pid\":0,\"tid\":0,\"ts\":%.4f,\"s\":\"g\"}\n]}\n",
            (double)r->total.cycles / c->freq_mhz);
    if (fclose(m) != 0 || !buf) {
        free(buf);
        return nmf_error(NMF_ERR_NOMEM, "%s: cannot build trace", path);
    }
    nmf_atomic_file *af = NULL;
    nmf_status st = nmf_atomic_open(path, &af);
    if (!st) {
        st = nmf_atomic_write(af, buf, size);
        if (st) nmf_atomic_abort(af);
        else st = nmf_atomic_commit(af);
    }
    free(buf);
    return st;
}
