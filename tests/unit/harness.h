/*
 * harness.h: the ten-line test harness every unit test uses.
 * Each check prints "PASS name" or "FAIL name: why" on stdout; tests/run.sh
 * counts those lines across all suites. main() returns nf_t_failed != 0.
 */
#ifndef NF_HARNESS_H
#define NF_HARNESS_H

#include <stdio.h>
#include <string.h>

static int nf_t_passed, nf_t_failed;

#define T_CHECK(name, cond, ...)                                      \
    do {                                                              \
        if (cond) {                                                   \
            nf_t_passed++;                                            \
            printf("PASS %s\n", (name));                              \
        } else {                                                      \
            nf_t_failed++;                                            \
            printf("FAIL %s: ", (name));                              \
            printf(__VA_ARGS__);                                      \
            printf(" (%s:%d)\n", __FILE__, __LINE__);                 \
        }                                                             \
        fflush(stdout);                                               \
    } while (0)

#define T_DONE()                                                      \
    (printf("# %d passed, %d failed\n", nf_t_passed, nf_t_failed),    \
     nf_t_failed != 0)

#endif
