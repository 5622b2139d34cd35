/* The .nmf family harness body, shared by fuzz_nmf.c (CRC checks on) and fuzz_nmf_nocrc.c (off). */
#ifndef NMF_FUZZ_NMF_FAMILY_H
#define NMF_FUZZ_NMF_FAMILY_H
#include <stddef.h>
#include <stdint.h>
/* Reads data as an .nmf family (with its layout) and exercises every candidate. */
void fuzz_nmf_family(const uint8_t *data, size_t size);
#endif
