/* The in-memory kernel of the unit tests (see fake_netlink.h). */
#include "fake_netlink.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "skiff/mem.h"

#define CAP FAKE_KERNEL_CAP
#define LOG_CAP FAKE_KERNEL_LOG_CAP

static const char *ip_str(struct in_addr a)
{
    static char bufs[4][INET_ADDRSTRLEN];
    static int i;
    char *b = bufs[i++ % 4];
    inet_ntop(AF_INET, &a, b, INET_ADDRSTRLEN);
    return b;
}

static const char *mac_str(const uint8_t mac[6])
{
    static char bufs[4][18];
    static int i;
    char *b = bufs[i++ % 4];
    sk_nl_mac_format(mac, b);
    return b;
}

struct in_addr fake_ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

static void logf_(struct fake_kernel *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(struct fake_kernel *f, const char *fmt, ...)
{
    assert_true(f->n_log < LOG_CAP);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->log[f->n_log++], sizeof f->log[0], fmt, ap);
    va_end(ap);
}

/* Fault injection: the change that brings the countdown to 0 fails. */
static bool inject(struct fake_kernel *f, struct sk_err *err)
{
    if (f->fail_countdown > 0 && --f->fail_countdown == 0) {
        sk_err_set(err, SK_EIO, "injected failure");
        return true;
    }
    return false;
}

struct sk_nl_link *fake_kernel_link(struct fake_kernel *f, const char *name)
{
    for (size_t i = 0; i < f->n_links; i++)
        if (strcmp(f->links[i].name, name) == 0)
            return &f->links[i];
    return NULL;
}

static bool has_prefix(const char *name, const char *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(name, p[i], strlen(p[i])) == 0)
            return true;
    return false;
}

static enum sk_rc f_snapshot(void *impl, const char *const *prefixes, size_t n,
                             struct sk_nl_state *out, struct sk_err *err)
{
    struct fake_kernel *f = impl;
    f->snapshots++;
    out->links = sk_calloc(CAP, sizeof *out->links);
    out->addrs = sk_calloc(CAP, sizeof *out->addrs);
    out->fdbs = sk_calloc(CAP, sizeof *out->fdbs);
    out->neighs = sk_calloc(CAP, sizeof *out->neighs);
    for (size_t i = 0; i < f->n_links; i++)
        if (has_prefix(f->links[i].name, prefixes, n))
            out->links[out->n_links++] = f->links[i];
    for (size_t i = 0; i < f->n_addrs; i++)
        if (has_prefix(f->addrs[i].dev, prefixes, n))
            out->addrs[out->n_addrs++] = f->addrs[i];
    for (size_t i = 0; i < f->n_fdbs; i++)
        if (has_prefix(f->fdbs[i].dev, prefixes, n))
            out->fdbs[out->n_fdbs++] = f->fdbs[i];
    for (size_t i = 0; i < f->n_neighs; i++)
        if (has_prefix(f->neighs[i].dev, prefixes, n))
            out->neighs[out->n_neighs++] = f->neighs[i];
    return SK_OK;
}

static enum sk_rc f_link_add(void *impl, const struct sk_nl_link *l,
                             struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    if (fake_kernel_link(f, l->name))
        return sk_err_set(err, SK_EEXIST, "%s exists", l->name);
    if (l->master[0] && !fake_kernel_link(f, l->master))
        return sk_err_set(err, SK_ENOTFOUND, "no master %s", l->master);
    assert_true(f->n_links < CAP);
    f->links[f->n_links++] = *l;
    if (l->kind == SK_NL_VXLAN)
        logf_(f,
              "link add vxlan %s vni %u local %s port %u%s%s master %s "
              "mtu %u%s",
              l->name, l->vxlan.vni, ip_str(l->vxlan.local), l->vxlan.port,
              l->vxlan.learning ? "" : " nolearning",
              l->vxlan.proxy ? " proxy" : "", l->master, l->mtu,
              l->up ? " up" : "");
    else
        logf_(f, "link add bridge %s mtu %u%s%s%s", l->name, l->mtu,
              l->has_mac ? " address " : "", l->has_mac ? mac_str(l->mac) : "",
              l->up ? " up" : "");
    return SK_OK;
}

static enum sk_rc f_link_set(void *impl, const struct sk_nl_link *l,
                             struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    struct sk_nl_link *cur = fake_kernel_link(f, l->name);
    if (!cur)
        return sk_err_set(err, SK_ENOTFOUND, "no %s", l->name);
    if (l->master[0] && !fake_kernel_link(f, l->master))
        return sk_err_set(err, SK_ENOTFOUND, "no master %s", l->master);
    memcpy(cur->master, l->master, sizeof cur->master);
    cur->mtu = l->mtu;
    cur->up = l->up;
    if (l->has_mac) {
        cur->has_mac = true;
        memcpy(cur->mac, l->mac, 6);
    }
    logf_(f, "link set %s master %s mtu %u%s%s%s", l->name,
          l->master[0] ? l->master : "-", l->mtu, l->has_mac ? " address " : "",
          l->has_mac ? mac_str(l->mac) : "", l->up ? " up" : " down");
    return SK_OK;
}

/* Removes whatever sits on dev, as the kernel does with the device. */
static void drop_dev(struct fake_kernel *f, const char *dev)
{
    size_t j = 0;
    for (size_t i = 0; i < f->n_addrs; i++)
        if (strcmp(f->addrs[i].dev, dev) != 0)
            f->addrs[j++] = f->addrs[i];
    f->n_addrs = j;
    j = 0;
    for (size_t i = 0; i < f->n_fdbs; i++)
        if (strcmp(f->fdbs[i].dev, dev) != 0)
            f->fdbs[j++] = f->fdbs[i];
    f->n_fdbs = j;
    j = 0;
    for (size_t i = 0; i < f->n_neighs; i++)
        if (strcmp(f->neighs[i].dev, dev) != 0)
            f->neighs[j++] = f->neighs[i];
    f->n_neighs = j;
    for (size_t i = 0; i < f->n_links; i++)
        if (strcmp(f->links[i].master, dev) == 0)
            f->links[i].master[0] = '\0';
}

static enum sk_rc f_link_del(void *impl, const char *name, struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    struct sk_nl_link *cur = fake_kernel_link(f, name);
    if (!cur)
        return sk_err_set(err, SK_ENOTFOUND, "no %s", name);
    *cur = f->links[--f->n_links];
    drop_dev(f, name);
    logf_(f, "link del %s", name);
    return SK_OK;
}

static enum sk_rc f_addr_add(void *impl, const struct sk_nl_addr *a,
                             struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    if (!fake_kernel_link(f, a->dev))
        return sk_err_set(err, SK_ENOTFOUND, "no %s", a->dev);
    for (size_t i = 0; i < f->n_addrs; i++)
        if (strcmp(f->addrs[i].dev, a->dev) == 0 &&
            f->addrs[i].addr.s_addr == a->addr.s_addr)
            return sk_err_set(err, SK_EEXIST, "address exists");
    f->addrs[f->n_addrs++] = *a;
    logf_(f, "addr add %s/%u dev %s", ip_str(a->addr), a->prefix, a->dev);
    return SK_OK;
}

static enum sk_rc f_addr_del(void *impl, const struct sk_nl_addr *a,
                             struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    for (size_t i = 0; i < f->n_addrs; i++)
        if (strcmp(f->addrs[i].dev, a->dev) == 0 &&
            f->addrs[i].addr.s_addr == a->addr.s_addr) {
            f->addrs[i] = f->addrs[--f->n_addrs];
            logf_(f, "addr del %s/%u dev %s", ip_str(a->addr), a->prefix,
                  a->dev);
            return SK_OK;
        }
    return sk_err_set(err, SK_ENOTFOUND, "no such address");
}

static enum sk_rc f_fdb_add(void *impl, const struct sk_nl_fdb *x,
                            struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    if (!fake_kernel_link(f, x->dev))
        return sk_err_set(err, SK_ENOTFOUND, "no %s", x->dev);
    char mac[18];
    sk_nl_mac_format(x->mac, mac);
    for (size_t i = 0; i < f->n_fdbs; i++)
        if (strcmp(f->fdbs[i].dev, x->dev) == 0 &&
            memcmp(f->fdbs[i].mac, x->mac, 6) == 0) {
            f->fdbs[i] = *x; /* NLM_F_REPLACE */
            logf_(f, "fdb replace %s dev %s dst %s", mac, x->dev,
                  ip_str(x->dst));
            return SK_OK;
        }
    f->fdbs[f->n_fdbs++] = *x;
    logf_(f, "fdb add %s dev %s dst %s", mac, x->dev, ip_str(x->dst));
    return SK_OK;
}

static enum sk_rc f_fdb_del(void *impl, const struct sk_nl_fdb *x,
                            struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    char mac[18];
    sk_nl_mac_format(x->mac, mac);
    for (size_t i = 0; i < f->n_fdbs; i++)
        if (strcmp(f->fdbs[i].dev, x->dev) == 0 &&
            memcmp(f->fdbs[i].mac, x->mac, 6) == 0 &&
            f->fdbs[i].dst.s_addr == x->dst.s_addr) {
            f->fdbs[i] = f->fdbs[--f->n_fdbs];
            logf_(f, "fdb del %s dev %s dst %s", mac, x->dev, ip_str(x->dst));
            return SK_OK;
        }
    return sk_err_set(err, SK_ENOTFOUND, "no such entry");
}

static enum sk_rc f_neigh_add(void *impl, const struct sk_nl_neigh *x,
                              struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    if (!fake_kernel_link(f, x->dev))
        return sk_err_set(err, SK_ENOTFOUND, "no %s", x->dev);
    char mac[18];
    sk_nl_mac_format(x->mac, mac);
    struct sk_nl_neigh n = *x;
    n.permanent = true;
    for (size_t i = 0; i < f->n_neighs; i++)
        if (strcmp(f->neighs[i].dev, x->dev) == 0 &&
            f->neighs[i].ip.s_addr == x->ip.s_addr) {
            f->neighs[i] = n;
            logf_(f, "neigh replace %s lladdr %s dev %s", ip_str(x->ip), mac,
                  x->dev);
            return SK_OK;
        }
    f->neighs[f->n_neighs++] = n;
    logf_(f, "neigh add %s lladdr %s dev %s", ip_str(x->ip), mac, x->dev);
    return SK_OK;
}

static enum sk_rc f_neigh_del(void *impl, const struct sk_nl_neigh *x,
                              struct sk_err *err)
{
    struct fake_kernel *f = impl;
    if (inject(f, err))
        return SK_EIO;
    for (size_t i = 0; i < f->n_neighs; i++)
        if (strcmp(f->neighs[i].dev, x->dev) == 0 &&
            f->neighs[i].ip.s_addr == x->ip.s_addr) {
            f->neighs[i] = f->neighs[--f->n_neighs];
            logf_(f, "neigh del %s dev %s", ip_str(x->ip), x->dev);
            return SK_OK;
        }
    return sk_err_set(err, SK_ENOTFOUND, "no such neighbour");
}

const struct sk_netlink_ops fake_kernel_ops = {
    .snapshot = f_snapshot,
    .link_add = f_link_add,
    .link_set = f_link_set,
    .link_del = f_link_del,
    .addr_add = f_addr_add,
    .addr_del = f_addr_del,
    .fdb_add = f_fdb_add,
    .fdb_del = f_fdb_del,
    .neigh_add = f_neigh_add,
    .neigh_del = f_neigh_del,
};
