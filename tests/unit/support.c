#include "support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void wake_cb(uv_timer_t *t)
{
    (void)t;
}

bool sk_test_run_until(uv_loop_t *loop, bool (*cond)(void *ctx), void *ctx,
                       unsigned timeout_ms)
{
    /* A repeating timer guarantees that UV_RUN_ONCE returns regularly even
     * when nothing else happens, so the deadline is honoured. */
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, wake_cb, 10, 10);
    uint64_t deadline = uv_now(loop) + timeout_ms;
    bool ok = cond(ctx);
    while (!ok && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_ONCE);
        ok = cond(ctx);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool never(void *ctx)
{
    (void)ctx;
    return false;
}

void sk_test_run_for(uv_loop_t *loop, unsigned ms)
{
    sk_test_run_until(loop, never, NULL, ms);
}

static void print_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    print_error("leaked handle: %s (active %d, closing %d)\n",
                uv_handle_type_name(h->type), uv_is_active(h),
                uv_is_closing(h));
}

void sk_test_loop_close(uv_loop_t *loop)
{
    uint64_t deadline = uv_now(loop) + 5000;
    while (uv_loop_alive(loop) && uv_now(loop) < deadline) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_update_time(loop);
    }
    int rc = uv_loop_close(loop);
    if (rc != 0)
        uv_walk(loop, print_handle, NULL);
    assert_int_equal(rc, 0);
}
