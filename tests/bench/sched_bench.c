/* Placement throughput at scale: 1,000 ready nodes, 10 services of 1,000
 * replicas each (10,000 tasks), through the leader's real path minus the
 * network: the orchestrator creates the tasks, the scheduler places them in
 * batches, each batch is encoded as one Raft command and applied to the
 * store (the work every manager's FSM does). Prints placements per second.
 *
 *   build/tests/sched_bench [NODES] [SERVICES] [REPLICAS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "skiff/mem.h"
#include "skiff/orchestrator.h"
#include "skiff/scheduler.h"
#include "skiff/store.h"

static uint64_t idx;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void commit(struct sk_store *s, struct sk_txn *t, double *encode_s,
                   double *apply_s)
{
    double t0 = now_s();
    size_t len;
    char *cmd = sk_txn_encode(t, 1000, &len);
    double t1 = now_s();
    struct sk_err err;
    if (sk_store_apply(s, ++idx, cmd, len, &err) != SK_OK) {
        fprintf(stderr, "apply: %s\n", err.msg);
        exit(1);
    }
    double t2 = now_s();
    if (encode_s)
        *encode_s += t1 - t0;
    if (apply_s)
        *apply_s += t2 - t1;
    free(cmd);
    sk_txn_free(t);
}

int main(int argc, char **argv)
{
    int nodes = argc > 1 ? atoi(argv[1]) : 1000;
    int services = argc > 2 ? atoi(argv[2]) : 10;
    int replicas = argc > 3 ? atoi(argv[3]) : 1000;
    struct sk_store *s = sk_store_new();

    struct sk_txn *t = sk_txn_new();
    struct sk_cluster *c = sk_object_new(SK_KIND_CLUSTER);
    sk_id_new(c->meta.id);
    sk_schema_defaults(&sk_cluster_spec_schema, &c->spec);
    sk_txn_create(t, SK_KIND_CLUSTER, c);
    sk_object_free(SK_KIND_CLUSTER, c);
    for (int i = 0; i < nodes; i++) {
        struct sk_node *n = sk_object_new(SK_KIND_NODE);
        sk_id_new(n->meta.id);
        n->spec.name = sk_printf("n%04d", i);
        n->status.state = SK_NODE_READY;
        n->description.nano_cpus = 2000000000;
        n->description.memory_bytes = 4LL << 30;
        sk_kv_set(&n->spec.labels, &n->spec.n_labels, "zone",
                  i % 3 == 0   ? "a"
                  : i % 3 == 1 ? "b"
                               : "c");
        sk_txn_create(t, SK_KIND_NODE, n);
        sk_object_free(SK_KIND_NODE, n);
        if (sk_txn_count(t) >= 1000) {
            commit(s, t, NULL, NULL);
            t = sk_txn_new();
        }
    }
    for (int i = 0; i < services; i++) {
        struct sk_service *svc = sk_object_new(SK_KIND_SERVICE);
        sk_id_new(svc->meta.id);
        sk_schema_defaults(&sk_service_spec_schema, &svc->spec);
        svc->spec.name = sk_printf("svc%d", i);
        svc->spec.replicas = replicas;
        svc->spec.task.container.image = sk_strdup("skiff-test/busybox:latest");
        svc->spec.task.reservations.memory_bytes = 16LL << 20;
        if (i % 2)
            sk_strs_push(&svc->spec.task.placement.preferences,
                         &svc->spec.task.placement.n_preferences,
                         "spread=node.labels.zone");
        svc->spec_version = 1;
        sk_txn_create(t, SK_KIND_SERVICE, svc);
        sk_object_free(SK_KIND_SERVICE, svc);
    }
    commit(s, t, NULL, NULL);

    struct sk_allocator *alloc = sk_allocator_new();
    double t0 = now_s(), enc = 0, app = 0;
    size_t created = 0;
    for (;;) {
        struct sk_orchestration o;
        sk_orchestrate(s, alloc, 1000, SK_TXN_MAX_OPS / 2, &o);
        if (!o.txn)
            break;
        created += o.changes;
        commit(s, o.txn, &enc, &app);
    }
    double t1 = now_s();
    printf("orchestrator: %zu tasks created in %.3f s (%.0f tasks/s; encode "
           "%.3f s, apply %.3f s)\n",
           created, t1 - t0, (double)created / (t1 - t0), enc, app);

    double sched = 0;
    enc = app = 0;
    size_t placed = 0, batches = 0;
    t0 = now_s();
    for (;;) {
        double a = now_s();
        struct sk_placements p;
        sk_schedule_txn(s, alloc, 1000, SK_TXN_MAX_OPS, &p);
        sched += now_s() - a;
        if (!p.txn)
            break;
        placed += p.placed;
        batches++;
        commit(s, p.txn, &enc, &app);
        if (p.placed == 0)
            break; /* the rest fits nowhere */
    }
    t1 = now_s();
    printf("scheduler: %zu placements on %d nodes in %zu Raft entries, "
           "%.3f s in all: %.0f placements/s\n"
           "  deciding (and building the entries) %.3f s (%.0f/s), encoding "
           "%.3f s, applying %.3f s\n",
           placed, nodes, batches, t1 - t0, (double)placed / (t1 - t0), sched,
           (double)placed / sched, enc, app);
    sk_allocator_free(alloc);
    sk_store_free(s);
    return 0;
}
