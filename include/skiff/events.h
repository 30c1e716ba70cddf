/* The change-event queue behind `/v1/events` and `skiff events`.
 *
 * Every store change becomes one JSON line:
 *   {"index":1234,"time":1700000000000,"type":"node","action":"update",
 *    "id":"...","name":"h2", ...kind-specific fields...}
 * (kind-specific: a node's state and availability, a task's state, service
 * and node, a service's mode and replicas). No secret value ever appears:
 * lines are built from chosen fields, never from whole objects.
 *
 * The queue keeps the last `capacity` lines, so a watcher can resume from
 * an index it saw; older history is gone (the watcher is told with a line
 * {"type":"gap",...}). Subscribers get each new line through their sink.
 * Pure: no I/O. */
#ifndef SKIFF_EVENTS_H
#define SKIFF_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "skiff/store.h"

typedef void (*sk_events_sink)(void *ctx, const char *line, size_t len);

struct sk_events;

struct sk_events *sk_events_new(size_t capacity);
void sk_events_free(struct sk_events *e);
/* Records a store event (call from a store watcher). */
void sk_events_record(struct sk_events *e, const struct sk_event *ev,
                      int64_t time_ms);
/* Replays lines with index > since (a gap line first if some were
 * dropped), then delivers new ones until unsubscribed. Returns an ID. */
unsigned sk_events_subscribe(struct sk_events *e, uint64_t since,
                             sk_events_sink sink, void *ctx);
void sk_events_unsubscribe(struct sk_events *e, unsigned id);
size_t sk_events_subscribers(const struct sk_events *e);

#endif
