/* The change-event queue behind `/v1/events` and `skiff events`.
 *
 * Every store change becomes one JSON line:
 *   {"index":1234,"time":1700000000000,"type":"node","action":"update",
 *    "id":"...","name":"h2", ...kind-specific fields...}
 * (kind-specific: a node's state and availability, a task's state, slot,
 * service and node -- by ID and by name: "service_id", "service_name",
 * "node_id", "node_name" -- a service's mode and replicas). A task's name
 * is its service's with the slot ("web.3"), or with the node's ID for a
 * global service, as `service ps` shows it. Names come from the store;
 * a removed service's or node's name is remembered from its removal (the
 * most recent SK_EVENTS_GONE_NAMES of them), so its tasks' last events
 * still name it. No secret value ever appears: lines are built from chosen
 * fields, never from whole objects.
 *
 * The queue keeps the last `capacity` lines, so a watcher can resume from
 * an index it saw; older history is gone (the watcher is told with a line
 * {"type":"gap",...}). Subscribers get each new line through their sink,
 * those with a filter only the lines it passes (gap and error lines always
 * pass). Pure: no I/O. */
#ifndef SKIFF_EVENTS_H
#define SKIFF_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skiff/err.h"
#include "skiff/store.h"

#define SK_EVENTS_GONE_NAMES 256

typedef void (*sk_events_sink)(void *ctx, const char *line, size_t len);

struct sk_events;

struct sk_events *sk_events_new(size_t capacity);
void sk_events_free(struct sk_events *e);
/* Records a store event (call from a store watcher: store holds the state
 * after the change, for the names; it may be NULL). */
void sk_events_record(struct sk_events *e, const struct sk_store *store,
                      const struct sk_event *ev, int64_t time_ms);

/* Which events a watcher wants, docker's way: a JSON object of keys, each
 * with a list of values, e.g. {"type":["task"],"service":["web","api"]}.
 * Keys: "type" (node, service, task, network, ...), "event" (create,
 * update, remove), "service" (a service's events and its tasks'),
 * "node" (a node's events and the tasks on it); a service or node is
 * named by name, ID or ID prefix. An event passes when, for every key
 * given, one of its values matches. */
struct sk_events_filter;
/* Parses the filter text (NULL or "" is no filter: *out = NULL). Errors
 * name the key or value that is wrong (SK_EINVAL). */
enum sk_rc sk_events_filter_parse(const char *text,
                                  struct sk_events_filter **out,
                                  struct sk_err *err);
void sk_events_filter_free(struct sk_events_filter *f);
/* Does the event line pass? (NULL passes everything.) */
bool sk_events_filter_match(const struct sk_events_filter *f, const char *line,
                            size_t len);

/* Replays lines with index > since (a gap line first if some were
 * dropped), then delivers new ones until unsubscribed; with a filter
 * (borrowed until unsubscribed; may be NULL) only those it passes.
 * Returns an ID. */
unsigned sk_events_subscribe(struct sk_events *e, uint64_t since,
                             const struct sk_events_filter *filter,
                             sk_events_sink sink, void *ctx);
void sk_events_unsubscribe(struct sk_events *e, unsigned id);
size_t sk_events_subscribers(const struct sk_events *e);

#endif
