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
    uint32_t size;     /* addresses in the subnet */
    uint8_t *used;     /* size / 8 bytes */
    uint32_t n_free;   /* clear bits */
    uint32_t cursor;   /* offset of the last address handed out */
    uint32_t promised; /* free addresses owed to VIPs and nodes */
    uint32_t nodes;    /* nodes that hold or are owed an address here */
};

/* Values in the maps of (node, network) and (service, network) pairs. */
#define HELD ((void *)1)
#define OWED ((void *)2)

struct sk_allocator {
    struct sk_map pools;   /* network id -> struct pool */
    struct sk_map cursors; /* network id -> heap uint32_t, across syncs */
    struct sk_map nodes;   /* "node/network" -> HELD or OWED */
    struct sk_map vips;    /* "service/network" -> OWED */
    const struct sk_store *store;
    /* VNIs and subnets of every network, for new ones. */
    int64_t *vnis;
    size_t n_vnis;
    struct {
        uint32_t base, mask;
        char network_id[SK_ID_SIZE];
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
    sk_map_clear(&a->nodes);
    sk_map_clear(&a->vips);
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
    sk_map_init(&a->nodes);
    sk_map_init(&a->vips);
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
    if (!bit(p, off))
        p->n_free--;
    p->used[off / 8] |= (uint8_t)(1u << (off % 8));
}

static void clear_bit(struct pool *p, uint32_t off)
{
    if (bit(p, off))
        p->n_free++;
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
    p->n_free = p->size;
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

static void add_subnet(struct sk_allocator *a, const char *network_id,
                       uint32_t base, int prefix)
{
    if (a->n_subnets == a->cap_subnets) {
        a->cap_subnets = a->cap_subnets ? a->cap_subnets * 2 : 16;
        a->subnets =
            sk_realloc(a->subnets, a->cap_subnets * sizeof *a->subnets);
    }
    a->subnets[a->n_subnets].base = base;
    a->subnets[a->n_subnets].mask = sk_ipv4_mask(prefix);
    memcpy(a->subnets[a->n_subnets].network_id, network_id, SK_ID_SIZE);
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
    add_subnet(a, n->meta.id, base, prefix);
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

/* "id/network" into buf. */
static const char *pair_key(char *buf, const char *id, const char *network_id)
{
    snprintf(buf, 2 * SK_ID_SIZE + 1, "%s/%s", id, network_id);
    return buf;
}

static bool read_node(const void *obj, void *ctx)
{
    const struct sk_node *n = obj;
    struct sk_allocator *a = ctx;
    mark_attachments(a, n->networks, n->n_networks);
    char key[2 * SK_ID_SIZE + 1];
    for (size_t i = 0; i < n->n_networks; i++) {
        struct pool *p = sk_map_get(&a->pools, n->networks[i].network_id);
        if (p &&
            !sk_map_put(&a->nodes,
                        pair_key(key, n->meta.id, n->networks[i].network_id),
                        HELD))
            p->nodes++;
    }
    return true;
}

static bool has_vip(const struct sk_service *s, const char *network_id)
{
    for (size_t i = 0; i < s->n_vips; i++)
        if (strcmp(s->vips[i].network_id, network_id) == 0)
            return true;
    return false;
}

static bool read_service(const void *obj, void *ctx)
{
    const struct sk_service *s = obj;
    struct sk_allocator *a = ctx;
    for (size_t i = 0; i < s->n_vips; i++)
        mark(sk_map_get(&a->pools, s->vips[i].network_id), s->vips[i].addr);
    if (s->spec.endpoint.mode != SK_ENDPOINT_VIP)
        return true;
    char key[2 * SK_ID_SIZE + 1];
    for (size_t i = 0; i < s->spec.task.n_networks; i++) {
        const char *id = s->spec.task.networks[i].id;
        struct pool *p = sk_map_get(&a->pools, id);
        if (p && !has_vip(s, id) &&
            !sk_map_put(&a->vips, pair_key(key, s->meta.id, id), OWED))
            p->promised++;
    }
    return true;
}

/* The node is owed its own address on the network, unless it holds or is
 * owed one already. */
static void owe_node(struct sk_allocator *a, const char *node_id,
                     const char *network_id)
{
    char key[2 * SK_ID_SIZE + 1];
    struct pool *p = sk_map_get(&a->pools, network_id);
    if (!p || sk_map_get(&a->nodes, pair_key(key, node_id, network_id)))
        return;
    sk_map_put(&a->nodes, key, OWED);
    p->promised++;
    p->nodes++;
}

static bool read_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct sk_allocator *a = ctx;
    if (sk_task_state_terminal(t->status.state))
        return true;
    mark_attachments(a, t->networks, t->n_networks);
    if (*t->node_id)
        for (size_t i = 0; i < t->n_networks; i++)
            if (t->networks[i].n_addresses)
                owe_node(a, t->node_id, t->networks[i].network_id);
    return true;
}

void sk_allocator_sync(struct sk_allocator *a, const struct sk_store *s)
{
    free_pools(a);
    a->store = s;
    sk_store_each(s, SK_KIND_NETWORK, read_network, a);
    if (sk_map_count(&a->pools) == 0)
        return; /* no network: nothing else to read */
    /* Nodes first: what they hold is not owed to them. */
    sk_store_each(s, SK_KIND_NODE, read_node, a);
    sk_store_each(s, SK_KIND_SERVICE, read_service, a);
    sk_store_each(s, SK_KIND_TASK, read_task, a);
}

/* ---- networks ---- */

/* The ID of a network whose subnet overlaps, or NULL. */
static const char *overlaps(const struct sk_allocator *a, uint32_t base,
                            int prefix)
{
    uint32_t mask = sk_ipv4_mask(prefix);
    for (size_t i = 0; i < a->n_subnets; i++) {
        uint32_t m = mask & a->subnets[i].mask; /* the larger of the two */
        if ((base & m) == (a->subnets[i].base & m))
            return a->subnets[i].network_id;
    }
    return NULL;
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
        const char *other = overlaps(a, base, prefix);
        if (other) {
            const struct sk_network *o =
                a->store ? sk_store_get(a->store, SK_KIND_NETWORK, other)
                         : NULL;
            return sk_err_set(err, SK_EINVAL,
                              "network \"%s\": subnet %s overlaps network "
                              "\"%s\"'s (%s)",
                              name, n->spec.subnet,
                              o && o->spec.name ? o->spec.name : other,
                              o && o->subnet ? o->subnet : "?");
        }
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
    add_subnet(a, n->meta.id, base, prefix);
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

static enum sk_rc no_network(const char *network_id, struct sk_err *err)
{
    return sk_err_set(err, SK_ENOTFOUND,
                      "network %s does not exist (or has no subnet yet)",
                      network_id);
}

static enum sk_rc exhausted(const struct sk_allocator *a, const struct pool *p,
                            const char *network_id, const char *what,
                            struct sk_err *err)
{
    char text[24];
    sk_ipv4_format_cidr(p->base, p->prefix, text, sizeof text);
    return sk_err_set(err, SK_ENOSPC, "network \"%s\": no free address in %s%s",
                      network_name(a, network_id), text, what);
}

/* One address of the network as "a.b.c.d/len" (heap), if more than the
 * owed ones are free -- and, for a task not on a node yet while no node
 * has or is owed an address there, one more. */
static enum sk_rc take_address(struct sk_allocator *a, const char *network_id,
                               bool unplaced_task, char **out,
                               struct sk_err *err)
{
    struct pool *p = sk_map_get(&a->pools, network_id);
    if (!p)
        return no_network(network_id, err);
    uint32_t keep = p->promised + (unplaced_task && p->nodes == 0);
    uint32_t addr;
    if (p->n_free <= keep || !take(p, &addr))
        return exhausted(a, p, network_id, "", err);
    char text[24];
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

/* Owes (or stops owing) an address to a (node or service, network)
 * pair. */
static void owe(struct sk_allocator *a, struct sk_map *m, const char *key,
                struct pool *p, bool node, bool on)
{
    if (on) {
        sk_map_put(m, key, OWED);
        p->promised++;
        p->nodes += node;
    } else {
        sk_map_del(m, key);
        p->promised--;
        p->nodes -= node;
    }
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

bool sk_task_has_addresses(const struct sk_task *t)
{
    for (size_t i = 0; i < t->spec.n_networks; i++) {
        const struct sk_net_attachment *att =
            find_attachment(t->networks, t->n_networks, t->spec.networks[i].id);
        if (!att || att->n_addresses == 0)
            return false;
    }
    return true;
}

bool sk_allocator_node_fits(const struct sk_allocator *a, const char *node_id,
                            const char *network_id, struct sk_err *err)
{
    const struct pool *p = sk_map_get(&a->pools, network_id);
    if (!p) {
        no_network(network_id, err);
        return false;
    }
    char key[2 * SK_ID_SIZE + 1];
    if (sk_map_get(&a->nodes, pair_key(key, node_id, network_id)) ||
        p->n_free > p->promised)
        return true;
    exhausted(a, p, network_id, " for the node's own address", err);
    return false;
}

void sk_allocator_node_promise(struct sk_allocator *a, const char *node_id,
                               const char *network_id)
{
    owe_node(a, node_id, network_id);
}

enum sk_rc sk_allocate_task(struct sk_allocator *a, struct sk_task *t,
                            struct sk_err *err)
{
    const struct sk_task_spec *spec = &t->spec;
    size_t cap = spec->n_networks ? spec->n_networks : 1;
    struct sk_net_attachment *next = sk_calloc(cap, sizeof *next);
    bool *promised = sk_calloc(cap, sizeof *promised); /* by this call */
    bool placed = *t->node_id != '\0';
    char key[2 * SK_ID_SIZE + 1];
    size_t n = 0;
    enum sk_rc rc = SK_OK;
    for (size_t i = 0; i < spec->n_networks && rc == SK_OK; i++) {
        const char *id = spec->networks[i].id;
        if (find_attachment(next, n, id))
            continue; /* named twice: validation refuses it; one address */
        const struct sk_net_attachment *have =
            find_attachment(t->networks, t->n_networks, id);
        struct sk_net_attachment *att = &next[n];
        memcpy(att->network_id, id, SK_ID_SIZE);
        if (have && have->n_addresses) {
            for (size_t j = 0; j < have->n_addresses; j++)
                sk_strs_push(&att->addresses, &att->n_addresses,
                             have->addresses[j]);
            n++;
            continue;
        }
        /* On a node already: room for the node's own address first. */
        struct pool *p = sk_map_get(&a->pools, id);
        if (placed && p &&
            !sk_map_get(&a->nodes, pair_key(key, t->node_id, id))) {
            owe(a, &a->nodes, key, p, true, true);
            promised[n] = true;
        }
        n++;
        char *addr = NULL;
        if ((rc = take_address(a, id, !placed, &addr, err)) == SK_OK) {
            sk_strs_push(&att->addresses, &att->n_addresses, addr);
            free(addr);
        }
    }
    if (rc != SK_OK) {
        /* Give back what this call took, not what the task had. */
        for (size_t i = 0; i < n; i++) {
            struct pool *p = sk_map_get(&a->pools, next[i].network_id);
            if (promised[i])
                owe(a, &a->nodes, pair_key(key, t->node_id, next[i].network_id),
                    p, true, false);
            if (!find_attachment(t->networks, t->n_networks,
                                 next[i].network_id))
                for (size_t j = 0; j < next[i].n_addresses; j++)
                    release_address(a, next[i].network_id,
                                    next[i].addresses[j]);
        }
        free_attachments(next, n);
        free(promised);
        return rc;
    }
    free(promised);
    free_attachments(t->networks, t->n_networks);
    t->networks = next;
    t->n_networks = n;
    return SK_OK;
}

/* An address owed to key (in map m), or one that is free beyond the owed
 * ones: the debt is settled if the address comes. */
static enum sk_rc take_owed(struct sk_allocator *a, struct sk_map *m,
                            const char *key, const char *network_id, bool node,
                            char **out, bool *out_was_owed, struct sk_err *err)
{
    struct pool *p = sk_map_get(&a->pools, network_id);
    if (!p)
        return no_network(network_id, err);
    bool was_owed = sk_map_get(m, key) == OWED;
    if (was_owed)
        owe(a, m, key, p, node, false);
    enum sk_rc rc = take_address(a, network_id, false, out, err);
    if (rc != SK_OK && was_owed)
        owe(a, m, key, p, node, true);
    *out_was_owed = was_owed;
    return rc;
}

enum sk_rc sk_allocate_vips(struct sk_allocator *a, struct sk_service *svc,
                            struct sk_err *err)
{
    const struct sk_task_spec *spec = &svc->spec.task;
    bool vip = svc->spec.endpoint.mode == SK_ENDPOINT_VIP;
    size_t want = vip ? spec->n_networks : 0;
    struct sk_vip *next = sk_calloc(want ? want : 1, sizeof *next);
    bool *owed = sk_calloc(want ? want : 1, sizeof *owed);
    char key[2 * SK_ID_SIZE + 1];
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
        if ((rc = take_owed(a, &a->vips, pair_key(key, svc->meta.id, id), id,
                            false, &next[n].addr, &owed[n], err)) != SK_OK)
            break;
        n++;
    }
    if (rc != SK_OK) {
        for (size_t k = 0; k < n; k++) {
            bool had = false;
            for (size_t j = 0; j < svc->n_vips; j++)
                had |= strcmp(svc->vips[j].network_id, next[k].network_id) == 0;
            if (!had) {
                release_address(a, next[k].network_id, next[k].addr);
                if (owed[k])
                    owe(a, &a->vips,
                        pair_key(key, svc->meta.id, next[k].network_id),
                        sk_map_get(&a->pools, next[k].network_id), false, true);
            }
            free(next[k].addr);
        }
        free(next);
        free(owed);
        return rc;
    }
    free(owed);
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
    char key[2 * SK_ID_SIZE + 1];
    pair_key(key, n->meta.id, network_id);
    char *addr = NULL;
    bool was_owed;
    enum sk_rc rc =
        take_owed(a, &a->nodes, key, network_id, true, &addr, &was_owed, err);
    if (rc == SK_ENOSPC) {
        char what[96];
        snprintf(what, sizeof what, " for node %s's own address",
                 n->spec.name ? n->spec.name : n->meta.id);
        return exhausted(a, sk_map_get(&a->pools, network_id), network_id, what,
                         err);
    }
    if (rc != SK_OK)
        return rc;
    if (!sk_map_put(&a->nodes, key, HELD))
        ((struct pool *)sk_map_get(&a->pools, network_id))->nodes++;
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

/* ---- the leader's allocation pass ---- */

struct pass {
    const struct sk_store *s;
    struct sk_allocator *a;
    int64_t now;
    size_t max_ops;
    struct sk_txn *txn;
    size_t changes;
};

static bool room(const struct pass *p)
{
    return p->changes < p->max_ops &&
           sk_txn_size(p->txn) < SK_TXN_MAX_BYTES / 2;
}

static int by_id(const void *x, const void *y)
{
    const struct sk_meta *a = *(const struct sk_meta *const *)x;
    const struct sk_meta *b = *(const struct sk_meta *const *)y;
    return strcmp(a->id, b->id);
}

static bool same_vips(const struct sk_service *a, const struct sk_service *b)
{
    if (a->n_vips != b->n_vips)
        return false;
    for (size_t i = 0; i < a->n_vips; i++)
        if (strcmp(a->vips[i].network_id, b->vips[i].network_id) != 0 ||
            strcmp(a->vips[i].addr ? a->vips[i].addr : "",
                   b->vips[i].addr ? b->vips[i].addr : "") != 0)
            return false;
    return true;
}

static void give_vips(struct pass *p, const struct sk_service *svc)
{
    struct sk_service *u = sk_object_dup(SK_KIND_SERVICE, svc);
    struct sk_err err;
    if (sk_allocate_vips(p->a, u, &err) == SK_OK && !same_vips(svc, u)) {
        sk_txn_update(p->txn, SK_KIND_SERVICE, u, svc->meta.version);
        p->changes++;
    }
    sk_object_free(SK_KIND_SERVICE, u);
}

static int by_string(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The networks a node has non-terminal tasks with addresses on. */
struct node_nets {
    struct sk_map ids; /* network id -> (void *)1 */
};

static bool node_task(const void *obj, void *ctx)
{
    const struct sk_task *t = obj;
    struct node_nets *nn = ctx;
    if (sk_task_state_terminal(t->status.state))
        return true;
    for (size_t i = 0; i < t->n_networks; i++)
        if (t->networks[i].n_addresses)
            sk_map_put(&nn->ids, t->networks[i].network_id, (void *)1);
    return true;
}

static void give_node_addresses(struct pass *p, const struct sk_node *node)
{
    struct node_nets nn;
    sk_map_init(&nn.ids);
    sk_store_each_task_of_node(p->s, node->meta.id, node_task, &nn);
    if (node->n_networks == 0 && sk_map_count(&nn.ids) == 0) {
        sk_map_clear(&nn.ids);
        return;
    }
    struct sk_node *u = sk_object_dup(SK_KIND_NODE, node);
    bool changed = false;
    /* Addresses on networks it no longer has tasks on are let go. */
    size_t kept = 0;
    for (size_t i = 0; i < u->n_networks; i++) {
        if (sk_map_get(&nn.ids, u->networks[i].network_id)) {
            u->networks[kept++] = u->networks[i];
            continue;
        }
        for (size_t j = 0; j < u->networks[i].n_addresses; j++)
            free(u->networks[i].addresses[j]);
        free(u->networks[i].addresses);
        changed = true;
    }
    u->n_networks = kept;
    /* In a fixed order, so that plans are deterministic. */
    size_t n = sk_map_count(&nn.ids), k = 0;
    const char **ids = sk_calloc(n ? n : 1, sizeof *ids);
    struct sk_map_iter it;
    const char *id;
    sk_map_iter_init(&it, &nn.ids);
    while (sk_map_iter_next(&it, &id, NULL))
        ids[k++] = id;
    qsort(ids, n, sizeof *ids, by_string);
    for (size_t i = 0; i < n; i++) {
        struct sk_err err;
        size_t before = u->n_networks;
        /* One the pool cannot give now waits for the next pass. */
        if (sk_allocate_node_address(p->a, u, ids[i], &err) == SK_OK &&
            u->n_networks != before)
            changed = true;
    }
    free(ids);
    if (changed) {
        sk_txn_update(p->txn, SK_KIND_NODE, u, node->meta.version);
        p->changes++;
    }
    sk_object_free(SK_KIND_NODE, u);
    sk_map_clear(&nn.ids);
}

static void give_task_addresses(struct pass *p, const struct sk_task *t)
{
    struct sk_task *u = sk_object_dup(SK_KIND_TASK, t);
    struct sk_err err;
    if (sk_allocate_task(p->a, u, &err) == SK_OK) {
        free(u->status.message);
        if (*u->node_id) {
            /* A global service's task: on its node already. */
            u->status.state = SK_TASK_ASSIGNED;
            u->status.message = sk_strdup("assigned");
        } else {
            u->status.message = sk_strdup("addresses allocated");
        }
        u->status.timestamp = p->now;
    } else if (t->status.message && strcmp(t->status.message, err.msg) == 0) {
        sk_object_free(SK_KIND_TASK, u);
        return; /* still waiting, for the same reason */
    } else {
        free(u->status.message);
        u->status.message = sk_strdup(err.msg);
    }
    sk_txn_update(p->txn, SK_KIND_TASK, u, t->meta.version);
    p->changes++;
    sk_object_free(SK_KIND_TASK, u);
}

/* Pending without all its addresses -- unless its service is gone or has
 * moved on to another spec: the orchestrator replaces such a task, and an
 * address for it would be wasted. */
static bool waits_for_addresses(const struct sk_store *s,
                                const struct sk_task *t)
{
    if (t->status.state != SK_TASK_PENDING ||
        t->desired_state != SK_TASK_RUNNING || sk_task_has_addresses(t))
        return false;
    const struct sk_service *svc =
        sk_store_get(s, SK_KIND_SERVICE, t->service_id);
    return svc &&
           (t->spec_version >= svc->spec_version ||
            sk_schema_equal(&sk_task_spec_schema, &t->spec, &svc->spec.task));
}

/* Oldest first: they have waited longest. */
static int by_age(const void *x, const void *y)
{
    const struct sk_task *a = *(const struct sk_task *const *)x;
    const struct sk_task *b = *(const struct sk_task *const *)y;
    if (a->meta.created_at != b->meta.created_at)
        return a->meta.created_at < b->meta.created_at ? -1 : 1;
    if (a->slot != b->slot)
        return a->slot < b->slot ? -1 : 1;
    return strcmp(a->meta.id, b->meta.id);
}

struct sk_txn *sk_allocation_txn(const struct sk_store *s,
                                 struct sk_allocator *a, int64_t now_ms,
                                 size_t max_ops)
{
    sk_allocator_sync(a, s);
    if (sk_map_count(&a->pools) == 0)
        return NULL;
    struct pass p = {
        .s = s, .a = a, .now = now_ms, .max_ops = max_ops, .txn = sk_txn_new()};
    size_t n;
    const void **all = sk_store_list(s, SK_KIND_SERVICE, &n);
    qsort(all, n, sizeof *all, by_id);
    for (size_t i = 0; i < n && room(&p); i++)
        give_vips(&p, all[i]);
    free(all);
    all = sk_store_list(s, SK_KIND_NODE, &n);
    qsort(all, n, sizeof *all, by_id);
    for (size_t i = 0; i < n && room(&p); i++)
        give_node_addresses(&p, all[i]);
    free(all);
    all = sk_store_list(s, SK_KIND_TASK, &n);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (waits_for_addresses(s, all[i]))
            all[w++] = all[i];
    qsort(all, w, sizeof *all, by_age);
    for (size_t i = 0; i < w && room(&p); i++)
        give_task_addresses(&p, all[i]);
    free(all);
    if (p.changes == 0) {
        sk_txn_free(p.txn);
        return NULL;
    }
    return p.txn;
}
