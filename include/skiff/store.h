/* The replicated object store: what every manager holds in memory, changed
 * only by applying Raft log entries in order.
 *
 * A change is a command: a small JSON document listing operations (create,
 * update, delete objects) with the versions the proposer expected, built
 * with `struct sk_txn` (skiff/txn.h). sk_store_apply() applies a command all or
 * nothing: if any operation conflicts (an object changed since the expected
 * version, a name already taken, an object missing), nothing changes and the
 * error says which object and why -- SK_ECONFLICT (HTTP 409), SK_EEXIST (409),
 * SK_ENOTFOUND (404) or SK_EINVAL (400).
 *
 * Every applied operation stamps the object: meta.version = the Raft index
 * of the entry, created_at/updated_at = the command's time (chosen by the
 * proposer, so all managers agree).
 *
 * Watchers see each change after the whole command applied, in operation
 * order, with the old and the new object. A restore from a snapshot is one
 * SK_EV_RESET event. Watch callbacks must not change the store (they run
 * inside the Raft FSM's apply); they note what to do and do it later.
 *
 * Pure: no I/O, no clock, no threads. Objects returned by lookups belong to
 * the store and stay valid until the next apply or restore. */
#ifndef SKIFF_STORE_H
#define SKIFF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/objects.h"
#include "skiff/txn.h"

struct sk_store;
struct sk_placement_rules; /* skiff/constraint.h */

enum sk_event_type {
    SK_EV_CREATE,
    SK_EV_UPDATE,
    SK_EV_DELETE,
    SK_EV_RESET, /* contents replaced by a snapshot: rescan everything */
};

struct sk_event {
    enum sk_event_type type;
    enum sk_kind kind;   /* not set for RESET */
    const void *old_obj; /* UPDATE, DELETE */
    const void *new_obj; /* CREATE, UPDATE */
    uint64_t index;      /* the Raft index of the change */
};

typedef void (*sk_store_watch_cb)(const struct sk_event *ev, void *ctx);

struct sk_store *sk_store_new(void);
void sk_store_free(struct sk_store *s);

/* Applies a command at Raft index `index` (which must be greater than the
 * last). On error nothing changed (but the index still advances). */
enum sk_rc sk_store_apply(struct sk_store *s, uint64_t index, const char *cmd,
                          size_t len, struct sk_err *err);
/* Index of the last applied entry. */
uint64_t sk_store_index(const struct sk_store *s);

/* Whole-store serialisation, for Raft snapshots. The result is heap memory
 * (free()). */
char *sk_store_snapshot(const struct sk_store *s, size_t *out_len);
/* Replaces the contents with a snapshot. On error the store is unchanged. */
enum sk_rc sk_store_restore(struct sk_store *s, const char *buf, size_t len,
                            struct sk_err *err);

/* Registers a watcher; returns an ID for sk_store_unwatch. */
unsigned sk_store_watch(struct sk_store *s, sk_store_watch_cb cb, void *ctx);
void sk_store_unwatch(struct sk_store *s, unsigned id);

/* ---- reading ---- */

const void *sk_store_get(const struct sk_store *s, enum sk_kind kind,
                         const char *id);
/* A service's placement constraints and preferences, parsed once when the
 * service was written; NULL if there is no such service. */
const struct sk_placement_rules *sk_store_placement(const struct sk_store *s,
                                                    const char *service_id);
const void *sk_store_get_by_name(const struct sk_store *s, enum sk_kind kind,
                                 const char *name);
/* Finds an object by full ID, by name, or by a unique ID prefix (at least 4
 * characters), as the CLI lets users refer to objects. Errors:
 * `no such node: "h9"`, `node "ab" is ambiguous: 3 IDs start with it`. */
const void *sk_store_lookup(const struct sk_store *s, enum sk_kind kind,
                            const char *ref, struct sk_err *err);
size_t sk_store_count(const struct sk_store *s, enum sk_kind kind);

/* Visits every object of a kind (unspecified order) until cb returns
 * false. */
typedef bool (*sk_store_visit_cb)(const void *obj, void *ctx);
void sk_store_each(const struct sk_store *s, enum sk_kind kind,
                   sk_store_visit_cb cb, void *ctx);
void sk_store_each_task_of_service(const struct sk_store *s,
                                   const char *service_id, sk_store_visit_cb cb,
                                   void *ctx);
void sk_store_each_task_of_node(const struct sk_store *s, const char *node_id,
                                sk_store_visit_cb cb, void *ctx);
size_t sk_store_count_tasks_of_service(const struct sk_store *s,
                                       const char *service_id);

/* Fills a heap array with the objects of a kind (for sorting and listing);
 * *out_n gets the count. free() the array, not the objects. */
const void **sk_store_list(const struct sk_store *s, enum sk_kind kind,
                           size_t *out_n);

/* The cluster object, or NULL before the cluster is initialised. */
const struct sk_cluster *sk_store_cluster(const struct sk_store *s);

#endif
