#include "skiff/allocator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/map.h"
#include "skiff/mem.h"

#define MIN_PREFIX 16
#define MAX_PREFIX 29

/* One network's addresses: a bit per address of its subnet. */
struct pool {
    uint32_t base;
    int prefix;
    uint32_t size;   /* addresses in the subnet */
    uint8_t *used;   /* size / 8 bytes */
    uint32_t cursor; /* offset of the last address handed out */
};

struct sk_allocator {
    struct sk_map pools;   /* network id -> struct pool */
    struct sk_map cursors; /* network id -> heap uint32_t, across syncs */
    const struct sk_store *store;
    /* VNIs and subnets of every network, for new ones. */
    int64_t *vnis;
    size_t n_vnis;
    struct {
        uint32_t base, mask;
    } * subnets;
    size_t n_subnets, cap_subnets;
};

static void free_pools(struct sk_allocator *a)
{
    struct sk_map_iter it;
    const char *id;
    void *v;
    sk_map_iter_init(&it, &a->pools);
    while (sk_map_iter_next(&it, &id, &v)) {
        struct pool *p = v;
        uint32_t *c = sk_map_get(&a->cursors, id);
        if (!c) {
            c = sk_malloc(sizeof *c);
            sk_map_put(&a->cursors, id, c);
        }
        *c = p->cursor;
        free(p->used);
        free(p);
    }
    sk_map_clear(&a->pools);
    free(a->vnis);
    free(a->subnets);
    a->vnis = NULL;
    a->subnets = NULL;
    a->n_vnis = a->n_subnets = a->cap_subnets = 0;
}

struct sk_allocator *sk_allocator_new(void)
{
    struct sk_allocator *a = sk_calloc(1, sizeof *a);
    sk_map_init(&a->pools);
    sk_map_init(&a->cursors);
    return a;
}

void sk_allocator_free(struct sk_allocator *a)
{
    if (!a)
        return;
    free_pools(a);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &a->cursors);
    while (sk_map_iter_next(&it, NULL, &v))
        free(v);
    sk_map_clear(&a->cursors);
    free(a);
}

/* ---- bitmaps ---- */

static bool bit(const struct pool *p, uint32_t off)
{
    return p->used[off / 8] & (1u << (off % 8));
}

static void set_bit(struct pool *p, uint32_t off)
{
    p->used[off / 8] |= (uint8_t)(1u << (off % 8));
}

static void clear_bit(struct pool *p, uint32_t off)
{
    p->used[off / 8] &= (uint8_t) ~(1u << (off % 8));
}

/* Marks an "a.b.c.d[/len]" address of the pool used; ignores others. */
static void mark(struct pool *p, const char *addr)
{
    uint32_t ip;
    if (p && sk_ipv4_parse(addr, &ip, NULL) && ip - p->base < p->size)
        set_bit(p, ip - p->base);
}

static struct pool *pool_new(struct sk_allocator *a, const char *network_id,
                             uint32_t base, int prefix, const char *gateway)
{
    struct pool *p = sk_calloc(1, sizeof *p);
    p->base = base;
    p->prefix = prefix;
    p->size = 1u << (32 - prefix);
    p->used = sk_calloc(p->size / 8, 1);
    set_bit(p, 0);           /* the network's address */
    set_bit(p, p->size - 1); /* broadcast */
    mark(p, gateway);
    uint32_t *c = sk_map_get(&a->cursors, network_id);
    p->cursor = c && *c < p->size ? *c : 0;
    sk_map_put(&a->pools, network_id, p);
    return p;
}

/* Takes the next free address after the cursor (wrapping). */
static bool take(struct pool *p, uint32_t *out)
{
    for (uint32_t i = 1; i <= p->size; i++) {
        uint32_t off = (p->cursor + i) % p->size;
        if (!bit(p, off)) {
            set_bit(p, off);
            p->cursor = off;
            *out = p->base + off;
            return true;
        }
    }
    return false;
}

static void give_back(struct pool *p, uint32_t addr)
{
    if (addr - p->base < p->size)
        clear_bit(p, addr - p->base);
}

/* ---- reading the store ---- */

static void add_subnet(struct sk_allocator *a, uint32_t base, int prefix)
{
    if (a->n_subnets == a->cap_subnets) {
        a->cap_subnets = a->cap_subnets ? a->cap_subnets * 2 : 16;
        a->subnets =
            sk_realloc(a->subnets, a->cap_subnets * sizeof *a->subnets);
    }
    a->subnets[a->n_subnets].base = base;
    a->subnets[a->n_subnets].mask = sk_ipv4_mask(prefix);
    a->n_subnets++;
}

static bool read_network(const void *obj, void *ctx)
{
    const struct sk_network *n = obj;
    struct sk_allocator *a = ctx;
    uint32_t base;
    int prefix;
    if (n->vni) {
        a->vnis = sk_realloc(a->vnis, (a->n_vnis + 1) * sizeof *a->vnis);
        a->vnis[a->n_vnis++] = n->vni;
    }
    if (!n->subnet || !sk_cidr_parse(n->subnet, &base, &prefix) ||
        prefix < MIN_PREFIX || prefix > MAX_PREFIX)
        return true;
    add_subnet(a, base, prefix);
    pool_new(a, n->meta.id, base, prefix, n->gateway);
    return true;
}

static void mark_attachments(struct sk_allocator *a,
                             const struct sk_net_attachment *att, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct pool *p = sk_map_get(&a->pools, att[i].network_id);
        for (size_t j = 0; j < att[i].n_addresses; j++)
            mark(p, att[i].addresses[j]);
    }
}

static bool read_node(const void *obj, void *ctx)
{
    const struct sk_node *n = obj;
    mark_attachments(ctx, n->networks, n->n_networks);
    return true;
}

static bool read_service(const void *obj, void *ctx)
{
    const struct sk_service *s = obj;
    struct sk_allocator *a = ctx;
    for (size_t i = 0; i < s->n_vips; i++)
        mark(sk_map_get(&a->pools, s->vips[i].network_id), s->vips[i].addr);
    return true;
}

static bool read_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    if (!sk_task_state_terminal(t->status.state))
        mark_attachments(ctx, t->networks, t->n_networks);
    return true;
}

void sk_allocator_sync(struct sk_allocator *a, const struct sk_store *s)
{
    free_pools(a);
    a->store = s;
    sk_store_each(s, SK_KIND_NETWORK, read_network, a);
    sk_store_each(s, SK_KIND_NODE, read_node, a);
    sk_store_each(s, SK_KIND_SERVICE, read_service, a);
    sk_store_each(s, SK_KIND_TASK, read_task, a);
}

/* ---- networks ---- */

static bool overlaps(const struct sk_allocator *a, uint32_t base, int prefix)
{
    uint32_t mask = sk_ipv4_mask(prefix);
    for (size_t i = 0; i < a->n_subnets; i++) {
        uint32_t m = mask & a->subnets[i].mask; /* the larger of the two */
        if ((base & m) == (a->subnets[i].base & m))
            return true;
    }
    return false;
}

static bool vni_used(const struct sk_allocator *a, int64_t vni)
{
    for (size_t i = 0; i < a->n_vnis; i++)
        if (a->vnis[i] == vni)
            return true;
    return false;
}

/* The first subnet of the pool that overlaps no network's. */
static enum sk_rc pool_subnet(const struct sk_allocator *a,
                              const struct sk_cluster_spec *cl,
                              const char *name, uint32_t *out_base,
                              int *out_prefix, struct sk_err *err)
{
    uint32_t pool;
    int pool_prefix;
    const char *text =
        cl->default_addr_pool ? cl->default_addr_pool : "10.0.0.0/8";
    int len = cl->default_addr_pool_mask_len
                  ? (int)cl->default_addr_pool_mask_len
                  : 24;
    if (!sk_cidr_parse(text, &pool, &pool_prefix) || pool_prefix > len)
        return sk_err_set(err, SK_EINVAL,
                          "network \"%s\": the cluster's default address "
                          "pool %s cannot hold /%d subnets",
                          name, text, len);
    uint64_t count = 1ull << (len - pool_prefix);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t base = pool + (uint32_t)(i << (32 - len));
        if (!overlaps(a, base, len)) {
            *out_base = base;
            *out_prefix = len;
            return SK_OK;
        }
    }
    return sk_err_set(err, SK_ENOSPC,
                      "network \"%s\": no free /%d subnet left in the "
                      "default address pool %s",
                      name, len, text);
}

enum sk_rc sk_allocate_network(struct sk_allocator *a,
                               const struct sk_cluster_spec *cluster,
                               struct sk_network *n, struct sk_err *err)
{
    const char *name = n->spec.name ? n->spec.name : n->meta.id;
    uint32_t base, gw;
    int prefix;
    enum sk_rc rc;
    if (n->spec.subnet) {
        if (!sk_cidr_parse(n->spec.subnet, &base, &prefix))
            return sk_err_set(err, SK_EINVAL,
                              "network \"%s\": subnet \"%s\" is not an IPv4 "
                              "subnet like 10.0.9.0/24 (no host bits set)",
                              name, n->spec.subnet);
        if (prefix < MIN_PREFIX || prefix > MAX_PREFIX)
            return sk_err_set(err, SK_EINVAL,
                              "network \"%s\": subnet %s: the prefix length "
                              "must be from /%d to /%d",
                              name, n->spec.subnet, MIN_PREFIX, MAX_PREFIX);
        if (overlaps(a, base, prefix))
            return sk_err_set(err, SK_EINVAL,
                              "network \"%s\": subnet %s overlaps another "
                              "network's",
                              name, n->spec.subnet);
    } else if ((rc = pool_subnet(a, cluster, name, &base, &prefix, err)) !=
               SK_OK) {
        return rc;
    }
    uint32_t size = 1u << (32 - prefix);
    if (n->spec.gateway) {
        int gp;
        if (!sk_ipv4_parse(n->spec.gateway, &gw, &gp) || gp != 32)
            return sk_err_set(err, SK_EINVAL,
                              "network \"%s\": gateway \"%s\" is not an IPv4 "
                              "address",
                              name, n->spec.gateway);
        if (gw - base == 0 || gw - base >= size - 1)
            return sk_err_set(err, SK_EINVAL,
                              "network \"%s\": gateway %s is not a host "
                              "address of the subnet",
                              name, n->spec.gateway);
    } else {
        gw = base + 1;
    }
    int64_t vni = SK_VNI_MIN;
    while (vni <= SK_VNI_MAX && vni_used(a, vni))
        vni++;
    if (vni > SK_VNI_MAX)
        return sk_err_set(err, SK_ENOSPC, "network \"%s\": no free VNI", name);
    char text[24];
    free(n->subnet);
    sk_ipv4_format_cidr(base, prefix, text, sizeof text);
    n->subnet = sk_strdup(text);
    free(n->gateway);
    sk_ipv4_format(gw, text, sizeof text);
    n->gateway = sk_strdup(text);
    n->vni = vni;
    a->vnis = sk_realloc(a->vnis, (a->n_vnis + 1) * sizeof *a->vnis);
    a->vnis[a->n_vnis++] = vni;
    add_subnet(a, base, prefix);
    pool_new(a, n->meta.id, base, prefix, n->gateway);
    return SK_OK;
}

/* ---- addresses ---- */

static const char *network_name(const struct sk_allocator *a, const char *id)
{
    const struct sk_network *n =
        a->store ? sk_store_get(a->store, SK_KIND_NETWORK, id) : NULL;
    return n && n->spec.name ? n->spec.name : id;
}

/* One address of the network as "a.b.c.d/len" (heap). */
static enum sk_rc take_address(struct sk_allocator *a, const char *network_id,
                               char **out, struct sk_err *err)
{
    struct pool *p = sk_map_get(&a->pools, network_id);
    if (!p)
        return sk_err_set(err, SK_ENOTFOUND,
                          "network %s does not exist (or has no subnet yet)",
                          network_id);
    uint32_t addr;
    char text[24];
    if (!take(p, &addr)) {
        sk_ipv4_format_cidr(p->base, p->prefix, text, sizeof text);
        return sk_err_set(err, SK_ENOSPC,
                          "network \"%s\": no free address in %s",
                          network_name(a, network_id), text);
    }
    sk_ipv4_format_cidr(addr, p->prefix, text, sizeof text);
    *out = sk_strdup(text);
    return SK_OK;
}

static void release_address(struct sk_allocator *a, const char *network_id,
                            const char *addr)
{
    struct pool *p = sk_map_get(&a->pools, network_id);
    uint32_t ip;
    if (p && sk_ipv4_parse(addr, &ip, NULL))
        give_back(p, ip);
}

static const struct sk_net_attachment *
find_attachment(const struct sk_net_attachment *att, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(att[i].network_id, id) == 0)
            return &att[i];
    return NULL;
}

static void free_attachments(struct sk_net_attachment *att, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < att[i].n_addresses; j++)
            free(att[i].addresses[j]);
        free(att[i].addresses);
    }
    free(att);
}

enum sk_rc sk_allocate_task(struct sk_allocator *a, struct sk_task *t,
                            struct sk_err *err)
{
    const struct sk_task_spec *spec = &t->spec;
    struct sk_net_attachment *next =
        sk_calloc(spec->n_networks ? spec->n_networks : 1, sizeof *next);
    size_t n = 0;
    enum sk_rc rc = SK_OK;
    for (size_t i = 0; i < spec->n_networks && rc == SK_OK; i++) {
        const char *id = spec->networks[i].id;
        if (find_attachment(next, n, id))
            continue; /* named twice: validation refuses it; one address */
        const struct sk_net_attachment *have =
            find_attachment(t->networks, t->n_networks, id);
        struct sk_net_attachment *att = &next[n++];
        memcpy(att->network_id, id, SK_ID_SIZE);
        if (have && have->n_addresses) {
            for (size_t j = 0; j < have->n_addresses; j++)
                sk_strs_push(&att->addresses, &att->n_addresses,
                             have->addresses[j]);
            continue;
        }
        char *addr = NULL;
        if ((rc = take_address(a, id, &addr, err)) == SK_OK) {
            sk_strs_push(&att->addresses, &att->n_addresses, addr);
            free(addr);
        }
    }
    if (rc != SK_OK) {
        /* Give back what this call took, not what the task had. */
        for (size_t i = 0; i < n; i++)
            if (!find_attachment(t->networks, t->n_networks,
                                 next[i].network_id))
                for (size_t j = 0; j < next[i].n_addresses; j++)
                    release_address(a, next[i].network_id,
                                    next[i].addresses[j]);
        free_attachments(next, n);
        return rc;
    }
    free_attachments(t->networks, t->n_networks);
    t->networks = next;
    t->n_networks = n;
    return SK_OK;
}

enum sk_rc sk_allocate_vips(struct sk_allocator *a, struct sk_service *svc,
                            struct sk_err *err)
{
    const struct sk_task_spec *spec = &svc->spec.task;
    bool vip = svc->spec.endpoint.mode == SK_ENDPOINT_VIP;
    size_t want = vip ? spec->n_networks : 0;
    struct sk_vip *next = sk_calloc(want ? want : 1, sizeof *next);
    size_t n = 0;
    enum sk_rc rc = SK_OK;
    for (size_t i = 0; i < want; i++) {
        const char *id = spec->networks[i].id;
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(next[k].network_id, id) == 0;
        if (dup)
            continue;
        const struct sk_vip *have = NULL;
        for (size_t k = 0; k < svc->n_vips; k++)
            if (strcmp(svc->vips[k].network_id, id) == 0)
                have = &svc->vips[k];
        memcpy(next[n].network_id, id, SK_ID_SIZE);
        if (have && have->addr) {
            next[n++].addr = sk_strdup(have->addr);
            continue;
        }
        if ((rc = take_address(a, id, &next[n].addr, err)) != SK_OK)
            break;
        n++;
    }
    if (rc != SK_OK) {
        for (size_t k = 0; k < n; k++) {
            bool had = false;
            for (size_t j = 0; j < svc->n_vips; j++)
                had |= strcmp(svc->vips[j].network_id, next[k].network_id) == 0;
            if (!had)
                release_address(a, next[k].network_id, next[k].addr);
            free(next[k].addr);
        }
        free(next);
        return rc;
    }
    /* VIPs of networks the service left are free again. */
    for (size_t j = 0; j < svc->n_vips; j++) {
        bool kept = false;
        for (size_t k = 0; k < n; k++)
            kept |= strcmp(svc->vips[j].network_id, next[k].network_id) == 0;
        if (!kept)
            release_address(a, svc->vips[j].network_id, svc->vips[j].addr);
        free(svc->vips[j].addr);
    }
    free(svc->vips);
    svc->vips = next;
    svc->n_vips = n;
    return SK_OK;
}

enum sk_rc sk_allocate_node_address(struct sk_allocator *a, struct sk_node *n,
                                    const char *network_id, struct sk_err *err)
{
    if (find_attachment(n->networks, n->n_networks, network_id))
        return SK_OK;
    char *addr = NULL;
    enum sk_rc rc = take_address(a, network_id, &addr, err);
    if (rc != SK_OK)
        return rc;
    n->networks =
        sk_realloc(n->networks, (n->n_networks + 1) * sizeof *n->networks);
    struct sk_net_attachment *att = &n->networks[n->n_networks++];
    memset(att, 0, sizeof *att);
    memcpy(att->network_id, network_id, SK_ID_SIZE);
    att->addresses = sk_calloc(1, sizeof *att->addresses);
    att->addresses[0] = addr;
    att->n_addresses = 1;
    return SK_OK;
}
