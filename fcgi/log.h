/*
 * log.h: the worker's two log lines, JSON on stderr: one at start-up (model
 * load and warm-up times: SageMaker's ModelSetupTime) and one per request.
 */
#ifndef NF_LOG_H
#define NF_LOG_H

#include "app.h"

void nf_log_ready(const nf_app *app, const char *event);
void nf_log_access(const nf_req *req, const nf_resp *resp, size_t bytes_in, double latency_us);

#endif
