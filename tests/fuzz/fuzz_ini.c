/* libFuzzer harness: the accelerator (sta) INI reader. A config that parses must validate, print
 * back as INI, and that INI must parse to the same printed config (a round trip). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "nmformer/sta.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nmf_sta_config c;
    nmf_sta_config_default(&c);
    if (nmf_sta_config_load(fuzz_file(0, data, size), &c) != NMF_OK) return 0;
    if (nmf_sta_config_validate(&c) != NMF_OK) abort(); /* load promises a valid design */
    char *ini = nmf_sta_config_to_ini(&c);
    if (!ini) abort();
    nmf_sta_config back;
    nmf_sta_config_default(&back);
    if (nmf_sta_config_parse(ini, "round trip", &back) != NMF_OK) abort();
    char *ini2 = nmf_sta_config_to_ini(&back);
    if (!ini2 || strcmp(ini, ini2) != 0) abort();
    free(ini);
    free(ini2);
    return 0;
}
