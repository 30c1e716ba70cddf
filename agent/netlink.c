/* The overlay's netlink operations over libnl-route-3. The contract is
 * agent/netlink.h.
 *
 * Each operation is one blocking request on the handle's socket (libnl
 * waits for the kernel's acknowledgement). A snapshot dumps all links,
 * addresses and neighbours of the namespace and keeps those on the devices
 * whose names match: the kernel has no filter by name, and a host has few
 * enough devices that a dump costs less than keeping caches current. */
#include "agent/netlink.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skiff/mem.h"

struct sk_netlink {
    struct nl_sock *sock;
};

/* Sets err from a libnl error code, after the caller's description. */
static enum sk_rc nl_fail(struct sk_err *err, int nlerr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum sk_rc nl_fail(struct sk_err *err, int nlerr, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (nlerr < 0)
        nlerr = -nlerr;
    enum sk_rc rc = SK_EIO;
    if (nlerr == NLE_EXIST)
        rc = SK_EEXIST;
    else if (nlerr == NLE_OBJ_NOTFOUND || nlerr == NLE_NODEV)
        rc = SK_ENOTFOUND;
    else if (nlerr == NLE_INVAL || nlerr == NLE_RANGE)
        rc = SK_EINVAL;
    return sk_err_set(err, rc, "%s: %s (netlink)", what, nl_geterror(nlerr));
}

enum sk_rc sk_netlink_open(struct sk_netlink **out, struct sk_err *err)
{
    struct nl_sock *sock = nl_socket_alloc();
    if (!sock)
        sk_oom(sizeof(void *));
    int r = nl_connect(sock, NETLINK_ROUTE);
    if (r < 0) {
        nl_socket_free(sock);
        return nl_fail(err, r, "open rtnetlink socket");
    }
    struct sk_netlink *nl = sk_calloc(1, sizeof *nl);
    nl->sock = sock;
    *out = nl;
    return SK_OK;
}

void sk_netlink_close(struct sk_netlink *nl)
{
    if (!nl)
        return;
    nl_socket_free(nl->sock);
    free(nl);
}

void sk_nl_state_free(struct sk_nl_state *s)
{
    if (!s)
        return;
    free(s->links);
    free(s->addrs);
    free(s->fdbs);
    free(s->neighs);
    memset(s, 0, sizeof *s);
}

void sk_nl_mac_format(const uint8_t mac[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
             mac[3], mac[4], mac[5]);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool sk_nl_mac_parse(const char *s, uint8_t out[6])
{
    uint8_t mac[6];
    if (!s || strlen(s) != 17)
        return false;
    for (int i = 0; i < 6; i++) {
        int hi = hex_digit(s[i * 3]), lo = hex_digit(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(out, mac, 6);
    return true;
}

/* ---- snapshot ---- */

static bool name_matches(const char *name, const char *const *prefixes,
                         size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* The devices kept in a snapshot, by interface index. */
struct kept {
    int *ifindex;
    size_t n;
};

static long kept_index(const struct kept *k, int ifindex)
{
    for (size_t i = 0; i < k->n; i++)
        if (k->ifindex[i] == ifindex)
            return (long)i;
    return -1;
}

static const char *kept_name(const struct kept *k, const struct sk_nl_state *s,
                             int ifindex)
{
    long i = kept_index(k, ifindex);
    return i < 0 ? NULL : s->links[i].name;
}

/* libnl restarts a dump the kernel flags as interrupted (the table changed
 * meanwhile) without dropping what it already read, so an entry can come
 * twice: each reader keeps the first. */
static bool addr_seen(const struct sk_nl_state *s, const struct sk_nl_addr *a)
{
    for (size_t i = 0; i < s->n_addrs; i++)
        if (strcmp(s->addrs[i].dev, a->dev) == 0 &&
            s->addrs[i].addr.s_addr == a->addr.s_addr)
            return true;
    return false;
}

static bool fdb_seen(const struct sk_nl_state *s, const struct sk_nl_fdb *f)
{
    for (size_t i = 0; i < s->n_fdbs; i++)
        if (strcmp(s->fdbs[i].dev, f->dev) == 0 &&
            memcmp(s->fdbs[i].mac, f->mac, 6) == 0 &&
            s->fdbs[i].dst.s_addr == f->dst.s_addr)
            return true;
    return false;
}

static bool neigh_seen(const struct sk_nl_state *s, const struct sk_nl_neigh *n)
{
    for (size_t i = 0; i < s->n_neighs; i++)
        if (strcmp(s->neighs[i].dev, n->dev) == 0 &&
            s->neighs[i].ip.s_addr == n->ip.s_addr)
            return true;
    return false;
}

static void copy_name(char dst[IFNAMSIZ], const char *src)
{
    snprintf(dst, IFNAMSIZ, "%s", src ? src : "");
}

static bool addr4(struct nl_addr *a, struct in_addr *out)
{
    if (!a || nl_addr_get_len(a) != 4)
        return false;
    memcpy(&out->s_addr, nl_addr_get_binary_addr(a), 4);
    return true;
}

static bool mac_of(struct nl_addr *a, uint8_t out[6])
{
    if (!a || nl_addr_get_len(a) != 6)
        return false;
    memcpy(out, nl_addr_get_binary_addr(a), 6);
    return true;
}

static void read_links(struct nl_cache *cache, const char *const *prefixes,
                       size_t n_prefixes, struct sk_nl_state *out,
                       struct kept *kept)
{
    size_t cap = (size_t)nl_cache_nitems(cache);
    out->links = sk_calloc(cap ? cap : 1, sizeof *out->links);
    kept->ifindex = sk_calloc(cap ? cap : 1, sizeof *kept->ifindex);
    for (struct nl_object *o = nl_cache_get_first(cache); o;
         o = nl_cache_get_next(o)) {
        struct rtnl_link *l = (struct rtnl_link *)o;
        const char *name = rtnl_link_get_name(l);
        if (!name || !name_matches(name, prefixes, n_prefixes) ||
            kept_index(kept, rtnl_link_get_ifindex(l)) >= 0)
            continue;
        struct sk_nl_link *d = &out->links[out->n_links];
        copy_name(d->name, name);
        const char *type = rtnl_link_get_type(l);
        d->kind = !type                         ? SK_NL_OTHER
                  : strcmp(type, "bridge") == 0 ? SK_NL_BRIDGE
                  : strcmp(type, "vxlan") == 0  ? SK_NL_VXLAN
                                                : SK_NL_OTHER;
        d->mtu = rtnl_link_get_mtu(l);
        d->up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
        d->has_mac = mac_of(rtnl_link_get_addr(l), d->mac);
        int master = rtnl_link_get_master(l);
        if (master > 0) {
            char buf[IFNAMSIZ] = "";
            rtnl_link_i2name(cache, master, buf, sizeof buf);
            copy_name(d->master, buf);
        }
        if (d->kind == SK_NL_VXLAN) {
            uint32_t u = 0;
            if (rtnl_link_vxlan_get_id(l, &u) == 0)
                d->vxlan.vni = u;
            struct nl_addr *local = NULL;
            if (rtnl_link_vxlan_get_local(l, &local) == 0) {
                addr4(local, &d->vxlan.local);
                nl_addr_put(local);
            }
            if (rtnl_link_vxlan_get_port(l, &u) == 0)
                d->vxlan.port = (uint16_t)u;
            d->vxlan.learning = rtnl_link_vxlan_get_learning(l) > 0;
            d->vxlan.proxy = rtnl_link_vxlan_get_proxy(l) > 0;
        }
        kept->ifindex[out->n_links] = rtnl_link_get_ifindex(l);
        kept->n = ++out->n_links;
    }
}

static void read_addrs(struct nl_cache *cache, const struct kept *kept,
                       struct sk_nl_state *out)
{
    size_t cap = (size_t)nl_cache_nitems(cache);
    out->addrs = sk_calloc(cap ? cap : 1, sizeof *out->addrs);
    for (struct nl_object *o = nl_cache_get_first(cache); o;
         o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        if (rtnl_addr_get_family(a) != AF_INET)
            continue;
        const char *dev = kept_name(kept, out, rtnl_addr_get_ifindex(a));
        if (!dev)
            continue;
        struct sk_nl_addr *d = &out->addrs[out->n_addrs];
        memset(d, 0, sizeof *d);
        if (!addr4(rtnl_addr_get_local(a), &d->addr))
            continue;
        copy_name(d->dev, dev);
        d->prefix = (uint8_t)rtnl_addr_get_prefixlen(a);
        if (!addr_seen(out, d))
            out->n_addrs++;
    }
}

static void read_neighs(struct nl_cache *cache, const struct kept *kept,
                        struct sk_nl_state *out)
{
    size_t cap = (size_t)nl_cache_nitems(cache);
    out->fdbs = sk_calloc(cap ? cap : 1, sizeof *out->fdbs);
    out->neighs = sk_calloc(cap ? cap : 1, sizeof *out->neighs);
    for (struct nl_object *o = nl_cache_get_first(cache); o;
         o = nl_cache_get_next(o)) {
        struct rtnl_neigh *n = (struct rtnl_neigh *)o;
        const char *dev = kept_name(kept, out, rtnl_neigh_get_ifindex(n));
        if (!dev)
            continue;
        int family = rtnl_neigh_get_family(n);
        if (family == AF_BRIDGE) {
            /* The VXLAN device's own table (NTF_SELF) with a remote; the
             * bridge's entries for the port carry no destination. */
            struct sk_nl_fdb *d = &out->fdbs[out->n_fdbs];
            memset(d, 0, sizeof *d);
            if (!(rtnl_neigh_get_flags(n) & NTF_SELF) ||
                !addr4(rtnl_neigh_get_dst(n), &d->dst) ||
                !mac_of(rtnl_neigh_get_lladdr(n), d->mac))
                continue;
            copy_name(d->dev, dev);
            if (!fdb_seen(out, d))
                out->n_fdbs++;
        } else if (family == AF_INET) {
            struct sk_nl_neigh *d = &out->neighs[out->n_neighs];
            memset(d, 0, sizeof *d);
            if (!addr4(rtnl_neigh_get_dst(n), &d->ip))
                continue;
            mac_of(rtnl_neigh_get_lladdr(n), d->mac);
            d->permanent = (rtnl_neigh_get_state(n) & NUD_PERMANENT) != 0;
            copy_name(d->dev, dev);
            if (!neigh_seen(out, d))
                out->n_neighs++;
        }
    }
}

static enum sk_rc nl_snapshot(void *impl, const char *const *prefixes, size_t n,
                              struct sk_nl_state *out, struct sk_err *err)
{
    struct sk_netlink *nl = impl;
    struct nl_cache *links = NULL, *addrs = NULL, *neighs = NULL;
    struct kept kept = {0};
    struct sk_nl_state s = {0};
    enum sk_rc rc = SK_OK;
    int r;
    if ((r = rtnl_link_alloc_cache(nl->sock, AF_UNSPEC, &links)) < 0) {
        rc = nl_fail(err, r, "list devices");
        goto out;
    }
    read_links(links, prefixes, n, &s, &kept);
    if ((r = rtnl_addr_alloc_cache(nl->sock, &addrs)) < 0) {
        rc = nl_fail(err, r, "list addresses");
        goto out;
    }
    read_addrs(addrs, &kept, &s);
    /* AF_ITER: one dump per family of the cache (AF_UNSPEC gives the ARP
     * tables, AF_BRIDGE the forwarding databases). */
    if ((r = rtnl_neigh_alloc_cache_flags(nl->sock, &neighs,
                                          NL_CACHE_AF_ITER)) < 0) {
        rc = nl_fail(err, r, "list neighbours and forwarding entries");
        goto out;
    }
    read_neighs(neighs, &kept, &s);
out:
    if (links)
        nl_cache_free(links);
    if (addrs)
        nl_cache_free(addrs);
    if (neighs)
        nl_cache_free(neighs);
    free(kept.ifindex);
    if (rc == SK_OK)
        *out = s;
    else
        sk_nl_state_free(&s);
    return rc;
}

/* ---- changes ---- */

static int ifindex_of(struct sk_netlink *nl, const char *name, int *out)
{
    struct rtnl_link *l = NULL;
    int r = rtnl_link_get_kernel(nl->sock, 0, name, &l);
    if (r < 0)
        return r;
    *out = rtnl_link_get_ifindex(l);
    rtnl_link_put(l);
    return 0;
}

static struct nl_addr *nl_addr4(struct in_addr a)
{
    struct nl_addr *x = nl_addr_build(AF_INET, &a.s_addr, 4);
    if (!x)
        sk_oom(4);
    return x;
}

static void set_mac(struct rtnl_link *l, const uint8_t mac[6])
{
    struct nl_addr *a = nl_addr_build(AF_LLC, mac, 6);
    if (!a)
        sk_oom(6);
    rtnl_link_set_addr(l, a);
    nl_addr_put(a);
}

static const char *kind_name(enum sk_nl_kind k)
{
    return k == SK_NL_BRIDGE ? "bridge" : k == SK_NL_VXLAN ? "vxlan" : "device";
}

static enum sk_rc nl_link_add(void *impl, const struct sk_nl_link *want,
                              struct sk_err *err)
{
    struct sk_netlink *nl = impl;
    if (want->kind != SK_NL_BRIDGE && want->kind != SK_NL_VXLAN)
        return sk_err_set(err, SK_EINTERNAL,
                          "add device \"%s\": only bridges and VXLAN devices",
                          want->name);
    int master = 0, r;
    if (want->master[0] && (r = ifindex_of(nl, want->master, &master)) < 0)
        return nl_fail(err, r, "add %s \"%s\": master \"%s\"",
                       kind_name(want->kind), want->name, want->master);
    struct rtnl_link *l = want->kind == SK_NL_BRIDGE ? rtnl_link_bridge_alloc()
                                                     : rtnl_link_vxlan_alloc();
    if (!l)
        sk_oom(sizeof(void *));
    rtnl_link_set_name(l, want->name);
    if (want->mtu)
        rtnl_link_set_mtu(l, want->mtu);
    if (want->up)
        rtnl_link_set_flags(l, IFF_UP);
    if (master)
        rtnl_link_set_master(l, master);
    if (want->has_mac)
        set_mac(l, want->mac);
    if (want->kind == SK_NL_VXLAN) {
        struct nl_addr *local = nl_addr4(want->vxlan.local);
        rtnl_link_vxlan_set_id(l, want->vxlan.vni);
        rtnl_link_vxlan_set_local(l, local);
        rtnl_link_vxlan_set_port(l, want->vxlan.port);
        rtnl_link_vxlan_set_learning(l, want->vxlan.learning);
        rtnl_link_vxlan_set_proxy(l, want->vxlan.proxy);
        nl_addr_put(local);
    }
    r = rtnl_link_add(nl->sock, l, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(l);
    if (r < 0)
        return nl_fail(err, r, "add %s \"%s\"", kind_name(want->kind),
                       want->name);
    return SK_OK;
}

static enum sk_rc nl_link_set(void *impl, const struct sk_nl_link *want,
                              struct sk_err *err)
{
    struct sk_netlink *nl = impl;
    struct rtnl_link *orig = NULL;
    int r = rtnl_link_get_kernel(nl->sock, 0, want->name, &orig);
    if (r < 0)
        return nl_fail(err, r, "change device \"%s\"", want->name);
    int master = 0;
    if (want->master[0] && (r = ifindex_of(nl, want->master, &master)) < 0) {
        rtnl_link_put(orig);
        return nl_fail(err, r, "change device \"%s\": master \"%s\"",
                       want->name, want->master);
    }
    struct rtnl_link *c = rtnl_link_alloc();
    if (!c)
        sk_oom(sizeof(void *));
    if (want->mtu)
        rtnl_link_set_mtu(c, want->mtu);
    rtnl_link_set_master(c, master);
    if (want->has_mac)
        set_mac(c, want->mac);
    if (want->up)
        rtnl_link_set_flags(c, IFF_UP);
    else
        rtnl_link_unset_flags(c, IFF_UP);
    r = rtnl_link_change(nl->sock, orig, c, 0);
    rtnl_link_put(c);
    rtnl_link_put(orig);
    if (r < 0)
        return nl_fail(err, r, "change device \"%s\"", want->name);
    return SK_OK;
}

static enum sk_rc nl_link_del(void *impl, const char *name, struct sk_err *err)
{
    struct sk_netlink *nl = impl;
    struct rtnl_link *l = rtnl_link_alloc();
    if (!l)
        sk_oom(sizeof(void *));
    rtnl_link_set_name(l, name);
    int r = rtnl_link_delete(nl->sock, l);
    rtnl_link_put(l);
    if (r < 0)
        return nl_fail(err, r, "delete device \"%s\"", name);
    return SK_OK;
}

static enum sk_rc nl_addr_change(struct sk_netlink *nl,
                                 const struct sk_nl_addr *a, bool add,
                                 struct sk_err *err)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a->addr, ip, sizeof ip);
    const char *what = add ? "add" : "delete";
    int ifindex, r;
    if ((r = ifindex_of(nl, a->dev, &ifindex)) < 0)
        return nl_fail(err, r, "%s address %s/%u on \"%s\"", what, ip,
                       a->prefix, a->dev);
    struct rtnl_addr *x = rtnl_addr_alloc();
    if (!x)
        sk_oom(sizeof(void *));
    struct nl_addr *local = nl_addr4(a->addr);
    rtnl_addr_set_ifindex(x, ifindex);
    rtnl_addr_set_family(x, AF_INET);
    rtnl_addr_set_local(x, local);
    rtnl_addr_set_prefixlen(x, a->prefix);
    if (add && a->prefix < 31) {
        /* The broadcast address dockerd itself would give the gateway, so
         * that its own check finds the address it expects. */
        uint32_t mask = a->prefix ? htonl(~0u << (32 - a->prefix)) : 0;
        struct in_addr b = {.s_addr = a->addr.s_addr | ~mask};
        struct nl_addr *brd = nl_addr4(b);
        rtnl_addr_set_broadcast(x, brd);
        nl_addr_put(brd);
    }
    r = add ? rtnl_addr_add(nl->sock, x, 0) : rtnl_addr_delete(nl->sock, x, 0);
    nl_addr_put(local);
    rtnl_addr_put(x);
    if (r < 0)
        return nl_fail(err, r, "%s address %s/%u on \"%s\"", what, ip,
                       a->prefix, a->dev);
    return SK_OK;
}

static enum sk_rc nl_addr_add(void *impl, const struct sk_nl_addr *a,
                              struct sk_err *err)
{
    return nl_addr_change(impl, a, true, err);
}

static enum sk_rc nl_addr_del(void *impl, const struct sk_nl_addr *a,
                              struct sk_err *err)
{
    return nl_addr_change(impl, a, false, err);
}

static enum sk_rc nl_fdb_change(struct sk_netlink *nl,
                                const struct sk_nl_fdb *f, bool add,
                                struct sk_err *err)
{
    char mac[18], ip[INET_ADDRSTRLEN];
    sk_nl_mac_format(f->mac, mac);
    inet_ntop(AF_INET, &f->dst, ip, sizeof ip);
    const char *what = add ? "add" : "delete";
    int ifindex, r;
    if ((r = ifindex_of(nl, f->dev, &ifindex)) < 0)
        return nl_fail(err, r, "%s forwarding entry %s dst %s on \"%s\"", what,
                       mac, ip, f->dev);
    struct rtnl_neigh *n = rtnl_neigh_alloc();
    if (!n)
        sk_oom(sizeof(void *));
    struct nl_addr *ll = nl_addr_build(AF_LLC, f->mac, 6);
    struct nl_addr *dst = nl_addr4(f->dst);
    if (!ll)
        sk_oom(6);
    rtnl_neigh_set_ifindex(n, ifindex);
    rtnl_neigh_set_lladdr(n, ll);
    /* The destination first: it would refuse an AF_INET address on an
     * AF_BRIDGE entry (libnl checks the families match). */
    rtnl_neigh_set_dst(n, dst);
    rtnl_neigh_set_family(n, AF_BRIDGE);
    rtnl_neigh_set_flags(n, NTF_SELF);
    rtnl_neigh_set_state(n, NUD_PERMANENT);
    r = add ? rtnl_neigh_add(nl->sock, n, NLM_F_CREATE | NLM_F_REPLACE)
            : rtnl_neigh_delete(nl->sock, n, 0);
    nl_addr_put(ll);
    nl_addr_put(dst);
    rtnl_neigh_put(n);
    if (r < 0)
        return nl_fail(err, r, "%s forwarding entry %s dst %s on \"%s\"", what,
                       mac, ip, f->dev);
    return SK_OK;
}

static enum sk_rc nl_fdb_add(void *impl, const struct sk_nl_fdb *f,
                             struct sk_err *err)
{
    return nl_fdb_change(impl, f, true, err);
}

static enum sk_rc nl_fdb_del(void *impl, const struct sk_nl_fdb *f,
                             struct sk_err *err)
{
    return nl_fdb_change(impl, f, false, err);
}

static enum sk_rc nl_neigh_change(struct sk_netlink *nl,
                                  const struct sk_nl_neigh *x, bool add,
                                  struct sk_err *err)
{
    char mac[18], ip[INET_ADDRSTRLEN];
    sk_nl_mac_format(x->mac, mac);
    inet_ntop(AF_INET, &x->ip, ip, sizeof ip);
    const char *what = add ? "add" : "delete";
    int ifindex, r;
    if ((r = ifindex_of(nl, x->dev, &ifindex)) < 0)
        return nl_fail(err, r, "%s neighbour %s lladdr %s on \"%s\"", what, ip,
                       mac, x->dev);
    struct rtnl_neigh *n = rtnl_neigh_alloc();
    if (!n)
        sk_oom(sizeof(void *));
    struct nl_addr *dst = nl_addr4(x->ip);
    rtnl_neigh_set_ifindex(n, ifindex);
    rtnl_neigh_set_dst(n, dst);
    if (add) {
        struct nl_addr *ll = nl_addr_build(AF_LLC, x->mac, 6);
        if (!ll)
            sk_oom(6);
        rtnl_neigh_set_lladdr(n, ll);
        nl_addr_put(ll);
        rtnl_neigh_set_state(n, NUD_PERMANENT);
    }
    r = add ? rtnl_neigh_add(nl->sock, n, NLM_F_CREATE | NLM_F_REPLACE)
            : rtnl_neigh_delete(nl->sock, n, 0);
    nl_addr_put(dst);
    rtnl_neigh_put(n);
    if (r < 0)
        return nl_fail(err, r, "%s neighbour %s lladdr %s on \"%s\"", what, ip,
                       mac, x->dev);
    return SK_OK;
}

static enum sk_rc nl_neigh_add(void *impl, const struct sk_nl_neigh *n,
                               struct sk_err *err)
{
    return nl_neigh_change(impl, n, true, err);
}

static enum sk_rc nl_neigh_del(void *impl, const struct sk_nl_neigh *n,
                               struct sk_err *err)
{
    return nl_neigh_change(impl, n, false, err);
}

static const struct sk_netlink_ops real_ops = {
    .snapshot = nl_snapshot,
    .link_add = nl_link_add,
    .link_set = nl_link_set,
    .link_del = nl_link_del,
    .addr_add = nl_addr_add,
    .addr_del = nl_addr_del,
    .fdb_add = nl_fdb_add,
    .fdb_del = nl_fdb_del,
    .neigh_add = nl_neigh_add,
    .neigh_del = nl_neigh_del,
};

const struct sk_netlink_ops *sk_netlink_ops(void)
{
    return &real_ops;
}

enum sk_rc sk_netlink_mtu_of_addr(struct sk_netlink *nl, struct in_addr addr,
                                  unsigned *out_mtu, struct sk_err *err)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr, ip, sizeof ip);
    struct nl_cache *addrs = NULL;
    int r = rtnl_addr_alloc_cache(nl->sock, &addrs);
    if (r < 0)
        return nl_fail(err, r, "find the device of %s", ip);
    int ifindex = 0;
    for (struct nl_object *o = nl_cache_get_first(addrs); o && !ifindex;
         o = nl_cache_get_next(o)) {
        struct rtnl_addr *a = (struct rtnl_addr *)o;
        struct in_addr local;
        if (rtnl_addr_get_family(a) == AF_INET &&
            addr4(rtnl_addr_get_local(a), &local) &&
            local.s_addr == addr.s_addr)
            ifindex = rtnl_addr_get_ifindex(a);
    }
    nl_cache_free(addrs);
    if (!ifindex)
        return sk_err_set(err, SK_ENOTFOUND, "no device has the address %s",
                          ip);
    struct rtnl_link *l = NULL;
    if ((r = rtnl_link_get_kernel(nl->sock, ifindex, NULL, &l)) < 0)
        return nl_fail(err, r, "read the device of %s", ip);
    *out_mtu = rtnl_link_get_mtu(l);
    rtnl_link_put(l);
    return SK_OK;
}
