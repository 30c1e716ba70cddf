/* raft_load: a load generator for the Raft write path (a benchmark tool,
 * not a test; tests/bench/raft-bench.sh drives it).
 *
 *   raft_load --config admin.json --host IP:PORT [--clients N]
 *             [--duration 5s] [--warmup 500ms] [--label KEY]
 *   raft_load --config admin.json --host IP:PORT --until-ok 10s
 *
 * Load mode: N clients, each with one request in flight at a time, send node
 * label updates -- POST /v1/nodes/ID/update with {"spec": ...} and no
 * version, so they never conflict -- round-robin over every node, to one
 * manager (a follower forwards them to the leader). Each write changes the
 * label KEY to a fresh value, so each is a real Raft entry. Requests that
 * finish during the warmup are not counted. Prints one JSON line:
 *   {"clients":N,"ok":..,"errors":..,"seconds":..,"writes_per_s":..,
 *    "p50_ms":..,"p90_ms":..,"p99_ms":..,"max_ms":..,"first_error":".."}
 *
 * Until-ok mode: one write at a time (each with a 1 s timeout, 20 ms
 * between attempts) until one is accepted; exits 0 then, 1 after the
 * deadline. Prints the attempts and the milliseconds it took.
 *
 * Runs everything on one libuv loop with the async HTTP client; the loop
 * must close clean (no handle left) before it exits. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "skiff/datadir.h"
#include "skiff/flags.h"
#include "skiff/http_client.h"
#include "skiff/mem.h"

enum {
    F_CONFIG,
    F_HOST,
    F_CLIENTS,
    F_DURATION,
    F_WARMUP,
    F_LABEL,
    F_UNTIL_OK,
    F_HELP,
    F_COUNT
};

static struct sk_flag flags[F_COUNT] = {
    [F_CONFIG] = {.name = "config",
                  .type = SK_FLAG_STRING,
                  .metavar = "FILE",
                  .help = "admin credentials (admin.json)"},
    [F_HOST] = {.name = "host",
                .type = SK_FLAG_STRING,
                .metavar = "IP:PORT",
                .help = "the manager to send the writes to"},
    [F_CLIENTS] = {.name = "clients",
                   .type = SK_FLAG_INT,
                   .min = 1,
                   .max = 4096,
                   .help = "concurrent clients (default 1)"},
    [F_DURATION] = {.name = "duration",
                    .type = SK_FLAG_DURATION,
                    .help = "measured time (default 5s)"},
    [F_WARMUP] = {.name = "warmup",
                  .type = SK_FLAG_DURATION,
                  .help = "time before measuring (default 500ms)"},
    [F_LABEL] = {.name = "label",
                 .type = SK_FLAG_STRING,
                 .metavar = "KEY",
                 .help = "label to write (default bench)"},
    [F_UNTIL_OK] = {.name = "until-ok",
                    .type = SK_FLAG_DURATION,
                    .help = "retry one write until accepted, at most this "
                            "long"},
    [F_HELP] = {.name = "help",
                .short_name = 'h',
                .type = SK_FLAG_BOOL,
                .help = "this help"},
};

struct node {
    char *id;
    json_t *spec; /* as read; labels[KEY] is replaced per write */
};

struct bench;

struct client {
    struct bench *b;
    struct sk_http_call call;
    char *url, *body;
    uint64_t started_ns;
};

struct bench {
    uv_loop_t loop;
    struct sk_http_client http;
    struct sk_tls_creds tls;
    const char *host, *label;
    struct node *nodes;
    size_t n_nodes;
    uint64_t seq;

    /* load mode */
    struct client *clients;
    size_t n_clients, in_flight;
    uint64_t t0_ns, measure_from_ns, stop_at_ns;
    double *lat_ms;
    size_t n_lat, cap_lat;
    uint64_t ok, errors;
    char first_error[SK_ERRMSG_SIZE + 16];

    /* until-ok mode */
    bool until_ok, accepted;
    unsigned attempts;
    uv_timer_t retry;
};

static void die(const char *msg)
{
    fprintf(stderr, "raft_load: %s\n", msg);
    exit(1);
}

/* Reads the nodes (IDs and specs) through the target manager. */
static void load_nodes(struct bench *b)
{
    char *url = sk_printf("https://%s/v1/nodes", b->host);
    struct sk_http_call call = {
        .url = url, .tls = &b->tls, .timeout_ms = 10000};
    struct sk_err err;
    if (sk_http_call_sync(&call) != SK_OK ||
        sk_http_call_api_error(&call, &err) != SK_OK) {
        fprintf(stderr, "raft_load: GET %s: %s\n", url,
                call.err.code ? call.err.msg : err.msg);
        exit(1);
    }
    json_t *arr = json_loads(call.resp_body, 0, NULL);
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        die("GET /v1/nodes: no nodes in the reply");
    b->n_nodes = json_array_size(arr);
    b->nodes = sk_calloc(b->n_nodes, sizeof *b->nodes);
    for (size_t i = 0; i < b->n_nodes; i++) {
        json_t *n = json_array_get(arr, i);
        const char *id = json_string_value(json_object_get(n, "id"));
        json_t *spec = json_object_get(n, "spec");
        if (!id || !json_is_object(spec))
            die("GET /v1/nodes: a node without id or spec");
        b->nodes[i].id = sk_strdup(id);
        b->nodes[i].spec = json_deep_copy(spec);
        if (!json_is_object(json_object_get(b->nodes[i].spec, "labels")))
            json_object_set_new(b->nodes[i].spec, "labels", json_object());
    }
    json_decref(arr);
    sk_http_call_reset(&call);
    free(url);
}

/* The next write: a fresh label value on the next node in turn. */
static void next_write(struct bench *b, char **out_url, char **out_body)
{
    uint64_t seq = b->seq++;
    struct node *n = &b->nodes[seq % b->n_nodes];
    char value[32];
    snprintf(value, sizeof value, "%llu", (unsigned long long)seq);
    json_object_set_new(json_object_get(n->spec, "labels"), b->label,
                        json_string(value));
    json_t *body = json_pack("{s:O}", "spec", n->spec);
    *out_body = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    *out_url = sk_printf("https://%s/v1/nodes/%s/update", b->host, n->id);
}

static void record(struct bench *b, double ms)
{
    if (b->n_lat == b->cap_lat) {
        b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 4096;
        b->lat_ms = sk_realloc(b->lat_ms, b->cap_lat * sizeof *b->lat_ms);
    }
    b->lat_ms[b->n_lat++] = ms;
}

static void client_start(struct client *c);

static void client_cb(struct sk_http_call *h)
{
    struct client *c = h->data;
    struct bench *b = c->b;
    uint64_t now = uv_hrtime();
    struct sk_err err;
    bool ok = sk_http_call_api_error(h, &err) == SK_OK;
    if (now >= b->measure_from_ns && c->started_ns >= b->measure_from_ns &&
        now <= b->stop_at_ns) {
        if (ok) {
            b->ok++;
            record(b, (double)(now - c->started_ns) / 1e6);
        } else {
            b->errors++;
            if (!b->first_error[0])
                snprintf(b->first_error, sizeof b->first_error, "%s", err.msg);
        }
    } else if (!ok && !b->first_error[0] && h->err.code != SK_ECANCELED) {
        snprintf(b->first_error, sizeof b->first_error, "(warmup) %s", err.msg);
    }
    sk_http_call_reset(h);
    free(c->url);
    free(c->body);
    c->url = c->body = NULL;
    b->in_flight--;
    if (now < b->stop_at_ns)
        client_start(c);
    else if (b->in_flight == 0)
        sk_http_client_close(&b->http, NULL);
}

static void client_start(struct client *c)
{
    struct bench *b = c->b;
    next_write(b, &c->url, &c->body);
    memset(&c->call, 0, sizeof c->call);
    c->call.method = "POST";
    c->call.url = c->url;
    c->call.body = c->body;
    c->call.body_len = strlen(c->body);
    c->call.tls = &b->tls;
    c->call.connect_timeout_ms = 2000;
    c->call.timeout_ms = 10000;
    c->call.cb = client_cb;
    c->call.data = c;
    c->started_ns = uv_hrtime();
    b->in_flight++;
    if (sk_http_call_start(&b->http, &c->call) != 0) {
        fprintf(stderr, "raft_load: %s\n", c->call.err.msg);
        exit(1);
    }
}

/* ---- until-ok ---- */

static void probe_start(struct bench *b);

static void retry_cb(uv_timer_t *t)
{
    probe_start(t->data);
}

static void probe_cb(struct sk_http_call *h)
{
    struct client *c = h->data;
    struct bench *b = c->b;
    struct sk_err err;
    bool ok = sk_http_call_api_error(h, &err) == SK_OK;
    if (!ok)
        snprintf(b->first_error, sizeof b->first_error, "%s", err.msg);
    sk_http_call_reset(h);
    free(c->url);
    free(c->body);
    c->url = c->body = NULL;
    if (ok || uv_hrtime() >= b->stop_at_ns) {
        b->accepted = ok;
        uv_close((uv_handle_t *)&b->retry, NULL);
        sk_http_client_close(&b->http, NULL);
        return;
    }
    uv_timer_start(&b->retry, retry_cb, 20, 0);
}

static void probe_start(struct bench *b)
{
    struct client *c = &b->clients[0];
    b->attempts++;
    next_write(b, &c->url, &c->body);
    memset(&c->call, 0, sizeof c->call);
    c->call.method = "POST";
    c->call.url = c->url;
    c->call.body = c->body;
    c->call.body_len = strlen(c->body);
    c->call.tls = &b->tls;
    c->call.connect_timeout_ms = 500;
    c->call.timeout_ms = 1000;
    c->call.cb = probe_cb;
    c->call.data = c;
    if (sk_http_call_start(&b->http, &c->call) != 0) {
        fprintf(stderr, "raft_load: %s\n", c->call.err.msg);
        exit(1);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void usage(FILE *f)
{
    fprintf(f, "usage: raft_load --config admin.json --host IP:PORT "
               "[--clients N] [--duration D] [--warmup D] [--label KEY]\n"
               "       raft_load --config admin.json --host IP:PORT "
               "--until-ok D\n\n");
    sk_flags_usage(f, flags, F_COUNT);
}

int main(int argc, char **argv)
{
    struct sk_flags_result res;
    struct sk_err err;
    if (sk_flags_parse(flags, F_COUNT, argc - 1, argv + 1, false, &res, &err) !=
        SK_OK) {
        fprintf(stderr, "raft_load: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (flags[F_HELP].on) {
        usage(stdout);
        return 0;
    }
    if (!flags[F_CONFIG].set || !flags[F_HOST].set || res.n_positional) {
        usage(stderr);
        return 2;
    }
    struct sk_admin_creds creds;
    if (sk_admin_creds_load(flags[F_CONFIG].str, &creds, &err) != SK_OK) {
        fprintf(stderr, "raft_load: %s\n", err.msg);
        return 1;
    }
    struct bench b = {
        .tls = {.ca_pem = creds.ca_pem,
                .cert_pem = creds.cert_pem,
                .key_pem = creds.key_pem,
                .expect_role = "manager"},
        .host = flags[F_HOST].str,
        .label = flags[F_LABEL].set ? flags[F_LABEL].str : "bench",
        .until_ok = flags[F_UNTIL_OK].set,
    };
    uint64_t start_ns = uv_hrtime();
    load_nodes(&b);
    uv_loop_init(&b.loop);
    if (sk_http_client_init(&b.http, &b.loop, &err) != SK_OK)
        die(err.msg);

    if (b.until_ok) {
        b.clients = sk_calloc(1, sizeof *b.clients);
        b.clients[0].b = &b;
        b.stop_at_ns = start_ns + (uint64_t)flags[F_UNTIL_OK].num * 1000000u;
        uv_timer_init(&b.loop, &b.retry);
        b.retry.data = &b;
        probe_start(&b);
    } else {
        b.n_clients = flags[F_CLIENTS].set ? (size_t)flags[F_CLIENTS].num : 1;
        uint64_t warmup =
            flags[F_WARMUP].set ? (uint64_t)flags[F_WARMUP].num : 500;
        uint64_t duration =
            flags[F_DURATION].set ? (uint64_t)flags[F_DURATION].num : 5000;
        b.clients = sk_calloc(b.n_clients, sizeof *b.clients);
        b.t0_ns = uv_hrtime();
        b.measure_from_ns = b.t0_ns + warmup * 1000000u;
        b.stop_at_ns = b.measure_from_ns + duration * 1000000u;
        for (size_t i = 0; i < b.n_clients; i++) {
            b.clients[i].b = &b;
            client_start(&b.clients[i]);
        }
    }
    uv_run(&b.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&b.loop);
    if (rc != 0) {
        fprintf(stderr, "raft_load: loop closed with handles open: %s\n",
                uv_strerror(rc));
        return 1;
    }

    int exit_code = 0;
    if (b.until_ok) {
        double ms = (double)(uv_hrtime() - start_ns) / 1e6;
        json_t *out = json_pack("{s:b, s:i, s:f, s:s}", "accepted", b.accepted,
                                "attempts", (int)b.attempts, "ms", ms,
                                "last_error", b.first_error);
        char *s = json_dumps(out, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(out);
        exit_code = b.accepted ? 0 : 1;
    } else {
        qsort(b.lat_ms, b.n_lat, sizeof *b.lat_ms, cmp_double);
        double secs = (double)(b.stop_at_ns - b.measure_from_ns) / 1e9;
        json_t *out = json_pack(
            "{s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:s}",
            "clients", (int)b.n_clients, "ok", (json_int_t)b.ok, "errors",
            (json_int_t)b.errors, "seconds", secs, "writes_per_s",
            (double)b.ok / secs, "p50_ms", pct(b.lat_ms, b.n_lat, 50), "p90_ms",
            pct(b.lat_ms, b.n_lat, 90), "p99_ms", pct(b.lat_ms, b.n_lat, 99),
            "max_ms", b.n_lat ? b.lat_ms[b.n_lat - 1] : 0.0, "nodes",
            (int)b.n_nodes, "first_error", b.first_error);
        char *s = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%s\n", s);
        free(s);
        json_decref(out);
        exit_code = b.ok > 0 ? 0 : 1;
    }
    for (size_t i = 0; i < b.n_nodes; i++) {
        free(b.nodes[i].id);
        json_decref(b.nodes[i].spec);
    }
    free(b.nodes);
    free(b.clients);
    free(b.lat_ms);
    sk_admin_creds_free(&creds);
    sk_flags_free(flags, F_COUNT, &res);
    return exit_code;
}
