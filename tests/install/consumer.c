/* A program that uses an installed nmformer, as a user would: built by tests/cli/test_install.sh
 * through pkg-config and through find_package, against the static and the shared library.
 * Checks the version it was compiled against is the one it runs with, that errors carry the
 * library's message, and one real N:M product against numbers worked out by hand. */
#include <stdio.h>
#include <string.h>

#include <nmformer/nmformer.h>

#define ROWS 2
#define COLS 8

static int fail(const char *what, nmf_status st) {
    fprintf(stderr, "consumer: %s: %s (%s)\n", what, nmf_strerror(st), nmf_last_error());
    return 1;
}

int main(void) {
    if (strcmp(nmf_version(), NMF_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: runs %s, compiled against %s\n", nmf_version(),
                NMF_VERSION_STRING);
        return 1;
    }
    /* A bad pattern is refused with a detail message from inside the library. */
    nmf_pattern p;
    if (nmf_pattern_parse("4:4", &p) != NMF_ERR_INVALID_ARG || nmf_last_error()[0] == '\0') {
        fprintf(stderr, "consumer: 4:4 was not refused with a message\n");
        return 1;
    }
    nmf_status st = nmf_pattern_parse("2:4", &p);
    if (st != NMF_OK) return fail("2:4", st);

    /* W [2][8]: 2:4 keeps the two largest |w| of every group of 4:
     *   row 0: {1,-5,2,4 | 3,0,-6,1}  -> {-5,4 | 3,-6}
     *   row 1: {0,2,0,-1 | 7,7,0,0}   -> {2,-1 | 7,7}  */
    const float w[ROWS * COLS] = {1, -5, 2, 4, 3, 0, -6, 1, 0, 2, 0, -1, 7, 7, 0, 0};
    const float x[COLS] = {1, 2, 3, 4, 5, 6, 7, 8};
    const float bias[ROWS] = {0.5f, -1};
    /* y0 = -5*2 + 4*4 + 3*5 - 6*7 + 0.5 = -20.5;  y1 = 2*2 - 1*4 + 7*5 + 7*6 - 1 = 76 */
    const float expect[ROWS] = {-20.5f, 76};

    nmf_nm_matrix a;
    st = nmf_nm_pack(&a, w, ROWS, COLS, p, 0);
    if (st != NMF_OK) return fail("pack", st);
    nmf_linear *lin = NULL;
    st = nmf_linear_create_nm(&lin, &a);
    nmf_nm_free(&a);
    if (st != NMF_OK) return fail("linear", st);
    float y[ROWS] = {0};
    st = nmf_linear_forward(y, x, lin, bias, 1, NMF_ACT_NONE);
    nmf_linear_free(lin);
    if (st != NMF_OK) return fail("forward", st);
    for (int r = 0; r < ROWS; r++)
        if (y[r] != expect[r]) { /* small integers: every kernel computes them exactly */
            fprintf(stderr, "consumer: y[%d] = %g, expected %g\n", r, y[r], expect[r]);
            return 1;
        }
    printf("nmformer %s: 2:4 product ok (%g %g)\n", nmf_version(), y[0], y[1]);
    return 0;
}
