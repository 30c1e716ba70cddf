#include "skiff/netmap.h"

#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

bool sk_task_holds_addresses(const struct sk_task *t)
{
    return !sk_task_state_terminal(t->status.state);
}

bool sk_task_ready(const struct sk_task *t)
{
    return t->status.state == SK_TASK_RUNNING && t->status.healthy &&
           t->desired_state == SK_TASK_RUNNING;
}

/* "10.0.1.5/24" -> a heap "10.0.1.5". */
static char *bare(const char *addr)
{
    const char *slash = strchr(addr, '/');
    return slash ? sk_strndup(addr, (size_t)(slash - addr)) : sk_strdup(addr);
}

/* qsort, which must not be given a NULL array, even an empty one. */
static void sort(void *v, size_t n, size_t size,
                 int (*cmp)(const void *, const void *))
{
    if (n > 1)
        qsort(v, n, size, cmp);
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct sk_net_info *find_net(struct sk_net_info *v, size_t n,
                                    const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return &v[i];
    return NULL;
}

struct build {
    const struct sk_store *s;
    const char *node_id;
    struct sk_net_info *v;
    size_t n;
};

/* The networks of the node's own unfinished tasks. */
static bool own_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct build *b = ctx;
    if (!sk_task_holds_addresses(t))
        return true;
    for (size_t i = 0; i < t->n_networks; i++) {
        const char *id = t->networks[i].network_id;
        const struct sk_network *net = sk_store_get(b->s, SK_KIND_NETWORK, id);
        if (!net || !net->subnet || !net->gateway || !net->vni ||
            find_net(b->v, b->n, id))
            continue;
        b->v = sk_realloc(b->v, (b->n + 1) * sizeof *b->v);
        struct sk_net_info *ni = &b->v[b->n++];
        memset(ni, 0, sizeof *ni);
        memcpy(ni->id, id, SK_ID_SIZE);
        ni->name = net->spec.name ? sk_strdup(net->spec.name) : NULL;
        ni->vni = net->vni;
        ni->subnet = sk_strdup(net->subnet);
        ni->gateway = sk_strdup(net->gateway);
        ni->internal = net->spec.internal;
    }
    return true;
}

static struct sk_net_peer *peer_of(struct sk_net_info *ni,
                                   const struct sk_node *node)
{
    for (size_t i = 0; i < ni->n_peers; i++)
        if (strcmp(ni->peers[i].node_id, node->meta.id) == 0)
            return &ni->peers[i];
    ni->peers = sk_realloc(ni->peers, (ni->n_peers + 1) * sizeof *ni->peers);
    struct sk_net_peer *p = &ni->peers[ni->n_peers++];
    memset(p, 0, sizeof *p);
    memcpy(p->node_id, node->meta.id, SK_ID_SIZE);
    p->vtep = sk_strdup(node->description.data_addr);
    return p;
}

static void add_addr(char ***v, size_t *n, const char *addr)
{
    char *a = bare(addr);
    sk_strs_push(v, n, a);
    free(a);
}

/* Another node's own address on each network of the view. */
static bool other_node(const void *obj, void *ctx)
{
    const struct sk_node *node = obj;
    struct build *b = ctx;
    if (strcmp(node->meta.id, b->node_id) == 0) {
        for (size_t i = 0; i < node->n_networks; i++) {
            struct sk_net_info *ni =
                find_net(b->v, b->n, node->networks[i].network_id);
            if (ni && node->networks[i].n_addresses && !ni->node_addr)
                ni->node_addr = bare(node->networks[i].addresses[0]);
        }
        return true;
    }
    if (!node->description.data_addr)
        return true;
    for (size_t i = 0; i < node->n_networks; i++) {
        struct sk_net_info *ni =
            find_net(b->v, b->n, node->networks[i].network_id);
        if (!ni)
            continue;
        struct sk_net_peer *p = peer_of(ni, node);
        for (size_t j = 0; j < node->networks[i].n_addresses; j++)
            add_addr(&p->addrs, &p->n_addrs, node->networks[i].addresses[j]);
    }
    return true;
}

static struct sk_net_service *service_on(struct sk_net_info *ni,
                                         const char *service_id)
{
    for (size_t i = 0; i < ni->n_services; i++)
        if (strcmp(ni->services[i].service_id, service_id) == 0)
            return &ni->services[i];
    return NULL;
}

static bool service(const void *obj, void *ctx)
{
    const struct sk_service *svc = obj;
    struct build *b = ctx;
    const struct sk_task_spec *ts = &svc->spec.task;
    for (size_t i = 0; i < ts->n_networks; i++) {
        struct sk_net_info *ni = find_net(b->v, b->n, ts->networks[i].id);
        if (!ni || service_on(ni, svc->meta.id))
            continue;
        ni->services = sk_realloc(ni->services,
                                  (ni->n_services + 1) * sizeof *ni->services);
        struct sk_net_service *ns = &ni->services[ni->n_services++];
        memset(ns, 0, sizeof *ns);
        memcpy(ns->service_id, svc->meta.id, SK_ID_SIZE);
        ns->name = sk_strdup(svc->spec.name);
        for (size_t k = 0; k < ts->networks[i].n_aliases; k++)
            sk_strs_push(&ns->aliases, &ns->n_aliases,
                         ts->networks[i].aliases[k]);
        ns->endpoint_mode = svc->spec.endpoint.mode;
        for (size_t k = 0; k < svc->n_vips; k++)
            if (strcmp(svc->vips[k].network_id, ni->id) == 0 &&
                svc->vips[k].addr)
                ns->vip = bare(svc->vips[k].addr);
    }
    return true;
}

/* Every task's addresses: other nodes' unfinished tasks are peers' addresses;
 * ready tasks are their services' answers. */
static bool any_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct build *b = ctx;
    if (!sk_task_holds_addresses(t))
        return true;
    const struct sk_node *node =
        *t->node_id && strcmp(t->node_id, b->node_id) != 0
            ? sk_store_get(b->s, SK_KIND_NODE, t->node_id)
            : NULL;
    bool ready = sk_task_ready(t);
    for (size_t i = 0; i < t->n_networks; i++) {
        struct sk_net_info *ni =
            find_net(b->v, b->n, t->networks[i].network_id);
        if (!ni)
            continue;
        const struct sk_net_attachment *att = &t->networks[i];
        if (node && node->description.data_addr) {
            struct sk_net_peer *p = peer_of(ni, node);
            for (size_t j = 0; j < att->n_addresses; j++)
                add_addr(&p->addrs, &p->n_addrs, att->addresses[j]);
        }
        struct sk_net_service *ns =
            ready ? service_on(ni, t->service_id) : NULL;
        for (size_t j = 0; ns && j < att->n_addresses; j++)
            add_addr(&ns->ready, &ns->n_ready, att->addresses[j]);
    }
    return true;
}

static int by_net(const void *a, const void *b)
{
    return strcmp(((const struct sk_net_info *)a)->id,
                  ((const struct sk_net_info *)b)->id);
}

static int by_peer(const void *a, const void *b)
{
    return strcmp(((const struct sk_net_peer *)a)->node_id,
                  ((const struct sk_net_peer *)b)->node_id);
}

static int by_service(const void *a, const void *b)
{
    return strcmp(((const struct sk_net_service *)a)->name,
                  ((const struct sk_net_service *)b)->name);
}

size_t sk_net_map(const struct sk_store *s, const char *node_id,
                  struct sk_net_info **out)
{
    struct build b = {.s = s, .node_id = node_id};
    sk_store_each_task_of_node(s, node_id, own_task, &b);
    if (b.n > 0) {
        sk_store_each(s, SK_KIND_NODE, other_node, &b);
        sk_store_each(s, SK_KIND_SERVICE, service, &b);
        sk_store_each(s, SK_KIND_TASK, any_task, &b);
    }
    sort(b.v, b.n, sizeof *b.v, by_net);
    for (size_t i = 0; i < b.n; i++) {
        struct sk_net_info *ni = &b.v[i];
        sort(ni->peers, ni->n_peers, sizeof *ni->peers, by_peer);
        for (size_t j = 0; j < ni->n_peers; j++)
            sort(ni->peers[j].addrs, ni->peers[j].n_addrs, sizeof(char *),
                 by_str);
        sort(ni->services, ni->n_services, sizeof *ni->services, by_service);
        for (size_t j = 0; j < ni->n_services; j++)
            sort(ni->services[j].ready, ni->services[j].n_ready, sizeof(char *),
                 by_str);
    }
    *out = b.v;
    return b.n;
}

void sk_net_map_free(struct sk_net_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sk_schema_free(&sk_net_info_schema, &v[i]);
    free(v);
}
