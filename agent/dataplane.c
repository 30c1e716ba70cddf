/* The node's data plane. The contract is agent/dataplane.h.
 *
 * One pass (sync_now) recomputes everything from the view, the local
 * tasks and what dockerd was seen to hold: the overlay's desired state,
 * the DNS table and its addresses, the host rules, every container's VIP
 * rules; each of those modules changes only what differs, so a pass over
 * an unchanged state costs a netlink dump and string compares. Docker's
 * networks are made and removed by a chain of calls, one in flight at a
 * time (docker_step picks the next from the state after each answer):
 * stale ones first (a name may be reused by a new network), then the
 * missing ones. A failure is remembered for the round and retried a
 * second later, in a new round that lists dockerd's networks again. */
#include "agent/dataplane.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dns.h"
#include "agent/dns_table.h"
#include "agent/overlay.h"
#include "skiff/ipv4.h"
#include "skiff/log.h"
#include "skiff/map.h"
#include "skiff/mem.h"

#define RETRY_MS 1000
#define DNS_PORT 53
#define OPT_BRIDGE "com.docker.network.bridge.name"
#define OPT_MTU "com.docker.network.driver.mtu"

/* A Docker network of ours, as listed or made. */
struct dnet {
    char *network_id; /* its label */
    char *docker_id;
    char *name, *bridge, *subnet, *gateway;
    bool internal;
    unsigned failed_round; /* its removal failed in this round */
};

/* What the data plane knows of a network of the view. */
struct nstat {
    bool overlay_ok;       /* its devices matched after the last pass */
    unsigned failed_round; /* its Docker network's creation failed */
    struct sk_err err;     /* the last failure */
    char *logged;          /* the failure last logged */
};

struct tatt {
    char network_id[SK_ID_SIZE];
    struct in_addr addr;
};

/* A local task with addresses. */
struct dtask {
    char id[SK_ID_SIZE];
    struct tatt *atts;
    size_t n_atts;
    char *container; /* while it runs */
    char *netns;     /* its SandboxKey, once inspected */
    bool inspecting;
    struct sk_vip_target vip;
    char *logged; /* the VIP failure last logged */
};

struct dataplane {
    uv_loop_t *loop;
    struct sk_docker *docker;
    char *node_name;
    struct in_addr vtep;
    const struct sk_netlink_ops *nl_ops;
    void *nl_impl;
    struct sk_netlink *nl; /* the real one, owned */
    const struct sk_vip_ops *vip_ops;
    void *vip_impl;
    unsigned mtu; /* 0: not known yet */
    struct sk_dns_server *dns;
    void (*changed_cb)(void *ctx);
    void *ctx;

    struct sk_net_info *view;
    size_t n_view;
    struct sk_map status; /* network ID -> struct nstat */
    struct sk_map tasks;  /* task ID -> struct dtask */
    struct dnet *dnets;
    size_t n_dnets;

    bool have_view;    /* the leader sent the node's view once */
    bool listed;       /* dockerd answered a network list once */
    bool relist;       /* list again before the next change */
    bool docker_busy;  /* a call of the chain is in flight */
    unsigned round;    /* of Docker changes; a failure waits for the next */
    bool round_failed; /* something failed in this round */
    char *host_applied;
    bool host_tried;
    char *ready; /* the IDs of the ready networks, as last told */
    char *mtu_logged;

    uv_timer_t sync_timer, retry_timer;
    unsigned inflight; /* dockerd calls whose callbacks are pending */
    unsigned handles;  /* handles and the DNS server still closing */
    bool closing;
    void (*close_cb)(void *ctx);
    void *close_ctx;
    struct dataplane_stats stats;
};

static void schedule_sync(struct dataplane *dp);

/* ---- small helpers ---- */

static void view_free(struct sk_net_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sk_schema_free(&sk_net_info_schema, &v[i]);
    free(v);
}

static bool addr_parse(const char *s, struct in_addr *out)
{
    uint32_t a;
    if (!s || !sk_ipv4_parse(s, &a, NULL))
        return false;
    out->s_addr = htonl(a);
    return true;
}

static const char *ip_str(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
    inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
    return buf;
}

static const struct sk_net_info *view_net(const struct dataplane *dp,
                                          const char *id)
{
    for (size_t i = 0; i < dp->n_view; i++)
        if (strcmp(dp->view[i].id, id) == 0)
            return &dp->view[i];
    return NULL;
}

static const char *net_name(const struct sk_net_info *n)
{
    return n->name ? n->name : n->id;
}

static char *docker_name_of(const struct sk_net_info *n)
{
    return sk_printf("%s%s", DATAPLANE_NAME_PREFIX, net_name(n));
}

static struct nstat *status_of(struct dataplane *dp, const char *id)
{
    struct nstat *s = sk_map_get(&dp->status, id);
    if (!s) {
        s = sk_calloc(1, sizeof *s);
        sk_map_put(&dp->status, id, s);
    }
    return s;
}

/* Logs a network's failure once, and again only when it changes. */
static void note_failure(struct dataplane *dp, const char *id,
                         const struct sk_err *err)
{
    struct nstat *s = status_of(dp, id);
    sk_err_copy(&s->err, err);
    if (s->logged && strcmp(s->logged, err->msg) == 0)
        return;
    free(s->logged);
    s->logged = sk_strdup(err->msg);
    SK_WARN("dataplane", "%s (retrying)", err->msg);
}

static void note_ok(struct dataplane *dp, const struct sk_net_info *n)
{
    struct nstat *s = sk_map_get(&dp->status, n->id);
    if (!s)
        return;
    sk_err_clear(&s->err);
    if (s->logged) {
        SK_INFO("dataplane", "network %s: ready on node %s", net_name(n),
                dp->node_name);
        free(s->logged);
        s->logged = NULL;
    }
}

static void dnet_free(struct dnet *d)
{
    free(d->network_id);
    free(d->docker_id);
    free(d->name);
    free(d->bridge);
    free(d->subnet);
    free(d->gateway);
}

static void dnet_remove_at(struct dataplane *dp, size_t i)
{
    dnet_free(&dp->dnets[i]);
    memmove(&dp->dnets[i], &dp->dnets[i + 1],
            (dp->n_dnets - i - 1) * sizeof *dp->dnets);
    dp->n_dnets--;
}

static bool str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* Whether Docker network d is the one network n wants. */
static bool dnet_matches(const struct dnet *d, const struct sk_net_info *n)
{
    char bridge[IFNAMSIZ];
    sk_overlay_bridge_name(n->id, bridge);
    char *name = docker_name_of(n);
    bool ok = str_eq(d->name, name) && str_eq(d->bridge, bridge) &&
              str_eq(d->subnet, n->subnet) && str_eq(d->gateway, n->gateway) &&
              d->internal == n->internal;
    free(name);
    return ok;
}

/* The Docker network of ours that network n may use, if any: the first
 * that matches (any other with its label is stale). */
static const struct dnet *dnet_of(const struct dataplane *dp,
                                  const struct sk_net_info *n)
{
    for (size_t i = 0; i < dp->n_dnets; i++)
        if (str_eq(dp->dnets[i].network_id, n->id) &&
            dnet_matches(&dp->dnets[i], n))
            return &dp->dnets[i];
    return NULL;
}

static bool dnet_wanted(const struct dataplane *dp, const struct dnet *d)
{
    const struct sk_net_info *n = view_net(dp, d->network_id);
    return n && dnet_of(dp, n) == d;
}

static bool net_ready(const struct dataplane *dp, const struct sk_net_info *n)
{
    const struct nstat *s = sk_map_get(&dp->status, n->id);
    return s && s->overlay_ok && dnet_of(dp, n);
}

/* ---- Docker's networks ---- */

static void docker_step(struct dataplane *dp);

/* Every dockerd callback starts here; false: the data plane is closing. */
static bool docker_done(struct dataplane *dp);

static json_t *list_str(const json_t *obj, const char *key)
{
    return json_object_get(obj, key);
}

static void list_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                      json_t *reply)
{
    struct dataplane *dp = ctx;
    if (!docker_done(dp))
        return;
    if (rc != SK_OK) {
        /* dockerd away: nothing is known, nothing is touched. */
        if (dp->listed || dp->round == 1)
            SK_DEBUG("dataplane", "%s", err->msg);
        dp->round_failed = true;
        schedule_sync(dp);
        return;
    }
    for (size_t i = 0; i < dp->n_dnets; i++)
        dnet_free(&dp->dnets[i]);
    dp->n_dnets = 0;
    size_t i;
    const json_t *n;
    json_array_foreach(reply, i, n)
    {
        const json_t *labels = list_str(n, "Labels");
        const char *id =
            json_string_value(json_object_get(labels, DATAPLANE_LABEL));
        const char *docker_id = json_string_value(json_object_get(n, "Id"));
        if (!id || !docker_id)
            continue;
        const json_t *cfg = json_array_get(
            json_object_get(json_object_get(n, "IPAM"), "Config"), 0);
        const char *s;
        dp->dnets =
            sk_realloc(dp->dnets, (dp->n_dnets + 1) * sizeof *dp->dnets);
        struct dnet *d = &dp->dnets[dp->n_dnets++];
        memset(d, 0, sizeof *d);
        d->network_id = sk_strdup(id);
        d->docker_id = sk_strdup(docker_id);
        s = json_string_value(json_object_get(n, "Name"));
        d->name = s ? sk_strdup(s) : NULL;
        s = json_string_value(
            json_object_get(json_object_get(n, "Options"), OPT_BRIDGE));
        d->bridge = s ? sk_strdup(s) : NULL;
        s = json_string_value(json_object_get(cfg, "Subnet"));
        d->subnet = s ? sk_strdup(s) : NULL;
        s = json_string_value(json_object_get(cfg, "Gateway"));
        d->gateway = s ? sk_strdup(s) : NULL;
        d->internal = json_is_true(json_object_get(n, "Internal"));
    }
    if (!dp->listed)
        SK_INFO("dataplane", "dockerd holds %zu networks of skiff",
                dp->n_dnets);
    dp->listed = true;
    dp->relist = false;
    dp->stats.docker_listed = true;
    schedule_sync(dp);
}

struct create_req {
    struct dataplane *dp;
    char *network_id;
    char *network_name;
    json_t *body;
};

static void create_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                        json_t *reply)
{
    struct create_req *q = ctx;
    struct dataplane *dp = q->dp;
    if (docker_done(dp)) {
        if (rc == SK_OK) {
            const json_t *b = q->body;
            const json_t *cfg = json_array_get(
                json_object_get(json_object_get(b, "IPAM"), "Config"), 0);
            const char *docker_id =
                json_string_value(json_object_get(reply, "Id"));
            dp->dnets =
                sk_realloc(dp->dnets, (dp->n_dnets + 1) * sizeof *dp->dnets);
            struct dnet *d = &dp->dnets[dp->n_dnets++];
            memset(d, 0, sizeof *d);
            d->network_id = sk_strdup(q->network_id);
            d->docker_id = sk_strdup(docker_id ? docker_id : "");
            d->name = sk_strdup(json_string_value(json_object_get(b, "Name")));
            d->bridge = sk_strdup(json_string_value(
                json_object_get(json_object_get(b, "Options"), OPT_BRIDGE)));
            d->subnet =
                sk_strdup(json_string_value(json_object_get(cfg, "Subnet")));
            d->gateway =
                sk_strdup(json_string_value(json_object_get(cfg, "Gateway")));
            d->internal = json_is_true(json_object_get(b, "Internal"));
            SK_INFO("dataplane", "network %s: Docker network %s made",
                    q->network_name, d->name);
        } else {
            struct sk_err e;
            sk_err_copy(&e, err);
            sk_err_wrap(&e, "network %s on node %s", q->network_name,
                        dp->node_name);
            note_failure(dp, q->network_id, &e);
            status_of(dp, q->network_id)->failed_round = dp->round;
            dp->round_failed = true;
        }
        schedule_sync(dp);
    }
    free(q->network_id);
    free(q->network_name);
    json_decref(q->body);
    free(q);
}

struct remove_req {
    struct dataplane *dp;
    char *docker_id;
};

static void remove_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                        json_t *reply)
{
    struct remove_req *q = ctx;
    struct dataplane *dp = q->dp;
    if (docker_done(dp)) {
        for (size_t i = 0; i < dp->n_dnets; i++) {
            struct dnet *d = &dp->dnets[i];
            if (!str_eq(d->docker_id, q->docker_id))
                continue;
            if (rc == SK_OK || rc == SK_ENOTFOUND) {
                SK_INFO("dataplane",
                        "Docker network %s (of network %s) removed",
                        d->name ? d->name : d->docker_id, d->network_id);
                dnet_remove_at(dp, i);
            } else {
                /* Typically a container still attached: retried once the
                 * executor removed it. */
                SK_WARN("dataplane", "%s (retrying)", err->msg);
                d->failed_round = dp->round;
                dp->round_failed = true;
            }
            break;
        }
        schedule_sync(dp);
    }
    free(q->docker_id);
    free(q);
}

static json_t *create_body(const struct dataplane *dp,
                           const struct sk_net_info *n)
{
    char bridge[IFNAMSIZ], mtu[16];
    sk_overlay_bridge_name(n->id, bridge);
    snprintf(mtu, sizeof mtu, "%u", dp->mtu);
    char *name = docker_name_of(n);
    json_t *b = json_pack(
        "{s:s, s:s, s:b, s:b, s:{s:s, s:[{s:s, s:s}]}, s:{s:s, s:s}, s:{s:s}}",
        "Name", name, "Driver", "bridge", "CheckDuplicate", 1, "Internal",
        n->internal, "IPAM", "Driver", "default", "Config", "Subnet", n->subnet,
        "Gateway", n->gateway, "Options", OPT_BRIDGE, bridge, OPT_MTU, mtu,
        "Labels", DATAPLANE_LABEL, n->id);
    free(name);
    return b;
}

/* Starts the next Docker change, if any: a list first (at the start, and
 * in every new round after a failure), then stale networks out, then the
 * missing ones in. One call at a time. */
static void docker_step(struct dataplane *dp)
{
    if (dp->docker_busy || dp->closing)
        return;
    if (!dp->listed || dp->relist) {
        if (dp->round_failed)
            return; /* the list failed: again in the next round */
        dp->docker_busy = true;
        dp->inflight++;
        sk_docker_network_list(dp->docker, DATAPLANE_LABEL, list_done, dp);
        return;
    }
    for (size_t i = 0; i < dp->n_dnets; i++) {
        struct dnet *d = &dp->dnets[i];
        if (d->failed_round == dp->round || dnet_wanted(dp, d))
            continue;
        struct remove_req *q = sk_calloc(1, sizeof *q);
        q->dp = dp;
        q->docker_id = sk_strdup(d->docker_id);
        dp->docker_busy = true;
        dp->inflight++;
        sk_docker_network_remove(dp->docker, d->docker_id, remove_done, q);
        return;
    }
    for (size_t i = 0; i < dp->n_view; i++) {
        const struct sk_net_info *n = &dp->view[i];
        struct nstat *s = status_of(dp, n->id);
        if (!s->overlay_ok || s->failed_round == dp->round || dnet_of(dp, n))
            continue;
        struct create_req *q = sk_calloc(1, sizeof *q);
        q->dp = dp;
        q->network_id = sk_strdup(n->id);
        q->network_name = sk_strdup(net_name(n));
        q->body = create_body(dp, n);
        if (!q->body) {
            struct sk_err e;
            sk_err_set(&e, SK_EINVAL,
                       "network %s on node %s: its Docker network cannot be "
                       "described in JSON",
                       net_name(n), dp->node_name);
            note_failure(dp, n->id, &e);
            s->failed_round = dp->round;
            free(q->network_id);
            free(q->network_name);
            free(q);
            continue;
        }
        dp->docker_busy = true;
        dp->inflight++;
        sk_docker_network_create(dp->docker, q->body, create_done, q);
        return;
    }
}

/* ---- the overlay ---- */

/* The desired state of the view's networks, in arrays owned here. */
struct desired {
    struct sk_overlay_network *nets;
    const struct sk_net_info **of; /* the view network of each */
    size_t n;
    struct sk_overlay_endpoint *eps;
    const char **keep;
    size_t n_keep;
};

static void desired_free(struct desired *w)
{
    free(w->nets);
    free(w->of);
    free(w->eps);
    free(w->keep);
}

static bool local_addr(const struct dataplane *dp, struct in_addr a)
{
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &dp->tasks);
    while (sk_map_iter_next(&it, NULL, &v)) {
        const struct dtask *t = v;
        for (size_t i = 0; i < t->n_atts; i++)
            if (t->atts[i].addr.s_addr == a.s_addr)
                return true;
    }
    return false;
}

/* The view's network n as the overlay wants it; false (and the failure
 * noted) if the view's values do not parse. Remote endpoints are every
 * address behind every peer, but the gateway, this node's own addresses
 * and duplicates. */
static bool build_network(struct dataplane *dp, const struct sk_net_info *n,
                          struct sk_overlay_network *out,
                          struct sk_overlay_endpoint *eps, size_t *n_eps)
{
    uint32_t subnet = 0;
    int prefix = 0;
    struct in_addr gw = {0}, node = {0};
    struct sk_err e = {0};
    if (!n->subnet || !sk_cidr_parse(n->subnet, &subnet, &prefix))
        sk_err_set(&e, SK_EINVAL, "subnet \"%s\" is not a CIDR",
                   n->subnet ? n->subnet : "");
    else if (!addr_parse(n->gateway, &gw))
        sk_err_set(&e, SK_EINVAL, "gateway \"%s\" is not an address",
                   n->gateway ? n->gateway : "");
    else if (n->node_addr && !addr_parse(n->node_addr, &node))
        sk_err_set(&e, SK_EINVAL, "node address \"%s\" is not an address",
                   n->node_addr);
    else if (n->vni < 1 || n->vni > 0xffffff)
        sk_err_set(&e, SK_EINVAL, "VNI %lld out of range", (long long)n->vni);
    if (e.code != SK_OK) {
        sk_err_wrap(&e, "network %s on node %s", net_name(n), dp->node_name);
        note_failure(dp, n->id, &e);
        return false;
    }
    *out = (struct sk_overlay_network){
        .id = n->id,
        .vni = (uint32_t)n->vni,
        .subnet = {.s_addr = htonl(subnet)},
        .prefix = (uint8_t)prefix,
        .gateway = gw,
        .node_addr = node,
        .mtu = dp->mtu,
        .remotes = eps,
    };
    uint32_t mask = htonl(sk_ipv4_mask(prefix));
    size_t k = 0;
    for (size_t p = 0; p < n->n_peers; p++) {
        const struct sk_net_peer *peer = &n->peers[p];
        struct in_addr vtep;
        if (!addr_parse(peer->vtep, &vtep))
            continue;
        for (size_t j = 0; j < peer->n_addrs; j++) {
            struct in_addr a;
            if (!addr_parse(peer->addrs[j], &a) ||
                (a.s_addr & mask) != out->subnet.s_addr ||
                a.s_addr == gw.s_addr || a.s_addr == node.s_addr ||
                local_addr(dp, a))
                continue;
            bool dup = false;
            for (size_t x = 0; x < k && !dup; x++)
                dup = eps[x].ip.s_addr == a.s_addr;
            if (dup)
                continue;
            eps[k].ip = a;
            eps[k].vtep = vtep;
            sk_overlay_mac_of(a, eps[k].mac);
            k++;
        }
    }
    out->n_remotes = k;
    *n_eps = k;
    return true;
}

static bool known_mtu(struct dataplane *dp)
{
    if (dp->mtu)
        return true;
    struct sk_err e = {0};
    unsigned mtu = 0;
    char vtep[INET_ADDRSTRLEN];
    ip_str(dp->vtep, vtep);
    if (!dp->nl) {
        sk_err_set(&e, SK_EINTERNAL, "no MTU given");
    } else if (sk_netlink_mtu_of_addr(dp->nl, dp->vtep, &mtu, &e) == SK_OK) {
        if (mtu > SK_OVERLAY_VXLAN_OVERHEAD + 68) {
            dp->mtu = mtu - SK_OVERLAY_VXLAN_OVERHEAD;
            SK_INFO("dataplane",
                    "data-path address %s: overlay MTU %u (the device's %u "
                    "less %d for VXLAN)",
                    vtep, dp->mtu, mtu, SK_OVERLAY_VXLAN_OVERHEAD);
            return true;
        }
        sk_err_set(&e, SK_EINVAL, "MTU %u is too small for VXLAN", mtu);
    }
    if (!dp->mtu_logged || strcmp(dp->mtu_logged, e.msg) != 0) {
        SK_ERROR("dataplane",
                 "data-path address %s: %s (no overlay until it is there)",
                 vtep, e.msg);
        free(dp->mtu_logged);
        dp->mtu_logged = sk_strdup(e.msg);
    }
    return false;
}

/* Makes the devices match the view; false if anything failed. */
static bool sync_overlay(struct dataplane *dp)
{
    if (!known_mtu(dp)) {
        for (size_t i = 0; i < dp->n_view; i++)
            status_of(dp, dp->view[i].id)->overlay_ok = false;
        return false;
    }
    struct desired w = {0};
    size_t total = 0;
    for (size_t i = 0; i < dp->n_view; i++)
        for (size_t p = 0; p < dp->view[i].n_peers; p++)
            total += dp->view[i].peers[p].n_addrs;
    w.nets = sk_calloc(dp->n_view + 1, sizeof *w.nets);
    w.of = sk_calloc(dp->n_view + 1, sizeof *w.of);
    w.eps = sk_calloc(total + 1, sizeof *w.eps);
    w.keep = sk_calloc(dp->n_dnets + 1, sizeof *w.keep);
    bool ok = true;
    size_t used = 0;
    for (size_t i = 0; i < dp->n_view; i++) {
        size_t k = 0;
        if (!build_network(dp, &dp->view[i], &w.nets[w.n], w.eps + used, &k)) {
            status_of(dp, dp->view[i].id)->overlay_ok = false;
            ok = false;
            continue;
        }
        w.of[w.n++] = &dp->view[i];
        used += k;
    }
    /* Networks that left the view keep their devices while their Docker
     * network is still there. */
    for (size_t i = 0; i < dp->n_dnets; i++)
        if (!view_net(dp, dp->dnets[i].network_id))
            w.keep[w.n_keep++] = dp->dnets[i].network_id;
    bool *failed = sk_calloc(w.n + 1, sizeof *failed);
    struct sk_overlay_desired want = {
        .local_vtep = dp->vtep,
        .networks = w.nets,
        .n_networks = w.n,
        .keep = w.keep,
        .n_keep = w.n_keep,
        .out_failed = failed,
    };
    struct sk_err err = {0};
    size_t changes = 0;
    enum sk_rc rc =
        sk_overlay_reconcile(dp->nl_ops, dp->nl_impl, &want, &changes, &err);
    if (changes)
        dp->stats.reconciles++;
    for (size_t i = 0; i < w.n; i++) {
        const char *id = w.of[i]->id;
        const char *name = net_name(w.of[i]);
        status_of(dp, id)->overlay_ok = !failed[i];
        if (!failed[i]) {
            continue;
        }
        ok = false;
        struct sk_err e;
        if (rc != SK_OK && strstr(err.msg, id))
            sk_err_copy(&e, &err);
        else
            sk_err_set(&e, SK_EIO, "its devices were not made");
        sk_err_wrap(&e, "network %s on node %s", name, dp->node_name);
        note_failure(dp, id, &e);
    }
    if (rc != SK_OK && w.n == 0)
        SK_WARN("dataplane", "%s (retrying)", err.msg);
    free(failed);
    desired_free(&w);
    return ok && rc == SK_OK;
}

/* ---- DNS ---- */

struct dns_build {
    struct sk_dns_service *svcs;
    size_t n_svcs;
    struct in_addr *addrs; /* the services' task addresses, in one array */
    struct sk_dns_endpoint *eps;
    size_t n_eps;
};

static void dns_build(const struct dataplane *dp, struct dns_build *b)
{
    size_t n_svcs = 0, n_addrs = 0, n_eps = 0;
    for (size_t i = 0; i < dp->n_view; i++) {
        n_svcs += dp->view[i].n_services;
        for (size_t s = 0; s < dp->view[i].n_services; s++)
            n_addrs += dp->view[i].services[s].n_ready;
    }
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &dp->tasks);
    while (sk_map_iter_next(&it, NULL, &v))
        n_eps += ((const struct dtask *)v)->n_atts;
    b->svcs = sk_calloc(n_svcs + 1, sizeof *b->svcs);
    b->addrs = sk_calloc(n_addrs + 1, sizeof *b->addrs);
    b->eps = sk_calloc(n_eps + 1, sizeof *b->eps);
    b->n_svcs = b->n_eps = 0;
    size_t used = 0;
    for (size_t i = 0; i < dp->n_view; i++) {
        const struct sk_net_info *n = &dp->view[i];
        for (size_t s = 0; s < n->n_services; s++) {
            const struct sk_net_service *sv = &n->services[s];
            struct sk_dns_service *d = &b->svcs[b->n_svcs++];
            d->network = n->id;
            d->name = sv->name;
            d->aliases = (const char *const *)sv->aliases;
            d->n_aliases = sv->n_aliases;
            d->mode = sv->endpoint_mode == SK_ENDPOINT_DNSRR ? SK_DNS_DNSRR
                                                             : SK_DNS_VIP;
            if (d->mode == SK_DNS_VIP && !addr_parse(sv->vip, &d->vip))
                d->mode = SK_DNS_DNSRR; /* no VIP yet: the tasks */
            d->tasks = b->addrs + used;
            for (size_t k = 0; k < sv->n_ready; k++)
                if (addr_parse(sv->ready[k], &b->addrs[used]))
                    used++;
            d->n_tasks = (size_t)(b->addrs + used - d->tasks);
        }
    }
    sk_map_iter_init(&it, &dp->tasks);
    while (sk_map_iter_next(&it, NULL, &v)) {
        const struct dtask *t = v;
        for (size_t i = 0; i < t->n_atts; i++) {
            if (!view_net(dp, t->atts[i].network_id))
                continue;
            bool dup = false;
            for (size_t k = 0; k < b->n_eps && !dup; k++)
                dup = b->eps[k].addr.s_addr == t->atts[i].addr.s_addr;
            if (dup)
                continue;
            b->eps[b->n_eps++] = (struct sk_dns_endpoint){
                .addr = t->atts[i].addr,
                .network = t->atts[i].network_id,
                .task = t->id,
            };
        }
    }
}

static void dns_build_free(struct dns_build *b)
{
    free(b->svcs);
    free(b->addrs);
    free(b->eps);
}

static bool sync_dns(struct dataplane *dp)
{
    struct dns_build b;
    dns_build(dp, &b);
    struct sk_dns_table *t = NULL;
    struct sk_err err = {0};
    bool ok = true;
    if (sk_dns_table_new(b.svcs, b.n_svcs, b.eps, b.n_eps, &t, &err) != SK_OK) {
        /* A name the manager let through that DNS cannot carry: leave
         * those services out rather than every name of the node. */
        size_t k = 0;
        for (size_t i = 0; i < b.n_svcs; i++) {
            struct sk_dns_table *one = NULL;
            struct sk_err e = {0};
            if (sk_dns_table_new(&b.svcs[i], 1, NULL, 0, &one, &e) == SK_OK)
                b.svcs[k++] = b.svcs[i];
            else
                SK_WARN("dataplane", "service %s left out of DNS: %s",
                        b.svcs[i].name ? b.svcs[i].name : "?", e.msg);
            sk_dns_table_free(one);
        }
        if (sk_dns_table_new(b.svcs, k, b.eps, b.n_eps, &t, &err) != SK_OK) {
            SK_WARN("dataplane", "DNS table: %s", err.msg);
            t = NULL;
            ok = false;
        }
    }
    if (t)
        sk_dns_server_set_table(dp->dns, t);
    dns_build_free(&b);

    struct in_addr *gws = sk_calloc(dp->n_view + 1, sizeof *gws);
    size_t n = 0;
    for (size_t i = 0; i < dp->n_view; i++)
        if (addr_parse(dp->view[i].gateway, &gws[n]))
            n++;
    if (sk_dns_server_listen(dp->dns, gws, n, &err) != SK_OK) {
        SK_WARN("dataplane", "DNS: %s (retrying)", err.msg);
        ok = false;
    }
    free(gws);
    return ok;
}

/* ---- host rules ---- */

char *dataplane_render_host_rules(const struct dataplane_host_net *nets,
                                  size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        sk_oom(BUFSIZ);
    fprintf(f, "table ip %s\ndelete table ip %s\n", DATAPLANE_HOST_TABLE,
            DATAPLANE_HOST_TABLE);
    size_t n_internal = 0;
    for (size_t i = 0; i < n; i++)
        n_internal += nets[i].internal;
    if (n > 0) {
        fprintf(f, "table ip %s {\n", DATAPLANE_HOST_TABLE);
        static const char *const hooks[] = {"prerouting", "output"};
        for (size_t h = 0; h < 2; h++) {
            fprintf(f,
                    "\tchain %s {\n"
                    "\t\ttype filter hook %s priority raw; policy accept;\n",
                    hooks[h], hooks[h]);
            for (size_t i = 0; i < n; i++)
                fprintf(f, "\t\tip saddr %s ip daddr %s notrack\n",
                        nets[i].subnet, nets[i].subnet);
            fprintf(f, "\t}\n");
        }
        if (n_internal) {
            fprintf(f, "\tchain input {\n"
                       "\t\ttype filter hook input priority 0; policy "
                       "accept;\n");
            fprintf(f, "\t\tiifname { ");
            for (size_t i = 0, k = 0; i < n; i++)
                if (nets[i].internal)
                    fprintf(f, "%s\"%s\"", k++ ? ", " : "", nets[i].bridge);
            fprintf(f, " } ct state established,related accept\n");
            for (size_t i = 0; i < n; i++)
                if (nets[i].internal)
                    fprintf(f,
                            "\t\tiifname \"%s\" ip daddr %s udp dport 53 "
                            "accept\n",
                            nets[i].bridge, nets[i].gateway);
            fprintf(f, "\t\tiifname { ");
            for (size_t i = 0, k = 0; i < n; i++)
                if (nets[i].internal)
                    fprintf(f, "%s\"%s\"", k++ ? ", " : "", nets[i].bridge);
            fprintf(f, " } drop\n\t}\n");
        }
        fprintf(f, "}\n");
    }
    if (fclose(f) != 0 || !text)
        sk_oom(len);
    return text;
}

static bool sync_host_rules(struct dataplane *dp)
{
    struct dataplane_host_net *nets = sk_calloc(dp->n_view + 1, sizeof *nets);
    char(*names)[IFNAMSIZ] = sk_calloc(dp->n_view + 1, sizeof *names);
    size_t n = 0;
    struct in_addr gw;
    uint32_t subnet;
    int prefix;
    for (size_t i = 0; i < dp->n_view; i++) {
        const struct sk_net_info *v = &dp->view[i];
        /* Only what parses: the text goes into an nft script. */
        if (!addr_parse(v->gateway, &gw) || !v->subnet ||
            !sk_cidr_parse(v->subnet, &subnet, &prefix))
            continue;
        sk_overlay_bridge_name(v->id, names[n]);
        nets[n] = (struct dataplane_host_net){.bridge = names[n],
                                              .subnet = v->subnet,
                                              .gateway = v->gateway,
                                              .internal = v->internal};
        n++;
    }
    char *script = dataplane_render_host_rules(nets, n);
    free(nets);
    free(names);
    bool ok = true;
    /* Applied at the first pass whatever it says: an agent before this one
     * may have left rules for networks that are gone. */
    if (!dp->host_tried ||
        !(dp->host_applied && strcmp(dp->host_applied, script) == 0)) {
        struct sk_err err = {0};
        if (dp->vip_ops->apply(dp->vip_impl, DATAPLANE_HOST_NETNS, script,
                               &err) == SK_OK) {
            free(dp->host_applied);
            dp->host_applied = script;
            script = NULL;
        } else {
            SK_WARN("dataplane", "host rules: %s (retrying)", err.msg);
            ok = false;
        }
        dp->host_tried = true;
    }
    free(script);
    return ok;
}

/* ---- VIPs ---- */

static bool sync_task_vips(struct dataplane *dp, struct dtask *t)
{
    size_t cap = 0;
    for (size_t i = 0; i < t->n_atts; i++) {
        const struct sk_net_info *n = view_net(dp, t->atts[i].network_id);
        if (n)
            cap += n->n_services;
    }
    struct sk_vip_service *svcs = sk_calloc(cap + 1, sizeof *svcs);
    struct in_addr **backs = sk_calloc(cap + 1, sizeof *backs);
    size_t k = 0;
    for (size_t i = 0; i < t->n_atts; i++) {
        const struct sk_net_info *n = view_net(dp, t->atts[i].network_id);
        for (size_t s = 0; n && s < n->n_services; s++) {
            const struct sk_net_service *sv = &n->services[s];
            struct in_addr vip;
            if (sv->endpoint_mode != SK_ENDPOINT_VIP ||
                !addr_parse(sv->vip, &vip))
                continue;
            backs[k] = sk_calloc(sv->n_ready + 1, sizeof **backs);
            size_t m = 0;
            for (size_t r = 0; r < sv->n_ready; r++)
                if (addr_parse(sv->ready[r], &backs[k][m]))
                    m++;
            svcs[k] = (struct sk_vip_service){
                .vip = vip, .backends = backs[k], .n_backends = m};
            k++;
        }
    }
    bool ok = true;
    /* A container on no network with VIPs, never given rules: nothing to
     * do (not even the delete, which costs a thread and an nft run). */
    if (k > 0 || t->vip.applied) {
        struct sk_err err = {0};
        bool changed = false;
        t->vip.netns = t->netns;
        if (sk_vip_sync(dp->vip_ops, dp->vip_impl, &t->vip, svcs, k, &changed,
                        &err) != SK_OK) {
            ok = false;
            if (!t->logged || strcmp(t->logged, err.msg) != 0) {
                SK_WARN("dataplane", "VIPs of task %s: %s (retrying)", t->id,
                        err.msg);
                free(t->logged);
                t->logged = sk_strdup(err.msg);
            }
        } else {
            free(t->logged);
            t->logged = NULL;
            if (changed)
                dp->stats.vip_applies++;
        }
    }
    for (size_t i = 0; i < k; i++)
        free(backs[i]);
    free(backs);
    free(svcs);
    return ok;
}

static bool sync_vips(struct dataplane *dp)
{
    bool ok = true;
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &dp->tasks);
    while (sk_map_iter_next(&it, NULL, &v)) {
        struct dtask *t = v;
        if (t->container && t->netns && !sync_task_vips(dp, t))
            ok = false;
    }
    return ok;
}

/* ---- the pass ---- */

/* Tells the executor when the set of ready networks changed. */
static void tell_readiness(struct dataplane *dp)
{
    char *ready = sk_strdup("");
    for (size_t i = 0; i < dp->n_view; i++)
        if (net_ready(dp, &dp->view[i])) {
            char *r = sk_printf("%s%s,", ready, dp->view[i].id);
            free(ready);
            ready = r;
            note_ok(dp, &dp->view[i]);
        }
    bool changed = !dp->ready || strcmp(dp->ready, ready) != 0;
    free(dp->ready);
    dp->ready = ready;
    if (changed && dp->changed_cb)
        dp->changed_cb(dp->ctx);
}

static void retry_cb(uv_timer_t *timer)
{
    struct dataplane *dp = timer->data;
    if (dp->round_failed) {
        dp->round++;
        dp->round_failed = false;
        dp->relist = true;
    }
    schedule_sync(dp);
}

static void sync_now(struct dataplane *dp)
{
    dp->stats.syncs++;
    bool ok = true;
    /* Before both the view and dockerd's networks are known, nothing can
     * be told stale: a restarted agent must not remove what it is about
     * to adopt. */
    if (dp->listed && dp->have_view) {
        /* Each on its own: a failure of one stops none of the others. */
        ok = sync_overlay(dp) && ok;
        ok = sync_dns(dp) && ok;
        ok = sync_host_rules(dp) && ok;
        ok = sync_vips(dp) && ok;
    }
    if (dp->have_view || !dp->listed)
        docker_step(dp);
    if ((!ok || dp->round_failed) &&
        !uv_is_active((uv_handle_t *)&dp->retry_timer))
        uv_timer_start(&dp->retry_timer, retry_cb, RETRY_MS, 0);
    /* Forget the state of networks that are gone from view and dockerd. */
    struct sk_map_iter it;
    const char *id;
    void *v;
    sk_map_iter_init(&it, &dp->status);
    while (sk_map_iter_next(&it, &id, &v)) {
        if (view_net(dp, id))
            continue;
        struct nstat *s = v;
        sk_map_del(&dp->status, id);
        free(s->logged);
        free(s);
    }
    tell_readiness(dp);
}

static void sync_cb(uv_timer_t *timer)
{
    struct dataplane *dp = timer->data;
    if (!dp->closing)
        sync_now(dp);
}

static void schedule_sync(struct dataplane *dp)
{
    if (!dp->closing && !uv_is_active((uv_handle_t *)&dp->sync_timer))
        uv_timer_start(&dp->sync_timer, sync_cb, 0, 0);
}

/* ---- lifecycle ---- */

struct dataplane *dataplane_new(const struct dataplane_config *cfg,
                                struct sk_err *err)
{
    struct in_addr vtep;
    if (!addr_parse(cfg->data_addr, &vtep)) {
        sk_err_set(err, SK_EINVAL,
                   "data plane: the data-path address \"%s\" is not an IPv4 "
                   "address",
                   cfg->data_addr ? cfg->data_addr : "");
        return NULL;
    }
    const struct dataplane_seams *seams = cfg->seams;
    struct sk_netlink *nl = NULL;
    if (!seams || !seams->netlink) {
        if (sk_netlink_open(&nl, err) != SK_OK) {
            sk_err_wrap(err, "data plane");
            return NULL;
        }
    }
    struct dataplane *dp = sk_calloc(1, sizeof *dp);
    dp->loop = cfg->loop;
    dp->docker = cfg->docker;
    dp->node_name = sk_strdup(cfg->node_name ? cfg->node_name : "?");
    dp->vtep = vtep;
    dp->nl = nl;
    dp->nl_ops = seams && seams->netlink ? seams->netlink : sk_netlink_ops();
    dp->nl_impl = seams && seams->netlink ? seams->netlink_impl : nl;
    dp->vip_ops = seams && seams->vip ? seams->vip : sk_vip_nft_ops();
    dp->vip_impl = seams && seams->vip ? seams->vip_impl : NULL;
    dp->mtu = seams ? seams->mtu : 0;
    dp->round = 1; /* 0 is "never failed" */
    dp->dns = sk_dns_server_new(
        cfg->loop, seams && seams->dns_port ? seams->dns_port : DNS_PORT);
    dp->changed_cb = cfg->changed_cb;
    dp->ctx = cfg->ctx;
    sk_map_init(&dp->status);
    sk_map_init(&dp->tasks);
    uv_timer_init(cfg->loop, &dp->sync_timer);
    uv_timer_init(cfg->loop, &dp->retry_timer);
    dp->sync_timer.data = dp;
    dp->retry_timer.data = dp;
    /* The first pass lists dockerd's networks. */
    schedule_sync(dp);
    return dp;
}

static void dtask_free(struct dtask *t)
{
    free(t->atts);
    free(t->container);
    free(t->netns);
    free(t->logged);
    sk_vip_target_clear(&t->vip);
    free(t);
}

static void free_all(struct dataplane *dp)
{
    void (*cb)(void *) = dp->close_cb;
    void *ctx = dp->close_ctx;
    view_free(dp->view, dp->n_view);
    struct sk_map_iter it;
    void *v;
    sk_map_iter_init(&it, &dp->status);
    while (sk_map_iter_next(&it, NULL, &v)) {
        free(((struct nstat *)v)->logged);
        free(v);
    }
    sk_map_clear(&dp->status);
    sk_map_iter_init(&it, &dp->tasks);
    while (sk_map_iter_next(&it, NULL, &v))
        dtask_free(v);
    sk_map_clear(&dp->tasks);
    for (size_t i = 0; i < dp->n_dnets; i++)
        dnet_free(&dp->dnets[i]);
    free(dp->dnets);
    free(dp->host_applied);
    free(dp->ready);
    free(dp->mtu_logged);
    free(dp->node_name);
    sk_netlink_close(dp->nl);
    free(dp);
    if (cb)
        cb(ctx);
}

static void maybe_closed(struct dataplane *dp)
{
    if (dp->closing && dp->inflight == 0 && dp->handles == 0)
        free_all(dp);
}

static bool docker_done(struct dataplane *dp)
{
    dp->inflight--;
    dp->docker_busy = false;
    if (dp->closing) {
        maybe_closed(dp);
        return false;
    }
    return true;
}

static void handle_closed(uv_handle_t *h)
{
    struct dataplane *dp = h->data;
    dp->handles--;
    maybe_closed(dp);
}

static void dns_closed(void *ctx)
{
    struct dataplane *dp = ctx;
    dp->handles--;
    maybe_closed(dp);
}

void dataplane_close(struct dataplane *dp, void (*cb)(void *ctx), void *ctx)
{
    dp->closing = true;
    dp->close_cb = cb;
    dp->close_ctx = ctx;
    dp->handles = 3;
    uv_close((uv_handle_t *)&dp->sync_timer, handle_closed);
    uv_close((uv_handle_t *)&dp->retry_timer, handle_closed);
    sk_dns_server_close(dp->dns, dns_closed, dp);
}

/* ---- inputs ---- */

void dataplane_set_view(struct dataplane *dp, struct sk_session_msg *msg)
{
    view_free(dp->view, dp->n_view);
    dp->view = msg->networks;
    dp->n_view = msg->n_networks;
    dp->have_view = true;
    msg->networks = NULL;
    msg->n_networks = 0;
    schedule_sync(dp);
}

struct inspect_req {
    struct dataplane *dp;
    char task_id[SK_ID_SIZE];
    char *container;
};

static void inspect_done(void *ctx, enum sk_rc rc, const struct sk_err *err,
                         json_t *reply)
{
    struct inspect_req *q = ctx;
    struct dataplane *dp = q->dp;
    dp->inflight--;
    if (dp->closing) {
        maybe_closed(dp);
    } else {
        struct dtask *t = sk_map_get(&dp->tasks, q->task_id);
        if (t)
            t->inspecting = false;
        if (t && str_eq(t->container, q->container)) {
            const char *key = json_string_value(json_object_get(
                json_object_get(reply, "NetworkSettings"), "SandboxKey"));
            if (rc != SK_OK)
                SK_DEBUG("dataplane", "task %s: %s", t->id, err->msg);
            else if (key && *key) {
                free(t->netns);
                t->netns = sk_strdup(key);
                schedule_sync(dp);
            }
        } else if (t && t->container) {
            /* Its container changed meanwhile: look at the new one. */
            t->inspecting = true;
            struct inspect_req *r = sk_calloc(1, sizeof *r);
            r->dp = dp;
            memcpy(r->task_id, t->id, SK_ID_SIZE);
            r->container = sk_strdup(t->container);
            dp->inflight++;
            sk_docker_inspect(dp->docker, r->container, inspect_done, r);
        }
    }
    free(q->container);
    free(q);
}

void dataplane_task(struct dataplane *dp, const char *task_id,
                    const struct sk_net_attachment *networks, size_t n,
                    const char *running_container)
{
    if (dp->closing)
        return;
    size_t n_atts = 0;
    for (size_t i = 0; i < n; i++)
        n_atts += networks[i].n_addresses;
    if (n_atts == 0) {
        dataplane_task_forget(dp, task_id);
        return;
    }
    struct tatt *atts = sk_calloc(n_atts, sizeof *atts);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < networks[i].n_addresses; j++)
            if (addr_parse(networks[i].addresses[j], &atts[k].addr)) {
                memcpy(atts[k].network_id, networks[i].network_id, SK_ID_SIZE);
                k++;
            }
    struct dtask *t = sk_map_get(&dp->tasks, task_id);
    bool changed = false;
    if (!t) {
        t = sk_calloc(1, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", task_id);
        sk_map_put(&dp->tasks, t->id, t);
        changed = true;
    }
    if (t->n_atts != k || memcmp(t->atts, atts, k * sizeof *atts) != 0) {
        free(t->atts);
        t->atts = atts;
        t->n_atts = k;
        atts = NULL;
        changed = true;
    }
    free(atts);
    if (!str_eq(t->container, running_container) &&
        (t->container || running_container)) {
        free(t->container);
        free(t->netns);
        t->netns = NULL;
        sk_vip_target_clear(&t->vip);
        t->container = running_container ? sk_strdup(running_container) : NULL;
        changed = true;
        if (t->container && !t->inspecting) {
            t->inspecting = true;
            struct inspect_req *q = sk_calloc(1, sizeof *q);
            q->dp = dp;
            memcpy(q->task_id, t->id, SK_ID_SIZE);
            q->container = sk_strdup(t->container);
            dp->inflight++;
            sk_docker_inspect(dp->docker, q->container, inspect_done, q);
        }
    }
    if (changed)
        schedule_sync(dp);
}

void dataplane_task_forget(struct dataplane *dp, const char *task_id)
{
    struct dtask *t = sk_map_del(&dp->tasks, task_id);
    if (!t)
        return;
    dtask_free(t);
    schedule_sync(dp);
}

/* ---- queries ---- */

enum sk_rc dataplane_network(const struct dataplane *dp, const char *network_id,
                             struct dataplane_net *out, struct sk_err *err)
{
    const struct sk_net_info *n = view_net(dp, network_id);
    if (!n)
        return sk_err_set(err, SK_ENOTFOUND,
                          "network %s is not in node %s's view yet", network_id,
                          dp->node_name);
    const struct dnet *d = dnet_of(dp, n);
    const struct nstat *s = sk_map_get(&dp->status, n->id);
    if (s && s->overlay_ok && d) {
        out->docker_name = d->name;
        out->gateway = n->gateway;
        return SK_OK;
    }
    if (s && s->err.code != SK_OK)
        return sk_err_set(err, SK_EUNAVAIL, "%s", s->err.msg);
    if (!dp->listed)
        return sk_err_set(err, SK_EUNAVAIL,
                          "network %s on node %s: dockerd has not answered "
                          "yet",
                          net_name(n), dp->node_name);
    return sk_err_set(err, SK_EUNAVAIL,
                      "network %s on node %s: its bridge and Docker network "
                      "are being made",
                      net_name(n), dp->node_name);
}

void dataplane_stats(const struct dataplane *dp, struct dataplane_stats *out)
{
    *out = dp->stats;
    out->docker_networks = dp->n_dnets;
}
