/* The CLI's plumbing: the credentials and the managers' addresses, calls
 * to the managers with failover, streaming, tables, small formatting
 * helpers. Calls nothing of skiff.c (which only parses the global flags
 * and dispatches) nor of the command files. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "skiff/http_client.h"
#include "skiff/mem.h"
#include "skiff/parse.h"
#include "skiff_cli.h"

struct cli cli;

int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "skiff: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

int fail_err(const struct sk_err *err)
{
    return fail("%s", err->msg);
}

/* The output flags -- --format and -q -- may also come after the command,
 * as with docker ("skiff node ls --format json"): they are taken out of the
 * arguments here, before the command's own flags are parsed (and, for a
 * command whose positional arguments end the flags, only before the first
 * of those). */
static int take_output_flags(const struct sk_flag *flags, size_t n, int argc,
                             char **argv, bool stop_at_positional)
{
    bool has_quiet = false;
    for (size_t i = 0; i < n; i++)
        has_quiet |= strcmp(flags[i].name, "quiet") == 0;
    int k = 0;
    bool positional_seen = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0 || (stop_at_positional && positional_seen)) {
            argv[k++] = argv[i];
            continue;
        }
        if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            cli.json = strcmp(argv[i + 1], "json") == 0;
            i++;
            continue;
        }
        if (strncmp(a, "--format=", 9) == 0) {
            cli.json = strcmp(a + 9, "json") == 0;
            continue;
        }
        if (!has_quiet && (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)) {
            cli.quiet = true;
            continue;
        }
        if (a[0] != '-')
            positional_seen = true;
        argv[k++] = argv[i];
    }
    return k;
}

void command_of(const char *usage, char *buf, size_t size)
{
    size_t len = 0;
    for (const char *p = usage; *p;) {
        size_t w = strspn(p, "abcdefghijklmnopqrstuvwxyz-");
        if (w == 0 || (p[w] != ' ' && p[w] != '\0'))
            break;
        len = (size_t)(p + w - usage);
        p += w;
        p += *p == ' ';
    }
    if (len >= size)
        len = size - 1;
    memcpy(buf, usage, len);
    buf[len] = '\0';
}

bool parse_flags(const char *usage, struct sk_flag *flags, size_t n, int argc,
                 char **argv, bool stop_at_positional,
                 struct sk_flags_result *res, int *exit_code)
{
    struct sk_err err;
    argc = take_output_flags(flags, n, argc, argv, stop_at_positional);
    if (cli.describe) {
        cli.describe(usage, flags, n, cli.describe_ctx);
        *exit_code = 0;
        return false;
    }
    if (sk_flags_parse(flags, n, argc, argv, stop_at_positional, res, &err) !=
        SK_OK) {
        /* One line and where to read more, as docker does: the whole
         * usage would bury the line that matters. */
        char cmd[64];
        command_of(usage, cmd, sizeof cmd);
        fprintf(stderr, "skiff: %s\nSee '%s --help'.\n", err.msg, cmd);
        *exit_code = 2;
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(flags[i].name, "help") == 0 && flags[i].on) {
            printf("usage: %s\n", usage);
            sk_flags_usage(stdout, flags, n);
            *exit_code = 0;
            return false;
        }
    }
    return true;
}

static void add_hosts(const char *list)
{
    char *copy = sk_strdup(list), *save = NULL;
    for (char *h = strtok_r(copy, ",", &save); h;
         h = strtok_r(NULL, ",", &save)) {
        if (!*h)
            continue;
        cli.hosts =
            sk_realloc(cli.hosts, (cli.n_hosts + 1) * sizeof *cli.hosts);
        /* A bare address means the default API port. */
        cli.hosts[cli.n_hosts++] =
            strchr(h, ':') ? sk_strdup(h) : sk_printf("%s:7443", h);
    }
    free(copy);
}

/* Keeps the credentials file's list of managers current, so the CLI can
 * fail over to managers that joined after the file was written. Only when
 * the list looks stale (fewer than 3, or the first did not answer); quiet
 * on failure: the command itself already succeeded. */
void cli_refresh_managers(void)
{
    if (!cli.connected || cli.host_flag ||
        (cli.creds.n_managers >= 3 && cli.preferred == 0))
        return;
    const char *config = cli.config;
    json_t *list = NULL;
    struct sk_err err;
    unsigned saved = cli.timeout_ms;
    cli.timeout_ms = 2000;
    enum sk_rc rc = cli_call("GET", "/v1/managers", NULL, &list, &err);
    cli.timeout_ms = saved;
    size_t n = json_array_size(list);
    if (rc != SK_OK || n == 0) {
        json_decref(list);
        return;
    }
    bool same = n == cli.creds.n_managers;
    for (size_t i = 0; same && i < n; i++) {
        const char *a = json_string_value(json_array_get(list, i));
        same = a && strcmp(a, cli.creds.managers[i]) == 0;
    }
    if (!same) {
        char **addrs = sk_calloc(n, sizeof *addrs);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const char *a = json_string_value(json_array_get(list, i));
            if (a)
                addrs[k++] = sk_strdup(a);
        }
        for (size_t i = 0; i < cli.creds.n_managers; i++)
            free(cli.creds.managers[i]);
        free(cli.creds.managers);
        cli.creds.managers = addrs;
        cli.creds.n_managers = k;
        if (k && sk_admin_creds_save(config, &cli.creds, &err) != SK_OK)
            fprintf(stderr, "skiff: note: could not update %s: %s\n", config,
                    err.msg);
    }
    json_decref(list);
}

/* Loads the credentials and the managers' addresses on the first call to a
 * manager, so that what needs no manager (a command's --help, its flag
 * errors) works without credentials. */
/* CONFIG.index: "CLUSTER-ID INDEX", the highest Raft index seen in a reply
 * from that cluster (read your writes across commands). Unreadable, absent
 * or another cluster's (a cluster made anew with the same credentials
 * path): 0 -- no guarantee, and no wait for an index that never comes. */
static char *index_path(void)
{
    return sk_printf("%s.index", cli.config);
}

static void load_seen_index(void)
{
    char *path = index_path();
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    char cluster[64] = "";
    if (f) {
        if (fscanf(f, "%63s %llu", cluster, &v) != 2 || !cli.creds.cluster_id ||
            strcmp(cluster, cli.creds.cluster_id))
            v = 0;
        fclose(f);
    }
    free(path);
    cli.seen_index = cli.seen_loaded = v;
}

/* Written only when it grew, atomically, and never lowered. */
static void save_seen_index(void)
{
    if (cli.seen_index <= cli.seen_loaded || !cli.creds.cluster_id)
        return;
    char *path = index_path();
    char *tmp = sk_printf("%s.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%s %llu\n", cli.creds.cluster_id, cli.seen_index);
        if (fclose(f) == 0)
            rename(tmp, path);
        else
            unlink(tmp);
    }
    free(tmp);
    free(path);
}

enum sk_rc cli_connect(struct sk_err *err)
{
    if (cli.connected)
        return SK_OK;
    if (sk_admin_creds_load(cli.config, &cli.creds, err) != SK_OK) {
        char cause[sizeof err->msg];
        snprintf(cause, sizeof cause, "%s", err->msg);
        return sk_err_set(err, err->code,
                          "credentials: %s\n  (run skiff on a manager set "
                          "up with --init, or give --config / SKIFF_CONFIG)",
                          cause);
    }
    if (cli.host_flag)
        add_hosts(cli.host_flag);
    else
        for (size_t i = 0; i < cli.creds.n_managers; i++)
            add_hosts(cli.creds.managers[i]);
    load_seen_index();
    cli.connected = true;
    return SK_OK;
}

void cli_close(void)
{
    if (cli.connected)
        save_seen_index();
    for (size_t i = 0; i < cli.n_hosts; i++)
        free(cli.hosts[i]);
    free(cli.hosts);
    cli.hosts = NULL;
    cli.n_hosts = 0;
    sk_admin_creds_free(&cli.creds);
    cli.connected = false;
}

static unsigned long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000 +
           (unsigned long long)ts.tv_nsec / 1000000;
}

/* Worth trying another manager? A TLS refusal before any HTTP status
 * (SK_EAUTH, e.g. "server role is worker, want manager": that host was
 * demoted and its agent now answers there) is worth trying the others too,
 * but not another round if every host refused so. */
static bool retryable(enum sk_rc rc, long status)
{
    if (status == 503 || status == 504)
        return true;
    return status == 0 &&
           (rc == SK_EUNAVAIL || rc == SK_ETIMEDOUT || rc == SK_EIO ||
            rc == SK_ECANCELED || rc == SK_EPROTO || rc == SK_EAUTH);
}

struct stream_ctx {
    bool (*on_line)(const char *line, void *ctx);
    void *ctx;
    char *buf;
    size_t len;
    bool stopped;
};

static bool stream_data(struct sk_http_call *call, const char *data, size_t len)
{
    struct stream_ctx *s = call->data;
    s->buf = sk_realloc(s->buf, s->len + len + 1);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    char *start = s->buf, *nl;
    while ((nl = memchr(start, '\n', s->len - (size_t)(start - s->buf)))) {
        *nl = '\0';
        if (*start && !s->on_line(start, s->ctx)) {
            s->stopped = true;
            return false;
        }
        start = nl + 1;
    }
    size_t rest = s->len - (size_t)(start - s->buf);
    memmove(s->buf, start, rest);
    s->len = rest;
    return true;
}

/* Copies s into buf, cut to fit. */
static void put(char *buf, size_t size, const char *s)
{
    size_t len = strlen(s);
    if (len >= size)
        len = size - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
}

/* What went wrong with one manager, in a few words: "connection
 * refused", "connection timed out", "503: no leader yet". */
static void short_cause(const struct sk_http_call *call, enum sk_rc rc,
                        const struct sk_err *e, char *buf, size_t size)
{
    if (call->status != 0) {
        int n = snprintf(buf, size, "%ld: ", call->status);
        if (n > 0 && (size_t)n < size)
            put(buf + n, size - (size_t)n, e->msg);
        return;
    }
    if (rc == SK_ETIMEDOUT) {
        put(buf, size,
            strstr(e->msg, "onnection timed out") ? "connection timed out"
                                                  : "no reply in time");
        return;
    }
    if (rc == SK_EUNAVAIL && call->os_errno) {
        put(buf, size, strerror(call->os_errno));
        if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
            buf[0] = (char)(buf[0] - 'A' + 'a');
        return;
    }
    /* The transport's message names the URL first: the host is named
     * already. */
    const char *m = e->msg;
    const char *sep = strncmp(m, "https://", 8) == 0 ? strstr(m, ": ") : NULL;
    put(buf, size, sep ? sep + 2 : m);
}

/* Why each manager did not answer, for the one message of a call that
 * found none. */
struct tried {
    char cause[160];
    unsigned tries;
};

static void no_manager(const struct tried *tried, bool all_refused,
                       unsigned long long took_ms, struct sk_err *err)
{
    char list[SK_ERRMSG_SIZE] = "";
    size_t used = 0;
    unsigned most = 0;
    for (size_t i = 0; i < cli.n_hosts; i++) {
        if (!tried[i].tries)
            continue;
        if (tried[i].tries > most)
            most = tried[i].tries;
        int n = snprintf(list + used, sizeof list - used, "%s%s (%s)",
                         used ? ", " : "", cli.hosts[i], tried[i].cause);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    enum sk_rc code = err->code ? err->code : SK_EUNAVAIL;
    if (all_refused)
        sk_err_set(err, code, "no manager accepted the connection: %s", list);
    else if (most > 1)
        sk_err_set(err, code, "no manager answered in %.1f s (%u tries): %s",
                   (double)took_ms / 1000.0, most, list);
    else
        sk_err_set(err, code, "no manager answered in %.1f s: %s",
                   (double)took_ms / 1000.0, list);
}

static enum sk_rc do_call(const char *method, const char *path,
                          const char *body, struct stream_ctx *stream,
                          json_t **out, struct sk_err *err)
{
    if (cli_connect(err) != SK_OK)
        return err->code;
    if (cli.n_hosts == 0)
        return sk_err_set(err, SK_EUNAVAIL, "no manager to ask");
    struct sk_tls_creds tls = {.ca_pem = cli.creds.ca_pem,
                               .cert_pem = cli.creds.cert_pem,
                               .key_pem = cli.creds.key_pem,
                               .expect_role = "manager"};
    unsigned long long start = mono_ms(), deadline = start + cli.timeout_ms;
    struct tried *tried = sk_calloc(cli.n_hosts, sizeof *tried);
    struct sk_err last = {.code = SK_EUNAVAIL, .msg = "no manager to ask"};
    bool all_refused = false;
    for (unsigned round = 0;; round++) {
        all_refused = true;
        for (size_t k = 0; k < cli.n_hosts; k++) {
            size_t i = (cli.preferred + k) % cli.n_hosts;
            /* Reads: linearizable, or stale on purpose, as asked. */
            bool read = strcmp(method, "GET") == 0;
            const char *flag = read && cli.consistent ? "consistent=1"
                               : read && cli.stale    ? "stale=1"
                                                      : NULL;
            char *url = sk_printf("https://%s%s%s%s", cli.hosts[i], path,
                                  flag ? (strchr(path, '?') ? "&" : "?") : "",
                                  flag ? flag : "");
            char min_index[64];
            snprintf(min_index, sizeof min_index, "X-Skiff-Min-Index: %llu",
                     cli.seen_index);
            const char *headers[] = {min_index, NULL};
            unsigned long long now = mono_ms();
            unsigned left = deadline > now ? (unsigned)(deadline - now) : 1;
            struct sk_http_call call = {
                .method = method,
                .url = url,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .tls = &tls,
                .connect_timeout_ms = left < 2000 ? left : 2000,
                .timeout_ms = stream ? 0 : (left < 10000 ? left : 10000),
                .on_data = stream ? stream_data : NULL,
                .data = stream,
                .headers = headers,
                .capture_header = "X-Skiff-Index",
            };
            enum sk_rc rc = sk_http_call_sync(&call);
            unsigned long long applied =
                call.captured ? strtoull(call.captured, NULL, 10) : 0;
            if (applied > cli.seen_index && call.status >= 200 &&
                call.status < 300)
                cli.seen_index = applied;
            long status = call.status;
            if (rc == SK_OK || (stream && stream->stopped))
                rc = stream && stream->stopped
                         ? SK_OK
                         : sk_http_call_api_error(&call, &last);
            else
                sk_err_copy(&last, &call.err);
            if (!retryable(rc, status)) {
                if (rc == SK_OK && out) {
                    *out = call.resp_body && *call.resp_body
                               ? json_loads(call.resp_body, 0, NULL)
                               : NULL;
                }
                cli.preferred = i;
                sk_http_call_reset(&call);
                free(url);
                free(tried);
                if (rc != SK_OK)
                    sk_err_copy(err, &last);
                return rc;
            }
            tried[i].tries++;
            short_cause(&call, rc, &last, tried[i].cause,
                        sizeof tried[i].cause);
            all_refused = all_refused && status == 0 && rc == SK_EAUTH;
            sk_http_call_reset(&call);
            free(url);
            if (mono_ms() >= deadline)
                break;
        }
        if (all_refused || mono_ms() + 300 >= deadline)
            break;
        usleep(300 * 1000);
    }
    err->code = last.code;
    no_manager(tried, all_refused, mono_ms() - start, err);
    free(tried);
    return err->code;
}

enum sk_rc cli_call(const char *method, const char *path, const json_t *body,
                    json_t **out, struct sk_err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (out)
        *out = NULL;
    enum sk_rc rc = do_call(method, path, text, NULL, out, err);
    free(text);
    return rc;
}

enum sk_rc cli_stream(const char *path,
                      bool (*on_line)(const char *line, void *ctx), void *ctx,
                      struct sk_err *err)
{
    struct stream_ctx s = {.on_line = on_line, .ctx = ctx};
    enum sk_rc rc = do_call("GET", path, NULL, &s, NULL, err);
    free(s.buf);
    return rc;
}

void print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text) {
        puts(text);
        free(text);
    }
}

void table_init(struct table *t, size_t cols, ...)
{
    t->cols = cols;
    t->rows = 0;
    t->cells = NULL;
    va_list ap;
    va_start(ap, cols);
    t->cells = sk_calloc(cols, sizeof *t->cells);
    for (size_t i = 0; i < cols; i++)
        t->cells[i] = sk_strdup(va_arg(ap, const char *));
    t->rows = 1;
    va_end(ap);
}

void table_row(struct table *t, ...)
{
    t->cells = sk_realloc(t->cells, (t->rows + 1) * t->cols * sizeof *t->cells);
    va_list ap;
    va_start(ap, t);
    for (size_t i = 0; i < t->cols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->rows * t->cols + i] = sk_strdup(s ? s : "");
    }
    va_end(ap);
    t->rows++;
}

void table_print(struct table *t)
{
    size_t *w = sk_calloc(t->cols, sizeof *w);
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->cols; c++) {
            size_t len = strlen(t->cells[r * t->cols + c]);
            if (len > w[c])
                w[c] = len;
        }
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) {
            const char *s = t->cells[r * t->cols + c];
            if (c + 1 < t->cols)
                printf("%-*s   ", (int)w[c], s);
            else
                printf("%s", s);
        }
        printf("\n");
    }
    free(w);
}

void table_free(struct table *t)
{
    for (size_t i = 0; i < t->rows * t->cols; i++)
        free(t->cells[i]);
    free(t->cells);
}

static const json_t *walk(const json_t *o, const char *path)
{
    char key[64];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof key)
            return NULL;
        memcpy(key, path, len);
        key[len] = '\0';
        o = json_object_get(o, key);
        path += len + (dot ? 1 : 0);
    }
    return o;
}

const char *jstr(const json_t *o, const char *path)
{
    const char *s = json_string_value(walk(o, path));
    return s ? s : "";
}

long long jint(const json_t *o, const char *path)
{
    return json_integer_value(walk(o, path));
}

const char *title(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s ? s : "");
    if (buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
    return buf;
}

const char *plural(long long n, const char *one, const char *many)
{
    return n == 1 || n == -1 ? one : many;
}

void ago(long long ms, char *buf, size_t size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    char age[48];
    if (ms <= 0) {
        snprintf(buf, size, "-");
    } else if (now - ms < 1000) {
        snprintf(buf, size, "just now");
    } else {
        sk_format_age(now - ms, age, sizeof age);
        snprintf(buf, size, "%s ago", age);
    }
}

char *cli_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = sk_malloc(3 * strlen(s) + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

json_t *cli_get(const char *collection, const char *ref, struct sk_err *err)
{
    char *path = sk_printf("/v1/%s/%s", collection, ref);
    json_t *o = NULL;
    enum sk_rc rc = cli_call("GET", path, NULL, &o, err);
    free(path);
    return rc == SK_OK ? o : NULL;
}

#define MODIFY_ATTEMPTS 8

enum sk_rc cli_modify(const char *collection, const char *ref,
                      const struct sk_schema *spec_schema,
                      bool (*change)(void *spec, void *ctx, struct sk_err *err),
                      void *ctx, struct sk_err *err)
{
    void *spec = sk_malloc(spec_schema->size);
    enum sk_rc rc = SK_OK;
    for (int attempt = 0; attempt < MODIFY_ATTEMPTS; attempt++) {
        if (attempt) /* 50 ms, 100 ms, ... up to 800 ms */
            usleep((25u << (attempt < 5 ? attempt : 5)) * 1000);
        json_t *o = cli_get(collection, ref, err);
        if (!o) {
            rc = err->code;
            break;
        }
        if (sk_schema_decode(spec_schema, json_object_get(o, "spec"), spec,
                             "spec", err) != SK_OK) {
            rc = sk_err_wrap(err, "%s/%s as the manager sent it", collection,
                             ref);
            json_decref(o);
            break;
        }
        if (!change(spec, ctx, err)) {
            rc = err->code ? err->code : SK_EINVAL;
            sk_schema_free(spec_schema, spec);
            json_decref(o);
            break;
        }
        json_t *body =
            json_pack("{s:o, s:I}", "spec",
                      sk_schema_encode(spec_schema, spec, SK_VIEW_PUBLIC),
                      "version", (json_int_t)jint(o, "version"));
        sk_schema_free(spec_schema, spec);
        char *path = sk_printf("/v1/%s/%s/update", collection, jstr(o, "id"));
        rc = cli_call("POST", path, body, NULL, err);
        free(path);
        json_decref(body);
        json_decref(o);
        if (rc != SK_ECONFLICT)
            break;
    }
    free(spec);
    return rc;
}

bool parse_positionals(const char *usage, size_t max, int argc, char **argv,
                       struct sk_flags_result *res, int *exit_code)
{
    struct sk_flag f[] = {HELP_FLAG};
    if (!parse_flags(usage, f, 1, argc, argv, false, res, exit_code))
        return false;
    if (res->n_positional == 0 || (max && res->n_positional > max)) {
        sk_flags_free(f, 1, res);
        *exit_code = fail("usage: %s", usage);
        return false;
    }
    return true;
}

int cli_inspect(const char *collection, const char *usage, int argc,
                char **argv)
{
    struct sk_flags_result res;
    int code;
    if (!parse_positionals(usage, 0, argc, argv, &res, &code))
        return code;
    int rc = 0;
    json_t *all = json_array();
    for (size_t i = 0; i < res.n_positional && rc == 0; i++) {
        struct sk_err err;
        json_t *o = cli_get(collection, res.positional[i], &err);
        if (!o)
            rc = fail_err(&err);
        else
            json_array_append_new(all, o);
    }
    if (rc == 0)
        print_json(all);
    json_decref(all);
    sk_flags_free(NULL, 0, &res);
    return rc;
}
