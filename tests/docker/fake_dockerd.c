/* The fake dockerd of tests/docker (see fake_dockerd.h). */
#include "fake_dockerd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "skiff/mem.h"
#include "skiff/parse.h"

#define MAX_SEGS 16

struct seg {
    char *data;
    size_t len;
};

struct fake_conn {
    uv_pipe_t pipe;
    uv_timer_t pace; /* writes a stream's segments one by one */
    struct fake_dockerd *f;
    char *in;
    size_t in_len;
    struct seg segs[MAX_SEGS];
    int n_segs, next_seg;
    bool close_after; /* a close-delimited stream */
    int pending_closes;
    struct fake_conn *prev, *next;
};

/* ---- connections ---- */

static void conn_closed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;
    if (--c->pending_closes > 0)
        return;
    for (int i = 0; i < c->n_segs; i++)
        free(c->segs[i].data);
    free(c->in);
    free(c);
}

static void conn_close(struct fake_conn *c)
{
    if (c->pending_closes)
        return;
    struct fake_dockerd *f = c->f;
    if (c->prev)
        c->prev->next = c->next;
    else
        f->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (f->events == c)
        f->events = NULL;
    if (f->held == c)
        f->held = NULL;
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->pipe, conn_closed);
    uv_close((uv_handle_t *)&c->pace, conn_closed);
}

void fake_conn_drop(struct fake_conn *c)
{
    conn_close(c);
}

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void conn_write(struct fake_conn *c, const char *p, size_t n)
{
    uv_write_t *w = sk_malloc(sizeof *w);
    char *copy = sk_malloc(n ? n : 1);
    memcpy(copy, p, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, write_done) != 0) {
        free(copy);
        free(w);
    }
}

static void shut_done(uv_shutdown_t *s, int status)
{
    (void)status;
    struct fake_conn *c = s->data;
    free(s);
    conn_close(c);
}

/* Ends a close-delimited reply once everything queued is written. */
static void conn_finish(struct fake_conn *c)
{
    uv_shutdown_t *s = sk_malloc(sizeof *s);
    s->data = c;
    if (uv_shutdown(s, (uv_stream_t *)&c->pipe, shut_done) != 0) {
        free(s);
        conn_close(c);
    }
}

static void pace_cb(uv_timer_t *t)
{
    struct fake_conn *c = t->data;
    if (c->next_seg < c->n_segs) {
        struct seg *s = &c->segs[c->next_seg++];
        conn_write(c, s->data, s->len);
        uv_timer_start(&c->pace, pace_cb, 15, 0);
        return;
    }
    if (c->close_after)
        conn_finish(c);
}

/* ---- scripted replies ---- */

void fake_seg_add(struct fake_conn *c, const void *p, size_t n)
{
    assert_true(c->n_segs < MAX_SEGS);
    c->segs[c->n_segs].data = sk_malloc(n ? n : 1);
    memcpy(c->segs[c->n_segs].data, p, n);
    c->segs[c->n_segs].len = n;
    c->n_segs++;
}

void fake_seg_str(struct fake_conn *c, const char *s)
{
    fake_seg_add(c, s, strlen(s));
}

void fake_seg_frame(struct fake_conn *c, int stream, const char *p, size_t n)
{
    unsigned char h[8] = {(unsigned char)stream,
                          0,
                          0,
                          0,
                          (unsigned char)(n >> 24),
                          (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8),
                          (unsigned char)n};
    char *buf = sk_malloc(8 + n);
    memcpy(buf, h, 8);
    memcpy(buf + 8, p, n);
    fake_seg_add(c, buf, 8 + n);
    free(buf);
}

void fake_reply(struct fake_conn *c, int status, const char *ctype,
                const char *body, size_t len)
{
    char *head = sk_printf("HTTP/1.1 %d X\r\nContent-Type: %s\r\n"
                           "Content-Length: %zu\r\n\r\n",
                           status, ctype, len);
    conn_write(c, head, strlen(head));
    if (len)
        conn_write(c, body, len);
    free(head);
}

void fake_reply_json(struct fake_conn *c, int status, const char *body)
{
    fake_reply(c, status, "application/json", body, strlen(body));
}

void fake_stream_begin(struct fake_conn *c)
{
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
                               "application/json\r\nConnection: close\r\n\r\n";
    conn_write(c, head, sizeof head - 1);
    c->close_after = true;
}

void fake_stream_go(struct fake_conn *c)
{
    uv_timer_start(&c->pace, pace_cb, 15, 0);
}

void fake_stream_keep_open(struct fake_conn *c)
{
    c->close_after = false;
}

/* ---- the engine ---- */

static bool path_is(const char *target, const char *path)
{
    size_t n = strlen(path);
    return strncmp(target, path, n) == 0 &&
           (target[n] == '\0' || target[n] == '?');
}

/* The percent-decoded value of query parameter `name`, or "". */
static void query(const char *target, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    const char *q = strchr(target, '?');
    size_t n = strlen(name);
    while (q) {
        q++;
        if (strncmp(q, name, n) == 0 && q[n] == '=') {
            size_t k = 0;
            for (const char *p = q + n + 1; *p && *p != '&' && k + 1 < size;
                 p++) {
                if (*p == '%' && sk_hex_digit(p[1]) >= 0 &&
                    sk_hex_digit(p[2]) >= 0) {
                    out[k++] =
                        (char)(sk_hex_digit(p[1]) * 16 + sk_hex_digit(p[2]));
                    p += 2;
                } else {
                    out[k++] = *p;
                }
            }
            out[k] = '\0';
            return;
        }
        q = strchr(q, '&');
    }
}

static bool has(char list[][128], int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

void fake_image_add(struct fake_dockerd *f, const char *image)
{
    assert_true(f->n_images < FAKE_MAX_IMAGES);
    snprintf(f->images[f->n_images++], sizeof f->images[0], "%s", image);
}

void fake_image_pullable(struct fake_dockerd *f, const char *image)
{
    assert_true(f->n_pullable < FAKE_MAX_IMAGES);
    snprintf(f->pullable[f->n_pullable++], sizeof f->pullable[0], "%s", image);
}

struct fake_container *fake_container_find(struct fake_dockerd *f,
                                           const char *ref)
{
    for (int i = 0; i < f->n_containers; i++) {
        struct fake_container *c = &f->containers[i];
        if (strcmp(c->id, ref) == 0 || strcmp(c->name, ref) == 0)
            return c;
    }
    return NULL;
}

struct fake_container *fake_container_add(struct fake_dockerd *f,
                                          const char *name, const char *image,
                                          const char *labels, const char *state,
                                          int exit_code)
{
    assert_true(f->n_containers < FAKE_MAX_CONTAINERS);
    struct fake_container *c = &f->containers[f->n_containers++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%064d", ++f->next_id);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->image, sizeof c->image, "%s", image);
    c->labels = labels ? json_loads(labels, 0, NULL) : json_object();
    assert_non_null(c->labels);
    snprintf(c->state, sizeof c->state, "%s", state);
    c->exit_code = exit_code;
    memcpy(c->sandbox, "/run/fake/netns/", 16);
    memcpy(c->sandbox + 16, c->id, 12);
    c->sandbox[28] = '\0';
    return c;
}

struct fake_network *fake_network_find(struct fake_dockerd *f, const char *ref)
{
    for (int i = 0; i < f->n_networks; i++) {
        struct fake_network *n = &f->networks[i];
        if (strcmp(n->id, ref) == 0 || strcmp(n->name, ref) == 0)
            return n;
    }
    return NULL;
}

struct fake_network *fake_network_add(struct fake_dockerd *f, const char *body)
{
    assert_true(f->n_networks < FAKE_MAX_NETWORKS);
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    struct fake_network *n = &f->networks[f->n_networks++];
    memset(n, 0, sizeof *n);
    snprintf(n->id, sizeof n->id, "%064d", 1000 + ++f->next_id);
    snprintf(n->name, sizeof n->name, "%s",
             json_string_value(json_object_get(b, "Name")));
    n->body = b;
    return n;
}

/* Whether a container is attached to network n. */
static bool attached(const struct fake_container *c,
                     const struct fake_network *n)
{
    return json_object_get(c->networks, n->name) != NULL;
}

static void container_del(struct fake_dockerd *f, struct fake_container *c)
{
    json_decref(c->labels);
    json_decref(c->config);
    json_decref(c->networks);
    size_t i = (size_t)(c - f->containers);
    memmove(c, c + 1, (size_t)(f->n_containers - 1 - (int)i) * sizeof *c);
    f->n_containers--;
}

void fake_dockerd_event(struct fake_dockerd *f, const char *json)
{
    if (!f->events)
        return;
    conn_write(f->events, json, strlen(json));
    conn_write(f->events, "\n", 1);
}

static void emit(struct fake_dockerd *f, const struct fake_container *c,
                 const char *action, int exit_code)
{
    json_t *attrs = json_deep_copy(c->labels);
    json_object_set_new(attrs, "name", json_string(c->name));
    json_object_set_new(attrs, "image", json_string(c->image));
    if (strcmp(action, "die") == 0) {
        char code[16];
        snprintf(code, sizeof code, "%d", exit_code);
        json_object_set_new(attrs, "exitCode", json_string(code));
    }
    json_t *ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:o}}", "Type", "container",
                           "Action", action, "status", action, "Actor", "ID",
                           c->id, "Attributes", attrs);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    fake_dockerd_event(f, text);
    free(text);
}

void fake_dockerd_die(struct fake_dockerd *f, struct fake_container *c,
                      int code)
{
    snprintf(c->state, sizeof c->state, "exited");
    c->exit_code = code;
    emit(f, c, "die", code);
}

bool fake_dockerd_watched(void *ctx)
{
    return ((struct fake_dockerd *)ctx)->events != NULL;
}

bool fake_dockerd_holding(void *ctx)
{
    return ((struct fake_dockerd *)ctx)->held != NULL;
}

/* "name=value" or "name" among a container's labels. */
static bool label_matches(const json_t *labels, const char *filter)
{
    char key[256];
    const char *eq = strchr(filter, '=');
    size_t n = eq ? (size_t)(eq - filter) : strlen(filter);
    snprintf(key, sizeof key, "%.*s", (int)n, filter);
    const char *v = json_string_value(json_object_get(labels, key));
    return v && (!eq || strcmp(v, eq + 1) == 0);
}

static void list(struct fake_dockerd *f, struct fake_conn *conn,
                 const char *target)
{
    char filters[1024];
    query(target, "filters", filters, sizeof filters);
    json_t *fj = *filters ? json_loads(filters, 0, NULL) : NULL;
    json_t *labels = json_object_get(fj, "label");
    json_t *out = json_array();
    for (int i = 0; i < f->n_containers; i++) {
        const struct fake_container *c = &f->containers[i];
        bool ok = true;
        size_t k;
        json_t *l;
        json_array_foreach(labels, k, l)
        {
            ok = ok && label_matches(c->labels, json_string_value(l));
        }
        if (!ok)
            continue;
        char status[64], name[130];
        if (strcmp(c->state, "running") == 0)
            snprintf(status, sizeof status, "Up 2 seconds");
        else if (strcmp(c->state, "exited") == 0)
            snprintf(status, sizeof status, "Exited (%d) 1 second ago",
                     c->exit_code);
        else
            snprintf(status, sizeof status, "Created");
        snprintf(name, sizeof name, "/%s", c->name);
        json_array_append_new(
            out, json_pack("{s:s, s:[s], s:s, s:O, s:s, s:s}", "Id", c->id,
                           "Names", name, "Image", c->image, "Labels",
                           c->labels, "State", c->state, "Status", status));
    }
    json_decref(fj);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    fake_reply_json(conn, 200, text);
    free(text);
}

static void create(struct fake_dockerd *f, struct fake_conn *conn,
                   const char *name, const char *body)
{
    json_t *cfg = json_loads(body ? body : "", 0, NULL);
    const char *image = json_string_value(json_object_get(cfg, "Image"));
    char msg[512];
    const char *mode = json_string_value(
        json_object_get(json_object_get(cfg, "HostConfig"), "NetworkMode"));
    bool own_mode = mode && strcmp(mode, "default") != 0 &&
                    strcmp(mode, "bridge") != 0 && strcmp(mode, "host") != 0 &&
                    strcmp(mode, "none") != 0;
    if (!image || !has(f->images, f->n_images, image)) {
        snprintf(msg, sizeof msg, "{\"message\":\"No such image: %s\"}",
                 image ? image : "");
        fake_reply_json(conn, 404, msg);
    } else if (own_mode && !fake_network_find(f, mode)) {
        snprintf(msg, sizeof msg, "{\"message\":\"network %s not found\"}",
                 mode);
        fake_reply_json(conn, 404, msg);
    } else if (fake_container_find(f, name)) {
        snprintf(msg, sizeof msg,
                 "{\"message\":\"Conflict. The container name \\\"/%s\\\" is "
                 "already in use\"}",
                 name);
        fake_reply_json(conn, 409, msg);
    } else {
        char *labels = json_dumps(json_object_get(cfg, "Labels"), 0);
        struct fake_container *c =
            fake_container_add(f, name, image, labels, "created", 0);
        free(labels);
        c->config = json_incref(cfg);
        if (own_mode) {
            json_t *ep = json_object_get(
                json_object_get(json_object_get(cfg, "NetworkingConfig"),
                                "EndpointsConfig"),
                mode);
            c->networks = json_pack("{s:O}", mode, ep ? ep : json_object());
        }
        snprintf(msg, sizeof msg, "{\"Id\":\"%s\",\"Warnings\":[]}", c->id);
        fake_reply_json(conn, 201, msg);
    }
    json_decref(cfg);
}

void fake_dockerd_release(struct fake_dockerd *f)
{
    struct fake_conn *c = f->held;
    assert_non_null(c);
    f->held = NULL;
    create(f, c, f->held_name, f->held_body);
    free(f->held_body);
    f->held_body = NULL;
}

static void pull(struct fake_dockerd *f, struct fake_conn *conn,
                 const char *target)
{
    char from[96], tag[24], image[128];
    query(target, "fromImage", from, sizeof from);
    query(target, "tag", tag, sizeof tag);
    snprintf(image, sizeof image, "%s:%s", from, tag);
    fake_stream_begin(conn);
    if (has(f->pullable, f->n_pullable, image)) {
        if (!has(f->images, f->n_images, image))
            fake_image_add(f, image);
        fake_seg_str(conn, "{\"status\":\"Downloaded newer image\"}\r\n");
    } else {
        char line[512];
        snprintf(line, sizeof line,
                 "{\"errorDetail\":{\"code\":404,\"message\":\"pull access "
                 "denied for %s\"},\"error\":\"pull access denied for %s, "
                 "repository does not exist\"}\r\n",
                 from, from);
        fake_seg_str(conn, line);
    }
    fake_stream_go(conn);
}

/* A borrowed object, or an empty one: for json_pack's "o" (which takes a
 * reference). */
static json_t *or_empty(json_t *j)
{
    return j ? json_incref(j) : json_object();
}

/* /containers/{ref}[/action] */
static void container_call(struct fake_dockerd *f, struct fake_conn *conn,
                           const char *target)
{
    char ref[256], action[32] = "";
    const char *p = target + strlen("/containers/");
    size_t n = strcspn(p, "/?");
    snprintf(ref, sizeof ref, "%.*s", (int)n, p);
    if (p[n] == '/')
        snprintf(action, sizeof action, "%.*s", (int)strcspn(p + n + 1, "?"),
                 p + n + 1);
    struct fake_container *c = fake_container_find(f, ref);
    if (!c) {
        char msg[300];
        snprintf(msg, sizeof msg, "{\"message\":\"No such container: %s\"}",
                 ref);
        fake_reply_json(conn, 404, msg);
        return;
    }
    if (strcmp(action, "start") == 0) {
        f->starts++;
        if (strcmp(c->state, "running") == 0) {
            fake_reply(conn, 304, "text/plain", NULL, 0);
            return;
        }
        snprintf(c->state, sizeof c->state, "running");
        emit(f, c, "start", 0);
        fake_reply(conn, 204, "text/plain", NULL, 0);
    } else if (strcmp(action, "stop") == 0) {
        f->stops++;
        if (strcmp(c->state, "running") != 0) {
            fake_reply(conn, 304, "text/plain", NULL, 0);
            return;
        }
        fake_dockerd_die(f, c, 143);
        fake_reply(conn, 204, "text/plain", NULL, 0);
    } else if (strcmp(action, "json") == 0) {
        json_t *j = json_pack(
            "{s:s, s:s, s:{s:s, s:b}, s:{s:s, s:o}}", "Id", c->id, "Name",
            c->name, "State", "Status", c->state, "Running",
            strcmp(c->state, "running") == 0, "NetworkSettings", "SandboxKey",
            strcmp(c->state, "created") == 0 ? "" : c->sandbox, "Networks",
            or_empty(c->networks));
        char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        fake_reply_json(conn, 200, text);
        free(text);
    } else if (!*action && strcmp(f->method, "DELETE") == 0) {
        f->removes++;
        if (strcmp(c->state, "running") == 0)
            fake_dockerd_die(f, c, 137);
        container_del(f, c);
        fake_reply(conn, 204, "text/plain", NULL, 0);
    } else {
        fake_reply_json(conn, 404, "{\"message\":\"not faked\"}");
    }
}

static json_t *network_json(const struct fake_network *n)
{
    const json_t *b = n->body;
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o}", "Id", n->id, "Name",
                     n->name, "Driver", "bridge", "Internal",
                     json_is_true(json_object_get(b, "Internal")), "Labels",
                     or_empty(json_object_get(b, "Labels")), "Options",
                     or_empty(json_object_get(b, "Options")), "IPAM",
                     or_empty(json_object_get(b, "IPAM")));
}

static void network_list(struct fake_dockerd *f, struct fake_conn *conn,
                         const char *target)
{
    char filters[1024];
    f->net_lists++;
    query(target, "filters", filters, sizeof filters);
    json_t *fj = *filters ? json_loads(filters, 0, NULL) : NULL;
    json_t *labels = json_object_get(fj, "label");
    json_t *out = json_array();
    for (int i = 0; i < f->n_networks; i++) {
        const struct fake_network *n = &f->networks[i];
        json_t *nl = json_object_get(n->body, "Labels");
        bool ok = true;
        size_t k;
        json_t *l;
        json_array_foreach(labels, k, l)
        {
            ok = ok && label_matches(nl, json_string_value(l));
        }
        if (ok)
            json_array_append_new(out, network_json(n));
    }
    json_decref(fj);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    fake_reply_json(conn, 200, text);
    free(text);
}

static void network_create(struct fake_dockerd *f, struct fake_conn *conn)
{
    f->net_creates++;
    json_t *b = json_loads(f->body ? f->body : "", 0, NULL);
    const char *name = json_string_value(json_object_get(b, "Name"));
    char msg[512];
    if (f->fail_net_creates) {
        fake_reply_json(conn, 500, "{\"message\":\"injected failure\"}");
    } else if (!name) {
        fake_reply_json(conn, 400, "{\"message\":\"no name\"}");
    } else if (fake_network_find(f, name)) {
        snprintf(msg, sizeof msg,
                 "{\"message\":\"network with name %s already exists\"}", name);
        fake_reply_json(conn, 409, msg);
    } else {
        struct fake_network *n = fake_network_add(f, f->body);
        snprintf(msg, sizeof msg, "{\"Id\":\"%s\",\"Warning\":\"\"}", n->id);
        fake_reply_json(conn, 201, msg);
    }
    json_decref(b);
}

/* /networks/{ref}[/connect] */
static void network_call(struct fake_dockerd *f, struct fake_conn *conn,
                         const char *target)
{
    char ref[256], msg[512];
    const char *p = target + strlen("/networks/");
    size_t n = strcspn(p, "/?");
    snprintf(ref, sizeof ref, "%.*s", (int)n, p);
    struct fake_network *net = fake_network_find(f, ref);
    if (!net) {
        snprintf(msg, sizeof msg, "{\"message\":\"network %s not found\"}",
                 ref);
        fake_reply_json(conn, 404, msg);
        return;
    }
    if (strcmp(f->method, "DELETE") == 0) {
        f->net_removes++;
        for (int i = 0; i < f->n_containers; i++)
            if (attached(&f->containers[i], net)) {
                snprintf(msg, sizeof msg,
                         "{\"message\":\"error while removing network: "
                         "network %s id %s has active endpoints\"}",
                         net->name, net->id);
                fake_reply_json(conn, 403, msg);
                return;
            }
        json_decref(net->body);
        size_t i = (size_t)(net - f->networks);
        memmove(net, net + 1,
                (size_t)(f->n_networks - 1 - (int)i) * sizeof *net);
        f->n_networks--;
        fake_reply(conn, 204, "text/plain", NULL, 0);
        return;
    }
    if (strcmp(p + n, "/connect") == 0 && strcmp(f->method, "POST") == 0) {
        f->connects++;
        json_t *b = json_loads(f->body ? f->body : "", 0, NULL);
        const char *cref = json_string_value(json_object_get(b, "Container"));
        struct fake_container *c = cref ? fake_container_find(f, cref) : NULL;
        if (!c) {
            snprintf(msg, sizeof msg, "{\"message\":\"No such container: %s\"}",
                     cref ? cref : "");
            fake_reply_json(conn, 404, msg);
        } else {
            if (!c->networks)
                c->networks = json_object();
            json_t *ep = json_object_get(b, "EndpointConfig");
            json_object_set_new(c->networks, net->name,
                                ep ? json_deep_copy(ep) : json_object());
            fake_reply(conn, 200, "text/plain", NULL, 0);
        }
        json_decref(b);
        return;
    }
    fake_reply_json(conn, 404, "{\"message\":\"not faked\"}");
}

static void engine(struct fake_dockerd *f, struct fake_conn *c,
                   const char *target)
{
    if (path_is(target, "/version")) {
        fake_reply_json(c, 200,
                        "{\"ApiVersion\":\"1.41\",\"Version\":\"20.10.24\"}");
    } else if (path_is(target, "/events")) {
        if (f->events)
            conn_close(f->events);
        f->events = c;
        fake_stream_begin(c);
        fake_stream_keep_open(c);
    } else if (path_is(target, "/containers/json")) {
        list(f, c, target);
    } else if (path_is(target, "/containers/create")) {
        char name[128];
        query(target, "name", name, sizeof name);
        f->creates++;
        if (f->hold_creates && !f->held) {
            f->held = c;
            snprintf(f->held_name, sizeof f->held_name, "%s", name);
            f->held_body = sk_strdup(f->body ? f->body : "");
            return;
        }
        create(f, c, name, f->body);
    } else if (path_is(target, "/networks") && strcmp(f->method, "GET") == 0) {
        network_list(f, c, target);
    } else if (path_is(target, "/networks/create")) {
        network_create(f, c);
    } else if (strncmp(target, "/networks/", 10) == 0) {
        network_call(f, c, target);
    } else if (path_is(target, "/images/create")) {
        f->pulls++;
        pull(f, c, target);
    } else if (strncmp(target, "/containers/", 12) == 0) {
        container_call(f, c, target);
    } else {
        fake_reply_json(c, 404, "{\"message\":\"page not found\"}");
    }
}

/* ---- the server ---- */

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fake_conn *c = s->data;
    struct fake_dockerd *f = c->f;
    if (nread < 0) {
        free(buf->base);
        conn_close(c);
        return;
    }
    c->in = sk_realloc(c->in, c->in_len + (size_t)nread + 1);
    memcpy(c->in + c->in_len, buf->base, (size_t)nread);
    c->in_len += (size_t)nread;
    c->in[c->in_len] = '\0';
    free(buf->base);
    for (;;) {
        char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
            return;
        size_t head = (size_t)(end - c->in) + 4;
        size_t body = 0;
        const char *cl = strcasestr(c->in, "\r\ncontent-length:");
        if (cl && cl < end)
            body = strtoul(cl + 17, NULL, 10);
        if (c->in_len < head + body)
            return;
        char target[2048];
        if (sscanf(c->in, "%15s %2047s", f->method, target) != 2)
            fail_msg("bad request line");
        const char *ct = strcasestr(c->in, "\r\ncontent-type: ");
        f->ctype[0] = '\0';
        if (ct && ct < end)
            sscanf(ct + 16, "%127[^\r]", f->ctype);
        free(f->body);
        f->body = sk_strndup(c->in + head, body);
        const char *t = target;
        assert_memory_equal(t, "/v1.41/", 7);
        t += 6;
        snprintf(f->target, sizeof f->target, "%s", t);
        f->requests++;
        memmove(c->in, c->in + head + body, c->in_len - head - body + 1);
        c->in_len -= head + body;
        if (f->route)
            f->route(f, c, f->target);
        else
            engine(f, c, f->target);
        if (c->pending_closes)
            return;
    }
}

static void alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = sk_malloc(size);
    buf->len = size;
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct fake_dockerd *f = server->data;
    if (status < 0)
        return;
    struct fake_conn *c = sk_calloc(1, sizeof *c);
    c->f = f;
    uv_pipe_init(f->loop, &c->pipe, 0);
    uv_timer_init(f->loop, &c->pace);
    c->pipe.data = c;
    c->pace.data = c;
    c->next = f->conns;
    if (f->conns)
        f->conns->prev = c;
    f->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

void fake_dockerd_start(struct fake_dockerd *f, uv_loop_t *loop,
                        fake_route_fn route, void *data)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->route = route;
    f->data = data;
    snprintf(f->dir, sizeof f->dir, "/tmp/skiff-fakedocker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sock, sizeof f->sock, "%s/docker.sock", f->dir);
    uv_pipe_init(loop, &f->server, 0);
    f->server.data = f;
    assert_int_equal(uv_pipe_bind(&f->server, f->sock), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, accept_cb), 0);
}

static void server_closed(uv_handle_t *h)
{
    ((struct fake_dockerd *)h->data)->server_closed = true;
}

void fake_dockerd_close(struct fake_dockerd *f)
{
    uv_close((uv_handle_t *)&f->server, server_closed);
    while (f->conns)
        conn_close(f->conns);
}

bool fake_dockerd_closed(void *ctx)
{
    return ((struct fake_dockerd *)ctx)->server_closed;
}

void fake_dockerd_free(struct fake_dockerd *f)
{
    for (int i = 0; i < f->n_containers; i++) {
        json_decref(f->containers[i].labels);
        json_decref(f->containers[i].config);
        json_decref(f->containers[i].networks);
    }
    f->n_containers = 0;
    for (int i = 0; i < f->n_networks; i++)
        json_decref(f->networks[i].body);
    f->n_networks = 0;
    free(f->body);
    free(f->held_body);
    f->body = f->held_body = NULL;
    unlink(f->sock);
    rmdir(f->dir);
}
