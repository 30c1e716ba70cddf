/* The executor (agent/executor.h) against the fake dockerd's engine
 * (fake_dockerd.h): tasks run through their states in order and are
 * reported; exits become complete or failed; the first full set of
 * assignments adopts the containers that are there and removes the others;
 * a missing image is pulled, or the task is rejected with a message that
 * names it; the lifecycle's transition table refuses what it does not
 * list; and a task on networks waits for them (rejected after the bound,
 * naming the network), then its container is made on its first network
 * with its address and the gateway as DNS server, connected to the others
 * before the start, and given its VIP rules. */
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
#include "agent/executor.h"
#include "fake_dockerd.h"
#include "skiff/mem.h"
#include "skiff/wire.h"

#define DEADLINE_MS 10000
#define MAX_REPORTS 64

#define NODE "nodeaaaaaaaaaaaaaaaaaaaaaa"
#define OTHER_NODE "nodebbbbbbbbbbbbbbbbbbbbba"
#define SVC "svcaaaaaaaaaaaaaaaaaaaaaaa"
#define T1 "taskaaaaaaaaaaaaaaaaaaaaae"
#define T2 "taskaaaaaaaaaaaaaaaaaaaaai"
#define T8 "taskaaaaaaaaaaaaaaaaaaaaam"
#define T9 "taskaaaaaaaaaaaaaaaaaaaaaq"
#define IMG "bb:1"

struct report {
    char id[SK_ID_SIZE];
    int state;
    char message[128];
    char err[512];
    int64_t exit_code;
};

/* A fake nftables: the scripts applied, by namespace. */
#define MAX_APPLIED 32
struct nft {
    char netns[MAX_APPLIED][64];
    char *script[MAX_APPLIED];
    int n;
};

static enum sk_rc nft_apply(void *impl, const char *netns, const char *script,
                            struct sk_err *err)
{
    struct nft *f = impl;
    assert_true(f->n < MAX_APPLIED);
    snprintf(f->netns[f->n], sizeof f->netns[0], "%s", netns);
    f->script[f->n++] = sk_strdup(script);
    return SK_OK;
}

static const struct sk_vip_ops nft_ops = {.apply = nft_apply};

struct fx {
    uv_loop_t loop;
    struct fake_dockerd dk;
    struct sk_docker *docker;
    struct executor *e;
    struct report reports[MAX_REPORTS];
    int n_reports;
    bool exec_closed, docker_closed, dp_closed;
    /* With a data plane over fakes (fx_open(f, true)). */
    struct dataplane *dp;
    struct fake_kernel *kernel;
    struct nft nft;
    struct dataplane_seams seams;
};

static void on_report(void *ctx, const struct sk_task_report *r)
{
    struct fx *f = ctx;
    assert_true(f->n_reports < MAX_REPORTS);
    struct report *out = &f->reports[f->n_reports++];
    memcpy(out->id, r->id, SK_ID_SIZE);
    out->state = r->state;
    snprintf(out->message, sizeof out->message, "%s",
             r->message ? r->message : "");
    snprintf(out->err, sizeof out->err, "%s", r->err ? r->err : "");
    out->exit_code = r->exit_code;
}

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

static void on_networks_changed(void *ctx)
{
    struct fx *f = ctx;
    if (f->e)
        executor_networks_changed(f->e);
}

static void fx_open(struct fx *f, bool networked)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fake_dockerd_start(&f->dk, &f->loop, NULL, f);
    fake_image_add(&f->dk, IMG);
    struct sk_err err;
    f->docker = sk_docker_new(&f->loop, f->dk.sock, &err);
    assert_non_null(f->docker);
    if (networked) {
        f->kernel = sk_calloc(1, sizeof *f->kernel);
        f->seams = (struct dataplane_seams){.netlink = &fake_kernel_ops,
                                            .netlink_impl = f->kernel,
                                            .vip = &nft_ops,
                                            .vip_impl = &f->nft,
                                            .mtu = 1450,
                                            .dns_port = free_udp_port()};
        struct dataplane_config dc = {.loop = &f->loop,
                                      .docker = f->docker,
                                      .node_name = "h1",
                                      .data_addr = "10.78.0.11",
                                      .seams = &f->seams,
                                      .changed_cb = on_networks_changed,
                                      .ctx = f};
        f->dp = dataplane_new(&dc, &err);
        assert_non_null(f->dp);
    }
    f->e = executor_new(&f->loop, f->docker, f->dp, NODE, "h1", on_report, f);
    assert_true(
        sk_test_run_until(&f->loop, fake_dockerd_watched, &f->dk, DEADLINE_MS));
}

static void fx_start(struct fx *f)
{
    fx_open(f, false);
}

static void exec_closed(void *ctx)
{
    ((struct fx *)ctx)->exec_closed = true;
}

static void docker_closed(void *ctx)
{
    ((struct fx *)ctx)->docker_closed = true;
}

static void dp_closed(void *ctx)
{
    ((struct fx *)ctx)->dp_closed = true;
}

static bool exec_and_dp_closed(void *ctx)
{
    struct fx *f = ctx;
    return f->exec_closed && (!f->dp || f->dp_closed);
}

static bool all_closed(void *ctx)
{
    struct fx *f = ctx;
    return f->exec_closed && f->docker_closed && fake_dockerd_closed(&f->dk);
}

static void fx_stop(struct fx *f)
{
    /* The agent's order: the executor, the data plane, dockerd's client. */
    executor_close(f->e, exec_closed, f);
    if (f->dp)
        dataplane_close(f->dp, dp_closed, f);
    assert_true(
        sk_test_run_until(&f->loop, exec_and_dp_closed, f, DEADLINE_MS));
    sk_docker_close(f->docker, docker_closed, f);
    fake_dockerd_close(&f->dk);
    assert_true(sk_test_run_until(&f->loop, all_closed, f, DEADLINE_MS));
    sk_test_loop_close(&f->loop);
    fake_dockerd_free(&f->dk);
    for (int i = 0; i < f->nft.n; i++)
        free(f->nft.script[i]);
    free(f->kernel);
}

/* One assignment as the leader sends it. */
static char *assignment(const char *id, int slot, const char *image,
                        const char *desired)
{
    return sk_printf("{\"task\":{\"id\":\"%s\",\"service_id\":\"" SVC "\","
                     "\"slot\":%d,\"node_id\":\"" NODE "\","
                     "\"desired_state\":\"%s\",\"spec\":{\"container\":{"
                     "\"image\":\"%s\"}},\"status\":{\"state\":\"assigned\"}},"
                     "\"service_name\":\"web\"}",
                     id, slot, desired, image);
}

/* Hands the executor a session message, decoded as the agent does. */
static void assign(struct fx *f, bool full, const char *tasks,
                   const char *removed)
{
    char *text = sk_printf("{\"type\":\"assignments\",\"full\":%s,"
                           "\"tasks\":[%s],\"removed\":[%s]}",
                           full ? "true" : "false", tasks ? tasks : "",
                           removed ? removed : "");
    struct sk_session_msg msg;
    struct sk_err err;
    if (sk_wire_decode(&sk_session_msg_schema, text, strlen(text), &msg,
                       &err) != SK_OK)
        fail_msg("%s", err.msg);
    executor_assign(f->e, &msg);
    sk_schema_free(&sk_session_msg_schema, &msg);
    free(text);
}

/* The states reported for a task, in order: "accepted preparing ...". */
static char *states_of(const struct fx *f, const char *id)
{
    char *out = sk_strdup("");
    for (int i = 0; i < f->n_reports; i++) {
        if (strcmp(f->reports[i].id, id) != 0)
            continue;
        char *j = sk_printf("%s%s%s", out, *out ? " " : "",
                            sk_task_state_name(f->reports[i].state));
        free(out);
        out = j;
    }
    return out;
}

static void expect_states(const struct fx *f, const char *id, const char *want)
{
    char *got = states_of(f, id);
    if (strcmp(got, want) != 0)
        fail_msg("task %s: reported \"%s\", want \"%s\"", id, got, want);
    free(got);
}

static const struct report *last_report(const struct fx *f, const char *id)
{
    for (int i = f->n_reports - 1; i >= 0; i--)
        if (strcmp(f->reports[i].id, id) == 0)
            return &f->reports[i];
    return NULL;
}

struct wait_state {
    struct fx *f;
    const char *id;
    int state;
};

static bool reached(void *ctx)
{
    struct wait_state *w = ctx;
    const struct report *r = last_report(w->f, w->id);
    return r && r->state == w->state;
}

static const struct report *wait_state(struct fx *f, const char *id, int state)
{
    struct wait_state w = {f, id, state};
    if (!sk_test_run_until(&f->loop, reached, &w, DEADLINE_MS)) {
        char *got = states_of(f, id);
        fail_msg("task %s never reported %s (reported \"%s\")", id,
                 sk_task_state_name(state), got);
    }
    return last_report(f, id);
}

struct wait_gone {
    struct fake_dockerd *dk;
    const char *ref;
};

static bool container_gone(void *ctx)
{
    struct wait_gone *w = ctx;
    return fake_container_find(w->dk, w->ref) == NULL;
}

static void wait_gone(struct fx *f, const char *ref)
{
    struct wait_gone w = {&f->dk, ref};
    if (!sk_test_run_until(&f->loop, container_gone, &w, DEADLINE_MS))
        fail_msg("container %s was not removed", ref);
}

/* ---- tests ---- */

static void runs_in_order_and_reports_exits(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    char *a1 = assignment(T1, 1, IMG, "running");
    char *a2 = assignment(T2, 2, IMG, "running");
    char *both = sk_printf("%s,%s", a1, a2);
    assign(&f, true, both, NULL);
    wait_state(&f, T1, SK_TASK_RUNNING);
    wait_state(&f, T2, SK_TASK_RUNNING);
    expect_states(&f, T1, "accepted preparing starting running");
    expect_states(&f, T2, "accepted preparing starting running");

    /* One container per task, named and labelled for it, started. */
    assert_int_equal(f.dk.creates, 2);
    assert_int_equal(f.dk.n_containers, 2);
    struct fake_container *c1 = fake_container_find(&f.dk, "web.1." T1);
    assert_non_null(c1);
    assert_string_equal(c1->state, "running");
    assert_string_equal(
        json_string_value(json_object_get(c1->labels, "skiff.task.id")), T1);
    assert_string_equal(
        json_string_value(json_object_get(c1->labels, "skiff.node.id")), NODE);
    assert_string_equal(
        json_string_value(json_object_get(c1->labels, "skiff.service.name")),
        "web");

    /* Exit code 1: failed, with the code; 0: complete. */
    fake_dockerd_die(&f.dk, c1, 1);
    const struct report *r = wait_state(&f, T1, SK_TASK_FAILED);
    assert_string_equal(r->message, "exit code 1");
    assert_int_equal(r->exit_code, 1);
    fake_dockerd_die(&f.dk, fake_container_find(&f.dk, "web.2." T2), 0);
    r = wait_state(&f, T2, SK_TASK_COMPLETE);
    assert_string_equal(r->message, "exited 0");
    assert_int_equal(r->exit_code, 0);
    /* Finished for good: never started again here. */
    sk_test_run_for(&f.loop, 50);
    assert_int_equal(f.dk.starts, 2);
    expect_states(&f, T1, "accepted preparing starting running failed");
    expect_states(&f, T2, "accepted preparing starting running complete");
    free(a1);
    free(a2);
    free(both);
    fx_stop(&f);
}

static void adopts_and_removes(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    /* Left by an agent before this one: a container of an assigned task,
     * one of a task no longer assigned, and one of another node (a dockerd
     * shared by two test nodes). */
    fake_container_add(&f.dk, "web.1." T1, IMG,
                       "{\"skiff.task.id\":\"" T1 "\",\"skiff.node.id\":\"" NODE
                       "\"}",
                       "running", 0);
    fake_container_add(&f.dk, "web.9." T9, IMG,
                       "{\"skiff.task.id\":\"" T9 "\",\"skiff.node.id\":\"" NODE
                       "\"}",
                       "running", 0);
    fake_container_add(&f.dk, "web.8." T8, IMG,
                       "{\"skiff.task.id\":\"" T8
                       "\",\"skiff.node.id\":\"" OTHER_NODE "\"}",
                       "running", 0);
    char *a1 = assignment(T1, 1, IMG, "running");
    assign(&f, true, a1, NULL);
    const struct report *r = wait_state(&f, T1, SK_TASK_RUNNING);
    assert_string_equal(r->message, "adopted a running container");
    wait_gone(&f, "web.9." T9);
    /* Kept, not duplicated; the other node's container untouched. */
    expect_states(&f, T1, "running");
    assert_int_equal(f.dk.creates, 0);
    assert_int_equal(f.dk.removes, 1);
    assert_string_equal(fake_container_find(&f.dk, "web.1." T1)->state,
                        "running");
    assert_non_null(fake_container_find(&f.dk, "web.8." T8));

    /* A full set without it: its container goes. */
    assign(&f, true, NULL, NULL);
    wait_gone(&f, "web.1." T1);
    assert_non_null(fake_container_find(&f.dk, "web.8." T8));
    assert_int_equal(executor_tasks(f.e), 0);
    free(a1);
    fx_stop(&f);
}

static void missing_image(void **state)
{
    (void)state;
    struct fx f;
    fx_start(&f);
    fake_image_pullable(&f.dk, "pullme:2");
    char *a1 = assignment(T1, 1, "nosuch:1", "running");
    char *a2 = assignment(T2, 2, "pullme:2", "running");
    char *both = sk_printf("%s,%s", a1, a2);
    assign(&f, true, both, NULL);
    const struct report *r = wait_state(&f, T1, SK_TASK_REJECTED);
    if (!strstr(r->err, "image \"nosuch:1\" not found on node h1 and could "
                        "not be pulled: "))
        fail_msg("rejected with \"%s\"", r->err);
    if (!strstr(r->err, "pull access denied for nosuch"))
        fail_msg("rejected without dockerd's reason: \"%s\"", r->err);
    expect_states(&f, T1, "accepted preparing rejected");
    /* The other image is pulled, then its task runs. */
    wait_state(&f, T2, SK_TASK_RUNNING);
    assert_int_equal(f.dk.pulls, 2);
    assert_int_equal(f.dk.creates, 3); /* each once, pullme again */
    assert_null(fake_container_find(&f.dk, "web.1." T1));
    free(a1);
    free(a2);
    free(both);
    fx_stop(&f);
}

static void table_refuses_illegal_moves(void **state)
{
    (void)state;
    /* The straight line and its shortcuts. */
    assert_true(executor_transition_ok(SK_TASK_ASSIGNED, SK_TASK_ACCEPTED));
    assert_true(executor_transition_ok(SK_TASK_ACCEPTED, SK_TASK_PREPARING));
    assert_true(executor_transition_ok(SK_TASK_PREPARING, SK_TASK_STARTING));
    assert_true(executor_transition_ok(SK_TASK_STARTING, SK_TASK_RUNNING));
    assert_true(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_COMPLETE));
    assert_true(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_FAILED));
    assert_true(executor_transition_ok(SK_TASK_ASSIGNED, SK_TASK_RUNNING));
    assert_true(executor_transition_ok(SK_TASK_ASSIGNED, SK_TASK_SHUTDOWN));
    assert_true(executor_transition_ok(SK_TASK_PREPARING, SK_TASK_REJECTED));
    assert_true(executor_transition_ok(SK_TASK_STARTING, SK_TASK_FAILED));
    /* Backwards, out of a finished state, skipping the container, and
     * states only the leader sets. */
    assert_false(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_STARTING));
    assert_false(executor_transition_ok(SK_TASK_COMPLETE, SK_TASK_RUNNING));
    assert_false(executor_transition_ok(SK_TASK_FAILED, SK_TASK_SHUTDOWN));
    assert_false(executor_transition_ok(SK_TASK_SHUTDOWN, SK_TASK_FAILED));
    assert_false(executor_transition_ok(SK_TASK_REJECTED, SK_TASK_PREPARING));
    assert_false(executor_transition_ok(SK_TASK_ACCEPTED, SK_TASK_STARTING));
    assert_false(executor_transition_ok(SK_TASK_PREPARING, SK_TASK_FAILED));
    assert_false(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_REJECTED));
    assert_false(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_PENDING));
    assert_false(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_REMOVE));
    assert_false(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_RUNNING));
    assert_false(executor_transition_ok(-1, SK_TASK_RUNNING));
    assert_false(executor_transition_ok(SK_TASK_RUNNING, SK_TASK_STATE_COUNT));

    /* In the executor: a die event for a task that has no container yet
     * (a stray one, of a leftover with its label) cannot fail it. */
    struct fx f;
    fx_start(&f);
    char *a2 = assignment(T2, 2, IMG, "running");
    assign(&f, true, a2, NULL);
    wait_state(&f, T2, SK_TASK_RUNNING);
    f.dk.hold_creates = true;
    char *a1 = assignment(T1, 1, IMG, "running");
    assign(&f, false, a1, NULL);
    assert_true(
        sk_test_run_until(&f.loop, fake_dockerd_holding, &f.dk, DEADLINE_MS));
    wait_state(&f, T1, SK_TASK_PREPARING);
    fake_dockerd_event(&f.dk, "{\"Type\":\"container\",\"Action\":\"die\","
                              "\"Actor\":{\"ID\":\"leftover\",\"Attributes\":{"
                              "\"skiff.task.id\":\"" T1 "\",\"exitCode\":"
                              "\"1\"}}}");
    /* Events come in order: once T2's exit is reported, T1's stray die was
     * handled before it. */
    fake_dockerd_die(&f.dk, fake_container_find(&f.dk, "web.2." T2), 1);
    wait_state(&f, T2, SK_TASK_FAILED);
    expect_states(&f, T1, "accepted preparing");
    fake_dockerd_release(&f.dk);
    wait_state(&f, T1, SK_TASK_RUNNING);
    expect_states(&f, T1, "accepted preparing starting running");
    free(a1);
    free(a2);
    fx_stop(&f);
}

/* ---- tasks on networks ---- */

#define NET_A "netaaaaaaaaaaaaaaaaaaaaaaa"
#define NET_B "netbbbbbbbbbbbbbbbbbbbbbba"

/* An assignment of a task on networks back (NET_A, 127.1.0.5) and front
 * (NET_B, 127.2.0.5), with host port 8080 published. */
static char *networked(const char *id, int slot)
{
    return sk_printf(
        "{\"task\":{\"id\":\"%s\",\"service_id\":\"" SVC "\","
        "\"slot\":%d,\"node_id\":\"" NODE "\",\"desired_state\":\"running\","
        "\"spec\":{\"container\":{\"image\":\"" IMG "\"},\"networks\":["
        "{\"target\":\"back\",\"id\":\"" NET_A "\"},"
        "{\"target\":\"front\",\"id\":\"" NET_B "\"}]},"
        "\"networks\":[{\"network_id\":\"" NET_B "\",\"addresses\":["
        "\"127.2.0.5/24\"]},{\"network_id\":\"" NET_A "\",\"addresses\":["
        "\"127.1.0.5/24\"]}],\"status\":{\"state\":\"assigned\"}},"
        "\"service_name\":\"web\",\"ports\":[{\"protocol\":\"tcp\","
        "\"target\":80,\"published\":8080,\"mode\":\"host\"}]}",
        id, slot);
}

static void set_view(struct fx *f, const char *networks)
{
    char *text =
        sk_printf("{\"type\":\"networks\",\"networks\":[%s]}", networks);
    struct sk_session_msg msg;
    struct sk_err err;
    if (sk_wire_decode(&sk_session_msg_schema, text, strlen(text), &msg,
                       &err) != SK_OK)
        fail_msg("%s", err.msg);
    dataplane_set_view(f->dp, &msg);
    sk_schema_free(&sk_session_msg_schema, &msg);
    free(text);
}

#define VIEW_A                                                                 \
    "{\"id\":\"" NET_A "\",\"name\":\"back\",\"vni\":4097,"                    \
    "\"subnet\":\"127.1.0.0/24\",\"gateway\":\"127.1.0.1\","                   \
    "\"services\":[{\"name\":\"web\",\"endpoint_mode\":\"vip\","               \
    "\"vip\":\"127.1.0.100\",\"ready\":[\"127.1.0.5\"]}]}"
#define VIEW_B                                                                 \
    "{\"id\":\"" NET_B "\",\"name\":\"front\",\"vni\":4098,"                   \
    "\"subnet\":\"127.2.0.0/24\",\"gateway\":\"127.2.0.1\"}"

static const json_t *jpath(const json_t *j, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        j = json_object_get(j, keys[i]);
    return j;
}

static void networked_task_waits_then_runs(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, true);
    char *a1 = networked(T1, 1);
    assign(&f, true, a1, NULL);
    /* No view yet: it waits, saying for which network. */
    wait_state(&f, T1, SK_TASK_PREPARING);
    for (int i = 0; i < 50 && !strstr(last_report(&f, T1)->message, "waiting");
         i++)
        sk_test_run_for(&f.loop, 20);
    assert_string_equal(last_report(&f, T1)->message,
                        "waiting for network back on this node");
    assert_int_equal(f.dk.creates, 0);
    /* Only back ready: still waiting (for front). */
    set_view(&f, VIEW_A);
    sk_test_run_for(&f.loop, 200);
    assert_int_equal(f.dk.creates, 0);
    set_view(&f, VIEW_A "," VIEW_B);
    wait_state(&f, T1, SK_TASK_RUNNING);
    expect_states(&f, T1, "accepted preparing preparing starting running");

    /* Created on its first network with its address and the gateway as
     * its DNS server; connected to the second before the start. */
    struct fake_container *c = fake_container_find(&f.dk, "web.1." T1);
    assert_non_null(c);
    const json_t *hc = json_object_get(c->config, "HostConfig");
    assert_string_equal(json_string_value(json_object_get(hc, "NetworkMode")),
                        "skiff-back");
    const json_t *dns = json_object_get(hc, "Dns");
    assert_int_equal(json_array_size(dns), 1);
    assert_string_equal(json_string_value(json_array_get(dns, 0)), "127.1.0.1");
    assert_non_null(
        json_object_get(json_object_get(hc, "PortBindings"), "80/tcp"));
    static const char *const first[] = {"NetworkingConfig", "EndpointsConfig",
                                        "skiff-back", "IPAMConfig",
                                        "IPv4Address"};
    assert_string_equal(json_string_value(jpath(c->config, first, 5)),
                        "127.1.0.5");
    assert_int_equal(f.dk.connects, 1);
    static const char *const second[] = {"skiff-front", "IPAMConfig",
                                         "IPv4Address"};
    assert_string_equal(json_string_value(jpath(c->networks, second, 3)),
                        "127.2.0.5");

    /* Running: its VIP rules go to its namespace. */
    bool vip = false;
    for (int k = 0; k < 50 && !vip; k++) {
        sk_test_run_for(&f.loop, 20);
        for (int i = 0; i < f.nft.n; i++)
            if (strcmp(f.nft.netns[i], c->sandbox) == 0 &&
                strstr(f.nft.script[i], "127.1.0.100 : jump vip_0"))
                vip = true;
    }
    assert_true(vip);
    free(a1);
    fx_stop(&f);
}

static void network_never_ready(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, true);
    executor_set_network_wait(f.e, 300);
    set_view(&f, VIEW_A);
    char *a1 = networked(T1, 1);
    assign(&f, true, a1, NULL);
    const struct report *r = wait_state(&f, T1, SK_TASK_REJECTED);
    assert_string_equal(r->err, "network front not ready on node h1 after "
                                "300 ms: network " NET_B
                                " is not in node h1's view yet");
    assert_int_equal(f.dk.creates, 0);
    free(a1);
    fx_stop(&f);

    /* No data plane at all: rejected at once. */
    fx_start(&f);
    a1 = networked(T1, 1);
    assign(&f, true, a1, NULL);
    r = wait_state(&f, T1, SK_TASK_REJECTED);
    assert_string_equal(r->err, "network back: node h1 has no data plane (see "
                                "its skiffd log)");
    free(a1);
    fx_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_in_order_and_reports_exits),
        cmocka_unit_test(adopts_and_removes),
        cmocka_unit_test(missing_image),
        cmocka_unit_test(table_refuses_illegal_moves),
        cmocka_unit_test(networked_task_waits_then_runs),
        cmocka_unit_test(network_never_ready),
    };
    return cmocka_run_group_tests_name("executor_fake", tests, NULL, NULL);
}
