/*
 * fcgi_fixed.c: the architecture's limit for bench/run.sh. A FastCGI
 * responder that reads the whole request body and answers every request
 * with the same small JSON (the size of a 1-row nginfer answer), doing no
 * parsing and no inference. Served exactly like nginfer: tools/nginfer-serve
 * (same nginx template, spawn-fcgi + multiwatch, same worker count) with
 * -b pointing at a directory whose nginfer-worker is a wrapper that passes
 * config queries and the model check to the real worker and execs this
 * program to serve (bench/run.sh writes it). nginfer's throughput divided by
 * this one's is the efficiency figure.
 *
 *   gcc -O2 -o bench/work/fcgi_fixed bench/fcgi_fixed.c -lfcgi
 *
 * Like the worker, it takes its listening socket on fd 0 from spawn-fcgi
 * and handles one request at a time. SIGTERM (multiwatch) ends it.
 */
#include <fcgiapp.h>

static const char answer[] =
    "Status: 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 38\r\n"
    "\r\n"
    "{\"predictions\":[[175.47991943359375]]}";

int main(void)
{
    static char buf[65536];
    FCGX_Request req;
    if (FCGX_Init() != 0 || FCGX_InitRequest(&req, 0, 0) != 0)
        return 1;
    while (FCGX_Accept_r(&req) >= 0) {
        while (FCGX_GetStr(buf, sizeof buf, req.in) > 0)
            ; /* read (and drop) the whole body, as a real worker must */
        FCGX_PutStr(answer, (int)sizeof answer - 1, req.out);
        FCGX_Finish_r(&req);
    }
    return 0;
}
