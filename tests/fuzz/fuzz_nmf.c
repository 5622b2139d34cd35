/* libFuzzer harness: the .nmf family reader, CRC checks on (what a user's file meets). */
#include "fuzz_common.h"
#include "fuzz_nmf_family.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_nmf_family(data, size);
    return 0;
}
