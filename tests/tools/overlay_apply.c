/* overlay_apply: runs the overlay's reconcile (agent/overlay.h) once with
 * the real netlink layer, in the caller's network namespace, for the lab
 * tests (`lab exec hN overlay_apply < desired.json`). Prints each change it
 * makes, one per line, then "changes N"; exits 1 on an error.
 *
 * Input:
 *   {"local_vtep": "10.78.0.11",
 *    "networks": [{"id": "abcdefghij...", "vni": 4097,
 *                  "subnet": "10.0.1.0/24", "gateway": "10.0.1.2",
 *                  "mtu": 1450,            (optional: data MTU - 50)
 *                  "remotes": [{"ip": "10.0.1.5", "vtep": "10.78.0.12",
 *                               "mac": "02:42:.."}]}]}   (mac optional)
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/netlink.h"
#include "agent/overlay.h"
#include "skiff/mem.h"

static struct sk_netlink *nl;

static const char *ip_str(struct in_addr a)
{
    static char bufs[4][INET_ADDRSTRLEN];
    static int i;
    char *b = bufs[i++ % 4];
    inet_ntop(AF_INET, &a, b, INET_ADDRSTRLEN);
    return b;
}

/* ---- the real ops, each printed before it runs ---- */

static enum sk_rc p_snapshot(void *impl, const char *const *prefixes, size_t n,
                             struct sk_nl_state *out, struct sk_err *err)
{
    return sk_netlink_ops()->snapshot(impl, prefixes, n, out, err);
}

static enum sk_rc p_link_add(void *impl, const struct sk_nl_link *l,
                             struct sk_err *err)
{
    printf("link add %s %s mtu %u master %s\n",
           l->kind == SK_NL_VXLAN ? "vxlan" : "bridge", l->name, l->mtu,
           l->master[0] ? l->master : "-");
    return sk_netlink_ops()->link_add(impl, l, err);
}

static enum sk_rc p_link_set(void *impl, const struct sk_nl_link *l,
                             struct sk_err *err)
{
    printf("link set %s mtu %u master %s %s\n", l->name, l->mtu,
           l->master[0] ? l->master : "-", l->up ? "up" : "down");
    return sk_netlink_ops()->link_set(impl, l, err);
}

static enum sk_rc p_link_del(void *impl, const char *name, struct sk_err *err)
{
    printf("link del %s\n", name);
    return sk_netlink_ops()->link_del(impl, name, err);
}

static enum sk_rc p_addr_add(void *impl, const struct sk_nl_addr *a,
                             struct sk_err *err)
{
    printf("addr add %s/%u dev %s\n", ip_str(a->addr), a->prefix, a->dev);
    return sk_netlink_ops()->addr_add(impl, a, err);
}

static enum sk_rc p_addr_del(void *impl, const struct sk_nl_addr *a,
                             struct sk_err *err)
{
    printf("addr del %s/%u dev %s\n", ip_str(a->addr), a->prefix, a->dev);
    return sk_netlink_ops()->addr_del(impl, a, err);
}

static enum sk_rc p_fdb_add(void *impl, const struct sk_nl_fdb *f,
                            struct sk_err *err)
{
    char mac[18];
    sk_nl_mac_format(f->mac, mac);
    printf("fdb add %s dev %s dst %s\n", mac, f->dev, ip_str(f->dst));
    return sk_netlink_ops()->fdb_add(impl, f, err);
}

static enum sk_rc p_fdb_del(void *impl, const struct sk_nl_fdb *f,
                            struct sk_err *err)
{
    char mac[18];
    sk_nl_mac_format(f->mac, mac);
    printf("fdb del %s dev %s dst %s\n", mac, f->dev, ip_str(f->dst));
    return sk_netlink_ops()->fdb_del(impl, f, err);
}

static enum sk_rc p_neigh_add(void *impl, const struct sk_nl_neigh *x,
                              struct sk_err *err)
{
    char mac[18];
    sk_nl_mac_format(x->mac, mac);
    printf("neigh add %s lladdr %s dev %s\n", ip_str(x->ip), mac, x->dev);
    return sk_netlink_ops()->neigh_add(impl, x, err);
}

static enum sk_rc p_neigh_del(void *impl, const struct sk_nl_neigh *x,
                              struct sk_err *err)
{
    printf("neigh del %s dev %s\n", ip_str(x->ip), x->dev);
    return sk_netlink_ops()->neigh_del(impl, x, err);
}

static const struct sk_netlink_ops printing_ops = {
    .snapshot = p_snapshot,
    .link_add = p_link_add,
    .link_set = p_link_set,
    .link_del = p_link_del,
    .addr_add = p_addr_add,
    .addr_del = p_addr_del,
    .fdb_add = p_fdb_add,
    .fdb_del = p_fdb_del,
    .neigh_add = p_neigh_add,
    .neigh_del = p_neigh_del,
};

/* ---- input ---- */

static _Noreturn void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "overlay_apply: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static struct in_addr ip_of(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1)
        die("\"%s\" is missing or not an IPv4 address", key);
    return a;
}

int main(void)
{
    json_error_t jerr;
    json_t *in = json_loadf(stdin, 0, &jerr);
    if (!in)
        die("bad JSON on stdin: %s", jerr.text);
    struct sk_err err = {0};
    if (sk_netlink_open(&nl, &err) != SK_OK)
        die("%s", err.msg);
    struct sk_overlay_desired want = {.local_vtep = ip_of(in, "local_vtep")};
    unsigned data_mtu = 0;
    if (sk_netlink_mtu_of_addr(nl, want.local_vtep, &data_mtu, &err) != SK_OK)
        die("%s", err.msg);
    json_t *nets = json_object_get(in, "networks");
    size_t n_nets = json_array_size(nets);
    struct sk_overlay_network *net =
        sk_calloc(n_nets ? n_nets : 1, sizeof *net);
    for (size_t i = 0; i < n_nets; i++) {
        json_t *j = json_array_get(nets, i);
        net[i].id = json_string_value(json_object_get(j, "id"));
        net[i].vni = (uint32_t)json_integer_value(json_object_get(j, "vni"));
        const char *subnet = json_string_value(json_object_get(j, "subnet"));
        char buf[32];
        unsigned prefix;
        if (!subnet || sscanf(subnet, "%31[0-9.]/%u", buf, &prefix) != 2 ||
            inet_pton(AF_INET, buf, &net[i].subnet) != 1 || prefix > 32)
            die("bad subnet \"%s\"", subnet ? subnet : "");
        net[i].prefix = (uint8_t)prefix;
        net[i].gateway = ip_of(j, "gateway");
        json_t *mtu = json_object_get(j, "mtu");
        net[i].mtu = mtu ? (unsigned)json_integer_value(mtu)
                         : data_mtu - SK_OVERLAY_VXLAN_OVERHEAD;
        json_t *rs = json_object_get(j, "remotes");
        size_t n_r = json_array_size(rs);
        struct sk_overlay_endpoint *r = sk_calloc(n_r ? n_r : 1, sizeof *r);
        for (size_t k = 0; k < n_r; k++) {
            json_t *rj = json_array_get(rs, k);
            r[k].ip = ip_of(rj, "ip");
            r[k].vtep = ip_of(rj, "vtep");
            const char *mac = json_string_value(json_object_get(rj, "mac"));
            if (!mac)
                sk_overlay_mac_of(r[k].ip, r[k].mac);
            else if (!sk_nl_mac_parse(mac, r[k].mac))
                die("bad MAC \"%s\"", mac);
        }
        net[i].remotes = r;
        net[i].n_remotes = n_r;
    }
    want.networks = net;
    want.n_networks = n_nets;
    size_t changes = 0;
    enum sk_rc rc =
        sk_overlay_reconcile(&printing_ops, nl, &want, &changes, &err);
    printf("changes %zu\n", changes);
    fflush(stdout);
    for (size_t i = 0; i < n_nets; i++)
        free((void *)net[i].remotes);
    free(net);
    json_decref(in);
    sk_netlink_close(nl);
    if (rc != SK_OK)
        die("%s", err.msg);
    return 0;
}
