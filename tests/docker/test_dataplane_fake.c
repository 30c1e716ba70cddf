/* The agent's data plane (agent/dataplane.h) between an in-memory kernel
 * (tests/unit/fake_netlink.h), a fake nftables and the fake dockerd's
 * engine: nothing is touched before dockerd answers; a view becomes
 * devices, entries (never for the gateway, this node's own addresses or a
 * local task), a Docker network on the bridge, DNS answers on the gateway
 * and VIP rules in a running container's namespace, each following the
 * view; a network that leaves goes from dockerd first and from the kernel
 * only then (also while a container holds it, until it lets go); a new
 * data plane over what an earlier one made changes nothing and duplicates
 * nothing, and removes what is stale; internal networks get host rules; a
 * failing Docker network is told, named, and retried. The DNS server
 * listens on 127.x gateways, so real queries reach it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <sys/socket.h>

#include "../unit/fake_netlink.h"
#include "../unit/support.h"
#include "agent/dataplane.h"
#include "fake_dockerd.h"
#include "skiff/mem.h"
#include "skiff/wire.h"

#define DEADLINE_MS 10000
#define NET_A "netaaaaaaaaaaaaaaaaaaaaaaa"
#define NET_B "netbbbbbbbbbbbbbbbbbbbbbba"
#define NET_I "netiiiiiiiiiiiiiiiiiiiiiia"
#define BR_A "skbnetaaaaaaa"
#define VX_A "skvnetaaaaaaa"
#define BR_I "skbnetiiiiiii"
#define T1 "taskaaaaaaaaaaaaaaaaaaaaae"
#define T2 "taskaaaaaaaaaaaaaaaaaaaaai"
#define MAX_APPLIED 64

/* ---- a fake nftables ---- */

struct applied {
    char netns[128];
    char *script;
};

struct nft {
    struct applied a[MAX_APPLIED];
    int n;
};

static enum sk_rc nft_apply(void *impl, const char *netns, const char *script,
                            struct sk_err *err)
{
    struct nft *f = impl;
    assert_true(f->n < MAX_APPLIED);
    snprintf(f->a[f->n].netns, sizeof f->a[0].netns, "%s", netns);
    f->a[f->n].script = sk_strdup(script);
    f->n++;
    return SK_OK;
}

static const struct sk_vip_ops nft_ops = {.apply = nft_apply};

/* The last script applied to netns, or NULL. */
static const char *last_script(const struct nft *f, const char *netns)
{
    for (int i = f->n - 1; i >= 0; i--)
        if (strcmp(f->a[i].netns, netns) == 0)
            return f->a[i].script;
    return NULL;
}

static int applies_to(const struct nft *f, const char *netns)
{
    int n = 0;
    for (int i = 0; i < f->n; i++)
        n += strcmp(f->a[i].netns, netns) == 0;
    return n;
}

/* ---- the fixture ---- */

struct fx {
    uv_loop_t loop;
    struct fake_dockerd dk;
    struct sk_docker *docker;
    struct fake_kernel *kernel;
    struct nft nft;
    struct dataplane_seams seams;
    struct dataplane *dp;
    uint16_t port;
    int changes; /* changed_cb calls */
    bool dp_closed, docker_closed;
};

static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_addr = fake_ip("127.0.0.1")};
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static void on_changed(void *ctx)
{
    ((struct fx *)ctx)->changes++;
}

static void dp_start(struct fx *f)
{
    struct dataplane_config cfg = {.loop = &f->loop,
                                   .docker = f->docker,
                                   .node_name = "h1",
                                   .data_addr = "10.78.0.11",
                                   .seams = &f->seams,
                                   .changed_cb = on_changed,
                                   .ctx = f};
    struct sk_err err = {0};
    f->dp = dataplane_new(&cfg, &err);
    if (!f->dp)
        fail_msg("%s", err.msg);
    f->dp_closed = false;
}

/* A fixture whose dockerd is the fake's engine, or none at all (a socket
 * nobody listens on). */
static void fx_start(struct fx *f, bool with_dockerd)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fake_dockerd_start(&f->dk, &f->loop, NULL, f);
    struct sk_err err;
    char none[128];
    snprintf(none, sizeof none, "%s/nobody.sock", f->dk.dir);
    f->docker = sk_docker_new(&f->loop, with_dockerd ? f->dk.sock : none, &err);
    assert_non_null(f->docker);
    f->kernel = sk_calloc(1, sizeof *f->kernel);
    f->port = free_udp_port();
    f->seams = (struct dataplane_seams){.netlink = &fake_kernel_ops,
                                        .netlink_impl = f->kernel,
                                        .vip = &nft_ops,
                                        .vip_impl = &f->nft,
                                        .mtu = 1450,
                                        .dns_port = f->port};
    dp_start(f);
}

static void dp_closed_cb(void *ctx)
{
    ((struct fx *)ctx)->dp_closed = true;
}

static bool dp_is_closed(void *ctx)
{
    return ((struct fx *)ctx)->dp_closed;
}

static void dp_stop(struct fx *f)
{
    dataplane_close(f->dp, dp_closed_cb, f);
    assert_true(sk_test_run_until(&f->loop, dp_is_closed, f, DEADLINE_MS));
    f->dp = NULL;
}

static void docker_closed_cb(void *ctx)
{
    ((struct fx *)ctx)->docker_closed = true;
}

static bool all_closed(void *ctx)
{
    struct fx *f = ctx;
    return f->docker_closed && fake_dockerd_closed(&f->dk);
}

static void fx_stop(struct fx *f)
{
    if (f->dp)
        dp_stop(f);
    sk_docker_close(f->docker, docker_closed_cb, f);
    fake_dockerd_close(&f->dk);
    assert_true(sk_test_run_until(&f->loop, all_closed, f, DEADLINE_MS));
    sk_test_loop_close(&f->loop);
    fake_dockerd_free(&f->dk);
    for (int i = 0; i < f->nft.n; i++)
        free(f->nft.a[i].script);
    free(f->kernel);
}

/* Hands the data plane a networks message, decoded as the agent does. */
static void view(struct fx *f, const char *networks)
{
    char *text = sk_printf("{\"type\":\"networks\",\"networks\":[%s]}",
                           networks ? networks : "");
    struct sk_session_msg msg;
    struct sk_err err;
    if (sk_wire_decode(&sk_session_msg_schema, text, strlen(text), &msg,
                       &err) != SK_OK)
        fail_msg("%s", err.msg);
    dataplane_set_view(f->dp, &msg);
    assert_int_equal(msg.n_networks, 0);
    sk_schema_free(&sk_session_msg_schema, &msg);
    free(text);
}

/* Network A: this node h1 at .250; h2 (10.78.0.12) with a task .6, its
 * own .251, and the gateway (which no node may send for); api (vip .100,
 * tasks .5 here and .6 there) and db (dnsrr, task .7 nowhere). */
static char *net_a(const char *api_ready, const char *extra)
{
    return sk_printf(
        "{\"id\":\"" NET_A "\",\"name\":\"back\",\"vni\":4097,"
        "\"subnet\":\"127.1.0.0/24\",\"gateway\":\"127.1.0.1\","
        "\"node_addr\":\"127.1.0.250\",\"peers\":[{\"node_id\":"
        "\"nodebbbbbbbbbbbbbbbbbbbbba\",\"vtep\":\"10.78.0.12\",\"addrs\":["
        "\"127.1.0.6\",\"127.1.0.251\",\"127.1.0.1\",\"127.1.0.5\"]}],"
        "\"services\":[{\"service_id\":\"svcaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"name\":\"api\",\"aliases\":[\"backend\"],\"endpoint_mode\":"
        "\"vip\",\"vip\":\"127.1.0.100\",\"ready\":[%s]},{\"service_id\":"
        "\"svcbbbbbbbbbbbbbbbbbbbbbba\",\"name\":\"db\",\"endpoint_mode\":"
        "\"dnsrr\",\"ready\":[\"127.1.0.7\"]}]%s}",
        api_ready, extra ? extra : "");
}

static struct sk_net_attachment att(const char *network, char **addr)
{
    struct sk_net_attachment a = {.addresses = addr, .n_addresses = 1};
    snprintf(a.network_id, sizeof a.network_id, "%s", network);
    return a;
}

struct ready_wait {
    struct fx *f;
    const char *id;
};

static bool is_ready(void *ctx)
{
    struct ready_wait *w = ctx;
    struct dataplane_net dn;
    struct sk_err err = {0};
    return dataplane_network(w->f->dp, w->id, &dn, &err) == SK_OK;
}

static void wait_ready(struct fx *f, const char *id)
{
    struct ready_wait w = {f, id};
    if (!sk_test_run_until(&f->loop, is_ready, &w, DEADLINE_MS)) {
        struct dataplane_net dn;
        struct sk_err err = {0};
        dataplane_network(f->dp, id, &dn, &err);
        fail_msg("network %s never ready: %s", id, err.msg);
    }
}

static bool quiet(void *ctx)
{
    (void)ctx;
    return false;
}

/* Lets a pass and its Docker calls happen. */
static void settle(struct fx *f)
{
    sk_test_run_until(&f->loop, quiet, NULL, 100);
}

static bool has_log(const struct fake_kernel *k, const char *line)
{
    for (size_t i = 0; i < k->n_log; i++)
        if (strcmp(k->log[i], line) == 0)
            return true;
    return false;
}

static size_t log_index(const struct fake_kernel *k, const char *prefix)
{
    for (size_t i = 0; i < k->n_log; i++)
        if (strncmp(k->log[i], prefix, strlen(prefix)) == 0)
            return i;
    fail_msg("no \"%s\" in the kernel's log", prefix);
    return 0;
}

/* ---- DNS queries from a "container" address ---- */

struct client {
    int fd;
    uint8_t buf[2048];
    ssize_t got;
};

static bool client_got(void *ctx)
{
    struct client *c = ctx;
    c->got = recv(c->fd, c->buf, sizeof c->buf, MSG_DONTWAIT);
    return c->got > 0;
}

/* The A records for name asked from `from` at the gateway, as "a,b", or
 * the rcode's name when there is none. */
static char *ask(struct fx *f, const char *from, const char *name)
{
    struct client c = {.fd = socket(AF_INET, SOCK_DGRAM, 0)};
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = fake_ip(from)};
    assert_int_equal(bind(c.fd, (struct sockaddr *)&src, sizeof src), 0);
    ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name),
                                     LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
    uint8_t *wire = NULL;
    size_t len = 0;
    assert_int_equal(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
    ldns_pkt_free(q);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(f->port),
                             .sin_addr = fake_ip("127.1.0.1")};
    assert_int_equal(
        sendto(c.fd, wire, len, 0, (struct sockaddr *)&to, sizeof to),
        (ssize_t)len);
    free(wire);
    if (!sk_test_run_until(&f->loop, client_got, &c, 2000))
        fail_msg("no DNS reply for %s from %s", name, from);
    close(c.fd);
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, c.buf, (size_t)c.got), LDNS_STATUS_OK);
    char *out = sk_strdup("");
    ldns_rr_list *an = ldns_pkt_answer(r);
    for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
        char b[INET_ADDRSTRLEN];
        inet_ntop(AF_INET,
                  ldns_rdf_data(ldns_rr_rdf(ldns_rr_list_rr(an, i), 0)), b,
                  sizeof b);
        char *o = sk_printf("%s%s%s", out, i ? "," : "", b);
        free(out);
        out = o;
    }
    if (!*out) {
        free(out);
        ldns_lookup_table *lt =
            ldns_lookup_by_id(ldns_rcodes, (int)ldns_pkt_get_rcode(r));
        out = sk_strdup(lt ? lt->name : "?");
    }
    ldns_pkt_free(r);
    return out;
}

static void expect_answer(struct fx *f, const char *from, const char *name,
                          const char *want)
{
    char *got = ask(f, from, name);
    if (strcmp(got, want) != 0)
        fail_msg("%s from %s: got %s, want %s", name, from, got, want);
    free(got);
}

/* ---- tests ---- */

static void nothing_without_dockerd(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, false);
    char *a = net_a("\"127.1.0.5\"", NULL);
    view(&f, a);
    sk_test_run_for(&f.loop, 300);
    /* Nothing is known of what to keep: the kernel is not even read. */
    assert_int_equal(f.kernel->snapshots, 0);
    assert_int_equal(f.kernel->n_log, 0);
    assert_int_equal(f.nft.n, 0);
    struct dataplane_net dn;
    struct sk_err err = {0};
    assert_int_equal(dataplane_network(f.dp, NET_A, &dn, &err), SK_EUNAVAIL);
    assert_string_equal(err.msg,
                        "network back on node h1: dockerd has not answered "
                        "yet");
    assert_int_equal(dataplane_network(f.dp, NET_B, &dn, &err), SK_ENOTFOUND);
    free(a);
    fx_stop(&f);
}

static void view_becomes_network(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, true);
    char *addr1 = "127.1.0.5/24";
    struct sk_net_attachment a1 = att(NET_A, &addr1);
    dataplane_task(f.dp, T1, &a1, 1, NULL);
    char *a = net_a("\"127.1.0.5\",\"127.1.0.6\"", NULL);
    view(&f, a);
    wait_ready(&f, NET_A);
    assert_true(f.changes >= 1);
    struct dataplane_net dn;
    struct sk_err err = {0};
    assert_int_equal(dataplane_network(f.dp, NET_A, &dn, &err), SK_OK);
    assert_string_equal(dn.docker_name, "skiff-back");
    assert_string_equal(dn.gateway, "127.1.0.1");

    /* The kernel: bridge with its MAC, the gateway then the node address,
     * entries for h2's task and h2's own address only. */
    const struct fake_kernel *k = f.kernel;
    assert_true(has_log(k, "link add bridge " BR_A
                           " mtu 1450 address 02:42:7f:01:00:fa up"));
    assert_true(has_log(k, "link add vxlan " VX_A " vni 4097 local 10.78.0.11 "
                           "port 4789 nolearning proxy master " BR_A
                           " mtu 1450 up"));
    assert_true(log_index(k, "addr add 127.1.0.1/24") <
                log_index(k, "addr add 127.1.0.250/24"));
    assert_int_equal(k->n_fdbs, 2);
    assert_int_equal(k->n_neighs, 2);
    assert_true(
        has_log(k, "fdb add 02:42:7f:01:00:06 dev " VX_A " dst 10.78.0.12"));
    assert_true(
        has_log(k, "fdb add 02:42:7f:01:00:fb dev " VX_A " dst 10.78.0.12"));

    /* dockerd: one bridge network on our bridge, labelled. */
    assert_int_equal(f.dk.n_networks, 1);
    assert_int_equal(f.dk.net_creates, 1);
    const json_t *b = f.dk.networks[0].body;
    assert_string_equal(f.dk.networks[0].name, "skiff-back");
    assert_string_equal(json_string_value(json_object_get(b, "Driver")),
                        "bridge");
    assert_false(json_is_true(json_object_get(b, "Internal")));
    const json_t *opts = json_object_get(b, "Options");
    assert_string_equal(json_string_value(json_object_get(
                            opts, "com.docker.network.bridge.name")),
                        BR_A);
    assert_string_equal(json_string_value(json_object_get(
                            opts, "com.docker.network.driver.mtu")),
                        "1450");
    const json_t *cfg = json_array_get(
        json_object_get(json_object_get(b, "IPAM"), "Config"), 0);
    assert_string_equal(json_string_value(json_object_get(cfg, "Subnet")),
                        "127.1.0.0/24");
    assert_string_equal(json_string_value(json_object_get(cfg, "Gateway")),
                        "127.1.0.1");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(b, "Labels"), "skiff.network.id")),
                        NET_A);
    /* Host rules: applied once the network is there (traffic inside its
     * subnet untracked), and not again for the same networks. */
    const char *hs = last_script(&f.nft, DATAPLANE_HOST_NETNS);
    assert_non_null(hs);
    assert_non_null(
        strstr(hs, "ip saddr 127.1.0.0/24 ip daddr 127.1.0.0/24 notrack"));
    int host_applies = applies_to(&f.nft, DATAPLANE_HOST_NETNS);
    assert_true(host_applies <= 2);

    /* DNS on the gateway, for the local task's address only. */
    expect_answer(&f, "127.1.0.5", "api", "127.1.0.100");
    expect_answer(&f, "127.1.0.5", "backend", "127.1.0.100");
    char *got = ask(&f, "127.1.0.5", "tasks.api");
    assert_true(strcmp(got, "127.1.0.5,127.1.0.6") == 0 ||
                strcmp(got, "127.1.0.6,127.1.0.5") == 0);
    free(got);
    expect_answer(&f, "127.1.0.5", "db", "127.1.0.7");
    expect_answer(&f, "127.1.0.5", "nosuch", "NXDOMAIN");
    expect_answer(&f, "127.1.0.9", "api", "REFUSED");

    /* Its container runs: VIP rules in its namespace. */
    struct fake_container *c =
        fake_container_add(&f.dk, "api.1." T1, "bb:1", NULL, "running", 0);
    dataplane_task(f.dp, T1, &a1, 1, c->id);
    struct nft *n = &f.nft;
    char netns[64];
    snprintf(netns, sizeof netns, "%s", c->sandbox);
    for (int i = 0; i < 100 && !last_script(n, netns); i++)
        settle(&f);
    const char *s = last_script(n, netns);
    assert_non_null(s);
    assert_non_null(strstr(s, "ip daddr vmap { 127.1.0.100 : jump vip_0 }"));
    assert_non_null(strstr(s, "numgen random mod 2 map { 0 : 127.1.0.5, 1 : "
                              "127.1.0.6 }"));

    /* h2's task leaves: out of DNS, of the VIP and of the kernel. */
    free(a);
    a = net_a("\"127.1.0.5\"", NULL);
    char *b2 = sk_printf("%s", a);
    /* h2 no longer has .6 either */
    char *p = strstr(b2, "\"127.1.0.6\",");
    memmove(p, p + 12, strlen(p + 12) + 1);
    view(&f, b2);
    settle(&f);
    expect_answer(&f, "127.1.0.5", "tasks.api", "127.1.0.5");
    s = last_script(n, netns);
    assert_non_null(strstr(s, "dnat to 127.1.0.5\n"));
    assert_int_equal(applies_to(n, netns), 2);
    assert_int_equal(f.kernel->n_fdbs, 1);
    assert_int_equal(f.kernel->n_neighs, 1);
    /* The same view again: nothing applied, nothing changed. */
    struct dataplane_stats st0, st1;
    dataplane_stats(f.dp, &st0);
    f.kernel->n_log = 0;
    view(&f, b2);
    settle(&f);
    dataplane_stats(f.dp, &st1);
    assert_true(st1.syncs > st0.syncs);
    assert_int_equal(st1.reconciles, st0.reconciles);
    assert_int_equal(st1.vip_applies, st0.vip_applies);
    assert_int_equal(f.kernel->n_log, 0);
    assert_int_equal(f.dk.net_creates, 1);
    assert_int_equal(applies_to(&f.nft, DATAPLANE_HOST_NETNS), host_applies);
    free(b2);
    free(a);
    fx_stop(&f);
}

static bool docker_nets_zero(void *ctx)
{
    return ((struct fx *)ctx)->dk.n_networks == 0;
}

static void network_leaves_docker_first(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, true);
    char *a = net_a("", NULL);
    view(&f, a);
    wait_ready(&f, NET_A);
    /* A container still on it: dockerd refuses the removal, and the
     * devices stay while the Docker network does. */
    struct fake_container *c =
        fake_container_add(&f.dk, "x", "bb:1", NULL, "running", 0);
    c->networks = json_pack("{s:{}}", "skiff-back");
    view(&f, NULL);
    sk_test_run_for(&f.loop, 300);
    assert_int_equal(f.dk.n_networks, 1);
    assert_true(f.dk.net_removes >= 1);
    assert_non_null(fake_kernel_link(f.kernel, BR_A));
    assert_non_null(fake_kernel_link(f.kernel, VX_A));
    struct dataplane_net dn;
    struct sk_err err = {0};
    assert_int_equal(dataplane_network(f.dp, NET_A, &dn, &err), SK_ENOTFOUND);
    /* The container lets go: within the retry, the Docker network goes,
     * then the devices. */
    json_decref(c->networks);
    c->networks = NULL;
    assert_true(sk_test_run_until(&f.loop, docker_nets_zero, &f, DEADLINE_MS));
    settle(&f);
    assert_null(fake_kernel_link(f.kernel, BR_A));
    assert_null(fake_kernel_link(f.kernel, VX_A));
    free(a);
    fx_stop(&f);
}

static void restart_adopts(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, true);
    char *a = net_a("\"127.1.0.6\"", NULL);
    view(&f, a);
    wait_ready(&f, NET_A);
    size_t links = f.kernel->n_links, addrs = f.kernel->n_addrs,
           fdbs = f.kernel->n_fdbs, neighs = f.kernel->n_neighs;
    dp_stop(&f);
    /* What an agent killed meanwhile would have left: a Docker network
     * and devices of a network gone from the view. */
    fake_network_add(&f.dk, "{\"Name\":\"skiff-old\",\"Labels\":{"
                            "\"skiff.network.id\":\"" NET_B "\"}}");
    struct sk_nl_link old = {
        .name = "skbnetbbbbbbb", .kind = SK_NL_BRIDGE, .mtu = 1450, .up = true};
    f.kernel->links[f.kernel->n_links++] = old;
    f.kernel->n_log = 0;
    int creates = f.dk.net_creates;

    dp_start(&f);
    /* Before the leader's view comes, nothing is taken for stale. */
    sk_test_run_for(&f.loop, 300);
    assert_int_equal(f.dk.n_networks, 2);
    assert_int_equal(f.dk.net_removes, 0);
    assert_int_equal(f.kernel->n_log, 0);
    view(&f, a);
    wait_ready(&f, NET_A);
    settle(&f);
    /* Adopted: nothing made again, nothing duplicated; the stale Docker
     * network removed, then the stale bridge. */
    assert_int_equal(f.dk.net_creates, creates);
    assert_int_equal(f.dk.n_networks, 1);
    assert_string_equal(f.dk.networks[0].name, "skiff-back");
    assert_int_equal(f.kernel->n_log, 1);
    assert_string_equal(f.kernel->log[0], "link del skbnetbbbbbbb");
    assert_int_equal(f.kernel->n_links, links);
    assert_int_equal(f.kernel->n_addrs, addrs);
    assert_int_equal(f.kernel->n_fdbs, fdbs);
    assert_int_equal(f.kernel->n_neighs, neighs);
    free(a);
    fx_stop(&f);
}

static void internal_networks_and_failures(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f, true);
    f.dk.fail_net_creates = true;
    char *i = sk_printf("{\"id\":\"" NET_I "\",\"name\":\"priv\",\"vni\":4099,"
                        "\"subnet\":\"127.3.0.0/24\",\"gateway\":\"127.3.0.1\","
                        "\"internal\":true}");
    view(&f, i);
    settle(&f);
    /* dockerd fails: told, naming the network, the node and why. */
    struct dataplane_net dn;
    struct sk_err err = {0};
    for (int k = 0; k < 50; k++) {
        if (dataplane_network(f.dp, NET_I, &dn, &err) == SK_EUNAVAIL &&
            strstr(err.msg, "injected failure"))
            break;
        settle(&f);
    }
    assert_int_equal(dataplane_network(f.dp, NET_I, &dn, &err), SK_EUNAVAIL);
    assert_string_equal(err.msg,
                        "network priv on node h1: create network "
                        "\"skiff-priv\": dockerd 500: injected failure");
    /* Its bridge is made all the same, and its host rules. */
    assert_non_null(fake_kernel_link(f.kernel, BR_I));
    const char *s = last_script(&f.nft, DATAPLANE_HOST_NETNS);
    const struct dataplane_host_net hn = {.bridge = BR_I,
                                          .subnet = "127.3.0.0/24",
                                          .gateway = "127.3.0.1",
                                          .internal = true};
    char *want = dataplane_render_host_rules(&hn, 1);
    assert_string_equal(s, want);
    free(want);
    /* dockerd works again: ready at the next try. */
    f.dk.fail_net_creates = false;
    wait_ready(&f, NET_I);
    assert_true(
        json_is_true(json_object_get(f.dk.networks[0].body, "Internal")));
    /* The internal network leaves: the host rules go. */
    view(&f, NULL);
    assert_true(sk_test_run_until(&f.loop, docker_nets_zero, &f, DEADLINE_MS));
    settle(&f);
    assert_string_equal(last_script(&f.nft, DATAPLANE_HOST_NETNS),
                        "table ip skiff_host\ndelete table ip skiff_host\n");
    free(i);
    fx_stop(&f);
}

static void host_rules_text(void **state)
{
    (void)state;
    const struct dataplane_host_net nets[] = {
        {"skbaaaaaaaaaa", "10.0.1.0/24", "10.0.1.1", true},
        {"skbcccccccccc", "10.0.3.0/24", "10.0.3.1", false},
        {"skbbbbbbbbbbb", "10.0.2.0/24", "10.0.2.1", true},
    };
    char *s = dataplane_render_host_rules(nets, 3);
    assert_string_equal(
        s, "table ip skiff_host\n"
           "delete table ip skiff_host\n"
           "table ip skiff_host {\n"
           "\tchain prerouting {\n"
           "\t\ttype filter hook prerouting priority raw; policy accept;\n"
           "\t\tip saddr 10.0.1.0/24 ip daddr 10.0.1.0/24 notrack\n"
           "\t\tip saddr 10.0.3.0/24 ip daddr 10.0.3.0/24 notrack\n"
           "\t\tip saddr 10.0.2.0/24 ip daddr 10.0.2.0/24 notrack\n"
           "\t}\n"
           "\tchain output {\n"
           "\t\ttype filter hook output priority raw; policy accept;\n"
           "\t\tip saddr 10.0.1.0/24 ip daddr 10.0.1.0/24 notrack\n"
           "\t\tip saddr 10.0.3.0/24 ip daddr 10.0.3.0/24 notrack\n"
           "\t\tip saddr 10.0.2.0/24 ip daddr 10.0.2.0/24 notrack\n"
           "\t}\n"
           "\tchain input {\n"
           "\t\ttype filter hook input priority 0; policy accept;\n"
           "\t\tiifname { \"skbaaaaaaaaaa\", \"skbbbbbbbbbbb\" } ct state "
           "established,related accept\n"
           "\t\tiifname \"skbaaaaaaaaaa\" ip daddr 10.0.1.1 udp dport 53 "
           "accept\n"
           "\t\tiifname \"skbbbbbbbbbbb\" ip daddr 10.0.2.1 udp dport 53 "
           "accept\n"
           "\t\tiifname { \"skbaaaaaaaaaa\", \"skbbbbbbbbbbb\" } drop\n"
           "\t}\n"
           "}\n");
    free(s);
    /* No internal network: no input chain. */
    s = dataplane_render_host_rules(&nets[1], 1);
    assert_null(strstr(s, "input"));
    assert_non_null(strstr(s, "ip saddr 10.0.3.0/24 ip daddr 10.0.3.0/24 "
                              "notrack"));
    free(s);
    s = dataplane_render_host_rules(NULL, 0);
    assert_string_equal(s, "table ip skiff_host\ndelete table ip skiff_host\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_without_dockerd),
        cmocka_unit_test(view_becomes_network),
        cmocka_unit_test(network_leaves_docker_first),
        cmocka_unit_test(restart_adopts),
        cmocka_unit_test(internal_networks_and_failures),
        cmocka_unit_test(host_rules_text),
    };
    return cmocka_run_group_tests_name("dataplane_fake", tests, NULL, NULL);
}
