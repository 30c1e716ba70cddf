#include "skiff/raft_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

#define POLL_MS 25

static enum sk_rc raft_err(struct sk_err *err, const char *what, int rv,
                           const char *detail)
{
    enum sk_rc code = SK_EINTERNAL;
    switch (rv) {
    case RAFT_NOTLEADER:
        code = SK_ENOTLEADER;
        break;
    case RAFT_LEADERSHIPLOST:
    case RAFT_NOCONNECTION:
    case RAFT_CANCELED:
    case RAFT_SHUTDOWN:
    case RAFT_NOSPACE:
        code = SK_EUNAVAIL;
        break;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY:
        code = SK_ECONFLICT;
        break;
    case RAFT_NOTFOUND:
        code = SK_ENOTFOUND;
        break;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        code = SK_EEXIST;
        break;
    case RAFT_BADROLE:
    case RAFT_INVALID:
    case RAFT_BADID:
        code = SK_EINVAL;
        break;
    case RAFT_TOOBIG:
        code = SK_ETOOBIG;
        break;
    case RAFT_IOERR:
    case RAFT_CORRUPT:
        code = SK_EIO;
        break;
    }
    return sk_err_set(err, code, "%s: %s%s%s", what, raft_strerror(rv),
                      detail && *detail ? ": " : "", detail ? detail : "");
}

/* ---- storage failures ----
 *
 * libraft 0.22.1 retries a failed append write (and crashes doing so),
 * drops a failed segment close, retries segment creation and snapshot
 * writes silently, and carries on from memory; its user hears nothing
 * (README, "Notes on libraft"). What it does leave: its storage code writes
 * io.errmsg only on an error, and traces its failures as diagnostics. */

/* libraft's storage sources, as its diagnostics name them (__FILE__). */
static bool storage_source(const char *file)
{
    static const char *const names[] = {
        "uv_append.c",  "uv_finalize.c", "uv_prepare.c",
        "uv_segment.c", "uv_snapshot.c", "uv_truncate.c",
    };
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(base, names[i]) == 0)
            return true;
    return false;
}

/* A storage diagnostic of libraft 0.22 reports a failure when it names one
 * ("retry failed write (write failed: -1)", "retry snapshot write", "can't
 * create segment ...", "retry creating segment open-4") or
 * carries an error after ": " ("truncate segment open-1: rename: ...");
 * the others ("finalize open-1 into 1-147", "enqueue 1 entries") never do. */
static bool reports_failure(const char *msg)
{
    return strstr(msg, "fail") || strstr(msg, "retry") ||
           strstr(msg, "can't") || strstr(msg, ": ");
}

/* libraft's storage calls this on the loop thread or a threadpool thread. */
static void storage_trace(struct raft_tracer *t, int type, const void *data)
{
    const struct raft_tracer_info *info = data;
    if (type != RAFT_TRACER_DIAGNOSTIC ||
        !storage_source(info->diagnostic.file) ||
        !reports_failure(info->diagnostic.message))
        return;
    struct sk_raft_node *n = t->impl;
    uv_mutex_lock(&n->storage_lock);
    if (!n->storage_failure[0])
        snprintf(n->storage_failure, sizeof n->storage_failure, "%s",
                 info->diagnostic.message);
    uv_mutex_unlock(&n->storage_lock);
}

/* On the loop, every poll: true (and storage_error_cb called) once libraft
 * reported a storage failure. */
static bool storage_failed(struct sk_raft_node *n)
{
    char why[RAFT_ERRMSG_BUF_SIZE];
    uv_mutex_lock(&n->storage_lock);
    snprintf(why, sizeof why, "%s", n->storage_failure);
    uv_mutex_unlock(&n->storage_lock);
    if (!why[0])
        snprintf(why, sizeof why, "%s", n->io.errmsg);
    if (!why[0])
        return false;
    n->failed = true;
    uv_timer_stop(&n->poll);
    struct sk_err err;
    uint64_t stored = n->raft.last_stored;
    uint64_t last = raft_last_index(&n->raft);
    if (last > stored)
        sk_err_set(&err, SK_EIO,
                   "Raft store in %s failed: %s (entries %llu..%llu not on "
                   "disk)",
                   n->dir, why, (unsigned long long)stored + 1,
                   (unsigned long long)last);
    else
        sk_err_set(&err, SK_EIO, "Raft store in %s failed: %s", n->dir, why);
    sk_err_copy(&n->failure, &err);
    if (n->cfg.storage_error_cb)
        n->cfg.storage_error_cb(n->cfg.storage_error_ctx, &err);
    return true;
}

/* Requests need a started node whose store has not failed. */
static enum sk_rc check_running(const struct sk_raft_node *n,
                                struct sk_err *err)
{
    if (n->failed)
        return sk_err_set(err, SK_EIO, "%s", n->failure.msg);
    if (n->closing || !n->started)
        return sk_err_set(err, SK_EUNAVAIL, "raft is not running");
    return SK_OK;
}

static void poll_cb(uv_timer_t *t)
{
    struct sk_raft_node *n = t->data;
    if (!n->started || n->closing || storage_failed(n))
        return;
    int state = raft_state(&n->raft);
    uint64_t term = raft_current_term(&n->raft);
    const char *addr;
    raft_id leader;
    raft_leader(&n->raft, &leader, &addr);
    if (state != n->last_state || term != n->last_term ||
        leader != n->last_leader) {
        n->last_state = state;
        n->last_term = term;
        n->last_leader = leader;
        if (n->cfg.state_cb)
            n->cfg.state_cb(n->cfg.state_ctx);
    }
}

enum sk_rc sk_raft_node_init(struct sk_raft_node *n,
                             const struct sk_raft_node_config *cfg,
                             struct sk_err *err)
{
    memset(n, 0, sizeof *n);
    n->cfg = *cfg;
    n->dir = sk_strdup(cfg->dir);
    n->address = sk_strdup(cfg->address);
    n->listen_host = sk_strdup(cfg->listen_host);
    n->cfg.dir = n->dir;
    n->cfg.address = n->address;
    n->cfg.listen_host = n->listen_host;
    n->last_state = -1;
    if (!n->cfg.max_entry_bytes)
        n->cfg.max_entry_bytes = 4u << 20;

    struct sk_raft_transport_config tc = {
        .loop = cfg->loop,
        .listen_host = cfg->listen_host,
        .listen_port = cfg->listen_port,
        .server_tls = cfg->server_tls,
        .client_tls = cfg->client_tls,
        .authorize = cfg->authorize,
        .authorize_ctx = cfg->authorize_ctx,
        .reject_cb = cfg->reject_cb,
        .reject_ctx = cfg->reject_ctx,
    };
    enum sk_rc rc = sk_raft_transport_init(&n->transport, &tc, err);
    if (rc != SK_OK)
        goto fail;
    int rv = raft_uv_init(&n->io, cfg->loop, n->dir, &n->transport);
    if (rv != 0) {
        raft_err(err, "raft storage", rv, n->io.errmsg);
        rc = sk_err_wrap(err, "Raft store in %s", n->dir);
        sk_raft_transport_release(&n->transport);
        goto fail;
    }
    uv_mutex_init(&n->storage_lock);
    n->tracer =
        (struct raft_tracer){.impl = n, .version = 2, .emit = storage_trace};
    raft_uv_set_tracer(&n->io, &n->tracer);
    rv = raft_init(&n->raft, &n->io, cfg->fsm, cfg->id, n->address);
    if (rv != 0) {
        raft_err(err, "raft init", rv, raft_errmsg(&n->raft));
        rc = sk_err_wrap(err, "Raft store in %s", n->dir);
        raft_uv_close(&n->io);
        uv_mutex_destroy(&n->storage_lock);
        sk_raft_transport_release(&n->transport);
        goto fail;
    }
    /* 750 ms (randomised up to 1.5 s by raft): two election rounds fit
     * in the 3 s a client may wait after losing the leader, and with a
     * 100 ms heartbeat a follower still waits out 7 missed ones. */
    raft_set_election_timeout(
        &n->raft, cfg->election_timeout_ms ? cfg->election_timeout_ms : 750);
    raft_set_heartbeat_timeout(
        &n->raft, cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 100);
    raft_set_snapshot_threshold(
        &n->raft, cfg->snapshot_threshold ? cfg->snapshot_threshold : 1024);
    raft_set_snapshot_trailing(
        &n->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 512);
    /* Pre-vote keeps a rejoining, partitioned manager from forcing a new
     * election with its inflated term. */
    raft_set_pre_vote(&n->raft, true);
    uv_timer_init(cfg->loop, &n->poll);
    n->poll.data = n;
    return SK_OK;
fail:
    free(n->dir);
    free(n->address);
    free(n->listen_host);
    n->dir = n->address = n->listen_host = NULL;
    return rc;
}

static enum sk_rc single_voter(struct sk_raft_node *n,
                               struct raft_configuration *conf,
                               struct sk_err *err)
{
    raft_configuration_init(conf);
    int rv = raft_configuration_add(conf, n->cfg.id, n->address, RAFT_VOTER);
    if (rv != 0) {
        raft_configuration_close(conf);
        return raft_err(err, "raft configuration", rv, NULL);
    }
    return SK_OK;
}

enum sk_rc sk_raft_node_bootstrap(struct sk_raft_node *n, struct sk_err *err)
{
    struct raft_configuration conf;
    enum sk_rc rc = single_voter(n, &conf, err);
    if (rc != SK_OK)
        return rc;
    int rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP)
        return sk_err_set(err, SK_EEXIST, "raft state exists in %s", n->dir);
    if (rv != 0)
        return raft_err(err, "raft bootstrap", rv, raft_errmsg(&n->raft));
    return SK_OK;
}

enum sk_rc sk_raft_node_recover(struct sk_raft_node *n, struct sk_err *err)
{
    struct raft_configuration conf;
    enum sk_rc rc = single_voter(n, &conf, err);
    if (rc != SK_OK)
        return rc;
    int rv = raft_recover(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0)
        return raft_err(err, "raft recover", rv, raft_errmsg(&n->raft));
    return SK_OK;
}

enum sk_rc sk_raft_node_start(struct sk_raft_node *n, struct sk_err *err)
{
    int rv = raft_start(&n->raft);
    if (rv != 0) {
        raft_err(err, "raft start", rv, raft_errmsg(&n->raft));
        return sk_err_wrap(err, "Raft store in %s", n->dir);
    }
    n->started = true;
    /* From here on, libraft writes io.errmsg only on a storage error. */
    n->io.errmsg[0] = 0;
    uv_timer_start(&n->poll, poll_cb, 0, POLL_MS);
    return SK_OK;
}

static void maybe_closed(struct sk_raft_node *n)
{
    if (--n->closes_pending > 0)
        return;
    raft_uv_close(&n->io);
    uv_mutex_destroy(&n->storage_lock);
    sk_raft_transport_release(&n->transport);
    free(n->dir);
    free(n->address);
    free(n->listen_host);
    n->dir = n->address = n->listen_host = NULL;
    if (n->close_cb)
        n->close_cb(n);
}

static void raft_closed_cb(struct raft *r)
{
    struct sk_raft_node *n =
        (struct sk_raft_node *)((char *)r -
                                offsetof(struct sk_raft_node, raft));
    maybe_closed(n);
}

static void poll_closed_cb(uv_handle_t *h)
{
    maybe_closed(h->data);
}

void sk_raft_node_close(struct sk_raft_node *n,
                        void (*cb)(struct sk_raft_node *n))
{
    if (n->closing)
        return;
    n->closing = true;
    n->close_cb = cb;
    n->closes_pending = 2;
    uv_close((uv_handle_t *)&n->poll, poll_closed_cb);
    raft_close(&n->raft, raft_closed_cb);
}

/* ---- proposals ---- */

static void apply_cb(struct raft_apply *a, int status, void *result)
{
    struct sk_raft_propose *req = a->data;
    struct sk_err err;
    sk_err_clear(&err);
    enum sk_rc rc;
    if (status != 0) {
        rc = raft_err(&err, "change not committed", status,
                      status == RAFT_LEADERSHIPLOST
                          ? "leadership lost: the change may or may not have "
                            "been applied"
                          : NULL);
    } else {
        rc = req->node->cfg.fsm_result(req->node->cfg.fsm, a->index, result,
                                       &err);
    }
    req->cb(req, rc, &err);
}

enum sk_rc sk_raft_propose(struct sk_raft_node *n, struct sk_raft_propose *req,
                           const char *cmd, size_t len, sk_raft_propose_cb cb,
                           struct sk_err *err)
{
    if (check_running(n, err) != SK_OK)
        return err->code;
    if (raft_state(&n->raft) != RAFT_LEADER)
        return sk_err_set(err, SK_ENOTLEADER, "this manager is not the leader");
    /* libraft refuses proposals during a leadership transfer, and whether
     * it freed the buffer then is not defined: ask first. */
    if (raft_transferee(&n->raft) != 0)
        return sk_err_set(err, SK_ENOTLEADER,
                          "this manager is handing leadership over");
    if (len > n->cfg.max_entry_bytes)
        return sk_err_set(err, SK_ETOOBIG,
                          "change of %zu bytes exceeds the %zu-byte limit", len,
                          n->cfg.max_entry_bytes);
    /* libraft wants entry buffers in whole 8-byte words; JSON does not mind
     * trailing spaces. */
    size_t padded = (len + 7) & ~(size_t)7;
    struct raft_buffer buf = {.base = raft_malloc(padded), .len = padded};
    if (!buf.base)
        sk_oom(padded);
    memcpy(buf.base, cmd, len);
    memset((char *)buf.base + len, ' ', padded - len);
    req->node = n;
    req->cb = cb;
    req->apply.data = req;
    int rv = raft_apply(&n->raft, &req->apply, &buf, 1, apply_cb);
    if (rv != 0) {
        /* libraft 0.22 may or may not have taken the buffer when this
         * fails (an I/O failure after the entry was handed to the log
         * frees it; a refusal before does not). A leak beats a double
         * free, and both are rare: we check leadership first. */
        return raft_err(err, "propose", rv, raft_errmsg(&n->raft));
    }
    req->index = req->apply.index;
    return SK_OK;
}

static void barrier_cb(struct raft_barrier *b, int status)
{
    struct sk_raft_barrier *req = b->data;
    req->cb(req, status == 0 ? SK_OK : SK_EUNAVAIL);
}

enum sk_rc sk_raft_barrier(struct sk_raft_node *n, struct sk_raft_barrier *req,
                           sk_raft_barrier_cb cb, struct sk_err *err)
{
    if (check_running(n, err) != SK_OK)
        return err->code;
    req->cb = cb;
    req->barrier.data = req;
    int rv = raft_barrier(&n->raft, &req->barrier, barrier_cb);
    if (rv != 0)
        return raft_err(err, "barrier", rv, raft_errmsg(&n->raft));
    return SK_OK;
}

/* ---- membership ---- */

static void change_cb(struct raft_change *c, int status)
{
    struct sk_raft_change *req = c->data;
    struct sk_err err;
    enum sk_rc rc = SK_OK;
    if (status != 0)
        rc = raft_err(&err, "membership change", status, NULL);
    req->cb(req, rc, rc == SK_OK ? "" : err.msg);
}

static void transfer_cb(struct raft_transfer *t)
{
    struct sk_raft_change *req = t->data;
    /* raft_transfer reports no status: success means someone else leads. */
    bool moved = raft_state(&req->node->raft) != RAFT_LEADER;
    req->cb(req, moved ? SK_OK : SK_EUNAVAIL,
            moved ? "" : "leadership transfer did not complete");
}

enum sk_rc sk_raft_change(struct sk_raft_node *n, struct sk_raft_change *req,
                          enum sk_raft_change_type type, uint64_t id,
                          const char *address, sk_raft_change_cb cb,
                          struct sk_err *err)
{
    if (check_running(n, err) != SK_OK)
        return err->code;
    req->type = type;
    req->id = id;
    req->node = n;
    req->cb = cb;
    int rv;
    switch (type) {
    case SK_RAFT_ADD_SPARE:
        req->u.change.data = req;
        rv = raft_add(&n->raft, &req->u.change, id, address, change_cb);
        break;
    case SK_RAFT_MAKE_STANDBY:
        req->u.change.data = req;
        rv = raft_assign(&n->raft, &req->u.change, id, RAFT_STANDBY, change_cb);
        break;
    case SK_RAFT_MAKE_VOTER:
        req->u.change.data = req;
        rv = raft_assign(&n->raft, &req->u.change, id, RAFT_VOTER, change_cb);
        break;
    case SK_RAFT_REMOVE:
        req->u.change.data = req;
        rv = raft_remove(&n->raft, &req->u.change, id, change_cb);
        break;
    case SK_RAFT_TRANSFER:
        req->u.transfer.data = req;
        rv = raft_transfer(&n->raft, &req->u.transfer, id, transfer_cb);
        break;
    default:
        return sk_err_set(err, SK_EINVAL, "unknown membership change");
    }
    if (rv != 0)
        return raft_err(err, "membership change", rv, raft_errmsg(&n->raft));
    return SK_OK;
}

/* ---- state ---- */

bool sk_raft_is_leader(const struct sk_raft_node *n)
{
    return n->started && !n->closing && !n->failed &&
           raft_state((struct raft *)&n->raft) == RAFT_LEADER;
}

uint64_t sk_raft_leader(const struct sk_raft_node *n, const char **address)
{
    raft_id id = 0;
    const char *addr = NULL;
    if (n->started && !n->closing && !n->failed)
        raft_leader((struct raft *)&n->raft, &id, &addr);
    if (address)
        *address = addr;
    return id;
}

const char *sk_raft_state_name(const struct sk_raft_node *n)
{
    if (!n->started)
        return "stopped";
    if (n->failed)
        return "failed";
    return raft_state_name(raft_state((struct raft *)&n->raft));
}

uint64_t sk_raft_term(const struct sk_raft_node *n)
{
    return raft_current_term((struct raft *)&n->raft);
}

uint64_t sk_raft_commit_index(const struct sk_raft_node *n)
{
    return raft_commit_index((struct raft *)&n->raft);
}

uint64_t sk_raft_applied_index(const struct sk_raft_node *n)
{
    return raft_last_applied((struct raft *)&n->raft);
}

uint64_t sk_raft_last_index(const struct sk_raft_node *n)
{
    return raft_last_index((struct raft *)&n->raft);
}

const struct raft_configuration *
sk_raft_configuration(const struct sk_raft_node *n)
{
    return &n->raft.configuration;
}

uint64_t sk_raft_match_index(const struct sk_raft_node *n, uint64_t id)
{
    raft_index idx = 0;
    if (raft_match_index((struct raft *)&n->raft, id, &idx) != 0)
        return 0;
    return idx;
}
