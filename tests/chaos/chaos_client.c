/* chaos_client: concurrent clients against a skiff cluster, recording every
 * operation's invoke and outcome as a history (history.h) for chaos_check.
 * tests/chaos/run.sh drives it while it injects faults.
 *
 *   chaos_client --config admin.json --hosts A,B,C --out H.jsonl
 *                [--prefix P] [--clients 8] [--duration 30s]
 *                [--registers 3] [--workload both|cas|set]
 *                [--timeout 3s] [--think 20ms] [--plain-percent 10]
 *                [--read-host A] [--seed N]
 *   chaos_client --config admin.json --hosts A,B,C --out H.jsonl
 *                --prefix P --final 30s
 *
 * Registers are services P-r0.. with replicas 0 (so nothing is scheduled
 * and no leader loop ever writes them), the value in their label "v"; the
 * version is the service's version (the Raft index of its last change).
 * Created (with value P-rK-init) before the clients start.
 *   read        GET /v1/services/NAME?consistent=1 -> value and version
 *   read_plain  the same without consistent=1 (any manager answers)
 *   write       POST /v1/services/NAME/update {"spec"} (no version)
 *   cas         the same with "version": the version this client last read
 * The set: each add creates a service P-aCLIENT-SEQ (replicas 0).
 *
 * Each client has one op in flight and waits a random think time (0 to
 * twice --think) between ops; each op goes to a random manager of --hosts
 * (reads to --read-host if given), on a connection of its own ("Connection:
 * close": curl resends a request on a new connection when a kept-alive one
 * dies before any reply, so a request could arrive twice). Outcomes: 200 ok;
 * 409 with code "conflict" fail (error "conflict": the version had moved on);
 * other 4xx fail (nothing happened); 5xx and every transport error (timeouts,
 * resets, refused connections: curl resends a request on a new connection when
 * a kept-alive one dies under it, so even "failed to connect" may follow a
 * request that arrived) info: it may or may not have happened -- and the
 * client is retired, the next op goes out under a new client number.
 *
 * --final: reads the whole set once through every manager with
 * ?consistent=1, then without it through every manager until that manager
 * returns the same elements (each retried until the deadline), and appends
 * them as set_read ops.
 *
 * Prints a summary line to stderr. Exits 0, or 1 if it could not set up or
 * read the set. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
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
    F_HOSTS,
    F_OUT,
    F_PREFIX,
    F_CLIENTS,
    F_DURATION,
    F_REGISTERS,
    F_WORKLOAD,
    F_TIMEOUT,
    F_THINK,
    F_PLAIN,
    F_READ_HOST,
    F_SEED,
    F_FINAL,
    F_HELP,
    F_COUNT
};

static const char *const workloads[] = {"both", "cas", "set", NULL};

static struct sk_flag flags[F_COUNT] = {
    [F_CONFIG] = {.name = "config",
                  .type = SK_FLAG_STRING,
                  .metavar = "FILE",
                  .help = "admin credentials (admin.json)"},
    [F_HOSTS] = {.name = "hosts",
                 .type = SK_FLAG_STRING,
                 .metavar = "A,B,..",
                 .help = "the managers' API endpoints (IP:PORT)"},
    [F_OUT] = {.name = "out",
               .type = SK_FLAG_STRING,
               .metavar = "FILE",
               .help = "the history, appended to"},
    [F_PREFIX] = {.name = "prefix",
                  .type = SK_FLAG_STRING,
                  .help = "names of registers and elements (default chaos)"},
    [F_CLIENTS] = {.name = "clients",
                   .type = SK_FLAG_INT,
                   .min = 1,
                   .max = 256,
                   .help = "concurrent clients (default 8)"},
    [F_DURATION] = {.name = "duration",
                    .type = SK_FLAG_DURATION,
                    .help = "how long to start new ops (default 30s)"},
    [F_REGISTERS] = {.name = "registers",
                     .type = SK_FLAG_INT,
                     .min = 1,
                     .max = 64,
                     .help = "CAS registers (default 3)"},
    [F_WORKLOAD] = {.name = "workload",
                    .type = SK_FLAG_ENUM,
                    .choices = workloads,
                    .help = "both (default), cas or set"},
    [F_TIMEOUT] = {.name = "timeout",
                   .type = SK_FLAG_DURATION,
                   .help = "per request (default 3s)"},
    [F_THINK] = {.name = "think",
                 .type = SK_FLAG_DURATION,
                 .help = "mean pause between a client's ops (default 20ms)"},
    [F_PLAIN] = {.name = "plain-percent",
                 .type = SK_FLAG_INT,
                 .min = 0,
                 .max = 100,
                 .help = "share of reads without consistent=1 (default 10)"},
    [F_READ_HOST] = {.name = "read-host",
                     .type = SK_FLAG_STRING,
                     .metavar = "IP:PORT",
                     .help = "send every read to this manager"},
    [F_SEED] = {.name = "seed",
                .type = SK_FLAG_INT,
                .min = 0,
                .help = "random seed (default: from the clock)"},
    [F_FINAL] = {.name = "final",
                 .type = SK_FLAG_DURATION,
                 .help = "read the whole set through every manager, "
                         "retrying at most this long"},
    [F_HELP] = {.name = "help",
                .short_name = 'h',
                .type = SK_FLAG_BOOL,
                .help = "this help"},
};

enum op_kind { OP_READ, OP_READ_PLAIN, OP_WRITE, OP_CAS, OP_ADD };
static const char *const op_names[] = {"read", "read_plain", "write", "cas",
                                       "add"};

struct driver;

struct client {
    struct driver *d;
    int64_t id; /* the client number in the history */
    struct sk_http_call call;
    uv_timer_t think;
    char *url, *body;
    const char *via;
    enum op_kind op;
    int reg;
    char value[96];
    uint64_t version;
    uint64_t *last_version; /* per register: last version read, 0: none */
};

struct driver {
    uv_loop_t loop;
    struct sk_http_client http;
    struct sk_tls_creds tls;
    char **hosts;
    size_t n_hosts;
    const char *read_host, *prefix;
    FILE *out;
    size_t n_regs;
    bool cas_on, set_on;
    int plain_percent;
    unsigned timeout_ms, think_ms;
    uint64_t stop_at, rng;
    int64_t next_id;
    uint64_t seq;
    struct client *clients;
    size_t n_clients, active;
    uint64_t ops, ok, fail, info;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chaos_client: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t rnd(struct driver *d, uint64_t n)
{
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return n ? d->rng % n : 0;
}

/* Monotonic time: the same clock in the run and in the final reads. */
static int64_t now_ns(void)
{
    return (int64_t)uv_hrtime();
}

/* Writes one event line; fields absent when NULL / not set. */
static void record(struct driver *d, json_t *ev)
{
    char *s = json_dumps(ev, JSON_COMPACT);
    fprintf(d->out, "%s\n", s);
    free(s);
    json_decref(ev);
}

static void register_name(const struct driver *d, int reg, char *buf,
                          size_t size)
{
    snprintf(buf, size, "%s-r%d", d->prefix, reg);
}

/* {"spec": {...}[, "version": V]} for a register or an element. */
static char *spec_body(const char *name, const char *value, uint64_t version)
{
    json_t *spec =
        json_pack("{s:s, s:i, s:{s:{s:s}}}", "name", name, "replicas", 0,
                  "task", "container", "image", "skiff-chaos");
    if (value)
        json_object_set_new(spec, "labels", json_pack("{s:s}", "v", value));
    json_t *body = json_pack("{s:o}", "spec", spec);
    if (version)
        json_object_set_new(body, "version", json_integer((json_int_t)version));
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return s;
}

/* The error code of an API error body ("conflict"), or NULL. */
static const char *error_code(json_t *reply)
{
    return json_string_value(
        json_object_get(json_object_get(reply, "error"), "code"));
}

/* value and version of a service from its JSON. */
static bool register_state(json_t *svc, const char **out_value,
                           uint64_t *out_version)
{
    json_t *ver = json_object_get(svc, "version");
    const char *v = json_string_value(json_object_get(
        json_object_get(json_object_get(svc, "spec"), "labels"), "v"));
    if (!json_is_integer(ver) || json_integer_value(ver) <= 0 || !v)
        return false;
    *out_value = v;
    *out_version = (uint64_t)json_integer_value(ver);
    return true;
}

static const char *op_name(const struct client *c)
{
    return op_names[c->op];
}

static json_t *event(struct client *c, const char *type)
{
    struct driver *d = c->d;
    json_t *ev =
        json_pack("{s:I, s:s, s:s, s:I}", "client", (json_int_t)c->id, "op",
                  op_name(c), "type", type, "t_ns", (json_int_t)now_ns());
    if (c->op != OP_ADD) {
        char reg[80];
        register_name(d, c->reg, reg, sizeof reg);
        json_object_set_new(ev, "register", json_string(reg));
    }
    return ev;
}

/* ---- the clients ---- */

static void client_next(struct client *c);
static void client_close(struct client *c);

static void think_cb(uv_timer_t *t)
{
    client_next(t->data);
}

static void client_done(struct client *c)
{
    struct driver *d = c->d;
    sk_http_call_reset(&c->call);
    free(c->url);
    free(c->body);
    c->url = c->body = NULL;
    if ((uint64_t)uv_hrtime() >= d->stop_at) {
        client_close(c);
        return;
    }
    uint64_t pause = d->think_ms ? rnd(d, 2 * d->think_ms + 1) : 0;
    uv_timer_start(&c->think, think_cb, pause, 0);
}

static void call_cb(struct sk_http_call *h)
{
    struct client *c = h->data;
    struct driver *d = c->d;
    json_t *reply = h->resp_body ? json_loads(h->resp_body, 0, NULL) : NULL;
    const char *type, *error = NULL;
    char errbuf[SK_ERRMSG_SIZE + 32];
    const char *value = NULL;
    uint64_t version = 0;
    bool is_read = c->op == OP_READ || c->op == OP_READ_PLAIN;
    if (h->status == 200) {
        type = "ok";
        if (is_read && !register_state(reply, &value, &version)) {
            type = "info";
            error = "reply without value or version";
        }
    } else if (h->status >= 400 && h->status < 500) {
        type = "fail";
        error = error_code(reply);
        if (!error) {
            snprintf(errbuf, sizeof errbuf, "HTTP %ld", h->status);
            error = errbuf;
        }
    } else {
        /* Even "failed to connect" may follow a request sent: curl resends
         * it on a new connection when a kept-alive one dies under it. */
        type = "info";
        const char *code = error_code(reply);
        if (h->status)
            snprintf(errbuf, sizeof errbuf, "HTTP %ld %s", h->status,
                     code ? code : "");
        else
            snprintf(errbuf, sizeof errbuf, "%s", h->err.msg);
        error = errbuf;
    }
    json_t *ev = event(c, type);
    if (is_read) {
        if (value) {
            json_object_set_new(ev, "value", json_string(value));
            json_object_set_new(ev, "version",
                                json_integer((json_int_t)version));
            c->last_version[c->reg] = version;
        }
    } else {
        json_object_set_new(ev, "value", json_string(c->value));
        if (c->op == OP_CAS)
            json_object_set_new(ev, "version",
                                json_integer((json_int_t)c->version));
    }
    if (error)
        json_object_set_new(ev, "error", json_string(error));
    record(d, ev);
    json_decref(reply);
    if (strcmp(type, "ok") == 0)
        d->ok++;
    else if (strcmp(type, "fail") == 0)
        d->fail++;
    else {
        d->info++;
        c->id = d->next_id++; /* retired: its op may still be in flight */
    }
    client_done(c);
}

/* A fresh connection for every op. curl sends a request again on a new
 * connection when a kept-alive one dies before any reply: a request could
 * arrive twice and take effect twice, which the history cannot show. Without
 * reuse, curl never resends. */
static const char *const close_header[] = {"Connection: close", NULL};

static void client_next(struct client *c)
{
    struct driver *d = c->d;
    /* Choose the op. */
    if (d->set_on && (!d->cas_on || rnd(d, 4) == 0)) {
        c->op = OP_ADD;
    } else {
        c->reg = (int)rnd(d, d->n_regs);
        uint64_t r = rnd(d, 100);
        if (r < 40 || !c->last_version[c->reg])
            c->op =
                (int)rnd(d, 100) < d->plain_percent ? OP_READ_PLAIN : OP_READ;
        else if (r < 55)
            c->op = OP_WRITE;
        else
            c->op = OP_CAS;
    }
    c->via = d->hosts[rnd(d, d->n_hosts)];
    if ((c->op == OP_READ || c->op == OP_READ_PLAIN) && d->read_host)
        c->via = d->read_host;
    char reg[80];
    register_name(d, c->reg, reg, sizeof reg);
    uint64_t seq = d->seq++;
    c->version = 0;
    switch (c->op) {
    case OP_READ:
    case OP_READ_PLAIN:
        c->url = sk_printf("https://%s/v1/services/%s%s", c->via, reg,
                           c->op == OP_READ ? "?consistent=1" : "");
        break;
    case OP_WRITE:
    case OP_CAS:
        snprintf(c->value, sizeof c->value, "%s-%lld-%llu", d->prefix,
                 (long long)c->id, (unsigned long long)seq);
        if (c->op == OP_CAS)
            c->version = c->last_version[c->reg];
        c->url = sk_printf("https://%s/v1/services/%s/update", c->via, reg);
        c->body = spec_body(reg, c->value, c->version);
        break;
    case OP_ADD:
        snprintf(c->value, sizeof c->value, "%s-a%lld-%llu", d->prefix,
                 (long long)c->id, (unsigned long long)seq);
        c->url = sk_printf("https://%s/v1/services", c->via);
        c->body = spec_body(c->value, NULL, 0);
        break;
    }
    json_t *ev = event(c, "invoke");
    if (c->op != OP_READ && c->op != OP_READ_PLAIN)
        json_object_set_new(ev, "value", json_string(c->value));
    if (c->op == OP_CAS)
        json_object_set_new(ev, "version",
                            json_integer((json_int_t)c->version));
    json_object_set_new(ev, "via", json_string(c->via));
    record(d, ev);
    d->ops++;

    memset(&c->call, 0, sizeof c->call);
    c->call.method = c->body ? "POST" : "GET";
    c->call.url = c->url;
    c->call.body = c->body;
    c->call.body_len = c->body ? strlen(c->body) : 0;
    c->call.tls = &d->tls;
    c->call.headers = close_header;
    c->call.connect_timeout_ms = d->timeout_ms;
    c->call.timeout_ms = d->timeout_ms;
    c->call.cb = call_cb;
    c->call.data = c;
    if (sk_http_call_start(&d->http, &c->call) != 0)
        die("%s: %s", c->url, c->call.err.msg);
}

static void think_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    struct driver *d = c->d;
    if (--d->active == 0)
        sk_http_client_close(&d->http, NULL);
}

static void client_close(struct client *c)
{
    uv_close((uv_handle_t *)&c->think, think_closed);
}

/* ---- setup and final reads (synchronous, before and after the loop) ---- */

/* A call retried through the hosts in turn until it gets an HTTP answer
 * that done() accepts, or the deadline passes. */
static bool call_until(struct driver *d, const char *method, const char *path,
                       const char *body, unsigned deadline_ms,
                       bool (*done)(struct sk_http_call *h, void *ctx),
                       void *ctx)
{
    uint64_t until = uv_hrtime() + (uint64_t)deadline_ms * 1000000u;
    for (size_t attempt = 0;; attempt++) {
        const char *host = d->hosts[attempt % d->n_hosts];
        char *url = sk_printf("https://%s%s", host, path);
        struct sk_http_call h = {.method = method,
                                 .url = url,
                                 .body = body,
                                 .body_len = body ? strlen(body) : 0,
                                 .tls = &d->tls,
                                 .connect_timeout_ms = d->timeout_ms,
                                 .timeout_ms = d->timeout_ms,
                                 .max_response_bytes = 256u << 20};
        sk_http_call_sync(&h);
        bool ok = done(&h, ctx);
        if (!ok && attempt % d->n_hosts == d->n_hosts - 1)
            fprintf(stderr, "chaos_client: %s %s: %s (retrying)\n", method, url,
                    h.status ? (h.resp_body ? h.resp_body : "") : h.err.msg);
        sk_http_call_reset(&h);
        free(url);
        if (ok)
            return true;
        if (uv_hrtime() >= until)
            return false;
        uv_sleep(100);
    }
}

static bool created(struct sk_http_call *h, void *ctx)
{
    /* 409: an earlier attempt went through after all. */
    return h->status == 200 || h->status == 409;
}

static void setup_registers(struct driver *d)
{
    for (size_t k = 0; k < d->n_regs; k++) {
        char reg[80], init[96];
        register_name(d, (int)k, reg, sizeof reg);
        snprintf(init, sizeof init, "%s-init", reg);
        char *body = spec_body(reg, init, 0);
        if (!call_until(d, "POST", "/v1/services", body, 30000, created, NULL))
            die("could not create register %s within 30 s", reg);
        free(body);
        record(d, json_pack("{s:s, s:s, s:s, s:s, s:I}", "op", "init",
                            "register", reg, "value", init, "type", "ok",
                            "t_ns", (json_int_t)now_ns()));
    }
}

struct set_read {
    const char *prefix;
    json_t *names; /* sorted array of element names */
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool got_set(struct sk_http_call *h, void *ctx)
{
    struct set_read *s = ctx;
    if (h->status != 200)
        return false;
    json_t *arr = json_loads(h->resp_body, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return false;
    }
    char pfx[96];
    snprintf(pfx, sizeof pfx, "%s-a", s->prefix);
    size_t n = 0, i;
    const char **v = sk_calloc(json_array_size(arr) + 1, sizeof *v);
    json_t *svc;
    json_array_foreach(arr, i, svc)
    {
        const char *name = json_string_value(
            json_object_get(json_object_get(svc, "spec"), "name"));
        if (name && strncmp(name, pfx, strlen(pfx)) == 0)
            v[n++] = name;
    }
    qsort(v, n, sizeof *v, cmp_str);
    json_decref(s->names);
    s->names = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(s->names, json_string(v[i]));
    free(v);
    json_decref(arr);
    return true;
}

struct plain_read {
    struct set_read r;
    json_t *want;
};

static bool got_same_set(struct sk_http_call *h, void *ctx)
{
    struct plain_read *p = ctx;
    return got_set(h, &p->r) && json_equal(p->r.names, p->want);
}

static void record_set_read(struct driver *d, const char *via, json_t *names,
                            int64_t t_invoke)
{
    json_int_t id = (json_int_t)d->next_id++;
    record(d, json_pack("{s:I, s:s, s:s, s:s, s:I}", "client", id, "op",
                        "set_read", "type", "invoke", "via", via, "t_ns",
                        (json_int_t)t_invoke));
    record(d, json_pack("{s:I, s:s, s:s, s:O, s:I}", "client", id, "op",
                        "set_read", "type", "ok", "values", names, "t_ns",
                        (json_int_t)now_ns()));
}

/* Returns false if some manager never answered, or never agreed. */
static bool final_reads(struct driver *d, unsigned deadline_ms)
{
    char **all = d->hosts;
    size_t n_all = d->n_hosts;
    json_t *want = NULL;
    bool ok = true;
    for (int plain = 0; plain < 2; plain++) {
        for (size_t i = 0; i < n_all; i++) {
            char via[128];
            snprintf(via, sizeof via, "%s%s", all[i], plain ? " (plain)" : "");
            d->hosts = &all[i];
            d->n_hosts = 1;
            int64_t t = now_ns();
            struct plain_read p = {.r = {.prefix = d->prefix}, .want = want};
            bool got = plain ? call_until(d, "GET", "/v1/services", NULL,
                                          deadline_ms, got_same_set, &p)
                             : call_until(d, "GET", "/v1/services?consistent=1",
                                          NULL, deadline_ms, got_set, &p.r);
            if (got || (plain && p.r.names)) {
                /* A plain read that never caught up is recorded as it
                 * last was: the checker says what it lacks. */
                record_set_read(d, via, p.r.names, t);
                if (!want)
                    want = json_incref(p.r.names);
            }
            if (!got) {
                fprintf(stderr,
                        "chaos_client: no %s read of the set via %s "
                        "within the deadline\n",
                        plain ? "plain" : "consistent", all[i]);
                ok = false;
            }
            json_decref(p.r.names);
        }
        if (!want)
            break; /* nothing to compare the plain reads with */
    }
    json_decref(want);
    d->hosts = all;
    d->n_hosts = n_all;
    return ok;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: chaos_client --config admin.json --hosts A,B,C "
               "--out HISTORY [options]\n"
               "       chaos_client --config admin.json --hosts A,B,C "
               "--out HISTORY --prefix P --final DEADLINE\n\n");
    sk_flags_usage(f, flags, F_COUNT);
}

static void split_hosts(struct driver *d, const char *csv)
{
    char *copy = sk_strdup(csv), *save = NULL;
    for (char *h = strtok_r(copy, ",", &save); h;
         h = strtok_r(NULL, ",", &save)) {
        d->hosts = sk_realloc(d->hosts, (d->n_hosts + 1) * sizeof *d->hosts);
        d->hosts[d->n_hosts++] = sk_strdup(h);
    }
    free(copy);
    if (!d->n_hosts)
        die("--hosts: no host given");
}

int main(int argc, char **argv)
{
    struct sk_flags_result res;
    struct sk_err err;
    if (sk_flags_parse(flags, F_COUNT, argc - 1, argv + 1, false, &res, &err) !=
        SK_OK) {
        fprintf(stderr, "chaos_client: %s\n", err.msg);
        usage(stderr);
        return 2;
    }
    if (flags[F_HELP].on) {
        usage(stdout);
        return 0;
    }
    if (!flags[F_CONFIG].set || !flags[F_HOSTS].set || !flags[F_OUT].set ||
        res.n_positional) {
        usage(stderr);
        return 2;
    }
    struct sk_admin_creds creds;
    if (sk_admin_creds_load(flags[F_CONFIG].str, &creds, &err) != SK_OK)
        die("%s", err.msg);
    const char *workload =
        flags[F_WORKLOAD].set ? flags[F_WORKLOAD].str : "both";
    struct driver d = {
        .tls = {.ca_pem = creds.ca_pem,
                .cert_pem = creds.cert_pem,
                .key_pem = creds.key_pem,
                .expect_role = "manager"},
        .read_host = flags[F_READ_HOST].set ? flags[F_READ_HOST].str : NULL,
        .prefix = flags[F_PREFIX].set ? flags[F_PREFIX].str : "chaos",
        .n_regs = flags[F_REGISTERS].set ? (size_t)flags[F_REGISTERS].num : 3,
        .cas_on = strcmp(workload, "set") != 0,
        .set_on = strcmp(workload, "cas") != 0,
        .plain_percent = flags[F_PLAIN].set ? (int)flags[F_PLAIN].num : 10,
        .timeout_ms =
            flags[F_TIMEOUT].set ? (unsigned)flags[F_TIMEOUT].num : 3000,
        .think_ms = flags[F_THINK].set ? (unsigned)flags[F_THINK].num : 20,
        .n_clients = flags[F_CLIENTS].set ? (size_t)flags[F_CLIENTS].num : 8,
    };
    split_hosts(&d, flags[F_HOSTS].str);
    uint64_t seed =
        flags[F_SEED].set ? (uint64_t)flags[F_SEED].num : (uint64_t)uv_hrtime();
    d.rng = seed * 2654435761u + 0x9e3779b97f4a7c15ull;
    if (!d.rng)
        d.rng = 1;
    d.out = fopen(flags[F_OUT].str, "a");
    if (!d.out)
        die("%s: %s", flags[F_OUT].str, strerror(errno));
    int rc = 0;

    if (flags[F_FINAL].set) {
        /* Client numbers above any the run used. */
        d.next_id = 1000000;
        rc = final_reads(&d, (unsigned)flags[F_FINAL].num) ? 0 : 1;
    } else {
        uint64_t duration =
            flags[F_DURATION].set ? (uint64_t)flags[F_DURATION].num : 30000;
        if (d.cas_on)
            setup_registers(&d);
        fflush(d.out);
        uv_loop_init(&d.loop);
        if (sk_http_client_init(&d.http, &d.loop, &err) != SK_OK)
            die("%s", err.msg);
        d.stop_at = uv_hrtime() + duration * 1000000u;
        d.clients = sk_calloc(d.n_clients, sizeof *d.clients);
        for (size_t i = 0; i < d.n_clients; i++) {
            struct client *c = &d.clients[i];
            c->d = &d;
            c->id = d.next_id++;
            c->last_version = sk_calloc(d.n_regs, sizeof *c->last_version);
            uv_timer_init(&d.loop, &c->think);
            c->think.data = c;
            d.active++;
            client_next(c);
        }
        uv_run(&d.loop, UV_RUN_DEFAULT);
        if (uv_loop_close(&d.loop) != 0)
            die("loop closed with handles open");
        fprintf(stderr,
                "chaos_client: seed %llu, %zu clients, %llu ops: %llu ok, "
                "%llu fail, %llu unknown\n",
                (unsigned long long)seed, d.n_clients,
                (unsigned long long)d.ops, (unsigned long long)d.ok,
                (unsigned long long)d.fail, (unsigned long long)d.info);
        for (size_t i = 0; i < d.n_clients; i++)
            free(d.clients[i].last_version);
        free(d.clients);
    }
    if (fclose(d.out) != 0)
        die("%s: %s", flags[F_OUT].str, strerror(errno));
    for (size_t i = 0; i < d.n_hosts; i++)
        free(d.hosts[i]);
    free(d.hosts);
    sk_admin_creds_free(&creds);
    sk_flags_free(flags, F_COUNT, &res);
    return rc;
}
