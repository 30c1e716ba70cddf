/* A fake dockerd for tests: the Engine API (v1.41) on a unix socket in a
 * temporary directory, served on the test's own loop. No daemon needed.
 *
 * It answers in one of two ways:
 * - through the test's own `route` (scripted replies: the exact bytes a
 *   real dockerd seldom sends, streams cut at awkward places), built from
 *   the fake_reply / fake_stream_* pieces below; or
 * - with its engine (route NULL): a small dockerd in memory with images,
 *   containers (created, running, exited; labels), pulls that succeed for
 *   the images the test made pullable, and an events stream the test
 *   drives (fake_dockerd_die). It checks what a real dockerd checks: a
 *   create needs the image (else 404 "No such image"), a free name (else
 *   409) and the network its HostConfig.NetworkMode names (else 404);
 *   start/stop of a container in that state already is 304. Networks:
 *   create (a name taken is 409), list (label filters), remove (404; 403
 *   while a container is attached), connect; a container's inspect gives
 *   its NetworkSettings (SandboxKey once it ran, Networks).
 *
 * Every request is remembered in `method`, `target` (without the /v1.41
 * prefix), `body` and `ctype` (the last one) and counted. All on the
 * test's loop thread. */
#ifndef SKIFF_TEST_FAKE_DOCKERD_H
#define SKIFF_TEST_FAKE_DOCKERD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define FAKE_MAX_CONTAINERS 32
#define FAKE_MAX_IMAGES 8
#define FAKE_MAX_NETWORKS 8

struct fake_dockerd;
struct fake_conn;

/* Answers one request (target without the version prefix). */
typedef void (*fake_route_fn)(struct fake_dockerd *f, struct fake_conn *c,
                              const char *target);

struct fake_container {
    char id[65];
    char name[128];
    char image[128];
    json_t *labels; /* object */
    json_t *config; /* the create body; NULL for one added by the test */
    char state[16]; /* "created", "running", "exited" */
    int exit_code;
    json_t *networks; /* network name -> endpoint config; NULL: none */
    char sandbox[64]; /* its SandboxKey, once started */
};

struct fake_network {
    char id[65];
    char name[128];
    json_t *body; /* the create body */
};

struct fake_dockerd {
    uv_loop_t *loop;
    fake_route_fn route; /* NULL: the engine */
    void *data;          /* the test's */
    char dir[64];
    char sock[96]; /* the socket's path */

    /* The last request, and how many there were. */
    int requests;
    char method[16];
    char target[2048];
    char *body;
    char ctype[128];

    /* The engine's state. */
    struct fake_container containers[FAKE_MAX_CONTAINERS];
    int n_containers;
    char images[FAKE_MAX_IMAGES][128];   /* present */
    char pullable[FAKE_MAX_IMAGES][128]; /* a pull fetches them */
    int n_images, n_pullable;
    struct fake_network networks[FAKE_MAX_NETWORKS];
    int n_networks;
    int creates, starts, stops, removes, pulls; /* requests of each kind */
    int net_creates, net_removes, net_lists, connects;
    bool fail_net_creates; /* answer network creates with 500 */
    bool hold_creates;     /* park creates until fake_dockerd_release */
    int next_id;

    /* private */
    uv_pipe_t server;
    bool server_closed;
    struct fake_conn *conns;
    struct fake_conn *events; /* the open events stream */
    struct fake_conn *held;   /* a parked create */
    char held_name[128];
    char *held_body;
};

/* Listens on a fresh socket (f->sock); f is zeroed first, then route and
 * data are set from the arguments. */
void fake_dockerd_start(struct fake_dockerd *f, uv_loop_t *loop,
                        fake_route_fn route, void *data);
/* Stops listening and closes every connection; fake_dockerd_closed tells
 * when that is done (a condition for sk_test_run_until), then
 * fake_dockerd_free releases the rest and removes the socket. */
void fake_dockerd_close(struct fake_dockerd *f);
bool fake_dockerd_closed(void *f);
void fake_dockerd_free(struct fake_dockerd *f);

/* ---- scripted replies (for a route) ---- */

void fake_reply(struct fake_conn *c, int status, const char *ctype,
                const char *body, size_t len);
void fake_reply_json(struct fake_conn *c, int status, const char *body);
/* A close-delimited 200 whose body is the segments added after this,
 * written one by one (15 ms apart) once fake_stream_go is called. */
void fake_stream_begin(struct fake_conn *c);
void fake_seg_add(struct fake_conn *c, const void *p, size_t n);
void fake_seg_str(struct fake_conn *c, const char *s);
/* One frame of a multiplexed log stream. */
void fake_seg_frame(struct fake_conn *c, int stream, const char *p, size_t n);
void fake_stream_go(struct fake_conn *c);
/* The stream stays open after its segments. */
void fake_stream_keep_open(struct fake_conn *c);
/* Drops the connection without an answer. */
void fake_conn_drop(struct fake_conn *c);

/* ---- the engine ---- */

void fake_image_add(struct fake_dockerd *f, const char *image);
void fake_image_pullable(struct fake_dockerd *f, const char *image);
/* Adds a container as if made earlier (labels: a JSON object text). */
struct fake_container *fake_container_add(struct fake_dockerd *f,
                                          const char *name, const char *image,
                                          const char *labels, const char *state,
                                          int exit_code);
/* By ID or name; NULL if there is none. */
struct fake_container *fake_container_find(struct fake_dockerd *f,
                                           const char *ref);
/* Adds a network as if made earlier (body: a create body's JSON text). */
struct fake_network *fake_network_add(struct fake_dockerd *f, const char *body);
/* By ID or name; NULL if there is none. */
struct fake_network *fake_network_find(struct fake_dockerd *f, const char *ref);
/* The container's process exits with code: it is exited and a die event
 * goes to the events stream. */
void fake_dockerd_die(struct fake_dockerd *f, struct fake_container *c,
                      int code);
/* Sends an event line (JSON text) to the events stream. */
void fake_dockerd_event(struct fake_dockerd *f, const char *json);
/* Whether an events stream is open (a condition for sk_test_run_until). */
bool fake_dockerd_watched(void *f);
/* Whether a create is parked (hold_creates). */
bool fake_dockerd_holding(void *f);
/* Answers the parked create as the engine would have. */
void fake_dockerd_release(struct fake_dockerd *f);

#endif
