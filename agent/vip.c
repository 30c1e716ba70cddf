/* Virtual IPs by DNAT in the client's namespace. The contract is
 * agent/vip.h.
 *
 * The rules, for VIPs 10.0.1.100 (tasks .5 and .6), 10.0.1.101 (task .7)
 * and 10.0.1.102 (no task):
 *
 *   table ip skiff_vip
 *   delete table ip skiff_vip
 *   table ip skiff_vip {
 *       chain output {
 *           type nat hook output priority -100; policy accept;
 *           ip daddr vmap { 10.0.1.100 : jump vip_0, 10.0.1.101 : jump vip_1 }
 *       }
 *       chain vip_0 {
 *           dnat to numgen random mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }
 *       }
 *       chain vip_1 {
 *           dnat to 10.0.1.7
 *       }
 *       chain reject_output {
 *           type filter hook output priority 0; policy accept;
 *           ip daddr { 10.0.1.102 } reject
 *       }
 *   }
 *
 * The first line makes sure the table exists so that the delete cannot
 * fail; the three commands are one transaction. A verdict map finds a
 * VIP's chain in one lookup however many services there are. NAT chains
 * see only a connection's first packet; the filter chain runs after NAT
 * (priority 0 > -100), when only VIPs without tasks still carry their
 * address. */
#include "agent/vip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "skiff/mem.h"

static bool seen_before(const struct sk_vip_service *s, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (s[j].vip.s_addr == s[i].vip.s_addr)
            return true;
    return false;
}

static const char *ip_str(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
    inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
    return buf;
}

char *sk_vip_render(const struct sk_vip_service *s, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        sk_oom(BUFSIZ);
    char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
    fprintf(f, "table ip %s\ndelete table ip %s\n", SK_VIP_TABLE, SK_VIP_TABLE);
    size_t with = 0, without = 0;
    for (size_t i = 0; i < n; i++)
        if (!seen_before(s, i)) {
            if (s[i].n_backends)
                with++;
            else
                without++;
        }
    if (with + without == 0)
        goto out;
    fprintf(f, "table ip %s {\n", SK_VIP_TABLE);
    if (with) {
        fprintf(f, "\tchain output {\n"
                   "\t\ttype nat hook output priority -100; policy accept;\n"
                   "\t\tip daddr vmap { ");
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i].n_backends && !seen_before(s, i))
                fprintf(f, "%s%s : jump vip_%zu", k++ ? ", " : "",
                        ip_str(s[i].vip, a), i);
        fprintf(f, " }\n\t}\n");
        for (size_t i = 0; i < n; i++) {
            if (!s[i].n_backends || seen_before(s, i))
                continue;
            fprintf(f, "\tchain vip_%zu {\n\t\tdnat to ", i);
            if (s[i].n_backends == 1) {
                fprintf(f, "%s", ip_str(s[i].backends[0], b));
            } else {
                fprintf(f, "numgen random mod %zu map { ", s[i].n_backends);
                for (size_t j = 0; j < s[i].n_backends; j++)
                    fprintf(f, "%s%zu : %s", j ? ", " : "", j,
                            ip_str(s[i].backends[j], b));
                fprintf(f, " }");
            }
            fprintf(f, "\n\t}\n");
        }
    }
    if (without) {
        fprintf(f, "\tchain reject_output {\n"
                   "\t\ttype filter hook output priority 0; policy accept;\n"
                   "\t\tip daddr { ");
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!s[i].n_backends && !seen_before(s, i))
                fprintf(f, "%s%s", k++ ? ", " : "", ip_str(s[i].vip, a));
        fprintf(f, " } reject\n\t}\n");
    }
    fprintf(f, "}\n");
out:
    if (fclose(f) != 0 || !text)
        sk_oom(len);
    return text;
}

/* ---- the real ops ---- */

struct job {
    const char *netns;
    const char *script;
    enum sk_rc rc;
    struct sk_err err;
};

/* nft's error text spans lines (message, the input line, a marker);
 * joined into one, runs of blanks made one space. */
static void one_line(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        bool blank = *r == '\n' || *r == '\t' || *r == ' ';
        if (blank && (w == s || w[-1] == ' '))
            continue;
        *w++ = blank ? ' ' : *r;
    }
    while (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

/* Runs on a thread of its own, which ends in the container's namespace:
 * no thread of the agent ever has to find its way back. */
static void *job_run(void *arg)
{
    struct job *j = arg;
    int fd = open(j->netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        j->rc =
            sk_err_set(&j->err, errno == ENOENT ? SK_ENOTFOUND : SK_EIO,
                       "network namespace %s: %s", j->netns, strerror(errno));
        return NULL;
    }
    if (setns(fd, CLONE_NEWNET) != 0) {
        j->rc = sk_err_set(&j->err, SK_EIO, "enter network namespace %s: %s",
                           j->netns, strerror(errno));
        close(fd);
        return NULL;
    }
    close(fd);
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        j->rc = sk_err_set(&j->err, SK_EIO,
                           "network namespace %s: cannot create an nftables "
                           "context",
                           j->netns);
        return NULL;
    }
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    if (nft_run_cmd_from_buffer(ctx, j->script) != 0) {
        const char *e = nft_ctx_get_error_buffer(ctx);
        char msg[SK_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "%s", e && *e ? e : "failed");
        one_line(msg);
        j->rc =
            sk_err_set(&j->err, SK_EIO, "nftables in %s: %s", j->netns, msg);
    }
    nft_ctx_free(ctx);
    return NULL;
}

static enum sk_rc nft_apply(void *impl, const char *netns, const char *script,
                            struct sk_err *err)
{
    struct job j = {.netns = netns, .script = script, .rc = SK_OK};
    pthread_t th;
    int r = pthread_create(&th, NULL, job_run, &j);
    if (r != 0)
        return sk_err_set(err, SK_EIO, "network namespace %s: thread: %s",
                          netns, strerror(r));
    pthread_join(th, NULL);
    if (j.rc != SK_OK)
        sk_err_copy(err, &j.err);
    return j.rc;
}

static const struct sk_vip_ops real_ops = {.apply = nft_apply};

const struct sk_vip_ops *sk_vip_nft_ops(void)
{
    return &real_ops;
}

/* ---- per container ---- */

enum sk_rc sk_vip_sync(const struct sk_vip_ops *ops, void *impl,
                       struct sk_vip_target *t,
                       const struct sk_vip_service *services, size_t n,
                       bool *out_changed, struct sk_err *err)
{
    if (out_changed)
        *out_changed = false;
    char *script = sk_vip_render(services, n);
    if (t->applied && strcmp(t->applied, script) == 0) {
        free(script);
        return SK_OK;
    }
    enum sk_rc rc = ops->apply(impl, t->netns, script, err);
    if (rc != SK_OK) {
        free(script);
        sk_vip_target_clear(t);
        return rc;
    }
    free(t->applied);
    t->applied = script;
    if (out_changed)
        *out_changed = true;
    return SK_OK;
}

void sk_vip_target_clear(struct sk_vip_target *t)
{
    free(t->applied);
    t->applied = NULL;
}
