/* Fuzz target: the history parser and the checker behind it. Whatever the
 * input, parsing either fails with a message or yields a history the
 * checker can run over (on a small budget) without crashing or leaking. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "history.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    struct chaos_history h;
    char err[256];
    if (!chaos_history_parse((const char *)data, size, &h, err, sizeof err)) {
        if (!err[0] || h.n != 0)
            abort(); /* a failure says why and leaves nothing behind */
        return 0;
    }
    struct check_opts opts = {.max_steps = 20000};
    struct check_report r;
    enum check_verdict v = chaos_check(&h, &opts, &r);
    if ((v == CHECK_ANOMALY) != (r.anomalies > 0) || !r.text)
        abort();
    check_report_free(&r);
    chaos_history_free(&h);
    return 0;
}
