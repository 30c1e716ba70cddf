/* The real netlink layer (agent/netlink.c) and the overlay's reconcile over
 * it, in a network namespace of the test's own (unshare): what the kernel
 * holds after a first run, nothing done on a second, a remote task gone
 * and one moved, the node's own address and the bridge's MAC, everything
 * removed when nothing is wanted. Skipped (77) where the test may not make
 * a namespace (not root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <sched.h>

#include "agent/netlink.h"
#include "agent/overlay.h"

#define NET_A "abcdefghij0123456789klmnop"
#define BR_A "skbabcdefghij"
#define VX_A "skvabcdefghij"

static struct in_addr ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

static struct sk_overlay_endpoint remote(const char *task_ip, const char *vtep)
{
    struct sk_overlay_endpoint e = {.ip = ip(task_ip), .vtep = ip(vtep)};
    sk_overlay_mac_of(e.ip, e.mac);
    return e;
}

static size_t reconcile(struct sk_netlink *nl,
                        const struct sk_overlay_network *nets, size_t n)
{
    struct sk_overlay_desired want = {
        .local_vtep = ip("127.0.0.1"), .networks = nets, .n_networks = n};
    struct sk_err err = {0};
    size_t changes = 0;
    if (sk_overlay_reconcile(sk_netlink_ops(), nl, &want, &changes, &err) !=
        SK_OK)
        fail_msg("reconcile: %s", err.msg);
    return changes;
}

static void snapshot(struct sk_netlink *nl, struct sk_nl_state *s)
{
    static const char *const prefixes[] = {"skb", "skv"};
    struct sk_err err = {0};
    memset(s, 0, sizeof *s);
    if (sk_netlink_ops()->snapshot(nl, prefixes, 2, s, &err) != SK_OK)
        fail_msg("snapshot: %s", err.msg);
}

/* The permanent neighbour entries on dev. (The bridge gets others of the
 * kernel's own, e.g. 224.0.0.22 once it sends an IGMP report.) */
static size_t neighs_on(const struct sk_nl_state *s, const char *dev)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_neighs; i++)
        if (strcmp(s->neighs[i].dev, dev) == 0) {
            assert_true(s->neighs[i].permanent);
            n++;
        }
    return n;
}

static const struct sk_nl_link *link_named(const struct sk_nl_state *s,
                                           const char *name)
{
    for (size_t i = 0; i < s->n_links; i++)
        if (strcmp(s->links[i].name, name) == 0)
            return &s->links[i];
    return NULL;
}

static void the_kernel_follows(void **state)
{
    struct sk_netlink *nl = NULL;
    struct sk_err err = {0};
    assert_int_equal(sk_netlink_open(&nl, &err), SK_OK);

    /* lo up, so that 127.0.0.1 is there to find. */
    struct sk_nl_link lo = {.name = "lo", .mtu = 65536, .up = true};
    assert_int_equal(sk_netlink_ops()->link_set(nl, &lo, &err), SK_OK);
    unsigned mtu = 0;
    assert_int_equal(sk_netlink_mtu_of_addr(nl, ip("127.0.0.1"), &mtu, &err),
                     SK_OK);
    assert_int_equal(mtu, 65536);
    assert_int_equal(sk_netlink_mtu_of_addr(nl, ip("10.9.9.9"), &mtu, &err),
                     SK_ENOTFOUND);
    assert_string_equal(err.msg, "no device has the address 10.9.9.9");

    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12"),
                                      remote("10.0.1.6", "10.78.0.13")};
    struct sk_overlay_network net = {.id = NET_A,
                                     .vni = 4097,
                                     .subnet = ip("10.0.1.0"),
                                     .prefix = 24,
                                     .gateway = ip("10.0.1.2"),
                                     .mtu = 1450,
                                     .remotes = r,
                                     .n_remotes = 2};
    assert_int_equal(reconcile(nl, &net, 1), 7);

    struct sk_nl_state s;
    snapshot(nl, &s);
    assert_int_equal(s.n_links, 2);
    const struct sk_nl_link *br = link_named(&s, BR_A);
    const struct sk_nl_link *vx = link_named(&s, VX_A);
    assert_non_null(br);
    assert_non_null(vx);
    assert_int_equal(br->kind, SK_NL_BRIDGE);
    assert_true(br->up);
    assert_int_equal(br->mtu, 1450);
    assert_int_equal(vx->kind, SK_NL_VXLAN);
    assert_string_equal(vx->master, BR_A);
    assert_true(vx->up);
    assert_int_equal(vx->mtu, 1450);
    assert_int_equal(vx->vxlan.vni, 4097);
    assert_int_equal(vx->vxlan.local.s_addr, ip("127.0.0.1").s_addr);
    assert_int_equal(vx->vxlan.port, 4789);
    assert_false(vx->vxlan.learning);
    assert_true(vx->vxlan.proxy);
    /* IPv6 may add link-local addresses; the IPv4 one is the gateway. */
    assert_int_equal(s.n_addrs, 1);
    assert_string_equal(s.addrs[0].dev, BR_A);
    assert_int_equal(s.addrs[0].addr.s_addr, ip("10.0.1.2").s_addr);
    assert_int_equal(s.addrs[0].prefix, 24);
    assert_int_equal(s.n_fdbs, 2);
    assert_int_equal(neighs_on(&s, VX_A), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(s.fdbs[i].dev, VX_A);
        const struct sk_overlay_endpoint *e =
            memcmp(s.fdbs[i].mac, r[0].mac, 6) == 0 ? &r[0] : &r[1];
        assert_memory_equal(s.fdbs[i].mac, e->mac, 6);
        assert_int_equal(s.fdbs[i].dst.s_addr, e->vtep.s_addr);
    }
    sk_nl_state_free(&s);

    /* Adopted as it is. */
    assert_int_equal(reconcile(nl, &net, 1), 0);

    /* 10.0.1.5 leaves, 10.0.1.6 moves to another node. */
    r[1].vtep = ip("10.78.0.14");
    net.remotes = &r[1];
    net.n_remotes = 1;
    assert_int_equal(reconcile(nl, &net, 1), 4);
    snapshot(nl, &s);
    assert_int_equal(s.n_fdbs, 1);
    assert_int_equal(s.fdbs[0].dst.s_addr, ip("10.78.0.14").s_addr);
    assert_int_equal(neighs_on(&s, VX_A), 1);
    for (size_t i = 0; i < s.n_neighs; i++)
        if (strcmp(s.neighs[i].dev, VX_A) == 0)
            assert_int_equal(s.neighs[i].ip.s_addr, ip("10.0.1.6").s_addr);
    sk_nl_state_free(&s);
    assert_int_equal(reconcile(nl, &net, 1), 0);

    /* The node's own address: second on the bridge, which takes the MAC
     * derived from it. */
    net.node_addr = ip("10.0.1.250");
    assert_int_equal(reconcile(nl, &net, 1), 2);
    snapshot(nl, &s);
    br = link_named(&s, BR_A);
    assert_true(br->has_mac);
    uint8_t mac[6];
    sk_overlay_mac_of(net.node_addr, mac);
    assert_memory_equal(br->mac, mac, 6);
    assert_int_equal(s.n_addrs, 2);
    assert_int_equal(s.addrs[0].addr.s_addr, ip("10.0.1.2").s_addr);
    assert_int_equal(s.addrs[1].addr.s_addr, ip("10.0.1.250").s_addr);
    sk_nl_state_free(&s);
    assert_int_equal(reconcile(nl, &net, 1), 0);

    /* Errors name the device and the kernel's reason. */
    assert_int_equal(sk_netlink_ops()->link_del(nl, "skbnosuchdev", &err),
                     SK_ENOTFOUND);
    assert_non_null(strstr(err.msg, "delete device \"skbnosuchdev\""));
    struct sk_nl_link again = {.name = BR_A, .kind = SK_NL_BRIDGE};
    assert_int_equal(sk_netlink_ops()->link_add(nl, &again, &err), SK_EEXIST);
    assert_non_null(strstr(err.msg, "add bridge \"" BR_A "\""));

    /* Nothing wanted: the devices go. */
    assert_int_equal(reconcile(nl, NULL, 0), 2);
    snapshot(nl, &s);
    assert_int_equal(s.n_links, 0);
    sk_nl_state_free(&s);
    sk_netlink_close(nl);
}

int main(void)
{
    if (unshare(CLONE_NEWNET) != 0) {
        perror("test_netlink: unshare(CLONE_NEWNET) (skipped: needs root)");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_kernel_follows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
