/* libFuzzer harness: the .nmf family reader with its CRC checks bypassed (test seam in
 * src/io/io_internal.h), so that mutations reach the JSON, the payload table and the packed
 * positions instead of stopping at the checksums. */
#include "fuzz_common.h"
#include "fuzz_nmf_family.h"
#include "io/io_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_init();
    nmf_io_fuzz_skip_crc = 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_nmf_family(data, size);
    return 0;
}
