/*
 * fuzz_config.c: nf_config_load on arbitrary bytes. config.c reads a file
 * (libconfig's config_read_file), so the input goes to a memfd once per run
 * and the loader reads /proc/self/fd/N: no disk writes, no temp names.
 * Oracles: a loaded config has every value in its documented range; a
 * refused one says why (the file named is ours or an @include'd one).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fd < 0) {
        fd = memfd_create("nf-fuzz-config", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    nf_config cfg;
    nf_err err = {0};
    int rc = nf_config_load(&cfg, path, &err);
    if (rc == 0) {
        FZ_ASSERT(cfg.model && cfg.model[0] && cfg.model_name && cfg.model_version && cfg.listen);
        FZ_ASSERT(cfg.workers >= 1 && cfg.workers <= 1024 && cfg.threads >= 1 && cfg.threads <= 256);
        FZ_ASSERT(cfg.max_body_bytes >= 1 && cfg.max_body_bytes <= (1L << 30));
        FZ_ASSERT(cfg.max_rows >= 1 && cfg.max_rows <= 100000000);
        FZ_ASSERT(cfg.warmup == 0 || cfg.warmup == 1);
        FZ_ASSERT(strlen(nf_app_model_path(&cfg)) > 0);
        nf_config_free(&cfg);
    } else {
        FZ_ASSERT(rc == NF_EINVAL || rc == NF_EIO || rc == NF_ENOMEM);
        FZ_ASSERT(err.code == rc && err.msg[0] != '\0');
    }
    return 0;
}
