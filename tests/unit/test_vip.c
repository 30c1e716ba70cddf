/* Virtual IPs (agent/vip.c): the exact rule text, applying only what
 * changed through a fake, and the real nftables ops in network namespaces
 * of child processes (skipped without the right to make them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/vip.h"

static struct in_addr ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

static struct in_addr b3[3];

/* 10.0.1.100 -> .5 .6; 10.0.1.101 -> .7; 10.0.1.102 -> none. */
static size_t sample(struct sk_vip_service *s)
{
    b3[0] = ip("10.0.1.5");
    b3[1] = ip("10.0.1.6");
    b3[2] = ip("10.0.1.7");
    s[0] = (struct sk_vip_service){ip("10.0.1.100"), b3, 2};
    s[1] = (struct sk_vip_service){ip("10.0.1.101"), &b3[2], 1};
    s[2] = (struct sk_vip_service){ip("10.0.1.102"), NULL, 0};
    return 3;
}

static const char sample_text[] =
    "table ip skiff_vip\n"
    "delete table ip skiff_vip\n"
    "table ip skiff_vip {\n"
    "\tchain output {\n"
    "\t\ttype nat hook output priority -100; policy accept;\n"
    "\t\tip daddr vmap { 10.0.1.100 : jump vip_0, 10.0.1.101 : jump vip_1 }\n"
    "\t}\n"
    "\tchain vip_0 {\n"
    "\t\tdnat to numgen random mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }\n"
    "\t}\n"
    "\tchain vip_1 {\n"
    "\t\tdnat to 10.0.1.7\n"
    "\t}\n"
    "\tchain reject_output {\n"
    "\t\ttype filter hook output priority 0; policy accept;\n"
    "\t\tip daddr { 10.0.1.102 } reject\n"
    "\t}\n"
    "}\n";

static void render_rules(void **state)
{
    struct sk_vip_service s[4];
    size_t n = sample(s);
    char *text = sk_vip_render(s, n);
    assert_string_equal(text, sample_text);
    free(text);

    /* Nothing: the table goes. */
    text = sk_vip_render(NULL, 0);
    assert_string_equal(text, "table ip skiff_vip\n"
                              "delete table ip skiff_vip\n");
    free(text);

    /* Only VIPs without tasks: no NAT chain. A VIP listed twice: the
     * first wins. */
    struct sk_vip_service dead[3] = {{ip("10.0.1.102"), NULL, 0},
                                     {ip("10.0.1.103"), NULL, 0},
                                     {ip("10.0.1.102"), b3, 3}};
    text = sk_vip_render(dead, 3);
    assert_string_equal(
        text, "table ip skiff_vip\n"
              "delete table ip skiff_vip\n"
              "table ip skiff_vip {\n"
              "\tchain reject_output {\n"
              "\t\ttype filter hook output priority 0; policy accept;\n"
              "\t\tip daddr { 10.0.1.102, 10.0.1.103 } reject\n"
              "\t}\n"
              "}\n");
    free(text);

    /* Three tasks, no dead VIP. */
    struct sk_vip_service three = {ip("10.0.2.100"), b3, 3};
    text = sk_vip_render(&three, 1);
    assert_string_equal(
        text,
        "table ip skiff_vip\n"
        "delete table ip skiff_vip\n"
        "table ip skiff_vip {\n"
        "\tchain output {\n"
        "\t\ttype nat hook output priority -100; policy accept;\n"
        "\t\tip daddr vmap { 10.0.2.100 : jump vip_0 }\n"
        "\t}\n"
        "\tchain vip_0 {\n"
        "\t\tdnat to numgen random mod 3 map { 0 : 10.0.1.5, 1 : 10.0.1.6, "
        "2 : 10.0.1.7 }\n"
        "\t}\n"
        "}\n");
    free(text);
}

/* ---- sync through a fake ---- */

struct fake {
    int applies;
    char last_netns[64];
    char *last_script;
    bool fail;
};

static enum sk_rc fake_apply(void *impl, const char *netns, const char *script,
                             struct sk_err *err)
{
    struct fake *f = impl;
    if (f->fail)
        return sk_err_set(err, SK_EIO, "nftables in %s: injected", netns);
    f->applies++;
    snprintf(f->last_netns, sizeof f->last_netns, "%s", netns);
    free(f->last_script);
    f->last_script = strdup(script);
    return SK_OK;
}

static const struct sk_vip_ops fake_ops = {.apply = fake_apply};

static void sync_applies_changes_only(void **state)
{
    struct fake f = {0};
    struct sk_vip_target t = {.netns = "/proc/42/ns/net"};
    struct sk_vip_service s[4];
    size_t n = sample(s);
    bool changed = false;
    struct sk_err err = {0};
    assert_int_equal(sk_vip_sync(&fake_ops, &f, &t, s, n, &changed, &err),
                     SK_OK);
    assert_true(changed);
    assert_int_equal(f.applies, 1);
    assert_string_equal(f.last_netns, "/proc/42/ns/net");
    assert_string_equal(f.last_script, sample_text);

    /* The same set: nothing applied. */
    assert_int_equal(sk_vip_sync(&fake_ops, &f, &t, s, n, &changed, &err),
                     SK_OK);
    assert_false(changed);
    assert_int_equal(f.applies, 1);

    /* A task leaves: applied at once, without it. */
    s[0].n_backends = 1;
    assert_int_equal(sk_vip_sync(&fake_ops, &f, &t, s, n, &changed, &err),
                     SK_OK);
    assert_true(changed);
    assert_int_equal(f.applies, 2);
    assert_non_null(strstr(f.last_script, "\t\tdnat to 10.0.1.5\n"));
    assert_null(strstr(f.last_script, "10.0.1.6"));

    /* A failure is not remembered: the next call applies again. */
    s[0].n_backends = 2;
    f.fail = true;
    assert_int_equal(sk_vip_sync(&fake_ops, &f, &t, s, n, &changed, &err),
                     SK_EIO);
    assert_false(changed);
    assert_string_equal(err.msg, "nftables in /proc/42/ns/net: injected");
    f.fail = false;
    assert_int_equal(sk_vip_sync(&fake_ops, &f, &t, s, n, &changed, &err),
                     SK_OK);
    assert_true(changed);
    assert_int_equal(f.applies, 3);
    /* And again: nothing. */
    assert_int_equal(sk_vip_sync(&fake_ops, &f, &t, s, n, &changed, &err),
                     SK_OK);
    assert_false(changed);
    assert_int_equal(f.applies, 3);
    sk_vip_target_clear(&t);
    free(f.last_script);
}

/* ---- the real ops in children's namespaces ---- */

struct child {
    pid_t pid;
    char netns[64];
};

/* A child in a network namespace of its own, waiting to be killed. */
static bool child_start(struct child *c)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        char ok = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        if (write(p[1], &ok, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    char ok = 'n';
    assert_int_equal(read(p[0], &ok, 1), 1);
    close(p[0]);
    close(p[1]);
    snprintf(c->netns, sizeof c->netns, "/proc/%d/ns/net", (int)c->pid);
    return ok == 'y';
}

static void child_stop(struct child *c)
{
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
}

static enum sk_rc real_apply(const char *netns, const char *script,
                             struct sk_err *err)
{
    return sk_vip_nft_ops()->apply(NULL, netns, script, err);
}

static void real_nftables_in_namespaces(void **state)
{
    struct child a, b;
    bool ok_a = child_start(&a), ok_b = child_start(&b);
    if (!ok_a || !ok_b) {
        child_stop(&a);
        child_stop(&b);
        skip(); /* not allowed to make network namespaces */
    }
    struct sk_err err = {0};
    struct sk_vip_service s[4];
    size_t n = sample(s);
    char *text = sk_vip_render(s, n);
    /* nftables takes the rules as rendered, and again (replacing). */
    if (real_apply(a.netns, text, &err) != SK_OK)
        fail_msg("apply: %s", err.msg);
    assert_int_equal(real_apply(a.netns, text, &err), SK_OK);
    free(text);
    /* They are in a's namespace and nowhere else: the table can be
     * deleted in a, not in b. */
    const char *del = "delete table ip skiff_vip";
    assert_int_equal(real_apply(b.netns, del, &err), SK_EIO);
    assert_non_null(strstr(err.msg, b.netns));
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(real_apply(a.netns, del, &err), SK_OK);
    /* The empty set on a namespace without the table: fine. */
    text = sk_vip_render(NULL, 0);
    assert_int_equal(real_apply(b.netns, text, &err), SK_OK);
    free(text);
    /* Bad rules: one line naming the namespace. */
    assert_int_equal(
        real_apply(a.netns, "add rule ip nosuch chain accept", &err), SK_EIO);
    assert_non_null(strstr(err.msg, "nftables in /proc/"));
    child_stop(&a);
    child_stop(&b);
    /* A namespace that is gone. */
    assert_int_equal(real_apply(a.netns, del, &err), SK_ENOTFOUND);
    char want[128];
    snprintf(want, sizeof want,
             "network namespace %s: No such file or directory", a.netns);
    assert_string_equal(err.msg, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(render_rules),
        cmocka_unit_test(sync_applies_changes_only),
        cmocka_unit_test(real_nftables_in_namespaces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
