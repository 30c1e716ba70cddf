/* The overlay's reconcile: desired state in, netlink operations out. The
 * contract is agent/overlay.h.
 *
 * One snapshot is read first; every decision compares the desired state
 * with it, so the result depends only on the two, never on what an earlier
 * run of the agent remembered. Per network the order is: bridge, VXLAN
 * device, the bridge's address, then the VXLAN device's entries, each
 * removing what is stale before adding what is missing (an entry that
 * changed destination is one delete and one add). A device that is made
 * anew has nothing on it, whatever the snapshot said about its namesake. */
#include "agent/overlay.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void sk_overlay_bridge_name(const char *network_id, char out[IFNAMSIZ])
{
    snprintf(out, IFNAMSIZ, "%s%.*s", SK_OVERLAY_BRIDGE_PREFIX,
             SK_OVERLAY_ID_CHARS, network_id);
}

void sk_overlay_vxlan_name(const char *network_id, char out[IFNAMSIZ])
{
    snprintf(out, IFNAMSIZ, "%s%.*s", SK_OVERLAY_VXLAN_PREFIX,
             SK_OVERLAY_ID_CHARS, network_id);
}

void sk_overlay_mac_of(struct in_addr ip, uint8_t out[6])
{
    out[0] = 0x02;
    out[1] = 0x42;
    memcpy(out + 2, &ip.s_addr, 4);
}

static uint32_t mask_of(uint8_t prefix)
{
    return prefix ? htonl(~0u << (32 - prefix)) : 0;
}

static bool id_ok(const char *id)
{
    size_t n = 0;
    for (; id && id[n]; n++)
        if (!isalnum((unsigned char)id[n]))
            return false;
    return n >= SK_OVERLAY_ID_CHARS;
}

/* Whether a is an address of n's subnet other than its network and
 * broadcast addresses. */
static bool host_of(const struct sk_overlay_network *n, struct in_addr a)
{
    uint32_t mask = mask_of(n->prefix);
    return (a.s_addr & mask) == n->subnet.s_addr &&
           a.s_addr != n->subnet.s_addr && (a.s_addr | mask) != 0xffffffffu;
}

static enum sk_rc check_network(const struct sk_overlay_network *n,
                                struct sk_err *err)
{
    char gw[INET_ADDRSTRLEN], sub[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &n->gateway, gw, sizeof gw);
    inet_ntop(AF_INET, &n->subnet, sub, sizeof sub);
    if (n->vni < 1 || n->vni > 0xffffff)
        return sk_err_set(err, SK_EINVAL, "VNI %u out of range (1..16777215)",
                          n->vni);
    if (n->prefix < 8 || n->prefix > 30)
        return sk_err_set(err, SK_EINVAL,
                          "subnet %s/%u: prefix out of range (8..30)", sub,
                          n->prefix);
    uint32_t mask = mask_of(n->prefix);
    if (n->subnet.s_addr & ~mask)
        return sk_err_set(err, SK_EINVAL,
                          "subnet %s/%u has bits set beyond its prefix", sub,
                          n->prefix);
    if (!host_of(n, n->gateway))
        return sk_err_set(err, SK_EINVAL,
                          "gateway %s is not a host address of %s/%u", gw, sub,
                          n->prefix);
    if (n->node_addr.s_addr) {
        char na[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &n->node_addr, na, sizeof na);
        if (!host_of(n, n->node_addr))
            return sk_err_set(err, SK_EINVAL,
                              "node address %s is not a host address of %s/%u",
                              na, sub, n->prefix);
        if (n->node_addr.s_addr == n->gateway.s_addr)
            return sk_err_set(err, SK_EINVAL, "node address %s is the gateway",
                              na);
    }
    if (n->mtu < 68)
        return sk_err_set(err, SK_EINVAL, "MTU %u below 68", n->mtu);
    for (size_t i = 0; i < n->n_remotes; i++) {
        const struct sk_overlay_endpoint *r = &n->remotes[i];
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &r->ip, ip, sizeof ip);
        if ((r->ip.s_addr & mask) != n->subnet.s_addr)
            return sk_err_set(err, SK_EINVAL,
                              "remote task %s is not in subnet %s/%u", ip, sub,
                              n->prefix);
        if (r->ip.s_addr == n->gateway.s_addr ||
            r->ip.s_addr == n->node_addr.s_addr)
            return sk_err_set(err, SK_EINVAL,
                              "remote task %s has this node's own address "
                              "(the gateway or the node address)",
                              ip);
        for (size_t j = 0; j < i; j++)
            if (n->remotes[j].ip.s_addr == r->ip.s_addr ||
                memcmp(n->remotes[j].mac, r->mac, 6) == 0)
                return sk_err_set(err, SK_EINVAL,
                                  "remote task %s: its address or MAC is "
                                  "listed twice",
                                  ip);
    }
    return SK_OK;
}

enum sk_rc sk_overlay_check(const struct sk_overlay_desired *want,
                            struct sk_err *err)
{
    for (size_t i = 0; i < want->n_networks; i++) {
        const struct sk_overlay_network *n = &want->networks[i];
        if (!id_ok(n->id))
            return sk_err_set(err, SK_EINVAL,
                              "overlay network \"%s\": the ID must be at least "
                              "%d letters and digits",
                              n->id ? n->id : "", SK_OVERLAY_ID_CHARS);
        enum sk_rc rc = check_network(n, err);
        if (rc != SK_OK) {
            sk_err_wrap(err, "overlay network \"%s\"", n->id);
            return rc;
        }
        for (size_t j = 0; j < i; j++) {
            const struct sk_overlay_network *o = &want->networks[j];
            if (strncmp(o->id, n->id, SK_OVERLAY_ID_CHARS) == 0)
                return sk_err_set(err, SK_EINVAL,
                                  "overlay networks \"%s\" and \"%s\" would "
                                  "share device names (same first %d "
                                  "characters)",
                                  o->id, n->id, SK_OVERLAY_ID_CHARS);
            if (o->vni == n->vni)
                return sk_err_set(err, SK_EINVAL,
                                  "overlay networks \"%s\" and \"%s\" have the "
                                  "same VNI %u",
                                  o->id, n->id, n->vni);
        }
    }
    return SK_OK;
}

/* ---- one run ---- */

struct run {
    const struct sk_netlink_ops *ops;
    void *impl;
    const struct sk_nl_state *snap;
    size_t changes;
    struct sk_err err; /* of the operation that failed last */
};

/* Counts a change that succeeded; keeps the error of one that failed. */
static bool done(struct run *r, enum sk_rc rc)
{
    if (rc != SK_OK)
        return false;
    r->changes++;
    return true;
}

static const struct sk_nl_link *find_link(const struct sk_nl_state *s,
                                          const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (strcmp(s->links[i].name, name) == 0)
            return &s->links[i];
    return NULL;
}

static bool vxlan_same(const struct sk_nl_vxlan *a, const struct sk_nl_vxlan *b)
{
    return a->vni == b->vni && a->local.s_addr == b->local.s_addr &&
           a->port == b->port && a->learning == b->learning &&
           a->proxy == b->proxy;
}

static bool link_settings_same(const struct sk_nl_link *cur,
                               const struct sk_nl_link *want)
{
    return cur->mtu == want->mtu && cur->up == want->up &&
           strcmp(cur->master, want->master) == 0 &&
           (!want->has_mac ||
            (cur->has_mac && memcmp(cur->mac, want->mac, 6) == 0));
}

/* Brings one device to `want`: adopted if it matches, changed if only its
 * settings differ, made anew if it is of another kind or its VXLAN
 * attributes differ. *fresh tells whether it is new (nothing on it). */
static bool ensure_link(struct run *r, const struct sk_nl_link *want,
                        bool force_set, bool *fresh)
{
    const struct sk_nl_link *cur = find_link(r->snap, want->name);
    *fresh = false;
    if (cur &&
        (cur->kind != want->kind || (want->kind == SK_NL_VXLAN &&
                                     !vxlan_same(&cur->vxlan, &want->vxlan)))) {
        if (!done(r, r->ops->link_del(r->impl, want->name, &r->err)))
            return false;
        cur = NULL;
    }
    if (!cur) {
        *fresh = true;
        return done(r, r->ops->link_add(r->impl, want, &r->err));
    }
    if (force_set || !link_settings_same(cur, want))
        return done(r, r->ops->link_set(r->impl, want, &r->err));
    return true;
}

/* The bridge's addresses: the gateway first (dockerd looks at the first
 * address only), then the node's own. Others go. */
static bool ensure_address(struct run *r, const struct sk_overlay_network *n,
                           const char *bridge, bool fresh)
{
    struct in_addr want[2] = {n->gateway, n->node_addr};
    size_t n_want = n->node_addr.s_addr ? 2 : 1;
    bool present[2] = {false, false};
    for (size_t i = 0; !fresh && i < r->snap->n_addrs; i++) {
        const struct sk_nl_addr *a = &r->snap->addrs[i];
        if (strcmp(a->dev, bridge) != 0)
            continue;
        bool keep = false;
        for (size_t k = 0; k < n_want; k++)
            if (a->addr.s_addr == want[k].s_addr && a->prefix == n->prefix)
                keep = present[k] = true;
        if (!keep && !done(r, r->ops->addr_del(r->impl, a, &r->err)))
            return false;
    }
    /* A node address left without the gateway before it (dockerd or a
     * person removed it) goes too, so that the gateway comes first. */
    if (n_want == 2 && !present[0] && present[1]) {
        struct sk_nl_addr a = {.addr = want[1], .prefix = n->prefix};
        snprintf(a.dev, sizeof a.dev, "%s", bridge);
        if (!done(r, r->ops->addr_del(r->impl, &a, &r->err)))
            return false;
        present[1] = false;
    }
    for (size_t k = 0; k < n_want; k++) {
        if (present[k])
            continue;
        struct sk_nl_addr a = {.addr = want[k], .prefix = n->prefix};
        snprintf(a.dev, sizeof a.dev, "%s", bridge);
        if (!done(r, r->ops->addr_add(r->impl, &a, &r->err)))
            return false;
    }
    return true;
}

static const struct sk_overlay_endpoint *
remote_by_mac(const struct sk_overlay_network *n, const uint8_t mac[6])
{
    for (size_t i = 0; i < n->n_remotes; i++)
        if (memcmp(n->remotes[i].mac, mac, 6) == 0)
            return &n->remotes[i];
    return NULL;
}

static const struct sk_overlay_endpoint *
remote_by_ip(const struct sk_overlay_network *n, struct in_addr ip)
{
    for (size_t i = 0; i < n->n_remotes; i++)
        if (n->remotes[i].ip.s_addr == ip.s_addr)
            return &n->remotes[i];
    return NULL;
}

static bool ensure_entries(struct run *r, const struct sk_overlay_network *n,
                           const char *vxlan, bool fresh)
{
    const struct sk_nl_state *s = r->snap;
    /* Stale first: entries of tasks gone or moved. */
    for (size_t i = 0; !fresh && i < s->n_fdbs; i++) {
        const struct sk_nl_fdb *f = &s->fdbs[i];
        if (strcmp(f->dev, vxlan) != 0)
            continue;
        const struct sk_overlay_endpoint *e = remote_by_mac(n, f->mac);
        if ((!e || e->vtep.s_addr != f->dst.s_addr) &&
            !done(r, r->ops->fdb_del(r->impl, f, &r->err)))
            return false;
    }
    for (size_t i = 0; !fresh && i < s->n_neighs; i++) {
        const struct sk_nl_neigh *x = &s->neighs[i];
        if (strcmp(x->dev, vxlan) != 0)
            continue;
        const struct sk_overlay_endpoint *e = remote_by_ip(n, x->ip);
        if ((!e || !x->permanent || memcmp(e->mac, x->mac, 6) != 0) &&
            !done(r, r->ops->neigh_del(r->impl, x, &r->err)))
            return false;
    }
    for (size_t k = 0; k < n->n_remotes; k++) {
        const struct sk_overlay_endpoint *e = &n->remotes[k];
        bool have_fdb = false, have_neigh = false;
        for (size_t i = 0; !fresh && i < s->n_fdbs; i++)
            if (strcmp(s->fdbs[i].dev, vxlan) == 0 &&
                memcmp(s->fdbs[i].mac, e->mac, 6) == 0 &&
                s->fdbs[i].dst.s_addr == e->vtep.s_addr)
                have_fdb = true;
        for (size_t i = 0; !fresh && i < s->n_neighs; i++)
            if (strcmp(s->neighs[i].dev, vxlan) == 0 &&
                s->neighs[i].ip.s_addr == e->ip.s_addr &&
                s->neighs[i].permanent &&
                memcmp(s->neighs[i].mac, e->mac, 6) == 0)
                have_neigh = true;
        if (!have_fdb) {
            struct sk_nl_fdb f = {.dst = e->vtep};
            snprintf(f.dev, sizeof f.dev, "%s", vxlan);
            memcpy(f.mac, e->mac, 6);
            if (!done(r, r->ops->fdb_add(r->impl, &f, &r->err)))
                return false;
        }
        if (!have_neigh) {
            struct sk_nl_neigh x = {.ip = e->ip, .permanent = true};
            snprintf(x.dev, sizeof x.dev, "%s", vxlan);
            memcpy(x.mac, e->mac, 6);
            if (!done(r, r->ops->neigh_add(r->impl, &x, &r->err)))
                return false;
        }
    }
    return true;
}

static bool reconcile_network(struct run *r, struct in_addr vtep,
                              const struct sk_overlay_network *n)
{
    struct sk_nl_link br = {.kind = SK_NL_BRIDGE, .mtu = n->mtu, .up = true};
    if (n->node_addr.s_addr) {
        br.has_mac = true;
        sk_overlay_mac_of(n->node_addr, br.mac);
    }
    struct sk_nl_link vx = {
        .kind = SK_NL_VXLAN,
        .mtu = n->mtu,
        .up = true,
        .vxlan = {.vni = n->vni,
                  .local = vtep,
                  .port = SK_OVERLAY_VXLAN_PORT,
                  .learning = false,
                  .proxy = true},
    };
    sk_overlay_bridge_name(n->id, br.name);
    sk_overlay_vxlan_name(n->id, vx.name);
    memcpy(vx.master, br.name, sizeof vx.master);
    bool br_fresh, vx_fresh;
    /* A bridge made anew has lost its ports: the VXLAN device is enslaved
     * again even if the snapshot named the old bridge as its master. */
    return ensure_link(r, &br, false, &br_fresh) &&
           ensure_link(r, &vx, br_fresh, &vx_fresh) &&
           ensure_address(r, n, br.name, br_fresh) &&
           ensure_entries(r, n, vx.name, vx_fresh);
}

static bool names(const char *name, const char *prefix, const char *id)
{
    char own[IFNAMSIZ];
    snprintf(own, sizeof own, "%s%.*s", prefix, SK_OVERLAY_ID_CHARS, id);
    return strcmp(own, name) == 0;
}

/* Whether a device must stay: its network is wanted, or kept. */
static bool wanted(const struct sk_overlay_desired *want, const char *name,
                   const char *prefix)
{
    if (want->keep_all)
        return true;
    for (size_t i = 0; i < want->n_networks; i++)
        if (names(name, prefix, want->networks[i].id))
            return true;
    for (size_t i = 0; i < want->n_keep; i++)
        if (want->keep[i] && names(name, prefix, want->keep[i]))
            return true;
    return false;
}

/* Devices with our prefixes that no wanted network names: VXLAN devices
 * first, so that no bridge goes while a port of ours is still on it. */
static void remove_stale(struct run *r, const struct sk_overlay_desired *want,
                         struct sk_err *first)
{
    static const char *const order[] = {SK_OVERLAY_VXLAN_PREFIX,
                                        SK_OVERLAY_BRIDGE_PREFIX};
    for (size_t p = 0; p < 2; p++) {
        for (size_t i = 0; i < r->snap->n_links; i++) {
            const char *name = r->snap->links[i].name;
            if (strncmp(name, order[p], strlen(order[p])) != 0 ||
                wanted(want, name, order[p]))
                continue;
            if (!done(r, r->ops->link_del(r->impl, name, &r->err)) &&
                first->code == SK_OK)
                sk_err_copy(first, &r->err);
        }
    }
}

enum sk_rc sk_overlay_reconcile(const struct sk_netlink_ops *ops, void *impl,
                                const struct sk_overlay_desired *want,
                                size_t *out_changes, struct sk_err *err)
{
    if (out_changes)
        *out_changes = 0;
    enum sk_rc rc = sk_overlay_check(want, err);
    if (rc != SK_OK) {
        for (size_t i = 0; want->out_failed && i < want->n_networks; i++)
            want->out_failed[i] = true;
        return rc;
    }
    static const char *const prefixes[] = {SK_OVERLAY_BRIDGE_PREFIX,
                                           SK_OVERLAY_VXLAN_PREFIX};
    struct sk_nl_state snap = {0};
    if ((rc = ops->snapshot(impl, prefixes, 2, &snap, err)) != SK_OK) {
        for (size_t i = 0; want->out_failed && i < want->n_networks; i++)
            want->out_failed[i] = true;
        sk_err_wrap(err, "overlay");
        return rc;
    }
    struct run r = {.ops = ops, .impl = impl, .snap = &snap};
    struct sk_err first = {0};
    for (size_t i = 0; i < want->n_networks; i++) {
        const struct sk_overlay_network *n = &want->networks[i];
        bool ok = reconcile_network(&r, want->local_vtep, n);
        if (want->out_failed)
            want->out_failed[i] = !ok;
        if (!ok && first.code == SK_OK) {
            sk_err_copy(&first, &r.err);
            sk_err_wrap(&first, "overlay network \"%s\"", n->id);
        }
    }
    remove_stale(&r, want, &first);
    sk_nl_state_free(&snap);
    if (out_changes)
        *out_changes = r.changes;
    if (first.code != SK_OK) {
        sk_err_copy(err, &first);
        return first.code;
    }
    return SK_OK;
}
