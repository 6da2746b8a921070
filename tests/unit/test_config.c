/*
 * test_config.c: conf/nginfer.cfg parsing: defaults, the shipped file, and
 * every kind of bad file stopping with file:line and the key named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../fcgi/app.h"
#include "harness.h"

static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/nf-test-config-%d.cfg", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static const struct {
    const char *name, *text, *want;
} bad[] = {
    {"unknown key", "model = \"m.onnx\";\nworkerz = 2;\n", ":2: unknown key 'workerz'"},
    {"string for int", "workers = \"two\";\n", ":1: 'workers' must be an integer"},
    {"int out of range", "\n\nworkers = 0;\n", ":3: 'workers' = 0 is out of range"},
    {"bool as int", "warmup = 1;\n", ":1: 'warmup' must be true or false"},
    {"syntax error", "model = \"m.onnx\";\nworkers = = 2;\n", ":2: syntax error"},
    {"bad listen", "listen = \"127.0.0.1:99999\";\n", ":1: 'listen' must be host:port"},
    {"empty model", "model = \"\";\n", ":1: 'model' must name a file"},
    {"int for string", "model = 3;\n", ":1: 'model' must be a string"},
    /* libconfig 1.5 exit()s on an include it cannot read (fuzz regression) */
    {"include refused", "workers = 2;\n@include \".\";\n", ":2: @include is not supported"},
};

int main(void)
{
    nf_config cfg;
    nf_err err = {0};
    int rc = nf_config_load(&cfg, NULL, &err);
    T_CHECK("config defaults", rc == NF_OK && cfg.workers == 2 && cfg.max_body_bytes == 6291456 && cfg.threads == 1 &&
                                   cfg.warmup && cfg.access_log,
            "rc %d", rc);
    nf_config_free(&cfg);

    rc = nf_config_load(&cfg, "conf/nginfer.cfg", &err);
    T_CHECK("config shipped file loads", rc == NF_OK, "%s", err.msg);
    if (rc == NF_OK) {
        T_CHECK("config model path relative to the file",
                strcmp(nf_app_model_path(&cfg), "conf/../models/default.onnx") == 0, "got %s",
                nf_app_model_path(&cfg));
        nf_config_free(&cfg);
    }

    rc = nf_config_load(&cfg, "/nonexistent/nginfer.cfg", &err);
    T_CHECK("config missing file names it", rc != NF_OK && strstr(err.msg, "/nonexistent/nginfer.cfg") != NULL, "%s",
            err.msg);

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *path = write_tmp(bad[i].text);
        rc = nf_config_load(&cfg, path, &err);
        char name[128];
        snprintf(name, sizeof name, "config rejects %s", bad[i].name);
        T_CHECK(name, rc != NF_OK && strstr(err.msg, path) != NULL && strstr(err.msg, bad[i].want) != NULL,
                "rc %d msg '%s', want '%s'", rc, err.msg, bad[i].want);
        unlink(path);
    }
    return T_DONE();
}
