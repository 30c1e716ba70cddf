/* The overlay's reconcile (agent/overlay.c) against an in-memory "kernel"
 * that implements the netlink ops: the exact operations of a first setup,
 * none on a second run, one delete each when a remote task leaves,
 * adoption of what a previous agent made, stale devices and entries
 * removed, and convergence after a failure at every step; the node's own
 * address and the bridge MAC derived from it; networks kept while their
 * Docker network is there; failures told per network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "agent/netlink.h"
#include "agent/overlay.h"
#include "fake_netlink.h"
#include "skiff/mem.h"

/* ---- helpers ---- */

#define NET_A "abcdefghij0123456789klmnop"
#define NET_B "zyxwvutsrq0123456789klmnop"
#define BR_A "skbabcdefghij"
#define VX_A "skvabcdefghij"
#define BR_B "skbzyxwvutsrq"
#define VX_B "skvzyxwvutsrq"

static struct sk_overlay_endpoint remote(const char *task_ip, const char *vtep)
{
    struct sk_overlay_endpoint e = {.ip = fake_ip(task_ip),
                                    .vtep = fake_ip(vtep)};
    sk_overlay_mac_of(e.ip, e.mac);
    return e;
}

static struct sk_overlay_network network_a(const struct sk_overlay_endpoint *r,
                                           size_t n)
{
    return (struct sk_overlay_network){
        .id = NET_A,
        .vni = 4097,
        .subnet = fake_ip("10.0.1.0"),
        .prefix = 24,
        .gateway = fake_ip("10.0.1.2"),
        .mtu = 1450,
        .remotes = r,
        .n_remotes = n,
    };
}

static size_t run(struct fake_kernel *f, const struct sk_overlay_network *nets,
                  size_t n)
{
    struct sk_overlay_desired want = {
        .local_vtep = fake_ip("10.78.0.11"), .networks = nets, .n_networks = n};
    struct sk_err err = {0};
    size_t changes = 99;
    f->n_log = 0;
    enum sk_rc rc =
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, &changes, &err);
    if (rc != SK_OK)
        fail_msg("reconcile: %s", err.msg);
    assert_int_equal(changes, f->n_log);
    return changes;
}

static void assert_log(const struct fake_kernel *f, const char *const *want,
                       size_t n)
{
    for (size_t i = 0; i < f->n_log || i < n; i++) {
        if (i >= n)
            fail_msg("unexpected op %zu: %s", i, f->log[i]);
        if (i >= f->n_log)
            fail_msg("missing op %zu: %s", i, want[i]);
        assert_string_equal(f->log[i], want[i]);
    }
}

#define ASSERT_LOG(f, ...)                                                     \
    do {                                                                       \
        static const char *const want_[] = {__VA_ARGS__};                      \
        assert_log((f), want_, sizeof want_ / sizeof want_[0]);                \
    } while (0)

/* A device that is not ours, which no run may touch. */
static void add_foreign(struct fake_kernel *f)
{
    struct sk_nl_link eth = {.name = "eth1", .mtu = 1500, .up = true};
    f->links[f->n_links++] = eth;
    struct sk_nl_addr a = {
        .dev = "eth1", .addr = fake_ip("10.78.0.11"), .prefix = 24};
    f->addrs[f->n_addrs++] = a;
}

/* ---- tests ---- */

static void first_setup_then_nothing(void **state)
{
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    add_foreign(f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12"),
                                      remote("10.0.1.6", "10.78.0.13")};
    struct sk_overlay_network net = network_a(r, 2);
    assert_int_equal(run(f, &net, 1), 7);
    ASSERT_LOG(f, "link add bridge " BR_A " mtu 1450 up",
               "link add vxlan " VX_A " vni 4097 local 10.78.0.11 port 4789 "
               "nolearning proxy master " BR_A " mtu 1450 up",
               "addr add 10.0.1.2/24 dev " BR_A,
               "fdb add 02:42:0a:00:01:05 dev " VX_A " dst 10.78.0.12",
               "neigh add 10.0.1.5 lladdr 02:42:0a:00:01:05 dev " VX_A,
               "fdb add 02:42:0a:00:01:06 dev " VX_A " dst 10.78.0.13",
               "neigh add 10.0.1.6 lladdr 02:42:0a:00:01:06 dev " VX_A);
    /* The same desired state again: nothing to do. */
    assert_int_equal(run(f, &net, 1), 0);
    assert_int_equal(f->n_links, 3);
    assert_int_equal(f->n_fdbs, 2);
    assert_int_equal(f->n_neighs, 2);
    free(f);
}

static void remote_task_leaves(void **state)
{
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12"),
                                      remote("10.0.1.6", "10.78.0.13")};
    struct sk_overlay_network net = network_a(r, 2);
    run(f, &net, 1);
    net.remotes = &r[1];
    net.n_remotes = 1;
    assert_int_equal(run(f, &net, 1), 2);
    ASSERT_LOG(f, "fdb del 02:42:0a:00:01:05 dev " VX_A " dst 10.78.0.12",
               "neigh del 10.0.1.5 dev " VX_A);
    /* A task that comes: one add each. */
    struct sk_overlay_endpoint r2[] = {r[1], remote("10.0.1.7", "10.78.0.12")};
    net.remotes = r2;
    net.n_remotes = 2;
    assert_int_equal(run(f, &net, 1), 2);
    ASSERT_LOG(f, "fdb add 02:42:0a:00:01:07 dev " VX_A " dst 10.78.0.12",
               "neigh add 10.0.1.7 lladdr 02:42:0a:00:01:07 dev " VX_A);
    free(f);
}

static void remote_task_moves_node(void **state)
{
    /* The same address and MAC behind another node: the entry's
     * destination changes, the neighbour stays. */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12")};
    struct sk_overlay_network net = network_a(r, 1);
    run(f, &net, 1);
    r[0].vtep = fake_ip("10.78.0.14");
    assert_int_equal(run(f, &net, 1), 2);
    ASSERT_LOG(f, "fdb del 02:42:0a:00:01:05 dev " VX_A " dst 10.78.0.12",
               "fdb add 02:42:0a:00:01:05 dev " VX_A " dst 10.78.0.14");
    free(f);
}

/* What a previous agent left: devices, the address, entries -- plus a stale
 * entry, a kernel-made neighbour and a second address. */
static void adopts_after_restart(void **state)
{
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    add_foreign(f);
    struct sk_nl_link br = {
        .name = BR_A, .kind = SK_NL_BRIDGE, .mtu = 1450, .up = true};
    struct sk_nl_link vx = {.name = VX_A,
                            .kind = SK_NL_VXLAN,
                            .master = BR_A,
                            .mtu = 1450,
                            .up = true};
    vx.vxlan = (struct sk_nl_vxlan){.vni = 4097,
                                    .local = fake_ip("10.78.0.11"),
                                    .port = 4789,
                                    .proxy = true};
    f->links[f->n_links++] = vx; /* listed before its bridge */
    f->links[f->n_links++] = br;
    f->addrs[f->n_addrs++] = (struct sk_nl_addr){
        .dev = BR_A, .addr = fake_ip("10.0.1.2"), .prefix = 24};
    f->addrs[f->n_addrs++] = (struct sk_nl_addr){
        .dev = BR_A, .addr = fake_ip("10.0.1.99"), .prefix = 24};
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12")};
    struct sk_overlay_endpoint gone = remote("10.0.1.9", "10.78.0.12");
    f->fdbs[f->n_fdbs++] = (struct sk_nl_fdb){.dev = VX_A, .dst = r[0].vtep};
    memcpy(f->fdbs[0].mac, r[0].mac, 6);
    f->fdbs[f->n_fdbs++] = (struct sk_nl_fdb){.dev = VX_A, .dst = gone.vtep};
    memcpy(f->fdbs[1].mac, gone.mac, 6);
    f->neighs[f->n_neighs++] =
        (struct sk_nl_neigh){.dev = VX_A, .ip = r[0].ip, .permanent = true};
    memcpy(f->neighs[0].mac, r[0].mac, 6);
    f->neighs[f->n_neighs++] =
        (struct sk_nl_neigh){.dev = VX_A, .ip = fake_ip("10.0.1.10")};

    struct sk_overlay_network net = network_a(r, 1);
    assert_int_equal(run(f, &net, 1), 3);
    ASSERT_LOG(f, "addr del 10.0.1.99/24 dev " BR_A,
               "fdb del 02:42:0a:00:01:09 dev " VX_A " dst 10.78.0.12",
               "neigh del 10.0.1.10 dev " VX_A);
    assert_int_equal(f->n_links, 3);
    assert_int_equal(run(f, &net, 1), 0);
    free(f);
}

static void adopted_device_settings_fixed(void **state)
{
    /* A VXLAN device left down and out of its bridge, a bridge with the
     * wrong MTU: changed in place, not made anew (entries survive). */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12")};
    struct sk_overlay_network net = network_a(r, 1);
    run(f, &net, 1);
    fake_kernel_link(f, VX_A)->up = false;
    fake_kernel_link(f, VX_A)->master[0] = '\0';
    fake_kernel_link(f, BR_A)->mtu = 1500;
    assert_int_equal(run(f, &net, 1), 2);
    ASSERT_LOG(f, "link set " BR_A " master - mtu 1450 up",
               "link set " VX_A " master " BR_A " mtu 1450 up");
    assert_int_equal(f->n_fdbs, 1);
    free(f);
}

static void vxlan_attributes_differ(void **state)
{
    /* A VNI or local address cannot change in place: the device is made
     * anew, and its entries with it. */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12")};
    struct sk_overlay_network net = network_a(r, 1);
    run(f, &net, 1);
    fake_kernel_link(f, VX_A)->vxlan.learning = true;
    assert_int_equal(run(f, &net, 1), 4);
    ASSERT_LOG(f, "link del " VX_A,
               "link add vxlan " VX_A " vni 4097 local 10.78.0.11 port 4789 "
               "nolearning proxy master " BR_A " mtu 1450 up",
               "fdb add 02:42:0a:00:01:05 dev " VX_A " dst 10.78.0.12",
               "neigh add 10.0.1.5 lladdr 02:42:0a:00:01:05 dev " VX_A);
    assert_int_equal(run(f, &net, 1), 0);
    free(f);
}

static void bridge_of_wrong_kind(void **state)
{
    /* Something else under the bridge's name: replaced; the VXLAN device
     * that was there is enslaved to the new bridge. */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_network net = network_a(NULL, 0);
    run(f, &net, 1);
    fake_kernel_link(f, BR_A)->kind = SK_NL_OTHER;
    assert_int_equal(run(f, &net, 1), 4);
    ASSERT_LOG(f, "link del " BR_A, "link add bridge " BR_A " mtu 1450 up",
               "link set " VX_A " master " BR_A " mtu 1450 up",
               "addr add 10.0.1.2/24 dev " BR_A);
    assert_int_equal(run(f, &net, 1), 0);
    free(f);
}

static void stale_network_removed(void **state)
{
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    add_foreign(f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12")};
    struct sk_overlay_network nets[2] = {network_a(r, 1), network_a(NULL, 0)};
    nets[1].id = NET_B;
    nets[1].vni = 4098;
    nets[1].subnet = fake_ip("10.0.2.0");
    nets[1].gateway = fake_ip("10.0.2.3");
    assert_int_equal(run(f, nets, 2), 8);
    assert_int_equal(f->n_links, 5);
    /* B is no longer wanted: its devices go, VXLAN first; A is untouched. */
    assert_int_equal(run(f, nets, 1), 2);
    ASSERT_LOG(f, "link del " VX_B, "link del " BR_B);
    assert_int_equal(f->n_links, 3);
    assert_int_equal(f->n_fdbs, 1);
    /* Nothing wanted: A goes too; eth1 stays. */
    assert_int_equal(run(f, nets, 0), 2);
    ASSERT_LOG(f, "link del " VX_A, "link del " BR_A);
    assert_int_equal(f->n_links, 1);
    assert_string_equal(f->links[0].name, "eth1");
    assert_int_equal(f->n_addrs, 1);
    free(f);
}

static void invalid_desired_changes_nothing(void **state)
{
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12"),
                                      remote("10.0.1.5", "10.78.0.13")};
    struct {
        struct sk_overlay_network net;
        const char *msg;
    } cases[9];
    for (size_t i = 0; i < 9; i++)
        cases[i].net = network_a(NULL, 0);
    struct sk_overlay_endpoint on_gw[] = {remote("10.0.1.2", "10.78.0.12")};
    cases[6].net.node_addr = fake_ip("10.0.1.255");
    cases[6].msg = "overlay network \"" NET_A "\": node address 10.0.1.255 "
                   "is not a host address of 10.0.1.0/24";
    cases[7].net.node_addr = fake_ip("10.0.1.2");
    cases[7].msg = "overlay network \"" NET_A "\": node address 10.0.1.2 is "
                   "the gateway";
    cases[8].net.remotes = on_gw;
    cases[8].net.n_remotes = 1;
    cases[8].msg = "overlay network \"" NET_A "\": remote task 10.0.1.2 has "
                   "this node's own address (the gateway or the node address)";
    cases[0].net.vni = 0;
    cases[0].msg = "overlay network \"" NET_A "\": VNI 0 out of range "
                   "(1..16777215)";
    cases[1].net.gateway = fake_ip("10.0.2.1");
    cases[1].msg = "overlay network \"" NET_A "\": gateway 10.0.2.1 is not a "
                   "host address of 10.0.1.0/24";
    cases[2].net.subnet = fake_ip("10.0.1.1");
    cases[2].msg = "overlay network \"" NET_A "\": subnet 10.0.1.1/24 has "
                   "bits set beyond its prefix";
    cases[3].net.id = "short";
    cases[3].msg = "overlay network \"short\": the ID must be at least 10 "
                   "letters and digits";
    cases[4].net.remotes = r;
    cases[4].net.n_remotes = 2;
    cases[4].msg = "overlay network \"" NET_A "\": remote task 10.0.1.5: its "
                   "address or MAC is listed twice";
    cases[5].net.id = "abcdefghij/../x";
    cases[5].msg = "overlay network \"abcdefghij/../x\": the ID must be at "
                   "least 10 letters and digits";
    for (size_t i = 0; i < 9; i++) {
        struct sk_overlay_desired want = {.local_vtep = fake_ip("10.78.0.11"),
                                          .networks = &cases[i].net,
                                          .n_networks = 1};
        struct sk_err err = {0};
        assert_int_equal(
            sk_overlay_reconcile(&fake_kernel_ops, f, &want, NULL, &err),
            SK_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
    }
    /* Two networks whose IDs share the first 10 characters. */
    struct sk_overlay_network two[2] = {network_a(NULL, 0), network_a(NULL, 0)};
    two[1].id = "abcdefghijXXXXXXXXXXXXXXXX";
    two[1].vni = 5000;
    struct sk_overlay_desired want = {.networks = two, .n_networks = 2};
    struct sk_err err = {0};
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, NULL, &err),
        SK_EINVAL);
    assert_non_null(strstr(err.msg, "would share device names"));
    assert_int_equal(f->snapshots, 0);
    assert_int_equal(f->n_log, 0);
    free(f);
}

/* Fault injection: the Nth change fails, for every N. The run reports the
 * error; the next run (no failure) reaches exactly the state of a run that
 * never failed, and a third run has nothing left to do. */
static void converges_after_any_failure(void **state)
{
    struct sk_overlay_endpoint r1[] = {remote("10.0.1.5", "10.78.0.12"),
                                       remote("10.0.1.6", "10.78.0.13")};
    struct sk_overlay_endpoint r2[] = {remote("10.0.1.6", "10.78.0.14"),
                                       remote("10.0.1.7", "10.78.0.12")};
    struct sk_overlay_network before[2] = {network_a(r1, 2),
                                           network_a(NULL, 0)};
    before[1].id = NET_B;
    before[1].vni = 4098;
    before[1].subnet = fake_ip("10.0.2.0");
    before[1].gateway = fake_ip("10.0.2.3");
    struct sk_overlay_network after = network_a(r2, 2);
    after.gateway = fake_ip("10.0.1.4");

    struct fake_kernel *ref = sk_calloc(1, sizeof *ref);
    run(ref, before, 2);
    size_t total = run(ref, &after, 1);
    assert_true(total >= 6);

    for (int n = 1; n <= (int)total; n++) {
        struct fake_kernel *f = sk_calloc(1, sizeof *f);
        run(f, before, 2);
        f->fail_countdown = n;
        struct sk_overlay_desired want = {.local_vtep = fake_ip("10.78.0.11"),
                                          .networks = &after,
                                          .n_networks = 1};
        struct sk_err err = {0};
        assert_int_equal(
            sk_overlay_reconcile(&fake_kernel_ops, f, &want, NULL, &err),
            SK_EIO);
        assert_non_null(strstr(err.msg, "injected failure"));
        run(f, &after, 1);
        assert_int_equal(run(f, &after, 1), 0);
        assert_int_equal(f->n_links, ref->n_links);
        assert_int_equal(f->n_addrs, ref->n_addrs);
        assert_int_equal(f->n_fdbs, ref->n_fdbs);
        assert_int_equal(f->n_neighs, ref->n_neighs);
        free(f);
    }
    free(ref);
}

static void node_address_and_bridge_mac(void **state)
{
    /* With the node's own address: a second address after the gateway,
     * and the bridge's MAC derived from it. */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12"),
                                      remote("10.0.1.251", "10.78.0.12")};
    struct sk_overlay_network net = network_a(r, 2);
    net.gateway = fake_ip("10.0.1.1");
    net.node_addr = fake_ip("10.0.1.250");
    assert_int_equal(run(f, &net, 1), 8);
    ASSERT_LOG(
        f, "link add bridge " BR_A " mtu 1450 address 02:42:0a:00:01:fa up",
        "link add vxlan " VX_A " vni 4097 local 10.78.0.11 port 4789 "
        "nolearning proxy master " BR_A " mtu 1450 up",
        "addr add 10.0.1.1/24 dev " BR_A, "addr add 10.0.1.250/24 dev " BR_A,
        "fdb add 02:42:0a:00:01:05 dev " VX_A " dst 10.78.0.12",
        "neigh add 10.0.1.5 lladdr 02:42:0a:00:01:05 dev " VX_A,
        "fdb add 02:42:0a:00:01:fb dev " VX_A " dst 10.78.0.12",
        "neigh add 10.0.1.251 lladdr 02:42:0a:00:01:fb dev " VX_A);
    assert_int_equal(run(f, &net, 1), 0);

    /* The kernel gave the bridge another MAC (a port's): set back. */
    fake_kernel_link(f, BR_A)->mac[5] = 0x99;
    assert_int_equal(run(f, &net, 1), 1);
    ASSERT_LOG(f,
               "link set " BR_A " master - mtu 1450 address 02:42:0a:00:01:fa "
               "up");

    /* The gateway gone, the node address left first: both again, in
     * order. */
    for (size_t i = 0; i < f->n_addrs; i++)
        if (f->addrs[i].addr.s_addr == fake_ip("10.0.1.1").s_addr)
            f->addrs[i] = f->addrs[--f->n_addrs];
    assert_int_equal(run(f, &net, 1), 3);
    ASSERT_LOG(f, "addr del 10.0.1.250/24 dev " BR_A,
               "addr add 10.0.1.1/24 dev " BR_A,
               "addr add 10.0.1.250/24 dev " BR_A);

    /* Before the leader allocated one, there was none: a bridge adopted
     * without the node address gets it and its MAC. */
    struct fake_kernel *g = sk_calloc(1, sizeof *g);
    struct sk_overlay_network bare = network_a(r, 1);
    bare.gateway = fake_ip("10.0.1.1");
    run(g, &bare, 1);
    assert_int_equal(run(g, &net, 1), 4);
    ASSERT_LOG(g,
               "link set " BR_A " master - mtu 1450 address 02:42:0a:00:01:fa "
               "up",
               "addr add 10.0.1.250/24 dev " BR_A,
               "fdb add 02:42:0a:00:01:fb dev " VX_A " dst 10.78.0.12",
               "neigh add 10.0.1.251 lladdr 02:42:0a:00:01:fb dev " VX_A);
    free(g);
    free(f);
}

static void kept_networks_stay(void **state)
{
    /* A network no longer wanted whose Docker network is still there:
     * kept (devices and entries) until it may go. */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_endpoint r[] = {remote("10.0.1.5", "10.78.0.12")};
    struct sk_overlay_network nets[2] = {network_a(r, 1), network_a(NULL, 0)};
    nets[1].id = NET_B;
    nets[1].vni = 4098;
    nets[1].subnet = fake_ip("10.0.2.0");
    nets[1].gateway = fake_ip("10.0.2.3");
    run(f, nets, 2);
    size_t before = f->n_links;
    const char *const keep[] = {NET_A};
    struct sk_overlay_desired want = {.local_vtep = fake_ip("10.78.0.11"),
                                      .networks = &nets[1],
                                      .n_networks = 1,
                                      .keep = keep,
                                      .n_keep = 1};
    struct sk_err err = {0};
    size_t changes = 9;
    f->n_log = 0;
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, &changes, &err),
        SK_OK);
    assert_int_equal(changes, 0);
    assert_int_equal(f->n_links, before);
    assert_int_equal(f->n_fdbs, 1);
    /* keep_all: nothing at all goes (nothing is known yet). */
    want.n_networks = 0;
    want.n_keep = 0;
    want.keep_all = true;
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, &changes, &err),
        SK_OK);
    assert_int_equal(changes, 0);
    /* No longer kept: it goes. */
    want.keep_all = false;
    want.networks = &nets[1];
    want.n_networks = 1;
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, &changes, &err),
        SK_OK);
    assert_int_equal(changes, 2);
    ASSERT_LOG(f, "link del " VX_A, "link del " BR_A);
    free(f);
}

static void failures_are_told_per_network(void **state)
{
    /* The second network's first change fails: it alone is marked, and
     * the first is done all the same. */
    struct fake_kernel *f = sk_calloc(1, sizeof *f);
    struct sk_overlay_network nets[2] = {network_a(NULL, 0),
                                         network_a(NULL, 0)};
    nets[1].id = NET_B;
    nets[1].vni = 4098;
    nets[1].subnet = fake_ip("10.0.2.0");
    nets[1].gateway = fake_ip("10.0.2.3");
    f->fail_countdown = 4; /* A: bridge, VXLAN, address; then B's bridge */
    bool failed[2] = {true, true};
    struct sk_overlay_desired want = {.local_vtep = fake_ip("10.78.0.11"),
                                      .networks = nets,
                                      .n_networks = 2,
                                      .out_failed = failed};
    struct sk_err err = {0};
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, NULL, &err), SK_EIO);
    assert_false(failed[0]);
    assert_true(failed[1]);
    assert_non_null(strstr(err.msg, "overlay network \"" NET_B "\""));
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, NULL, &err), SK_OK);
    assert_false(failed[0]);
    assert_false(failed[1]);
    /* An invalid desired state marks every network. */
    nets[0].node_addr = nets[0].gateway;
    assert_int_equal(
        sk_overlay_reconcile(&fake_kernel_ops, f, &want, NULL, &err),
        SK_EINVAL);
    assert_true(failed[0]);
    assert_true(failed[1]);
    free(f);
}

static void names_and_macs(void **state)
{
    char name[IFNAMSIZ];
    sk_overlay_bridge_name(NET_A, name);
    assert_string_equal(name, BR_A);
    assert_true(strlen(name) < IFNAMSIZ);
    sk_overlay_vxlan_name(NET_A, name);
    assert_string_equal(name, VX_A);
    uint8_t mac[6];
    sk_overlay_mac_of(fake_ip("10.200.0.20"), mac);
    char s[18];
    sk_nl_mac_format(mac, s);
    assert_string_equal(s, "02:42:0a:c8:00:14");
    uint8_t back[6];
    assert_true(sk_nl_mac_parse("02:42:0A:c8:00:14", back));
    assert_memory_equal(back, mac, 6);
    assert_false(sk_nl_mac_parse("02:42:0a:c8:00:1", back));
    assert_false(sk_nl_mac_parse("02-42-0a-c8-00-14", back));
    assert_false(sk_nl_mac_parse(" 2:42:0a:c8:00:14", back));
    assert_false(sk_nl_mac_parse("0x:42:0a:c8:00:14", back));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_setup_then_nothing),
        cmocka_unit_test(remote_task_leaves),
        cmocka_unit_test(remote_task_moves_node),
        cmocka_unit_test(adopts_after_restart),
        cmocka_unit_test(adopted_device_settings_fixed),
        cmocka_unit_test(vxlan_attributes_differ),
        cmocka_unit_test(bridge_of_wrong_kind),
        cmocka_unit_test(stale_network_removed),
        cmocka_unit_test(invalid_desired_changes_nothing),
        cmocka_unit_test(converges_after_any_failure),
        cmocka_unit_test(node_address_and_bridge_mac),
        cmocka_unit_test(kept_networks_stay),
        cmocka_unit_test(failures_are_told_per_network),
        cmocka_unit_test(names_and_macs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
