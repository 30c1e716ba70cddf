/* A client of the Docker Engine API over dockerd's unix socket, on a libuv
 * loop (libcurl's multi interface through skiff/http_client.h).
 *
 * Every operation is asynchronous and calls its callback exactly once --
 * never inside the call that started it -- with SK_OK and the decoded JSON
 * reply (borrowed: valid during the callback only; NULL when dockerd sent
 * no body), or with an error whose message names the operation, the object
 * and dockerd's own message, e.g.
 *   `create container "web.1.abc": dockerd 404: No such image: bb:latest`.
 * dockerd's status codes map to: 404 -> SK_ENOTFOUND, 409 -> SK_ECONFLICT,
 * 304 (already started/stopped) -> SK_OK, 400 -> SK_EINVAL, transport
 * failures -> SK_EUNAVAIL.
 *
 * Long-lived operations (the events stream, logs) return a handle that is
 * stopped with its _stop function; their end callback runs exactly once
 * (also after _stop, then with SK_ECANCELED).
 *
 * sk_docker_close cancels everything in flight (callbacks run with
 * SK_ECANCELED) and then calls its own callback. */
#ifndef SKIFF_DOCKER_H
#define SKIFF_DOCKER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "skiff/err.h"

struct sk_docker;

typedef void (*sk_docker_cb)(void *ctx, enum sk_rc rc, const struct sk_err *err,
                             json_t *reply);

/* socket: a path ("/var/run/docker.sock") or "unix:///path". */
struct sk_docker *sk_docker_new(uv_loop_t *loop, const char *socket,
                                struct sk_err *err);
void sk_docker_close(struct sk_docker *d, void (*cb)(void *ctx), void *ctx);

/* GET /version */
void sk_docker_version(struct sk_docker *d, sk_docker_cb cb, void *ctx);
/* GET /info */
void sk_docker_info(struct sk_docker *d, sk_docker_cb cb, void *ctx);
/* GET /images/{name}/json */
void sk_docker_image_inspect(struct sk_docker *d, const char *image,
                             sk_docker_cb cb, void *ctx);
/* POST /images/create?fromImage=...&tag=...: waits for the pull to end;
 * an error line in the progress stream fails it with that message. */
void sk_docker_image_pull(struct sk_docker *d, const char *image,
                          sk_docker_cb cb, void *ctx);
/* POST /containers/create?name=... with `config` (Docker's create body,
 * borrowed). Reply: {"Id": ..., "Warnings": [...]}. */
void sk_docker_create(struct sk_docker *d, const char *name,
                      const json_t *config, sk_docker_cb cb, void *ctx);
/* POST /containers/{id}/start */
void sk_docker_start(struct sk_docker *d, const char *id, sk_docker_cb cb,
                     void *ctx);
/* POST /containers/{id}/stop?t=timeout_s (dockerd kills after it) */
void sk_docker_stop(struct sk_docker *d, const char *id, int timeout_s,
                    sk_docker_cb cb, void *ctx);
/* POST /containers/{id}/kill?signal=... */
void sk_docker_kill(struct sk_docker *d, const char *id, const char *signal,
                    sk_docker_cb cb, void *ctx);
/* DELETE /containers/{id}?force=...&v=1 */
void sk_docker_remove(struct sk_docker *d, const char *id, bool force,
                      sk_docker_cb cb, void *ctx);
/* GET /containers/{id}/json */
void sk_docker_inspect(struct sk_docker *d, const char *id, sk_docker_cb cb,
                       void *ctx);
/* GET /containers/json?all=1&filters={"label":[label]}: reply is the
 * array. label: "skiff.task.id" (has the label) or "k=v"; NULL: all. */
void sk_docker_list(struct sk_docker *d, const char *label, sk_docker_cb cb,
                    void *ctx);

/* ---- networks ---- */

/* POST /networks/create with `body` (Docker's create body, borrowed; its
 * Name names the network in messages). Reply: {"Id": ..., "Warning": ...}. */
void sk_docker_network_create(struct sk_docker *d, const json_t *body,
                              sk_docker_cb cb, void *ctx);
/* GET /networks?filters={"label":[label]}: reply is the array (each with
 * Id, Name, Labels, Options, Internal, IPAM). label as for sk_docker_list;
 * NULL: all. */
void sk_docker_network_list(struct sk_docker *d, const char *label,
                            sk_docker_cb cb, void *ctx);
/* DELETE /networks/{id} (an ID or a name). */
void sk_docker_network_remove(struct sk_docker *d, const char *id,
                              sk_docker_cb cb, void *ctx);
/* POST /networks/{network}/connect {"Container": container,
 * "EndpointConfig": endpoint} (endpoint borrowed, may be NULL), e.g.
 * {"IPAMConfig": {"IPv4Address": "10.0.1.5"}}. */
void sk_docker_network_connect(struct sk_docker *d, const char *network,
                               const char *container, const json_t *endpoint,
                               sk_docker_cb cb, void *ctx);

/* ---- the events stream ---- */

struct sk_docker_events;
/* One decoded event (borrowed). */
typedef void (*sk_docker_event_cb)(void *ctx, json_t *event);
/* The stream ended: dockerd went away, an error, or _stop. */
typedef void (*sk_docker_end_cb)(void *ctx, enum sk_rc rc,
                                 const struct sk_err *err);

/* GET /events?filters=... (filters: a JSON object, borrowed, may be NULL;
 * e.g. {"type":["container"],"label":["skiff.task.id"]}). */
struct sk_docker_events *sk_docker_events_start(struct sk_docker *d,
                                                const json_t *filters,
                                                sk_docker_event_cb on_event,
                                                sk_docker_end_cb on_end,
                                                void *ctx);
void sk_docker_events_stop(struct sk_docker_events *e);

/* ---- logs ---- */

struct sk_docker_logs;
/* One log line without its newline; stream 1 = stdout, 2 = stderr. */
typedef void (*sk_docker_line_cb)(void *ctx, int stream, const char *line,
                                  size_t len);

struct sk_docker_logs_opts {
    bool follow;
    bool timestamps;
    int tail;        /* < 0: all */
    int64_t since_s; /* 0: from the start */
};

/* GET /containers/{id}/logs: demultiplexes dockerd's framed stream (or
 * passes a TTY container's raw stream through) into lines. */
struct sk_docker_logs *sk_docker_logs_start(struct sk_docker *d, const char *id,
                                            const struct sk_docker_logs_opts *o,
                                            sk_docker_line_cb on_line,
                                            sk_docker_end_cb on_end, void *ctx);
void sk_docker_logs_stop(struct sk_docker_logs *l);

#endif
