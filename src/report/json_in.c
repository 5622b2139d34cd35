/* Reading the report's inputs: JSON whose syntax errors name the file, line and column (cJSON
 * only says where it stopped), and typed look-ups that tell "absent" from "wrong". */
#include "report/report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmformer/io.h"

/* Inputs are logs and summaries of a run: 256 MiB is far above any of them. */
#define MAX_INPUT ((size_t)256 << 20)

char *rpt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

nmf_status rpt_read_text(const char *path, char **text, size_t *size) {
    uint8_t *data = NULL;
    nmf_status st = nmf_read_file(path, MAX_INPUT, &data, size);
    *text = (char *)data;
    return st;
}

nmf_status rpt_json_text(const char *path, int line, const char *text, size_t len, cJSON **out) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    const char *bad = NULL;
    if (!root) bad = end ? end : text;
    else
        for (const char *p = end; p < text + len; p++) /* one value, then only white space */
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                bad = p;
                break;
            }
    if (bad) {
        cJSON_Delete(root);
        int col = 1;
        for (const char *p = text; p < bad && p < text + len; p++) {
            if (*p == '\n') line++, col = 1;
            else col++;
        }
        const char *q = text;
        while (q < text + len && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) q++;
        if (q == text + len) return nmf_error(NMF_ERR_FORMAT, "%s: line %d: empty, not JSON", path, line);
        return nmf_error(NMF_ERR_FORMAT, "%s: line %d, column %d: not valid JSON", path, line, col);
    }
    *out = root;
    return NMF_OK;
}

nmf_status rpt_json_file(const char *path, cJSON **out) {
    char *text;
    size_t size;
    *out = NULL;
    nmf_status st = rpt_read_text(path, &text, &size);
    if (st) return st;
    st = rpt_json_text(path, 1, text, size, out);
    free(text);
    return st;
}

int rpt_json_number(const cJSON *obj, const char *key, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return -1;
    *out = v->valuedouble;
    return 1;
}

const char *rpt_json_string(const cJSON *obj, const char *key) {
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
}
