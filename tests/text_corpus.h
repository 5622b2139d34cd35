/* A small synthetic corpus for the tests of the byte-level LM (calibration, evaluation,
 * fine-tuning): `docs` '%'-separated documents of English-like sentences drawn from a fixed
 * word list by a fixed LCG, written to one file, so that every split (5% / 5% / 90% by document
 * hash) holds some kilobytes. Same arguments, same file. */
#ifndef NMF_TEST_TEXT_CORPUS_H
#define NMF_TEST_TEXT_CORPUS_H

#include <stdint.h>
#include <stdio.h>

/* Writes the corpus to path; returns 0 on success. */
static int text_corpus_write(const char *path, int docs, uint32_t seed) {
    static const char *const words[] = {"the", "cat", "sat", "on", "a", "mat", "and", "dog",
                                        "ran", "to", "house", "with", "red", "door", "old", "man",
                                        "saw", "bird", "in", "tree", "quickly", "slowly", "big"};
    const uint32_t nw = (uint32_t)(sizeof words / sizeof words[0]);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t r = seed;
    for (int d = 0; d < docs; d++) {
        fprintf(f, "Story %d.\n", d); /* distinct documents: distinct hashes */
        for (int s = 0; s < 3; s++) {
            for (int w = 0; w < 9; w++) {
                r = r * 1664525u + 1013904223u;
                fprintf(f, "%s%s", w ? " " : "", words[(r >> 8) % nw]);
            }
            fputs(".\n", f);
        }
        fputs("%\n", f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

#endif
