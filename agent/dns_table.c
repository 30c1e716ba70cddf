/* The DNS responder's names. The contract is agent/dns_table.h.
 *
 * Names are stored lower-cased without a trailing dot, so a lookup is one
 * normalisation of the asked name and string compares. Lookups scan: a
 * node holds the services of its own tasks' networks, a few hundred names
 * at most, and a table is rebuilt whole rather than indexed. */
#include "agent/dns_table.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

#define NAME_MAX_LEN 253
#define TASKS_PREFIX "tasks."

struct svc {
    char *network;
    char **names; /* the name, then the aliases */
    size_t n_names;
    enum sk_dns_mode mode;
    struct in_addr vip;
    struct in_addr *tasks;
    size_t n_tasks;
};

struct ep {
    struct in_addr addr;
    char *network;
    char *task;
};

struct sk_dns_table {
    struct svc *svcs;
    size_t n_svcs;
    struct ep *eps;
    size_t n_eps;
};

static bool dns_name_ok(const char *s)
{
    size_t len = strlen(s), label = 0;
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                return false;
            label = 0;
        } else if (isalnum((unsigned char)c) || c == '-' || c == '_') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static char *lower_dup(const char *s)
{
    char *d = sk_strdup(s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

void sk_dns_table_free(struct sk_dns_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_svcs; i++) {
        struct svc *s = &t->svcs[i];
        free(s->network);
        for (size_t k = 0; k < s->n_names; k++)
            free(s->names[k]);
        free(s->names);
        free(s->tasks);
    }
    for (size_t i = 0; i < t->n_eps; i++) {
        free(t->eps[i].network);
        free(t->eps[i].task);
    }
    free(t->svcs);
    free(t->eps);
    free(t);
}

static enum sk_rc check(const struct sk_dns_service *services, size_t n,
                        const struct sk_dns_endpoint *eps, size_t m,
                        struct sk_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const struct sk_dns_service *s = &services[i];
        if (!s->name || !s->network || !s->network[0])
            return sk_err_set(err, SK_EINVAL,
                              "DNS: a service without a name or network");
        if (!dns_name_ok(s->name))
            return sk_err_set(err, SK_EINVAL,
                              "DNS: service name \"%s\" is not a DNS name",
                              s->name);
        for (size_t k = 0; k < s->n_aliases; k++)
            if (!s->aliases[k] || !dns_name_ok(s->aliases[k]))
                return sk_err_set(err, SK_EINVAL,
                                  "DNS: service \"%s\": alias \"%s\" is not a "
                                  "DNS name",
                                  s->name, s->aliases[k] ? s->aliases[k] : "");
    }
    for (size_t i = 0; i < m; i++) {
        if (!eps[i].network || !eps[i].task)
            return sk_err_set(err, SK_EINVAL,
                              "DNS: a task address without network or task");
        for (size_t j = 0; j < i; j++)
            if (eps[j].addr.s_addr == eps[i].addr.s_addr) {
                char ip[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &eps[i].addr, ip, sizeof ip);
                return sk_err_set(err, SK_EINVAL,
                                  "DNS: task address %s listed twice", ip);
            }
    }
    return SK_OK;
}

enum sk_rc sk_dns_table_new(const struct sk_dns_service *services,
                            size_t n_services,
                            const struct sk_dns_endpoint *endpoints,
                            size_t n_endpoints, struct sk_dns_table **out,
                            struct sk_err *err)
{
    enum sk_rc rc = check(services, n_services, endpoints, n_endpoints, err);
    if (rc != SK_OK)
        return rc;
    struct sk_dns_table *t = sk_calloc(1, sizeof *t);
    t->svcs = sk_calloc(n_services ? n_services : 1, sizeof *t->svcs);
    t->eps = sk_calloc(n_endpoints ? n_endpoints : 1, sizeof *t->eps);
    for (size_t i = 0; i < n_services; i++) {
        const struct sk_dns_service *s = &services[i];
        struct svc *d = &t->svcs[t->n_svcs++];
        d->network = sk_strdup(s->network);
        d->names = sk_calloc(1 + s->n_aliases, sizeof *d->names);
        d->names[d->n_names++] = lower_dup(s->name);
        for (size_t k = 0; k < s->n_aliases; k++)
            d->names[d->n_names++] = lower_dup(s->aliases[k]);
        d->mode = s->mode;
        d->vip = s->vip;
        d->n_tasks = s->n_tasks;
        d->tasks = sk_calloc(s->n_tasks ? s->n_tasks : 1, sizeof *d->tasks);
        if (s->n_tasks)
            memcpy(d->tasks, s->tasks, s->n_tasks * sizeof *d->tasks);
    }
    for (size_t i = 0; i < n_endpoints; i++) {
        struct ep *d = &t->eps[t->n_eps++];
        d->addr = endpoints[i].addr;
        d->network = sk_strdup(endpoints[i].network);
        d->task = sk_strdup(endpoints[i].task);
    }
    *out = t;
    return SK_OK;
}

static const struct ep *find_ep(const struct sk_dns_table *t,
                                struct in_addr addr)
{
    for (size_t i = 0; i < t->n_eps; i++)
        if (t->eps[i].addr.s_addr == addr.s_addr)
            return &t->eps[i];
    return NULL;
}

static bool has_name(const struct svc *s, const char *name)
{
    for (size_t k = 0; k < s->n_names; k++)
        if (strcmp(s->names[k], name) == 0)
            return true;
    return false;
}

/* The service on `network` answering to `name` (as a name or, with
 * `tasks`, as the NAME of tasks.NAME). */
static const struct svc *find_svc(const struct sk_dns_table *t,
                                  const char *network, const char *name)
{
    for (size_t i = 0; i < t->n_svcs; i++)
        if (strcmp(t->svcs[i].network, network) == 0 &&
            has_name(&t->svcs[i], name))
            return &t->svcs[i];
    return NULL;
}

/* Looks `name` up on one network: the service's own name first, then
 * tasks.NAME. */
static bool lookup_on(const struct sk_dns_table *t, const char *network,
                      const char *name, const struct in_addr **out_addrs,
                      size_t *out_n)
{
    const struct svc *s = find_svc(t, network, name);
    if (s) {
        if (s->mode == SK_DNS_VIP) {
            *out_addrs = &s->vip;
            *out_n = 1;
        } else {
            *out_addrs = s->tasks;
            *out_n = s->n_tasks;
        }
        return true;
    }
    size_t plen = strlen(TASKS_PREFIX);
    if (strncmp(name, TASKS_PREFIX, plen) == 0 &&
        (s = find_svc(t, network, name + plen)) != NULL) {
        *out_addrs = s->tasks;
        *out_n = s->n_tasks;
        return true;
    }
    return false;
}

enum sk_dns_lookup sk_dns_resolve(const struct sk_dns_table *t,
                                  struct in_addr asker, const char *name,
                                  const struct in_addr **out_addrs,
                                  size_t *out_n)
{
    const struct ep *me = find_ep(t, asker);
    if (!me)
        return SK_DNS_UNKNOWN_ASKER;
    size_t len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > NAME_MAX_LEN)
        return SK_DNS_NO_SUCH_NAME;
    char norm[NAME_MAX_LEN + 1];
    for (size_t i = 0; i < len; i++)
        norm[i] = (char)tolower((unsigned char)name[i]);
    norm[len] = '\0';

    if (lookup_on(t, me->network, norm, out_addrs, out_n))
        return SK_DNS_FOUND;
    /* The asking task's other networks, each once. */
    for (size_t i = 0; i < t->n_eps; i++) {
        const struct ep *e = &t->eps[i];
        if (e == me || strcmp(e->task, me->task) != 0 ||
            strcmp(e->network, me->network) == 0)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(t->eps[j].task, me->task) == 0 &&
                   strcmp(t->eps[j].network, e->network) == 0;
        if (!seen && lookup_on(t, e->network, norm, out_addrs, out_n))
            return SK_DNS_FOUND;
    }
    return SK_DNS_NO_SUCH_NAME;
}
