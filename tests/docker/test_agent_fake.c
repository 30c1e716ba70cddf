/* The agent (skiff/agent.h) between a fake manager (skiff's own HTTPS
 * server on 127.0.0.1 with a throwaway CA, answering the agent's calls as
 * the leader does) and the fake dockerd's engine (fake_dockerd.h): the
 * heartbeat carries the node's description; each session line is decoded
 * once, a bad one skipped; the tasks run; their reports reach the leader as
 * task reports, are sent again while the leader does not take them, and
 * are dropped once it did; the network view reaches the data plane (over
 * an in-memory kernel). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../unit/fake_netlink.h"
#include "../unit/support.h"
#include "agent/dataplane.h"
#include "fake_dockerd.h"
#include "skiff/agent.h"
#include "skiff/http.h"
#include "skiff/mem.h"
#include "skiff/stream.h"
#include "skiff/tls.h"
#include "skiff/wire.h"

#define DEADLINE_MS 10000
#define MAX_POSTS 64

#define NODE "nodeaaaaaaaaaaaaaaaaaaaaaa"
#define SVC "svcaaaaaaaaaaaaaaaaaaaaaaa"
#define T1 "taskaaaaaaaaaaaaaaaaaaaaae"
#define IMG "bb:1"

struct fx {
    uv_loop_t loop;
    struct fake_dockerd dk;
    struct sk_test_ca ca;
    char *mgr_cert, *mgr_key, *node_cert, *node_key;
    struct sk_tls_ctx *tls;
    struct sk_listener lis;
    struct sk_http_server srv;
    char addr[32]; /* the fake manager's "127.0.0.1:PORT" */
    struct sk_agent *agent;
    bool agent_stopped, lis_closed, srv_closed;

    /* What the leader saw. */
    int heartbeats;
    struct sk_heartbeat last_beat;
    struct sk_http_req *session;             /* the open assignment stream */
    struct sk_task_reports posts[MAX_POSTS]; /* every status POST */
    int n_posts;
    int refuse_posts; /* answer this many status POSTs with 503 */

    /* The data plane's kernel and nftables, in memory. */
    struct fake_kernel kernel;
    int nft_applies;
    struct dataplane_seams seams;
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

static enum sk_rc nft_apply(void *impl, const char *netns, const char *script,
                            struct sk_err *err)
{
    ((struct fx *)impl)->nft_applies++;
    return SK_OK;
}

static const struct sk_vip_ops nft_ops = {.apply = nft_apply};

/* ---- the fake manager ---- */

static void respond(struct sk_http_req *req, int status, const char *body)
{
    sk_http_respond(req, status, "application/json", body, strlen(body));
}

static void session_abort(struct sk_http_req *req)
{
    struct fx *f = req->server->data;
    if (f->session == req)
        f->session = NULL;
    sk_http_stream_end(req);
}

static void handler(struct sk_http_req *req)
{
    struct fx *f = req->server->data;
    struct sk_err err;
    if (strcmp(req->path, "/v1/node/heartbeat") == 0) {
        f->heartbeats++;
        sk_schema_free(&sk_heartbeat_schema, &f->last_beat);
        if (sk_wire_decode(&sk_heartbeat_schema, req->body, req->body_len,
                           &f->last_beat, &err) != SK_OK)
            fail_msg("heartbeat: %s", err.msg);
        char *reply = sk_printf(
            "{\"heartbeat_period_ms\":200,\"managers\":[\"%s\"],"
            "\"leader\":\"%s\",\"node\":{\"spec\":{\"role\":\"worker\"}}}",
            f->addr, f->addr);
        respond(req, 200, reply);
        free(reply);
    } else if (strcmp(req->path, "/v1/node/assignments") == 0) {
        assert_null(f->session);
        f->session = req;
        req->abort_cb = session_abort;
        sk_http_stream_begin(req, 200, "application/x-ndjson");
    } else if (strcmp(req->path, "/v1/node/status") == 0) {
        assert_true(f->n_posts < MAX_POSTS);
        struct sk_task_reports *r = &f->posts[f->n_posts++];
        if (sk_wire_decode(&sk_task_reports_schema, req->body, req->body_len, r,
                           &err) != SK_OK)
            fail_msg("status: %s", err.msg);
        for (size_t i = 0; i < r->n_tasks; i++)
            if (sk_task_report_validate(&r->tasks[i], &err) != SK_OK)
                fail_msg("status: %s", err.msg);
        if (f->refuse_posts > 0) {
            f->refuse_posts--;
            respond(req, 503,
                    "{\"error\":{\"code\":\"unavailable\","
                    "\"message\":\"no leader\"}}");
        } else {
            respond(req, 200, "{\"ok\":true}");
        }
    } else {
        respond(req, 404,
                "{\"error\":{\"code\":\"not_found\",\"message\":"
                "\"not faked\"}}");
    }
}

static void accept_cb(struct sk_listener *l, struct sk_stream *s)
{
    struct fx *f = l->data;
    sk_http_server_adopt(&f->srv, s);
}

static bool session_open(void *ctx)
{
    return ((struct fx *)ctx)->session != NULL;
}

static void session_send(struct fx *f, const char *line)
{
    assert_non_null(f->session);
    sk_http_stream_write(f->session, line, strlen(line));
    sk_http_stream_write(f->session, "\n", 1);
}

/* ---- setup ---- */

static void fx_start(struct fx *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fake_dockerd_start(&f->dk, &f->loop, NULL, f);
    fake_image_add(&f->dk, IMG);

    int64_t day = 24LL * 3600 * 1000;
    sk_test_ca_new(&f->ca, "cluster-a");
    sk_test_cert_new(&f->ca, "m1", "manager", day, &f->mgr_cert, &f->mgr_key);
    sk_test_cert_new(&f->ca, NODE, "worker", day, &f->node_cert, &f->node_key);
    struct sk_tls_config tc = {.ca_pem = f->ca.cert_pem,
                               .cert_pem = f->mgr_cert,
                               .key_pem = f->mgr_key,
                               .server = true,
                               .require_peer_cert = true};
    struct sk_err err;
    f->tls = sk_tls_ctx_new(&tc, &err);
    assert_non_null(f->tls);
    struct sk_http_server_config hc = {.handler = handler, .data = f};
    assert_int_equal(sk_http_server_init(&f->srv, &f->loop, &hc), 0);
    struct sk_listener_config lc = {
        .host = "127.0.0.1", .tls = f->tls, .accept_cb = accept_cb, .data = f};
    if (sk_listener_start(&f->lis, &f->loop, &lc, &err) != 0)
        fail_msg("listener: %s", err.msg);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d",
             sk_listener_port(&f->lis));

    f->seams = (struct dataplane_seams){.netlink = &fake_kernel_ops,
                                        .netlink_impl = &f->kernel,
                                        .vip = &nft_ops,
                                        .vip_impl = f,
                                        .mtu = 1450,
                                        .dns_port = free_udp_port()};
    char *managers[] = {f->addr};
    struct sk_agent_config ac = {
        .loop = &f->loop,
        .node_id = NODE,
        .ca_pem = f->ca.cert_pem,
        .cert_pem = f->node_cert,
        .key_pem = f->node_key,
        .managers = managers,
        .n_managers = 1,
        .description = {.hostname = "h1",
                        .addr = "127.0.0.1",
                        .data_addr = "127.0.0.1",
                        .nano_cpus = 2000000000,
                        .agent_addr = "127.0.0.1:7443"},
        .docker_socket = f->dk.sock,
        .dataplane_seams = &f->seams,
    };
    f->agent = sk_agent_start(&ac, &err);
    assert_non_null(f->agent);
}

static void agent_stopped(void *ctx)
{
    ((struct fx *)ctx)->agent_stopped = true;
}

static void lis_closed(struct sk_listener *l)
{
    ((struct fx *)l->data)->lis_closed = true;
}

static void srv_closed(struct sk_http_server *s)
{
    ((struct fx *)s->data)->srv_closed = true;
}

static bool all_closed(void *ctx)
{
    struct fx *f = ctx;
    return f->agent_stopped && f->lis_closed && f->srv_closed &&
           fake_dockerd_closed(&f->dk);
}

static bool agent_gone(void *ctx)
{
    return ((struct fx *)ctx)->agent_stopped;
}

static void fx_stop(struct fx *f)
{
    sk_agent_stop(f->agent, false, agent_stopped, f);
    assert_true(sk_test_run_until(&f->loop, agent_gone, f, DEADLINE_MS));
    sk_listener_close(&f->lis, lis_closed);
    sk_http_server_close(&f->srv, srv_closed);
    fake_dockerd_close(&f->dk);
    assert_true(sk_test_run_until(&f->loop, all_closed, f, DEADLINE_MS));
    sk_tls_ctx_unref(f->tls);
    sk_test_loop_close(&f->loop);
    fake_dockerd_free(&f->dk);
    sk_schema_free(&sk_heartbeat_schema, &f->last_beat);
    for (int i = 0; i < f->n_posts; i++)
        sk_schema_free(&sk_task_reports_schema, &f->posts[i]);
    sk_test_ca_free(&f->ca);
    free(f->mgr_cert);
    free(f->mgr_key);
    free(f->node_cert);
    free(f->node_key);
}

/* The state of T1 in the status POST i, or -1 if it holds none. */
static int posted_state(const struct fx *f, int i, const char *id)
{
    for (size_t k = 0; k < f->posts[i].n_tasks; k++)
        if (strcmp(f->posts[i].tasks[k].id, id) == 0)
            return f->posts[i].tasks[k].state;
    return -1;
}

struct wait_post {
    struct fx *f;
    int from; /* posts before this one do not count */
    int state;
};

static bool posted(void *ctx)
{
    struct wait_post *w = ctx;
    for (int i = w->from; i < w->f->n_posts; i++)
        if (posted_state(w->f, i, T1) == w->state)
            return true;
    return false;
}

/* Waits for a status POST (from `from` on) that reports T1 in state;
 * returns its index. */
static int wait_posted(struct fx *f, int from, int state)
{
    struct wait_post w = {f, from, state};
    if (!sk_test_run_until(&f->loop, posted, &w, DEADLINE_MS))
        fail_msg("no status POST reported %s", sk_task_state_name(state));
    for (int i = from; i < f->n_posts; i++)
        if (posted_state(f, i, T1) == state)
            return i;
    return -1;
}

static const char *const assignment =
    "{\"type\":\"assignments\",\"full\":true,\"tasks\":[{\"task\":{"
    "\"id\":\"" T1 "\",\"service_id\":\"" SVC "\",\"slot\":1,"
    "\"node_id\":\"" NODE "\",\"desired_state\":\"running\",\"spec\":{"
    "\"container\":{\"image\":\"" IMG "\"}},\"status\":{\"state\":"
    "\"assigned\"}},\"service_name\":\"web\",\"ports\":[{\"target\":80,"
    "\"published\":8080,\"mode\":\"host\"}]}],\"removed\":[]}";

static bool one_network(void *ctx)
{
    return ((struct fx *)ctx)->dk.n_networks == 1;
}

/* ---- tests ---- */

static void agent_runs_its_assignments(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    /* The heartbeat says what the node is. */
    assert_true(sk_test_run_until(&f.loop, session_open, &f, DEADLINE_MS));
    assert_true(f.heartbeats > 0);
    assert_string_equal(f.last_beat.description.hostname, "h1");
    assert_string_equal(f.last_beat.description.agent_addr, "127.0.0.1:7443");
    assert_int_equal(f.last_beat.description.nano_cpus, 2000000000);

    /* A line that is not a session message is skipped whole; the next
     * one is read. The leader refuses the first two status POSTs. */
    f.refuse_posts = 2;
    session_send(&f, "{\"type\":\"assignments\",\"full\":true,\"tasks\":"
                     "[{\"task\":{\"id\":\"" T1 "\"},\"bogus\":1}]}");
    session_send(&f, assignment);
    /* The first two POSTs are refused: wait for one that is taken. */
    int i = wait_posted(&f, 2, SK_TASK_RUNNING);
    const struct sk_task_report *r = NULL;
    for (size_t k = 0; k < f.posts[i].n_tasks; k++)
        r = &f.posts[i].tasks[k];
    assert_string_equal(r->id, T1);
    assert_string_equal(r->message, "started");
    struct fake_container *c = fake_container_find(&f.dk, "web.1." T1);
    assert_non_null(c);
    assert_string_equal(r->container_id, c->id);
    assert_int_equal(r->health, SK_HEALTH_NONE);
    /* One container, with the service's published port. */
    assert_int_equal(f.dk.creates, 1);
    json_t *bind = json_object_get(
        json_object_get(json_object_get(c->config, "HostConfig"),
                        "PortBindings"),
        "80/tcp");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(bind, 0), "HostPort")),
        "8080");
    /* Sent again while refused: what the refused POSTs held is in the one
     * taken. */
    for (int k = 0; k < 2; k++)
        assert_int_not_equal(posted_state(&f, k, T1), -1);
    /* Once taken, not again: no POST for a while (heartbeats go on). */
    assert_int_equal(f.n_posts, i + 1);
    int taken = f.n_posts;
    int beats = f.heartbeats;
    sk_test_run_for(&f.loop, 600);
    assert_true(f.heartbeats > beats);
    assert_int_equal(f.n_posts, taken);

    /* An exit is the next report. */
    fake_dockerd_die(&f.dk, c, 3);
    i = wait_posted(&f, taken, SK_TASK_FAILED);
    assert_int_equal(f.posts[i].n_tasks, 1);
    assert_int_equal(f.posts[i].tasks[0].exit_code, 3);
    assert_string_equal(f.posts[i].tasks[0].message, "exit code 3");

    /* The node's network view goes to the data plane: the network's
     * devices and Docker network are made. */
    session_send(&f, "{\"type\":\"networks\",\"networks\":[{\"id\":"
                     "\"netaaaaaaaaaaaaaaaaaaaaaaa\",\"name\":\"back\","
                     "\"vni\":4097,\"subnet\":\"127.1.0.0/24\","
                     "\"gateway\":\"127.1.0.1\"}]}");
    assert_true(sk_test_run_until(&f.loop, one_network, &f, DEADLINE_MS));
    assert_non_null(fake_kernel_link(&f.kernel, "skbnetaaaaaaa"));
    assert_string_equal(f.dk.networks[0].name, "skiff-back");
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agent_runs_its_assignments),
    };
    return cmocka_run_group_tests_name("agent_fake", tests, NULL, NULL);
}
