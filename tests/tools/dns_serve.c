/* dns_serve CONFIG: runs the DNS responder (agent/dns.h) on a libuv loop
 * for the lab tests, in the caller's network namespace. CONFIG is JSON:
 *   {"port": 53, "listen": ["10.0.9.1"],
 *    "services": [{"network": "N", "name": "api", "aliases": ["backend"],
 *                  "mode": "vip" | "dnsrr", "vip": "10.0.9.100",
 *                  "tasks": ["10.0.9.20"]}],
 *    "endpoints": [{"addr": "10.0.9.10", "network": "N", "task": "t1"}]}
 * SIGHUP reads CONFIG again (new table, new listening addresses); SIGTERM
 * or SIGINT stop it. Prints "ready" after each (re)load and the counters
 * on exit. */
#include <arpa/inet.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/dns.h"
#include "agent/dns_table.h"
#include "skiff/mem.h"

static const char *config_path;
static struct sk_dns_server *server;
static uv_signal_t sig_hup, sig_term, sig_int;

static bool ip_of(json_t *j, struct in_addr *out)
{
    const char *s = json_string_value(j);
    return s && inet_pton(AF_INET, s, out) == 1;
}

/* Loads CONFIG into the server; false (with a message) if it is bad. */
static bool load(bool first)
{
    json_error_t jerr;
    json_t *c = json_load_file(config_path, 0, &jerr);
    if (!c) {
        fprintf(stderr, "dns_serve: %s: %s\n", config_path, jerr.text);
        return false;
    }
    bool ok = false;
    json_t *svcs = json_object_get(c, "services");
    json_t *eps = json_object_get(c, "endpoints");
    json_t *listen = json_object_get(c, "listen");
    size_t n_s = json_array_size(svcs), n_e = json_array_size(eps),
           n_l = json_array_size(listen);
    struct sk_dns_service *s = sk_calloc(n_s + 1, sizeof *s);
    struct sk_dns_endpoint *e = sk_calloc(n_e + 1, sizeof *e);
    struct in_addr *l = sk_calloc(n_l + 1, sizeof *l);
    for (size_t i = 0; i < n_s; i++) {
        json_t *j = json_array_get(svcs, i);
        s[i].network = json_string_value(json_object_get(j, "network"));
        s[i].name = json_string_value(json_object_get(j, "name"));
        const char *mode = json_string_value(json_object_get(j, "mode"));
        s[i].mode =
            mode && strcmp(mode, "dnsrr") == 0 ? SK_DNS_DNSRR : SK_DNS_VIP;
        if (s[i].mode == SK_DNS_VIP &&
            !ip_of(json_object_get(j, "vip"), &s[i].vip)) {
            fprintf(stderr, "dns_serve: service %zu: bad vip\n", i);
            goto out;
        }
        json_t *al = json_object_get(j, "aliases");
        const char **aliases =
            sk_calloc(json_array_size(al) + 1, sizeof(char *));
        for (size_t k = 0; k < json_array_size(al); k++)
            aliases[k] = json_string_value(json_array_get(al, k));
        s[i].aliases = aliases;
        s[i].n_aliases = json_array_size(al);
        json_t *ts = json_object_get(j, "tasks");
        struct in_addr *tasks =
            sk_calloc(json_array_size(ts) + 1, sizeof *tasks);
        s[i].tasks = tasks;
        s[i].n_tasks = json_array_size(ts);
        for (size_t k = 0; k < json_array_size(ts); k++)
            if (!ip_of(json_array_get(ts, k), &tasks[k])) {
                fprintf(stderr, "dns_serve: service %zu: bad task address\n",
                        i);
                goto out;
            }
    }
    for (size_t i = 0; i < n_e; i++) {
        json_t *j = json_array_get(eps, i);
        e[i].network = json_string_value(json_object_get(j, "network"));
        e[i].task = json_string_value(json_object_get(j, "task"));
        if (!ip_of(json_object_get(j, "addr"), &e[i].addr)) {
            fprintf(stderr, "dns_serve: endpoint %zu: bad address\n", i);
            goto out;
        }
    }
    for (size_t i = 0; i < n_l; i++)
        if (!ip_of(json_array_get(listen, i), &l[i])) {
            fprintf(stderr, "dns_serve: listen %zu: bad address\n", i);
            goto out;
        }
    struct sk_err err = {0};
    struct sk_dns_table *t = NULL;
    if (sk_dns_table_new(s, n_s, e, n_e, &t, &err) != SK_OK) {
        fprintf(stderr, "dns_serve: %s\n", err.msg);
        goto out;
    }
    if (first) {
        json_t *port = json_object_get(c, "port");
        server = sk_dns_server_new(
            uv_default_loop(), port ? (uint16_t)json_integer_value(port) : 53);
    }
    sk_dns_server_set_table(server, t);
    if (sk_dns_server_listen(server, l, n_l, &err) != SK_OK) {
        fprintf(stderr, "dns_serve: %s\n", err.msg);
        goto out;
    }
    ok = true;
    printf("ready\n");
    fflush(stdout);
out:
    for (size_t i = 0; i < n_s; i++) {
        free((void *)s[i].aliases);
        free((void *)s[i].tasks);
    }
    free(s);
    free(e);
    free(l);
    json_decref(c);
    return ok;
}

static void closed(void *ctx)
{
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        load(false);
        return;
    }
    struct sk_dns_stats st;
    sk_dns_server_stats(server, &st);
    printf("queries %llu replies %llu dropped %llu\n",
           (unsigned long long)st.queries, (unsigned long long)st.replies,
           (unsigned long long)st.dropped);
    fflush(stdout);
    sk_dns_server_close(server, closed, NULL);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dns_serve CONFIG.json\n");
        return 2;
    }
    config_path = argv[1];
    uv_loop_t *loop = uv_default_loop();
    if (!load(true))
        return 1;
    uv_signal_init(loop, &sig_hup);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_hup, on_signal, SIGHUP);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
