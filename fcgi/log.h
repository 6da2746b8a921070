/*
 * log.h: the worker's two log lines, JSON on stderr: one at start-up (model
 * load and warm-up times: SageMaker's ModelSetupTime) and one per request.
 */
#ifndef NF_LOG_H
#define NF_LOG_H

#include "app.h"

void nf_log_ready(const nf_app *app, const char *event);
void nf_log_access(const nf_req *req, const nf_resp *resp, size_t bytes_in, double latency_us);

/* Access lines are written at once (one write(2) each) unless batching is
 * on: then they collect in a buffer of at most NF_LOG_BATCH bytes (under
 * PIPE_BUF, so a batch of whole lines is still one atomic write) and go
 * out when it is full or at nf_log_flush, which the FastCGI worker calls
 * whenever it is about to wait for a request (fcgi/conn.h) and at exit.
 * So a busy worker writes one line in ~20 requests, an idle one has
 * written everything; a worker killed while busy loses what it holds. */
#define NF_LOG_BATCH 4000
void nf_log_batch(int on);
void nf_log_flush(void);
/* Decimal digits of v into o (room for 20 bytes); returns how many. */
size_t nf_fmt_u64(char *o, uint64_t v);

#endif
