/* The DNS responder. The contract is agent/dns.h.
 *
 * sk_dns_answer() is the whole message path: ldns parses the query and
 * builds the reply, the table decides. The server around it is one UDP
 * socket per listening address; a reply is sent with uv_udp_try_send, so
 * no send request outlives its datagram: a reply that cannot go out at
 * once is dropped, and the client asks again, as it would for a lost
 * datagram. Every handle is freed in its close callback; the server's own
 * timer handle (never started) is closed last so that sk_dns_server_close
 * always completes from a close callback, also with no socket open. */
#include "agent/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "skiff/mem.h"

/* The reply size without EDNS (RFC 1035). */
#define PLAIN_UDP_SIZE 512
/* An A record with a compressed owner name: pointer 2, type 2, class 2,
 * TTL 4, length 2, address 4. */
#define A_RR_WIRE 16

/* ---- the message path ---- */

static ldns_rr *a_record(const ldns_rdf *owner, struct in_addr addr)
{
    ldns_rr *rr = ldns_rr_new();
    ldns_rdf *data = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &addr.s_addr);
    if (!rr || !data)
        sk_oom(sizeof addr);
    ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
    ldns_rr_set_type(rr, LDNS_RR_TYPE_A);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, 0);
    ldns_rr_push_rdf(rr, data);
    return rr;
}

/* Encodes r into out if it fits `limit`; otherwise drops answers from the
 * end until it does. */
static bool encode(ldns_pkt *r, size_t limit, uint8_t *out, size_t *out_len)
{
    for (;;) {
        uint8_t *wire = NULL;
        size_t size = 0;
        if (ldns_pkt2wire(&wire, r, &size) != LDNS_STATUS_OK) {
            free(wire);
            return false;
        }
        if (size <= limit) {
            memcpy(out, wire, size);
            *out_len = size;
            free(wire);
            return true;
        }
        free(wire);
        ldns_rr_list *answers = ldns_pkt_answer(r);
        if (ldns_rr_list_rr_count(answers) == 0)
            return false;
        ldns_rr_free(ldns_rr_list_pop_rr(answers));
        ldns_pkt_set_ancount(r, (uint16_t)ldns_rr_list_rr_count(answers));
    }
}

/* Fills r's answer for the one question of a QUERY; returns the rcode. */
static ldns_pkt_rcode resolve_question(const struct sk_dns_table *t,
                                       struct in_addr asker, const ldns_rr *q,
                                       unsigned rotate, size_t limit,
                                       ldns_pkt *r)
{
    if (ldns_rr_get_class(q) != LDNS_RR_CLASS_IN)
        return LDNS_RCODE_REFUSED;
    if (!t)
        return LDNS_RCODE_REFUSED;
    char *name = ldns_rdf2str(ldns_rr_owner(q));
    if (!name)
        sk_oom(LDNS_MAX_DOMAINLEN);
    const struct in_addr *addrs = NULL;
    size_t n = 0;
    enum sk_dns_lookup found = sk_dns_resolve(t, asker, name, &addrs, &n);
    free(name);
    if (found == SK_DNS_UNKNOWN_ASKER)
        return LDNS_RCODE_REFUSED;
    if (found == SK_DNS_NO_SUCH_NAME)
        return LDNS_RCODE_NXDOMAIN;
    ldns_rr_type type = ldns_rr_get_type(q);
    if (type != LDNS_RR_TYPE_A && type != LDNS_RR_TYPE_ANY)
        return LDNS_RCODE_NOERROR;
    /* No more records than could ever fit; encode() trims the rest. */
    size_t max = limit / A_RR_WIRE;
    for (size_t i = 0; i < n && i < max; i++)
        ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER,
                         a_record(ldns_rr_owner(q), addrs[(i + rotate) % n]));
    return LDNS_RCODE_NOERROR;
}

bool sk_dns_answer(const struct sk_dns_table *t, struct in_addr asker,
                   const uint8_t *query, size_t len, unsigned rotate,
                   uint8_t *out, size_t *out_len)
{
    ldns_pkt *q = NULL;
    if (ldns_wire2pkt(&q, query, len) != LDNS_STATUS_OK)
        return false;
    if (ldns_pkt_qr(q)) {
        ldns_pkt_free(q);
        return false;
    }
    ldns_pkt *r = ldns_pkt_new();
    if (!r)
        sk_oom(sizeof(void *));
    ldns_pkt_set_id(r, ldns_pkt_id(q));
    ldns_pkt_set_qr(r, true);
    ldns_pkt_set_aa(r, true);
    ldns_pkt_set_rd(r, ldns_pkt_rd(q));
    ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));

    size_t limit = PLAIN_UDP_SIZE;
    if (ldns_pkt_edns(q)) {
        size_t offered = ldns_pkt_edns_udp_size(q);
        if (offered > limit)
            limit = offered < SK_DNS_MAX_REPLY ? offered : SK_DNS_MAX_REPLY;
        ldns_pkt_set_edns_udp_size(r, SK_DNS_MAX_REPLY);
    }

    ldns_rr_list *questions = ldns_pkt_question(q);
    size_t n_questions = ldns_rr_list_rr_count(questions);
    ldns_pkt_rcode rcode;
    if (n_questions == 1)
        ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION,
                         ldns_rr_clone(ldns_rr_list_rr(questions, 0)));
    if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY)
        rcode = LDNS_RCODE_NOTIMPL;
    else if (n_questions != 1)
        rcode = LDNS_RCODE_FORMERR;
    else
        rcode = resolve_question(t, asker, ldns_rr_list_rr(questions, 0),
                                 rotate, limit, r);
    ldns_pkt_set_rcode(r, (uint8_t)rcode);

    bool ok = encode(r, limit, out, out_len);
    ldns_pkt_free(r);
    ldns_pkt_free(q);
    return ok;
}

/* ---- the server ---- */

struct listener {
    uv_udp_t udp;
    struct sk_dns_server *s;
    struct in_addr addr;
    struct listener *next;
};

struct sk_dns_server {
    uv_loop_t *loop;
    uint16_t port;
    struct listener *listeners;
    struct sk_dns_table *table;
    unsigned rotate;
    struct sk_dns_stats stats;
    uv_timer_t last; /* never started: closed last, see the top */
    int handles;     /* open, or closing and not yet called back */
    bool closing;
    void (*close_cb)(void *ctx);
    void *close_ctx;
    char buf[65536]; /* one datagram at a time (no recvmmsg) */
    uint8_t reply[SK_DNS_MAX_REPLY];
};

struct sk_dns_server *sk_dns_server_new(uv_loop_t *loop, uint16_t port)
{
    struct sk_dns_server *s = sk_calloc(1, sizeof *s);
    s->loop = loop;
    s->port = port;
    uv_timer_init(loop, &s->last);
    s->last.data = s;
    s->handles = 1;
    return s;
}

static void handle_closed(struct sk_dns_server *s)
{
    if (--s->handles > 0 || !s->closing)
        return;
    void (*cb)(void *) = s->close_cb;
    void *ctx = s->close_ctx;
    sk_dns_table_free(s->table);
    free(s);
    if (cb)
        cb(ctx);
}

static void listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct sk_dns_server *s = l->s;
    free(l);
    handle_closed(s);
}

static void last_closed(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct listener *l = h->data;
    *buf = uv_buf_init(l->s->buf, sizeof l->s->buf);
}

static void on_recv(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *from, unsigned flags)
{
    struct listener *l = udp->data;
    struct sk_dns_server *s = l->s;
    if (nread < 0 || !from || from->sa_family != AF_INET)
        return;
    s->stats.queries++;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)from;
    size_t len = 0;
    if ((flags & UV_UDP_PARTIAL) ||
        !sk_dns_answer(s->table, sin->sin_addr, (const uint8_t *)buf->base,
                       (size_t)nread, s->rotate++, s->reply, &len)) {
        s->stats.dropped++;
        return;
    }
    uv_buf_t out = uv_buf_init((char *)s->reply, (unsigned)len);
    if (uv_udp_try_send(udp, &out, 1, from) < 0)
        s->stats.dropped++;
    else
        s->stats.replies++;
}

static void close_listener(struct listener *l)
{
    uv_close((uv_handle_t *)&l->udp, listener_closed);
}

static enum sk_rc bind_one(struct sk_dns_server *s, struct in_addr addr,
                           struct sk_err *err)
{
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr, ip, sizeof ip);
    struct listener *l = sk_calloc(1, sizeof *l);
    l->s = s;
    l->addr = addr;
    int r = uv_udp_init_ex(s->loop, &l->udp, AF_INET);
    if (r < 0) {
        free(l);
        return sk_err_set(err, SK_EIO, "DNS on %s:%u: socket: %s", ip, s->port,
                          uv_strerror(r));
    }
    l->udp.data = l;
    s->handles++;
    uv_os_fd_t fd;
    int one = 1;
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(s->port), .sin_addr = addr};
    if ((r = uv_fileno((uv_handle_t *)&l->udp, &fd)) < 0 ||
        (setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof one) < 0 &&
         (r = -errno) < 0) ||
        (r = uv_udp_bind(&l->udp, (const struct sockaddr *)&sin, 0)) < 0 ||
        (r = uv_udp_recv_start(&l->udp, on_alloc, on_recv)) < 0) {
        close_listener(l);
        return sk_err_set(err, SK_EIO, "DNS on %s:%u: %s", ip, s->port,
                          uv_strerror(r));
    }
    l->next = s->listeners;
    s->listeners = l;
    return SK_OK;
}

enum sk_rc sk_dns_server_listen(struct sk_dns_server *s,
                                const struct in_addr *addrs, size_t n,
                                struct sk_err *err)
{
    for (struct listener **p = &s->listeners; *p;) {
        struct listener *l = *p;
        bool keep = false;
        for (size_t i = 0; i < n && !keep; i++)
            keep = addrs[i].s_addr == l->addr.s_addr;
        if (keep) {
            p = &l->next;
        } else {
            *p = l->next;
            close_listener(l);
        }
    }
    enum sk_rc first = SK_OK;
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        for (struct listener *l = s->listeners; l && !have; l = l->next)
            have = l->addr.s_addr == addrs[i].s_addr;
        if (!have && first == SK_OK)
            first = bind_one(s, addrs[i], err);
    }
    return first;
}

void sk_dns_server_set_table(struct sk_dns_server *s, struct sk_dns_table *t)
{
    sk_dns_table_free(s->table);
    s->table = t;
}

void sk_dns_server_stats(const struct sk_dns_server *s,
                         struct sk_dns_stats *out)
{
    *out = s->stats;
}

void sk_dns_server_close(struct sk_dns_server *s, void (*cb)(void *ctx),
                         void *ctx)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_ctx = ctx;
    while (s->listeners) {
        struct listener *l = s->listeners;
        s->listeners = l->next;
        close_listener(l);
    }
    uv_close((uv_handle_t *)&s->last, last_closed);
}
