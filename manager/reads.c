/* The read path's guarantees (reads.h in manager_internal.h):
 * read-your-writes across managers and linearizable reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager_internal.h"
#include "skiff/mem.h"

/* How long a read may wait for this manager to catch up. */
#define CATCH_UP_MS 2000

enum wait_kind { WAIT_INDEX, WAIT_BARRIER };

struct read_wait {
    struct sk_manager *m;
    struct call *c; /* NULL once answered: only the barrier holds it */
    enum wait_kind kind;
    read_fn fn;        /* serves the read; NULL: send `reply` */
    uint64_t index;    /* WAIT_INDEX: until applied >= index */
    uint64_t deadline; /* uv_now ms */
    int status;        /* reply to send (forwarded writes) */
    char *reply;       /* heap, or NULL */
    size_t reply_len;
    struct sk_raft_barrier barrier;
    bool barrier_pending;
    struct sk_list link; /* in m->reads, while c is set */
};

uint64_t reads_applied(const struct sk_manager *m)
{
    return sk_raft_applied_index(&m->raft);
}

static void wait_free(struct read_wait *w)
{
    free(w->reply);
    free(w);
}

/* Answers the wait's call (the read, the reply, or err) and forgets it;
 * the struct lives on while its barrier is pending. */
static void wait_finish(struct read_wait *w, const struct sk_err *err)
{
    struct call *c = w->c;
    w->c = NULL;
    sk_list_remove(&w->link);
    if (err)
        call_error(c, err);
    else if (w->fn)
        w->fn(c);
    else
        call_raw(c, w->status, "application/json", w->reply ? w->reply : "",
                 w->reply_len);
    if (!w->barrier_pending)
        wait_free(w);
}

static struct read_wait *wait_new(struct call *c, enum wait_kind kind)
{
    struct sk_manager *m = c->m;
    struct read_wait *w = sk_calloc(1, sizeof *w);
    w->m = m;
    w->c = c;
    w->kind = kind;
    w->deadline = uv_now(m->loop) + CATCH_UP_MS;
    sk_list_insert_head(&m->reads, &w->link);
    return w;
}

static void barrier_cb(struct sk_raft_barrier *req, enum sk_rc rc)
{
    struct read_wait *w = req->data;
    w->barrier_pending = false;
    if (!w->c) { /* answered already (the manager stopped) */
        wait_free(w);
        return;
    }
    struct sk_err err;
    if (rc != SK_OK)
        sk_err_set(&err, SK_EUNAVAIL,
                   "this manager could not confirm it still leads (%s): "
                   "retry",
                   sk_rc_name(rc));
    wait_finish(w, rc == SK_OK ? NULL : &err);
}

void reads_serve(struct call *c, read_fn fn, uint64_t min_index,
                 bool linearizable)
{
    struct sk_manager *m = c->m;
    if (linearizable) {
        /* The leader answers only once a barrier in its own term commits:
         * a new leader does not know what is committed before that, and
         * a deposed one that still believes it leads finds out. */
        struct read_wait *w = wait_new(c, WAIT_BARRIER);
        w->fn = fn;
        w->barrier.data = w;
        struct sk_err err;
        if (sk_raft_barrier(&m->raft, &w->barrier, barrier_cb, &err) != SK_OK) {
            err.code = SK_EUNAVAIL;
            wait_finish(w, &err);
            return;
        }
        w->barrier_pending = true;
        return;
    }
    if (reads_applied(m) >= min_index) {
        fn(c);
        return;
    }
    struct read_wait *w = wait_new(c, WAIT_INDEX);
    w->fn = fn;
    w->index = min_index;
}

void reads_reply_after(struct call *c, uint64_t index, int status,
                       const char *body, size_t len)
{
    if (reads_applied(c->m) >= index) {
        call_raw(c, status, "application/json", body ? body : "", len);
        return;
    }
    struct read_wait *w = wait_new(c, WAIT_INDEX);
    w->index = index;
    w->status = status;
    w->reply = sk_malloc(len + 1);
    memcpy(w->reply, body ? body : "", len);
    w->reply[len] = '\0';
    w->reply_len = len;
}

void reads_check(struct sk_manager *m)
{
    uint64_t applied = reads_applied(m), now = uv_now(m->loop);
    struct sk_list *it, *next;
    sk_list_each_safe(it, next, &m->reads)
    {
        struct read_wait *w = sk_list_entry(it, struct read_wait, link);
        if (w->kind != WAIT_INDEX)
            continue;
        if (applied >= w->index) {
            wait_finish(w, NULL);
        } else if (now >= w->deadline) {
            struct sk_err err;
            sk_err_set(&err, SK_EUNAVAIL,
                       "this manager is behind (it has applied Raft index "
                       "%llu, the change you made is at %llu): retry with "
                       "another manager",
                       (unsigned long long)applied,
                       (unsigned long long)w->index);
            wait_finish(w, &err);
        }
    }
}

void reads_close(struct sk_manager *m)
{
    struct sk_err err;
    sk_err_set(&err, SK_EUNAVAIL, "this manager is stopping: retry");
    struct read_wait *w;
    while ((w = sk_list_first(&m->reads, struct read_wait, link)))
        wait_finish(w, &err);
}
