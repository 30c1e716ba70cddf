/* Deterministic Raft tests: our FSM and store under libraft's own cluster
 * fixture (one simulated clock, partitions, kills, revivals, snapshots).
 * The property checked everywhere: every change the leader acknowledged is
 * present on every manager afterwards, and all managers hold the same
 * store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/fixture.h>

#include "skiff/mem.h"
#include "manager/store_fsm.h"
#include "skiff/store.h"

#define N 3
#define MAX_CMDS 512

struct cluster {
    struct raft_fixture f;
    struct sk_store *stores[N];
    struct sk_store_fsm fsms[N];
    bool acked[MAX_CMDS];
    bool failed[MAX_CMDS];
    int n_cmds;
};

struct submit {
    struct raft_apply req;
    struct cluster *c;
    int k;
    unsigned server;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct submit *s = req->data;
    if (status == 0) {
        struct sk_err err;
        enum sk_rc rc = sk_store_fsm_result(&s->c->fsms[s->server].raft_fsm,
                                            req->index, result, &err);
        if (rc == SK_OK)
            s->c->acked[s->k] = true;
        else
            s->c->failed[s->k] = true;
    } else {
        s->c->failed[s->k] = true;
    }
    free(s);
}

static int setup(void **state)
{
    struct cluster *c = sk_calloc(1, sizeof *c);
    assert_int_equal(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N; i++) {
        c->stores[i] = sk_store_new();
        sk_store_fsm_init(&c->fsms[i], c->stores[i]);
        assert_int_equal(raft_fixture_grow(&c->f, &c->fsms[i].raft_fsm), 0);
        sk_store_fsm_bind(&c->fsms[i], raft_fixture_get(&c->f, i));
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct cluster *c = *state;
    raft_fixture_close(&c->f);
    for (unsigned i = 0; i < N; i++)
        sk_store_free(c->stores[i]);
    free(c);
    return 0;
}

/* Submits command k (create node "nk") to server i. Returns whether raft
 * accepted the submission (only a leader does). */
static bool submit(struct cluster *c, unsigned i, int k)
{
    struct sk_node *n = sk_object_new(SK_KIND_NODE);
    sk_id_new(n->meta.id);
    n->spec.name = sk_printf("n%d", k);
    struct sk_txn *t = sk_txn_new();
    sk_txn_create(t, SK_KIND_NODE, n);
    size_t len;
    char *text = sk_txn_encode(t, 1000 + k, &len);
    sk_txn_free(t);
    sk_object_free(SK_KIND_NODE, n);

    struct raft_buffer buf = {.base = raft_malloc(len), .len = len};
    memcpy(buf.base, text, len);
    free(text);
    struct submit *s = sk_calloc(1, sizeof *s);
    s->c = c;
    s->k = k;
    s->server = i;
    s->req.data = s;
    if (raft_apply(raft_fixture_get(&c->f, i), &s->req, &buf, 1, apply_cb) !=
        0) {
        raft_free(buf.base);
        free(s);
        return false;
    }
    if (k >= c->n_cmds)
        c->n_cmds = k + 1;
    return true;
}

static unsigned leader_of(struct cluster *c)
{
    assert_true(raft_fixture_step_until_has_leader(&c->f, 10000));
    return raft_fixture_leader_index(&c->f);
}

static bool node_present(struct sk_store *s, int k)
{
    char name[16];
    snprintf(name, sizeof name, "n%d", k);
    return sk_store_get_by_name(s, SK_KIND_NODE, name) != NULL;
}

static bool visit_compare(const void *obj, void *ctx)
{
    const struct sk_store *other = ctx;
    const struct sk_node *a = obj;
    const struct sk_node *b = sk_store_get(other, SK_KIND_NODE, a->meta.id);
    if (!b || !sk_schema_equal(&sk_node_schema, a, b))
        fail_msg("node %s differs between managers", a->spec.name);
    return true;
}

/* Steps until every alive server applied everything the leader committed,
 * then checks acknowledged changes everywhere and equal stores. */
static void check_converged(struct cluster *c)
{
    unsigned l = leader_of(c);
    raft_index target = raft_last_index(raft_fixture_get(&c->f, l));
    for (unsigned i = 0; i < N; i++) {
        if (!raft_fixture_alive(&c->f, i))
            continue;
        if (!raft_fixture_step_until_applied(&c->f, i, target, 20000))
            fail_msg("server %u did not apply up to %llu", i,
                     (unsigned long long)target);
    }
    for (unsigned i = 0; i < N; i++) {
        if (!raft_fixture_alive(&c->f, i))
            continue;
        for (int k = 0; k < c->n_cmds; k++)
            if (c->acked[k] && !node_present(c->stores[i], k))
                fail_msg("acknowledged change n%d missing on server %u", k, i);
        assert_int_equal(sk_store_count(c->stores[i], SK_KIND_NODE),
                         sk_store_count(c->stores[l], SK_KIND_NODE));
        sk_store_each(c->stores[i], SK_KIND_NODE, visit_compare, c->stores[l]);
    }
}

static int count_acked(struct cluster *c)
{
    int n = 0;
    for (int k = 0; k < c->n_cmds; k++)
        n += c->acked[k];
    return n;
}

static void replicate_to_all(void **state)
{
    struct cluster *c = *state;
    unsigned l = leader_of(c);
    for (int k = 0; k < 50; k++)
        assert_true(submit(c, l, k));
    raft_fixture_step_until_applied(&c->f, N, 51 + 1, 10000);
    check_converged(c);
    assert_int_equal(count_acked(c), 50);
    /* Versions are the Raft index, the same on every manager. */
    const struct sk_node *a =
        sk_store_get_by_name(c->stores[0], SK_KIND_NODE, "n7");
    const struct sk_node *b =
        sk_store_get_by_name(c->stores[2], SK_KIND_NODE, "n7");
    assert_int_equal(a->meta.version, b->meta.version);
    assert_true(a->meta.version > 1);
    /* A follower refuses submissions. */
    assert_false(submit(c, (l + 1) % N, 99));
}

static void rejected_change_reaches_the_proposer(void **state)
{
    struct cluster *c = *state;
    unsigned l = leader_of(c);
    assert_true(submit(c, l, 1));
    /* Same name again: every manager rejects it, the proposer learns why. */
    assert_true(submit(c, l, 1 + 0));
    c->acked[1] = false;
    c->failed[1] = false;
    assert_true(submit(c, l, 2));
    raft_fixture_step_until_applied(&c->f, N, 4 + 1, 10000);
    check_converged(c);
    assert_int_equal(sk_store_count(c->stores[0], SK_KIND_NODE), 2);
    assert_true(c->fsms[l].rejected >= 1);
    assert_int_equal(c->fsms[(l + 1) % N].rejected, c->fsms[l].rejected);
}

static void partitioned_leader(void **state)
{
    struct cluster *c = *state;
    unsigned l = leader_of(c);
    int k = 0;
    for (; k < 10; k++)
        assert_true(submit(c, l, k));
    raft_fixture_step_until_applied(&c->f, N, 11 + 1, 10000);

    /* Cut the leader off from both followers. */
    for (unsigned i = 0; i < N; i++) {
        if (i != l) {
            raft_fixture_disconnect(&c->f, l, i);
            raft_fixture_disconnect(&c->f, i, l);
        }
    }
    /* The old leader still takes submissions, but cannot commit them. */
    int stale_first = k;
    for (; k < stale_first + 5; k++)
        submit(c, l, k);
    /* The majority elects a new leader and commits more. */
    unsigned nl = l;
    for (int step = 0; step < 200000 && (nl == l || nl == N); step++) {
        raft_fixture_step(&c->f);
        for (unsigned i = 0; i < N; i++)
            if (i != l && raft_state(raft_fixture_get(&c->f, i)) == RAFT_LEADER)
                nl = i;
    }
    assert_int_not_equal(nl, l);
    for (int j = 0; j < 20; j++, k++)
        assert_true(submit(c, nl, k));
    raft_fixture_step_until_elapsed(&c->f, 5000);
    for (int j = stale_first; j < stale_first + 5; j++)
        assert_false(c->acked[j]);

    /* Heal: the old leader steps down, drops its uncommitted entries. */
    for (unsigned i = 0; i < N; i++) {
        if (i != l) {
            raft_fixture_reconnect(&c->f, l, i);
            raft_fixture_reconnect(&c->f, i, l);
        }
    }
    raft_fixture_step_until_elapsed(&c->f, 5000);
    check_converged(c);
    assert_int_equal(count_acked(c), 30);
    for (int j = stale_first; j < stale_first + 5; j++)
        for (unsigned i = 0; i < N; i++)
            assert_false(node_present(c->stores[i], j));
}

static void kill_and_revive(void **state)
{
    struct cluster *c = *state;
    unsigned l = leader_of(c);
    int k = 0;
    for (; k < 10; k++)
        assert_true(submit(c, l, k));
    raft_fixture_step_until_elapsed(&c->f, 2000);

    /* Kill a follower; the other two keep committing. */
    unsigned f1 = (l + 1) % N;
    raft_fixture_kill(&c->f, f1);
    for (; k < 20; k++)
        assert_true(submit(c, l, k));
    raft_fixture_step_until_elapsed(&c->f, 2000);
    assert_int_equal(count_acked(c), 20);
    raft_fixture_revive(&c->f, f1);
    check_converged(c);

    /* Kill the leader: a new one takes over; revive the old one, it catches
     * up. */
    raft_fixture_kill(&c->f, l);
    unsigned nl = N;
    for (int step = 0; step < 200000 && nl == N; step++) {
        raft_fixture_step(&c->f);
        for (unsigned i = 0; i < N; i++)
            if (i != l && raft_state(raft_fixture_get(&c->f, i)) == RAFT_LEADER)
                nl = i;
    }
    assert_int_not_equal(nl, N);
    for (; k < 40; k++)
        assert_true(submit(c, nl, k));
    raft_fixture_step_until_elapsed(&c->f, 3000);
    raft_fixture_revive(&c->f, l);
    raft_fixture_step_until_elapsed(&c->f, 3000);
    check_converged(c);
    assert_int_equal(count_acked(c), 40);
}

static void snapshot_catch_up(void **state)
{
    struct cluster *c = *state;
    for (unsigned i = 0; i < N; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), 16);
        raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), 4);
    }
    unsigned l = leader_of(c);
    unsigned f1 = (l + 1) % N;
    raft_fixture_kill(&c->f, f1);
    for (int k = 0; k < 120; k++) {
        assert_true(submit(c, l, k));
        raft_fixture_step_n(&c->f, 4);
    }
    raft_fixture_step_until_elapsed(&c->f, 3000);
    assert_int_equal(count_acked(c), 120);
    /* The log was compacted past what f1 has: it needs a snapshot, which
     * restores our store through the FSM. */
    raft_fixture_revive(&c->f, f1);
    raft_fixture_step_until_elapsed(&c->f, 5000);
    check_converged(c);
    assert_int_equal(sk_store_count(c->stores[f1], SK_KIND_NODE), 120);
    assert_true(c->fsms[f1].restores >= 1);
    assert_int_equal(c->fsms[l].restores, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replicate_to_all, setup, teardown),
        cmocka_unit_test_setup_teardown(rejected_change_reaches_the_proposer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(partitioned_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(kill_and_revive, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_catch_up, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
